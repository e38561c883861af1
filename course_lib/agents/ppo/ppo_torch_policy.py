"""The PPO policy: a clipped surrogate objective, an adaptive KL penalty and a clipped value loss.

PPO reuses each sampled batch for several SGD passes. The policy that collected the batch (its
``action_logp`` and ``action_dist_inputs`` columns) stays fixed; the clipped probability ratio
and the KL penalty keep the updated policy close to it, so the reused advantages stay valid.
Introduced in notebooks/13_algorithms.ipynb.
"""

from __future__ import annotations

import torch

from course_lib.agents.a3c.a3c_torch_policy import compute_gae_for_sample_batch, vf_explained_var
from course_lib.policy.policy_template import build_policy
from course_lib.policy.torch_policy import masked_mean
from course_lib.sample_batch import SampleBatch


def get_default_config() -> dict:
    """PPO's defaults: ``DEFAULT_CONFIG`` in ppo.py, the one dict the trainer uses too.

    Imported when called, not at the top of this file, because ppo.py imports this module to
    build ``PPOTrainer``. Introduced in notebooks/13_algorithms.ipynb.
    """
    from course_lib.agents.ppo.ppo import DEFAULT_CONFIG

    return DEFAULT_CONFIG


class KLCoeffMixin:
    """The adaptive KL coefficient ``policy.kl_coeff``, changed by ``update_kl`` after SGD rounds.

    ``kl_coeff`` is part of ``get_state()``, so a restored policy penalises the KL exactly as the
    saved one did. Introduced in notebooks/13_algorithms.ipynb.
    """

    def update_kl(self, sampled_kl: float) -> float:
        """Grow the penalty 1.5x above ``2 * kl_target``, halve it below ``kl_target / 2``.

        ``sampled_kl`` is the mean KL(old || new) measured on the last batch. Returns the new
        coefficient.
        """
        if sampled_kl > 2.0 * self.config["kl_target"]:
            self.kl_coeff *= 1.5
        elif sampled_kl < 0.5 * self.config["kl_target"]:
            self.kl_coeff *= 0.5
        return self.kl_coeff

    def get_state(self) -> dict:
        return {**super().get_state(), "kl_coeff": self.kl_coeff}

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        self.kl_coeff = state["kl_coeff"]


def setup_kl_coeff(policy, obs_space, action_space, config):
    policy.kl_coeff = float(config["kl_coeff"])


def ppo_surrogate_loss(policy, model, dist_class, train_batch):
    """PPO's loss on one (mini)batch.

    With ``r_t = pi(a_t | s_t) / pi_old(a_t | s_t) = exp(logp - action_logp)``, ``A_t`` the
    advantages, ``R_t`` the value targets, ``V_old`` the ``vf_preds`` recorded while sampling and
    ``eps = clip_param``, ``c = vf_clip_param``::

        surrogate_t = min(A_t * r_t, A_t * clip(r_t, 1 - eps, 1 + eps))
        kl_t        = KL(pi_old(. | s_t) || pi(. | s_t))
        vf_loss_t   = max((V(s_t) - R_t)^2, (V_old + clip(V(s_t) - V_old, -c, c) - R_t)^2)
        total       = -mean(surrogate) + kl_coeff * mean(kl) + vf_loss_coeff * mean(vf_loss)
                      - entropy_coeff * mean(entropy)

    The min makes the objective pessimistic: once the ratio has moved past the clip range in the
    direction the advantage rewards, the gradient of that row is 0. The value clip is the one of
    the PPO paper's code (baselines' ppo2, also RLlib's in early 2021): V may not move more than
    ``c`` from the prediction it had while sampling, the same "stay close" idea as the ratio clip.
    (Later RLlib versions instead clamp the squared error itself at ``c``, which ignores rows
    whose error is large; we keep the form that needs, and explains, the ``vf_preds`` column.)
    The KL term is left out when ``kl_coeff`` is 0, so an infinite KL cannot turn the loss into NaN.

    Shapes: ``logp``, ``action_logp``, ``advantages``, ``value_targets``, ``vf_preds`` (B,);
    ``action_dist_inputs`` (B, num_outputs). Means skip recurrent padding (``masked_mean``).
    Introduced in notebooks/13_algorithms.ipynb.
    """
    config = policy.config
    logits, _ = model.from_batch(train_batch)
    action_dist = dist_class(logits, model)
    old_dist = dist_class(train_batch[SampleBatch.ACTION_DIST_INPUTS], model)

    ratio = torch.exp(
        action_dist.logp(train_batch[SampleBatch.ACTIONS]) - train_batch[SampleBatch.ACTION_LOGP]
    )
    advantages = train_batch[SampleBatch.ADVANTAGES]
    clip = config["clip_param"]
    surrogate = torch.min(
        advantages * ratio, advantages * torch.clamp(ratio, 1.0 - clip, 1.0 + clip)
    )
    policy_loss = -masked_mean(surrogate, train_batch)

    mean_kl = masked_mean(old_dist.kl(action_dist), train_batch)
    entropy = masked_mean(action_dist.entropy(), train_batch)

    if config["use_critic"]:
        values, old_values = model.value_function(), train_batch[SampleBatch.VF_PREDS]
        targets = train_batch[SampleBatch.VALUE_TARGETS]
        clipped_values = old_values + torch.clamp(
            values - old_values, -config["vf_clip_param"], config["vf_clip_param"]
        )
        vf_loss = masked_mean(
            torch.max((values - targets) ** 2, (clipped_values - targets) ** 2), train_batch
        )
    else:
        values = torch.zeros_like(ratio)
        vf_loss = torch.zeros((), device=ratio.device)

    total = policy_loss + config["vf_loss_coeff"] * vf_loss - config["entropy_coeff"] * entropy
    if policy.kl_coeff > 0:
        total = total + policy.kl_coeff * mean_kl
    policy.loss_stats = {
        "total_loss": total,
        "policy_loss": policy_loss,
        "vf_loss": vf_loss,
        "kl": mean_kl,
        "entropy": entropy,
        "values": values.detach(),
    }
    return total


def ppo_stats(policy, train_batch):
    """Learner statistics of the last loss; ``kl`` is what the trainer passes to ``update_kl``."""
    stats = policy.loss_stats
    return {
        **{
            key: stats[key].item()
            for key in ("total_loss", "policy_loss", "vf_loss", "kl", "entropy")
        },
        "vf_explained_var": vf_explained_var(stats["values"], train_batch).item(),
        "cur_kl_coeff": policy.kl_coeff,
    }


PPOTorchPolicy = build_policy(
    "PPOTorchPolicy",
    loss_fn=ppo_surrogate_loss,
    get_default_config=get_default_config,
    postprocess_fn=compute_gae_for_sample_batch,
    stats_fn=ppo_stats,
    after_init=setup_kl_coeff,
    mixins=[KLCoeffMixin],
)
