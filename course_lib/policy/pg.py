"""Vanilla policy gradient (REINFORCE with reward-to-go), built with ``build_policy``.

The 2021 RLlib tutorial's ``policy_gradient_loss`` multiplies log-probabilities by the *reward* of
each step; on CartPole every reward is 1, so that loss cannot tell good actions from bad ones.
REINFORCE weights each log-probability by the discounted return from that step on (the
reward-to-go), which the postprocessing function adds as the ``advantages`` column.
Introduced in notebooks/07_policies.ipynb.
"""

from __future__ import annotations

from course_lib.policy.policy_template import build_policy
from course_lib.policy.torch_policy import masked_mean
from course_lib.postprocessing import compute_advantages_by_episode
from course_lib.sample_batch import SampleBatch

PG_DEFAULTS = {"lr": 4e-3, "gamma": 0.99, "model": {"fcnet_hiddens": [64, 64]}}


def pg_postprocess(policy, sample_batch, other_agent_batches=None, episode=None):
    """Add ``advantages`` = discounted reward-to-go, one value per step, per episode."""
    return compute_advantages_by_episode(
        sample_batch, gamma=policy.config["gamma"], use_gae=False, use_critic=False
    )


def policy_gradient_loss(policy, model, dist_class, train_batch):
    """REINFORCE: ``-mean_t[ log pi(a_t | s_t) * R_t ]``, with R_t the reward-to-go (B,)."""
    logits, _ = model.from_batch(train_batch)
    action_dist = dist_class(logits, model)
    logp = action_dist.logp(train_batch[SampleBatch.ACTIONS])
    return -masked_mean(logp * train_batch[SampleBatch.ADVANTAGES], train_batch)


def pg_stats(policy, train_batch):
    return {"mean_advantage": train_batch[SampleBatch.ADVANTAGES].mean().item()}


PGTorchPolicy = build_policy(
    "PGTorchPolicy",
    loss_fn=policy_gradient_loss,
    get_default_config=lambda: PG_DEFAULTS,
    postprocess_fn=pg_postprocess,
    stats_fn=pg_stats,
)
