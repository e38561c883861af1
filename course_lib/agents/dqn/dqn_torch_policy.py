"""The DQN policy: a Q-network, a target network, n-step returns, double Q-learning, dueling heads.

The model outputs one Q-value per action; they are the "distribution inputs" that
``EpsilonGreedy`` reads, so acting is argmax Q (or, with probability epsilon, a random action).
Learning regresses Q(s, a) onto ``r + discount * max_a' Q_target(s', a')``, where the target
network is a frozen copy of the Q-network that the trainer refreshes with ``update_target``.
Introduced in notebooks/13_algorithms.ipynb.
"""

from __future__ import annotations

import contextlib
import copy

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import nn

from course_lib.models import ModelCatalog, TorchModelV2, merge_model_config
from course_lib.models.fcnet import mlp, orthogonal_linear
from course_lib.policy.policy_template import build_policy
from course_lib.sample_batch import SampleBatch
from course_lib.validation import is_whole_number

DISCOUNTS = "discounts"
PRIO_WEIGHTS = "weights"
Q_VALUES = "q_values"


def get_default_config() -> dict:
    """DQN's defaults: ``DEFAULT_CONFIG`` in dqn.py, the one dict the trainer uses too.

    Imported when called, not at the top of this file, because dqn.py imports this module to
    build ``DQNTrainer``. Introduced in notebooks/13_algorithms.ipynb.
    """
    from course_lib.agents.dqn.dqn import DEFAULT_CONFIG

    return DEFAULT_CONFIG


def q_stream(in_size: int, hiddens, num_outputs: int) -> nn.Sequential:
    """One stream of the Q head: ReLU layers ``hiddens``, then a linear ``-> (B, num_outputs)``."""
    out_size = int(hiddens[-1]) if hiddens else in_size
    return nn.Sequential(
        mlp(in_size, list(hiddens), "relu"), orthogonal_linear(out_size, num_outputs, 1.0)
    )


class DQNTorchModel(TorchModelV2):
    """Q-network ``(B, obs_size) -> Q-values (B, n_actions)``.

    A torso (``fcnet_hiddens`` with ``fcnet_activation``) feeds the head: ``q_hiddens`` ReLU layers
    and a linear layer to one output per action. With ``dueling=True`` there are two such streams,
    the advantages ``A (B, n_actions)`` and the state value ``V (B, 1)``, combined as
    ``Q = V + A - mean_a(A)``: subtracting the mean makes the split into V and A unique.
    Introduced in notebooks/13_algorithms.ipynb.
    """

    def __init__(
        self,
        obs_space,
        action_space,
        num_outputs,
        model_config,
        name,
        *,
        q_hiddens=(256,),
        dueling=True,
    ):
        super().__init__(obs_space, action_space, num_outputs, model_config, name)
        torso_hiddens = list(self.model_config["fcnet_hiddens"])
        feature_size = int(torso_hiddens[-1]) if torso_hiddens else self.obs_size
        self.torso = mlp(self.obs_size, torso_hiddens, self.model_config["fcnet_activation"])
        self.advantage_stream = q_stream(feature_size, q_hiddens, num_outputs)
        self.value_stream = q_stream(feature_size, q_hiddens, 1) if dueling else None

    def forward(self, input_dict, state, seq_lens):
        features = self.torso(input_dict["obs"])
        advantages = self.advantage_stream(features)
        if self.value_stream is None:
            return advantages, state
        value = self.value_stream(features)
        return value + advantages - advantages.mean(dim=1, keepdim=True), state


def check_discrete_actions(policy, obs_space, action_space, config):
    """DQN's argmax over one Q-value per action needs a Discrete action space; say so before
    anything is built."""
    if not isinstance(action_space, spaces.Discrete):
        raise TypeError(
            "DQN learns one Q-value per action and acts with argmax, so it needs a Discrete action "
            f"space; this environment's is {action_space}. For continuous (Box) actions use PPO or "
            "A2C, whose Gaussian policies handle them."
        )
    if merge_model_config(config["model"])["use_lstm"]:
        raise ValueError(
            "course_lib's DQN has no recurrent version: remove 'use_lstm' from the model config."
        )


