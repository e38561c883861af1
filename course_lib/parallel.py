"""Helpers for the Ray Core lessons: work to parallelize, timing, batching and speedup plots.

Introduced in notebooks/01_ray_tasks.ipynb; the benchmark in benchmarks/bench_parallel.py uses the
same functions, so the lesson's figures and BENCHMARKS.md measure the same thing.

The functions that tasks run live here, in an importable module, on purpose: a
``multiprocessing.Pool`` that starts its workers with "spawn" (the default on macOS and Windows)
cannot find functions defined in a notebook, and a Ray worker imports this module by name.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from course_lib.validation import require_whole_number

STRATEGIES = ("serial", "pool", "ray", "ray_batched")


def mul(x):
    """The 2021 RLlib tutorial's example task: multiply by ten. Far too small to be worth a task of
    its own."""
    return x * 10


def busy_work(x: int, iterations: int = 100_000) -> int:
    """CPU-bound pure-Python work: about ``iterations`` loop steps (~30-60 ns each here).

    It holds the GIL the whole time, so threads cannot speed it up; processes (Pool, Ray) can.
    Returns a number that depends on both arguments, so results can be checked.
    """
    total = x
    for i in range(iterations):
        total = (total * 31 + i) % 1_000_003
    return total


def chunked(items: Sequence, chunk_size: int) -> list[list]:
    """Split ``items`` into consecutive lists of ``chunk_size`` (the last one may be shorter).

    ``chunked(range(7), 3) -> [[0, 1, 2], [3, 4, 5], [6]]``. Batching many tiny items into one
    task per chunk is how a Ray program pays the per-task overhead once per chunk, not per item.
    """
    require_whole_number(chunk_size, "chunk_size", minimum=1)
    items = list(items)
    return [items[i : i + chunk_size] for i in range(0, len(items), chunk_size)]


def apply_to_chunk(fn: Callable, chunk: Sequence, *args) -> list:
    """Run ``fn(item, *args)`` on every item of one chunk: the body of a batched task."""
    return [fn(item, *args) for item in chunk]


@dataclass
class Timing:
    """Wall-clock times of repeated runs; report the median, which shrugs off a noisy neighbour."""

    seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def best(self) -> float:
        return min(self.seconds)

    def __str__(self) -> str:
        return (
            f"median {self.median * 1e3:.1f} ms (best "
            f"{self.best * 1e3:.1f} ms, {len(self.seconds)} runs)"
        )


def timeit(fn: Callable[[], object], repeat: int = 5, warmup: int = 1) -> Timing:
    """Time ``fn()`` ``repeat`` times after ``warmup`` untimed calls (imports, worker start-up)."""
    if repeat < 1 or warmup < 0:
        raise ValueError(
            f"timeit needs repeat >= 1 and warmup >= 0, got repeat={repeat}, warmup={warmup}."
        )
    for _ in range(warmup):
        fn()
    timing = Timing()
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        timing.seconds.append(time.perf_counter() - start)
    return timing


def run_serial(fn: Callable, items: Iterable, *args) -> list:
    """The baseline: a list comprehension in this process."""
    return [fn(item, *args) for item in items]


def run_pool(pool, fn: Callable, items: Sequence, *args) -> list:
    """``multiprocessing.Pool.map`` over ``items``; ``fn`` must be importable (defined in a
    module)."""
    if args:
        return pool.starmap(fn, [(item, *args) for item in items])
    return pool.map(fn, items)


def run_ray(fn: Callable, items: Sequence, *args) -> list:
    """One Ray task per item: submit them all, then a single ``ray.get`` on the list."""
    import ray

    remote_apply = _remote(_apply_one)
    return ray.get([remote_apply.remote(fn, item, *args) for item in items])


def run_ray_batched(fn: Callable, items: Sequence, *args, chunk_size: int | None = None) -> list:
    """One Ray task per chunk of items; by default two chunks per CPU so the cores stay busy."""
    import ray

    if chunk_size is None:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        chunk_size = max(1, math.ceil(len(items) / (2 * cpus)))
    remote_chunk = _remote(apply_to_chunk)
    chunks = ray.get(
        [remote_chunk.remote(fn, chunk, *args) for chunk in chunked(items, chunk_size)]
    )
    return [result for chunk in chunks for result in chunk]


def _apply_one(fn: Callable, item, *args):
    return fn(item, *args)


_REMOTE_CACHE: dict = {}


def _remote(fn: Callable):
    """The ``ray.remote`` version of ``fn``, made once per process (registering costs a round
    trip)."""
    if fn not in _REMOTE_CACHE:
        import ray

        _REMOTE_CACHE[fn] = ray.remote(fn)
    return _REMOTE_CACHE[fn]


@dataclass(frozen=True)
class SpeedupResult:
    """One cell of the comparison: how long ``strategy`` took on ``n_tasks`` tasks of one size."""

    strategy: str
    iterations: int
    n_tasks: int
    seconds: float
    serial_seconds: float

    @property
    def speedup(self) -> float:
        return self.serial_seconds / self.seconds

    @property
    def task_ms(self) -> float:
        """Serial time of one task: the "task size" in the lesson's sense."""
        return 1e3 * self.serial_seconds / self.n_tasks


