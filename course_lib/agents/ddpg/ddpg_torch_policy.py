"""The DDPG (and TD3) policy: a deterministic actor, a Q critic (two for TD3), target networks.

The actor ``mu(s)`` maps an observation to one action inside the Box; the critic ``Q(s, a)``
scores a state-action pair. Learning alternates two regressions on replayed transitions:

- critic: ``Q(s, a)`` towards ``r + gamma * (1 - terminated) * Q_targ(s', mu_targ(s'))``;
- actor: up the critic's slope, i.e. minimize ``-Q(s, mu(s))`` with the critic held fixed.

TD3 (``twin_q``, ``smooth_target_policy``, ``policy_delay > 1``) adds three fixes for the
critic's overestimation: the smaller of two critics in the target, noise on the target action,
and an actor (and targets) that move only every ``policy_delay`` critic steps. The targets
follow the online networks slowly: ``target <- tau * online + (1 - tau) * target`` after each
actor step. Exploration adds noise to ``mu(s)`` (``GaussianNoise``, ``OrnsteinUhlenbeckNoise``).
Introduced in notebooks/16_continuous_control.ipynb.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.agents.dqn.dqn_torch_policy import (
    FlushDenormalsMixin,
    TargetNetworkMixin,
    setup_target_network,
)
from course_lib.evaluation.env_actions import is_float_box
from course_lib.models import ModelCatalog, TorchModelV2, merge_model_config
from course_lib.models.fcnet import mlp, orthogonal_linear
from course_lib.policy.policy_template import build_policy
from course_lib.sample_batch import SampleBatch


def get_default_config() -> dict:
    """DDPG's defaults: ``DEFAULT_CONFIG`` in ddpg.py (imported when called: ddpg.py imports this
    module). Introduced in notebooks/16_continuous_control.ipynb."""
    from course_lib.agents.ddpg.ddpg import DEFAULT_CONFIG

    return DEFAULT_CONFIG


def check_continuous_actions(algorithm: str, action_space, config: dict) -> None:
    """DDPG, TD3 and SAC act with a network that outputs a point in a bounded Box; say what to
    use instead before anything is built. Introduced in notebooks/16_continuous_control.ipynb."""
    if not is_float_box(action_space):
        raise TypeError(
            f"{algorithm} learns a continuous action with a network, so it needs a Box action "
            f"space of floats; this environment's is {action_space}. For Discrete actions use "
            "DQN (or PPO / A2C, which handle both kinds)."
        )
    if not (np.all(np.isfinite(action_space.low)) and np.all(np.isfinite(action_space.high))):
        raise ValueError(
            f"{algorithm} squashes its actions into the Box's bounds, but {action_space} has "
            'infinite bounds. Keep "normalize_actions": True (the policy then acts in [-1, 1]) '
            "and give the env finite bounds."
        )
    if merge_model_config(config["model"])["use_lstm"]:
        raise ValueError(
            f"course_lib's {algorithm} has no recurrent version: remove 'use_lstm' from the model "
            "config."
        )


def check_ddpg_spaces(policy, obs_space, action_space, config):
    """``before_init``: refuse what DDPG/TD3 cannot act in (``check_continuous_actions``)."""
    check_continuous_actions("DDPG/TD3", action_space, config)


def q_network(in_size: int, hiddens) -> nn.Sequential:
    """A critic: ReLU layers ``hiddens`` then a linear ``-> (B, 1)`` on ``[obs, action]``."""
    out_size = int(hiddens[-1]) if hiddens else in_size
    return nn.Sequential(mlp(in_size, list(hiddens), "relu"), orthogonal_linear(out_size, 1, 1.0))


class DDPGTorchModel(TorchModelV2):
    """Actor and critic(s) of DDPG, TD3 and SAC in one module (one ``get_weights``).

    - ``forward``: the actor, obs ``(B, obs_size)`` -> ``(B, num_outputs)``: for DDPG/TD3 the
      action ``(B, d)``, squashed into the policy's Box by ``low + (tanh(x) + 1) * (high-low)/2``;
      for SAC (subclass) the inputs of its action distribution.
    - ``q_values(obs, actions)`` and, with ``twin_q``, ``twin_q_values``: ``(B,)`` each, from
      ``actions (B, d)`` in the policy's Box.

    ``d = prod(action_space.shape)``. Introduced in notebooks/16_continuous_control.ipynb.
    """

    def __init__(
        self,
        obs_space,
        action_space,
        num_outputs,
        model_config,
        name,
        *,
        actor_hiddens=(256, 256),
        critic_hiddens=(256, 256),
        twin_q=False,
    ):
        super().__init__(obs_space, action_space, num_outputs, model_config, name)
        self.action_size = int(np.prod(action_space.shape))
        actor_out = int(actor_hiddens[-1]) if actor_hiddens else self.obs_size
        self.policy_model = nn.Sequential(
            mlp(self.obs_size, list(actor_hiddens), "relu"),
            orthogonal_linear(actor_out, num_outputs, 1.0),
        )
        critic_in = self.obs_size + self.action_size
        self.q_model = q_network(critic_in, critic_hiddens)
        self.twin_q_model = q_network(critic_in, critic_hiddens) if twin_q else None
        # Bounds are not weights: kept out of state_dict, so get_weights holds networks only.
        low, high = (
            torch.as_tensor(b, dtype=torch.float32).reshape(-1)
            for b in (action_space.low, action_space.high)
        )
        self.register_buffer("low", low, persistent=False)
        self.register_buffer("high", high, persistent=False)

    def forward(self, input_dict, state, seq_lens):
        return self.squash(self.policy_model(input_dict["obs"])), state

    def squash(self, x: torch.Tensor) -> torch.Tensor:
        """Unbounded ``x (B, d)`` -> an action in ``[low, high]``."""
        return self.low + (torch.tanh(x) + 1.0) * (self.high - self.low) / 2.0

    def q_values(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.q_model(torch.cat([obs, actions], dim=-1)).squeeze(-1)

    def twin_q_values(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.twin_q_model(torch.cat([obs, actions], dim=-1)).squeeze(-1)

    def min_q_values(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``min(Q1, Q2)`` with twin critics, else ``Q``: ``(B,)``."""
        q = self.q_values(obs, actions)
        if self.twin_q_model is None:
            return q
        return torch.minimum(q, self.twin_q_values(obs, actions))

    def actor_parameters(self) -> list:
        return list(self.policy_model.parameters())

    def critic_parameters(self) -> list:
        twin = [] if self.twin_q_model is None else list(self.twin_q_model.parameters())
        return list(self.q_model.parameters()) + twin