def make_q_model(policy, obs_space, action_space, config):
    """The Q-network: DQNTorchModel, or a configured ``custom_model`` whose outputs are Q-values."""
    if config["model"].get("custom_model") is not None:
        return ModelCatalog.get_model_v2(
            obs_space, action_space, action_space.n, config["model"], name="q_model"
        )
    return DQNTorchModel(
        obs_space,
        action_space,
        action_space.n,
        config["model"],
        "q_model",
        q_hiddens=config["hiddens"],
        dueling=config["dueling"],
    )


def adjust_nstep(batch: SampleBatch, n_step: int, gamma: float) -> SampleBatch:
    """Turn the rows of ONE episode piece (time order) into n-step transitions, in place.

    For row t, with ``m = min(n_step, T - t)`` the steps left in the piece (T rows):

        rewards[t]     = sum_{k < m} gamma^k * r_{t+k}
        new_obs[t]     = new_obs[t + m - 1]   (likewise terminateds and truncateds)
        discounts[t]   = gamma^m

    so the loss's target ``rewards + discounts * (1 - terminated) * Q_target(new_obs)`` is the
    n-step return. Why a per-row ``discounts`` column instead of ``gamma^n`` everywhere: the last
    n - 1 rows of a piece have fewer than n steps left. If the episode terminated there, nothing
    is bootstrapped and the discount does not matter; but a piece cut by a time limit or by the
    end of the rollout fragment still bootstraps from ``new_obs``, which is only m steps ahead,
    so its value must be discounted by gamma^m, not gamma^n. With ``n_step=1`` only ``discounts``
    (= gamma) is added. Introduced in notebooks/13_algorithms.ipynb.
    """
    # A numpy integer counts too: n_step may come from a numpy array of settings.
    if not (is_whole_number(n_step) or isinstance(n_step, np.integer)) or n_step < 1:
        raise ValueError(
            f"n_step must be a whole number >= 1 (how many rewards to sum), got {n_step!r}."
        )
    if SampleBatch.EPS_ID in batch and len(np.unique(batch[SampleBatch.EPS_ID])) > 1:
        raise ValueError(
            "adjust_nstep expects ONE episode piece, but this batch holds several episodes "
            "(eps_id changes). Call it on each piece of batch.split_by_episode()."
        )
    count = batch.count
    rows = np.arange(count)
    steps = np.minimum(n_step, count - rows)  # m for each row
    last = rows + steps - 1
    rewards = batch[SampleBatch.REWARDS].astype(np.float64)
    nstep_rewards = np.zeros(count)
    for k in range(n_step):
        has_step_k = k < steps
        nstep_rewards[has_step_k] += gamma**k * rewards[rows[has_step_k] + k]
    batch[SampleBatch.REWARDS] = nstep_rewards.astype(np.float32)
    for column in (SampleBatch.NEXT_OBS, SampleBatch.TERMINATEDS, SampleBatch.TRUNCATEDS):
        if column in batch:
            batch[column] = batch[column][last]
    batch[DISCOUNTS] = (gamma**steps).astype(np.float32)
    return batch


def postprocess_nstep(policy, sample_batch, other_agent_batches=None, episode=None):
    """n-step transitions (``adjust_nstep``) for the episode piece the worker hands over."""
    return adjust_nstep(sample_batch, policy.config["n_step"], policy.config["gamma"])


