"""``Concurrently``: run several sub-plans of one execution plan side by side.

DQN's plan has two: one stores fresh samples in the replay buffer, the other replays and trains.
``Concurrently([store_op, replay_op], mode="round_robin", output_indexes=[1])`` pulls one item
from each in turn and hands on only the training results. All sub-plans share one MetricsContext.
Introduced in notebooks/10_execution_plans.ipynb.
"""

from __future__ import annotations

import queue
import threading
import time

from course_lib.execution.local_iterator import LocalIterator, NextValueNotReady, _SharedMetrics

CONCURRENCY_MODES = ("round_robin", "async")

# How long a thread waits before asking a source that had nothing ready again (seconds).
_NOT_READY_PAUSE_S = 0.001


def Concurrently(
    ops: list[LocalIterator],
    *,
    mode: str = "round_robin",
    output_indexes: list[int] | None = None,
    round_robin_weights: list[int] | None = None,
) -> LocalIterator:
    """Items of all ``ops`` merged into one stream; only those of ``output_indexes`` (default: all) are yielded.

    - ``mode="round_robin"``: in each round, pull ``round_robin_weights[i]`` items (default 1) from
      op ``i``, in order; an op that yields ``NextValueNotReady`` is skipped for the rest of the round.
      The ops not in ``output_indexes`` are still pulled: they run for their side effects.
    - ``mode="async"``: every op runs in its own daemon thread and items come out in the order they
      arrive, so the interleaving changes from run to run. The threads stop when this iterator is
      closed or garbage collected.

    ``NextValueNotReady`` items are never yielded. Introduced in notebooks/10_execution_plans.ipynb.
    """
    ops = list(ops)
    if not ops:
        raise ValueError(
            "Concurrently() got no ops; pass a list of LocalIterators, e.g. [store_op, replay_op]."
        )
    for index, op in enumerate(ops):
        if not isinstance(op, LocalIterator):
            raise TypeError(
                f"Concurrently() takes LocalIterators (e.g. ParallelRollouts(...), Replay(...)); ops[{index}] is a {type(op).__name__}."
            )
    if mode not in CONCURRENCY_MODES:
        raise ValueError(f"Unknown Concurrently mode {mode!r}; use one of {CONCURRENCY_MODES}.")
    outputs = range(len(ops)) if output_indexes is None else output_indexes
    bad = [
        i for i in outputs if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < len(ops)
    ]
    if bad:
        raise ValueError(
            f"output_indexes {list(outputs)} has {bad}, which are not positions in the list of {len(ops)} ops (0..{len(ops) - 1})."
        )
    outputs = set(outputs)
    merged = merge_indexed(ops, mode=mode, round_robin_weights=round_robin_weights)

    def select():
        for pair in merged:
            if not isinstance(pair, NextValueNotReady) and pair[0] in outputs:
                yield pair[1]

    concurrently = merged._derive(select, "Concurrently")
    concurrently.name = f"Concurrently([{', '.join(op.name for op in ops)}], mode={mode!r}, output_indexes={sorted(outputs)})"
    return concurrently


def merge_indexed(
    iterators: list[LocalIterator],
    *,
    mode: str = "round_robin",
    round_robin_weights: list[int] | None = None,
) -> LocalIterator:
    """``(index, item)`` pairs from all ``iterators``, which from now on share the first one's MetricsContext.

    In round-robin mode a ``NextValueNotReady`` from a source is passed on as it is (without an index).
    Used by ``Concurrently`` and ``LocalIterator.union``. Introduced in notebooks/10_execution_plans.ipynb.
    """
    if round_robin_weights is None:
        weights = [1] * len(iterators)
    elif mode != "round_robin":
        raise ValueError(
            f"round_robin_weights only apply to mode='round_robin', not {mode!r}; remove them or change the mode."
        )
    else:
        weights = list(round_robin_weights)
        if len(weights) != len(iterators) or any(
            isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in weights
        ):
            raise ValueError(
                f"round_robin_weights must be one whole number >= 1 per op ({len(iterators)} ops), got {round_robin_weights!r}."
            )
    cell = _SharedMetrics(iterators[0].shared_metrics, linked=[it._cell for it in iterators])
    if mode == "round_robin":
        return LocalIterator(
            lambda: _round_robin(iterators, weights),
            shared_metrics=cell,
            name="merge_round_robin",
            parents=iterators,
        )
    # The threads own the sources (and close them); closing this iterator only sets the stop flag.
    return LocalIterator(lambda: _threaded(iterators), shared_metrics=cell, name="merge_async")


def _round_robin(iterators, weights):
    active = list(range(len(iterators)))
    while active:
        for index in list(active):
            for _ in range(weights[index]):
                try:
                    item = next(iterators[index])
                except StopIteration:
                    active.remove(index)
                    break
                if isinstance(item, NextValueNotReady):
                    yield item
                    break
                yield index, item


class _Finished:
    """Put on the queue by a thread whose source is exhausted."""


class _Failure:
    """Put on the queue by a thread whose source raised ``error``; the consumer raises it again."""

    def __init__(self, error: BaseException):
        self.error = error


def _threaded(iterators):
    # A small queue: a thread that runs ahead blocks instead of filling memory with items nobody reads.
    items = queue.Queue(maxsize=len(iterators))
    stop = threading.Event()
    for index, it in enumerate(iterators):
        threading.Thread(
            target=_pump,
            args=(index, it, items, stop),
            daemon=True,
            name=f"course_lib-concurrently-{index}",
        ).start()
    try:
        running = len(iterators)
        while running:
            index, item = items.get()
            if isinstance(item, _Finished):
                running -= 1
            elif isinstance(item, _Failure):
                raise item.error
            else:
                yield index, item
    finally:
        stop.set()


def _pump(index: int, source: LocalIterator, items: queue.Queue, stop: threading.Event) -> None:
    """Thread body: move items from ``source`` to the queue until it ends, fails, or ``stop`` is set."""
    try:
        while not stop.is_set():
            try:
                item = next(source)
            except StopIteration:
                break
            if isinstance(item, NextValueNotReady):
                time.sleep(_NOT_READY_PAUSE_S)  # nothing yet: let the other threads run
                continue
            _put(items, (index, item), stop)
        last = _Finished()
    except BaseException as error:  # handed to the consumer, which raises it in the main thread
        last = _Failure(error)
    _put(items, (index, last), stop)
    source.close()


def _put(items: queue.Queue, entry, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            items.put(entry, timeout=0.05)
            return
        except queue.Full:
            continue
