"""Check that this machine is ready for the course: Python, packages, cores, memory and Ray.

Introduced in notebooks/00_welcome.ipynb. Run it first when something in a later lesson fails.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata

from packaging.requirements import Requirement

# Below this a lesson with Ray (about 1.5 GB for Ray's own processes) and torch starts swapping.
MIN_MEMORY_GB = 4.0


@dataclass
class SetupReport:
    """What ``check_setup`` found: facts to print, and problems with a fix each."""

    facts: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        width = max(map(len, self.facts), default=0)
        lines = [f"{name:<{width}}  {value}" for name, value in self.facts.items()]
        lines.append("All good: you are ready for the course." if self.ok else "Problems:")
        lines.extend(f"  - {problem}" for problem in self.problems)
        return "\n".join(lines)


def check_setup(start_ray: bool = True) -> SetupReport:
    """Collect versions, cores and memory; check every dependency against course_lib's ranges.

    With ``start_ray`` it also starts Ray through ``init_ray``, runs one task, and shuts it down
    again, reporting how long that took.
    """
    import psutil

    report = SetupReport()
    report.facts["python"] = platform.python_version()
    if sys.version_info < (3, 10):
        report.problems.append(
            f"Python {platform.python_version()} is too old; the course needs 3.10 or newer."
        )
    report.facts["platform"] = f"{platform.system()} {platform.machine()}"
    report.facts["cores"] = str(os.cpu_count())
    memory_gb = psutil.virtual_memory().total / 1024**3
    report.facts["memory"] = f"{memory_gb:.1f} GB"
    if memory_gb < MIN_MEMORY_GB:
        report.problems.append(
            f"{memory_gb:.1f} GB of memory; lessons with Ray need about {MIN_MEMORY_GB:.0f} GB."
        )
    _check_packages(report)
    if start_ray and not report.problems:
        _check_ray(report)
    return report


def _check_packages(report: SetupReport) -> None:
    for spec in metadata.requires("course_lib") or []:
        requirement = Requirement(spec)
        if requirement.marker is not None:  # an optional extra, not needed to run the lessons
            continue
        try:
            installed = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            report.problems.append(
                f"{requirement.name} is missing: run `make setup` in the course folder."
            )
            continue
        report.facts[requirement.name] = installed
        if not requirement.specifier.contains(installed, prereleases=True):
            report.problems.append(
                f"{requirement.name} {installed} is outside the supported range "
                f"{requirement.specifier}: run `make setup`, "
                "which installs the tested versions into .venv."
            )
    try:
        import torch

        report.facts["torch build"] = (
            "CPU only" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
        )
    except ImportError:
        pass


def _check_ray(report: SetupReport) -> None:
    import ray

    from .cluster import init_ray

    already = ray.is_initialized()
    start = time.perf_counter()
    init_ray()
    report.facts["ray start"] = (
        "already running" if already else f"{time.perf_counter() - start:.1f} s"
    )
    report.facts["ray CPUs"] = f"{ray.cluster_resources().get('CPU', 0):g}"
    answer = ray.get(ray.remote(_answer).remote())
    if answer != 42:
        report.problems.append(
            f"a Ray task returned {answer!r} instead of 42; reinstall with `make clean setup`."
        )
    if not already:
        ray.shutdown()


def _answer() -> int:
    return 42
