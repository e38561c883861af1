"""Execution plans: a trainer's dataflow as a chain of lazy iterators and operators (lesson 11).

The A2C plan reads::

    rollouts = ParallelRollouts(workers, mode="bulk_sync")
    train_op = rollouts.combine(
        ConcatBatches(min_batch_size=config["train_batch_size"])
    ).for_each(TrainOneStep(workers))
    return StandardMetricsReporting(train_op, workers, config)

Introduced in notebooks/11_execution_plans.ipynb.
"""

from course_lib.execution.concurrency_ops import Concurrently
from course_lib.execution.learner_thread import (
    Enqueue,
    LearnerThread,
    RecordLearnerResults,
    run_with_learner_thread,
)
from course_lib.execution.local_iterator import (
    LocalIterator,
    NextValueNotReady,
    gather_async,
    gather_sync,
    get_shared_metrics,
)
from course_lib.execution.metric_ops import (
    AGENT_STEPS_SAMPLED_COUNTER,
    AGENT_STEPS_TRAINED_COUNTER,
    APPLY_GRADS_TIMER,
    COMPUTE_GRADS_TIMER,
    EPISODES_COUNTER,
    GRAD_WAIT_TIMER,
    LAST_TARGET_UPDATE_TS,
    LEARN_ON_BATCH_TIMER,
    LEARNER_INFO,
    NUM_TARGET_UPDATES,
    SAMPLE_TIMER,
    STEPS_SAMPLED_COUNTER,
    STEPS_TRAINED_COUNTER,
    WORKER_UPDATE_TIMER,
    StandardMetricsReporting,
)
from course_lib.execution.metrics_context import MetricsContext, TimerStat
from course_lib.execution.replay_actor import (
    ParallelRolloutRefs,
    ReplayActor,
    ReplayFromActors,
    StoreToReplayActors,
    UpdateReplayActorPriorities,
    create_replay_actors,
)
from course_lib.execution.replay_buffer import PrioritizedReplayBuffer, ReplayBuffer
from course_lib.execution.replay_ops import Replay, StoreToReplayBuffer, UpdatePriorities
from course_lib.execution.rollout_ops import (
    AsyncGradients,
    ConcatBatches,
    ParallelRollouts,
    SelectExperiences,
    StandardizeFields,
    agent_steps,
    env_steps,
)
from course_lib.execution.segment_tree import MinSegmentTree, SumSegmentTree
from course_lib.execution.train_ops import (
    ApplyGradients,
    ComputeGradients,
    TrainOneStep,
    UpdateTargetNetwork,
)

__all__ = [
    "AGENT_STEPS_SAMPLED_COUNTER",
    "AGENT_STEPS_TRAINED_COUNTER",
    "APPLY_GRADS_TIMER",
    "COMPUTE_GRADS_TIMER",
    "GRAD_WAIT_TIMER",
    "LAST_TARGET_UPDATE_TS",
    "LEARNER_INFO",
    "LEARN_ON_BATCH_TIMER",
    "NUM_TARGET_UPDATES",
    "EPISODES_COUNTER",
    "SAMPLE_TIMER",
    "STEPS_SAMPLED_COUNTER",
    "STEPS_TRAINED_COUNTER",
    "WORKER_UPDATE_TIMER",
    "ApplyGradients",
    "AsyncGradients",
    "ComputeGradients",
    "ConcatBatches",
    "Concurrently",
    "Enqueue",
    "LearnerThread",
    "LocalIterator",
    "MetricsContext",
    "MinSegmentTree",
    "NextValueNotReady",
    "ParallelRolloutRefs",
    "ParallelRollouts",
    "PrioritizedReplayBuffer",
    "RecordLearnerResults",
    "Replay",
    "ReplayActor",
    "ReplayBuffer",
    "ReplayFromActors",
    "SelectExperiences",
    "StandardMetricsReporting",
    "StandardizeFields",
    "StoreToReplayActors",
    "StoreToReplayBuffer",
    "SumSegmentTree",
    "TimerStat",
    "TrainOneStep",
    "UpdatePriorities",
    "UpdateReplayActorPriorities",
    "UpdateTargetNetwork",
    "agent_steps",
    "create_replay_actors",
    "env_steps",
    "gather_async",
    "gather_sync",
    "get_shared_metrics",
    "run_with_learner_thread",
]
