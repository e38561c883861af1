"""``LocalIterator``: the stream that an execution plan is built from, and how streams merge.

An execution plan is a chain of lazy iterators: ``ParallelRollouts(...)`` yields sample batches,
``.combine(ConcatBatches(...))`` groups them, ``.for_each(TrainOneStep(...))`` learns on each group.
Nothing runs until the trainer pulls the next item from the end of the chain; every pull flows
back to the source and one item flows forward through each operator.

All iterators of one plan share one ``MetricsContext`` (counters, timers, learner info; see
metrics_context.py). Operators read it with ``get_shared_metrics()`` while the plan pulls them. A
source that has nothing to give yet (a replay buffer still filling) yields a
``NextValueNotReady()`` instead of blocking; operators pass it through untouched and
``Concurrently`` (concurrency_ops.py, built on ``merge_indexed`` here) drops it.
Introduced in notebooks/11_execution_plans.ipynb.
"""

from __future__ import annotations

import contextvars
import queue
import threading
import time

from course_lib.execution.metrics_context import MetricsContext
from course_lib.validation import is_whole_number

# How long a thread waits before asking a source that had nothing ready again (seconds).
_NOT_READY_PAUSE_S = 0.001


class NextValueNotReady:
    """Yielded by a source that has no item yet (e.g. ``Replay`` before ``learning_starts``).

    Test with ``isinstance(item, NextValueNotReady)``. ``for_each``/``filter``/``combine``/``batch``
    hand it on without calling their function; ``take`` and ``Concurrently`` skip it.
    Introduced in notebooks/11_execution_plans.ipynb.
    """

    def __repr__(self) -> str:
        return "NextValueNotReady()"


class _SharedMetrics:
    """A cell holding the MetricsContext of a family of iterators.

    ``merge_indexed`` links several cells, so that re-pointing one re-points them all.
    """

    def __init__(self, metrics: MetricsContext | None = None, linked: list[_SharedMetrics] = ()):
        self.linked = list(linked)
        self.set(metrics or MetricsContext())

    def set(self, metrics: MetricsContext) -> None:
        self.metrics = metrics
        for cell in self.linked:
            cell.set(metrics)


_CURRENT_METRICS: contextvars.ContextVar[MetricsContext | None] = contextvars.ContextVar(
    "course_lib_metrics", default=None
)


def get_shared_metrics() -> MetricsContext:
    """The MetricsContext of the plan whose iterator is being pulled right now.

    Call it inside an operator (e.g. a function given to ``.for_each()``).
    Introduced in notebooks/11_execution_plans.ipynb.
    """
    metrics = _CURRENT_METRICS.get()
    if metrics is None:
        raise RuntimeError(
            "get_shared_metrics() was called outside a running execution plan. It only works "
            "inside an operator while a LocalIterator pulls it (e.g. in a function given to "
            ".for_each()). To read the metrics of a plan from outside, use "
            "`iterator.shared_metrics`."
        )
    return metrics


class LocalIterator:
    """A lazy stream of items; every method that returns an iterator shares this one's metrics.

    ``base`` is an iterable, or a function returning one (a generator function); it is started on
    the first ``next()``. Introduced in notebooks/11_execution_plans.ipynb.
    """

    def __init__(
        self,
        base,
        *,
        shared_metrics: _SharedMetrics | None = None,
        name: str = "LocalIterator",
        parents=(),
    ):
        self._base = base
        self._it = None
        self._cell = shared_metrics or _SharedMetrics()
        self._parents = list(parents)  # closed together with this iterator
        self.name = name

    @property
    def shared_metrics(self) -> MetricsContext:
        return self._cell.metrics

    def __iter__(self) -> LocalIterator:
        return self

    def __next__(self):
        if self._it is None:
            self._it = iter(self._base() if callable(self._base) else self._base)
        token = _CURRENT_METRICS.set(self._cell.metrics)
        try:
            return next(self._it)
        finally:
            _CURRENT_METRICS.reset(token)

    def __repr__(self) -> str:
        return f"LocalIterator[{self.name}]"

    def close(self) -> None:
        """Stop this iterator and the ones it pulls from (their generators' ``finally`` runs)."""
        if self._it is not None and hasattr(self._it, "close"):
            self._it.close()
        for parent in self._parents:
            parent.close()

    def _derive(self, generator_fn, name: str) -> LocalIterator:
        return LocalIterator(
            generator_fn, shared_metrics=self._cell, name=f"{self.name}.{name}", parents=[self]
        )

    def for_each(self, fn) -> LocalIterator:
        """``fn(item)`` for every item."""

        def apply():
            for item in self:
                yield item if isinstance(item, NextValueNotReady) else fn(item)

        return self._derive(apply, f"for_each({_name_of(fn)})")

    def filter(self, fn) -> LocalIterator:
        """Only the items for which ``fn(item)`` is true."""

        def keep():
            for item in self:
                if isinstance(item, NextValueNotReady) or fn(item):
                    yield item

        return self._derive(keep, f"filter({_name_of(fn)})")

    def combine(self, fn) -> LocalIterator:
        """``fn(item)`` returns a list (maybe empty); its elements become the new items."""

        def flatten():
            for item in self:
                if isinstance(item, NextValueNotReady):
                    yield item
                else:
                    yield from fn(item)

        return self._derive(flatten, f"combine({_name_of(fn)})")

    def batch(self, n: int) -> LocalIterator:
        """Lists of ``n`` consecutive items (a last shorter list if the stream ends)."""

        def group():
            items = []
            for item in self:
                if isinstance(item, NextValueNotReady):
                    yield item
                    continue
                items.append(item)
                if len(items) == n:
                    yield items
                    items = []
            if items:
                yield items

        return self._derive(group, f"batch({n})")

    def take(self, n: int) -> list:
        """The next ``n`` items as a list (``NextValueNotReady`` skipped; fewer if it ends)."""
        items = []
        for item in self:
            if not isinstance(item, NextValueNotReady):
                items.append(item)
                if len(items) == n:
                    break
        return items

    def union(self, *others: LocalIterator, deterministic: bool = True) -> LocalIterator:
        """Items of this iterator and ``others`` in one stream, all sharing one MetricsContext.

        ``deterministic=True``: round-robin, one item from each in turn (an exhausted one drops
        out).
        ``deterministic=False``: each iterator runs in a thread; items come in arrival order.
        """
        merged = merge_indexed([self, *others], mode="round_robin" if deterministic else "async")
        union = merged.for_each(_second)
        union.name = f"union({', '.join(it.name for it in (self, *others))})"
        return union


