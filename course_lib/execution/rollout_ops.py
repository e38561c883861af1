"""Operators that produce and shape experience: ``ParallelRollouts``, ``AsyncGradients``,
``ConcatBatches``, ``SelectExperiences`` and ``StandardizeFields``.

The sources (``ParallelRollouts``, ``AsyncGradients``) return LocalIterators and count the env
steps they sample; the others are callables for ``.for_each`` or ``.combine``.
Introduced in notebooks/11_execution_plans.ipynb.
"""

from __future__ import annotations

import numpy as np

from course_lib.execution.local_iterator import (
    LocalIterator,
    gather_async,
    gather_sync,
    get_shared_metrics,
)
from course_lib.execution.metric_ops import (
    AGENT_STEPS_SAMPLED_COUNTER,
    GRAD_WAIT_TIMER,
    LEARNER_INFO,
    SAMPLE_TIMER,
    STEPS_SAMPLED_COUNTER,
)
from course_lib.sample_batch import DEFAULT_POLICY_ID, STEP_COUNTS, MultiAgentBatch, SampleBatch
from course_lib.validation import is_whole_number

ROLLOUT_MODES = ("bulk_sync", "async", "raw")


def env_steps(batch: SampleBatch | MultiAgentBatch) -> int:
    """Env steps behind a batch: its rows for a SampleBatch, ``env_steps()`` for a
    MultiAgentBatch."""
    return batch.env_steps() if isinstance(batch, MultiAgentBatch) else batch.count


def agent_steps(batch: SampleBatch | MultiAgentBatch) -> int:
    """Agent steps in a batch: its rows for a SampleBatch, rows over all policies for a
    MultiAgentBatch."""
    return batch.agent_steps() if isinstance(batch, MultiAgentBatch) else batch.count


def ParallelRollouts(workers, *, mode: str = "bulk_sync", num_async: int = 1) -> LocalIterator:
    """Sample batches from the rollout workers, counting
    ``num_steps_sampled``/``num_agent_steps_sampled``.

    - ``"bulk_sync"``: each item is one ``sample()`` from every remote worker, concatenated;
    - ``"async"``: each item is one worker's batch as soon as it is ready (``num_async`` samples in
      flight per worker); ``shared_metrics.current_actor`` is that worker;
    - ``"raw"``: each item is the list of one round's per-worker batches, not concatenated.

    With no remote workers every mode samples the local worker (``"raw"``: a list of one batch).
    Introduced in notebooks/11_execution_plans.ipynb.
    """
    if mode not in ROLLOUT_MODES:
        raise ValueError(f"Unknown ParallelRollouts mode {mode!r}; use one of {ROLLOUT_MODES}.")
    remotes = workers.remote_workers()
    if not remotes:
        local = workers.local_worker()

        def sample_locally():
            while True:
                with get_shared_metrics().timers[SAMPLE_TIMER]:
                    batch = local.sample()
                yield [batch] if mode == "raw" else batch

        rollouts = LocalIterator(sample_locally)
    elif mode == "bulk_sync":

        def sample_everywhere():
            while True:
                # WorkerSet.sample() also replaces dead workers when "recreate_failed_workers" is
                # set.
                with get_shared_metrics().timers[SAMPLE_TIMER]:
                    batch = workers.sample()
                yield batch

        rollouts = LocalIterator(sample_everywhere)
    elif mode == "raw":
        rollouts = gather_sync(remotes, "sample", wait_timer=SAMPLE_TIMER)
    else:
        rollouts = gather_async(remotes, "sample", num_async=num_async, wait_timer=SAMPLE_TIMER)
    counted = rollouts.for_each(_count_sampled_steps)
    counted.name = f"ParallelRollouts(mode={mode!r})"
    return counted


def _count_sampled_steps(item):
    counters = get_shared_metrics().counters
    for batch in item if isinstance(item, list) else [item]:
        counters[STEPS_SAMPLED_COUNTER] += env_steps(batch)
        counters[AGENT_STEPS_SAMPLED_COUNTER] += agent_steps(batch)
    return item


def _sample_and_compute_gradients(worker):
    """Runs inside a rollout worker: ``(gradients, info, env_steps)`` for one fresh batch."""
    batch = worker.sample()
    gradients, info = worker.compute_gradients(batch)
    return gradients, info, batch.count


