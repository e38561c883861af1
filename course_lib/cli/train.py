"""``course-rl train``: check the command line in this process, then run the experiment with Tune.

The results folder gets params.json, result.json, progress.csv, TensorBoard events and
checkpoints, as with the 2021 RLlib tutorial's ``rllib train``. Introduced in
notebooks/12_trainers.ipynb.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from course_lib.cli.common import (
    UsageError,
    check_config,
    first_grid_values,
    parse_json_dict,
    read_experiment_file,
    reported_as_usage_error,
    trainer_class,
)
from course_lib.validation import did_you_mean, is_real_number

DEFAULT_STOP = {"training_iteration": 10}

TRAIN_EXAMPLES = """\
examples:
  course-rl train --run PG --env CartPole-v1
  course-rl train --run PPO --env CartPole-v1 --stop '{"episode_reward_mean": 150}' \\
      --config '{"num_workers": 1, "lr": 0.0003}' --checkpoint-freq 5
  course-rl train -f ppo-cartpole.yaml --stop '{"training_iteration": 3}'
      (FILE: a path, or the name of a file in tuned_examples/)

tuned-example file (one experiment; command-line options override it):
  cartpole-ppo:
    env: CartPole-v1
    run: PPO
    stop: {episode_reward_mean: 150}
    config: {num_workers: 1, lr: 0.0003}
"""


def train_command(args: argparse.Namespace) -> int:
    """``course-rl train``: check everything in this process, then run the experiment with Tune.

    Introduced in notebooks/12_trainers.ipynb.
    """
    for option, minimum in (("checkpoint_freq", 0), ("num_cpus", 1)):
        if getattr(args, option) is not None and getattr(args, option) < minimum:
            raise UsageError(
                f"--{option.replace('_', '-')} must be at least {minimum}, got "
                f"{getattr(args, option)}."
            )
    experiment_name, experiment = (
        read_experiment_file(args.config_file) if args.config_file else (None, {})
    )
    command_line_config = parse_json_dict(args.config, "--config")
    stop = (
        parse_json_dict(args.stop, "--stop")
        if args.stop is not None
        else experiment.get("stop") or DEFAULT_STOP
    )
    for key, value in stop.items():
        if not is_real_number(value):
            raise UsageError(
                f"Stop criterion {key!r} should be a number (training stops once the result "
                f"reaches it), got {value!r}."
            )

    # Imported only now: a mistyped option should not wait for torch and Ray to load.
    import ray
    from ray import tune

    from course_lib import init_ray
    from course_lib.agents.config import merge_config

    config = merge_config(experiment.get("config") or {}, command_line_config)
    if args.seed is not None:
        config["seed"] = args.seed
    run = args.run or experiment.get("run")
    config["env"] = args.env or config.get("env") or experiment.get("env")
    if not run:
        raise UsageError(
            "Which algorithm? Pass --run PG (or A2C, PPO, DQN), or -f a tuned-example file "
            "that names one."
        )
    if not config["env"]:
        raise UsageError(
            "Which environment? Pass --env CartPole-v1 (any gymnasium id or registered course env)."
        )
    trainer_cls = trainer_class(run)
    check_config(trainer_cls, config)
    checkpoint_config = tune.CheckpointConfig(
        checkpoint_frequency=_first_given(
            args.checkpoint_freq, experiment.get("checkpoint_freq"), 0
        ),
        checkpoint_at_end=_first_given(
            args.checkpoint_at_end, experiment.get("checkpoint_at_end"), True
        ),
    )

    if stop is DEFAULT_STOP:
        print(f"No --stop given: stopping after {json.dumps(DEFAULT_STOP)}.")
    # Tune's newer console output prints a banner and a staging-folder path; the legacy one at
    # verbose=0 prints nothing, leaving the console to PrintProgress and the summary.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    stop_criteria = _stop_criteria(stop)
    try:
        with reported_as_usage_error(ValueError):
            init_ray(
                num_cpus=args.num_cpus,
                runtime_env={"worker_process_setup_hook": _quiet_checkpoint_logs},
            )
        _check_cpus(trainer_cls, config, ray.cluster_resources().get("CPU", 0))
        analysis = tune.run(
            trainer_cls,
            name=args.name or experiment_name,
            config=config,
            stop=stop_criteria,
            checkpoint_config=checkpoint_config,
            storage_path=os.path.abspath(os.path.expanduser(args.storage_path)),
            verbose=0,
            callbacks=[_progress_callback()],
            raise_on_failed_trial=False,
        )
    finally:
        ray.shutdown()
    if stop_criteria.unknown_key_error:
        raise UsageError(stop_criteria.unknown_key_error)
    return _print_summary(analysis, run, config["env"])


def _quiet_checkpoint_logs() -> None:
    """Runs in each Ray worker: Tune's trainables otherwise log a line per checkpoint they write."""
    import logging

    logging.getLogger("ray.train").setLevel(logging.WARNING)


