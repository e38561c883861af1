"""The pinned environment is one environment: lock file, conda file and pyproject agree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tomllib
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent


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
    for extra in project["optional-dependencies"].values():
        reqs.extend(extra)
    return [Requirement(r) for r in reqs]


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


def test_the_versions_the_design_fixes(lock):
    # torch 2.13.0 is the CPU wheel here (an unpinned torch pulls CUDA); RLlib 2.60 needs gymnasium 1.2.2.
    assert (lock["torch"], lock["ray"], lock["gymnasium"]) == ("2.13.0", "2.60.0", "1.2.2")


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in (ROOT / "README.md").read_text()
