"""Check an environment against the gymnasium API before training on it.

Training on a broken env rarely crashes at the broken line: a float64 observation or an int
``terminated`` travels into a sample batch and fails much later, far from its cause. ``check_env``
runs the env for a few random steps and stops at the first problem with a message that says what
was wrong, what was expected and the likely fix.
"""

import inspect
import math
import numbers
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gymnasium import spaces

from course_lib.envs.registry import make_env
from course_lib.validation import is_whole_number


class EnvCheckError(ValueError):
    """Raised by :func:`check_env` with one message about the first problem it found.

    Introduced in notebooks/03_environments.ipynb.
    """


@dataclass
class EnvCheckReport:
    """What :func:`check_env` saw when the env passed: its spaces and a short random run.

    Introduced in notebooks/03_environments.ipynb.
    """

    observation_space: spaces.Space
    action_space: spaces.Space
    steps: int
    episodes_finished: int
    mean_reward_per_step: float
    episode_returns: list[float] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"Environment check passed.\n"
            f"  observation_space: {self.observation_space}\n"
            f"  action_space:      {self.action_space}\n"
            f"  {self.steps} random steps, {self.episodes_finished} episodes finished, "
            f"mean reward per step {self.mean_reward_per_step:.3f}"
        )


def check_env(
    env_or_creator: Any, env_config: dict | None = None, n_steps: int = 50, seed: int = 0
) -> EnvCheckReport:
    """Check that an env follows the gymnasium API; raise :class:`EnvCheckError` on a problem.

    Introduced in notebooks/03_environments.ipynb.

    ``env_or_creator`` is an env instance, or anything :func:`make_env` accepts (a registered name,
    a gymnasium id, an env class or a creator), built with ``env_config``. The check looks at the
    spaces, calls ``reset(seed=seed)`` twice to see that the seed fixes the first observation, then
    takes ``n_steps`` random actions, resetting when an episode ends. Returns an EnvCheckReport.
    """
    if not is_whole_number(n_steps) or n_steps < 1:
        raise TypeError(f"check_env n_steps must be an int >= 1, got {n_steps!r}.")
    if not is_whole_number(seed):
        raise TypeError(f"check_env seed must be an int, got {seed!r}.")
    is_instance = hasattr(env_or_creator, "step") and not isinstance(env_or_creator, type)
    env = env_or_creator if is_instance else make_env(env_or_creator, env_config)
    try:
        return _run_checks(env, n_steps, seed)
    finally:
        if not is_instance and hasattr(env, "close"):
            env.close()


def _run_checks(env, n_steps: int, seed: int) -> EnvCheckReport:
    _check_spaces(env)
    _check_reset_signature(env)
    first_obs = _checked_reset(env, seed)
    second_obs = _checked_reset(env, seed)
    if not _same_observation(first_obs, second_obs):
        raise EnvCheckError(
            f"reset(seed={seed}) returned different first observations on two calls: "
            f"{_short(first_obs)} and then {_short(second_obs)}. The same seed must give the same "
            "episode, or results cannot be reproduced. Start reset() with "
            "super().reset(seed=seed) and draw all randomness from self.np_random "
            "(not np.random or the random module)."
        )

    env.action_space.seed(seed)
    rewards, episode_returns, episode_return = [], [], 0.0
    for _ in range(n_steps):
        action = env.action_space.sample()
        reward, done = _checked_step(env, action)
        rewards.append(reward)
        episode_return += reward
        if done:
            episode_returns.append(episode_return)
            episode_return = 0.0
            _checked_reset(env, seed=None)
    return EnvCheckReport(
        observation_space=env.observation_space,
        action_space=env.action_space,
        steps=n_steps,
        episodes_finished=len(episode_returns),
        mean_reward_per_step=float(np.mean(rewards)),
        episode_returns=episode_returns,
    )


