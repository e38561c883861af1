"""ES's wall-clock time per iteration against the number of Ray tasks it is split into.

Usage: ``python benchmarks/bench_es.py [--repeat 3] [--episodes 64] [--tasks 1 2 4 8]``.
First trains ES on CartPole-v1 until its perturbed episodes average 475, so that every episode
runs near the 500-step limit; then, for each task count, builds a trainer with the same
``episodes_per_batch``, lets its first iteration start Ray's worker processes (not timed), and
times ``--repeat`` iterations that each start from the trained theta and observation statistics.
Prints a markdown table of medians: seconds per iteration, env steps per second, and the speedup
over one task. Lesson 15 (notebooks/15_scaling_out.ipynb) explains the shape of the curve.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time

import ray

import course_lib
from course_lib.agents.es import ESTrainer
from course_lib.sample_batch import DEFAULT_POLICY_ID


def es_config(logdir: str, **settings) -> dict:
    return {"env": "CartPole-v1", "logger_config": {"logdir": logdir}, **settings}


def trained_state(episodes: int, logdir: str) -> tuple[dict, dict]:
    """Weights and observation-filter state of an ES policy that balances CartPole."""
    trainer = ESTrainer(config=es_config(logdir, seed=0, episodes_per_batch=episodes))
    try:
        for _ in range(40):
            if trainer.train()["episode_reward_mean"] >= 475:
                break
        local = trainer.workers.local_worker()
        return trainer.get_weights(), local.filters[DEFAULT_POLICY_ID].get_state()
    finally:
        trainer.stop()


def time_iterations(
    num_tasks: int, episodes: int, repeat: int, trained: tuple[dict, dict], logdir: str
) -> list[tuple[float, int]]:
    """``(seconds, env steps)`` of ``repeat`` iterations split into ``num_tasks`` tasks."""
    weights, filter_state = trained
    trainer = ESTrainer(
        config=es_config(logdir, seed=1, num_tasks=num_tasks, episodes_per_batch=episodes)
    )
    try:
        trainer.train()  # starts the worker processes the tasks run in
        runs = []
        for _ in range(repeat):
            trainer.set_weights(weights)
            trainer.workers.local_worker().filters[DEFAULT_POLICY_ID].set_state(filter_state)
            started = time.perf_counter()
            result = trainer.train()
            runs.append((time.perf_counter() - started, result["timesteps_this_iter"]))
        return runs
    finally:
        trainer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=64, help="episodes per iteration")
    parser.add_argument("--tasks", type=int, nargs="+", default=[1, 2, 4, 8])
    args = parser.parse_args()

    course_lib.init_ray()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores "
        f"(Ray: {ray.cluster_resources().get('CPU', 0):g} CPUs), "
        f"Python {platform.python_version()}, Ray {ray.__version__}"
    )
    rows = {}
    with tempfile.TemporaryDirectory(prefix="bench-es-") as logdir:
        trained = trained_state(args.episodes, logdir)
        for num_tasks in args.tasks:
            runs = time_iterations(num_tasks, args.episodes, args.repeat, trained, logdir)
            rows[num_tasks] = (
                statistics.median(seconds for seconds, _ in runs),
                statistics.median(steps for _, steps in runs),
            )
            print(f"{num_tasks} tasks: {[round(s, 3) for s, _ in runs]} s", flush=True)
    print(
        f"\n### ES on CartPole-v1: one iteration of {args.episodes} episodes "
        f"(median of {args.repeat})\n"
    )
    print("| tasks | episodes per task | s per iteration | env steps | steps/s | speedup |")
    print("|---|---|---|---|---|---|")
    base = rows[args.tasks[0]][0]
    for num_tasks, (seconds, steps) in rows.items():
        print(
            f"| {num_tasks} | {args.episodes // num_tasks} | {seconds:.3f} | {steps:,.0f} | "
            f"{steps / seconds:,.0f} | {base / seconds:.2f}x |"
        )
    ray.shutdown()


if __name__ == "__main__":
    main()
