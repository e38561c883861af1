"""``LearnerThread``: the trainer learns in a thread of its own while the driver keeps sampling.

IMPALA's learner should never wait for a rollout worker, and the workers should never wait for
the learner. In a synchronous plan (A2C, PPO) the driver samples, then learns, then samples
again. Here the driver thread only moves data: it collects sample batches from the workers,
concatenates them and puts each train batch on the learner's ``inqueue``. The learner thread takes
them off, one ``learn_on_batch`` each, and puts ``(env_steps, learner_stats)`` on its ``outqueue``.
Torch releases Python's GIL inside its operations, so learning overlaps with the driver waiting
on ``ray.wait``.

- The ``inqueue`` is bounded (``max_queue_size``): when the learner falls behind, the driver
  waits to put the next batch, so it stops asking workers for samples. That is backpressure: the
  queue never fills memory with experience from ever older policies.
- A thread, not a process: it trains the local worker's policy, whose weights the driver sends
  to the workers. Anything else that uses that policy meanwhile (the driver reading its weights,
  ``trainer.save()``) runs in another thread, so the policy must take turns (IMPALA's policy
  holds a lock in each of those methods).
- Torch threads: ``torch.set_num_threads`` is process-wide, and this thread uses what the process
  set (the lessons and the tests set 1: on 2 cores, a second intra-op thread only fights the
  rollout workers for the cores).
- A failure does not die silently: the thread keeps the exception and ends, and the driver's
  next ``add_batch`` or ``results`` raises a ``RuntimeError`` that names it (chained, with the
  original traceback).
- ``stop()`` sets a flag that the thread reads between batches (at least every
  ``POLL_INTERVAL_S``), then joins it: it returns after at most one ``learn_on_batch``.

In a plan: ``Enqueue(learner)`` hands batches over, ``RecordLearnerResults(learner)`` counts
what it learned, and ``run_with_learner_thread(train_op, learner)`` starts the thread at the
plan's first pull and stops it when the plan is closed (``trainer.stop()``).
Introduced in notebooks/15_scaling_out.ipynb.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque

from course_lib.execution.local_iterator import LocalIterator, get_shared_metrics
from course_lib.execution.metric_ops import LEARNER_INFO, STEPS_TRAINED_COUNTER
from course_lib.execution.metrics_context import TimerStat
from course_lib.execution.rollout_ops import env_steps
from course_lib.validation import require_whole_number

# How often a waiting thread (the learner on an empty queue, the driver on a full one) looks up
# to see whether it should stop or whether the other side failed (seconds).
POLL_INTERVAL_S = 0.05
# How long stop() waits for the thread to finish the batch it is learning on (seconds).
STOP_TIMEOUT_S = 30.0


class LearnerThread(threading.Thread):
    """Learns on the train batches of ``inqueue`` with ``local_worker``'s policies (a daemon).

    - ``inqueue``: ``queue.Queue(maxsize=max_queue_size)`` of train batches (``add_batch`` puts);
    - ``outqueue``: ``(env_steps, learner_stats)`` per batch learned, ``learner_stats`` being
      ``{policy_id: stats}`` (``results`` takes them);
    - ``weights_version``: the number of updates so far, the version of the weights;
    - ``stats()``: queue sizes and timings, for the result's ``info``.

    Introduced in notebooks/15_scaling_out.ipynb.
    """

    def __init__(self, local_worker, *, max_queue_size: int = 16):
        require_whole_number(max_queue_size, "max_queue_size", minimum=1)
        super().__init__(daemon=True, name="course_lib-learner")
        self.local_worker = local_worker
        self.inqueue: queue.Queue = queue.Queue(maxsize=max_queue_size)
        self.outqueue: queue.Queue = queue.Queue()
        self.weights_version = 0
        self.error: BaseException | None = None
        self._stopping = threading.Event()
        # Timers and queue sizes are written by one thread and read by the other.
        self._stats_lock = threading.Lock()
        self._learn_timer = TimerStat()  # learn_on_batch
        self._wait_timer = TimerStat()  # the learner idle, waiting for a batch
        self._put_timer = TimerStat()  # the driver blocked, waiting for room in the queue
        self._queue_sizes: deque[int] = deque(maxlen=100)

    # --- the thread ---------------------------------------------------------------------------

    def run(self) -> None:
        try:
            while not self._stopping.is_set():
                self.step()
        except BaseException as error:  # kept for the driver, which raises it (raise_if_failed)
            self.error = error

    def step(self) -> None:
        """Wait for one batch (or the stop flag), learn on it, put the result on ``outqueue``."""
        started = time.perf_counter()
        while True:
            if self._stopping.is_set():
                return
            try:
                batch = self.inqueue.get(timeout=POLL_INTERVAL_S)
                break
            except queue.Empty:
                continue
        learn_started = time.perf_counter()
        results = self.local_worker.learn_on_batch(batch)
        finished = time.perf_counter()
        self.weights_version += 1
        with self._stats_lock:
            self._wait_timer.push(learn_started - started)
            self._learn_timer.push(finished - learn_started)
        stats = {pid: result["learner_stats"] for pid, result in results.items()}
        self.outqueue.put((env_steps(batch), stats))

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Ask the thread to stop and wait for it; it finishes the batch it is learning on."""
        self._stopping.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)
            if self.is_alive():
                raise RuntimeError(
                    f"The learner thread did not stop within {timeout:.0f} s: one "
                    "learn_on_batch call is taking that long. Use smaller train batches, "
                    "or call stop() with a longer timeout."
                )

    # --- what the driver calls ----------------------------------------------------------------

    def raise_if_failed(self) -> None:
        """Raise the learner's exception in the calling (driver) thread, if it had one."""
        if self.error is not None:
            raise RuntimeError(
                f"The learner thread failed in learn_on_batch with {type(self.error).__name__}: "
                f"{self.error}. Training stopped; the traceback above shows where. Fix the "
                "loss (call policy.learn_on_batch(batch) directly to debug it), then build a "
                "new trainer."
            ) from self.error

    def add_batch(self, batch) -> None:
        """Put a train batch on ``inqueue``, waiting while it is full (backpressure).

        Raises if the learner failed, or if it is not running (not started yet, or stopped).
        """
        started = time.perf_counter()
        while True:
            self.raise_if_failed()
            if not self.is_alive() or self._stopping.is_set():
                raise RuntimeError(
                    "The learner thread is not running, so nobody would learn on this batch. "
                    "Start it with learner.start() (run_with_learner_thread does) and add "
                    "batches before learner.stop()."
                )
            waiting = self.inqueue.qsize()
            try:
                self.inqueue.put(batch, timeout=POLL_INTERVAL_S)
                break
            except queue.Full:
                continue
        with self._stats_lock:
            self._queue_sizes.append(waiting)
            self._put_timer.push(time.perf_counter() - started)

    def results(self) -> list[tuple[int, dict]]:
        """What was learned since the last call, as ``(env_steps, learner_stats)``; no waiting."""
        self.raise_if_failed()
        finished = []
        while True:
            try:
                finished.append(self.outqueue.get_nowait())
            except queue.Empty:
                return finished

    def stats(self) -> dict:
        """Queue and timing figures over recent batches (the last 100 queue sizes, 20 timings).

        ``learner_queue``: ``size_mean``/``size_max`` are the batches already waiting when a new
        one arrived (near ``capacity``: the learner is the bottleneck); ``timing_breakdown``:
        ``learner_learn_time_ms`` per batch, ``learner_wait_time_ms`` the learner idle before a
        batch came (large: sampling is the bottleneck), ``enqueue_wait_time_ms`` the driver
        waiting for room in the queue.
        """
        with self._stats_lock:
            sizes = list(self._queue_sizes)
            return {
                "learner_queue": {
                    "size_mean": sum(sizes) / len(sizes) if sizes else 0.0,
                    "size_max": max(sizes, default=0),
                    "capacity": self.inqueue.maxsize,
                },
                "timing_breakdown": {
                    "learner_learn_time_ms": round(self._learn_timer.mean * 1000, 3),
                    "learner_wait_time_ms": round(self._wait_timer.mean * 1000, 3),
                    "enqueue_wait_time_ms": round(self._put_timer.mean * 1000, 3),
                },
            }


