"""Refresh requirements.lock and environment.yml from the installed .venv.

requirements.lock pins every package (what `make setup` installs); environment.yml pins the
direct dependencies for conda users, at the same versions. tests/test_packaging.py checks that the
two agree and that the pins satisfy pyproject.toml's ranges. The packages pinned in
requirements-sb3.lock (stable-baselines3, which `make sb3` installs into the same .venv) stay out
of both.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK_HEADER = """# Exact versions the course is tested with (Python 3.11, Linux x86-64).
# Installed by `make setup`; regenerate with `make lock` after changing pyproject.toml.
# torch==2.13.0 must stay pinned: an unpinned torch pulls several GB of CUDA packages.
"""
# The packages a learner's environment is defined by; conda resolves the rest from these pins.
DIRECT = [
    "ray",
    "torch",
    "gymnasium",
    "numpy",
    "matplotlib",
    "tqdm",
    "ipywidgets",
    "pyyaml",
    "psutil",
    "pandas",
    "pyarrow",
    "tensorboardX",
    "tensorboard",
    "jupyterlab",
    "ipykernel",
    "pytest",
    "nbval",
    "nbclient",
    "nbformat",
    "pytest-timeout",
    "ruff",
    "setuptools",
    "sphinx",
    "myst-nb",
    "sphinx-book-theme",
    "sphinx-copybutton",
    "playwright",
]


def canonical(name: str) -> str:
    return name.lower().replace("_", "-")


def sb3_only() -> set[str]:
    """The names requirements-sb3.lock pins: `make sb3` installs them, `make lock` not."""
    lines = (ROOT / "requirements-sb3.lock").read_text().splitlines()
    pins = (line.split("#")[0].strip() for line in lines)
    return {canonical(pin.partition("==")[0]) for pin in pins if pin}


def course_pins(freeze: str) -> dict[str, str]:
    """requirements.lock's pins from `pip freeze` output: all but pip, wheel and the sb3 extra's."""
    left_out = {"pip", "wheel"} | sb3_only()
    pins = {}
    for line in freeze.splitlines():
        name, _, version = line.partition("==")
        if version and canonical(name) not in left_out:
            # torch 2.13.0+cpu: the local tag names the wheel, not the release.
            pins[name] = version.split("+")[0]
    return pins


def frozen() -> dict[str, str]:
    text = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--all", "--exclude-editable"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return course_pins(text)


def main() -> int:
    pins = frozen()
    lock = LOCK_HEADER + "".join(
        f"{name}=={version}\n"
        for name, version in sorted(pins.items(), key=lambda kv: canonical(kv[0]))
    )
    (ROOT / "requirements.lock").write_text(lock)
    by_name = {canonical(n): (n, v) for n, v in pins.items()}
    lines = [
        "# Conda environment for the course: the same "
        "pins as requirements.lock (checked by the tests).",
        "# conda env create -f environment.yml && conda "
        "activate course-lib && pip install --no-deps -e .",
        "name: course-lib",
        "channels:",
        "  - conda-forge",
        "dependencies:",
        "  - python=3.11",
        "  - pip",
        "  - pip:",
    ]
    # Ray's extras: Tune runs the course's trainers, Serve the serving lesson, default the
    # dashboard (init_ray(dashboard=True)), RLlib the "RLlib today" lesson; gymnasium's
    # classic-control brings pygame, which draws CartPole for render_mode="rgb_array".
    extras = {"ray": "[tune,serve,default,rllib]", "gymnasium": "[classic-control]"}
    lines += [
        f"      - {by_name[canonical(d)][0]}{extras.get(d, '')}=={by_name[canonical(d)][1]}"
        for d in DIRECT
    ]
    (ROOT / "environment.yml").write_text("\n".join(lines) + "\n")
    print(f"requirements.lock: {len(pins)} pins; environment.yml: {len(DIRECT)} direct pins")
    return 0


if __name__ == "__main__":
    sys.exit(main())
