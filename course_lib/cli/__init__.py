"""``course-rl``: the 2021 RLlib tutorial's ``rllib train`` / ``rllib rollout`` for course_lib.

- ``course-rl train --run PPO --env CartPole-v1``: train with Ray Tune; the results folder gets
  params.json, result.json, progress.csv, TensorBoard events and checkpoints (``cli/train.py``).
- ``course-rl rollout CHECKPOINT``: replay a checkpoint in an env and print each episode's return
  (``cli/rollout.py``).
- ``course-rl list``: the algorithms and the tuned examples (``cli/listing.py``).

This module holds the argument parser and ``main()``, which hands each command to its module.
Run it as ``course-rl ...`` or ``python -m course_lib.cli ...``. A mistake on the command line (bad
JSON, an unknown algorithm, env or config key, a folder that is not a checkpoint) ends with one
line on stderr and exit code 2. Introduced in notebooks/12_trainers.ipynb.
"""

from __future__ import annotations

import argparse
import json
import sys

from course_lib import __version__
from course_lib.cli.common import UsageError
from course_lib.cli.listing import list_command
from course_lib.cli.rollout import DEFAULT_ROLLOUT_EPISODES, ROLLOUT_EXAMPLES, rollout_command
from course_lib.cli.train import DEFAULT_STOP, TRAIN_EXAMPLES, train_command

__all__ = ["UsageError", "build_parser", "main"]


def main(argv: list[str] | None = None) -> int:
    """Run ``course-rl`` with ``argv`` (default: the command line); returns the exit code.

    Introduced in notebooks/12_trainers.ipynb.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except UsageError as error:
        print(f"course-rl {args.command}: error: {error}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    """The ``course-rl`` parser with its ``train``, ``rollout`` and ``list`` subcommands.

    Introduced in notebooks/12_trainers.ipynb.
    """
    parser = argparse.ArgumentParser(
        prog="course-rl",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train course_lib's RL algorithms with Ray Tune, and replay what they learned.",
        epilog="examples:\n  course-rl list\n  course-rl train --run PG --env CartPole-v1\n"
        "  course-rl rollout ~/ray_results/.../checkpoint_000010 --episodes 5\n\n"
        "Run 'course-rl COMMAND --help' for the options of each command.",
    )
    parser.add_argument(
        "--version", action="version", version=f"course-rl (course_lib {__version__})"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train_parser(commands)
    _add_rollout_parser(commands)
    listing = commands.add_parser(
        "list",
        help="list the algorithms and tuned examples",
        description="List the algorithms and the tuned-example files.",
    )
    listing.set_defaults(handler=list_command)
    return parser


def _add_train_parser(commands) -> None:
    train = commands.add_parser(
        "train",
        help="train an algorithm with Ray Tune",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=TRAIN_EXAMPLES,
        description="Train an algorithm on an env with Ray Tune, printing one line per "
        "iteration;\nat the end, say where the results and checkpoints are.",
    )
    train.add_argument("--run", help="algorithm name, e.g. PPO (see 'course-rl list' for all)")
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


def _add_rollout_parser(commands) -> None:
    rollout = commands.add_parser(
        "rollout",
        help="replay a checkpoint in an env",
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
