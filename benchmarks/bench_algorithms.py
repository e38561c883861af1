"""Lesson 13's learning benchmark: PG, A2C, PPO and DQN on CartPole-v1, from trainer construction.

For PPO and DQN: env steps and wall-clock seconds until the 20-episode mean return reaches 475
(the design's targets: PPO in about 15-20 s, DQN within 100k env steps). For PG and A2C: the
20-episode mean return when their budget of env steps is spent. Each algorithm runs with the
config in ``tuned_examples/<algo>-cartpole.yaml`` over several seeds; the table shows medians.

Usage: ``python benchmarks/bench_algorithms.py [--seeds 0 1 2] [--algos PPO DQN PG A2C]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import yaml

from course_lib.agents import get_trainer_class

TUNED = os.path.join(os.path.dirname(__file__), os.pardir, "tuned_examples")
FILES = {
    "PG": "pg-cartpole.yaml",
    "A2C": "a2c-cartpole.yaml",
    "PPO": "ppo-cartpole.yaml",
    "DQN": "dqn-cartpole.yaml",
}


def load_tuned(algo: str) -> tuple[dict, dict]:
    with open(os.path.join(TUNED, FILES[algo])) as f:
        (experiment,) = yaml.safe_load(f).values()
    return experiment["config"] | {"env": experiment["env"]}, experiment["stop"]


def run(algo: str, seed: int) -> dict:
    config, stop = load_tuned(algo)
    config.update(seed=seed, metrics_smoothing_episodes=20)
    start = time.perf_counter()
    trainer = get_trainer_class(algo)(config=config)
    curve = []
    try:
        while True:
            result = trainer.train()
            curve.append(result["episode_reward_mean"])
            if (
                result["episode_reward_mean"] >= stop.get("episode_reward_mean", float("inf"))
                or result["timesteps_total"] >= stop["timesteps_total"]
            ):
                break
    finally:
        trainer.stop()
    return {
        "steps": result["timesteps_total"],
        "seconds": time.perf_counter() - start,
        "final": result["episode_reward_mean"],
        "solved": result["episode_reward_mean"] >= 475,
        "iterations": len(curve),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--algos", nargs="+", default=["PPO", "DQN", "PG", "A2C"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(
        "| algorithm | seeds solved (>= 475) | env steps (median) | seconds "
        "(median) | final 20-episode mean (median) | per seed (steps / s / final) |"
    )
    print("|---|---:|---:|---:|---:|---|")
    for algo in args.algos:
        runs = [run(algo, seed) for seed in args.seeds]
        detail = "; ".join(f"{r['steps']:,} / {r['seconds']:.1f} / {r['final']:.0f}" for r in runs)
        print(
            f"| {algo} | {sum(r['solved'] for r in runs)}/{len(runs)} | "
            f"{statistics.median(r['steps'] for r in runs):,.0f} | "
            f"{statistics.median(r['seconds'] for r in runs):.1f} | "
            f"{statistics.median(r['final'] for r in runs):.0f} | {detail} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