def _check_spaces(env) -> None:
    for name in ("observation_space", "action_space"):
        space = getattr(env, name, None)
        if space is None:
            raise EnvCheckError(
                f"The env has no {name}. Set it in __init__, e.g. "
                f"self.{name} = gymnasium.spaces.Box(low, high, shape=..., dtype=np.float32) or "
                "gymnasium.spaces.Discrete(n), so a trainer can size its model."
            )
        if not isinstance(space, spaces.Space):
            if type(space).__module__.split(".")[0] == "gym":
                fix = "It comes from the old `gym` package: use `from gymnasium import spaces`."
            else:
                fix = "Use one of gymnasium.spaces: Box, Discrete, MultiDiscrete, Tuple, Dict."
            raise EnvCheckError(
                f"env.{name} is {_short(space)} of type {type(space).__name__}, not a "
                f"gymnasium.spaces.Space. {fix}"
            )


def _check_reset_signature(env) -> None:
    try:
        parameters = inspect.signature(env.reset).parameters
    except (TypeError, ValueError):
        return  # Not introspectable (e.g. implemented in C): the call itself will tell.
    takes_any_keyword = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    missing = [name for name in ("seed", "options") if name not in parameters]
    if missing and not takes_any_keyword:
        raise EnvCheckError(
            f"reset() does not accept the keyword argument(s) {missing}. gymnasium calls "
            "reset(seed=..., options=...); define it as\n"
            "    def reset(self, *, seed=None, options=None):\n"
            "        super().reset(seed=seed)\n"
            "        ...\n"
            "        return obs, {}"
        )


def _checked_reset(env, seed: int | None):
    """Call reset and check that it returned ``(obs, info)`` with obs in the observation space."""
    result = env.reset(seed=seed, options=None)
    space = env.observation_space
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict):
        obs, _info = result
        _check_observation(obs, space, "reset()")
        return obs
    bare_tuple_obs = isinstance(space, spaces.Tuple) and space.contains(result)
    if not isinstance(result, tuple) or bare_tuple_obs:
        raise EnvCheckError(
            f"reset() returned only an observation ({_short(result)}); that is the old gym API. "
            "In gymnasium, reset() returns a pair (obs, info), where info is a dict of extra "
            "information (often empty): end reset() with `return obs, {}`."
        )
    if len(result) == 2:
        raise EnvCheckError(
            f"reset() returned (obs, info) with info = {_short(result[1])} of type "
            f"{type(result[1]).__name__}; info must be a dict. Return `obs, {{}}` if you have none."
        )
    raise EnvCheckError(
        f"reset() returned a tuple of {len(result)} values; it must return 2: (obs, info)."
    )


def _checked_step(env, action) -> tuple[float, bool]:
    """Call step and check its 5-tuple; return ``(reward, episode_over)``."""
    try:
        result = env.step(action)
    except Exception as error:
        error.add_note(f"(raised inside step({action!r}) called by check_env with a random action)")
        raise
    if isinstance(result, tuple) and len(result) == 4:
        raise EnvCheckError(
            "step() returned 4 values (obs, reward, done, info): that is the old gym API. "
            "gymnasium splits `done` in two and step() returns 5 values "
            "(obs, reward, terminated, truncated, info):\n"
            "  terminated: the episode reached a terminal state (goal reached, pole fell); "
            "no reward can follow, so the value of the next state is 0.\n"
            "  truncated: the episode was cut short from outside (a time limit); the state still "
            "has a future, and learning should bootstrap from its value.\n"
            "Return `obs, reward, terminated, truncated, info`."
        )
    if not isinstance(result, tuple) or len(result) != 5:
        got = f"{len(result)} values" if isinstance(result, tuple) else type(result).__name__
        raise EnvCheckError(
            f"step() returned {got}; it must return the 5-tuple "
            "(obs, reward, terminated, truncated, info)."
        )
    obs, reward, terminated, truncated, info = result
    _check_observation(obs, env.observation_space, "step()")
    _check_reward(reward)
    for name, flag in (("terminated", terminated), ("truncated", truncated)):
        if not isinstance(flag, (bool, np.bool_)):
            raise EnvCheckError(
                f"step() returned {name}={flag!r} of type {type(flag).__name__}; it must be a bool "
                f"(True or False). Convert it with bool(...), e.g. `{name} = bool(x >= goal)`."
            )
    if not isinstance(info, dict):
        raise EnvCheckError(
            f"step() returned info of type {type(info).__name__}; info must be a dict "
            "(return {} when there is nothing to report)."
        )
    return float(reward), bool(terminated or truncated)


