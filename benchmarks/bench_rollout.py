"""Lesson 08's sampling throughput: one RolloutWorker with 1 and 8 CartPole envs vs raw gymnasium.

Usage: ``python benchmarks/bench_rollout.py [--repeat 5]``. Every figure is a median of
``--repeat`` runs; the raw rate is measured in the same run (random actions, one env, no policy).
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium as gym
import torch

from course_lib.evaluation import RolloutWorker
from course_lib.policy import PGTorchPolicy

STEPS = 4000


def raw_rate() -> float:
    env = gym.make("CartPole-v1")
    env.reset(seed=0)
    start = time.perf_counter()
    for _ in range(STEPS):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    return STEPS / (time.perf_counter() - start)


def worker_rate(num_envs: int) -> float:
    worker = RolloutWorker(
        env_creator=lambda cfg: gym.make("CartPole-v1"),
        policy_class=PGTorchPolicy,
        config={
            "num_envs_per_worker": num_envs,
            "rollout_fragment_length": STEPS // num_envs,
            "seed": 0,
        },
    )
    worker.sample()  # warm-up
    start = time.perf_counter()
    batch = worker.sample()
    return batch.count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    runs = {
        "raw gymnasium (1 env, random actions)": raw_rate,
        "RolloutWorker, 1 env": lambda: worker_rate(1),
        "RolloutWorker, 8 envs": lambda: worker_rate(8),
    }
    medians = {
        name: statistics.median(fn() for _ in range(args.repeat)) for name, fn in runs.items()
    }
    raw = medians["raw gymnasium (1 env, random actions)"]
    print(f"| sampler | env steps/s (median of {args.repeat}) | share of raw |\n|---|---:|---:|")
    for name, rate in medians.items():
        print(f"| {name} | {rate:,.0f} | {rate / raw:.0%} |")


if __name__ == "__main__":
    main()
