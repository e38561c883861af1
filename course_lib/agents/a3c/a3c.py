"""A3C: asynchronous advantage actor-critic, A2C's policy with an asynchronous execution plan.

Every rollout worker samples a fragment, computes the actor-critic gradients on it in its own
process and sends only the gradients; the local worker applies each set the moment it arrives and
sends the new weights back to that worker alone, which samples its next fragment with them. The
other workers carry on with the weights they had: their gradients are a few updates stale. No
worker ever waits for another (``AsyncGradients`` + ``ApplyGradients(update_all=False)``, the
operators of notebooks/11_execution_plans.ipynb).

What it buys: the learner never waits for the slowest worker, which pays off when env steps are
slow or uneven. What it costs: each update uses one fragment (small, noisy gradients) computed
with stale weights. On CartPole with 2 cores A2C's batched updates learn more per second.
"""

from __future__ import annotations

from course_lib.agents.a3c.a2c import DEFAULT_CONFIG as A2C_CONFIG
from course_lib.agents.a3c.a3c_torch_policy import A3CTorchPolicy
from course_lib.agents.trainer_template import build_trainer
from course_lib.execution import ApplyGradients, AsyncGradients, StandardMetricsReporting

DEFAULT_CONFIG = {
    **A2C_CONFIG,
    # Two workers, each computing gradients on its own fragments; one env each, so that a
    # fragment is one stretch of one episode.
    "num_workers": 2,
    "num_envs_per_worker": 1,
    "rollout_fragment_length": 20,
    "lr": 5e-4,
    # A training iteration applies gradients until this many env steps were sampled.
    "timesteps_per_iteration": 2000,
}


def execution_plan(workers, config):
    """Gradients from whichever worker finishes first, applied at once, weights back to it."""
    train_op = AsyncGradients(workers).for_each(ApplyGradients(workers, update_all=False))
    return StandardMetricsReporting(train_op, workers, config)


A3CTrainer = build_trainer(
    "A3C",
    default_config=DEFAULT_CONFIG,
    default_policy=A3CTorchPolicy,
    execution_plan=execution_plan,
)