def AsyncGradients(workers) -> LocalIterator:
    """``(gradients, env_steps)`` items, each computed by a worker on a batch it sampled itself.

    Every remote worker samples and computes gradients in its own process, again and again; items
    come in the order they finish, with ``shared_metrics.current_actor`` the worker that sent it.
    Counts the sampled steps and records ``info["learner"]["default_policy"]``. With no remote
    workers the local worker does it. Introduced in notebooks/11_execution_plans.ipynb.
    """
    remotes = workers.remote_workers()
    if remotes:
        gradients = gather_async(
            remotes, "apply", _sample_and_compute_gradients, wait_timer=GRAD_WAIT_TIMER
        )
    else:
        local = workers.local_worker()

        def compute_locally():
            while True:
                with get_shared_metrics().timers[GRAD_WAIT_TIMER]:
                    result = _sample_and_compute_gradients(local)
                yield result

        gradients = LocalIterator(compute_locally)

    def record(result):
        grads, info, count = result
        metrics = get_shared_metrics()
        metrics.counters[STEPS_SAMPLED_COUNTER] += count
        metrics.counters[AGENT_STEPS_SAMPLED_COUNTER] += count
        metrics.info.setdefault(LEARNER_INFO, {})[DEFAULT_POLICY_ID] = info["learner_stats"]
        return grads, count

    recorded = gradients.for_each(record)
    recorded.name = "AsyncGradients"
    return recorded


class ConcatBatches:
    """For ``.combine``: collects batches until they hold ``min_batch_size`` steps, then returns
    ``[one batch]``.

    Returns ``[]`` while collecting. ``count_steps_by``: ``"env_steps"`` or ``"agent_steps"``
    (they differ only for MultiAgentBatches). Introduced in notebooks/11_execution_plans.ipynb.
    """

    def __init__(self, min_batch_size: int, count_steps_by: str = "env_steps"):
        if not is_whole_number(min_batch_size) or min_batch_size < 0:
            raise ValueError(
                "min_batch_size must be a whole number >= 0 (e.g. config['train_batch_size']), "
                f"got {min_batch_size!r}."
            )
        if count_steps_by not in STEP_COUNTS:
            raise ValueError(
                f"count_steps_by must be one of {STEP_COUNTS}, got {count_steps_by!r}."
            )
        self.min_batch_size = min_batch_size
        self._count = env_steps if count_steps_by == "env_steps" else agent_steps
        self._buffer: list = []
        self._steps = 0

    def __call__(self, batch) -> list:
        if not isinstance(batch, (SampleBatch, MultiAgentBatch)):
            raise TypeError(
                f"ConcatBatches takes one batch at a time, got a {type(batch).__name__}. "
                "ParallelRollouts(mode='raw') yields lists: flatten "
                "them first with .combine(lambda batches: batches)."
            )
        self._buffer.append(batch)
        self._steps += self._count(batch)
        if self._steps < self.min_batch_size:
            return []
        concatenated = SampleBatch.concat_samples(self._buffer)
        self._buffer, self._steps = [], 0
        return [concatenated]


class SelectExperiences:
    """For ``.for_each``: keep only the given policies' batches of a MultiAgentBatch (a SampleBatch
    passes).

    Introduced in notebooks/11_execution_plans.ipynb.
    """

    def __init__(self, policy_ids: list[str]):
        if isinstance(policy_ids, str):
            raise TypeError(
                "SelectExperiences takes a list of policy ids; got the string "
                f"{policy_ids!r}. Write SelectExperiences([{policy_ids!r}])."
            )
        self.policy_ids = list(policy_ids)

    def __call__(self, batch):
        if isinstance(batch, SampleBatch):
            return batch
        kept = {pid: b for pid, b in batch.policy_batches.items() if pid in self.policy_ids}
        return MultiAgentBatch(kept, batch.env_steps())


class StandardizeFields:
    """For ``.for_each``: columns ``fields`` become ``(x - mean(x)) / max(std(x), 1e-4)``.

    Per policy batch for a MultiAgentBatch; a policy batch with none of the fields (a heuristic
    policy's, which postprocessing leaves alone) passes unchanged. Returns a new batch; the input
    keeps its values. Introduced in notebooks/11_execution_plans.ipynb.
    """

    def __init__(self, fields: list[str]):
        if isinstance(fields, str):
            raise TypeError(
                "StandardizeFields takes a list of column names; got the "
                f"string {fields!r}. Write StandardizeFields([{fields!r}])."
            )
        self.fields = list(fields)

    def __call__(self, batch):
        if isinstance(batch, MultiAgentBatch):
            return MultiAgentBatch(
                {
                    pid: self._standardize(b) if any(f in b for f in self.fields) else b
                    for pid, b in batch.policy_batches.items()
                },
                batch.env_steps(),
            )
        return self._standardize(batch)

    def _standardize(self, batch: SampleBatch) -> SampleBatch:
        missing = [f for f in self.fields if f not in batch]
        if missing:
            raise KeyError(
                f"StandardizeFields: the batch has no column {missing}; "
                f"it has {batch.columns}. Did postprocessing add it?"
            )
        result = batch.copy(
            deep=False
        )  # new dict, same arrays: replacing a column leaves the input alone
        for name in self.fields:
            values = batch[name]
            dtype = values.dtype if np.issubdtype(values.dtype, np.floating) else np.float32
            result[name] = ((values - values.mean()) / max(values.std(), 1e-4)).astype(dtype)
        return result
