"""Policy evaluation: rollout workers that turn policies and envs into sample batches.

Introduced in notebooks/08_rollout_workers.ipynb (single-agent) and notebooks/20_multi_agent.ipynb.
"""

from course_lib.evaluation.episode import DEFAULT_AGENT_ID, Episode
from course_lib.evaluation.metrics import (
    RolloutMetrics,
    collect_episodes,
    collect_metrics,
    summarize_episodes,
)
from course_lib.evaluation.multi_agent_sampler import MultiAgentSampler
from course_lib.evaluation.observation_filter import (
    MeanStdFilter,
    NoFilter,
    RunningStat,
    make_filter,
)
from course_lib.evaluation.policy_map import build_policy_map
from course_lib.evaluation.rollout_worker import WORKER_DEFAULTS, RolloutWorker
from course_lib.evaluation.sampler import Sampler
from course_lib.evaluation.single_agent_sampler import SingleAgentSampler
from course_lib.evaluation.vector_sampler import VectorSampler
from course_lib.evaluation.worker_set import WorkerSet

__all__ = [
    "DEFAULT_AGENT_ID",
    "Episode",
    "MeanStdFilter",
    "MultiAgentSampler",
    "NoFilter",
    "RolloutMetrics",
    "RolloutWorker",
    "RunningStat",
    "Sampler",
    "SingleAgentSampler",
    "VectorSampler",
    "WORKER_DEFAULTS",
    "WorkerSet",
    "build_policy_map",
    "collect_episodes",
    "collect_metrics",
    "make_filter",
    "summarize_episodes",
]
