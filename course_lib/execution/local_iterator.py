"""``LocalIterator``: the stream that an execution plan is built from, and the metrics it shares.

An execution plan is a chain of lazy iterators: ``ParallelRollouts(...)`` yields sample batches,
``.combine(ConcatBatches(...))`` groups them, ``.for_each(TrainOneStep(...))`` learns on each group.
Nothing runs until the trainer pulls the next item from the end of the chain; every pull flows
back to the source and one item flows forward through each operator.

All iterators of one plan share one ``MetricsContext`` (counters, timers, learner info). Operators
read it with ``_get_shared_metrics()`` while the plan pulls them. A source that has nothing to give
yet (a replay buffer still filling) yields a ``NextValueNotReady()`` instead of blocking; operators
pass it through untouched and ``Concurrently`` drops it.
Introduced in notebooks/10_execution_plans.ipynb.
"""

from __future__ import annotations

import contextvars
import time
from collections import defaultdict, deque


class NextValueNotReady:
    """Yielded by a source that has no item yet (e.g. ``Replay`` before ``learning_starts``).

    Test with ``isinstance(item, NextValueNotReady)``. ``for_each``/``filter``/``combine``/``batch``
    hand it on without calling their function; ``take`` and ``Concurrently`` skip it.
    Introduced in notebooks/10_execution_plans.ipynb.
    """

    def __repr__(self) -> str:
        return "NextValueNotReady()"


class TimerStat:
    """Durations in seconds of the last ``window`` timed sections; ``mean`` averages them.

    Use ``timer.push(seconds)`` or ``with timer: ...``. Introduced in notebooks/10_execution_plans.ipynb.
    """

    def __init__(self, window: int = 20):
        self._samples: deque[float] = deque(maxlen=window)
        self.count = 0  # sections timed since creation, not only those in the window
        self._start: float | None = None

    def push(self, seconds: float) -> None:
        self._samples.append(float(seconds))
        self.count += 1

    @property
    def mean(self) -> float:
        """Mean of the samples in the window; 0.0 before the first one."""
        return sum(self._samples) / len(self._samples) if self._samples else 0.0

    def __enter__(self) -> TimerStat:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc_info) -> None:
        self.push(time.perf_counter() - self._start)


class MetricsContext:
    """What the operators of one plan share.

    - ``counters``: ``defaultdict(int)``, e.g. ``counters["num_steps_sampled"]``;
    - ``timers``: ``defaultdict(TimerStat)``, e.g. ``with timers["sample"]: ...``;
    - ``info``: free-form, e.g. ``info["learner"] = {policy_id: learner_stats}``;
    - ``current_actor``: in async modes, the remote worker that produced the item being processed.

    Introduced in notebooks/10_execution_plans.ipynb.
    """

    def __init__(self):
        self.counters: defaultdict[str, int] = defaultdict(int)
        self.timers: defaultdict[str, TimerStat] = defaultdict(TimerStat)
        self.info: dict = {}
        self.current_actor = None
        # The last finished episodes that result statistics average over (StandardMetricsReporting).
        self.episode_window: deque = deque()

    def get_state(self) -> dict:
        """Counters and the episode window as plain data, for a checkpoint (timers and info are rebuilt while running)."""
        from course_lib.evaluation.metrics import metrics_to_plain

        return {
            "counters": dict(self.counters),
            "episode_window": [metrics_to_plain(e) for e in self.episode_window],
        }

    def set_state(self, state: dict) -> None:
        from course_lib.evaluation.metrics import metrics_from_plain

        self.counters = defaultdict(int, state["counters"])
        self.episode_window = deque(
            map(metrics_from_plain, state["episode_window"]), maxlen=self.episode_window.maxlen
        )


class _SharedMetrics:
    """A cell holding the MetricsContext of a family of iterators; ``union`` re-points several cells at one."""

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


