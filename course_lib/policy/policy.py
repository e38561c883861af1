"""The ``Policy`` API: how an agent acts, how its experience is postprocessed, how it learns.

A policy owns a model and a loss; rollout workers call ``compute_actions`` and
``postprocess_trajectory``, the trainer calls ``learn_on_batch``, and weights travel between them
with ``get_weights``/``set_weights``. Introduced in notebooks/07_policies.ipynb.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from course_lib.models.catalog import check_framework
from course_lib.sample_batch import SampleBatch

# The settings every policy reads; a trainer's config (lesson 12) is a superset of these.
POLICY_DEFAULTS: dict[str, Any] = {
    "framework": "torch",
    "gamma": 0.99,
    "lr": 1e-3,
    "grad_clip": None,
    "model": {},
    "explore": True,
    # How actions are chosen from the action distribution (lesson 09): a class name and its
    # arguments.
    "exploration_config": {"type": "StochasticSampling"},
    # Where this policy runs: a trainer passes them, and per-worker exploration reads them.
    "num_workers": 0,
    "worker_index": 0,
    "seed": None,
    # GPUs of the local worker (worker_index 0) and of each remote one: torch_policy.policy_device.
    "num_gpus": 0,
    "num_gpus_per_worker": 0,
}


class Policy:
    """Base class: maps observations to actions and learns from batches of experience.

    Subclasses implement ``compute_actions`` and ``learn_on_batch`` (see ``TorchPolicy``). Shapes:
    ``obs_batch`` is ``(B, *obs_shape)``; actions come back as ``(B, *action_shape)``; recurrent
    state is a list of arrays ``(B, *state_shape)``.

    Introduced in notebooks/07_policies.ipynb.
    """

    def __init__(self, observation_space, action_space, config: dict | None = None):
        self.observation_space = observation_space
        self.action_space = action_space
        # The env's action space; a rollout worker that normalizes actions sets the env's Box
        # here and gives the policy [-1, 1] (course_lib/evaluation/env_actions.py).
        self.env_action_space = action_space
        self.config = {**POLICY_DEFAULTS, **(config or {})}
        check_framework(self.config.get("framework", "torch"))
        # Env steps this policy has acted in; schedules (exploration, lr) read it.
        self.global_timestep = 0

    # --- acting -------------------------------------------------------------------------------

    def compute_actions(
        self,
        obs_batch,
        state_batches: list | None = None,
        prev_action_batch=None,
        prev_reward_batch=None,
        explore: bool | None = None,
        timestep: int | None = None,
        **kwargs,
    ) -> tuple[np.ndarray, list[np.ndarray], dict[str, np.ndarray]]:
        """Actions for a batch of observations: ``(actions, state_outs, extra_fetches)``.

        ``extra_fetches`` holds per-row extras for the sample batch, e.g. ``action_logp`` (B,),
        ``action_dist_inputs`` (B, num_outputs), ``vf_preds`` (B,).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement compute_actions().")

    def compute_single_action(
        self,
        obs,
        state: list | None = None,
        prev_action=None,
        prev_reward=None,
        explore: bool | None = None,
        timestep: int | None = None,
        **kwargs,
    ):
        """One observation in, ``(action, state_out, extra_fetches)`` out: ``compute_actions`` with
        B=1."""
        state_batches = [np.asarray(s)[None] for s in state] if state else None
        actions, state_outs, extra = self.compute_actions(
            [obs],
            state_batches,
            prev_action_batch=None if prev_action is None else [prev_action],
            prev_reward_batch=None if prev_reward is None else [prev_reward],
            explore=explore,
            timestep=timestep,
            **kwargs,
        )
        return actions[0], [s[0] for s in state_outs], {k: v[0] for k, v in extra.items()}

    # --- experience and learning --------------------------------------------------------------

    def postprocess_trajectory(
        self, sample_batch: SampleBatch, other_agent_batches: dict | None = None, episode=None
    ) -> SampleBatch:
        """Add columns computed from a whole trajectory (returns, advantages); identity by
        default."""
        return sample_batch

    def learn_on_batch(self, samples: SampleBatch) -> dict:
        """One improvement step on ``samples``; returns ``{"learner_stats": {...}}``."""
        raise NotImplementedError(f"{type(self).__name__} must implement learn_on_batch().")

    def compute_gradients(self, samples: SampleBatch):
        """``(gradients, info)`` for ``samples`` without changing the weights (A3C-style
        workers)."""
        raise NotImplementedError(f"{type(self).__name__} must implement compute_gradients().")

    def apply_gradients(self, gradients) -> None:
        """Apply gradients computed by ``compute_gradients``, possibly on another process."""
        raise NotImplementedError(f"{type(self).__name__} must implement apply_gradients().")

    # --- state --------------------------------------------------------------------------------

    def get_weights(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def get_state(self) -> dict:
        """Everything needed to resume: weights, counters, exploration state (subclasses add the
        optimizer's)."""
        state = {"weights": self.get_weights(), "global_timestep": self.global_timestep}
        if hasattr(self, "exploration"):
            state["exploration"] = self.exploration.get_state()
        return state

    def set_state(self, state: dict) -> None:
        self.set_weights(state["weights"])
        self.global_timestep = state["global_timestep"]
        if "exploration" in state and hasattr(self, "exploration"):
            self.exploration.set_state(state["exploration"])

    def get_initial_state(self) -> list[np.ndarray]:
        """Recurrent state at an episode's start, one array per state tensor; [] if feed-forward."""
        return []

    def is_recurrent(self) -> bool:
        return len(self.get_initial_state()) > 0

    def num_state_tensors(self) -> int:
        return len(self.get_initial_state())

    def on_global_var_update(self, global_vars: dict) -> None:
        """Called by the trainer with shared counters, e.g. ``{"timestep": 12000}``."""
        self.global_timestep = global_vars["timestep"]
