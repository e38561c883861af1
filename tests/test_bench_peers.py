"""The peers benchmark and its packages: ``benchmarks/bench_peers.py --quick`` prints every table
in full; without stable-baselines3 it says how to get it; SB3 stays out of the course's lock.

``--quick`` caps learning at 4,000 env steps, so no run reaches 475 and no speed is judged here
(figures live in BENCHMARKS.md); the tests prove that the script drives all three libraries, that
every cell holds a plausible number and that the ratios are the ones its own tables imply.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from test_bench_vs_rllib import as_number, cells
from test_packaging import canonical, read_pins

from tools.lock import course_pins

REPO_ROOT = Path(__file__).resolve().parent.parent
SCRIPT = REPO_ROOT / "benchmarks" / "bench_peers.py"
FAST = "course_lib RolloutWorker, vectorize_envs"
SAMPLERS = ["course_lib RolloutWorker", FAST, "RLlib SingleAgentEnvRunner"]
QUICK_ENV_STEPS = 4_000
# "2.31", ">= 0.97", "<= 1.20" or "n/a (both capped)": a ratio, a bound on one, or none.
RATIO = re.compile(r"^(>= |<= )?\d+\.\d\d$|^n/a \(both capped\)$")


def bench_env() -> dict[str, str]:
    path = [str(REPO_ROOT), str(REPO_ROOT / "benchmarks"), os.environ.get("PYTHONPATH")]
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(filter(None, path)))


def bench_pins() -> dict[str, str]:
    return read_pins((REPO_ROOT / "requirements-sb3.lock").read_text().splitlines())


def test_the_sb3_extra_is_pinned_in_the_sb3_lock_within_its_range():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(r) for r in project["optional-dependencies"]["sb3"]]
    pins = bench_pins()
    assert [canonical(r.name) for r in requirements] == ["stable-baselines3"]
    for requirement in requirements:
        assert requirement.specifier.contains(pins[canonical(requirement.name)])


def test_the_sb3_lock_changes_nothing_the_course_lock_pins():
    course = read_pins((REPO_ROOT / "requirements.lock").read_text().splitlines())
    assert not set(bench_pins()) & set(course), "pin it in one lock file only"


def test_make_lock_leaves_the_sb3_packages_out_of_the_course_lock():
    freeze = "stable_baselines3==2.9.2\ntorch==2.13.0+cpu\npip==25.1\nnumpy==2.4.6\n"
    assert course_pins(freeze) == {"torch": "2.13.0", "numpy": "2.4.6"}


def test_without_sb3_the_script_says_to_run_make_sb3():
    # None in sys.modules makes `import stable_baselines3` fail as if it were not installed.
    hide_sb3 = (
        "import runpy, sys; sys.modules['stable_baselines3'] = None; "
        f"sys.argv = [{str(SCRIPT)!r}, '--quick']; runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    run = subprocess.run(
        [sys.executable, "-c", hide_sb3],
        cwd=REPO_ROOT,
        env=bench_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1
    assert "stable-baselines3 is not installed" in run.stderr
    assert "`make sb3` installs it" in run.stderr
    assert "-r requirements-sb3.lock" in run.stderr
    assert run.stdout == ""


@pytest.fixture(scope="module")
def quick_output() -> str:
    pytest.importorskip("stable_baselines3", reason="make sb3 installs the sb3 extra")
    if importlib.util.find_spec("ray.rllib") is None:
        pytest.skip("the benchmark runs RLlib: pip install -e '.[rllib]'")
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"],
        cwd=REPO_ROOT,
        env=bench_env(),
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout


def sb3_name(output: str) -> str:
    (name,) = set(re.findall(r"^\| (SB3 \d+\.\d+\.\d+) \|", output, re.MULTILINE))
    return name


@pytest.mark.slow
def test_sampling_table_has_every_sampler_at_8_and_64_envs(quick_output):
    samplers = [*SAMPLERS, f"{sb3_name(quick_output)} collect_rollouts"]
    (raw,) = cells(quick_output, "raw gymnasium env (random actions)")
    assert raw[1] == "1" and raw[5] == "100.0%"
    raw_rate = as_number(raw[2])
    for sampler in samplers:
        rows = cells(quick_output, sampler)
        assert [row[1] for row in rows] == ["8", "64"]
        for row in rows:
            median, low, high, share = (as_number(cell) for cell in row[2:6])
            assert 0 < low <= median <= high
            assert share == pytest.approx(100 * median / raw_rate, abs=0.1)


def table_rows(output: str, heading: str) -> dict[str, list[list[str]]]:
    """The rows of the markdown table under ``heading``, by first cell (header rows left out)."""
    table = output.split(heading, 1)[1].split("\n\n", 2)[1]
    rows = {}
    for line in table.splitlines()[2:]:
        first, *rest = (cell.strip() for cell in line.strip("|").split("|"))
        rows.setdefault(first, []).append(rest)
    return rows


@pytest.mark.slow
@pytest.mark.parametrize(
    ("algorithm", "contenders"),
    [("PPO", ["course_lib", "RLlib 2.60", "SB3"]), ("DQN", ["course_lib", "SB3"])],
)
def test_learning_tables_have_a_run_and_a_median_per_contender(quick_output, algorithm, contenders):
    rows = table_rows(quick_output, f"### {algorithm} on CartPole-v1 to a 20-episode mean of 475")
    names = [sb3_name(quick_output) if name == "SB3" else name for name in contenders]
    assert list(rows) == names
    for name in names:
        run, median = rows[name]
        assert run[1] == "0" and median[0] == "median"
        build_s, seconds, env_steps = (as_number(cell) for cell in run[2:5])
        assert 0 <= build_s < seconds and 0 < env_steps
        # A run stops at the cap, or at the end of the train() call that passed it.
        assert QUICK_ENV_STEPS <= env_steps < QUICK_ENV_STEPS + 4_100
        assert run[6] == ("yes" if as_number(run[5]) >= 475 else "not reached")
        assert median[6] == f"{int(run[6] == 'yes')}/1"


@pytest.mark.slow
def test_peers_table_holds_the_ratios_of_the_tables_medians(quick_output):
    sb3 = sb3_name(quick_output)
    rows = table_rows(quick_output, "### course_lib against the peers")
    assert list(rows) == [
        "sampling env steps/s, 8 envs",
        "sampling env steps/s, 8 envs, vectorize_envs",
        "sampling env steps/s, 64 envs",
        "sampling env steps/s, 64 envs, vectorize_envs",
        "PPO seconds to 475",
        "PPO env steps to 475",
        "DQN seconds to 475",
        "DQN env steps to 475",
    ]
    for index, num_envs in enumerate(("8", "64")):
        row_lib, fast_lib, rllib, peer = (
            as_number(cells(quick_output, sampler)[index][2])
            for sampler in [*SAMPLERS, f"{sb3} collect_rollouts"]
        )
        for lib, label in ((row_lib, ""), (fast_lib, ", vectorize_envs")):
            ((vs_rllib, vs_sb3, better),) = rows[f"sampling env steps/s, {num_envs} envs{label}"]
            assert float(vs_rllib) == pytest.approx(lib / rllib, abs=0.006)
            assert float(vs_sb3) == pytest.approx(lib / peer, abs=0.006)
            assert better == "above 1"
    for measure in ("PPO seconds to 475", "PPO env steps to 475"):
        ((vs_rllib, vs_sb3, better),) = rows[measure]
        assert RATIO.match(vs_rllib) and RATIO.match(vs_sb3) and better == "below 1"
    for measure in ("DQN seconds to 475", "DQN env steps to 475"):
        ((vs_rllib, vs_sb3, _),) = rows[measure]
        assert vs_rllib == "not run" and RATIO.match(vs_sb3)
    assert "torch reports 1 at the end) and OMP_NUM_THREADS=1" in quick_output
