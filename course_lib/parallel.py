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

from course_lib.validation import is_real_number, require_whole_number

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


# Ray's Chrome-trace events for one task execution on a worker have the category "task::<name>";
# "task:execute" and friends are its phases, "submit_task" and the like happen in the driver.
_TASK_CATEGORY = "task::"


def task_timeline(events=None, *, refs=None, timeout_s: float = 10.0) -> list[dict]:
    """The tasks Ray ran, as rows for a Gantt chart: one dict per task execution, by start time.

    Each row holds ``name`` (the function, or ``Class.method`` for an actor task), ``worker`` (the
    worker process that ran it, as Ray labels it: ``"worker:<worker id>"``), ``start_s`` and
    ``end_s`` (seconds since the earliest start among the rows) and ``task_id``.

    - ``events``: what ``ray.timeline()`` returned, Chrome-trace events (dicts with ``cat``,
      ``tid``, and ``ts``/``dur`` in microseconds). Left out, they are read from the running Ray.
    - ``refs``: keep only the tasks that produced these ObjectRefs. Ray's timeline holds every task
      since ``ray.init()`` (up to the last 100,000), so this is how to pick one experiment.
    - ``timeout_s``: workers send task events to Ray's GCS about once a second, so a task that
      finished a moment ago may not be there yet. Reading from Ray therefore asks again (each
      ``ray.timeline()`` call first waits 1 s) until every task of ``refs`` is there (without
      ``refs``: until there is any task at all), for at most ``timeout_s`` seconds.

    Introduced in notebooks/01_ray_tasks.ipynb (the ``ray.get``-in-a-loop anti-pattern).
    """
    refs = None if refs is None else list(refs)
    wanted = _task_ids(refs)
    if events is not None:
        if not isinstance(events, list):
            raise TypeError(
                "task_timeline(events=...) takes the list that ray.timeline() returns; got "
                f"{type(events).__name__}. Leave events out to read them from the running Ray."
            )
        return _complete(_task_rows(events, wanted), wanted, waited="")
    if not is_real_number(timeout_s) or timeout_s < 0:
        raise ValueError(f"task_timeline(timeout_s={timeout_s!r}): expected seconds >= 0.")

    import ray

    if not ray.is_initialized():
        raise RuntimeError(
            "task_timeline() reads the task events of the running Ray, and Ray is not running. "
            "Start it with init_ray(), run some tasks, then call task_timeline()."
        )
    if refs is not None:
        unique = list(dict.fromkeys(refs))
        done, _ = ray.wait(unique, num_returns=len(unique), timeout=0, fetch_local=False)
        if len(done) < len(unique):
            raise ValueError(
                f"{len(unique) - len(done)} of the {len(unique)} refs are not finished yet, and a "
                "task appears in the timeline only once it has finished. Wait for them first "
                "(ray.get(refs)), then call task_timeline(refs=refs)."
            )
    deadline = time.monotonic() + timeout_s
    while True:
        rows = _task_rows(ray.timeline(), wanted)
        found = {row["task_id"] for row in rows}
        if (found >= wanted if wanted else rows) or time.monotonic() >= deadline:
            return _complete(rows, wanted, waited=f" after waiting {timeout_s:g} s")


def _task_ids(refs: list | None) -> set[str] | None:
    """The hex task IDs behind ``refs`` (several refs of one task count once); None for all."""
    if refs is None:
        return None
    import ray

    example = "refs = [f.remote(x) for x in data]"
    if not refs:
        raise ValueError(f"task_timeline(refs=[]): no refs given; pass some, such as {example}.")
    wrong = [ref for ref in refs if not isinstance(ref, ray.ObjectRef)]
    if wrong:
        raise TypeError(
            "task_timeline(refs=...) takes the ObjectRefs that .remote() returned, such as "
            f"{example}; got {type(wrong[0]).__name__} {wrong[0]!r:.60}."
        )
    return {ref.task_id().hex() for ref in refs}


def _task_rows(events, wanted: set[str] | None) -> list[dict]:
    """One row per task execution in Chrome-trace ``events`` (only ``wanted`` IDs if given)."""
    rows = []
    for event in events:
        category = event.get("cat", "")
        if not category.startswith(_TASK_CATEGORY) or event.get("ph") != "X":
            continue
        task_id = event.get("args", {}).get("task_id")
        if wanted is not None and task_id not in wanted:
            continue
        start_us = event["ts"]
        rows.append(
            {
                "name": category[len(_TASK_CATEGORY) :],
                "worker": event["tid"],
                "start_s": start_us / 1e6,
                "end_s": (start_us + event["dur"]) / 1e6,
                "task_id": task_id,
            }
        )
    rows.sort(key=lambda row: row["start_s"])
    if rows:
        first = rows[0]["start_s"]
        for row in rows:
            row["start_s"] -= first
            row["end_s"] -= first
    return rows


def _complete(rows: list[dict], wanted: set[str] | None, waited: str) -> list[dict]:
    """``rows`` when they hold every task asked for; otherwise an error that says why not."""
    if wanted is None and not rows:
        raise ValueError(
            f"No task events in Ray's timeline{waited}: run some tasks first. It holds the tasks "
            "finished since ray.init() in this Ray session, and workers report them to Ray about "
            "once a second."
        )
    found = {row["task_id"] for row in rows}
    if wanted is not None and not found >= wanted:
        raise ValueError(
            f"Only {len(found & wanted)} of the {len(wanted)} tasks behind refs are in Ray's "
            f"timeline{waited}. Refs made by ray.put() have no task; otherwise Ray may not have "
            "reported them yet (a busy machine: pass a larger timeout_s) or dropped their events "
            "(it keeps a bounded number)."
        )
    return rows


def plot_timeline(rows: Sequence[dict], ax=None, title: str = "Ray task timeline"):
    """A Gantt chart of ``task_timeline`` rows: one lane per worker process, one bar per task.

    Lanes are numbered "worker 1", "worker 2", ... in the order the workers started their first
    task; seconds run along x. With several task names the bars are coloured by name, with a
    legend. Introduced in notebooks/01_ray_tasks.ipynb.
    """
    import matplotlib.pyplot as plt

    rows = list(rows)
    if not rows:
        raise ValueError(
            "plot_timeline() got no rows to draw; make them with task_timeline(), after the "
            "tasks have run."
        )
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3))
    rows = sorted(rows, key=lambda row: row["start_s"])
    lanes = {worker: lane for lane, worker in enumerate(dict.fromkeys(r["worker"] for r in rows))}
    names = list(dict.fromkeys(row["name"] for row in rows))
    colours = {name: f"C{i % 10}" for i, name in enumerate(names)}
    for name in names:
        mine = [row for row in rows if row["name"] == name]
        ax.barh(
            [lanes[row["worker"]] for row in mine],
            [row["end_s"] - row["start_s"] for row in mine],
            left=[row["start_s"] for row in mine],
            height=0.6,
            color=colours[name],
            edgecolor="white",  # tasks back to back on one worker stay two bars
            label=name,
        )
    ax.set_yticks(range(len(lanes)), [f"worker {lane + 1}" for lane in lanes.values()])
    ax.set_ylim(len(lanes) - 0.5, -0.5)  # worker 1 on top, like a Gantt chart
    ax.set_xlabel("seconds since the first task started")
    ax.set_title(title)
    if len(names) > 1:
        ax.legend(loc="best", fontsize="small")
    return ax
