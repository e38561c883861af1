"""Grader of lesson 14 accepts right answers and names the mistake in wrong ones.

A Tune search costs seconds, so most wrong answers reuse one recorded experiment: they copy it into
the folder the grader hands them and return something wrong about it.
"""

from __future__ import annotations

import os
import shutil

import pytest

from course_lib import checks
from course_lib.checks import tune as tune_check

# Every test here runs a real Tune search or replays the one recorded below.
pytestmark = pytest.mark.slow

PG_CONFIG = {
    "env": "CartPole-v1",
    "seed": 0,
    "num_envs_per_worker": 4,
    "rollout_fragment_length": 100,
    "train_batch_size": 400,
    "model": {"fcnet_hiddens": [32]},
}


def right_search(storage_path, lrs, iterations):
    from ray import tune

    from course_lib.agents.pg import PGTrainer

    analysis = tune.run(
        PGTrainer,
        config={**PG_CONFIG, "lr": tune.grid_search(lrs)},
        stop={"training_iteration": iterations},
        checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=True),
        storage_path=storage_path,
        verbose=0,
    )
    best_trial = analysis.get_best_trial("episode_reward_mean", "max")
    return best_trial.config["lr"], analysis.get_best_checkpoint(
        best_trial, "episode_reward_mean", "max"
    ).path


@pytest.fixture(scope="module")
def recorded(ray_session, tmp_path_factory):
    """One real search (the grader's learning rates and iterations), kept to be copied by the wrong
    answers."""
    storage = str(tmp_path_factory.mktemp("recorded"))
    right_search(storage, list(tune_check.LRS), tune_check.ITERATIONS)
    return storage


def replaying(recorded, answer):
    """A search_lr that copies the recorded experiment into storage_path and returns
    answer(analysis)."""
    from ray import tune

    def search_lr(storage_path, lrs, iterations):
        shutil.copytree(recorded, storage_path, dirs_exist_ok=True)
        experiment = next(os.path.join(storage_path, name) for name in os.listdir(storage_path))
        return answer(tune.ExperimentAnalysis(experiment))

    return search_lr


def best_of(analysis):
    trial = analysis.get_best_trial("episode_reward_mean", "max")
    return trial, analysis.get_best_checkpoint(trial, "episode_reward_mean", "max")


def worst_of(analysis):
    trial = analysis.get_best_trial("episode_reward_mean", "min")
    return trial, analysis.get_best_checkpoint(trial, "episode_reward_mean", "max")


def test_the_recorded_trials_differ(recorded):
    from ray import tune

    analysis = tune.ExperimentAnalysis(os.path.join(recorded, os.listdir(recorded)[0]))
    rewards = {trial.last_result["episode_reward_mean"] for trial in analysis.trials}
    assert len(rewards) == len(tune_check.LRS), (
        "the best and the worst trial must differ for the mode='min' test to mean anything"
    )


def test_accepts_the_best_trials_lr_and_checkpoint(recorded, capsys):
    def answer(analysis):
        trial, checkpoint = best_of(analysis)
        return trial.config["lr"], checkpoint.path

    checks.check_tune_search(replaying(recorded, answer))
    assert "Exercise 14.1 passed" in capsys.readouterr().out


def test_accepts_a_tuner_search(ray_session, capsys):
    def tuner_search(storage_path, lrs, iterations):
        from ray import tune

        from course_lib.agents.pg import PGTrainer

        tuner = tune.Tuner(
            PGTrainer,
            param_space={**PG_CONFIG, "lr": tune.grid_search(lrs)},
            tune_config=tune.TuneConfig(metric="episode_reward_mean", mode="max"),
            run_config=tune.RunConfig(
                storage_path=storage_path,
                stop={"training_iteration": iterations},
                checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=True),
                verbose=0,
            ),
        )
        best = tuner.fit().get_best_result()
        return best.config["lr"], best.checkpoint.path

    checks.check_tune_search(tuner_search)
    assert "Exercise 14.1 passed" in capsys.readouterr().out


def test_detects_a_list_instead_of_grid_search(ray_session):
    def list_search(storage_path, lrs, iterations):
        from ray import tune

        from course_lib.agents.pg import PGTrainer

        tune.run(
            PGTrainer,
            config={**PG_CONFIG, "lr": lrs},
            stop={"training_iteration": iterations},
            storage_path=storage_path,
            verbose=0,
        )

    with pytest.raises(checks.CheckFailed, match=r"whole list as its lr.*tune\.grid_search\(lrs\)"):
        checks.check_tune_search(list_search)


def test_detects_the_wrong_number_of_iterations(recorded, monkeypatch):
    monkeypatch.setattr(tune_check, "ITERATIONS", tune_check.ITERATIONS + 1)

    def answer(analysis):
        trial, checkpoint = best_of(analysis)
        return trial.config["lr"], checkpoint.path

    with pytest.raises(
        checks.CheckFailed,
        match=r'stop after exactly 3 iterations.*stop=\{"training_iteration": iterations\}',
    ):
        checks.check_tune_search(replaying(recorded, answer))


def test_detects_mode_min(recorded):
    def answer(analysis):
        trial, checkpoint = worst_of(analysis)
        return trial.config["lr"], checkpoint.path

    with pytest.raises(checks.CheckFailed, match='worst trial\'s lr: use mode="max"'):
        checks.check_tune_search(replaying(recorded, answer))


def test_detects_a_checkpoint_object(recorded):
    def answer(analysis):
        trial, checkpoint = best_of(analysis)
        return trial.config["lr"], checkpoint

    with pytest.raises(checks.CheckFailed, match=r"return its folder, checkpoint\.path"):
        checks.check_tune_search(replaying(recorded, answer))


def test_detects_a_missing_checkpoint(recorded):
    def answer(analysis):
        trial, _ = best_of(analysis)
        return trial.config["lr"], None

    with pytest.raises(checks.CheckFailed, match="checkpoint_at_end=True"):
        checks.check_tune_search(replaying(recorded, answer))


def test_detects_another_trials_checkpoint(recorded):
    def answer(analysis):
        best, _ = best_of(analysis)
        _, other_checkpoint = worst_of(analysis)
        return best.config["lr"], other_checkpoint.path

    with pytest.raises(
        checks.CheckFailed, match=r"belongs to the trial with lr=\S+, not to the best trial"
    ):
        checks.check_tune_search(replaying(recorded, answer))


def test_detects_the_trial_folder_instead_of_the_checkpoint(recorded):
    def answer(analysis):
        trial, _ = best_of(analysis)
        return trial.config["lr"], trial.path

    with pytest.raises(checks.CheckFailed, match="not a checkpoint folder"):
        checks.check_tune_search(replaying(recorded, answer))


def test_detects_results_written_elsewhere(ray_session):
    with pytest.raises(checks.CheckFailed, match="Pass storage_path=storage_path"):
        checks.check_tune_search(lambda storage_path, lrs, iterations: (lrs[0], storage_path))


def test_detects_a_missing_pair(recorded):
    with pytest.raises(checks.CheckFailed, match=r"return a pair \(best_lr, checkpoint_path\)"):
        checks.check_tune_search(
            replaying(recorded, lambda analysis: best_of(analysis)[0].config["lr"])
        )


def test_wants_the_function_itself():
    with pytest.raises(TypeError, match="Pass the function without calling it"):
        checks.check_tune_search((0.01, "/tmp"))
