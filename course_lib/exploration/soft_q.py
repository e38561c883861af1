"""``SoftQ``: sample actions from a Boltzmann (softmax) distribution over Q-values.

``P(a) = softmax(Q(s, .) / temperature)[a]``: a high temperature is close to uniform, a low one
close to greedy. Unlike epsilon-greedy, a nearly-as-good action is tried far more often than a bad
one. Introduced in notebooks/09_exploration.ipynb.
"""

from __future__ import annotations

import torch
from gymnasium import spaces

from course_lib.exploration.exploration import Exploration, zero_logp


class SoftQ(Exploration):
    """Sample from ``Categorical(logits=inputs / temperature)``; ``explore=False`` takes the argmax.

    For ``Discrete`` action spaces; inputs ``(B, n)``, actions ``(B,)`` int64. logp is the
    Boltzmann distribution's ``log_softmax(inputs / temperature)[a]``; 0 with ``explore=False``.

    Introduced in notebooks/09_exploration.ipynb.
    """

    def __init__(self, action_space, *, temperature: float = 1.0, **kwargs):
        super().__init__(action_space, **kwargs)
        if not isinstance(action_space, spaces.Discrete):
            raise TypeError(
                "SoftQ samples one of n actions, so it needs "
                f"a Discrete action space; got {action_space}."
            )
        if not temperature > 0:
            raise ValueError(
                "SoftQ: temperature must be > 0 (small: nearly "
                f"greedy, large: nearly uniform), got {temperature!r}."
            )
        self.temperature = float(temperature)

    def get_exploration_action(self, *, action_distribution, timestep, explore=True):
        self._update_timestep(timestep)
        q_values = action_distribution.inputs
        if not explore:
            greedy = q_values.argmax(dim=-1)
            return greedy, zero_logp(greedy)
        boltzmann = torch.distributions.Categorical(logits=q_values / self.temperature)
        actions = boltzmann.sample()
        return actions, boltzmann.log_prob(actions)

    def get_info(self) -> dict[str, float]:
        return {"temperature": self.temperature}
