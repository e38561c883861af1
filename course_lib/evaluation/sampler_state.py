"""Snapshots of what a rollout worker is in the middle of: env internals and running episodes.

A checkpoint taken between two ``sample()`` calls must also hold the episodes still running (with
``truncate_episodes`` they continue in the next call), or a restored trainer would see different
experience than one that never stopped. Envs have no standard ``get_state``; the snapshot walks the
wrapper chain and keeps each layer's plain-data attributes (numbers, arrays, flags, step counters)
and the state of its random generator. That covers gymnasium's classic-control envs, their
wrappers and the course's envs; an env that keeps its state in other objects (a physics engine, a
socket) is restored only in part, and its episodes after a restore differ.

Introduced in notebooks/12_trainers.ipynb.
"""

from __future__ import annotations

import numpy as np

from course_lib.evaluation.episode import Episode

_NP_RANDOM = "_np_random"


def is_plain(value) -> bool:
    """True for data a checkpoint holds without pickling: numbers, strings, arrays, lists, dicts.

    Introduced in notebooks/12_trainers.ipynb.
    """
    if isinstance(value, (bool, int, float, str, type(None), np.generic)):
        return True
    if isinstance(value, np.ndarray):
        return value.dtype != object
    if isinstance(value, (list, tuple)):
        return all(is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, (str, int)) and is_plain(v) for k, v in value.items())
    return False


def _layers(env):
    """The env and every env it wraps, outermost first."""
    layers = [env]
    while hasattr(layers[-1], "env") and layers[-1].env is not layers[-1]:
        layers.append(layers[-1].env)
    return layers


def env_snapshot(env) -> list[dict]:
    """Per wrapper layer: its plain attributes, and its random generator's state.

    Introduced in notebooks/12_trainers.ipynb.
    """
    snapshot = []
    for layer in _layers(env):
        attrs = {k: v for k, v in vars(layer).items() if k != _NP_RANDOM and is_plain(v)}
        generator = vars(layer).get(_NP_RANDOM)
        if isinstance(generator, np.random.Generator):
            attrs[_NP_RANDOM] = generator.bit_generator.state
        snapshot.append(attrs)
    return snapshot


def restore_env(env, snapshot: list[dict]) -> None:
    """Put ``env_snapshot``'s attributes back, layer by layer.

    Introduced in notebooks/12_trainers.ipynb.
    """
    layers = _layers(env)
    if len(layers) != len(snapshot):
        raise ValueError(
            f"The saved env had {len(snapshot)} wrapper layers, this one has {len(layers)}: "
            "is it the same env?"
        )
    for layer, attrs in zip(layers, snapshot, strict=True):
        for key, value in attrs.items():
            if key == _NP_RANDOM:
                bit_generator = getattr(np.random, value["bit_generator"])()
                bit_generator.state = value
                value = np.random.Generator(bit_generator)
            setattr(layer, key, value)


def episode_snapshot(episode: Episode) -> dict:
    """A running episode's counters, rewards and callback data as plain data.

    Introduced in notebooks/12_trainers.ipynb.
    """
    return {
        "episode_id": episode.episode_id,
        "env_index": episode.env_index,
        "length": episode.length,
        "total_reward": episode.total_reward,
        "agent_rewards": [
            [agent, policy, reward] for (agent, policy), reward in episode.agent_rewards.items()
        ],
        "user_data": episode.user_data,
        "hist_data": episode.hist_data,
        "custom_metrics": episode.custom_metrics,
        "last": {agent: dict(values) for agent, values in episode._last.items()},
    }


def restore_episode(saved: dict, policy_for=None) -> Episode:
    """The ``Episode`` that ``episode_snapshot`` saved.

    Introduced in notebooks/12_trainers.ipynb.
    """
    episode = Episode(saved["episode_id"], saved["env_index"], policy_for)
    episode.length, episode.total_reward = saved["length"], saved["total_reward"]
    for agent, policy, reward in saved["agent_rewards"]:
        episode.agent_rewards[(agent, policy)] = reward
    episode.user_data, episode.hist_data, episode.custom_metrics = (
        saved["user_data"],
        saved["hist_data"],
        saved["custom_metrics"],
    )
    for agent, values in saved["last"].items():
        episode._last[agent].update(values)
    return episode
