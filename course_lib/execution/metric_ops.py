"""The names of the shared counters and timers, and ``StandardMetricsReporting``, which turns a
training stream into one result dict per ``trainer.train()``.

Introduced in notebooks/11_execution_plans.ipynb.
"""

from __future__ import annotations

import copy
import time
from collections import deque

from course_lib.evaluation.metrics import collect_episodes, summarize_episodes
from course_lib.execution.local_iterator import LocalIterator, NextValueNotReady
from course_lib.offline.input_reader import uses_sampler_only
from course_lib.offline.off_policy_estimator import (
    collect_off_policy_estimates,
    summarize_estimates,
)

# Counters in ``MetricsContext.counters``.
STEPS_SAMPLED_COUNTER = "num_steps_sampled"
AGENT_STEPS_SAMPLED_COUNTER = "num_agent_steps_sampled"
STEPS_TRAINED_COUNTER = "num_steps_trained"
AGENT_STEPS_TRAINED_COUNTER = "num_agent_steps_trained"
LAST_TARGET_UPDATE_TS = "last_target_update_ts"
NUM_TARGET_UPDATES = "num_target_updates"
EPISODES_COUNTER = "num_episodes"

# Timers in ``MetricsContext.timers``; results report them as ``<name>_time_ms``.
SAMPLE_TIMER = "sample"
LEARN_ON_BATCH_TIMER = "learn"
COMPUTE_GRADS_TIMER = "compute_grads"
WORKER_UPDATE_TIMER = "update"
GRAD_WAIT_TIMER = "grad_wait"
APPLY_GRADS_TIMER = "apply_grad"

# Where TrainOneStep and friends put the learner statistics: ``info[LEARNER_INFO][policy_id]``.
LEARNER_INFO = "learner"


def StandardMetricsReporting(
    train_op: LocalIterator, workers, config: dict, selected_workers: list | None = None
) -> LocalIterator:
    """One result dict per item: pulls ``train_op`` for one training iteration, then reports.

    An iteration pulls at least one item, and goes on until ``config["min_iter_time_s"]`` seconds
    passed and ``config["timesteps_per_iteration"]`` env steps were sampled (both default 0).
    Episode statistics (``episode_reward_mean``...) summarize the last
    ``config["metrics_smoothing_episodes"]`` (default 100) episodes, across iterations;
    ``episodes_this_iter`` counts only the new ones. Episodes come from the local worker and
    ``selected_workers`` (default: all remote workers).

    Result keys added to the episode summary: ``timesteps_total``, ``timesteps_this_iter``,
    ``agent_timesteps_total``, ``episodes_total``, ``num_healthy_workers``,
    ``info`` (``{"learner": {policy_id: stats}, **counters}``) and ``timers``
    (``{"<name>_time_ms": ...}``); with recorded ``"input"`` and ``"input_evaluation"``, also
    ``off_policy_estimator`` (lesson 17). Introduced in notebooks/11_execution_plans.ipynb.
    """
    min_time_s = config.get("min_iter_time_s", 0) or 0
    min_steps = config.get("timesteps_per_iteration", 0) or 0
    window_size = config.get("metrics_smoothing_episodes", 100)

    def results():
        while True:
            metrics = train_op.shared_metrics
            if metrics.episode_window.maxlen != window_size:
                metrics.episode_window = deque(metrics.episode_window, maxlen=window_size)
            steps_before = metrics.counters[STEPS_SAMPLED_COUNTER]
            started = time.monotonic()
            pulled = 0
            while (
                pulled == 0
                or time.monotonic() - started < min_time_s
                or metrics.counters[STEPS_SAMPLED_COUNTER] - steps_before < min_steps
            ):
                if not isinstance(next(train_op), NextValueNotReady):
                    pulled += 1
            episodes = collect_episodes(
                workers.local_worker(),
                selected_workers or workers.remote_workers(),
                timeout_s=config.get("collect_metrics_timeout", 180),
            )
            metrics.episode_window.extend(episodes)
            metrics.counters[EPISODES_COUNTER] += len(episodes)
            result = summarize_episodes(list(metrics.episode_window))
            info = copy.deepcopy(metrics.info)
            info.setdefault(LEARNER_INFO, {})
            info.update(metrics.counters)
            result.update(
                episodes_this_iter=len(episodes),
                episodes_total=metrics.counters[EPISODES_COUNTER],
                timesteps_total=metrics.counters[STEPS_SAMPLED_COUNTER],
                timesteps_this_iter=metrics.counters[STEPS_SAMPLED_COUNTER] - steps_before,
                agent_timesteps_total=metrics.counters[AGENT_STEPS_SAMPLED_COUNTER],
                num_healthy_workers=len(workers.remote_workers()),
                info=info,
                timers={
                    f"{name}_time_ms": round(timer.mean * 1000, 3)
                    for name, timer in metrics.timers.items()
                },
            )
            if not uses_sampler_only(config) and config.get("input_evaluation"):
                estimates = collect_off_policy_estimates(
                    workers.local_worker(),
                    selected_workers or workers.remote_workers(),
                    timeout_s=config.get("collect_metrics_timeout", 180),
                )
                result["off_policy_estimator"] = summarize_estimates(estimates)
            yield result

    return train_op._derive(results, "StandardMetricsReporting")