@contextlib.contextmanager
def critics_held_fixed(model: DDPGTorchModel):
    """Inside the block the critics' weights are constants to autograd.

    Why: the actor's loss ``-Q(s, mu(s))`` must move the actor only. Gradients still flow through
    the critic to its action input, and from there into the actor. Introduced in
    notebooks/16_continuous_control.ipynb.
    """
    params = model.critic_parameters()
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def make_ddpg_model(policy, obs_space, action_space, config):
    """The actor-critic module: a deterministic actor with one output per action dimension."""
    return DDPGTorchModel(
        obs_space,
        action_space,
        int(np.prod(action_space.shape)),
        config["model"],
        "ddpg_model",
        actor_hiddens=config["actor_hiddens"],
        critic_hiddens=config["critic_hiddens"],
        twin_q=config["twin_q"],
    )


def target_policy_actions(policy, next_obs: torch.Tensor) -> torch.Tensor:
    """``mu_targ(s')`` ``(B, d)``, smoothed for TD3 (``smooth_target_policy``):

        a' = clip(mu_targ(s') + half_range * clip(target_noise * N(0, 1), -c, c), low, high)

    with ``c = target_noise_clip`` and ``half_range = (high - low) / 2`` (1 in a normalized Box):
    the target then averages Q over a small neighbourhood of the action, so a sharp, wrong peak
    of the critic is not copied into the target. Introduced in
    notebooks/16_continuous_control.ipynb.
    """
    target = policy.target_model
    next_actions = target({SampleBatch.OBS: next_obs})[0]
    if not policy.config["smooth_target_policy"]:
        return next_actions
    clip = policy.config["target_noise_clip"]
    noise = (policy.config["target_noise"] * torch.randn_like(next_actions)).clamp(-clip, clip)
    half_range = (target.high - target.low) / 2.0
    return torch.minimum(torch.maximum(next_actions + half_range * noise, target.low), target.high)


def bellman_targets(rewards, terminateds, gamma: float, next_q) -> torch.Tensor:
    """``r + gamma * (1 - terminated) * next_q`` ``(B,)``: no bootstrap after a real end.

    A truncated episode (time limit) still bootstraps: its next state had a future. Introduced
    in notebooks/16_continuous_control.ipynb.
    """
    return rewards + gamma * (1.0 - terminateds.float()) * next_q


