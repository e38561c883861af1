"""``GaussianNoise``: exploration for continuous actions by adding noise to the deterministic
action.

A deterministic policy (DDPG, TD3) always returns the same action for a state, so it explores by
perturbing that action: ``a = clip(mu(s) + scale(t) * noise, low, high)``. ``AdditiveNoise`` holds
what every such strategy shares (a warm-up of uniform random actions, the scale schedule, clipping
to the Box); ``GaussianNoise`` draws independent ``N(0, stddev)`` noise for every row and dimension.
Introduced in notebooks/09_exploration.ipynb.
"""

from __future__ import annotations

import torch
from gymnasium import spaces

from course_lib.exploration.exploration import Exploration, zero_logp
from course_lib.exploration.random import box_bounds, check_random_actions_supported, random_actions
from course_lib.exploration.schedules import LinearSchedule, Schedule, make_schedule


class AdditiveNoise(Exploration):
    """Base class: ``clip(deterministic_action + scale(t) * sample_noise(...), low, high)`` for Box
    actions.

    For ``t < random_timesteps`` the actions are uniform in the Box instead. The scale follows
    ``scale_schedule`` (number, Schedule or ``make_schedule`` dict), by default a straight line from
    ``initial_scale`` to ``final_scale`` over ``scale_timesteps``. Actions are ``(B, d)`` like the
    deterministic sample; ``explore=False`` returns ``deterministic_sample()`` unchanged.

    logp is always 0: clipping puts probability mass on the bounds, so the behaviour has no
    density there, and the algorithms that use this exploration (DDPG, TD3) never read logp.

    Introduced in notebooks/09_exploration.ipynb.
    """

    def __init__(
        self,
        action_space,
        *,
        random_timesteps: int = 1000,
        initial_scale: float = 1.0,
        final_scale: float = 0.02,
        scale_timesteps: int = 10000,
        scale_schedule=None,
        **kwargs,
    ):
        super().__init__(action_space, **kwargs)
        if not isinstance(action_space, spaces.Box):
            raise TypeError(
                f"{type(self).__name__} adds noise to continuous actions, so it needs a Box action "
                f"space; got {action_space}. For Discrete actions use EpsilonGreedy or SoftQ."
            )
        if random_timesteps < 0:
            raise ValueError(
                f"{type(self).__name__}: random_timesteps must be >= 0, got {random_timesteps!r}."
            )
        if random_timesteps > 0:
            check_random_actions_supported(
                action_space, f"{type(self).__name__}(random_timesteps={random_timesteps})"
            )
        self.random_timesteps = random_timesteps
        if scale_schedule is None:
            scale_schedule = LinearSchedule(
                scale_timesteps, final_p=final_scale, initial_p=initial_scale
            )
        self.scale_schedule: Schedule = make_schedule(scale_schedule)

    def scale(self, timestep: int | None = None) -> float:
        """The noise scale at ``timestep`` (default: the latest decision's)."""
        return self.scale_schedule(self.last_timestep if timestep is None else timestep)

    def sample_noise(self, deterministic_actions: torch.Tensor) -> torch.Tensor:
        """Unscaled noise, broadcastable to ``deterministic_actions`` ``(B, d)``."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement sample_noise(deterministic_actions)."
        )

    def get_exploration_action(self, *, action_distribution, timestep, explore=True):
        timestep = self._update_timestep(timestep)
        deterministic = action_distribution.deterministic_sample()
        if not explore:
            return deterministic, zero_logp(deterministic)
        if timestep < self.random_timesteps:
            actions, _ = random_actions(
                self.action_space, deterministic.shape[0], deterministic.device
            )
            actions = actions.reshape(deterministic.shape)
        else:
            actions = self.clip(
                deterministic + self.scale(timestep) * self.sample_noise(deterministic)
            )
        return actions, zero_logp(actions)

    def clip(self, actions: torch.Tensor) -> torch.Tensor:
        """``actions`` ``(B, d)`` clipped into the Box, dimension by dimension (infinite bounds clip
        nothing)."""
        low, high = box_bounds(self.action_space, actions.device)
        return torch.minimum(
            torch.maximum(actions, low.reshape(actions.shape[1:])), high.reshape(actions.shape[1:])
        )

    def get_info(self) -> dict[str, float]:
        return {"cur_scale": self.scale()}


class GaussianNoise(AdditiveNoise):
    """``a = clip(mu(s) + scale(t) * N(0, stddev), low, high)``, independent noise per row and
    dimension.

    Arguments as in ``AdditiveNoise`` plus ``stddev``. Introduced in notebooks/09_exploration.ipynb.
    """

    def __init__(self, action_space, *, stddev: float = 0.1, **kwargs):
        super().__init__(action_space, **kwargs)
        if not stddev >= 0:
            raise ValueError(f"GaussianNoise: stddev must be >= 0, got {stddev!r}.")
        self.stddev = float(stddev)

    def sample_noise(self, deterministic_actions):
        return self.stddev * torch.randn_like(deterministic_actions)
