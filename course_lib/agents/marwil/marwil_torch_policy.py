"""The MARWIL policy: imitation weighted by how much better than expected each action turned out.

MARWIL (Wang et al. 2018, "Exponentially weighted imitation learning for batched historical
data") learns from recorded episodes only. Postprocessing adds the discounted return ``R_t`` of
every recorded step (``value_targets``); a value head learns ``V(s) ~ R``, and the advantage
``A_t = R_t - V(s_t)`` says whether the recorded action did better than the behaviour usually
does from ``s_t``. The policy imitates each action with weight ``exp(beta * A_t / c)``: good
actions count for more, bad ones for less. ``beta = 0`` gives every action weight 1: plain
behaviour cloning (BC). Introduced in notebooks/17_offline_rl.ipynb.
"""

from __future__ import annotations

import math

import torch

from course_lib.agents.a3c.a3c_torch_policy import vf_explained_var
from course_lib.policy.policy_template import build_policy
from course_lib.policy.torch_policy import masked_mean
from course_lib.postprocessing import compute_advantages_by_episode
from course_lib.sample_batch import SampleBatch


def get_default_config() -> dict:
    """MARWIL's defaults: ``DEFAULT_CONFIG`` in marwil.py (imported late: it imports this file).

    Introduced in notebooks/17_offline_rl.ipynb.
    """
    from course_lib.agents.marwil.marwil import DEFAULT_CONFIG

    return DEFAULT_CONFIG


class AdvantageNormMixin:
    """``policy.sqd_adv_norm``: the moving average of the squared advantage, ``c**2`` in the loss.

    Part of ``get_state()``, so a restored policy weighs actions as the saved one did.
    Introduced in notebooks/17_offline_rl.ipynb.
    """

    def get_state(self) -> dict:
        return {**super().get_state(), "sqd_adv_norm": self.sqd_adv_norm}

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        self.sqd_adv_norm = state["sqd_adv_norm"]


def setup_adv_norm(policy, obs_space, action_space, config):
    policy.sqd_adv_norm = float(config["moving_average_sqd_adv_norm_start"])


def marwil_postprocess(policy, sample_batch, other_agent_batches=None, episode=None):
    """Add ``value_targets`` = the discounted return ``R_t`` of each step, shape (T,).

    An episode piece that ends without termination (time limit, or cut by the recording) is
    bootstrapped from the value head's ``V(new_obs)`` of its last step. Introduced in
    notebooks/17_offline_rl.ipynb.
    """
    return compute_advantages_by_episode(
        sample_batch,
        gamma=policy.config["gamma"],
        value_fn=policy.compute_values,
        use_gae=False,
        use_critic=False,
    )


def marwil_loss(policy, model, dist_class, train_batch):
    """MARWIL's loss on one batch.

    With ``R_t`` the ``value_targets``, ``A_t = R_t - V(s_t)`` and ``c**2`` a moving average of
    ``mean(A**2)`` (updated here by ``rate * (mean(A**2) - c**2)``, rate
    ``moving_average_sqd_adv_norm_update_rate``):

        weight_t    = exp(beta * A_t / c)          (no gradient flows through it)
        policy_loss = -mean(weight_t * log pi(a_t | s_t))
        vf_loss     = 0.5 * mean(A_t ** 2)
        total       = policy_loss + vf_coeff * vf_loss

    ``c`` makes ``beta`` independent of the reward scale. With ``beta = 0`` every weight is 1 and
    no value head is trained: behaviour cloning, ``-mean(log pi(a_t | s_t))``.
    Shapes: ``actions``, ``value_targets`` (B,). Introduced in notebooks/17_offline_rl.ipynb.
    """
    config = policy.config
    logits, _ = model.from_batch(train_batch)
    logp = dist_class(logits, model).logp(train_batch[SampleBatch.ACTIONS])
    if config["beta"] == 0.0:
        weights = torch.ones_like(logp)
        values = vf_loss = torch.zeros((), device=logp.device)
    else:
        values = model.value_function()
        advantages = train_batch[SampleBatch.VALUE_TARGETS] - values
        squared_mean = masked_mean(advantages**2, train_batch)
        vf_loss = 0.5 * squared_mean
        rate = config["moving_average_sqd_adv_norm_update_rate"]
        policy.sqd_adv_norm += rate * (squared_mean.item() - policy.sqd_adv_norm)
        scale = config["beta"] / (1e-8 + math.sqrt(policy.sqd_adv_norm))
        weights = torch.exp(scale * advantages.detach())
    policy_loss = -masked_mean(weights * logp, train_batch)
    total = policy_loss + config["vf_coeff"] * vf_loss
    policy.loss_stats = {
        "policy_loss": policy_loss.item(),
        "vf_loss": float(vf_loss.detach()),
        "mean_weight": weights.mean().item(),
        "values": values.detach(),
    }
    return total


def marwil_stats(policy, train_batch):
    """Learner statistics of the last loss; ``vf_explained_var`` only when the value head learns."""
    stats = dict(policy.loss_stats)
    values = stats.pop("values")
    if policy.config["beta"] != 0.0:
        stats["vf_explained_var"] = vf_explained_var(values, train_batch).item()
        stats["moving_average_sqd_adv_norm"] = policy.sqd_adv_norm
    return stats


MARWILTorchPolicy = build_policy(
    "MARWILTorchPolicy",
    loss_fn=marwil_loss,
    get_default_config=get_default_config,
    postprocess_fn=marwil_postprocess,
    stats_fn=marwil_stats,
    after_init=setup_adv_norm,
    mixins=[AdvantageNormMixin],
)
