"""Graders for notebooks/01_ray_tasks.ipynb.

Whether tasks ran in parallel is decided by behaviour, not by timing: the probe tasks meet at a
rendezvous actor. Submitted together, two of them meet at once; submitted one after another
(``ray.get`` inside the loop) the first waits alone until the rendezvous gives up.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable

from ._common import CheckFailed, expect_type, passed, require_callable, require_ray
from ._learner_calls import call_learner

# How long a probe task waits for a partner before concluding that it runs alone. Only a wrong
# answer pays it; a right one meets its partner as soon as Ray has started two workers.
RENDEZVOUS_TIMEOUT_S = 20.0

# How long your function may run before the check stops it (on top of RENDEZVOUS_TIMEOUT_S where
# a wrong answer may wait for the rendezvous). A right answer needs a few seconds, most of them
# spent starting Ray's worker processes; a slow laptop with a cold Ray needs at most a few more.
TIME_LIMIT_S = 60.0


class Rendezvous:
    """A tiny actor that counts arrivals and opens once ``expected`` tasks have arrived."""

    def __init__(self, expected: int):
        self.expected = expected
        self.arrived = 0
        self.opened = False

    def arrive(self) -> None:
        self.arrived += 1
        if self.arrived >= self.expected:
            self.opened = True

    def open(self) -> None:
        self.opened = True

    def is_open(self) -> bool:
        return self.opened


def _wait_until_open(gate, timeout_s: float) -> bool:
    """Poll the gate from inside a task; True if it opened, False if we gave up waiting."""
    import ray

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ray.get(gate.is_open.remote()):
            return True
        time.sleep(0.01)
    return False


def _probe_square(x, gate, timeout_s):
    """Task body for 1.1: meet another task at the gate, then square ``x``."""
    import ray

    ray.get(gate.arrive.remote())
    met = _wait_until_open(gate, timeout_s)
    return x * x, met


def _gated_value(index, gate, timeout_s):
    """Task body for 1.3: index 0 waits for the gate (the slow task); the others return at once."""
    if index == 0:
        opened = _wait_until_open(gate, timeout_s)
        if not opened:
            import ray

            ray.get(gate.open.remote())
    return index


def _remote_probes():
    import ray

    gate_cls = ray.remote(num_cpus=0)(Rendezvous)
    # Small CPU requests let several probes run at once even on a one-core cluster.
    square = ray.remote(num_cpus=0.25)(_probe_square)
    gated = ray.remote(num_cpus=0.25)(_gated_value)
    return gate_cls, square, gated


def _refuse_refs(exercise: str, values, what: str) -> None:
    import ray

    if any(isinstance(v, ray.ObjectRef) for v in values):
        raise CheckFailed(
            exercise,
            f"{what} contains ObjectRefs, not values. An ObjectRef is a claim ticket for a result; "
            "pass the list of refs to ray.get(...) to fetch the values.",
        )


def check_parallel_map(parallel_map) -> None:
    """Exercise 1.1: ``parallel_map(remote_fn, items)`` runs one task per item, concurrently."""
    require_callable("check_parallel_map", "parallel_map", parallel_map)
    require_ray("check_parallel_map")
    import ray

    gate_cls, square, _ = _remote_probes()
    items = [3, 1, 4, 1, 5, 9]
    gate = gate_cls.remote(2)
    try:
        result = call_learner(
            "1.1",
            "parallel_map(remote_fn, items)",
            parallel_map,
            _Bind(square, gate, RENDEZVOUS_TIMEOUT_S),
            items,
            seconds=RENDEZVOUS_TIMEOUT_S + TIME_LIMIT_S,
            hint="a ray.get on a task that never finishes, or a loop that never ends",
        )
    finally:
        ray.kill(gate)
    example = "a list with one result per item, like [9, 1, 16, 1, 25, 81]"
    result = list(expect_type("1.1", "parallel_map", result, Iterable, example))
    _refuse_refs("1.1", result, "The list you returned")
    if len(result) != len(items):
        raise CheckFailed(
            "1.1", f"expected {len(items)} results (one per item), got {len(result)}."
        )
    values = [v[0] if isinstance(v, tuple) else v for v in result]
    if sorted(values) == sorted(x * x for x in items) and values != [x * x for x in items]:
        raise CheckFailed(
            "1.1",
            f"the results are right but out of order: got {values}, expected "
            f"{[x * x for x in items]}. ray.get on a list returns "
            "results in the order of the list; don't reorder it.",
        )
    if values != [x * x for x in items]:
        raise CheckFailed(
            "1.1",
            f"expected {[x * x for x in items]}, got {values}. "
            "Call remote_fn.remote(x) for each item.",
        )
    if not all(met for _, met in result):
        raise CheckFailed(
            "1.1",
            "your tasks ran one after another, never two at a time. This is the ray.get-in-a-loop "
            "anti-pattern: each ray.get waits for its task before the next one is submitted. "
            "Submit every task first ([remote_fn.remote(x) for "
            "x in items]), then call ray.get once on the list.",
        )
    passed("1.1", f"{len(items)} tasks submitted together and ran concurrently; results in order.")


class _Bind:
    """Looks like a remote function of one argument (``f.remote(x)``); passes the probe's extras."""

    def __init__(self, remote_fn, *extra):
        self._remote_fn = remote_fn
        self._extra = extra

    def remote(self, x):
        return self._remote_fn.remote(x, *self._extra)


