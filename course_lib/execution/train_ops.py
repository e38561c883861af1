"""The operators that learn: ``TrainOneStep``, ``ComputeGradients``/``ApplyGradients`` and
``UpdateTargetNetwork``.

Each is a callable for ``.for_each``. They learn on the local worker's policies, record learner
statistics in ``info["learner"][policy_id]``, count trained steps, and send the new weights to
the remote workers. Introduced in notebooks/11_execution_plans.ipynb.
"""

from __future__ import annotations

import numpy as np

from course_lib.execution.local_iterator import get_shared_metrics
from course_lib.execution.metric_ops import (
    AGENT_STEPS_TRAINED_COUNTER,
    APPLY_GRADS_TIMER,
    COMPUTE_GRADS_TIMER,
    LAST_TARGET_UPDATE_TS,
    LEARN_ON_BATCH_TIMER,
    LEARNER_INFO,
    NUM_TARGET_UPDATES,
    STEPS_SAMPLED_COUNTER,
    STEPS_TRAINED_COUNTER,
    WORKER_UPDATE_TIMER,
)
from course_lib.execution.metrics_context import MetricsContext
from course_lib.execution.rollout_ops import agent_steps, env_steps
from course_lib.sample_batch import DEFAULT_POLICY_ID, MultiAgentBatch, SampleBatch
from course_lib.validation import is_whole_number


class TrainOneStep:
    """For ``.for_each``: the local worker's policies learn on a batch; returns ``(batch, info)``.

    ``info`` is ``{policy_id: learn_on_batch result}``, e.g. ``{"default_policy": {"learner_stats":
    {...}, "td_error": (B,) array}}``. A SampleBatch belongs to ``"default_policy"``; of a
    MultiAgentBatch, each policy in ``policies`` (default: all in the batch) learns on its rows.

    - ``num_sgd_iter == 1`` and ``sgd_minibatch_size == 0``: one ``learn_on_batch`` on the whole
      batch;
    - otherwise ``num_sgd_iter`` epochs; each is ``batch.minibatches(sgd_minibatch_size,
      shuffle=True, rng=np.random, drop_last=True)``: the rows shuffled by ``np.random``, the
      global generator a trainer seeds and checkpoints, then every full minibatch (the smaller
      rest is dropped, unless the whole batch is smaller than one minibatch). Recurrent policies
      learn on the whole batch, in order, once per epoch. The learner stats are averaged over all
      calls (numbers only) and other keys of the result (per-row extras such as ``td_error``) are
      dropped: they would not line up with the batch's rows.

    Then sends the weights to the remote workers with
    ``global_vars={"timestep": num_steps_sampled}``.
    Introduced in notebooks/11_execution_plans.ipynb.
    """

    def __init__(
        self,
        workers,
        *,
        policies: list[str] | None = None,
        num_sgd_iter: int = 1,
        sgd_minibatch_size: int = 0,
    ):
        if not is_whole_number(num_sgd_iter) or num_sgd_iter < 1:
            raise ValueError(
                "num_sgd_iter is the number of passes over each batch: a whole number >= 1, "
                f"got {num_sgd_iter!r}."
            )
        if not is_whole_number(sgd_minibatch_size) or sgd_minibatch_size < 0:
            raise ValueError(
                "sgd_minibatch_size must be a whole number >= 0 (0: learn on the whole batch), "
                f"got {sgd_minibatch_size!r}."
            )
        self.workers = workers
        self.policies = None if policies is None else list(policies)
        self.num_sgd_iter, self.sgd_minibatch_size = num_sgd_iter, sgd_minibatch_size

    def __call__(self, batch):
        metrics = get_shared_metrics()
        local = self.workers.local_worker()
        policy_batches = (
            batch.policy_batches
            if isinstance(batch, MultiAgentBatch)
            else {DEFAULT_POLICY_ID: batch}
        )
        to_train = [pid for pid in (self.policies or policy_batches) if pid in policy_batches]
        info = {}
        with metrics.timers[LEARN_ON_BATCH_TIMER]:
            for pid in to_train:
                info[pid] = self._learn(_local_policy(local, pid), policy_batches[pid])
        metrics.info.setdefault(LEARNER_INFO, {}).update(
            {pid: result["learner_stats"] for pid, result in info.items()}
        )
        metrics.counters[STEPS_TRAINED_COUNTER] += env_steps(batch)
        metrics.counters[AGENT_STEPS_TRAINED_COUNTER] += agent_steps(batch)
        _send_weights(self.workers, metrics)
        return batch, info

    def _learn(self, policy, batch: SampleBatch) -> dict:
        if self.num_sgd_iter == 1 and self.sgd_minibatch_size == 0:
            return _checked(policy.learn_on_batch(batch), policy)
        stats = []
        for _ in range(self.num_sgd_iter):
            for minibatch in self._minibatches(policy, batch):
                stats.append(_checked(policy.learn_on_batch(minibatch), policy)["learner_stats"])
        return {"learner_stats": _mean_stats(stats)}

    def _minibatches(self, policy, batch: SampleBatch):
        size = self.sgd_minibatch_size
        if policy.is_recurrent() or size == 0 or batch.count <= size:
            return [batch]
        return batch.minibatches(size, shuffle=True, rng=np.random, drop_last=True)


def _local_policy(local_worker, policy_id: str):
    if policy_id not in local_worker.policy_map:
        raise KeyError(
            f"There is no policy {policy_id!r} on the local worker to train; "
            f"it has {list(local_worker.policy_map)}."
        )
    return local_worker.policy_map[policy_id]


