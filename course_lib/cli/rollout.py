"""``course-rl rollout``: restore a checkpoint in this process and play episodes with its policy.

The 2021 RLlib tutorial's ``rllib rollout``: each finished episode's return is printed, then
their mean. Introduced in notebooks/12_trainers.ipynb.
"""

from __future__ import annotations

import argparse
import math
import re
import tempfile
from pathlib import Path

from course_lib.cli.common import (
    UsageError,
    check_config,
    parse_json_dict,
    reported_as_usage_error,
    trainer_class,
)

DEFAULT_ROLLOUT_EPISODES = 10
# Trainer settings a replay overrides: sample in this process, and no evaluation workers.
ROLLOUT_OVERRIDES = {"num_workers": 0, "evaluation_interval": None, "evaluation_num_workers": 0}

ROLLOUT_EXAMPLES = """\
examples:
  course-rl rollout ~/ray_results/cartpole-pg/PG_CartPole-v1_5b27b_00000_0_.../checkpoint_000004
  course-rl rollout ~/ray_results/cartpole-pg/PG_CartPole-v1_5b27b_00000_0_...  (latest checkpoint)
  course-rl rollout CHECKPOINT --run PG --env CartPole-v1 --episodes 3 --explore

--run and --env default to the checkpoint's own algorithm and env.
"""


def rollout_command(args: argparse.Namespace) -> int:
    """``course-rl rollout``: restore a checkpoint in this process and play episodes with it.

    Introduced in notebooks/12_trainers.ipynb.
    """
    for option in ("episodes", "steps"):
        if getattr(args, option) is not None and getattr(args, option) < 1:
            raise UsageError(f"--{option} must be at least 1, got {getattr(args, option)}.")
    command_line_config = parse_json_dict(args.config, "--config")

    import logging

    from course_lib.agents.checkpoint import load_metadata, training_config
    from course_lib.agents.config import merge_config
    from course_lib.envs import make_env
    from course_lib.seeding import seed_global_rngs

    checkpoint_dir = _find_checkpoint(args.checkpoint)
    with reported_as_usage_error(ValueError, OSError):
        metadata = load_metadata(checkpoint_dir)
    run = args.run or metadata.get("trainer")
    if run != metadata.get("trainer"):
        raise UsageError(
            f"{checkpoint_dir} was written by a {metadata.get('trainer')!r} trainer, not {run!r}. "
            f"Use --run {metadata.get('trainer')}, or leave --run out."
        )
    trainer_cls = trainer_class(run)
    with reported_as_usage_error(ValueError):
        trained_with = training_config(checkpoint_dir, trainer_cls)
    config = {**merge_config(trained_with, command_line_config), **ROLLOUT_OVERRIDES}
    config["env"] = args.env or config.get("env") or metadata.get("env")
    check_config(trainer_cls, config)
    episodes_wanted = args.episodes or (math.inf if args.steps else DEFAULT_ROLLOUT_EPISODES)
    steps_wanted = args.steps or math.inf

    # A standalone trainer writes a results folder; a replay's is of no use: it goes to a temp one.
    with tempfile.TemporaryDirectory(prefix="course-rl-rollout-") as logdir:
        config["logger_config"] = {"logdir": logdir}
        trainer = trainer_cls(config=config)
        try:
            # Tune's Trainable logs each restore at INFO; the line below says the same, readably.
            logging.getLogger("ray.tune.trainable").setLevel(logging.WARNING)
            with reported_as_usage_error(ValueError, OSError):
                trainer.restore(checkpoint_dir)
            if args.seed is not None:
                # After restore, which brings back the training's random state.
                seed_global_rngs(args.seed)
            print(
                f"Replaying {checkpoint_dir} ({run}, iteration {metadata.get('iteration')}) in "
                f"{config['env']}, {'sampling actions' if args.explore else 'greedy actions'}:"
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
    """The 2021 RLlib tutorial's rollout loop; prints each finished episode, returns the returns."""
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
            f"Stopped after {steps} steps, {episode_length} steps into an unfinished episode "
            "(not counted)."
        )
    env.close()
    return returns


def _find_checkpoint(path: str) -> str:
    """``path`` if it is a checkpoint folder; for a trial folder, its latest ``checkpoint_*``."""
    from course_lib.agents.checkpoint import (
        METADATA_FILE,
        RLLIB_CHECKPOINT_FILE,
        rllib_checkpoint_message,
    )

    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise UsageError(
            f"No such folder: {path!r}. Pass a checkpoint folder (.../checkpoint_000010) or "
            "its trial folder."
        )
    if (folder / METADATA_FILE).is_file():
        return str(folder)
    found = [child for child in folder.glob("checkpoint_*") if (child / METADATA_FILE).is_file()]
    if not found and (folder / RLLIB_CHECKPOINT_FILE).is_file():
        raise UsageError(rllib_checkpoint_message(path))
    if not found:
        raise UsageError(
            f"{path!r} is not a course_lib checkpoint (it has no {METADATA_FILE}) nor a trial "
            "folder holding checkpoint_* folders. Pass the path 'course-rl train' printed, "
            "e.g. .../checkpoint_000010."
        )
    latest = max(found, key=lambda child: int(re.sub(r"\D", "", child.name) or 0))
    print(f"Using the latest checkpoint in {folder}: {latest.name}")
    return str(latest)
