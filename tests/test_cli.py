"""``course-rl``, run as a learner runs it: in a subprocess, from a scratch folder."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

EXPERIMENT_FILE = """\
cartpole-pg:
    run: PG
    env: CartPole-v1
    stop: {training_iteration: 50}
    config: {lr: 0.02, train_batch_size: 400, rollout_fragment_length: 50}
"""


def course_rl(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-m", "course_lib.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two PG iterations from a tuned-example file, with command-line overrides and a checkpoint each."""
    cwd = tmp_path_factory.mktemp("train")
    (cwd / "cartpole-pg.yaml").write_text(EXPERIMENT_FILE)
    run = course_rl("train", "-f", "cartpole-pg.yaml", "--stop", '{"training_iteration": 2}',
                    "--config", '{"num_envs_per_worker": 2}', "--checkpoint-freq", "1",
                    "--storage-path", "results", "--num-cpus", "2", "--seed", "0", cwd=cwd)
    assert run.returncode == 0, run.stdout + run.stderr
    trial_dirs = list((cwd / "results" / "cartpole-pg").glob("PG_CartPole-v1_*"))
    assert len(trial_dirs) == 1, list((cwd / "results").rglob("*"))
    return cwd, trial_dirs[0], run.stdout


def test_train_writes_tune_results_folder(trained):
    _, trial_dir, _ = trained
    with open(trial_dir / "progress.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(row["training_iteration"]) for row in rows] == [1, 2]
    assert len((trial_dir / "result.json").read_text().splitlines()) == 2
    assert list(trial_dir.glob("events.out.tfevents.*"))
    assert sorted(p.name for p in trial_dir.glob("checkpoint_*")) == ["checkpoint_000000", "checkpoint_000001"]


def test_train_merges_file_config_with_command_line(trained):
    _, trial_dir, _ = trained
    params = json.loads((trial_dir / "params.json").read_text())
    assert params["lr"] == 0.02  # from the file
    assert params["num_envs_per_worker"] == 2  # from --config
    assert params["env"] == "CartPole-v1" and params["seed"] == 0


def test_train_prints_one_line_per_iteration_and_the_last_checkpoint(trained):
    _, trial_dir, stdout = trained
    assert len(re.findall(r"^iter +\d+ +timesteps +\d+ +reward_mean", stdout, re.M)) == 2
    last = re.search(r"last checkpoint: (\S+)", stdout).group(1)
    assert Path(last) == trial_dir / "checkpoint_000001"


def test_rollout_prints_episode_returns_and_their_mean(trained):
    cwd, trial_dir, _ = trained
    run = course_rl("rollout", str(trial_dir / "checkpoint_000001"), "--run", "PG", "--env", "CartPole-v1",
                    "--episodes", "3", "--seed", "1", cwd=cwd)
    assert run.returncode == 0, run.stderr
    returns = [float(r) for r in re.findall(r"^Episode +\d+: return +([\d.]+)", run.stdout, re.M)]
    assert len(returns) == 3 and all(r >= 1 for r in returns)
    mean = float(re.search(r"Mean return over 3 episodes: ([\d.]+)", run.stdout).group(1))
    assert mean == pytest.approx(sum(returns) / 3, abs=0.01)


def test_rollout_of_a_trial_folder_uses_its_latest_checkpoint(trained):
    cwd, trial_dir, _ = trained
    run = course_rl("rollout", str(trial_dir), "--steps", "30", cwd=cwd)
    assert run.returncode == 0, run.stderr
    assert "Using the latest checkpoint" in run.stdout and "checkpoint_000001" in run.stdout
    assert "Traceback" not in run.stderr


def test_rollout_with_another_algorithm_exits_2(trained):
    cwd, trial_dir, _ = trained
    run = course_rl("rollout", str(trial_dir / "checkpoint_000001"), "--run", "PPO", cwd=cwd)
    assert run.returncode == 2
    assert "written by a 'PG' trainer" in run.stderr and "Traceback" not in run.stderr


def test_rollout_of_a_folder_that_is_not_a_checkpoint_exits_2(tmp_path):
    run = course_rl("rollout", str(tmp_path), "--run", "PG", "--env", "CartPole-v1", cwd=tmp_path)
    assert run.returncode == 2
    assert "is not a course_lib checkpoint" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--run", "PPX"], "Did you mean 'PPO'"),
        (["--config", '{"lr": }'], "--config is not valid JSON"),
        (["--config", '{"num_worker": 1}'], "Did you mean 'num_workers'"),
        (["--env", "CartPole-v9"], "Unknown environment 'CartPole-v9'"),
        (["-f", "no_such_file.yaml"], "No such file: 'no_such_file.yaml'"),
    ],
    ids=["unknown-algorithm", "bad-json", "unknown-config-key", "unknown-env", "missing-file"],
)
def test_train_mistakes_exit_2_with_one_clear_line(tmp_path, args, message):
    defaults = {"--run": "PG", "--env": "CartPole-v1"}
    for option, value in defaults.items():
        if option not in args:
            args = [*args, option, value]
    run = course_rl("train", *args, "--storage-path", "results", cwd=tmp_path)
    assert run.returncode == 2
    assert message in run.stderr and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "results").exists()  # stopped before Ray and Tune started


def test_list_shows_algorithms_and_tuned_examples(tmp_path):
    (tmp_path / "tuned_examples").mkdir()
    (tmp_path / "tuned_examples" / "cartpole-pg.yaml").write_text(EXPERIMENT_FILE)
    run = course_rl("list", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    for name in ("PG", "A2C", "PPO", "DQN"):
        assert re.search(rf"^  {name} ", run.stdout, re.M)
    assert re.search(r"cartpole-pg\.yaml +PG on CartPole-v1", run.stdout)
