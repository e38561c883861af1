"""``course-rl list``: the algorithms, one line on each, and the tuned-example files.

Introduced in notebooks/12_trainers.ipynb.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from course_lib.cli.common import UsageError, read_experiment_file, tuned_example_folders


def list_command(args: argparse.Namespace) -> int:
    """``course-rl list``: the algorithms (with one line on each) and the tuned-example files.

    Introduced in notebooks/12_trainers.ipynb.
    """
    from course_lib.agents import ALGORITHMS, get_trainer_class

    print("Algorithms (course-rl train --run NAME):")
    for name, (package, _) in ALGORITHMS.items():
        try:
            trainer_module = sys.modules[get_trainer_class(name).__module__]
        except (ImportError, AttributeError) as error:
            print(f"  {name:<6} (not available: {error})")
            continue
        print(f"  {name:<6} {_summary(sys.modules[package].__doc__ or trainer_module.__doc__)}")
    for folder in tuned_example_folders():
        files = sorted(folder.glob("*.y*ml"))
        print(f"\nTuned examples in {folder} (course-rl train -f FILE):")
        for file in files:
            print(f"  {file.name:<28} {_describe_experiment_file(file)}")
        if not files:
            print("  (none yet)")
    return 0


def _summary(docstring: str | None) -> str:
    """First line of a docstring, without its "Introduced in notebooks/..." pointer."""
    lines = (docstring or "").strip().splitlines()
    return re.sub(r"\s*Introduced in \S+\.?", "", lines[0]).strip() if lines else ""


def _describe_experiment_file(file: Path) -> str:
    try:
        _, experiment = read_experiment_file(str(file))
    except UsageError as error:
        return f"(unreadable: {error})"
    env = experiment.get("env") or (experiment.get("config") or {}).get("env", "?")
    return f"{experiment.get('run', '?')} on {env}"
