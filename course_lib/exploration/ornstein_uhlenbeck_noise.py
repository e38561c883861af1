"""``OrnsteinUhlenbeckNoise``: temporally correlated noise for continuous actions (the original
DDPG).

Independent noise at every step mostly cancels out; physical systems (a robot arm with inertia)
need a push in one direction for several steps to go anywhere. The Ornstein-Uhlenbeck process
drifts back towards 0 but remembers where it was:

    x <- x + theta * (0 - x) + sigma * N(0, 1)        (one step per call, per action dimension)

and the action is ``clip(mu(s) + scale(t) * base_scale * x * (high - low), low, high)``.
Introduced in notebooks/09_exploration.ipynb.
"""

from __future__ import annotations

import numpy as np
import torch

from course_lib.exploration.gaussian_noise import AdditiveNoise
from course_lib.exploration.random import box_bounds


class OrnsteinUhlenbeckNoise(AdditiveNoise):
    """``AdditiveNoise`` whose noise is an Ornstein-Uhlenbeck process ``x`` of shape ``(d,)``.

    One process per exploration object: every exploring call advances it one step and adds the
    same ``x`` to every row of the batch; it is not reset between episodes. ``x`` is part of
    ``get_state``, so a restored policy continues the same noise trajectory. Dimensions with an
    infinite bound use a range of 1 instead of ``high - low``. Other arguments as in
    ``AdditiveNoise``.

    Introduced in notebooks/09_exploration.ipynb.
    """

    def __init__(
        self,
        action_space,
        *,
        ou_theta: float = 0.15,
        ou_sigma: float = 0.2,
        ou_base_scale: float = 0.1,
        **kwargs,
    ):
        super().__init__(action_space, **kwargs)
        if not 0 <= ou_theta <= 1:
            raise ValueError(
                "OrnsteinUhlenbeckNoise: ou_theta (pull back towards "
                f"0 per step) must be in [0, 1], got {ou_theta!r}."
            )
        if not ou_sigma >= 0:
            raise ValueError(f"OrnsteinUhlenbeckNoise: ou_sigma must be >= 0, got {ou_sigma!r}.")
        self.ou_theta, self.ou_sigma, self.ou_base_scale = (
            float(ou_theta),
            float(ou_sigma),
            float(ou_base_scale),
        )
        low, high = box_bounds(action_space, "cpu")
        self.action_range = torch.where(
            torch.isfinite(high - low), high - low, torch.ones_like(low)
        )
        self.ou_state = torch.zeros_like(low)

    def sample_noise(self, deterministic_actions):
        device = deterministic_actions.device
        x = self.ou_state.to(device)
        self.ou_state = (
            x + self.ou_theta * (0.0 - x) + self.ou_sigma * torch.randn(x.shape, device=device)
        )
        noise = self.ou_base_scale * self.ou_state * self.action_range.to(device)
        return noise.reshape(deterministic_actions.shape[1:])

    def get_state(self) -> dict:
        return {**super().get_state(), "ou_state": self.ou_state.cpu().numpy().copy()}

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        self.ou_state = torch.as_tensor(np.array(state["ou_state"], dtype=np.float32))