def _check_reward(reward) -> None:
    if isinstance(reward, np.ndarray):
        raise EnvCheckError(
            f"step() returned the reward as a numpy array of shape {reward.shape}; it must be a "
            "single number. Return float(reward) (or reward.item())."
        )
    if isinstance(reward, (bool, np.bool_)) or not isinstance(reward, numbers.Real):
        raise EnvCheckError(
            f"step() returned reward={_short(reward)} of type {type(reward).__name__}; the reward "
            "must be a real number (a Python float or int, or a numpy scalar)."
        )
    if not math.isfinite(reward):
        raise EnvCheckError(
            f"step() returned reward={reward}; rewards must be finite numbers. Look for a division "
            "by zero or a log of 0 in the reward computation."
        )


def _check_observation(obs, space: spaces.Space, where: str) -> None:
    """Raise EnvCheckError naming the exact reason why ``obs`` is not in ``space``."""
    if isinstance(space, spaces.Box):
        _check_box_observation(obs, space, where)
    elif isinstance(space, spaces.Discrete):
        _check_discrete_observation(obs, space, where)
    elif not space.contains(obs):
        raise EnvCheckError(
            f"{where} returned the observation {_short(obs)}, which is not in observation_space "
            f"{space}. Check its type, shape, dtype and bounds against the space."
        )


def _check_box_observation(obs, space: spaces.Box, where: str) -> None:
    if not isinstance(obs, np.ndarray):
        wrapped = "[obs]" if np.ndim(obs) == 0 and space.shape == (1,) else "obs"
        raise EnvCheckError(
            f"{where} returned an observation of type {type(obs).__name__} ({_short(obs)}), but "
            f"observation_space is a Box, whose values are numpy arrays. Return "
            f"np.array({wrapped}, dtype=np.{space.dtype}), of shape {space.shape}."
        )
    if obs.dtype != space.dtype:
        raise EnvCheckError(
            f"{where} returned an observation of dtype {obs.dtype} but observation_space has dtype "
            f"{space.dtype}; cast it with np.asarray(obs, dtype=np.{space.dtype}) (np.array of "
            f"Python floats is float64 by default) or declare the space with dtype=np.{obs.dtype}."
        )
    if obs.shape != space.shape:
        hint = ""
        if obs.size == math.prod(space.shape):
            hint = f" Reshape it with obs.reshape({space.shape})."
        raise EnvCheckError(
            f"{where} returned an observation of shape {obs.shape} but observation_space has shape "
            f"{space.shape}.{hint}"
        )
    if np.issubdtype(obs.dtype, np.floating) and np.isnan(obs).any():
        raise EnvCheckError(f"{where} returned an observation containing NaN: {_short(obs)}.")
    outside = (obs < space.low) | (obs > space.high)
    if outside.any():
        index = tuple(int(i) for i in np.argwhere(outside)[0])
        value, low, high = obs[index], space.low[index], space.high[index]
        raise EnvCheckError(
            f"{where} returned an observation outside observation_space's bounds: at index "
            f"{index} the value is {value}, but the space allows [{low}, {high}]. Either keep the "
            "state inside its bounds (e.g. np.clip) or widen low/high of the Box."
        )


def _check_discrete_observation(obs, space: spaces.Discrete, where: str) -> None:
    is_integer = isinstance(obs, (int, np.integer)) and not isinstance(obs, (bool, np.bool_))
    if not is_integer:
        raise EnvCheckError(
            f"{where} returned the observation {_short(obs)} of type {type(obs).__name__}, but "
            f"observation_space is {space}, whose values are ints. Return int(obs)."
        )
    first, last = int(space.start), int(space.start + space.n - 1)
    if not first <= obs <= last:
        raise EnvCheckError(
            f"{where} returned the observation {obs}, outside {space}: allowed values are "
            f"{first}..{last}."
        )


def _same_observation(first, second) -> bool:
    """Compare two observations of any space structure (arrays, dicts, tuples, scalars)."""
    if isinstance(first, dict) and isinstance(second, dict):
        return first.keys() == second.keys() and all(
            _same_observation(first[key], second[key]) for key in first
        )
    if isinstance(first, tuple) and isinstance(second, tuple):
        return len(first) == len(second) and all(map(_same_observation, first, second))
    return bool(np.array_equal(first, second))


def _short(value, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