class Enqueue:
    """For ``.for_each``: hands each train batch to the learner thread (``add_batch``) and
    returns it; waits while the learner's queue is full. Introduced in
    notebooks/15_scaling_out.ipynb."""

    def __init__(self, learner: LearnerThread):
        self.learner = learner

    def __call__(self, batch):
        self.learner.add_batch(batch)
        return batch


class RecordLearnerResults:
    """For ``.for_each``: takes what the learner thread finished since the last item, never
    waiting.

    Counts ``num_steps_trained`` (env steps), keeps the latest ``info["learner"][policy_id]``
    stats and the thread's ``stats()`` in ``info``, and returns the list of ``(env_steps,
    learner_stats)`` (often empty: the learner is still on it).
    Introduced in notebooks/15_scaling_out.ipynb.
    """

    def __init__(self, learner: LearnerThread):
        self.learner = learner

    def __call__(self, item) -> list[tuple[int, dict]]:
        metrics = get_shared_metrics()
        finished = self.learner.results()
        for steps, learner_stats in finished:
            metrics.counters[STEPS_TRAINED_COUNTER] += steps
            metrics.info.setdefault(LEARNER_INFO, {}).update(learner_stats)
        metrics.info.update(self.learner.stats())
        return finished


def run_with_learner_thread(train_op: LocalIterator, learner: LearnerThread) -> LocalIterator:
    """``train_op``'s items; ``learner`` starts at the first pull and stops when the returned
    iterator is closed (``trainer.stop()`` closes its plan) or garbage-collected.

    Starting late means a plan that is built but never pulled leaves no thread behind.
    Introduced in notebooks/15_scaling_out.ipynb.
    """

    def items():
        learner.start()
        try:
            yield from train_op
        finally:
            learner.stop()

    return train_op._derive(items, "run_with_learner_thread")
