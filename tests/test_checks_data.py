"""Graders of lessons 03-05 accept right answers and name the mistake in wrong ones."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from course_lib import checks
from course_lib.postprocessing import discount_cumsum


class GuessNumber(gym.Env):
    def __init__(self, env_config):
        self.size = env_config.get("size", 10)
        self.max_guesses = env_config.get("max_guesses", 5)
        self.action_space = gym.spaces.Discrete(self.size)
        self.observation_space = gym.spaces.Discrete(3)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.target = int(self.np_random.integers(self.size))
        self.guesses = 0
        return 0, {}

    def step(self, action):
        self.guesses += 1
        if action == self.target:
            return 0, 1.0, True, False, {}
        return (1 if action < self.target else 2), -0.1, False, self.guesses >= self.max_guesses, {}


class GuessNumberTerminatesOnLimit(GuessNumber):
    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, reward, terminated or truncated, False, info


class GuessNumberUnseeded(GuessNumber):
    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.target = int(np.random.randint(self.size))
        self.guesses = 0
        return 0, {}


class GuessNumberOldApi(GuessNumber):
    def reset(self, *, seed=None, options=None):
        return super().reset(seed=seed)[0]


def test_guess_number_accepts_a_correct_env(capsys):
    checks.check_guess_number(GuessNumber)
    assert "Exercise 3.1 passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    "env_class, hint",
    [
        (GuessNumberTerminatesOnLimit, "running out of guesses is a time limit"),
        (GuessNumberUnseeded, "different targets|self.np_random"),
        (GuessNumberOldApi, "check_env found a problem"),
    ],
)
def test_guess_number_names_the_mistake(env_class, hint):
    with pytest.raises(checks.CheckFailed, match=hint):
        checks.check_guess_number(env_class)


def test_discount_cumsum_accepts_the_reference(capsys):
    checks.check_discount_cumsum(discount_cumsum)
    assert "Exercise 5.1 passed" in capsys.readouterr().out


def test_discount_cumsum_detects_forward_accumulation():
    def forwards(x, gamma):
        out, running = [], 0.0
        for t, r in enumerate(x):
            running += gamma**t * r
            out.append(running)
        return np.array(out)

    with pytest.raises(checks.CheckFailed, match="forwards"):
        checks.check_discount_cumsum(forwards)


def gae_right(rewards, vf_preds, next_value, terminated, gamma, lambda_):
    last = 0.0 if terminated else next_value
    deltas = rewards + gamma * np.append(vf_preds[1:], last) - vf_preds
    return discount_cumsum(deltas, gamma * lambda_)


def test_gae_accepts_a_correct_implementation(capsys):
    checks.check_gae(gae_right)
    assert "Exercise 5.2 passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (
            lambda r, v, nv, term, g, lam: gae_right(r, v, nv, True, g, lam),
            "on a truncated piece you used V = 0",
        ),
        (
            lambda r, v, nv, term, g, lam: gae_right(r, v, nv, False, g, lam),
            "on a terminated piece you bootstrapped",
        ),
        (lambda r, v, nv, term, g, lam: gae_right(r, v, nv, not term, g, lam), "swapped"),
        (lambda r, v, nv, term, g, lam: gae_right(r, v, nv, term, g, 0.0), "one-step TD errors"),
        (lambda r, v, nv, term, g, lam: gae_right(r, v, nv, term, g, lam)[:-1], r"shape \(20,\)"),
    ],
)
def test_gae_names_the_mistake(wrong, hint):
    with pytest.raises(checks.CheckFailed, match=hint):
        checks.check_gae(wrong)