def _checked(result, policy) -> dict:
    if not isinstance(result, dict) or not isinstance(result.get("learner_stats"), dict):
        raise TypeError(
            f"{type(policy).__name__}.learn_on_batch() returned {type(result).__name__}; it must "
            'return a dict with a "learner_stats" dict, '
            'e.g. {"learner_stats": {"total_loss": 0.3}}.'
        )
    return result


def _is_number(value) -> bool:
    return (
        not isinstance(value, bool)
        and np.ndim(value) == 0
        and np.issubdtype(np.asarray(value).dtype, np.number)
    )


def _mean_stats(stats: list[dict]) -> dict:
    """Mean of each numeric statistic over several ``learner_stats`` dicts; others are left out."""
    names = dict.fromkeys(name for one in stats for name in one)
    return {
        name: float(np.mean([one[name] for one in stats if name in one]))
        for name in names
        if all(_is_number(one[name]) for one in stats if name in one)
    }


def _send_weights(workers, metrics: MetricsContext) -> None:
    """New weights (and the sampled-steps count as ``global_vars["timestep"]``) to every worker."""
    global_vars = {"timestep": metrics.counters[STEPS_SAMPLED_COUNTER]}
    if workers.remote_workers():
        with metrics.timers[WORKER_UPDATE_TIMER]:
            workers.sync_weights(global_vars=global_vars)
    else:
        workers.local_worker().set_global_vars(global_vars)


class ComputeGradients:
    """For ``.for_each``: a batch in, ``(gradients, env_steps)`` out, computed on the local worker.

    The weights do not change (``ApplyGradients`` does that).
    Introduced in notebooks/11_execution_plans.ipynb.
    """

    def __init__(self, workers):
        self.workers = workers

    def __call__(self, batch: SampleBatch):
        metrics = get_shared_metrics()
        with metrics.timers[COMPUTE_GRADS_TIMER]:
            gradients, info = self.workers.local_worker().compute_gradients(batch)
        metrics.info.setdefault(LEARNER_INFO, {})[DEFAULT_POLICY_ID] = info["learner_stats"]
        return gradients, env_steps(batch)


class ApplyGradients:
    """For ``.for_each``: applies ``(gradients, env_steps)`` locally, then sends the weights.

    ``update_all=True``: to every remote worker. ``update_all=False`` (A3C): only to the worker that
    computed the gradients, ``shared_metrics.current_actor`` (use it after ``AsyncGradients``); the
    others keep sampling with their own, older weights. Counts the steps as trained.
    Introduced in notebooks/11_execution_plans.ipynb.
    """

    def __init__(self, workers, *, update_all: bool = True):
        self.workers, self.update_all = workers, update_all

    def __call__(self, item):
        gradients, count = item
        metrics = get_shared_metrics()
        local = self.workers.local_worker()
        with metrics.timers[APPLY_GRADS_TIMER]:
            local.apply_gradients(gradients)
        metrics.counters[STEPS_TRAINED_COUNTER] += count
        metrics.counters[AGENT_STEPS_TRAINED_COUNTER] += count
        if self.update_all or not self.workers.remote_workers():
            _send_weights(self.workers, metrics)
            return item
        actor = metrics.current_actor
        if actor is None:
            raise RuntimeError(
                "ApplyGradients(update_all=False) sends the weights back to the worker that "
                "computed the gradients, but no worker is recorded as current_actor. Use it after "
                "AsyncGradients(workers), or pass update_all=True."
            )
        global_vars = {"timestep": metrics.counters[STEPS_SAMPLED_COUNTER]}
        with metrics.timers[WORKER_UPDATE_TIMER]:
            # Not waited for: the actor runs calls in order, so its next sample already uses
            # these weights.
            actor.set_weights.remote(local.get_weights(), global_vars)
        local.set_global_vars(global_vars)
        return item


class UpdateTargetNetwork:
    """For ``.for_each``: every ``target_update_freq`` steps, ``policy.update_target()`` locally.

    Steps are sampled steps, or trained steps with ``by_steps_trained=True``. Only policies in
    ``policies`` (default: all) that have ``update_target`` are updated. Records the step count in
    ``counters["last_target_update_ts"]`` and counts ``counters["num_target_updates"]``. Returns
    the item unchanged. Introduced in notebooks/11_execution_plans.ipynb.
    """

    def __init__(
        self,
        workers,
        target_update_freq: int,
        *,
        by_steps_trained: bool = False,
        policies: list[str] | None = None,
    ):
        if not is_whole_number(target_update_freq) or target_update_freq < 1:
            raise ValueError(
                "target_update_freq is a number of steps: a whole number >= 1, "
                f"got {target_update_freq!r}."
            )
        self.workers, self.target_update_freq = workers, target_update_freq
        self.counter = STEPS_TRAINED_COUNTER if by_steps_trained else STEPS_SAMPLED_COUNTER
        self.policies = None if policies is None else list(policies)

    def __call__(self, item):
        counters = get_shared_metrics().counters
        steps = counters[self.counter]
        if steps - counters[LAST_TARGET_UPDATE_TS] >= self.target_update_freq:
            for pid, policy in self.workers.local_worker().policy_map.items():
                if (self.policies is None or pid in self.policies) and hasattr(
                    policy, "update_target"
                ):
                    policy.update_target()
            counters[LAST_TARGET_UPDATE_TS] = steps
            counters[NUM_TARGET_UPDATES] += 1
        return item
