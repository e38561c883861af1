"""``TorchPolicy``: a Policy whose model, action distribution and loss are PyTorch.

The flow of one call:

- acting: obs ``(B, *obs_shape)`` -> preprocessor -> model -> distribution inputs
  ``(B, num_outputs)`` -> action distribution -> ``self.exploration`` picks the action (a sample,
  epsilon-greedy, noise...; the most likely action when not exploring);
- learning: SampleBatch -> tensors (``train_batch``) -> ``loss(model, dist_class, train_batch)``
  -> backward -> optional gradient clipping -> optimizer step.

Subclass it and implement ``loss``, or let ``build_policy`` do that from a loss function.
Introduced in notebooks/07_policies.ipynb.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from course_lib import exploration
from course_lib.callbacks import make_callbacks
from course_lib.models import ModelCatalog, chop_into_sequences, sequence_mask
from course_lib.policy.policy import Policy
from course_lib.sample_batch import SampleBatch

LOSS_MASK = "loss_mask"
SEQ_LENS = "seq_lens"


def state_key(index: int, kind: str = "in") -> str:
    """Column name of recurrent state ``index``: ``state_in_0``, ``state_out_1``, ...

    Introduced in notebooks/07_policies.ipynb.
    """
    return f"state_{kind}_{index}"


def masked_mean(values: torch.Tensor, train_batch: dict) -> torch.Tensor:
    """Mean over the rows that hold real timesteps (recurrent batches are padded to max_seq_len).

    Introduced in notebooks/07_policies.ipynb.
    """
    mask = train_batch.get(LOSS_MASK)
    return values.mean() if mask is None else values[mask].mean()


def policy_device(config: dict) -> torch.device:
    """Where a policy runs: on the GPU when its worker was given one (and torch sees one).

    The local worker (``worker_index`` 0, in the trainer's process) has ``num_gpus``; each
    remote worker (a Ray actor) has ``num_gpus_per_worker``. Introduced in
    notebooks/07_policies.ipynb.
    """
    own_gpus = config["num_gpus"] if config["worker_index"] == 0 else config["num_gpus_per_worker"]
    return torch.device("cuda" if own_gpus and torch.cuda.is_available() else "cpu")


class TorchPolicy(Policy):
    """A Policy backed by a ``TorchModelV2`` from the model catalog and one torch optimizer.

    Override ``loss`` (required to learn), and optionally ``make_model``, ``make_optimizer``,
    ``stats``, ``extra_action_out`` and ``postprocess_trajectory``.

    Introduced in notebooks/07_policies.ipynb.
    """

    # Set by build_policy when a policy replaces the model -> distribution -> sample path.
    _action_sampler_fn = None
    _action_distribution_fn = None

    def __init__(self, observation_space, action_space, config: dict | None = None):
        super().__init__(observation_space, action_space, config)
        # No seeding here: the process's generators are seeded once (course_lib/seeding.py), so
        # two policies built one after the other start from different weights.
        self.device = policy_device(self.config)
        self.preprocessor = ModelCatalog.get_preprocessor(observation_space)
        self.dist_class, self.num_outputs = ModelCatalog.get_action_dist(
            action_space, self.config["model"]
        )
        self.model = self.make_model(self.num_outputs).to(self.device)
        self.exploration = exploration.from_config(
            self.config["exploration_config"],
            action_space=action_space,
            policy_config=self.config,
            model=self.model,
            num_workers=self.config["num_workers"],
            worker_index=self.config["worker_index"],
        )
        self.optimizer = self.make_optimizer()
        self.callbacks = make_callbacks(self.config.get("callbacks"))
        self.max_seq_len = self.model.model_config.get("max_seq_len", 20)

    # --- hooks a subclass (or build_policy) overrides -----------------------------------------

    def make_model(self, num_outputs: int):
        return ModelCatalog.get_model_v2(
            self.observation_space, self.action_space, num_outputs, self.config["model"]
        )

    def make_optimizer(self) -> torch.optim.Optimizer:
        # foreach: one fused update for all parameters instead of a loop over them (faster on CPU).
        return torch.optim.Adam(self.model.parameters(), lr=self.config["lr"], foreach=True)

    def loss(self, model, dist_class, train_batch: dict) -> torch.Tensor:
        raise NotImplementedError(
            f"{type(self).__name__} has no loss, so it cannot learn. Build it with "
            "build_policy(name, loss_fn=...) or override loss(model, dist_class, train_batch)."
        )

    def stats(self, train_batch: dict) -> dict:
        """Extra learner statistics for ``learn_on_batch``'s result."""
        return {}

    def extra_action_out(self, input_dict, state, model, action_dist) -> dict:
        """Per-row extras recorded while acting; by default the critic's V(obs), if there is one."""
        try:
            return {SampleBatch.VF_PREDS: model.value_function()}
        except NotImplementedError:
            return {}

    def exploration_action(self, action_dist, explore: bool, timestep: int):
        """``(actions, logp)`` as ``self.exploration`` chooses them (``"exploration_config"``).

        Lesson 09 teaches the exploration classes.
        """
        return self.exploration.get_exploration_action(
            action_distribution=action_dist, timestep=timestep, explore=explore
        )

    def get_exploration_info(self) -> dict:
        """Current exploration values for logging, e.g. ``{"cur_epsilon": 0.3}``."""
        return self.exploration.get_info()

    # --- acting -------------------------------------------------------------------------------

    def compute_actions(
        self,
        obs_batch,
        state_batches=None,
        prev_action_batch=None,
        prev_reward_batch=None,
        explore=None,
        timestep=None,
        **kwargs,
    ):
        explore = self.config["explore"] if explore is None else explore
        timestep = self.global_timestep if timestep is None else timestep
        input_dict = {SampleBatch.OBS: self._obs_tensor(obs_batch)}
        if prev_action_batch is not None:
            input_dict["prev_actions"] = torch.as_tensor(
                np.asarray(prev_action_batch), device=self.device
            )
        if prev_reward_batch is not None:
            input_dict["prev_rewards"] = torch.as_tensor(
                np.asarray(prev_reward_batch, dtype=np.float32), device=self.device
            )
        batch_size = len(input_dict[SampleBatch.OBS])
        state = self._state_tensors(state_batches, batch_size)
        seq_lens = torch.ones(batch_size, dtype=torch.int32) if state else None
        self._set_training(False)
        with torch.no_grad():
            actions, logp, dist_inputs, state_out, action_dist = self._act(
                input_dict, state, seq_lens, explore, timestep
            )
            extra = (
                self.extra_action_out(input_dict, state, self.model, action_dist)
                if action_dist is not None
                else {}
            )
        self.global_timestep += batch_size
        fetches = {SampleBatch.ACTION_LOGP: logp, "action_prob": torch.exp(logp), **extra}
        if dist_inputs is not None:
            fetches[SampleBatch.ACTION_DIST_INPUTS] = dist_inputs
        return (
            _numpy(actions),
            [_numpy(s) for s in state_out],
            {k: _numpy(v) for k, v in fetches.items()},
        )

    def _act(self, input_dict, state, seq_lens, explore, timestep):
        if self._action_sampler_fn is not None:
            actions, logp, state_out = self._action_sampler_fn(
                self.model, input_dict, state, explore=explore, timestep=timestep
            )
            return actions, logp, None, state_out, None
        if self._action_distribution_fn is not None:
            dist_inputs, dist_class, state_out = self._action_distribution_fn(
                self.model, input_dict, state, seq_lens, explore=explore, timestep=timestep
            )
        else:
            dist_inputs, state_out = self.model(input_dict, state, seq_lens)
            dist_class = self.dist_class
        action_dist = dist_class(dist_inputs, self.model)
        actions, logp = self.exploration_action(action_dist, explore, timestep)
        return actions, logp, dist_inputs, state_out, action_dist

    def compute_values(self, obs_batch, state_batches=None) -> np.ndarray:
        """The critic's V(obs), shape ``(B,)``: what truncated episodes are bootstrapped from."""
        obs = self._obs_tensor(obs_batch)
        state = self._state_tensors(state_batches, len(obs))
        seq_lens = torch.ones(len(obs), dtype=torch.int32) if state else None
        self._set_training(False)
        with torch.no_grad():
            self.model({SampleBatch.OBS: obs}, state, seq_lens)
            return _numpy(self.model.value_function())

    def compute_log_likelihoods(self, actions, obs_batch) -> np.ndarray:
        """log pi(a | obs) of the policy's action distribution (no exploration), shape ``(B,)``.

        Off-policy estimation (course_lib/offline/) compares it with the logged behaviour's.
        Feed-forward policies only. Introduced in notebooks/17_offline_rl.ipynb.
        """
        if self.is_recurrent():
            raise NotImplementedError(
                "compute_log_likelihoods needs each row's recurrent state; it supports "
                "feed-forward policies only."
            )
        self._set_training(False)
        with torch.no_grad():
            dist_inputs, _ = self.model({SampleBatch.OBS: self._obs_tensor(obs_batch)}, [], None)
            action_dist = self.dist_class(dist_inputs, self.model)
            actions = torch.as_tensor(np.asarray(actions), device=self.device)
            return _numpy(action_dist.logp(actions))

    def _obs_tensor(self, obs_batch) -> torch.Tensor:
        return torch.as_tensor(self.preprocessor.transform_batch(obs_batch), device=self.device)

    def _state_tensors(self, state_batches, batch_size: int) -> list[torch.Tensor]:
        if not state_batches:
            state_batches = [
                np.repeat(s[None], batch_size, axis=0) for s in self.get_initial_state()
            ]
        return [torch.as_tensor(np.asarray(s), device=self.device) for s in state_batches]

    # --- learning -----------------------------------------------------------------------------

    def learn_on_batch(self, samples: SampleBatch) -> dict:
        """One gradient step on the whole batch; returns ``{"learner_stats": {...}}``."""
        stats: dict = {}
        self.callbacks.on_learn_on_batch(policy=self, train_batch=samples, result=stats)
        train_batch = self._lazy_tensor_dict(samples)
        grad_norm, loss = self._backward(train_batch)
        self.optimizer.step()
        stats.update(
            {
                "total_loss": loss.item(),
                "grad_gnorm": grad_norm,
                "cur_lr": self.optimizer.param_groups[0]["lr"],
            }
        )
        stats.update({k: float(v) for k, v in self.stats(train_batch).items()})
        return {"learner_stats": stats}

    def _set_training(self, training: bool) -> None:
        # Module.train()/eval() walk every submodule: cheap once, costly on every sampling step.
        if self.model.training != training:
            self.model.train(training)

    def compute_gradients(self, samples: SampleBatch):
        """``(gradients, info)``: one numpy array per parameter; the weights do not change."""
        grad_norm, loss = self._backward(self._lazy_tensor_dict(samples))
        grads = [
            None if p.grad is None else p.grad.detach().cpu().numpy()
            for p in self.model.parameters()
        ]
        return grads, {"learner_stats": {"total_loss": loss.item(), "grad_gnorm": grad_norm}}

    def apply_gradients(self, gradients) -> None:
        params = list(self.model.parameters())
        if len(gradients) != len(params):
            raise ValueError(
                f"apply_gradients got {len(gradients)} gradients for a model with {len(params)} "
                "parameters: they were computed for another model. Compute them with this policy's "
                "compute_gradients (or one with the same 'model' config)."
            )
        for param, grad in zip(params, gradients, strict=True):
            param.grad = (
                None
                if grad is None
                else torch.as_tensor(_writable(np.asarray(grad)), device=self.device)
            )
        self.optimizer.step()

    def _backward(self, train_batch: dict) -> tuple[float, torch.Tensor]:
        self._set_training(True)
        loss = self.loss(self.model, self.dist_class, train_batch)
        self.optimizer.zero_grad()
        loss.backward()
        if self.config["grad_clip"] is not None:
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config["grad_clip"])
        else:
            norm = torch.sqrt(
                sum(
                    (p.grad.detach() ** 2).sum()
                    for p in self.model.parameters()
                    if p.grad is not None
                )
            )
        return float(norm), loss

    def _lazy_tensor_dict(self, samples: SampleBatch) -> dict:
        """The batch as tensors for the loss; recurrent batches are cut into padded sequences."""
        columns = {
            k: v for k, v in samples.items() if v.dtype != object and not k.startswith("state_")
        }
        columns[SampleBatch.OBS] = self.preprocessor.transform_batch(samples[SampleBatch.OBS])
        if SampleBatch.NEXT_OBS in columns:
            columns[SampleBatch.NEXT_OBS] = self.preprocessor.transform_batch(
                samples[SampleBatch.NEXT_OBS]
            )
        train_batch = {}
        if self.is_recurrent():
            names = list(columns)
            states = [samples[state_key(i)] for i in range(self.num_state_tensors())]
            padded, initial_states, seq_lens = chop_into_sequences(
                samples[SampleBatch.EPS_ID], [columns[n] for n in names], states, self.max_seq_len
            )
            columns = dict(zip(names, padded, strict=True))
            train_batch.update(
                {
                    state_key(i): torch.as_tensor(s, device=self.device)
                    for i, s in enumerate(initial_states)
                }
            )
            seq_lens = torch.as_tensor(seq_lens, device=self.device)
            train_batch[SEQ_LENS] = seq_lens
            train_batch[LOSS_MASK] = sequence_mask(seq_lens, self.max_seq_len).reshape(-1)
        train_batch.update(
            {
                k: torch.as_tensor(_writable(np.asarray(v)), device=self.device)
                for k, v in columns.items()
            }
        )
        return train_batch

    # --- state --------------------------------------------------------------------------------

    def get_weights(self) -> dict[str, np.ndarray]:
        return {
            name: t.detach().cpu().numpy().copy() for name, t in self.model.state_dict().items()
        }

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        own = self.model.state_dict()
        missing, unexpected = sorted(set(own) - set(weights)), sorted(set(weights) - set(own))
        wrong_shape = [
            k for k in own if k in weights and tuple(np.shape(weights[k])) != tuple(own[k].shape)
        ]
        if missing or unexpected or wrong_shape:
            raise ValueError(
                f"These weights belong to a different model: missing {missing[:3]}, unexpected "
                f"{unexpected[:3]}, wrong shape {wrong_shape[:3]}. Were they saved from a policy "
                "with another 'model' config?"
            )
        self.model.load_state_dict(
            {k: torch.as_tensor(_writable(np.asarray(v))) for k, v in weights.items()}
        )

    def get_state(self) -> dict:
        # A snapshot: the optimizer's state_dict shares tensors that the next step changes in place.
        return {**super().get_state(), "optimizer": copy.deepcopy(self.optimizer.state_dict())}

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        if "optimizer" in state:
            self.optimizer.load_state_dict(copy.deepcopy(state["optimizer"]))

    def get_initial_state(self) -> list[np.ndarray]:
        return [np.asarray(s) for s in self.model.get_initial_state()]


def _writable(array: np.ndarray) -> np.ndarray:
    """Batches fetched with ray.get are read-only views of the object store: torch needs a copy."""
    return array if array.flags.writeable else array.copy()


def _numpy(value):
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
