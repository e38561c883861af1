"""``Exploration``: how a policy turns an action distribution into the action it actually takes.

The model says what it believes (``action_dist``); the exploration object decides how much to trust
it: sample from it, act greedily most of the time and randomly sometimes (epsilon-greedy), or add
noise to a deterministic action. ``TorchPolicy.compute_actions`` calls::

    actions, logp = policy.exploration.get_exploration_action(
        action_distribution=action_dist, timestep=policy.global_timestep, explore=explore)

``explore=False`` (evaluation) always means "the policy's best guess": argmax or the mean.
Introduced in notebooks/09_exploration.ipynb.
"""

from __future__ import annotations

import torch
from gymnasium import spaces

from course_lib.models.action_dist import ActionDistribution
from course_lib.models.catalog import check_framework


class Exploration:
    """Base class of the exploration strategies; subclasses implement ``get_exploration_action``.

    Built by ``course_lib.exploration.from_config`` from a policy's ``"exploration_config"``. The
    keyword arguments are what the policy knows: its config, its model, and where it runs
    (``worker_index`` 0 is the local worker, 1..``num_workers`` the remote ones).

    State: ``last_timestep``, the timestep of the latest decision. Schedules are functions of it,
    so ``get_state``/``set_state`` restore every scheduled value; subclasses with more state (the
    OU noise) extend both methods.

    Introduced in notebooks/09_exploration.ipynb.
    """

    def __init__(
        self,
        action_space: spaces.Space,
        *,
        policy_config: dict,
        model,
        num_workers: int = 0,
        worker_index: int = 0,
        framework: str = "torch",
    ):
        check_framework(framework)
        self.action_space = action_space
        self.policy_config = policy_config
        self.model = model
        self.num_workers = num_workers
        self.worker_index = worker_index
        self.framework = framework
        self.last_timestep = 0

    def get_exploration_action(
        self, *, action_distribution: ActionDistribution, timestep: int | None, explore: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(actions (B, ...), logp (B,))`` for one batch of distribution inputs.

        ``timestep`` is the policy's env-step counter (None: one after the last call's). ``logp``
        is the log-probability of each action under the behaviour that chose it, or zeros where
        that is not defined; a deterministic choice has probability 1, so logp 0.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement "
            "get_exploration_action(action_distribution=..., timestep=..., explore=...)."
        )

    def _update_timestep(self, timestep: int | None) -> int:
        self.last_timestep = self.last_timestep + 1 if timestep is None else int(timestep)
        return self.last_timestep

    # --- hooks the rollout worker calls; most strategies need none of them ---------------------

    def on_episode_start(self, policy=None, *, environment=None, episode=None) -> None:
        """Called when an episode starts (e.g. to reset per-episode noise); does nothing by
        default."""

    def on_episode_end(self, policy=None, *, environment=None, episode=None) -> None:
        """Called when an episode ends; does nothing by default."""

    def postprocess_trajectory(self, policy, sample_batch):
        """Change a finished trajectory before the policy's own postprocessing; identity by
        default."""
        return sample_batch

    # --- state and logging ---------------------------------------------------------------------

    def get_state(self) -> dict:
        """Everything needed to continue exactly where this object left off (plain Python/numpy)."""
        return {"last_timestep": self.last_timestep}

    def set_state(self, state: dict) -> None:
        self.last_timestep = int(state["last_timestep"])

    def get_info(self) -> dict[str, float]:
        """Current scheduled values for logging, e.g. ``{"cur_epsilon": 0.3}``; empty by default."""
        return {}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(worker_index={self.worker_index}"
            f", last_timestep={self.last_timestep})"
        )


def zero_logp(actions: torch.Tensor) -> torch.Tensor:
    """Zeros ``(B,)`` on the actions' device: the logp we report when it is not defined (or 0).

    Introduced in notebooks/09_exploration.ipynb.
    """
    return torch.zeros(actions.shape[0], device=actions.device)
