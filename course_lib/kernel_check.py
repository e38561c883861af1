"""Is this notebook running in the course's Python? One clear sentence when it is not.

Every lesson's first code cell runs this file by its path, before importing anything::

    %run ../course_lib/kernel_check.py

The notebooks declare Jupyter's generic ``python3`` kernel: under ``make lab`` that is the course's
virtual environment, but in another Jupyter it can silently be a Python without ``course_lib``, or
with other versions of Ray or torch than the course is tested with. Then the first import would
fail deep inside a package, or a lesson would half-work. This check needs only the standard
library (it runs before ``course_lib`` can be imported) and stops "Run All" with one sentence that
says what is wrong and how to fix it. It prints nothing when all is well.

Introduced in notebooks/00_welcome.ipynb.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from importlib import metadata
from pathlib import Path

# The packages a lesson cannot do without, checked against their pins in requirements.lock.
PINNED = ("ray", "torch", "gymnasium", "numpy")
FIX = "start JupyterLab with `make lab`, or pick the 'Python (course_lib)' kernel"
HERE = Path(__file__).resolve().parent  # this clone's course_lib/


class WrongKernel(RuntimeError):
    """Raised by ``check_kernel``; IPython shows only its message, not a traceback."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


def read_pins(lock_file: Path) -> dict[str, str]:
    """``{normalized name: version}`` of every ``name==version`` line in a lock file."""
    pins = {}
    for line in lock_file.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9._-]+)==([^\s;#]+)", line.strip())
        if match:
            pins[_normalize(match[1])] = match[2]
    return pins


def problems(
    lock_file: Path | None = HERE.parent / "requirements.lock",
    find_spec=importlib.util.find_spec,
    installed_version=metadata.version,
) -> list[str]:
    """What differs from the course environment, one short clause each (empty when all is well).

    ``lock_file`` None or missing (a notebook copied out of the repository) skips the versions.
    """
    spec = find_spec("course_lib")
    if spec is None:
        return [f"this kernel's Python ({sys.executable}) has no course_lib"]
    found = []
    locations = [Path(p).resolve() for p in (spec.submodule_search_locations or [])]
    if locations and HERE not in locations:
        found.append(
            f"this kernel imports course_lib from {locations[0]}, not from this course's {HERE}"
        )
    if lock_file is None or not Path(lock_file).is_file():
        return found
    pins = read_pins(Path(lock_file))
    for name in PINNED:
        wanted = pins.get(_normalize(name))
        if wanted is None:
            continue
        try:
            have = installed_version(name)
        except metadata.PackageNotFoundError:
            found.append(f"{name} is not installed (the course pins {wanted})")
            continue
        if have.split("+")[0] != wanted.split("+")[0]:
            found.append(f"{name} {have} is installed, the course pins {wanted}")
    return found


def check_kernel(**kwargs) -> None:
    """Raise ``WrongKernel`` with one sentence naming every problem and the fix; else nothing."""
    found = problems(**kwargs)
    if found:
        raise WrongKernel(f"This is not the course's Python: {'; '.join(found)}. To fix it, {FIX}.")


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


if __name__ == "__main__":
    check_kernel()