def _get_shared_metrics() -> MetricsContext:
    """The MetricsContext of the plan whose iterator is being pulled right now (call it inside an operator)."""
    metrics = _CURRENT_METRICS.get()
    if metrics is None:
        raise RuntimeError(
            "_get_shared_metrics() was called outside a running execution plan. It only works inside an "
            "operator while a LocalIterator pulls it (e.g. in a function given to .for_each()). To read the "
            "metrics of a plan from outside, use `iterator.shared_metrics`."
        )
    return metrics


class LocalIterator:
    """A lazy stream of items; every method that returns an iterator shares this one's metrics.

    ``base`` is an iterable, or a function returning one (a generator function); it is started on
    the first ``next()``. Introduced in notebooks/10_execution_plans.ipynb.
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
        """Stop this iterator and the ones it pulls from (their generators' ``finally`` blocks run)."""
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
        """``fn(item)`` returns a list (maybe empty); its elements become the items of the new iterator."""

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
        """The next ``n`` items as a list (``NextValueNotReady`` skipped; fewer if the stream ends)."""
        items = []
        for item in self:
            if not isinstance(item, NextValueNotReady):
                items.append(item)
                if len(items) == n:
                    break
        return items

    def union(self, *others: LocalIterator, deterministic: bool = True) -> LocalIterator:
        """Items of this iterator and ``others`` merged into one stream, all sharing one MetricsContext.

        ``deterministic=True``: round-robin, one item from each in turn (an exhausted one drops out).
        ``deterministic=False``: each iterator runs in a thread; items come in arrival order.
        """
        from course_lib.execution.concurrency_ops import merge_indexed

        merged = merge_indexed([self, *others], mode="round_robin" if deterministic else "async")
        union = merged.for_each(_second)
        union.name = f"union({', '.join(it.name for it in (self, *others))})"
        return union


def _second(pair):
    return pair[1]


def _name_of(fn) -> str:
    return getattr(fn, "__name__", None) or type(fn).__name__


def gather_sync(
    actors: list, method_name: str, *args, wait_timer: str | None = None
) -> LocalIterator:
    """Each item is ``[actor.<method_name>(*args) for actor in actors]``: all called at once, results in actor order.

    ``wait_timer`` names a shared timer for the time spent waiting. Introduced in notebooks/10_execution_plans.ipynb.
    """
    import ray

    _check_actors(actors, "gather_sync")

    def rounds():
        while True:
            started = time.perf_counter()
            results = ray.get([getattr(actor, method_name).remote(*args) for actor in actors])
            if wait_timer is not None:
                _get_shared_metrics().timers[wait_timer].push(time.perf_counter() - started)
            yield results

    return LocalIterator(rounds, name=f"gather_sync({method_name})")


def gather_async(
    actors: list, method_name: str, *args, num_async: int = 1, wait_timer: str | None = None
) -> LocalIterator:
    """Results of ``actor.<method_name>(*args)`` in the order they finish, ``num_async`` calls in flight per actor.

    While an item is processed, ``shared_metrics.current_actor`` is the actor that produced it. That
    actor's next call is only sent when the next item is requested, so whatever the plan sent it in
    between (new weights) reaches it first. ``wait_timer`` names a shared timer for the time spent waiting.
    Introduced in notebooks/10_execution_plans.ipynb.
    """
    import ray

    _check_actors(actors, "gather_async")
    if isinstance(num_async, bool) or not isinstance(num_async, int) or num_async < 1:
        raise ValueError(
            f"num_async is the number of calls in flight per actor: a whole number >= 1, got {num_async!r}."
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
            metrics = _get_shared_metrics()
            started = time.perf_counter()
            [ready], _ = ray.wait(list(pending), num_returns=1)
            result = ray.get(ready)
            if wait_timer is not None:
                metrics.timers[wait_timer].push(time.perf_counter() - started)
            previous = pending.pop(ready)
            metrics.current_actor = previous
            yield result

    return LocalIterator(results, name=f"gather_async({method_name})")


def _check_actors(actors, caller: str) -> None:
    if not actors:
        raise ValueError(
            f"{caller}() got no actors. With no remote workers (num_workers=0) sample on the local worker "
            "instead; ParallelRollouts and AsyncGradients do that for you."
        )
