"""Lesson 03's stable-baselines3 cell without the optional sb3 extra: it says how to add SB3 and
skips, instead of failing the lesson. With SB3 installed (make test installs it), the lesson run
(tests/test_notebook_rerun.py) runs the cell itself, training included."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import numpy as np

from course_lib.envs import Corridor

LESSON = Path(__file__).resolve().parent.parent / "notebooks" / "03_environments.ipynb"


def sb3_cell_source() -> str:
    cells = nbformat.read(LESSON, as_version=4).cells
    (source,) = [c.source for c in cells if "import stable_baselines3 as sb3" in c.source]
    return source


def test_without_sb3_the_cell_says_to_run_make_sb3_and_skips(monkeypatch, capsys):
    # None in sys.modules makes the import raise ModuleNotFoundError, as if SB3 were absent.
    monkeypatch.setitem(sys.modules, "stable_baselines3", None)
    namespace = {"np": np, "Corridor": Corridor}
    exec(sb3_cell_source(), namespace)
    out = capsys.readouterr().out
    assert namespace["sb3"] is None
    assert "stable-baselines3 is not installed" in out and "`make sb3`" in out
    assert "greedy return" not in out