def _tagged_triple(x):
    """The plain function for 1.2: triples ``x`` and says which Ray task ran it."""
    import ray

    return x * 3, ray.get_runtime_context().get_task_id()


def check_batched_map(batched_map) -> None:
    """Exercise 1.2: ``batched_map(fn, items, batch_size)`` runs one Ray task per batch."""
    require_callable("check_batched_map", "batched_map", batched_map)
    require_ray("check_batched_map")
    items, batch_size = list(range(23)), 5
    result = call_learner(
        "1.2",
        "batched_map(fn, items, batch_size)",
        batched_map,
        _tagged_triple,
        items,
        batch_size,
        seconds=TIME_LIMIT_S,
        hint="a loop over the batches that never ends, or a ray.get on a task that never finishes",
    )
    example = "one flat list with fn(item) for every item, like [0, 3, 6, ...]"
    result = list(expect_type("1.2", "batched_map", result, Iterable, example))
    _refuse_refs("1.2", result, "The list you returned")
    if result and isinstance(result[0], list):
        raise CheckFailed(
            "1.2",
            "you returned one list per batch; flatten "
            "them into one list of results, in item order.",
        )
    if len(result) != len(items):
        raise CheckFailed(
            "1.2", f"expected {len(items)} results (one per item), got {len(result)}."
        )
    values = [value for value, _ in result]
    if values != [x * 3 for x in items]:
        raise CheckFailed(
            "1.2",
            "expected fn applied to every item in order, "
            f"{[x * 3 for x in items][:6]}..., got {values[:6]}...",
        )
    task_ids = [task for _, task in result]
    if any(task is None for task in task_ids):
        raise CheckFailed(
            "1.2",
            "fn ran in this process, not inside a Ray task. Call it from a @ray.remote function.",
        )
    n_tasks, expected = len(set(task_ids)), math.ceil(len(items) / batch_size)
    if n_tasks == len(items):
        raise CheckFailed(
            "1.2",
            f"you started one task per item ({n_tasks} tasks). Group the items into batches of "
            "batch_size (course_lib.parallel.chunked helps) and start one task per batch.",
        )
    if n_tasks != expected:
        raise CheckFailed(
            "1.2",
            f"{len(items)} items in batches of {batch_size} "
            f"make {expected} tasks; yours ran {n_tasks}.",
        )
    per_task = {task: task_ids.count(task) for task in task_ids}
    if max(per_task.values()) > batch_size:
        raise CheckFailed(
            "1.2",
            f"one task processed {max(per_task.values())} "
            f"items; a batch holds at most {batch_size}.",
        )
    passed(
        "1.2",
        f"{len(items)} items ran in {n_tasks} tasks of at most {batch_size}; results in order.",
    )


def check_as_completed(as_completed) -> None:
    """Exercise 1.3: ``as_completed(refs)`` yields each result as soon as its task finishes."""
    require_callable("check_as_completed", "as_completed", as_completed)
    require_ray("check_as_completed")
    import ray

    gate_cls, _, gated = _remote_probes()
    gate = gate_cls.remote(1_000_000)  # never opens by arrivals; the grader opens it
    refs = [gated.remote(i, gate, RENDEZVOUS_TIMEOUT_S) for i in range(5)]

    def learner_step(fn, *args):
        # A generator runs only when asked for a value, so each step of it is a call of your code.
        return call_learner(
            "1.3",
            "as_completed(refs)",
            fn,
            *args,
            seconds=RENDEZVOUS_TIMEOUT_S + TIME_LIMIT_S,
            hint="a ray.wait or ray.get that waits for a result that never comes, or a loop that "
            "never ends (take each ready ref out of the list you wait on)",
        )

    try:
        results = learner_step(as_completed, refs)
        example = "a generator that yields each value (use `yield`, not `return`)"
        iterator = iter(expect_type("1.3", "as_completed", results, Iterable, example))
        first = learner_step(next, iterator, None)
        ray.get(gate.open.remote())
        rest = learner_step(list, iterator)
    finally:
        # Release the held-back task even when your code raised, so it does not linger. After a
        # hang the check may have stopped the gate already; the tasks then end with its error.
        try:
            ray.get(gate.open.remote())
            ray.get(refs)
        except ray.exceptions.RayError:
            pass
        ray.kill(gate)
    got = [first, *rest] if first is not None else rest
    _refuse_refs("1.3", got, "What as_completed yielded")
    if sorted(got) != list(range(5)):
        raise CheckFailed("1.3", f"expected each of the 5 results exactly once, got {got}.")
    if first == 0:
        raise CheckFailed(
            "1.3",
            "the first value you produced came from the slowest task, which was held back while "
            "four others had already finished: results came in submission order. Use "
            "ready, refs = ray.wait(refs, num_returns=1) in a loop and yield ray.get(ready[0]).",
        )
    passed("1.3", "results arrived as their tasks finished, the slow one last.")
