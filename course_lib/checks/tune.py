"""Grader for notebooks/14_tune.ipynb: a learning-rate search with Ray Tune.

The grader runs the learner's search into a fresh folder and then reads the experiment back from
disk itself (``tune.ExperimentAnalysis``), so it judges what Tune recorded, not what the function
says it did.
"""

from __future__ import annotations

import glob
import math
import os
import shutil
import tempfile

from course_lib.validation import is_real_number

from ._common import CheckFailed, LearnerCrashed, passed, require_callable, require_ray
from ._learner_calls import call_learner

# What check_tune_search asks for: one trial per learning rate, each stopped after ITERATIONS.
LRS = (0.01, 0.0001)
ITERATIONS = 2

# How long your search may run before the check stops it. A right search takes 5-15 s here
# (two trials of two small iterations, plus starting their actors); a slow laptop a few times that.
TIME_LIMIT_S = 180.0


def _experiment_folders(storage_path: str) -> list[str]:
    """Folders under ``storage_path`` that hold a Tune experiment (an experiment_state-*.json
    file)."""
    states = glob.glob(os.path.join(storage_path, "*", "experiment_state-*.json"))
    return sorted({os.path.dirname(state) for state in states})


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([path, folder]) == folder


def _same_numbers(got: list, want: list) -> bool:
    """Do ``got`` and ``want`` hold the same numbers, in any order?"""
    try:
        return len(got) == len(want) and all(
            math.isclose(float(a), float(b)) for a, b in zip(sorted(got), sorted(want), strict=True)
        )
    except (TypeError, ValueError):
        return False


