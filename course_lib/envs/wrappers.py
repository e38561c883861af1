"""Env wrappers: change what an env returns without touching its code.

gymnasium's ``ObservationWrapper`` and ``RewardWrapper`` call one method on every observation or
reward; a wrapper only overrides that method (and declares the new space when it changes).
"""

import gymnasium
import numpy as np
from gymnasium import spaces

from course_lib.validation import is_real_number


class OneHotObservation(gymnasium.ObservationWrapper):
    """Turn a ``Discrete(n)`` observation into a one-hot float32 vector of length n.

    Introduced in notebooks/03_environments.ipynb.

    A neural network reads numbers as amounts: state 3 is not "three times" state 1. One-hot
    encoding gives each state its own input: in ``Discrete(4)``, observation 2 becomes
    ``[0, 0, 1, 0]``. The new observation space is ``Box(0, 1, shape=(n,), dtype=float32)``.
    """

    def __init__(self, env: gymnasium.Env):
        super().__init__(env)
        original = env.observation_space
        if not isinstance(original, spaces.Discrete):
            raise TypeError(
                "OneHotObservation needs a Discrete observation space, but this env has "
                f"{original}. One-hot encoding numbers a finite set of states; a Box observation "
                "is already a vector of numbers and can go to the model as it is."
            )
        self.num_states = int(original.n)
        self.first_state = int(original.start)
        self.observation_space = spaces.Box(0.0, 1.0, shape=(self.num_states,), dtype=np.float32)

    def observation(self, observation) -> np.ndarray:
        """Return the one-hot vector of a Discrete observation, shape ``(n,)``."""
        one_hot = np.zeros(self.num_states, dtype=np.float32)
        one_hot[int(observation) - self.first_state] = 1.0
        return one_hot


class ClipReward(gymnasium.RewardWrapper):
    """Clip every reward into ``[low, high]``, as DQN does on Atari to share one loss scale.

    Introduced in notebooks/03_environments.ipynb.

    gymnasium ships the same idea as ``gymnasium.wrappers.ClipReward``; this one is spelled out so
    the lesson can show a whole RewardWrapper. Note that clipping changes the task: the agent can
    no longer tell a reward of 2 from a reward of 100.
    """

    def __init__(self, env: gymnasium.Env, low: float = -1.0, high: float = 1.0):
        super().__init__(env)
        for name, value in (("low", low), ("high", high)):
            if not is_real_number(value):
                raise TypeError(f"ClipReward {name} must be a number, got {value!r}.")
        if not low < high:
            raise ValueError(
                f"ClipReward needs low < high, got low={low!r}, high={high!r}. "
                "Did you swap them? The signature is ClipReward(env, low, high)."
            )
        self.low = float(low)
        self.high = float(high)

    def reward(self, reward) -> float:
        """Return ``reward`` clipped into ``[low, high]`` as a Python float."""
        return float(np.clip(reward, self.low, self.high))
