"""``course-rl``: the 2021 RLlib tutorial's ``rllib train`` / ``rllib rollout`` for course_lib's algorithms.

- ``course-rl train --run PPO --env CartPole-v1``: train with Ray Tune; the results folder gets
  params.json, result.json, progress.csv, TensorBoard events and checkpoints.
- ``course-rl rollout CHECKPOINT``: replay a checkpoint in an env and print each episode's return.
- ``course-rl list``: the algorithms and the tuned examples.

Run it as ``course-rl ...`` or ``python -m course_lib.cli ...``. A mistake on the command line (bad
JSON, an unknown algorithm, env or config key, a folder that is not a checkpoint) ends with one
line on stderr and exit code 2. Introduced in notebooks/11_trainers.ipynb.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

DEFAULT_STOP = {"training_iteration": 10}
DEFAULT_ROLLOUT_EPISODES = 10
# The keys of one experiment in a tuned-example YAML file (RLlib's format).
EXPERIMENT_KEYS = ("run", "env", "stop", "config", "checkpoint_freq", "checkpoint_at_end")
# Trainer settings a replay overrides: sample in this process, and no evaluation workers.
ROLLOUT_OVERRIDES = {"num_workers": 0, "evaluation_interval": None, "evaluation_num_workers": 0}

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

ROLLOUT_EXAMPLES = """\
examples:
  course-rl rollout ~/ray_results/cartpole-pg/PG_CartPole-v1_5b27b_00000_0_2026-11-22_01-09-24/checkpoint_000004
  course-rl rollout ~/ray_results/cartpole-pg/PG_CartPole-v1_5b27b_00000_0_2026-11-22_01-09-24   (latest checkpoint)
  course-rl rollout CHECKPOINT --run PG --env CartPole-v1 --episodes 3 --explore

