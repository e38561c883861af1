"""The code passes ruff: the lint rules in pyproject.toml (real defects: undefined names, unused
imports, mutable defaults, lines too wide for show() to display) and ruff's formatting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The Python that the course is maintained in; notebooks are excluded in pyproject.toml.
CHECKED = ["course_lib", "tests", "tools", "benchmarks"]
# The ruff that the lock pins, installed next to this interpreter, not whichever is on PATH.
RUFF = Path(sys.executable).with_name("ruff")


def ruff(*args: str) -> subprocess.CompletedProcess:
    if not RUFF.exists():
        pytest.fail(f"ruff is not installed next to {sys.executable}; run `make setup`")
    return subprocess.run(
        [str(RUFF), *args, *CHECKED], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_ruff_check_finds_nothing():
    done = ruff("check", "--no-cache", "--output-format", "concise")
    if done.returncode != 0:
        # pytrace=False: ruff's report says where each problem is; a traceback adds only noise.
        pytest.fail(
            "`ruff check` found problems (fix them; `ruff check --fix` fixes the safe ones):\n"
            f"{done.stdout}{done.stderr}",
            pytrace=False,
        )


def test_code_is_formatted_as_ruff_formats_it():
    done = ruff("format", "--check", "--no-cache")
    if done.returncode != 0:
        pytest.fail(
            f"these files are not formatted; run `.venv/bin/ruff format {' '.join(CHECKED)}`:\n"
            f"{done.stdout}{done.stderr}",
            pytrace=False,
        )