def _second(pair):
    return pair[1]


def _name_of(fn) -> str:
    return getattr(fn, "__name__", None) or type(fn).__name__


def merge_indexed(
    iterators: list[LocalIterator],
    *,
    mode: str = "round_robin",
    round_robin_weights: list[int] | None = None,
) -> LocalIterator:
    """``(index, item)`` pairs from all ``iterators``, which from now on share one MetricsContext.

    The shared context is the first iterator's. In round-robin mode a ``NextValueNotReady`` from a
    source is passed on as it is (without an index). Used by ``Concurrently`` and
    ``LocalIterator.union``. Introduced in notebooks/11_execution_plans.ipynb.
    """
    if round_robin_weights is None:
        weights = [1] * len(iterators)
    elif mode != "round_robin":
        raise ValueError(
            f"round_robin_weights only apply to mode='round_robin', not {mode!r}; remove them "
            "or change the mode."
        )
    else:
        weights = list(round_robin_weights)
        if len(weights) != len(iterators) or any(not is_whole_number(w) or w < 1 for w in weights):
            raise ValueError(
                f"round_robin_weights must be one whole number >= 1 per op ({len(iterators)} ops), "
                f"got {round_robin_weights!r}."
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
    # A small queue: a thread that runs ahead blocks instead of filling memory with unread items.
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
    """Thread body: move items from ``source`` to the queue until it ends, fails, or ``stop``."""
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


def gather_sync(
    actors: list, method_name: str, *args, wait_timer: str | None = None
) -> LocalIterator:
    """Each item is ``[actor.<method_name>(*args) for actor in actors]``, in actor order.

    All actors are called at once. ``wait_timer`` names a shared timer for the time spent waiting.
    Introduced in notebooks/11_execution_plans.ipynb.
    """
    import ray

    _check_actors(actors, "gather_sync")

    def rounds():
        while True:
            started = time.perf_counter()
            results = ray.get([getattr(actor, method_name).remote(*args) for actor in actors])
            if wait_timer is not None:
                get_shared_metrics().timers[wait_timer].push(time.perf_counter() - started)
            yield results

    return LocalIterator(rounds, name=f"gather_sync({method_name})")


def gather_async(
    actors: list,
    method_name: str,
    *args,
    num_async: int = 1,
    wait_timer: str | None = None,
    with_source: bool = False,
) -> LocalIterator:
    """Results of ``actor.<method_name>(*args)`` in the order they finish.

    ``num_async`` calls are in flight per actor. While an item is processed,
    ``shared_metrics.current_actor`` is the actor that produced it. That actor's next call is only
    sent when the next item is requested, so whatever the plan sent it in between (new weights)
    reaches it first. ``wait_timer`` names a shared timer for the time spent waiting.
    ``with_source=True`` makes each item an ``(actor, result)`` pair: needed when two sub-plans run
    in threads (``Concurrently(mode="async")``), where ``current_actor`` names the source of the
    latest item of either thread (Ape-X, notebooks/15_scaling_out.ipynb).
    Introduced in notebooks/11_execution_plans.ipynb.
    """
    import ray

    _check_actors(actors, "gather_async")
    if not is_whole_number(num_async) or num_async < 1:
        raise ValueError(
            "num_async is the number of calls in flight per actor: a whole number >= 1, "
            f"got {num_async!r}."
        )

    def results():
        pending = {
            getattr(actor, method_name).remote(*args): actor
            for actor in actors
            for _ in range(num_async)
        }
        previous = None
        while True:
            if previous is not None:
                pending[getattr(previous, method_name).remote(*args)] = previous
            metrics = get_shared_metrics()
            started = time.perf_counter()
            [ready], _ = ray.wait(list(pending), num_returns=1)
            result = ray.get(ready)
            if wait_timer is not None:
                metrics.timers[wait_timer].push(time.perf_counter() - started)
            previous = pending.pop(ready)
            metrics.current_actor = previous
            yield (previous, result) if with_source else result

    return LocalIterator(results, name=f"gather_async({method_name})")


def _check_actors(actors, caller: str) -> None:
    if not actors:
        raise ValueError(
            f"{caller}() got no actors. With no remote workers (num_workers=0) sample on the "
            "local worker instead; ParallelRollouts and AsyncGradients do that for you."
        )
