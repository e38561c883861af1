"""Lesson 01's speedups, measured properly: serial vs multiprocessing.Pool vs Ray, per task size.

Usage: ``python benchmarks/bench_parallel.py [--repeat 5] [--tasks 16]``. Prints markdown tables
for BENCHMARKS.md: speedups over serial (medians of ``--repeat`` runs) and Ray's per-task overhead.
"""

from __future__ import annotations

import argparse
import os
import platform

import ray

import course_lib
from course_lib import parallel

SIZES = [100, 1_000, 10_000, 100_000, 1_000_000, 3_000_000]


def noop(x):
    return x


def task_overhead(n_tasks: int, repeat: int) -> float:
    """Median seconds per no-op task when ``n_tasks`` are submitted together."""
    remote_noop = ray.remote(noop)
    timing = parallel.timeit(
        lambda: ray.get([remote_noop.remote(i) for i in range(n_tasks)]), repeat=repeat
    )
    return timing.median / n_tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=16)
    args = parser.parse_args()

    course_lib.init_ray()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} "
        f"cores, Python {platform.python_version()}, Ray {ray.__version__}"
    )
    results = parallel.compare_strategies(
        SIZES, n_tasks=args.tasks, repeat=args.repeat, progress=True
    )
    print(
        f"\n### Speedup over serial ({args.tasks} tasks "
        f"of busy_work, median of {args.repeat} runs)\n"
    )
    print(parallel.format_table(results))
    print("\n### Median seconds per run\n")
    print("| iterations/task | " + " | ".join(parallel.STRATEGIES) + " |")
    print("|---|" + "---|" * len(parallel.STRATEGIES))
    for n in SIZES:
        row = {r.strategy: r.seconds for r in results if r.iterations == n}
        print(f"| {n:,} | " + " | ".join(f"{row[s]:.4f}" for s in parallel.STRATEGIES) + " |")
    per_task = task_overhead(1_000, args.repeat)
    print(
        "\nRay per-task overhead (1,000 no-op tasks submitted together): "
        f"{per_task * 1e3:.2f} ms/task, {1 / per_task:,.0f} tasks/s"
    )
    ray.shutdown()


if __name__ == "__main__":
    main()
