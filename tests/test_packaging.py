"""The pinned environment is one environment: lock file, conda file and pyproject agree; the lock
installs exactly what it names (a CPU torch, an RLlib-compatible gymnasium); the commands the README
gives exist and CI runs the README's test command."""

from __future__ import annotations

import importlib.metadata as metadata
import os
import re
import shlex
import stat
import subprocess
from pathlib import Path

import pytest
import tomllib
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parent.parent
# Names a CUDA build of torch pulls in; a CPU-only lock has none of them.
CUDA_PACKAGE = re.compile(r"^(nvidia-|cuda-|triton$)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(lines) -> dict[str, str]:
    pins = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", f"{line!r} is not an exact pin"
            pins[canonical(req.name)] = spec.version
    return pins


@pytest.fixture(scope="module")
def lock() -> dict[str, str]:
    return read_pins((ROOT / "requirements.lock").read_text().splitlines())


@pytest.fixture(scope="module")
def conda_pins() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    return read_pins(pip_section)


def pyproject_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for name, extra in project["optional-dependencies"].items():
        # The sb3 extra is pinned in requirements-sb3.lock instead (tests/test_bench_peers.py).
        if name != "sb3":
            reqs.extend(extra)
    return [Requirement(r) for r in reqs]


def installed_as_locked(name: str, lock: dict[str, str]) -> None:
    """Fail unless the installed distribution is the locked one, so its metadata is the lock's.

    ``==2.13.0`` accepts the local build ``2.13.0+cpu``, as pip does.
    """
    try:
        have = metadata.version(name)
    except metadata.PackageNotFoundError:
        pytest.fail(f"{name} is pinned in requirements.lock but not installed; run `make setup`")
    assert SpecifierSet(f"=={lock[name]}").contains(have, prereleases=True), (
        f"{name} {have} is installed but requirements.lock pins {lock[name]}; "
        "run `make setup` (or `make lock` if the new version is intended)"
    )


def active_requirements(name: str, extras: set[str]) -> list[Requirement]:
    """The installed ``name``'s requirements that apply here when installed with ``extras``."""
    active = []
    for text in metadata.requires(name) or []:
        req = Requirement(text)
        if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in {"", *extras}):
            active.append(req)
    return active


def test_conda_environment_pins_the_same_versions_as_the_lock(lock, conda_pins):
    differ = {
        name: (version, lock.get(name))
        for name, version in conda_pins.items()
        if lock.get(name) != version
    }
    assert not differ, (
        f"environment.yml and requirements.lock disagree (conda, lock): {differ}; run `make lock`"
    )


@pytest.mark.parametrize("requirement", pyproject_requirements(), ids=str)
def test_every_dependency_is_pinned_within_its_range(requirement, lock, conda_pins):
    name = canonical(requirement.name)
    assert name in lock, f"{requirement} is not in requirements.lock"
    assert name in conda_pins, f"{requirement} is not in environment.yml"
    assert requirement.specifier.contains(lock[name]), (
        f"lock pins {name}=={lock[name]}, outside {requirement}"
    )


def test_the_lock_is_closed_so_installing_it_pulls_nothing_unpinned(lock):
    """Every requirement of every locked package is itself locked, at a version it accepts.

    `make setup` runs ``pip install -r requirements.lock`` with dependency resolution on, so a
    requirement missing from the lock would be resolved freshly, at whatever version is newest.
    """
    extras: dict[str, set[str]] = {}
    for r in pyproject_requirements():
        extras.setdefault(canonical(r.name), set()).update(r.extras)
    unpinned, conflicts = [], []
    for name in lock:
        installed_as_locked(name, lock)
        for req in active_requirements(name, extras.get(name, set())):
            dep = canonical(req.name)
            if dep not in lock:
                unpinned.append(f"{name} needs {req}")
            elif not req.specifier.contains(lock[dep], prereleases=True):
                conflicts.append(f"{name} needs {req}, the lock pins {dep}=={lock[dep]}")
    assert not unpinned, (
        f"requirements.lock lacks what its packages need: {unpinned}; run `make lock`"
    )
    assert not conflicts, f"requirements.lock pins versions its packages reject: {conflicts}"


