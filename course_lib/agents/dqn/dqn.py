"""DQN: a Q-network trained from a replay buffer, with a target network and epsilon-greedy acting.

Two dataflows run side by side (``Concurrently``): one samples and stores transitions in the
replay buffer; the other replays minibatches, trains on them, updates priorities and, every
``target_network_update_freq`` sampled steps, copies the online network into the target.
Introduced in notebooks/13_algorithms.ipynb.
"""

from __future__ import annotations

from course_lib.agents.config import COMMON_CONFIG
from course_lib.agents.dqn.dqn_torch_policy import DQNTorchPolicy
from course_lib.agents.trainer_template import build_trainer
from course_lib.execution import (
    Concurrently,
    ParallelRollouts,
    PrioritizedReplayBuffer,
    Replay,
    ReplayBuffer,
    StandardMetricsReporting,
    StoreToReplayBuffer,
    TrainOneStep,
    UpdatePriorities,
    UpdateTargetNetwork,
)

# DQN's settings, in one place: DQNTorchPolicy reads its defaults from this dict too.
DEFAULT_CONFIG = {
    **COMMON_CONFIG,
    # === The policy's settings ===
    "lr": 5e-4,
    "gamma": 0.99,
    # Sum this many rewards before bootstrapping from Q_target (see adjust_nstep).
    "n_step": 1,
    # Pick the next action with the online network, evaluate it with the target network.
    "double_q": True,
    # Q(s, a) = V(s) + A(s, a) - mean_a A(s, a), with separate V and A streams.
    "dueling": True,
    # Hidden layers (ReLU) of the Q head(s), on top of the fcnet_hiddens torso.
    "hiddens": [256],
    # update_target(): target <- tau * online + (1 - tau) * target; 1.0 copies.
    "tau": 1.0,
    "grad_clip": 40.0,
    "model": {"fcnet_hiddens": [256], "fcnet_activation": "relu"},
    "exploration_config": {
        "type": "EpsilonGreedy",
        "initial_epsilon": 1.0,
        "final_epsilon": 0.02,
        "epsilon_timesteps": 10000,
    },
    # === The trainer's settings ===
    "num_workers": 0,
    "rollout_fragment_length": 4,
    "train_batch_size": 32,
    # Replay: capacity in transitions; sample uniformly or in proportion to |TD error|^alpha.
    "buffer_size": 50_000,
    "prioritized_replay": True,
    "prioritized_replay_alpha": 0.6,
    "prioritized_replay_beta": 0.4,
    "prioritized_replay_eps": 1e-6,
    # Steps sampled before learning starts, and between two copies into the target network.
    "learning_starts": 1000,
    "target_network_update_freq": 500,
    # Replayed rows per sampled env step; None: one replayed batch per sampled fragment.
    "training_intensity": None,
    # One train() result per this many env steps (DQN's steps are cheap; reporting each would
    # dominate).
    "timesteps_per_iteration": 1000,
}


def replay_rounds(config: dict) -> list[int]:
    """Round-robin weights ``[store, replay]``: fragments stored per replayed batch, or reverse."""
    if config["training_intensity"] is None:
        return [1, 1]
    sampled_per_store = (
        config["rollout_fragment_length"]
        * config["num_envs_per_worker"]
        * max(1, config["num_workers"])
    )
    native = config["train_batch_size"] / sampled_per_store
    ratio = config["training_intensity"] / native
    return [1, max(1, round(ratio))] if ratio >= 1 else [max(1, round(1 / ratio)), 1]


def execution_plan(workers, config):
    """store: sample -> replay buffer;  replay: buffer -> train -> priorities -> target net;
    the two take turns (round-robin)."""
    if config["prioritized_replay"]:
        buffer = PrioritizedReplayBuffer(
            config["buffer_size"],
            alpha=config["prioritized_replay_alpha"],
            beta=config["prioritized_replay_beta"],
            eps=config["prioritized_replay_eps"],
            seed=config["seed"],
        )
    else:
        buffer = ReplayBuffer(config["buffer_size"], seed=config["seed"])
    store_op = ParallelRollouts(workers, mode="bulk_sync").for_each(
        StoreToReplayBuffer(local_buffer=buffer)
    )
    replay_op = (
        Replay(
            local_buffer=buffer,
            replay_batch_size=config["train_batch_size"],
            learning_starts=config["learning_starts"],
        )
        .for_each(TrainOneStep(workers))
        .for_each(UpdatePriorities(buffer, prioritized_replay_eps=config["prioritized_replay_eps"]))
        .for_each(UpdateTargetNetwork(workers, config["target_network_update_freq"]))
    )
    train_op = Concurrently(
        [store_op, replay_op],
        mode="round_robin",
        output_indexes=[1],
        round_robin_weights=replay_rounds(config),
    )
    return StandardMetricsReporting(train_op, workers, config)


DQNTrainer = build_trainer(
    "DQN",
    default_config=DEFAULT_CONFIG,
    default_policy=DQNTorchPolicy,
    execution_plan=execution_plan,
)