def _check_cpus(trainer_cls: type, config: dict, cpus: float) -> None:
    """Fail now if one trial needs more CPUs than Ray has: Tune would wait for them forever."""
    trial_config = first_grid_values(config)
    needed = trainer_cls.default_resource_request(trial_config).required_resources.get("CPU", 0)
    if needed > cpus:
        merged = trainer_cls.merge_trainer_configs(trainer_cls._default_config, trial_config)
        # ES spreads its episodes over plain tasks ("num_tasks") and keeps num_workers at 0.
        key, what = (
            ("num_tasks", "task") if "num_tasks" in merged else ("num_workers", "rollout worker")
        )
        fitting = max(0 if key == "num_workers" else 1, merged[key] - math.ceil(needed - cpus))
        raise UsageError(
            f"{trainer_cls._name} with {key}={merged[key]} needs {needed:g} CPUs (the "
            f"trainer's and one per {what}) but Ray has {cpus:g}. Pass --num-cpus "
            f"{math.ceil(needed)} (Ray then shares the cores), or --config "
            f"'{{\"{key}\": {fitting}}}'."
        )


def _first_given(*values):
    return next(value for value in values if value is not None)


def _progress_callback():
    """A Tune callback printing one line per iteration, instead of Tune's wide, repeating table."""
    from ray import tune

    class PrintProgress(tune.Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            prefix = f"{trial.trial_id}  " if len(trials) > 1 else ""
            print(
                f"{prefix}iter {result['training_iteration']:4d}  "
                f"timesteps {result.get('timesteps_total') or 0:8d}  "
                f"reward_mean {result.get('episode_reward_mean', math.nan):8.2f}  "
                f"time {result.get('time_total_s', 0.0):7.1f}s",
                flush=True,
            )

    return PrintProgress()


def _stop_criteria(stop: dict):
    """Tune's ``stop`` dict as a Stopper that also catches a misspelled metric.

    Tune stops a trial once ``result[key] >= value`` for any key (nested keys written as
    ``info/learner/x``), but it ignores a key that no result holds, so a typo would train forever.
    Here such a key stops the experiment at its first result and is remembered, for
    ``unknown_key_error``.
    """
    from ray import tune
    from ray.tune.utils import flatten_dict

    class StopCriteria(tune.Stopper):
        def __init__(self):
            self.unknown_key_error = None

        def __call__(self, trial_id, result):
            flat = flatten_dict(result, delimiter="/")
            for key, value in stop.items():
                if key not in flat:
                    hint = did_you_mean(key, flat) or f" Results hold: {', '.join(sorted(flat))}."
                    self.unknown_key_error = (
                        f"Unknown --stop key {key!r}: no result has it, so the run stopped "
                        f"after one iteration.{hint}"
                    )
                    return True
                if flat[key] >= value:
                    return True
            return False

        def stop_all(self):
            return self.unknown_key_error is not None

    return StopCriteria()


def _print_summary(analysis, run: str, env: str) -> int:
    """Where the results and checkpoints are; exit code 1 if a trial failed."""
    from ray.air.constants import EXPR_ERROR_FILE
    from ray.tune.experiment.trial import Trial

    print(f"\nExperiment folder: {analysis.experiment_path}")
    print(f"TensorBoard:       tensorboard --logdir {analysis.experiment_path}")
    failed = 0
    for trial in analysis.trials:
        print(f"\nTrial {trial} ({trial.status.lower()}): {trial.path}")
        if trial.status == Trial.ERROR:
            failed += 1
            lines = [line for line in (trial.get_error() or "").splitlines() if line.strip()]
            print(f"  failed: {lines[-1] if lines else 'see the traceback above'}", file=sys.stderr)
            print(f"  full traceback: {Path(trial.path, EXPR_ERROR_FILE)}", file=sys.stderr)
            continue
        if trial.checkpoint is None:
            print("  no checkpoint (use --checkpoint-freq N or --checkpoint-at-end)")
            continue
        last = trial.checkpoint.path
        print(f"  last checkpoint: {last}")
        best = analysis.get_best_checkpoint(trial, metric="episode_reward_mean", mode="max")
        if best is not None and best.path != last:
            print(f"  best checkpoint (episode_reward_mean): {best.path}")
        print(f"  replay it:       course-rl rollout {last} --run {run} --env {env}")
    return 1 if failed else 0
