"""``EpsilonGreedy``: the greedy action, except with probability epsilon a uniformly random one
(DQN).

The distribution inputs are read as Q-values (or logits): the greedy action is their argmax.
Epsilon follows a schedule of the timestep, by default a straight line from ``initial_epsilon``
to ``final_epsilon`` over ``epsilon_timesteps`` steps. Introduced in notebooks/09_exploration.ipynb.
"""

from __future__ import annotations

import torch
from gymnasium import spaces

from course_lib.exploration.exploration import Exploration, zero_logp
from course_lib.exploration.schedules import LinearSchedule, Schedule, make_schedule


class EpsilonGreedy(Exploration):
    """Per row: with probability ``epsilon(t)`` a uniform random action, else ``argmax(inputs)``.

    For ``Discrete(n)`` action spaces; inputs ``(B, n)``, actions ``(B,)`` int64.
    ``epsilon_schedule`` (a number, a Schedule, or a ``make_schedule`` dict) replaces the default
    linear annealing. logp is the behaviour's: ``log(epsilon / n + (1 - epsilon) * [a is greedy])``;
    0 with ``explore=False``, which always returns the argmax.

    Introduced in notebooks/09_exploration.ipynb.
    """

    def __init__(
        self,
        action_space,
        *,
        initial_epsilon: float = 1.0,
        final_epsilon: float = 0.05,
        epsilon_timesteps: int = 10000,
        epsilon_schedule=None,
        **kwargs,
    ):
        super().__init__(action_space, **kwargs)
        if not isinstance(action_space, spaces.Discrete):
            raise TypeError(
                f"{type(self).__name__} picks one of n actions, so it needs a Discrete action "
                f"space; got {action_space}. For Box actions "
                "use GaussianNoise or OrnsteinUhlenbeckNoise."
            )
        if epsilon_schedule is None:
            epsilon_schedule = LinearSchedule(
                epsilon_timesteps, final_p=final_epsilon, initial_p=initial_epsilon
            )
        self.epsilon_schedule: Schedule = make_schedule(epsilon_schedule)

    def epsilon(self, timestep: int | None = None) -> float:
        """Epsilon at ``timestep`` (default: the latest decision's)."""
        return self.epsilon_schedule(self.last_timestep if timestep is None else timestep)

    def get_exploration_action(self, *, action_distribution, timestep, explore=True):
        timestep = self._update_timestep(timestep)
        q_values = action_distribution.inputs
        greedy = q_values.argmax(dim=-1)
        if not explore:
            return greedy, zero_logp(greedy)
        epsilon = self.epsilon(timestep)
        batch_size, n = q_values.shape[0], q_values.shape[-1]
        explore_mask = torch.rand(batch_size, device=q_values.device) < epsilon
        random = torch.randint(n, (batch_size,), device=q_values.device)
        actions = torch.where(explore_mask, random, greedy)
        prob = epsilon / n + (1.0 - epsilon) * (actions == greedy).float()
        return actions, torch.log(prob)

    def get_info(self) -> dict[str, float]:
        return {"cur_epsilon": self.epsilon()}
