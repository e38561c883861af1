"""``MetricsContext``: the counters, timers and learner info that the operators of one plan share.

``LocalIterator`` (local_iterator.py) carries one ``MetricsContext`` through a whole execution
plan; an operator reaches it with ``get_shared_metrics()`` while the plan pulls it.
Introduced in notebooks/11_execution_plans.ipynb.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque

from course_lib.evaluation.metrics import metrics_from_plain, metrics_to_plain


class TimerStat:
    """Durations in seconds of the last ``window`` timed sections; ``mean`` averages them.

    Use ``timer.push(seconds)`` or ``with timer: ...``.
    Introduced in notebooks/11_execution_plans.ipynb.
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

    Introduced in notebooks/11_execution_plans.ipynb.
    """

    def __init__(self):
        self.counters: defaultdict[str, int] = defaultdict(int)
        self.timers: defaultdict[str, TimerStat] = defaultdict(TimerStat)
        self.info: dict = {}
        self.current_actor = None
        # The last finished episodes that result statistics average over (StandardMetricsReporting).
        self.episode_window: deque = deque()

    def get_state(self) -> dict:
        """Counters and the episode window as plain data, for a checkpoint.

        Timers and info are not saved: they are rebuilt while the plan runs.
        """
        return {
            "counters": dict(self.counters),
            "episode_window": [metrics_to_plain(e) for e in self.episode_window],
        }

    def set_state(self, state: dict) -> None:
        self.counters = defaultdict(int, state["counters"])
        self.episode_window = deque(
            map(metrics_from_plain, state["episode_window"]), maxlen=self.episode_window.maxlen
        )