def dqn_loss(policy, model, dist_class, train_batch):
    """The (double) DQN loss: Huber loss between Q(s, a) and a bootstrapped target.

    With ``Q`` the online network, ``Q_targ`` the target network, ``d`` the ``discounts``
    column (gamma^m, see ``adjust_nstep``) and ``w`` the ``weights`` column of prioritized
    replay (1 when absent)::

        a*         = argmax_a' Q(s', a')       if double_q  (online net picks,
                     argmax_a' Q_targ(s', a')  otherwise     target net evaluates)
        target     = r + d * (1 - terminated) * Q_targ(s', a*)      no gradient
        td_error   = Q(s, a) - target
        loss       = mean(w * huber(td_error))      huber: x^2 / 2 if |x| <= 1 else |x| - 1/2

    Double Q-learning reduces the overestimation that comes from taking the max of noisy estimates
    with the same network that evaluates them. Shapes: ``obs``, ``new_obs`` (B, obs_size);
    ``actions``, ``rewards``, ``terminateds``, ``discounts``, ``weights`` (B,); Q-values
    (B, n_actions).
    ``td_error`` (B,) is kept on ``policy.td_error`` for prioritized replay.
    Introduced in notebooks/13_algorithms.ipynb.
    """
    if DISCOUNTS not in train_batch:
        raise KeyError(
            f"The DQN loss needs a {DISCOUNTS!r} column (gamma^steps of each n-step transition). "
            "Pass batches through policy.postprocess_trajectory (RolloutWorker.sample() does) "
            "before learning on them."
        )
    q_values, _ = model.from_batch(train_batch)
    actions = train_batch[SampleBatch.ACTIONS].long()
    q_selected = q_values.gather(1, actions.unsqueeze(1)).squeeze(1)

    with torch.no_grad():
        next_obs = {SampleBatch.OBS: train_batch[SampleBatch.NEXT_OBS]}
        next_q_target, _ = policy.target_model(next_obs)
        next_q_chooser = model(next_obs)[0] if policy.config["double_q"] else next_q_target
        best_next_actions = next_q_chooser.argmax(dim=1, keepdim=True)
        next_q = next_q_target.gather(1, best_next_actions).squeeze(1)
        not_terminated = 1.0 - train_batch[SampleBatch.TERMINATEDS].float()
        target = train_batch[SampleBatch.REWARDS] + train_batch[DISCOUNTS] * not_terminated * next_q

    td_error = q_selected - target
    weights = (
        train_batch[PRIO_WEIGHTS].to(td_error.dtype)
        if PRIO_WEIGHTS in train_batch
        else torch.ones_like(td_error)
    )
    loss = torch.mean(weights * F.huber_loss(q_selected, target, reduction="none", delta=1.0))
    policy.td_error = td_error.detach()
    policy.q_selected = q_selected.detach()
    return loss


def dqn_stats(policy, train_batch):
    """Q(s, a) statistics of the last loss: a mean_q that keeps growing is the classic sign of
    divergence."""
    return {
        "mean_q": policy.q_selected.mean().item(),
        "min_q": policy.q_selected.min().item(),
        "max_q": policy.q_selected.max().item(),
        "mean_td_error": policy.td_error.mean().item(),
    }


def q_values_out(policy, input_dict, state, model, action_dist):
    """Record the Q-values of every acting step as the ``q_values`` column (B, n_actions)."""
    return {Q_VALUES: action_dist.inputs}


class TargetNetworkMixin:
    """The target network: a frozen copy of the Q-network, refreshed by ``update_target``.

    It is part of ``get_state()`` (a resumed run computes the same targets) but not of
    ``get_weights()``: rollout workers only act, with the online network.
    Introduced in notebooks/13_algorithms.ipynb.
    """

    def update_target(self, tau: float | None = None) -> None:
        """``target <- tau * online + (1 - tau) * target``, weight by weight.

        ``tau=None`` reads ``config["tau"]`` (1.0: a copy).
        """
        tau = self.config["tau"] if tau is None else tau
        online = self.model.state_dict()
        with torch.no_grad():
            for name, target_tensor in self.target_model.state_dict().items():
                target_tensor.copy_(tau * online[name] + (1.0 - tau) * target_tensor)

    def get_target_weights(self) -> dict[str, np.ndarray]:
        """The target network's weights, ``{name: array}`` like ``get_weights()``'s."""
        return {
            name: t.detach().cpu().numpy().copy()
            for name, t in self.target_model.state_dict().items()
        }

    def set_target_weights(self, weights: dict) -> None:
        """Load ``get_target_weights()``'s dict into the target network (Ape-X's workers use
        the learner's target network to compute the priorities of what they sample)."""
        self.target_model.load_state_dict(
            {name: torch.as_tensor(np.array(value)) for name, value in weights.items()}
        )

    def get_state(self) -> dict:
        return {**super().get_state(), "target_weights": self.get_target_weights()}

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        self.set_target_weights(state["target_weights"])


