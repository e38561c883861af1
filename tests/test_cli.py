"""``course-rl``: the learner's flows (train, rollout, list) run in a subprocess from a scratch
folder, as a learner runs them; the mistakes, which stop before Ray starts, through ``main()`` in
this process."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from course_lib.agents import ALGORITHMS
from course_lib.cli import UsageError, main
from course_lib.cli.train import _check_cpus, _stop_criteria

REPO_ROOT = Path(__file__).resolve().parent.parent

EXPERIMENT_FILE = """\
cartpole-pg:
    run: PG
    env: CartPole-v1
    stop: {training_iteration: 50}
    config: {lr: 0.02, train_batch_size: 400, rollout_fragment_length: 50}
"""


def course_rl(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    )
    return subprocess.run(
        [sys.executable, "-m", "course_lib.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two PG iterations from a tuned-example file plus command-line overrides; checkpoint each."""
    cwd = tmp_path_factory.mktemp("train")
    (cwd / "cartpole-pg.yaml").write_text(EXPERIMENT_FILE)
    run = course_rl(
        "train",
        "-f",
        "cartpole-pg.yaml",
        "--stop",
        '{"training_iteration": 2}',
        "--config",
        '{"num_envs_per_worker": 2}',
        "--checkpoint-freq",
        "1",
        "--storage-path",
        "results",
        "--num-cpus",
        "2",
        "--seed",
        "0",
        cwd=cwd,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    trial_dirs = list((cwd / "results" / "cartpole-pg").glob("PG_CartPole-v1_*"))
    assert len(trial_dirs) == 1, list((cwd / "results").rglob("*"))
    return cwd, trial_dirs[0], run.stdout


@pytest.mark.slow
def test_train_writes_tune_results_folder(trained):
    _, trial_dir, _ = trained
    with open(trial_dir / "progress.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(row["training_iteration"]) for row in rows] == [1, 2]
    assert len((trial_dir / "result.json").read_text().splitlines()) == 2
    assert list(trial_dir.glob("events.out.tfevents.*"))
    assert sorted(p.name for p in trial_dir.glob("checkpoint_*")) == [
        "checkpoint_000000",
        "checkpoint_000001",
    ]


@pytest.mark.slow
def test_train_merges_file_config_with_command_line(trained):
    _, trial_dir, _ = trained
    params = json.loads((trial_dir / "params.json").read_text())
    assert params["lr"] == 0.02  # from the file
    assert params["num_envs_per_worker"] == 2  # from --config
    assert params["env"] == "CartPole-v1" and params["seed"] == 0


@pytest.mark.slow
def test_train_prints_one_line_per_iteration_and_the_last_checkpoint(trained):
    _, trial_dir, stdout = trained
    assert len(re.findall(r"^iter +\d+ +timesteps +\d+ +reward_mean", stdout, re.M)) == 2
    last = re.search(r"last checkpoint: (\S+)", stdout).group(1)
    assert Path(last) == trial_dir / "checkpoint_000001"


@pytest.mark.slow
def test_rollout_prints_episode_returns_and_their_mean(trained):
    cwd, trial_dir, _ = trained
    run = course_rl(
        "rollout",
        str(trial_dir / "checkpoint_000001"),
        "--run",
        "PG",
        "--env",
        "CartPole-v1",
        "--episodes",
        "3",
        "--seed",
        "1",
        cwd=cwd,
    )
    assert run.returncode == 0, run.stderr
    returns = [float(r) for r in re.findall(r"^Episode +\d+: return +([\d.]+)", run.stdout, re.M)]
    assert len(returns) == 3 and all(r >= 1 for r in returns)
    mean = float(re.search(r"Mean return over 3 episodes: ([\d.]+)", run.stdout).group(1))
    assert mean == pytest.approx(sum(returns) / 3, abs=0.01)


@pytest.mark.slow
def test_rollout_of_a_trial_folder_uses_its_latest_checkpoint(trained, capsys):
    _, trial_dir, _ = trained
    assert main(["rollout", str(trial_dir), "--steps", "30"]) == 0
    out = capsys.readouterr().out
    assert f"Using the latest checkpoint in {trial_dir}: checkpoint_000001" in out
    assert "(PG, iteration 2) in CartPole-v1" in out  # --run and --env read from the checkpoint


@pytest.mark.slow
def test_rollout_with_another_algorithm_exits_2(trained, capsys):
    _, trial_dir, _ = trained
    assert main(["rollout", str(trial_dir / "checkpoint_000001"), "--run", "PPO"]) == 2
    assert "written by a 'PG' trainer, not 'PPO'. Use --run PG" in capsys.readouterr().err


def test_rollout_of_a_folder_that_is_not_a_checkpoint_exits_2(tmp_path, capsys):
    assert main(["rollout", str(tmp_path), "--run", "PG", "--env", "CartPole-v1"]) == 2
    assert "is not a course_lib checkpoint" in capsys.readouterr().err


def test_unknown_algorithm_exits_2_with_the_closest_name_and_no_traceback(tmp_path):
    run = course_rl(
        "train", "--run", "PPX", "--env", "CartPole-v1", "--storage-path", "results", cwd=tmp_path
    )
    assert run.returncode == 2
    assert run.stderr.strip() == (
        "course-rl train: error: Unknown algorithm 'PPX'. Did you mean 'PPO'? "
        f"Available: {', '.join(ALGORITHMS)}."
    )
    assert not (tmp_path / "results").exists()  # stopped before Ray and Tune started


@pytest.mark.parametrize(
    "args, message",
    [
        (["--config", '{"lr": }'], "--config is not valid JSON"),
        (["--stop", "[1]"], "--stop should be a JSON object"),
        (
            ["--stop", '{"episode_reward_mean": "high"}'],
            "Stop criterion 'episode_reward_mean' should be a number",
        ),
        (
            ["--config", '{"num_worker": 1}'],
            "Unknown config key 'num_worker'. Did you mean 'num_workers'?",
        ),
        (["--config", '{"lr": "fast"}'], "Config key 'lr' expects a float"),
        (["--env", "CartPole-v9"], "Unknown environment 'CartPole-v9'"),
        (["-f", "no_such_file.yaml"], "No such file: 'no_such_file.yaml'"),
    ],
    ids=[
        "bad-json",
        "stop-not-a-dict",
        "stop-not-a-number",
        "unknown-config-key",
        "wrong-type",
        "unknown-env",
        "missing-file",
    ],
)
def test_train_mistakes_exit_2_with_one_clear_line(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    for option, value in {"--run": "PG", "--env": "CartPole-v1"}.items():
        if option not in args:
            args = [*args, option, value]
    assert main(["train", *args, "--storage-path", "results"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("course-rl train: error: ") and message in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "results").exists()


def test_experiment_file_with_an_unknown_key_names_the_valid_ones(tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text(
        "cartpole-pg:\n  run: PG\n  env: CartPole-v1\n  stopp: {training_iteration: 1}\n"
    )
    assert main(["train", "-f", str(tmp_path / "bad.yaml")]) == 2
    assert (
        "unknown key 'stopp' in experiment 'cartpole-pg'. Valid keys: run, env, stop"
        in capsys.readouterr().err
    )


def test_misspelled_stop_metric_stops_the_run_and_names_the_metric():
    stop = _stop_criteria({"episode_reward_man": 100})
    result = {"training_iteration": 1, "episode_reward_mean": 21.5, "info": {"learner": {}}}
    assert stop("trial", result) and stop.stop_all()
    assert "Unknown --stop key 'episode_reward_man'" in stop.unknown_key_error
    assert "Did you mean 'episode_reward_mean'?" in stop.unknown_key_error


def test_stop_criteria_compare_nested_metrics_like_tune():
    stop = _stop_criteria({"info/learner/loss": 0.5})
    assert not stop("trial", {"info": {"learner": {"loss": 0.4}}})
    assert stop("trial", {"info": {"learner": {"loss": 0.5}}}) and not stop.stop_all()


def test_a_trial_needing_more_cpus_than_ray_has_is_refused_with_both_fixes():
    from course_lib.agents.pg import PGTrainer

    with pytest.raises(
        UsageError,
        match=r"num_workers=2 needs 3 CPUs .* but Ray has 2\. Pass --num-cpus 3 .*"
        r"--config '\{\"num_workers\": 1\}'",
    ):
        _check_cpus(PGTrainer, {"env": "CartPole-v1", "num_workers": 2}, cpus=2)
    _check_cpus(PGTrainer, {"env": "CartPole-v1", "num_workers": 1}, cpus=2)


def test_es_is_told_to_use_fewer_tasks_not_fewer_workers():
    from course_lib.agents.es import ESTrainer

    with pytest.raises(
        UsageError,
        match=r"num_tasks=4 needs 5 CPUs \(the trainer's and one per task\) but Ray has 2\. "
        r"Pass --num-cpus 5 .*--config '\{\"num_tasks\": 1\}'",
    ):
        _check_cpus(ESTrainer, {"env": "CartPole-v1", "num_tasks": 4}, cpus=2)


def test_list_shows_algorithms_and_tuned_examples(tmp_path, monkeypatch, capsys):
    (tmp_path / "tuned_examples").mkdir()
    (tmp_path / "tuned_examples" / "cartpole-pg.yaml").write_text(EXPERIMENT_FILE)
    monkeypatch.chdir(tmp_path)
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("PG", "A2C", "PPO", "DQN", "DDPG", "TD3", "SAC", "MARWIL", "BC"):
        assert re.search(rf"^  {name} +\S", out, re.M)
    assert re.search(r"cartpole-pg\.yaml +PG on CartPole-v1", out)
