"""``benchmarks/bench_vs_rllib.py --quick`` runs end to end and prints both tables in full.

The smoke mode caps learning at 8,000 env steps, so no run reaches 475 and no figure is judged
here (speed lives in BENCHMARKS.md); the test proves the script still drives both libraries and
prints a positive number in every cell that should hold one.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

# find_spec, not importorskip: importing RLlib would cost make test-fast's collection seconds.
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ray.rllib") is None,
    reason="the benchmark runs RLlib: pip install -e '.[rllib]'",
)

REPO_ROOT = Path(__file__).resolve().parent.parent
SCRIPT = REPO_ROOT / "benchmarks" / "bench_vs_rllib.py"
NUMBER = re.compile(r"^(>= )?[\d,]+(\.\d+)?%?$")


def cells(output: str, first: str) -> list[list[str]]:
    """The cells of every markdown table row whose first cell is ``first``."""
    rows = [line.strip("|").split("|") for line in output.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row] for row in rows if row[0].strip() == first]


def as_number(cell: str) -> float:
    assert NUMBER.match(cell), f"expected a number, got {cell!r}"
    return float(cell.removeprefix(">= ").rstrip("%").replace(",", ""))


@pytest.fixture(scope="module")
def quick_output() -> str:
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    )
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    "contender",
    [
        "course_lib",
        "RLlib 2.60",
        "RLlib 2.60, course_lib's net",
        "RLlib 2.60, course_lib's settings",
    ],
)
def test_learning_table_has_a_seed_row_and_a_median_row_per_contender(quick_output, contender):
    seed_rows = [row for row in cells(quick_output, contender) if row[1] != "median"]
    (median_row,) = [row for row in cells(quick_output, contender) if row[1] == "median"]
    assert [row[2] for row in seed_rows] == ["0"]
    for row in [*seed_rows, median_row]:
        build_s, seconds, env_steps = (as_number(cell) for cell in row[3:6])
        assert build_s >= 0 and seconds > build_s and env_steps > 0
    # --quick caps a run at 8,000 env steps: one more training batch at most.
    assert as_number(seed_rows[0][5]) < 8_000 + 4_000
    assert seed_rows[0][7] in ("yes", "not reached")


@pytest.mark.slow
def test_learning_table_states_the_ratio_and_ray_start(quick_output):
    for contender in (
        "RLlib 2.60",
        "RLlib 2.60, course_lib's net",
        "RLlib 2.60, course_lib's settings",
    ):
        assert re.search(
            rf"^{contender} / course_lib, median seconds: [\d.]+x; median env steps: [\d.]+x\.$",
            quick_output,
            re.MULTILINE,
        )
    assert re.search(r"Starting Ray, .* took [\d.]+ s once", quick_output)


@pytest.mark.slow
@pytest.mark.parametrize(
    "sampler",
    [
        "raw gymnasium vector env (random actions)",
        "course_lib RolloutWorker",
        "RLlib SingleAgentEnvRunner",
    ],
)
def test_throughput_table_has_positive_rates(quick_output, sampler):
    (row,) = cells(quick_output, sampler)
    median, low, high, share = (as_number(cell) for cell in row[1:5])
    assert 0 < low <= median <= high and 0 < share
    if sampler.startswith("raw"):
        assert share == 100.0


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["course_lib RolloutWorker", "RLlib SingleAgentEnvRunner"])
def test_profile_lists_entries_in_microseconds_per_step(quick_output, sampler):
    heading = re.search(rf"#### Profile: {sampler}, ([\d,]+) steps under cProfile", quick_output)
    assert heading and as_number(heading.group(1)) > 0
    table = quick_output[heading.end() :].split("\n\n", 2)[1]
    rows = [line.strip("|").split("|") for line in table.splitlines()[2:]]
    assert len(rows) >= 5
    assert all(as_number(row[2].strip()) > 0 for row in rows)
