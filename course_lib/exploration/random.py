"""``Random``: ignore the model and act uniformly at random; and the helper other strategies share.

``random_actions(action_space, batch_size)`` draws uniform actions in the same layout the action
distributions use: ``Discrete`` -> ``(B,)`` int64, ``MultiDiscrete`` -> ``(B, k)`` int64, ``Box`` ->
``(B, d)`` float32 with ``d = prod(shape)`` (flattened, like ``TorchDiagGaussian``). Randomness
comes from torch's global generator, which the trainer or worker seeds (course_lib/seeding.py).

Introduced in notebooks/09_exploration.ipynb.
"""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces

from course_lib.exploration.exploration import Exploration, zero_logp


def check_random_actions_supported(action_space: spaces.Space, who: str) -> None:
    """Raise a clear error if ``random_actions`` cannot draw uniform actions from ``action_space``.

    Introduced in notebooks/09_exploration.ipynb.
    """
    if isinstance(action_space, (spaces.Discrete, spaces.MultiDiscrete)):
        return
    if isinstance(action_space, spaces.Box):
        if not (np.all(np.isfinite(action_space.low)) and np.all(np.isfinite(action_space.high))):
            raise ValueError(
                f"{who} acts uniformly at random, which needs finite Box bounds; got "
                f"low={action_space.low}, high={action_space.high}. Give the "
                "action space finite bounds (or turn the random phase off)."
            )
        return
    raise TypeError(
        f"{who} can draw random actions for Discrete, "
        f"MultiDiscrete and Box action spaces, got {action_space}."
    )


def box_bounds(action_space: spaces.Box, device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(low, high)`` of a Box as flat float32 tensors ``(d,)``, matching flattened Box actions.

    Introduced in notebooks/09_exploration.ipynb.
    """
    low = torch.as_tensor(np.asarray(action_space.low, np.float32).reshape(-1), device=device)
    high = torch.as_tensor(np.asarray(action_space.high, np.float32).reshape(-1), device=device)
    return low, high


def random_actions(
    action_space: spaces.Space, batch_size: int, device="cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(actions, logp)``: ``batch_size`` uniform actions and their log-probability (density)
    ``(B,)``.

    Discrete(n): logp = -log n; MultiDiscrete(nvec): -sum(log nvec); Box: -sum(log(high - low)).
    Introduced in notebooks/09_exploration.ipynb.
    """
    check_random_actions_supported(action_space, "random_actions")
    if isinstance(action_space, spaces.Discrete):
        n = int(action_space.n)
        actions = torch.randint(n, (batch_size,), device=device)
        log_volume = np.log(n)
    elif isinstance(action_space, spaces.MultiDiscrete):
        nvec = np.asarray(action_space.nvec).reshape(-1)
        actions = torch.stack(
            [torch.randint(int(n), (batch_size,), device=device) for n in nvec], dim=-1
        )
        log_volume = float(np.log(action_space.nvec).sum())
    else:
        low, high = box_bounds(action_space, device)
        actions = low + torch.rand(batch_size, len(low), device=device) * (high - low)
        log_volume = float(torch.log(high - low).sum())
    return actions, torch.full((batch_size,), -log_volume, device=device)


class Random(Exploration):
    """Uniformly random actions whenever ``explore=True``; the distribution's most likely action
    otherwise.

    A baseline ("how well does chance do?") and the way to fill a replay buffer before learning.
    logp is the uniform distribution's (see ``random_actions``); 0 when not exploring.

    Introduced in notebooks/09_exploration.ipynb.
    """

    def __init__(self, action_space, **kwargs):
        super().__init__(action_space, **kwargs)
        check_random_actions_supported(action_space, "Random exploration")

    def get_exploration_action(self, *, action_distribution, timestep, explore=True):
        self._update_timestep(timestep)
        if not explore:
            actions = action_distribution.deterministic_sample()
            return actions, zero_logp(actions)
        return random_actions(
            self.action_space,
            action_distribution.inputs.shape[0],
            action_distribution.inputs.device,
        )
