"""Example environments used across the course: a custom env (``Corridor``) and a slow simulator.

Importing this module registers ``"Corridor"``, its alias ``"MyEnv"`` and ``"SlowCartPole"``.
"""

import time

import gymnasium
import numpy as np
from gymnasium import spaces

from course_lib.envs.registry import register_env
from course_lib.validation import did_you_mean, is_real_number, is_whole_number

LEFT, RIGHT = 0, 1
STEP_REWARD = -0.1
GOAL_REWARD = 1.0


class Corridor(gymnasium.Env):
    """Walk right along a corridor to the goal: the lesson's custom env, configured by env_config.

    Introduced in notebooks/03_environments.ipynb.

    The agent starts at position 0; the goal is at ``corridor_length - 1``.

    * observation: the position, ``Box(0, corridor_length - 1, shape=(1,), dtype=float32)``
    * actions: ``Discrete(2)``, 0 = left (a wall stops it at 0), 1 = right
    * reward: -0.1 for each step, except the step that reaches the goal, which earns +1
    * terminated: on reaching the goal; truncated: after ``max_episode_steps`` steps otherwise

    So the best return is ``1 - 0.1 * (corridor_length - 2)``: 0.7 in the default corridor.

    env_config keys: ``corridor_length`` (int >= 2, default 5), ``max_episode_steps`` (default 100).
    """

    config_defaults = {"corridor_length": 5, "max_episode_steps": 100}

    def __init__(self, env_config: dict | None = None):
        config = _with_defaults(env_config, self.config_defaults, type(self).__name__)
        self.corridor_length = _positive_int(config["corridor_length"], "corridor_length", 2)
        self.max_episode_steps = _positive_int(config["max_episode_steps"], "max_episode_steps")
        self.goal = self.corridor_length - 1
        self.observation_space = spaces.Box(0.0, float(self.goal), shape=(1,), dtype=np.float32)
        self.action_space = spaces.Discrete(2)
        self.position: int | None = None
        self.steps = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Go back to position 0; return ``(obs, info)``."""
        super().reset(seed=seed)
        self.position = 0
        self.steps = 0
        return self._observation(), {}

    def step(self, action):
        """Move one cell; return ``(obs, reward, terminated, truncated, info)``."""
        if self.position is None:
            raise RuntimeError("step() was called before reset(); call env.reset() first.")
        if not self.action_space.contains(action):
            raise ValueError(f"Actions are {LEFT} (left) or {RIGHT} (right), got {action!r}.")
        move = {LEFT: -1, RIGHT: +1}[int(action)]
        self.position = min(max(self.position + move, 0), self.goal)
        self.steps += 1
        terminated = self.position == self.goal
        # Reaching the goal on the last allowed step is a termination: the episode really ended.
        truncated = not terminated and self.steps >= self.max_episode_steps
        reward = GOAL_REWARD if terminated else STEP_REWARD
        return self._observation(), reward, terminated, truncated, {}

    def _observation(self) -> np.ndarray:
        return np.array([self.position], dtype=np.float32)


# The 2021 RLlib tutorial calls its custom env `MyEnv`; keep that name working for its snippets.
MyEnv = Corridor


class SlowEnv(gymnasium.Wrapper):
    """Make every ``step`` of an env cost ``delay`` seconds, like a slow simulator.

    Introduced in notebooks/03_environments.ipynb.

    ``mode="sleep"`` waits without using the CPU, like a simulator in another program or on the
    network; ``mode="busy"`` keeps one CPU core busy (and holds Python's GIL), like a simulator
    written in Python. Threads can overlap the first kind, only processes (Ray workers) the second.
    ``reset`` costs nothing extra.
    """

    modes = ("sleep", "busy")

    def __init__(self, env: gymnasium.Env, delay: float = 0.001, mode: str = "sleep"):
        super().__init__(env)
        if not is_real_number(delay) or not delay >= 0:
            raise ValueError(f"SlowEnv delay is a number of seconds >= 0, got {delay!r}.")
        if mode not in self.modes:
            raise ValueError(f"SlowEnv mode must be one of {self.modes}, got {mode!r}.")
        self.delay = float(delay)
        self.mode = mode

    def step(self, action):
        """Pay the per-step cost, then step the wrapped env."""
        if self.mode == "sleep":
            time.sleep(self.delay)
        else:
            _spin(self.delay)
        return self.env.step(action)


def _spin(seconds: float) -> None:
    """Keep the CPU busy for ``seconds`` by polling the clock (the busy-work of SlowEnv)."""
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        pass


def make_slow_cartpole(env_config: dict | None = None) -> SlowEnv:
    """Creator of ``"SlowCartPole"``: CartPole-v1 whose steps cost ``env_config["delay"]`` seconds.

    Introduced in notebooks/03_environments.ipynb.

    env_config keys: ``delay`` (seconds per step, default 0.001) and ``mode`` ("sleep" or "busy",
    default "sleep"); see :class:`SlowEnv`.
    """
    config = _with_defaults(env_config, {"delay": 0.001, "mode": "sleep"}, "SlowCartPole")
    return SlowEnv(gymnasium.make("CartPole-v1"), delay=config["delay"], mode=config["mode"])


def _with_defaults(env_config: dict | None, defaults: dict, env_name: str) -> dict:
    """Merge ``env_config`` over ``defaults``; a key the env does not know is an error."""
    env_config = env_config or {}
    for key in env_config:
        if key not in defaults:
            raise ValueError(
                f"Unknown env_config key {key!r} for {env_name}.{did_you_mean(key, defaults)} "
                f"Known keys: {sorted(defaults)}."
            )
    return {**defaults, **env_config}


def _positive_int(value, name: str, minimum: int = 1) -> int:
    """Check that an env_config value is an int >= ``minimum`` and return it."""
    # A numpy integer counts too: sizes are often computed with numpy.
    if not (is_whole_number(value) or isinstance(value, np.integer)) or value < minimum:
        raise ValueError(f"env_config[{name!r}] must be an int >= {minimum}, got {value!r}.")
    return int(value)


register_env("Corridor", Corridor)
register_env("MyEnv", MyEnv)
register_env("SlowCartPole", make_slow_cartpole)