--run and --env default to the checkpoint's own algorithm and env.
"""


class UsageError(Exception):
    """A mistake on the command line: reported as one line on stderr, exit code 2."""


@contextmanager
def _reported_as_usage_error(*kinds: type[BaseException]):
    """Turn the errors a wrong argument causes (e.g. an unknown config key) into a ``UsageError``."""
    try:
        yield
    except kinds as error:
        raise UsageError(" ".join(str(error).split())) from None


def main(argv: list[str] | None = None) -> int:
    """Run ``course-rl`` with ``argv`` (default: the command line); returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except UsageError as error:
        print(f"course-rl {args.command}: error: {error}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    """The ``course-rl`` parser with its ``train``, ``rollout`` and ``list`` subcommands."""
    from course_lib import __version__

    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="course-rl",
        formatter_class=formatter,
        description="Train course_lib's RL algorithms with Ray Tune, and replay what they learned.",
        epilog="examples:\n  course-rl list\n  course-rl train --run PG --env CartPole-v1\n"
        "  course-rl rollout ~/ray_results/.../checkpoint_000010 --episodes 5\n\n"
        "Run 'course-rl COMMAND --help' for the options of each command.",
    )
    parser.add_argument(
        "--version", action="version", version=f"course-rl (course_lib {__version__})"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train",
        help="train an algorithm with Ray Tune",
        formatter_class=formatter,
        epilog=TRAIN_EXAMPLES,
        description="Train an algorithm on an env with Ray Tune, printing one line per iteration;\n"
        "at the end, say where the results and checkpoints are.",
    )
    train.add_argument("--run", help="algorithm: PG, A2C, PPO or DQN (see 'course-rl list')")
    train.add_argument(
        "--env", help="env: a gymnasium id such as CartPole-v1, or a registered course env"
    )
    train.add_argument(
        "--config",
        default="{}",
        metavar="JSON",
        help="trainer config overrides as JSON, e.g. '{\"lr\": 0.001}'",
    )
    train.add_argument(
        "--stop",
        metavar="JSON",
        help=f"stop criteria as JSON (default: {json.dumps(DEFAULT_STOP)})",
    )
    train.add_argument(
        "-f", "--config-file", metavar="FILE", help="a tuned-example YAML file (see below)"
    )
    train.add_argument(
        "--checkpoint-freq",
        type=int,
        metavar="N",
        help="checkpoint every N iterations (default: 0, never)",
    )
    train.add_argument(
        "--checkpoint-at-end",
        action=argparse.BooleanOptionalAction,
        help="checkpoint when training stops (default: yes)",
    )
    train.add_argument(
        "--storage-path",
        default="~/ray_results",
        metavar="DIR",
        help="where the results folder goes (default: ~/ray_results)",
    )
    train.add_argument(
        "--name",
        help="experiment name: the folder under --storage-path (default: Tune's, or the file's)",
    )
    train.add_argument(
        "--num-cpus", type=int, metavar="N", help="CPUs Ray may use (default: all cores)"
    )
    train.add_argument(
        "--seed", type=int, help="seed torch, numpy and the envs, for a reproducible run"
    )
    train.set_defaults(handler=train_command)

    rollout = commands.add_parser(
        "rollout",
        help="replay a checkpoint in an env",
        formatter_class=formatter,
        epilog=ROLLOUT_EXAMPLES,
        description="Restore a checkpoint and run episodes with its policy, printing each return.",
    )
    rollout.add_argument(
        "checkpoint",
        metavar="CHECKPOINT",
        help="a checkpoint_* folder, or a trial folder (its latest checkpoint)",
    )
    rollout.add_argument(
        "--run", help="algorithm that wrote the checkpoint (default: read from the checkpoint)"
    )
    rollout.add_argument("--env", help="env to play in (default: the env it was trained on)")
    rollout.add_argument(
        "--episodes",
        type=int,
        metavar="N",
        help=f"stop after N episodes (default: {DEFAULT_ROLLOUT_EPISODES} unless --steps is given)",
    )
    rollout.add_argument("--steps", type=int, metavar="N", help="stop after N env steps")
    rollout.add_argument(
        "--config", default="{}", metavar="JSON", help="trainer config overrides as JSON"
    )
    rollout.add_argument(
        "--explore",
        action="store_true",
        help="sample actions as in training (default: the most likely action)",
    )
    rollout.add_argument(
        "--seed", type=int, help="seed the env's first reset and the action sampling"
    )
    rollout.set_defaults(handler=rollout_command)

    listing = commands.add_parser(
        "list",
        help="list the algorithms and tuned examples",
        description="List the algorithms and the tuned-example files.",
    )
    listing.set_defaults(handler=list_command)
    return parser


# --- train ------------------------------------------------------------------------------------


def train_command(args: argparse.Namespace) -> int:
    """``course-rl train``: check everything in this process, then run the experiment with Tune."""
    experiment_name, experiment = (
        _read_experiment_file(args.config_file) if args.config_file else (None, {})
    )
    command_line_config = _parse_json_dict(args.config, "--config")
    stop = (
        _parse_json_dict(args.stop, "--stop")
        if args.stop is not None
        else experiment.get("stop") or DEFAULT_STOP
    )
    for key, value in stop.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UsageError(
                f"Stop criterion {key!r} should be a number (training stops once the result reaches it), got {value!r}."
            )

    # Imported only now: a mistyped option should not wait for torch and Ray to load.
    import ray
    from ray import tune

    from course_lib import init_ray
    from course_lib.agents.config import merge_dicts

    config = merge_dicts(experiment.get("config") or {}, command_line_config)
    if args.seed is not None:
        config["seed"] = args.seed
    run = args.run or experiment.get("run")
    config["env"] = args.env or config.get("env") or experiment.get("env")
    if not run:
        raise UsageError(
            "Which algorithm? Pass --run PG (or A2C, PPO, DQN), or -f a tuned-example file that names one."
        )
    if not config["env"]:
        raise UsageError(
            "Which environment? Pass --env CartPole-v1 (any gymnasium id or registered course env)."
        )
    trainer_cls = _trainer_class(run)
    _check_config(trainer_cls, config)
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
        with _reported_as_usage_error(ValueError):
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
    """Runs in each Ray worker: Tune's trainables otherwise log a line for every checkpoint they write."""
    import logging

    logging.getLogger("ray.train").setLevel(logging.WARNING)


def _read_experiment_file(path: str) -> tuple[str, dict]:
    """``(name, experiment)`` from a tuned-example YAML file holding exactly one experiment."""
    import yaml

    file = _find_experiment_file(path)
    try:
        experiments = yaml.safe_load(file.read_text())
    except yaml.YAMLError as error:
        raise UsageError(f"{file} is not valid YAML: {' '.join(str(error).split())}") from None
    if (
        not isinstance(experiments, dict)
        or len(experiments) != 1
        or not isinstance(next(iter(experiments.values())), dict)
    ):
        raise UsageError(
            f"{file} should hold one experiment, 'name: {{run: PPO, env: CartPole-v1, stop: {{...}}, "
            f"config: {{...}}}}'; found {type(experiments).__name__} with {len(experiments or ())} entries."
        )
    name, experiment = next(iter(experiments.items()))
    for key, value in experiment.items():
        if key not in EXPERIMENT_KEYS:
            raise UsageError(
                f"{file}: unknown key {key!r} in experiment {name!r}. Valid keys: {', '.join(EXPERIMENT_KEYS)}."
            )
        if key in ("stop", "config") and not isinstance(value, dict):
            raise UsageError(
                f"{file}: {key!r} of experiment {name!r} should be a mapping such as {{lr: 0.001}}, got {value!r}."
            )
    return str(name), experiment


def _find_experiment_file(path: str) -> Path:
    """``path`` itself, or a file of that name in a tuned_examples/ folder."""
    candidates = [Path(path).expanduser()] + [folder / path for folder in _tuned_example_folders()]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise UsageError(f"No such file: {path!r}. 'course-rl list' shows the tuned examples.")


def _parse_json_dict(text: str, option: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        hint = " JSON needs double quotes around keys and strings." if "'" in text else ""
        raise UsageError(
            f"{option} is not valid JSON ({error}): {text!r}.{hint} Example: {option} "
            "'{\"lr\": 0.001}'"
        ) from None
    if not isinstance(value, dict):
        raise UsageError(
            f"{option} should be a JSON object such as '{{\"lr\": 0.001}}', got {text!r}."
        )
    return value


def _trainer_class(run: str) -> type:
    from course_lib.agents import get_trainer_class

    with _reported_as_usage_error(ValueError, ImportError):
        return get_trainer_class(run)


def _check_config(trainer_cls: type, config: dict) -> None:
    """Fail here, before Ray starts, on a config the trainer would refuse (unknown key, env, type)."""
    from course_lib.envs import get_env_creator

    with _reported_as_usage_error(ValueError, TypeError):
        get_env_creator(config["env"])
        merged = trainer_cls.merge_trainer_configs(
            trainer_cls._default_config, _first_grid_values(config)
        )
        if trainer_cls._hooks.get("validate_config"):
            trainer_cls._hooks["validate_config"](merged)


def _check_cpus(trainer_cls: type, config: dict, cpus: float) -> None:
    """Fail now if one trial needs more CPUs than Ray has: Tune would wait for them forever."""
    trial_config = _first_grid_values(config)
    needed = trainer_cls.default_resource_request(trial_config).required_resources.get("CPU", 0)
    if needed > cpus:
        workers = trainer_cls.merge_trainer_configs(trainer_cls._default_config, trial_config)[
            "num_workers"
        ]
        fitting = max(0, workers - math.ceil(needed - cpus))
        raise UsageError(
            f"{trainer_cls._name} with num_workers={workers} needs {needed:g} CPUs (the trainer's and one "
            f"per rollout worker) but Ray has {cpus:g}. Pass --num-cpus {math.ceil(needed)} (Ray then "
            f"shares the cores), or --config '{{\"num_workers\": {fitting}}}'."
        )


def _first_grid_values(config: dict) -> dict:
    """``config`` with each ``{"grid_search": [a, b]}`` replaced by ``a``, so one trial's config can be checked."""

    def first(value):
        if isinstance(value, dict):
            if "grid_search" in value and value["grid_search"]:
                return first(value["grid_search"][0])
            return {key: first(v) for key, v in value.items()}
        return value

    return first(config)


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

    Tune stops a trial once ``result[key] >= value`` for any key (nested keys as ``info/learner/x``),
    but it ignores a key that no result holds, so a typo would train forever. Here such a key
    stops the experiment at its first result and is remembered, for ``unknown_key_error``.
    """
    import difflib

    from ray import tune
    from ray.tune.utils import flatten_dict

    class StopCriteria(tune.Stopper):
        def __init__(self):
            self.unknown_key_error = None

        def __call__(self, trial_id, result):
            flat = flatten_dict(result, delimiter="/")
            for key, value in stop.items():
                if key not in flat:
                    close = difflib.get_close_matches(key, list(flat), n=1)
                    hint = (
                        f" Did you mean {close[0]!r}?"
                        if close
                        else f" Results hold: {', '.join(sorted(flat))}."
                    )
                    self.unknown_key_error = f"Unknown --stop key {key!r}: no result has it, so the run stopped after one iteration.{hint}"
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


# --- rollout ----------------------------------------------------------------------------------


def rollout_command(args: argparse.Namespace) -> int:
    """``course-rl rollout``: restore a checkpoint in this process and play episodes with it."""
    for option in ("episodes", "steps"):
        if getattr(args, option) is not None and getattr(args, option) < 1:
            raise UsageError(f"--{option} must be at least 1, got {getattr(args, option)}.")
    command_line_config = _parse_json_dict(args.config, "--config")

    import logging

    import torch

    from course_lib.agents import checkpoint
    from course_lib.agents.config import merge_dicts
    from course_lib.envs import make_env

    checkpoint_dir = _find_checkpoint(args.checkpoint)
    metadata = checkpoint.load_metadata(checkpoint_dir)
    run = args.run or metadata.get("trainer")
    if run != metadata.get("trainer"):
        raise UsageError(
            f"{checkpoint_dir} was written by a {metadata.get('trainer')!r} trainer, not {run!r}. "
            f"Use --run {metadata.get('trainer')}, or leave --run out."
        )
    trainer_cls = _trainer_class(run)
    config = {
        **merge_dicts(_training_config(checkpoint_dir, trainer_cls), command_line_config),
        **ROLLOUT_OVERRIDES,
    }
    config["env"] = args.env or config.get("env") or metadata.get("env")
    _check_config(trainer_cls, config)
    episodes_wanted = args.episodes or (math.inf if args.steps else DEFAULT_ROLLOUT_EPISODES)
    steps_wanted = args.steps or math.inf

    # A standalone trainer writes a results folder; a replay's is of no use, so it goes to a temporary one.
    with tempfile.TemporaryDirectory(prefix="course-rl-rollout-") as logdir:
        config["logger_config"] = {"logdir": logdir}
        trainer = trainer_cls(config=config)
        try:
            # Tune's Trainable logs each restore at INFO; the line below says the same, readably.
            logging.getLogger("ray.tune.trainable").setLevel(logging.WARNING)
            with _reported_as_usage_error(ValueError):
                trainer.restore(checkpoint_dir)
            if args.seed is not None:
                torch.manual_seed(
                    args.seed
                )  # after restore, which brings back the training's random state
            print(
                f"Replaying {checkpoint_dir} ({run}, iteration {metadata.get('iteration')}) in {config['env']}, "
                f"{'sampling actions' if args.explore else 'greedy actions'}:"
            )
            returns = _play(
                trainer,
                make_env(config["env"], config.get("env_config")),
                args,
                episodes_wanted,
                steps_wanted,
            )
        finally:
            trainer.stop()
    if not returns:
        print(f"No episode finished within {args.steps} steps.")
        return 0
    print(f"Mean return over {len(returns)} episodes: {sum(returns) / len(returns):.2f}")
    return 0


def _play(trainer, env, args, episodes_wanted, steps_wanted) -> list[float]:
    """The 2021 RLlib tutorial's rollout loop; prints each finished episode and returns their returns."""
    returns, steps = [], 0
    obs, info = env.reset(seed=args.seed)
    episode_return, episode_length = 0.0, 0
    while len(returns) < episodes_wanted and steps < steps_wanted:
        action = trainer.compute_single_action(obs, explore=args.explore)
        obs, reward, terminated, truncated, info = env.step(action)
        episode_return += float(reward)
        episode_length += 1
        steps += 1
        if terminated or truncated:
            returns.append(episode_return)
            print(
                f"Episode {len(returns):3d}: return {episode_return:8.2f}  length {episode_length}",
                flush=True,
            )
            obs, info = env.reset()
            episode_return, episode_length = 0.0, 0
    if episode_length:
        print(
            f"Stopped after {steps} steps, {episode_length} steps into an unfinished episode (not counted)."
        )
    env.close()
    return returns


def _find_checkpoint(path: str) -> str:
    """``path`` if it is a checkpoint folder; the latest ``checkpoint_*`` in it if it is a trial folder."""
    from course_lib.agents.checkpoint import METADATA_FILE

    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise UsageError(
            f"No such folder: {path!r}. Pass a checkpoint folder (.../checkpoint_000010) or its trial folder."
        )
    if (folder / METADATA_FILE).is_file():
        return str(folder)
    found = [child for child in folder.glob("checkpoint_*") if (child / METADATA_FILE).is_file()]
    if not found:
        raise UsageError(
            f"{path!r} is not a course_lib checkpoint (it has no {METADATA_FILE}) nor a trial folder "
            "holding checkpoint_* folders. Pass the path 'course-rl train' printed, e.g. .../checkpoint_000010."
        )
    latest = max(found, key=lambda child: int(re.sub(r"\D", "", child.name) or 0))
    print(f"Using the latest checkpoint in {folder}: {latest.name}")
    return str(latest)


def _training_config(checkpoint_dir: str, trainer_cls: type) -> dict:
    """The config the checkpoint was trained with (the trial's params.json), so the model is rebuilt alike.

    Classes and functions (callbacks, multi-agent policies) were written to JSON as their names only;
    they cannot be rebuilt from those, and a replay needs none of them.
    """
    params = Path(checkpoint_dir).parent / "params.json"
    if not params.is_file():
        return {}
    config = json.loads(params.read_text())
    skipped = ("callbacks", "multiagent", "logger_config")
    return {
        key: value
        for key, value in config.items()
        if key in trainer_cls._default_config and key not in skipped
    }


# --- list -------------------------------------------------------------------------------------


def list_command(args: argparse.Namespace) -> int:
    """``course-rl list``: the algorithms (with one line on each) and the tuned-example files."""
    from course_lib.agents import ALGORITHMS, get_trainer_class

    print("Algorithms (course-rl train --run NAME):")
    for name, (package, _) in ALGORITHMS.items():
        try:
            trainer_module = sys.modules[get_trainer_class(name).__module__]
        except (ImportError, AttributeError) as error:
            print(f"  {name:<5} (not available: {error})")
            continue
        print(f"  {name:<5} {_summary(sys.modules[package].__doc__ or trainer_module.__doc__)}")
    for folder in _tuned_example_folders():
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
        _, experiment = _read_experiment_file(str(file))
    except UsageError as error:
        return f"(unreadable: {error})"
    return f"{experiment.get('run', '?')} on {experiment.get('env') or (experiment.get('config') or {}).get('env', '?')}"


def _tuned_example_folders() -> list[Path]:
    """The tuned_examples/ folders under the current directory and next to the course_lib package."""
    package_root = Path(__file__).resolve().parent.parent
    folders = []
    for folder in (Path.cwd() / "tuned_examples", package_root / "tuned_examples"):
        if folder.is_dir() and folder.resolve() not in [f.resolve() for f in folders]:
            folders.append(folder)
    return folders


if __name__ == "__main__":
    sys.exit(main())
