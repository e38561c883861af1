"""Ray Serve answering a course_lib policy over HTTP: requests per second and p50/p99 latency at 1,
8 and 32 concurrent clients, with ``@serve.batch`` on and off (notebooks/18_serving.ipynb).

Two policies, both PPO on CartPole-v1 saved by ``trainer.save()`` and served by
``course_lib.serving.serve_policy`` on 127.0.0.1:

- **small**: the lesson's network, two hidden layers of 64 (a forward pass takes tens of
  microseconds, so a request's cost is almost all HTTP, routing and Python);
- **large**: two hidden layers of 4096 (about 17M weights per network; a forward pass of one
  observation takes milliseconds on one core), standing in for a policy with a large model.

The clients are threads of this process (``course_lib.serving.load_test``): each sends a request,
waits for the answer, sends the next. Every (policy, batching) pair is deployed once per round and
measured at 1, 8 and 32 clients; rounds alternate batching on and off, so that a change in the
machine's load falls on both alike. Medians over the rounds are printed as the table that
BENCHMARKS.md quotes, with the ratio batching on / off.

Usage: ``python benchmarks/bench_serving.py [--rounds 3] [--requests 256] [--quick]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import gymnasium as gym
import numpy as np
import ray
import torch
from bench_vs_rllib import one_thread_everywhere
from ray import serve

from course_lib import init_ray, serving
from course_lib.agents.ppo import PPOTrainer

CLIENTS = (1, 8, 32)
NETWORKS = {"small": [64, 64], "large": [4096, 4096]}


def make_checkpoint(hiddens: list[int], folder: str) -> str:
    """A PPO checkpoint with these hidden layers after one short training iteration."""
    trainer = PPOTrainer(
        config={
            "env": "CartPole-v1",
            "seed": 0,
            "num_workers": 0,
            "train_batch_size": 64,
            "sgd_minibatch_size": 64,
            "num_sgd_iter": 1,
            "rollout_fragment_length": 64,
            "num_envs_per_worker": 1,
            "model": {"fcnet_hiddens": hiddens},
            "logger_config": {"logdir": folder},
        }
    )
    try:
        trainer.train()
        return trainer.save()
    finally:
        trainer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="deployments per setting (median)")
    parser.add_argument("--requests", type=int, default=256, help="requests per measurement")
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 round, 32 requests")
    args = parser.parse_args()
    rounds, total = (1, 32) if args.quick else (args.rounds, args.requests)
    one_thread_everywhere()
    load_before = os.getloadavg()[0]
    init_ray()
    env = gym.make("CartPole-v1")
    observations = np.array([env.reset(seed=seed)[0] for seed in range(64)])
    measured: dict[tuple, list[dict]] = {}
    try:
        url = serving.ensure_serve()
        with tempfile.TemporaryDirectory(prefix="bench-serving-") as folder:
            checkpoints = {name: make_checkpoint(h, folder) for name, h in NETWORKS.items()}
            for round_index in range(rounds):
                order = (True, False) if round_index % 2 == 0 else (False, True)
                for name, checkpoint in checkpoints.items():
                    for batching in order:
                        url = serving.serve_policy(checkpoint, batching=batching)
                        # One warm-up request: the replica's first forward pass builds caches.
                        serving.load_test(url, observations, 1, 5)
                        for clients in CLIENTS:
                            per_client = max(1, total // clients)
                            result = serving.load_test(url, observations, clients, per_client)
                            if result.failures:
                                raise SystemExit(
                                    f"{result.failures} requests failed: {result.errors[:3]}"
                                )
                            measured.setdefault((name, batching, clients), []).append(result.row())
                            print(
                                f"round {round_index + 1} {name:5} batching={batching!s:5} "
                                f"{result.row()}",
                                flush=True,
                            )
    finally:
        serve.shutdown()
        ray.shutdown()
    print(
        f"\nload average before {load_before:.1f}, after {os.getloadavg()[0]:.1f}; "
        f"{rounds} rounds, {total} requests per measurement, medians\n"
    )
    print(
        "| policy | clients | batching | requests/s | p50 ms | p99 ms | mean batch | "
        "requests/s on/off |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for name in NETWORKS:
        for clients in CLIENTS:
            medians = {}
            for batching in (True, False):
                rows = measured[(name, batching, clients)]
                medians[batching] = {
                    key: statistics.median(row[key] for row in rows)
                    for key in ("requests/s", "p50 ms", "p99 ms", "mean batch")
                }
            ratio = medians[True]["requests/s"] / medians[False]["requests/s"]
            for batching in (True, False):
                m = medians[batching]
                print(
                    f"| {name} | {clients} | {'on' if batching else 'off'} | "
                    f"{m['requests/s']:.0f} | {m['p50 ms']:.1f} | {m['p99 ms']:.1f} | "
                    f"{m['mean batch']:.1f} | {f'{ratio:.2f}' if batching else ''} |"
                )


if __name__ == "__main__":
    torch.set_num_threads(1)
    start = time.perf_counter()
    main()
    print(f"\n{time.perf_counter() - start:.0f} s in all")
