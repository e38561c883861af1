"""From the policy's action to the env's: ``normalize_actions`` and ``clip_actions``.

A Box action space such as Pendulum's ``[-2, 2]`` torque has bounds that mean nothing to a
network. With ``"normalize_actions": True`` (the default) the policy acts in ``[-1, 1]`` on
every dimension and the sampler maps each action onto the env's bounds just before
``env.step``:

    env_action = low + (action + 1) * (high - low) / 2,   then clipped into [low, high]

``"clip_actions": True`` (used when not normalizing) only clips the policy's action into the
env's bounds. Either way the SampleBatch keeps the policy's own action, so the loss sees the
action the policy produced. Discrete (and integer Box) spaces pass through untouched.

How it is wired: ``build_policy_map`` gives each policy ``policy_action_space(env_space,
config)``, the ``[-1, 1]`` Box when normalizing, and records the env's space on the policy as
``policy.env_action_space``; every sampler sends ``to_env_actions(actions, policy, config)`` to
``env.step``, and so does ``Trainer.compute_single_action``. Introduced in
notebooks/16_continuous_control.ipynb.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces


def is_float_box(space) -> bool:
    """Whether ``space`` is a Box of floats: the only spaces that are normalized or clipped."""
    return isinstance(space, spaces.Box) and np.issubdtype(space.dtype, np.floating)


def normalized_action_space(env_space: spaces.Box) -> spaces.Box:
    """The ``[-1, 1]`` Box of ``env_space``'s shape that a policy acts in when normalizing.

    Raises a ValueError naming the fix when a bound is infinite: there is no affine map from
    ``[-1, 1]`` onto an infinite interval. Introduced in notebooks/16_continuous_control.ipynb.
    """
    if not (np.all(np.isfinite(env_space.low)) and np.all(np.isfinite(env_space.high))):
        raise ValueError(
            f"\"normalize_actions\": True maps the policy's actions from [-1, 1] onto the env's "
            f"action bounds, but this env's action space {env_space} has infinite bounds "
            f"(low={env_space.low.tolist()}, high={env_space.high.tolist()}). Set "
            '"normalize_actions": False in the config (the policy then acts in the env\'s own '
            "units), or give the env finite action bounds."
        )
    return spaces.Box(-1.0, 1.0, env_space.shape, np.float32)


def policy_action_space(env_space, config: dict):
    """The action space a policy acts in: normalized for a float Box when
    ``config["normalize_actions"]``, else the env's own. Introduced in
    notebooks/16_continuous_control.ipynb."""
    if config.get("normalize_actions") and is_float_box(env_space):
        return normalized_action_space(env_space)
    return env_space


def unsquash_action(action, env_space: spaces.Box) -> np.ndarray:
    """``[-1, 1]`` -> ``[low, high]``, dimension by dimension, clipped into the bounds.

    ``action``: ``(*shape)`` or a batch ``(B, *shape)`` (flattened ``(B, d)`` is reshaped).
    Values outside ``[-1, 1]`` (a Gaussian sample) land on the nearest bound.
    Introduced in notebooks/16_continuous_control.ipynb.
    """
    action = _shaped(action, env_space)
    low, high = env_space.low, env_space.high
    return clip_action(low + (action + 1.0) * (high - low) / 2.0, env_space)


def clip_action(action, env_space: spaces.Box) -> np.ndarray:
    """``action`` (one, or a batch on the first axis) clipped into the env's bounds.

    Introduced in notebooks/16_continuous_control.ipynb.
    """
    action = _shaped(action, env_space)
    return np.clip(action, env_space.low, env_space.high).astype(env_space.dtype, copy=False)


def to_env_actions(actions, policy, config: dict):
    """What to send to ``env.step`` for ``actions`` ``(B, ...)`` computed by ``policy``.

    Unsquashed into ``policy.env_action_space`` when the policy acts in a normalized space,
    clipped into it when ``config["clip_actions"]``, untouched otherwise (and for Discrete
    spaces). Introduced in notebooks/16_continuous_control.ipynb.
    """
    env_space = getattr(policy, "env_action_space", policy.action_space)
    if not is_float_box(env_space):
        return actions
    if env_space is not policy.action_space and config.get("normalize_actions"):
        return unsquash_action(actions, env_space)
    if config.get("clip_actions"):
        return clip_action(actions, env_space)
    return actions


def _shaped(action, env_space: spaces.Box) -> np.ndarray:
    """``action`` as a float array whose last axes are the space's shape (policies flatten)."""
    action = np.asarray(action, dtype=np.float64)
    if action.shape[-len(env_space.shape) :] != env_space.shape:
        action = action.reshape(*action.shape[:-1], *env_space.shape)
    return action
