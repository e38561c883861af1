"""Seeding and devices: one seeding per process, policies that never reseed, GPUs per worker."""

from __future__ import annotations

import random

import gymnasium as gym
import numpy as np
import pytest
import torch

from course_lib.agents.pg import PGTrainer
from course_lib.evaluation import RolloutWorker
from course_lib.policy import PGTorchPolicy
from course_lib.policy.torch_policy import policy_device
from course_lib.seeding import global_rngs_unchanged, seed_global_rngs

OBS_SPACE = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
ACT_SPACE = gym.spaces.Discrete(2)
SMALL = {"model": {"fcnet_hiddens": [16]}}


def rng_states() -> tuple:
    """The process's three random streams, comparable with ==."""
    numpy_state = np.random.get_state()
    return (
        random.getstate(),
        (numpy_state[0], tuple(numpy_state[1]), *numpy_state[2:]),
        tuple(torch.get_rng_state().tolist()),
    )


def differ(a: dict, b: dict) -> bool:
    return any(not np.array_equal(a[name], b[name]) for name in a)


def cartpole(env_config):
    return gym.make("CartPole-v1")


def test_seed_global_rngs_seeds_python_numpy_and_torch():
    seed_global_rngs(11)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_global_rngs(11)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first
    assert torch.initial_seed() == 11


def test_global_rngs_unchanged_restores_every_stream():
    seed_global_rngs(3)
    before = rng_states()
    with global_rngs_unchanged():
        random.random(), np.random.rand(), torch.rand(5)
    assert rng_states() == before


def test_policies_never_reseed_so_two_policies_start_differently():
    seed_global_rngs(5)
    first = PGTorchPolicy(OBS_SPACE, ACT_SPACE, {**SMALL, "seed": 0})
    second = PGTorchPolicy(OBS_SPACE, ACT_SPACE, {**SMALL, "seed": 0})
    assert torch.initial_seed() == 5  # the policies' "seed" did not touch torch
    assert differ(first.get_weights(), second.get_weights())


def test_a_standalone_worker_seeds_its_process_with_its_own_seed():
    config = {**SMALL, "seed": 3, "rollout_fragment_length": 10}
    RolloutWorker(env_creator=cartpole, policy_class=PGTorchPolicy, config=config, worker_index=1)
    assert torch.initial_seed() == 1003  # seed + 1000 * worker_index


def test_a_worker_in_an_already_seeded_process_leaves_the_rngs_alone():
    seed_global_rngs(8)
    config = {**SMALL, "seed": 3}
    RolloutWorker(
        env_creator=cartpole, policy_class=PGTorchPolicy, config=config, process_seeded=True
    )
    assert torch.initial_seed() == 8


def test_two_policies_of_one_worker_start_with_different_weights():
    policies = {"left": (None, None, None, {}), "right": (None, None, None, {})}
    worker = RolloutWorker(
        env_creator=cartpole,
        policy_class=PGTorchPolicy,
        config={**SMALL, "seed": 0, "multiagent": {"policies": policies}},
    )
    weights = worker.get_weights()
    assert differ(weights["left"], weights["right"])


def trainer(tmp_path, **config):
    return PGTrainer(
        config={
            "num_envs_per_worker": 2,
            "rollout_fragment_length": 50,
            "train_batch_size": 100,
            "seed": 4,
            "logger_config": {"logdir": str(tmp_path)},
            **SMALL,
            **config,
        },
        env="CartPole-v1",
    )


def training_part(result: dict) -> tuple:
    return (
        result["timesteps_total"],
        result["hist_stats"]["episode_reward"],
        result["info"]["learner"]["default_policy"]["total_loss"],
    )


def test_building_evaluation_workers_leaves_the_training_random_streams_alone(tmp_path):
    plain = trainer(tmp_path)
    states_without = rng_states()
    plain_result = training_part(plain.train())
    plain.stop()
    evaluating = trainer(tmp_path, evaluation_interval=1, evaluation_num_episodes=2)
    assert rng_states() == states_without
    result = evaluating.train()
    evaluating.stop()
    assert "evaluation" in result and training_part(result) == plain_result


def test_a_seeded_trainer_is_reproducible(tmp_path):
    results, weights = [], []
    for _ in range(2):
        run = trainer(tmp_path)
        results.append(training_part(run.train()))
        weights.append(run.get_weights()["default_policy"])
        run.stop()
    assert results[0] == results[1]
    assert not differ(weights[0], weights[1])


@pytest.mark.parametrize(
    "cuda,worker_index,num_gpus,num_gpus_per_worker,device",
    [
        (True, 0, 1, 0, "cuda"),  # the local worker: the trainer's GPUs
        (True, 0, 0, 1, "cpu"),
        (True, 2, 1, 0, "cpu"),  # a remote worker: its own share only
        (True, 2, 0, 0.5, "cuda"),
        (False, 0, 1, 1, "cpu"),  # no GPU visible: CPU whatever the config asks
        (False, 2, 1, 1, "cpu"),
    ],
)
def test_a_policy_runs_on_its_own_workers_gpu(
    monkeypatch, cuda, worker_index, num_gpus, num_gpus_per_worker, device
):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    config = {
        "worker_index": worker_index,
        "num_gpus": num_gpus,
        "num_gpus_per_worker": num_gpus_per_worker,
    }
    assert policy_device(config) == torch.device(device)