class TDErrorMixin:
    """``learn_on_batch`` also returns ``"td_error"`` (B,), which prioritized replay turns into
    priorities."""

    def learn_on_batch(self, samples: SampleBatch) -> dict:
        result = super().learn_on_batch(samples)
        result["td_error"] = self.td_error.cpu().numpy()
        return result

    def compute_td_error(self, samples: SampleBatch) -> np.ndarray:
        """The loss's ``td_error`` (B,) of ``samples`` under the current networks; nothing learns.

        Ape-X's rollout workers call it on what they sample, so that new rows enter replay with
        their own priority (notebooks/15_scaling_out.ipynb).
        """
        with torch.no_grad():
            self.loss(self.model, self.dist_class, self._lazy_tensor_dict(samples))
        return self.td_error.cpu().numpy()


@contextlib.contextmanager
def flush_denormals():
    """Inside the block, CPU float results too small to be normal (below ~1.2e-38 in float32) are
    set to 0; the previous mode comes back on exit.

    Why DQN learns inside it: a ReLU unit that is inactive on every row of a minibatch gets a zero
    gradient, so Adam's running mean of its weights' gradients shrinks by beta1 = 0.9 per step, and
    on its way to 0 it spends about 150 steps as a subnormal number. x86 CPUs compute on those
    through a slow path (tens of times slower per instruction). On the tuned CartPole example a
    quarter of the 256x256 layer's running means were subnormal, and learning took about 6% longer.
    A value that small moves no weight (it is far below a float32 weight's last bit), so flushing
    it does not change what is learned: the tuned example's seeds end with bit-identical weights
    with and without it. TensorFlow runs its CPU kernels this way by default. Introduced in
    notebooks/13_algorithms.ipynb.
    """
    was_flushing = denormals_flushed()
    torch.set_flush_denormal(True)  # False (and no change) on CPUs that cannot flush
    try:
        yield
    finally:
        if not was_flushing:
            torch.set_flush_denormal(False)


def denormals_flushed() -> bool:
    """Whether this thread's CPU float results are flushed to 0 when subnormal.

    torch can set the mode but not read it, so this halves the smallest normal float32: the
    result is a subnormal number, or 0 while flushing.
    """
    return (torch.tensor(torch.finfo(torch.float32).tiny) / 2).item() == 0.0


class FlushDenormalsMixin:
    """``learn_on_batch`` runs inside ``flush_denormals()``: same result, no slow subnormal
    arithmetic."""

    def learn_on_batch(self, samples: SampleBatch) -> dict:
        with flush_denormals():
            return super().learn_on_batch(samples)


def setup_target_network(policy, obs_space, action_space, config):
    """Make the target network: a copy of the new Q-network, outside the optimizer, in eval mode."""
    policy.target_model = copy.deepcopy(policy.model).eval()
    policy.target_model.requires_grad_(False)


DQNTorchPolicy = build_policy(
    "DQNTorchPolicy",
    loss_fn=dqn_loss,
    get_default_config=get_default_config,
    postprocess_fn=postprocess_nstep,
    stats_fn=dqn_stats,
    make_model=make_q_model,
    extra_action_out_fn=q_values_out,
    before_init=check_discrete_actions,
    after_init=setup_target_network,
    mixins=[TargetNetworkMixin, TDErrorMixin, FlushDenormalsMixin],
)