def _last_error_line(trial) -> str:
    """The last line of a failed trial's error.txt (the exception), or '' if there is none."""
    path = os.path.join(trial.path, "error.txt")
    if not os.path.isfile(path):
        return ""
    with open(path) as f:
        lines = [line.strip() for line in f.read().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def check_tune_search(search_lr) -> None:
    """Exercise 14.1: grid search over lrs, stop after `iterations`, return the best lr and its
    checkpoint."""
    require_callable("check_tune_search", "search_lr", search_lr)
    require_ray("check_tune_search")
    from ray import tune

    from course_lib.agents import get_trainer_class
    from course_lib.agents.checkpoint import load_metadata

    lrs, iterations = list(LRS), ITERATIONS
    storage = tempfile.mkdtemp(prefix="check13-")
    try:
        search_error = None
        try:
            returned = call_learner(
                "14.1",
                "search_lr(storage_path, lrs, iterations)",
                search_lr,
                storage,
                lrs,
                iterations,
                seconds=TIME_LIMIT_S,
                hint="a stop condition that no trial reaches, so the trials never end: "
                'stop={"training_iteration": iterations} ends each one after `iterations`',
            )
        except LearnerCrashed as crash:  # a failed trial makes tune.run raise; the files say why
            search_error = crash

        folders = _experiment_folders(storage)
        if not folders:
            if search_error is not None:
                raise search_error
            raise CheckFailed(
                "14.1",
                "nothing was written under the storage_path the check gave you. Pass "
                "storage_path=storage_path to tune.run (or "
                "tune.RunConfig); otherwise Tune writes to ~/ray_results.",
            )
        if len(folders) > 1:
            raise CheckFailed(
                "14.1",
                f"found {len(folders)} experiments under storage_path; run "
                "one search (one tune.run call) with all the learning rates.",
            )
        analysis = tune.ExperimentAnalysis(folders[0])
        trials = analysis.trials

        trial_lrs = [trial.config.get("lr") for trial in trials]
        if not _same_numbers(trial_lrs, lrs):
            hint = "Put the values in tune.grid_search(lrs): Tune then makes one trial per value."
            if len(trials) == 1 and isinstance(trial_lrs[0], (list, tuple, dict)):
                hint = "Your one trial got the whole list as its lr. " + hint
            raise CheckFailed(
                "14.1",
                f"expected one trial per learning rate {lrs}, found "
                f"{len(trials)} trial(s) with lr {trial_lrs}. {hint}",
            )
        failed = [trial for trial in trials if trial.status != "TERMINATED"]
        if failed:
            raise CheckFailed(
                "14.1",
                f"the trial with lr={failed[0].config['lr']} ended as {failed[0].status}, not "
                f"TERMINATED: {_last_error_line(failed[0]) or 'see its error above'}",
            ) from search_error
        if search_error is not None:
            raise search_error

        if not (isinstance(returned, (tuple, list)) and len(returned) == 2):
            raise CheckFailed(
                "14.1", f"return a pair (best_lr, checkpoint_path); got {returned!r:.80}."
            )
        best_lr, checkpoint_path = returned

        ran = {
            trial.config["lr"]: (trial.last_result or {}).get("training_iteration")
            for trial in trials
        }
        if any(n != iterations for n in ran.values()):
            raise CheckFailed(
                "14.1",
                f"each trial should stop after exactly {iterations} "
                f"iterations; they ran {ran} (lr: iterations). "
                'Use stop={"training_iteration": iterations}.',
            )

        last_reward = {
            trial.config["lr"]: trial.last_result["episode_reward_mean"] for trial in trials
        }
        best_value = max(last_reward.values())
        winners = [lr for lr, value in last_reward.items() if value == best_value]
        if not is_real_number(best_lr):
            raise CheckFailed(
                "14.1",
                f"best_lr should be a number (the best trial's config['lr']); got {best_lr!r:.80}.",
            )
        if not any(math.isclose(best_lr, lr) for lr in winners):
            table = ", ".join(f"lr={lr}: {value:.2f}" for lr, value in last_reward.items())
            hint = (
                "Take the trial with the highest last episode_reward_mean: "
                'get_best_trial("episode_reward_mean", "max").'
            )
            if math.isclose(best_lr, min(last_reward, key=last_reward.get)):
                hint = (
                    "You returned the worst trial's lr: use "
                    'mode="max" (a higher return is better).'
                )
            raise CheckFailed(
                "14.1",
                f"the last episode_reward_mean of each trial was {table}, "
                f"so the best lr is {winners[0]}, not {best_lr}. {hint}",
            )
        best_trial = next(trial for trial in trials if math.isclose(trial.config["lr"], best_lr))

        if isinstance(checkpoint_path, tune.Checkpoint):
            raise CheckFailed(
                "14.1",
                "you returned a ray.tune.Checkpoint; return "
                "its folder, checkpoint.path (a string).",
            )
        if checkpoint_path is None:
            raise CheckFailed(
                "14.1",
                "checkpoint_path is None: the best trial has no checkpoint. Pass checkpoint_config="
                "tune.CheckpointConfig(checkpoint_at_end=True) (the 2021 RLlib tutorial's "
                "checkpoint_at_end=True does the same), so "
                "that every trial saves one when it stops.",
            )
        if not isinstance(checkpoint_path, (str, os.PathLike)) or not os.path.isdir(
            checkpoint_path
        ):
            raise CheckFailed(
                "14.1",
                f"checkpoint_path should be an existing folder; got {checkpoint_path!r:.120}.",
            )
        checkpoint_path = os.fspath(checkpoint_path)
        if not _inside(checkpoint_path, best_trial.path):
            owner = next((t for t in trials if _inside(checkpoint_path, t.path)), None)
            where = (
                f"the trial with lr={owner.config['lr']}"
                if owner
                else "no trial of this experiment"
            )
            raise CheckFailed(
                "14.1",
                f"the checkpoint belongs to {where}, not to the best trial "
                f"(lr={best_trial.config['lr']}). Ask for the best trial's "
                "checkpoint: analysis.get_best_checkpoint(best_trial, ...).path.",
            )

        try:
            metadata = load_metadata(checkpoint_path)
        except FileNotFoundError:
            raise CheckFailed(
                "14.1",
                f"{checkpoint_path} is not a checkpoint folder (no metadata.json in it). Return "
                "checkpoint.path of the Checkpoint that "
                "get_best_checkpoint gave you, not the trial folder.",
            ) from None
        trainer = get_trainer_class(metadata["trainer"])(
            config={**best_trial.config, "logger_config": {"logdir": storage}}
        )
        try:
            trainer.restore(checkpoint_path)
            restored_iteration = trainer.iteration
        finally:
            trainer.stop()
    finally:
        shutil.rmtree(storage, ignore_errors=True)
    passed(
        "14.1",
        f"{len(trials)} trials (lr {', '.join(str(lr) for lr in lrs)}), each stopped after "
        f"{iterations} iterations; best lr {best_lr} (last episode_reward_mean {best_value:.1f}), "
        f"and its checkpoint from iteration {restored_iteration} "
        f"loads into a fresh {metadata['trainer']} trainer.",
    )