def compare_strategies(
    iteration_counts: Sequence[int],
    n_tasks: int = 32,
    repeat: int = 3,
    strategies: Sequence[str] = STRATEGIES,
    processes: int | None = None,
    progress: bool = False,
) -> list[SpeedupResult]:
    """Time ``busy_work`` over ``n_tasks`` items for each task size and strategy (medians).

    The strategies take turns within each repeat, so a burst of load from elsewhere on the
    machine hits all of them rather than skewing one.

    Ray must already be running (``course_lib.init_ray()``). The Pool is started once with
    "spawn" and warmed up before timing, like Ray's already-running workers; "spawn" also keeps
    the Pool from forking a process that holds Ray's threads.
    """
    import multiprocessing

    import ray

    unknown = set(strategies) - set(STRATEGIES)
    if unknown:
        raise ValueError(f"Unknown strategies {sorted(unknown)}; choose from {list(STRATEGIES)}.")
    timed = list(
        dict.fromkeys(["serial", *strategies])
    )  # serial is the reference for every speedup
    processes = processes or os.cpu_count()
    items = list(range(n_tasks))
    chunk_size = max(1, math.ceil(n_tasks / (2 * int(ray.cluster_resources().get("CPU", 1)))))
    runners = {
        "serial": lambda n: run_serial(busy_work, items, n),
        "ray": lambda n: run_ray(busy_work, items, n),
        "ray_batched": lambda n: run_ray_batched(busy_work, items, n, chunk_size=chunk_size),
    }
    results = []
    sizes = list(iteration_counts)
    if progress:
        from tqdm.auto import tqdm

        sizes = tqdm(sizes, desc="task sizes")
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        runners["pool"] = lambda n: run_pool(pool, busy_work, items, n)
        for n in sizes:
            times = {name: [] for name in timed}
            for name in timed:  # warm-up: worker start-up and imports are not part of the figure
                runners[name](n)
            # Round-robin repeats: a burst of load from a neighbour hits every strategy alike.
            for _ in range(repeat):
                for name in timed:
                    start = time.perf_counter()
                    runners[name](n)
                    times[name].append(time.perf_counter() - start)
            serial = statistics.median(times["serial"])
            results.extend(
                SpeedupResult(name, n, n_tasks, statistics.median(times[name]), serial)
                for name in strategies
            )
    return results


def format_table(results: Sequence[SpeedupResult]) -> str:
    """A markdown table: one row per task size, one speedup column per strategy."""
    strategies = list(dict.fromkeys(r.strategy for r in results))
    by_size: dict[int, dict[str, SpeedupResult]] = {}
    for r in results:
        by_size.setdefault(r.iterations, {})[r.strategy] = r
    header = "| iterations/task | ms/task (serial) | " + " | ".join(strategies) + " |"
    lines = [header, "|" + "---|" * (2 + len(strategies))]
    for n, row in by_size.items():
        any_result = next(iter(row.values()))
        cells = [f"{row[s].speedup:.3g}x" if s in row else "" for s in strategies]
        lines.append(f"| {n:,} | {any_result.task_ms:.3f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_speedup(results: Sequence[SpeedupResult], ax=None, n_cpus: int | None = None):
    """Speedup over serial against task size (log scale), one line per strategy."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    for strategy in dict.fromkeys(r.strategy for r in results):
        if strategy == "serial":
            continue
        rows = sorted((r for r in results if r.strategy == strategy), key=lambda r: r.task_ms)
        ax.plot([r.task_ms for r in rows], [r.speedup for r in rows], marker="o", label=strategy)
    ax.axhline(1.0, color="gray", linestyle="--", linewidth=1, label="serial (break-even)")
    n_cpus = n_cpus or os.cpu_count()
    ax.axhline(n_cpus, color="black", linestyle=":", linewidth=1, label=f"ideal ({n_cpus} cores)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("work per task, ms (serial)")
    ax.set_ylabel("speedup over serial")
    ax.set_title("Parallel speedup vs task size")
    ax.legend()
    return ax
