"""``StochasticSampling``: act by sampling from the model's action distribution (the policy-gradient
default).

The distribution itself is the exploration: a high-entropy policy tries many actions, and learning
sharpens it. ``random_timesteps`` adds a warm-up of uniformly random actions first.
Introduced in notebooks/09_exploration.ipynb.
"""

from __future__ import annotations

from course_lib.exploration.exploration import Exploration, zero_logp
from course_lib.exploration.random import check_random_actions_supported, random_actions


class StochasticSampling(Exploration):
    """Sample ``a ~ pi(.|s)``; for the first ``random_timesteps`` steps, a uniformly random action
    instead.

    The timestep is checked once per batch: a batch whose first timestep is below
    ``random_timesteps`` is entirely random. logp: the distribution's ``logp`` of the sample, or
    the uniform distribution's during the random phase; 0 with ``explore=False``, which returns
    ``deterministic_sample()`` (argmax / mean).

    Introduced in notebooks/09_exploration.ipynb.
    """

    def __init__(self, action_space, *, random_timesteps: int = 0, **kwargs):
        super().__init__(action_space, **kwargs)
        if random_timesteps < 0:
            raise ValueError(
                f"StochasticSampling: random_timesteps must be >= 0, got {random_timesteps!r}."
            )
        if random_timesteps > 0:
            check_random_actions_supported(
                action_space, f"StochasticSampling(random_timesteps={random_timesteps})"
            )
        self.random_timesteps = random_timesteps

    def get_exploration_action(self, *, action_distribution, timestep, explore=True):
        timestep = self._update_timestep(timestep)
        if not explore:
            actions = action_distribution.deterministic_sample()
            return actions, zero_logp(actions)
        if timestep < self.random_timesteps:
            inputs = action_distribution.inputs
            return random_actions(self.action_space, inputs.shape[0], inputs.device)
        actions = action_distribution.sample()
        return actions, action_distribution.sampled_action_logp()

    def get_info(self) -> dict[str, float]:
        return {"random_phase": float(self.last_timestep < self.random_timesteps)}
