"""The SAC policy: a squashed Gaussian actor, twin Q critics, and a learned entropy weight alpha.

SAC maximizes reward plus alpha times the policy's entropy. The actor samples
``a = squash(u)``, ``u ~ N(mean(s), std(s))`` (``TorchSquashedGaussian``); the critics learn
the soft Bellman target; alpha is tuned so that the policy's entropy stays near a target
(``-|A|`` by default). Actor, critics and alpha learn in one step on each replayed minibatch,
then the target critics move by ``tau`` (DDPG's ``DelayedActorMixin`` with ``policy_delay`` 1).
Introduced in notebooks/16_continuous_control.ipynb.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.agents.ddpg.ddpg_torch_policy import (
    DDPGTorchModel,
    DelayedActorMixin,
    bellman_targets,
    check_continuous_actions,
    critics_held_fixed,
)
from course_lib.agents.dqn.dqn_torch_policy import (
    FlushDenormalsMixin,
    TargetNetworkMixin,
    setup_target_network,
)
from course_lib.models import ModelCatalog
from course_lib.policy.policy_template import build_policy
from course_lib.sample_batch import SampleBatch

# log-std of the actor's Gaussian is clamped here: wider is numerically useless, narrower is
# a policy that can no longer explore (the bounds stable-baselines3 and RLlib use).
LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0


def get_default_config() -> dict:
    """SAC's defaults: ``DEFAULT_CONFIG`` in sac.py (imported when called: sac.py imports this
    module). Introduced in notebooks/16_continuous_control.ipynb."""
    from course_lib.agents.sac.sac import DEFAULT_CONFIG

    return DEFAULT_CONFIG


def check_sac_spaces(policy, obs_space, action_space, config):
    """``before_init``: refuse what SAC cannot act in (``check_continuous_actions``)."""
    check_continuous_actions("SAC", action_space, config)


class SACTorchModel(DDPGTorchModel):
    """DDPG's model with a Gaussian actor head and the entropy weight.

    ``forward``: obs ``(B, obs_size)`` -> ``[mean, log_std]`` ``(B, 2d)``, log-std clamped to
    ``[LOG_STD_MIN, LOG_STD_MAX]``: the inputs of ``TorchSquashedGaussian``. ``log_alpha``: a
    scalar parameter (alpha = exp(log_alpha) stays positive). Critics as in ``DDPGTorchModel``.
    Introduced in notebooks/16_continuous_control.ipynb.
    """

    def __init__(self, *args, initial_alpha: float = 1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.log_alpha = nn.Parameter(torch.tensor(float(np.log(initial_alpha))))

    def forward(self, input_dict, state, seq_lens):
        mean, log_std = torch.chunk(self.policy_model(input_dict["obs"]), 2, dim=-1)
        return torch.cat([mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)], dim=-1), state


def make_sac_model(policy, obs_space, action_space, config):
    """Actor (mean and log-std per action dimension), twin critics and ``log_alpha``."""
    return SACTorchModel(
        obs_space,
        action_space,
        2 * int(np.prod(action_space.shape)),
        config["model"],
        "sac_model",
        actor_hiddens=config["actor_hiddens"],
        critic_hiddens=config["critic_hiddens"],
        twin_q=config["twin_q"],
        initial_alpha=config["initial_alpha"],
    )


def target_entropy(config: dict, action_space) -> float:
    """``config["target_entropy"]``, or ``-|A|`` (minus the number of action dimensions, the SAC
    paper's choice) when it is None. Introduced in notebooks/16_continuous_control.ipynb."""
    if config["target_entropy"] is not None:
        return float(config["target_entropy"])
    return -float(np.prod(action_space.shape))


def alpha_loss_fn(log_alpha: torch.Tensor, logp: torch.Tensor, entropy_target: float):
    """``-mean(log_alpha * (logp + target_entropy))`` with ``logp`` ``(B,)`` held fixed.

    Its gradient in ``log_alpha`` is ``-(mean(logp) + target) = entropy - target`` (the entropy
    estimated as ``-mean(logp)``): a step down it lowers alpha while the entropy is above the
    target and raises it while below, pushing the policy towards the target entropy.
    Introduced in notebooks/16_continuous_control.ipynb.
    """
    return -(log_alpha * (logp.detach() + entropy_target)).mean()


def sac_loss(policy, model, dist_class, train_batch):
    """Critic, actor and alpha losses, summed for one backward pass (each moves its own part).

    With ``alpha = exp(log_alpha)`` (a constant inside the first two), ``a~`` a fresh
    reparameterized sample of the current actor and ``logp`` its log-density::

        soft_q'     = min_i Q_targ_i(s', a~') - alpha * logp(a~'|s')
        y           = r + gamma * (1 - terminated) * soft_q'
        critic_loss = 0.5 * sum_i mean((Q_i(s, a) - y)^2)
        actor_loss  = mean(alpha * logp(a~|s) - min_i Q_i(s, a~))      (critics held fixed)
        alpha_loss  = alpha_loss_fn(log_alpha, logp(a~|s), target_entropy)

    Shapes: obs, new_obs ``(B, obs_size)``; actions ``(B, d)``; the rest ``(B,)``.
    Introduced in notebooks/16_continuous_control.ipynb.
    """
    obs, actions = train_batch[SampleBatch.OBS], train_batch[SampleBatch.ACTIONS].float()
    alpha = model.log_alpha.exp().detach()
    with torch.no_grad():
        next_obs = train_batch[SampleBatch.NEXT_OBS]
        next_dist = dist_class(model({SampleBatch.OBS: next_obs})[0], model)
        next_actions = next_dist.sample()
        next_q = policy.target_model.min_q_values(next_obs, next_actions)
        soft_next_q = next_q - alpha * next_dist.sampled_action_logp()
        targets = bellman_targets(
            train_batch[SampleBatch.REWARDS],
            train_batch[SampleBatch.TERMINATEDS],
            policy.config["gamma"],
            soft_next_q,
        )
    q = model.q_values(obs, actions)
    critic_loss = 0.5 * F.mse_loss(q, targets)
    if model.twin_q_model is not None:
        critic_loss = critic_loss + 0.5 * F.mse_loss(model.twin_q_values(obs, actions), targets)

    dist = dist_class(model({SampleBatch.OBS: obs})[0], model)
    new_actions = dist.sample()
    logp = dist.sampled_action_logp()
    with critics_held_fixed(model):
        actor_loss = (alpha * logp - model.min_q_values(obs, new_actions)).mean()
    alpha_loss = alpha_loss_fn(model.log_alpha, logp, policy.target_entropy)
    policy.last_stats = {
        "critic_loss": critic_loss.item(),
        "actor_loss": actor_loss.item(),
        "alpha_loss": alpha_loss.item(),
        "alpha": alpha.item(),
        "entropy": -logp.mean().item(),
        "mean_q": q.mean().item(),
    }
    return critic_loss + actor_loss + alpha_loss


def sac_stats(policy, train_batch):
    """The loss's parts and alpha, as recorded by the last loss call."""
    return dict(policy.last_stats)


def sac_optimizer(policy, config):
    """One Adam with a learning rate per part: ``actor_lr``, ``critic_lr``, ``entropy_lr``."""
    model = policy.model
    return torch.optim.Adam(
        [
            {"params": model.actor_parameters(), "lr": config["actor_lr"]},
            {"params": model.critic_parameters(), "lr": config["critic_lr"]},
            {"params": [model.log_alpha], "lr": config["entropy_lr"]},
        ]
    )


def setup_sac(policy, obs_space, action_space, config):
    """``after_init``: target networks, the step counter, the squashed Gaussian over the policy's
    Box, and the target entropy."""
    setup_target_network(policy, obs_space, action_space, config)
    policy.dist_class, policy.num_outputs = ModelCatalog.get_action_dist(
        action_space, config["model"], dist_type="squashed_gaussian"
    )
    policy.target_entropy = target_entropy(config, action_space)
    policy.num_critic_steps, policy.actor_step, policy.last_stats = 0, True, {}


SACTorchPolicy = build_policy(
    "SACTorchPolicy",
    loss_fn=sac_loss,
    get_default_config=get_default_config,
    stats_fn=sac_stats,
    optimizer_fn=sac_optimizer,
    make_model=make_sac_model,
    before_init=check_sac_spaces,
    after_init=setup_sac,
    mixins=[DelayedActorMixin, TargetNetworkMixin, FlushDenormalsMixin],
)
