"""Grader for notebooks/09_exploration.ipynb: a custom exploration class chosen by
exploration_config."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch

from course_lib.seeding import global_rngs_unchanged, seed_global_rngs

from ._common import CheckFailed, passed


def _expected_temperature(t, initial=2.0, final=0.1, steps=1000):
    return initial + min(t / steps, 1.0) * (final - initial)


def check_decaying_boltzmann(DecayingBoltzmann) -> None:
    """Exercise 9.1: Boltzmann exploration whose temperature decays linearly with the timestep."""
    from course_lib.exploration import Exploration, from_config
    from course_lib.models import TorchCategorical

    if not (isinstance(DecayingBoltzmann, type) and issubclass(DecayingBoltzmann, Exploration)):
        raise CheckFailed(
            "9.1",
            "DecayingBoltzmann should subclass "
            f"course_lib.exploration.Exploration; got {DecayingBoltzmann!r:.60}.",
        )
    space = gym.spaces.Discrete(3)
    explorer = from_config(
        {
            "type": DecayingBoltzmann,
            "initial_temperature": 2.0,
            "final_temperature": 0.1,
            "temperature_timesteps": 1000,
        },
        action_space=space,
        policy_config={},
        model=None,
    )
    logits = torch.tensor([[1.0, 0.0, -1.0]]).repeat(20_000, 1)
    dist = TorchCategorical(logits, None)
    for t in (0, 500, 1000, 5000):
        # Seeded for a repeatable verdict, without moving the learner's own random streams.
        with global_rngs_unchanged():
            seed_global_rngs(t)
            actions, logp = explorer.get_exploration_action(
                action_distribution=dist, timestep=t, explore=True
            )
        temperature = _expected_temperature(t)
        want = torch.softmax(logits[0] / temperature, dim=0).numpy()
        freq = np.bincount(actions.numpy(), minlength=3) / len(actions)
        if np.abs(freq - want).max() > 0.02:
            raise CheckFailed(
                "9.1",
                f"at timestep {t} the temperature should be {temperature:.3f}, so actions should "
                f"follow {want.round(3)}; yours came out {freq.round(3)}. "
                "T(t) = initial + min(t / temperature_timesteps, "
                "1) * (final - initial); sample from Categorical(logits=inputs / T).",
            )
        want_logp = (
            torch.log_softmax(logits / temperature, dim=1).gather(1, actions[:, None]).squeeze(1)
        )
        if logp.shape != actions.shape or not torch.allclose(logp, want_logp, atol=1e-4):
            raise CheckFailed(
                "9.1",
                "logp should be the log-probability of each chosen "
                "action under softmax(inputs / T), one per row.",
            )
        info_t = explorer.get_info().get("cur_temperature")
        if info_t is None or not math.isclose(info_t, temperature, rel_tol=1e-6):
            raise CheckFailed(
                "9.1",
                f"get_info() should return {{'cur_temperature': {temperature:.3f}}} "
                f"after timestep {t}; got {explorer.get_info()}.",
            )
    greedy, _ = explorer.get_exploration_action(action_distribution=dist, timestep=0, explore=False)
    if not (greedy == 0).all():
        raise CheckFailed(
            "9.1",
            "with explore=False return the greedy action (argmax of the inputs) for every row.",
        )
    passed(
        "9.1",
        "the temperature decays from 2.0 to 0.1 over 1000 "
        "steps and actions follow softmax(inputs / T).",
    )