def ddpg_loss(policy, model, dist_class, train_batch):
    """Critic loss plus, on actor steps, the actor loss; one backward pass for both.

    With ``Q_targ``/``mu_targ`` the target networks (no gradient):

        a'          = target_policy_actions(s')
        y           = r + gamma * (1 - terminated) * min_i Q_targ_i(s', a')
        critic_loss = sum over the critics of mean((Q_i(s, a) - y)^2)
        actor_loss  = -mean(Q(s, mu(s)))     (critics held fixed; only every policy_delay steps)

    The min over two critics is TD3's (``twin_q``); DDPG has one. Shapes: obs, new_obs
    ``(B, obs_size)``; actions ``(B, d)``; rewards, terminateds ``(B,)``.
    Introduced in notebooks/16_continuous_control.ipynb.
    """
    obs, actions = train_batch[SampleBatch.OBS], train_batch[SampleBatch.ACTIONS].float()
    with torch.no_grad():
        next_obs = train_batch[SampleBatch.NEXT_OBS]
        next_q = policy.target_model.min_q_values(next_obs, target_policy_actions(policy, next_obs))
        targets = bellman_targets(
            train_batch[SampleBatch.REWARDS],
            train_batch[SampleBatch.TERMINATEDS],
            policy.config["gamma"],
            next_q,
        )
    q = model.q_values(obs, actions)
    critic_loss = F.mse_loss(q, targets)
    if model.twin_q_model is not None:
        critic_loss = critic_loss + F.mse_loss(model.twin_q_values(obs, actions), targets)
    loss = critic_loss
    if policy.actor_step:
        with critics_held_fixed(model):
            actor_loss = -model.q_values(obs, model({SampleBatch.OBS: obs})[0]).mean()
        loss = loss + actor_loss
        policy.last_stats["actor_loss"] = actor_loss.item()
    policy.last_stats.update(
        critic_loss=critic_loss.item(), mean_q=q.mean().item(), max_q=q.max().item()
    )
    return loss


def learner_stats(policy, train_batch):
    """The loss's parts, as recorded by the last loss call (``actor_loss``: last actor step)."""
    return dict(policy.last_stats)


def actor_critic_optimizer(policy, config):
    """One Adam with a learning rate per part: ``actor_lr`` for the actor, ``critic_lr`` for the
    critic(s). On a critic-only step (TD3) the actor's gradients are None and Adam skips them."""
    model = policy.model
    return torch.optim.Adam(
        [
            {"params": model.actor_parameters(), "lr": config["actor_lr"]},
            {"params": model.critic_parameters(), "lr": config["critic_lr"]},
        ]
    )


class DelayedActorMixin:
    """Counts critic steps; every ``policy_delay``-th one also moves the actor and then the
    targets (``update_target``, by ``tau``). The count is part of ``get_state``.

    Introduced in notebooks/16_continuous_control.ipynb.
    """

    def learn_on_batch(self, samples: SampleBatch) -> dict:
        self.actor_step = self.num_critic_steps % self.config["policy_delay"] == 0
        result = super().learn_on_batch(samples)
        if self.actor_step:
            self.update_target()
        self.num_critic_steps += 1
        return result

    def get_state(self) -> dict:
        return {**super().get_state(), "num_critic_steps": self.num_critic_steps}

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        self.num_critic_steps = int(state["num_critic_steps"])


def setup_actor_critic(policy, obs_space, action_space, config):
    """``after_init``: the target networks, the step counter, and the distribution the actor's
    outputs feed (a point mass on the action: exploration adds the noise)."""
    setup_target_network(policy, obs_space, action_space, config)
    policy.dist_class, policy.num_outputs = ModelCatalog.get_action_dist(
        action_space, config["model"], dist_type="deterministic"
    )
    policy.num_critic_steps, policy.actor_step, policy.last_stats = 0, True, {}


DDPGTorchPolicy = build_policy(
    "DDPGTorchPolicy",
    loss_fn=ddpg_loss,
    get_default_config=get_default_config,
    stats_fn=learner_stats,
    optimizer_fn=actor_critic_optimizer,
    make_model=make_ddpg_model,
    before_init=check_ddpg_spaces,
    after_init=setup_actor_critic,
    mixins=[DelayedActorMixin, TargetNetworkMixin, FlushDenormalsMixin],
)
