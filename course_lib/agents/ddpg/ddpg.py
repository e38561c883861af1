"""DDPG: a deterministic actor and a Q critic trained from a replay buffer, with slow targets.

The dataflow is DQN's (``Concurrently``, round-robin): one branch samples with noisy actions and
stores the transitions, the other replays minibatches and takes one learning step on each. The
target networks move inside that step (``DelayedActorMixin``), by ``tau`` after every actor
update, instead of DQN's copy every ``target_network_update_freq`` steps.
Introduced in notebooks/16_continuous_control.ipynb.
"""

from __future__ import annotations

from course_lib.agents.config import COMMON_CONFIG
from course_lib.agents.ddpg.ddpg_torch_policy import DDPGTorchPolicy
from course_lib.agents.dqn.dqn import replay_rounds
from course_lib.agents.trainer_template import build_trainer
from course_lib.execution import (
    Concurrently,
    ParallelRollouts,
    Replay,
    ReplayBuffer,
    StandardMetricsReporting,
    StoreToReplayBuffer,
    TrainOneStep,
)
from course_lib.validation import require_whole_number

# DDPG's settings, in one place: DDPGTorchPolicy reads its defaults from this dict too.
DEFAULT_CONFIG = {
    **COMMON_CONFIG,
    # === The policy's settings ===
    "gamma": 0.99,
    "actor_lr": 1e-3,
    "critic_lr": 1e-3,
    # ReLU hidden layers of the actor mu(s) and of each critic Q(s, a).
    "actor_hiddens": [256, 256],
    "critic_hiddens": [256, 256],
    # After each actor step: target <- tau * online + (1 - tau) * target.
    "tau": 0.005,
    # TD3's three changes, off for DDPG (td3.py turns them on): two critics and the smaller of
    # their targets; noise (std target_noise, clipped at target_noise_clip, in half-ranges of
    # the Box) on the target action; the actor and targets move every policy_delay critic steps.
    "twin_q": False,
    "smooth_target_policy": False,
    "target_noise": 0.2,
    "target_noise_clip": 0.5,
    "policy_delay": 1,
    # The original DDPG's exploration: temporally correlated noise, after 1000 random steps.
    "exploration_config": {
        "type": "OrnsteinUhlenbeckNoise",
        "random_timesteps": 1000,
        "ou_base_scale": 0.1,
        "ou_theta": 0.15,
        "ou_sigma": 0.2,
        "initial_scale": 1.0,
        "final_scale": 0.02,
        "scale_timesteps": 10000,
    },
    # === The trainer's settings ===
    "num_workers": 0,
    # One env step, then one replayed minibatch: the usual one update per step.
    "rollout_fragment_length": 1,
    "train_batch_size": 256,
    "buffer_size": 100_000,
    "learning_starts": 1000,
    # Replayed rows per sampled env step; None: one replayed batch per sampled fragment.
    "training_intensity": None,
    "timesteps_per_iteration": 1000,
}


def validate_actor_critic_config(config: dict) -> None:
    """The checks DDPG, TD3 and SAC share: refuse settings that cannot work, before workers are
    built, naming the fix."""
    require_whole_number(config["policy_delay"], '"policy_delay"', minimum=1)
    require_whole_number(config["learning_starts"], '"learning_starts"', minimum=0)
    require_whole_number(config["buffer_size"], '"buffer_size"', minimum=1)
    if not 0.0 < config["tau"] <= 1.0:
        raise ValueError(
            f'"tau" is the share of the online weights mixed into the targets per update: in '
            f"(0, 1], got {config['tau']!r} (0.005 is usual; 1.0 copies)."
        )


def validate_ddpg_config(config: dict) -> None:
    """``validate_actor_critic_config`` and TD3's target noise."""
    validate_actor_critic_config(config)
    if config["target_noise"] < 0 or config["target_noise_clip"] < 0:
        raise ValueError(
            '"target_noise" and "target_noise_clip" are standard deviations and bounds: >= 0, '
            f"got {config['target_noise']!r} and {config['target_noise_clip']!r}."
        )


def execution_plan(workers, config):
    """store: sample -> replay buffer;  replay: buffer -> one learning step (actor, critics,
    targets); the two take turns (round-robin, ``replay_rounds``). Shared by DDPG, TD3 and SAC."""
    buffer = ReplayBuffer(config["buffer_size"], seed=config["seed"])
    store_op = ParallelRollouts(workers, mode="bulk_sync").for_each(
        StoreToReplayBuffer(local_buffer=buffer)
    )
    replay_op = Replay(
        local_buffer=buffer,
        replay_batch_size=config["train_batch_size"],
        learning_starts=config["learning_starts"],
    ).for_each(TrainOneStep(workers))
    train_op = Concurrently(
        [store_op, replay_op],
        mode="round_robin",
        output_indexes=[1],
        round_robin_weights=replay_rounds(config),
    )
    return StandardMetricsReporting(train_op, workers, config)


DDPGTrainer = build_trainer(
    "DDPG",
    default_config=DEFAULT_CONFIG,
    validate_config=validate_ddpg_config,
    default_policy=DDPGTorchPolicy,
    execution_plan=execution_plan,
)