def test_torch_is_the_cpu_build_and_pulls_no_cuda(lock):
    # A CUDA torch wheel depends on several GB of nvidia-* packages; the CPU wheel on none.
    cuda = sorted(name for name in lock if CUDA_PACKAGE.match(name))
    assert not cuda, f"requirements.lock holds CUDA packages {cuda}: pin the CPU build of torch"
    installed_as_locked("torch", lock)
    cuda_needs = [str(r) for r in active_requirements("torch", set()) if CUDA_PACKAGE.match(r.name)]
    assert not cuda_needs, (
        f"the installed torch {metadata.version('torch')} is a CUDA build (needs {cuda_needs}); "
        "install the CPU wheel, e.g. from https://download.pytorch.org/whl/cpu"
    )


def test_ray_rllib_accepts_the_locked_versions(lock):
    """RLlib 2.60 shares this environment in the "RLlib today" comparison; its pins must hold."""
    installed_as_locked("ray", lock)
    rllib_needs = [
        r
        for r in metadata.requires("ray") or []
        if (req := Requirement(r)).marker is not None
        and req.marker.evaluate({"extra": "rllib"})
        and canonical(req.name) in lock
    ]
    rejected = [
        f"{r} (the lock pins {lock[canonical(Requirement(r).name)]})"
        for r in rllib_needs
        if not Requirement(r).specifier.contains(lock[canonical(Requirement(r).name)])
    ]
    assert any(canonical(Requirement(r).name) == "gymnasium" for r in rllib_needs), (
        f"ray {lock['ray']}[rllib] no longer names gymnasium; check what RLlib needs now"
    )
    assert not rejected, f"ray[rllib]=={lock['ray']} rejects the locked versions: {rejected}"


def shell_commands(text: str) -> list[list[str]]:
    """Each non-empty line of a shell script or code block as words, comments dropped."""
    commands = []
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        # Leading VAR=value assignments only set the environment of the command that follows.
        while words and re.match(r"^[A-Za-z_]\w*=", words[0]):
            words.pop(0)
        if words:
            commands.append(words)
    return commands


def readme_code() -> str:
    """The code in README.md: fenced blocks and inline `code` spans, prose left out."""
    text = (ROOT / "README.md").read_text()
    fenced = re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    prose = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    return "\n".join(fenced + re.findall(r"`([^`\n]+)`", prose))


def readme_make_targets() -> list[str]:
    return sorted(set(re.findall(r"\bmake ([a-z][\w-]*)", readme_code())))


def test_ci_runs_the_readme_test_command():
    script = ROOT / ".ci" / "run"
    assert script.stat().st_mode & stat.S_IXUSR and os.access(script, os.X_OK), (
        ".ci/run is not executable; run `chmod +x .ci/run` (and commit the mode)"
    )
    text = script.read_text()
    assert text.startswith("#!"), ".ci/run needs a shebang line such as #!/usr/bin/env bash"
    syntax = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert syntax.returncode == 0, f".ci/run is not valid bash: {syntax.stderr}"
    assert ["make", "test"] in shell_commands(text), ".ci/run does not run `make test`"
    readme_blocks = "\n".join(
        re.findall(r"^```bash\n(.*?)^```", (ROOT / "README.md").read_text(), re.M | re.S)
    )
    assert ["make", "test"] in shell_commands(readme_blocks), (
        "README.md's command blocks no longer say `make test`, the command CI runs"
    )


@pytest.mark.parametrize("target", readme_make_targets())
def test_every_make_target_the_readme_names_exists(target):
    # -n prints what the target would run without running it; it fails on an unknown target.
    dry = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True)
    assert dry.returncode == 0, f"README.md says `make {target}` but make says: {dry.stderr}"


def test_the_readme_target_parser_finds_the_two_commands():
    # Guards the parametrized test above against passing vacuously when the README's layout changes.
    assert {"lab", "test"} <= set(readme_make_targets())
