"""Policy evaluation: rollout workers that turn a policy and envs into sample batches (lesson 07)."""

from course_lib.evaluation.episode import DEFAULT_AGENT_ID, Episode
from course_lib.evaluation.metrics import RolloutMetrics, collect_episodes, collect_metrics, summarize_episodes
from course_lib.evaluation.observation_filter import MeanStdFilter, NoFilter, RunningStat, make_filter
from course_lib.evaluation.rollout_worker import WORKER_DEFAULTS, RolloutWorker
from course_lib.evaluation.worker_set import WorkerSet

__all__ = [
    "DEFAULT_AGENT_ID",
    "Episode",
    "MeanStdFilter",
    "NoFilter",
    "RolloutMetrics",
    "RolloutWorker",
    "RunningStat",
    "WORKER_DEFAULTS",
    "WorkerSet",
    "collect_episodes",
    "collect_metrics",
    "make_filter",
    "summarize_episodes",
]
