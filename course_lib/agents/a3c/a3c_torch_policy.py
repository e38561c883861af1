"""Actor-critic policy of A2C and A3C: a policy-gradient actor, a learned critic, GAE advantages.

Each step's log-probability is weighted by its advantage ``A_t`` (how much better the step went
than the critic expected), the critic regresses onto the value targets, and an entropy bonus
keeps the policy from becoming deterministic too early. A2C and A3C share this policy; they
differ only in how the trainer applies its gradients (synchronously or asynchronously).
Introduced in notebooks/13_algorithms.ipynb.
"""

from __future__ import annotations

import torch

from course_lib.policy.policy_template import build_policy
from course_lib.policy.torch_policy import masked_mean
from course_lib.postprocessing import compute_advantages_by_episode
from course_lib.sample_batch import SampleBatch


def get_default_config() -> dict:
    """A2C's defaults: ``DEFAULT_CONFIG`` in a2c.py, the one dict the trainer uses too.

    Imported when called, not at the top of this file, because a2c.py imports this module to
    build ``A2CTrainer``. Introduced in notebooks/13_algorithms.ipynb.
    """
    from course_lib.agents.a3c.a2c import DEFAULT_CONFIG

    return DEFAULT_CONFIG


def compute_gae_for_sample_batch(policy, sample_batch, other_agent_batches=None, episode=None):
    """Add ``advantages`` and ``value_targets`` (B,) to one episode piece, bootstrapping cut pieces.

    A piece that ends without ``terminated`` (time limit, or the fragment ran out) is bootstrapped
    from the critic's V(last new_obs). Without a critic (``use_critic=False``) there is nothing
    to bootstrap from, so the returns are plain discounted rewards-to-go.
    """
    config = policy.config
    return compute_advantages_by_episode(
        sample_batch,
        gamma=config["gamma"],
        lambda_=config["lambda"],
        value_fn=policy.compute_values if config["use_critic"] else None,
        use_gae=config["use_gae"],
        use_critic=config["use_critic"],
    )


def vf_explained_var(values: torch.Tensor, train_batch: dict) -> torch.Tensor:
    """``1 - Var(R - V) / Var(R)`` over the batch's real rows: 1 for a perfect critic, 0 for a
    constant guess.

    ``values`` V and ``train_batch["value_targets"]`` R are (B,). Returns a 0-d tensor, clamped at
    -1 so that a bad early critic does not swamp a plot.
    Introduced in notebooks/13_algorithms.ipynb.
    """

    def variance(x):
        return masked_mean((x - masked_mean(x, train_batch)) ** 2, train_batch)

    targets = train_batch[SampleBatch.VALUE_TARGETS]
    target_variance = variance(targets)
    if target_variance == 0:
        return torch.zeros(())
    return torch.clamp(1.0 - variance(targets - values) / target_variance, min=-1.0)


def actor_critic_loss(policy, model, dist_class, train_batch):
    """A2C/A3C loss: policy gradient with advantages, critic regression, entropy bonus.

    With ``pi`` the policy, ``V`` the critic, ``A_t`` the advantages and ``R_t`` the value targets::

        pi_loss  = -mean_t[ log pi(a_t | s_t) * A_t ]
        vf_loss  = 0.5 * mean_t[ (V(s_t) - R_t)^2 ]
        entropy  = mean_t[ H(pi(. | s_t)) ]
        total    = pi_loss + vf_loss_coeff * vf_loss - entropy_coeff * entropy

    Shapes: ``obs`` (B, obs_size), ``actions`` ``(B, *action_shape)``, ``advantages`` and
    ``value_targets`` (B,); ``logp``, ``V`` and ``H`` are (B,). Means skip the padding rows of
    recurrent batches (``masked_mean``). With ``use_critic=False`` vf_loss is 0.
    The pieces are kept on ``policy.loss_stats`` for ``a3c_stats``.
    Introduced in notebooks/13_algorithms.ipynb.
    """
    logits, _ = model.from_batch(train_batch)
    action_dist = dist_class(logits, model)
    logp = action_dist.logp(train_batch[SampleBatch.ACTIONS])
    pi_loss = -masked_mean(logp * train_batch[SampleBatch.ADVANTAGES], train_batch)
    entropy = masked_mean(action_dist.entropy(), train_batch)
    if policy.config["use_critic"]:
        values = model.value_function()
        vf_loss = 0.5 * masked_mean(
            (values - train_batch[SampleBatch.VALUE_TARGETS]) ** 2, train_batch
        )
    else:
        values = torch.zeros_like(logp)
        vf_loss = torch.zeros((), device=logp.device)
    total = (
        pi_loss
        + policy.config["vf_loss_coeff"] * vf_loss
        - policy.config["entropy_coeff"] * entropy
    )
    policy.loss_stats = {
        "policy_loss": pi_loss,
        "vf_loss": vf_loss,
        "entropy": entropy,
        "values": values.detach(),
    }
    return total


def a3c_stats(policy, train_batch):
    """Learner statistics of the last loss: its pieces, and how much of the returns' variance V
    explains."""
    stats = policy.loss_stats
    return {
        **{key: stats[key].item() for key in ("policy_loss", "vf_loss", "entropy")},
        "vf_explained_var": vf_explained_var(stats["values"], train_batch).item(),
    }


A3CTorchPolicy = build_policy(
    "A3CTorchPolicy",
    loss_fn=actor_critic_loss,
    get_default_config=get_default_config,
    postprocess_fn=compute_gae_for_sample_batch,
    stats_fn=a3c_stats,
)
