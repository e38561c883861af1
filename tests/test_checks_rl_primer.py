"""Graders of the RL primer (lesson 04): the reference passes, the stubs and the typical mistakes
fail with a message that names the mistake."""

from __future__ import annotations

import numpy as np
import pytest

from course_lib import checks
from course_lib.mdp import softmax


def stub(*args):
    raise NotImplementedError("Exercise 4.x: replace this line with your code.")


# --- 4.1 ------------------------------------------------------------------------------------------


def returns_right(rewards, terminateds, gamma):
    out, running = np.zeros(len(rewards)), 0.0
    for t in reversed(range(len(rewards))):
        running = rewards[t] + gamma * running * (not terminateds[t])
        out[t] = running
    return out


def returns_forward(rewards, terminateds, gamma):
    out, running = np.zeros(len(rewards)), 0.0
    for t in range(len(rewards)):
        running += gamma**t * rewards[t]
        out[t] = running
    return out


def returns_without_reset(rewards, terminateds, gamma):
    return returns_right(rewards, np.zeros(len(rewards), bool), gamma)


def returns_reset_late(rewards, terminateds, gamma):
    out, running = np.zeros(len(rewards)), 0.0
    for t in reversed(range(len(rewards))):
        running = rewards[t] + gamma * running
        out[t] = running
        if terminateds[t]:
            running = 0.0
    return out


def returns_gamma_on_present(rewards, terminateds, gamma):
    out, running = np.zeros(len(rewards)), 0.0
    for t in reversed(range(len(rewards))):
        running = gamma * (rewards[t] + running * (not terminateds[t]))
        out[t] = running
    return out


def test_discounted_returns_accepts_the_reference(capsys):
    checks.check_discounted_returns(returns_right)
    assert "Exercise 4.1 passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (stub, "Exercise 4.x"),
        (returns_forward, "computed forward instead of backward"),
        (returns_without_reset, "you did not reset at episode ends"),
        (returns_reset_late, "one step too late"),
        (returns_gamma_on_present, "with gamma=0 the return of a step is its own reward"),
        (lambda r, d, g: returns_right(r, d, g)[:-1], r"shape \(3,\)"),
        (lambda r, d, g: None, "returned None"),
    ],
)
def test_discounted_returns_names_the_mistake(wrong, hint):
    error = NotImplementedError if wrong is stub else checks.CheckFailed
    with pytest.raises(error, match=hint):
        checks.check_discounted_returns(wrong)


# --- 4.2 ------------------------------------------------------------------------------------------


def vi_right(P, R, gamma, tol):
    V = np.zeros(P.shape[0])
    while True:
        new_V = (R + gamma * P @ V).max(axis=1)
        if np.max(np.abs(new_V - V)) <= tol:
            return new_V, (R + gamma * P @ new_V).argmax(axis=1)
        V = new_V


def vi_average(P, R, gamma, tol):
    V = np.zeros(P.shape[0])
    for _ in range(3000):
        V = (R + gamma * P @ V).mean(axis=1)
    return V, (R + gamma * P @ V).argmax(axis=1)


def vi_greedy_on_reward(P, R, gamma, tol):
    return vi_right(P, R, gamma, tol)[0], R.argmax(axis=1)


def vi_one_sweep(P, R, gamma, tol):
    V = R.max(axis=1)
    return V, (R + gamma * P @ V).argmax(axis=1)


def vi_without_gamma(P, R, gamma, tol):
    V = np.zeros(P.shape[0])
    for _ in range(50):
        V = (R + P @ V).max(axis=1)
    return V, (R + P @ V).argmax(axis=1)


def vi_never_stops(P, R, gamma, tol):
    V = np.zeros(P.shape[0])
    while True:  # a change is never < 0, so this loop only ends when the check stops it
        new_V = (R + gamma * P @ V).max(axis=1)
        if np.max(np.abs(new_V - V)) < 0:
            return V, new_V.argmax()
        V = new_V


def test_value_iteration_accepts_the_reference(capsys):
    checks.check_value_iteration(vi_right)
    assert "Exercise 4.2 passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (stub, "Exercise 4.x"),
        (vi_average, "you averaged Q over the actions"),
        (vi_greedy_on_reward, "greedy on the immediate reward"),
        (vi_one_sweep, "does not satisfy the Bellman optimality equation"),
        (vi_without_gamma, "undiscounted values"),
        (lambda P, R, g, tol: vi_right(P, R, g, tol)[0], r"should return a pair \(V, policy\)"),
        (lambda P, R, g, tol: (vi_right(P, R, g, tol)[0], None), "shape"),
    ],
)
def test_value_iteration_names_the_mistake(wrong, hint):
    error = NotImplementedError if wrong is stub else checks.CheckFailed
    with pytest.raises(error, match=hint):
        checks.check_value_iteration(wrong)


def test_value_iteration_that_never_stops_is_stopped(monkeypatch):
    from course_lib.checks import rl_primer

    monkeypatch.setattr(rl_primer, "TIME_LIMIT_S", 1.0)
    with pytest.raises(checks.CheckFailed, match="stopping test never comes true"):
        checks.check_value_iteration(vi_never_stops)


# --- 4.3 ------------------------------------------------------------------------------------------


def sample(theta, arm_means, n_samples, rng):
    pi = softmax(theta)
    actions = rng.choice(2, size=n_samples, p=pi)
    return pi, actions, arm_means[actions] + rng.normal(size=n_samples)


def pg_right(theta, arm_means, n_samples, rng, baseline=0.0):
    pi, actions, rewards = sample(theta, arm_means, n_samples, rng)
    return ((np.eye(2)[actions] - pi) * (rewards - baseline)[:, None]).mean(axis=0)


def pg_grad_pi(theta, arm_means, n_samples, rng, baseline=0.0):
    pi, actions, rewards = sample(theta, arm_means, n_samples, rng)
    grad_pi = pi[actions][:, None] * (np.eye(2)[actions] - pi)
    return (grad_pi * (rewards - baseline)[:, None]).mean(axis=0)


def pg_onehot_only(theta, arm_means, n_samples, rng, baseline=0.0):
    pi, actions, rewards = sample(theta, arm_means, n_samples, rng)
    return (np.eye(2)[actions] * (rewards - baseline)[:, None]).mean(axis=0)


def pg_summed(theta, arm_means, n_samples, rng, baseline=0.0):
    return n_samples * pg_right(theta, arm_means, n_samples, rng, baseline)


def pg_flipped(theta, arm_means, n_samples, rng, baseline=0.0):
    return -pg_right(theta, arm_means, n_samples, rng, baseline)


def pg_ignores_baseline(theta, arm_means, n_samples, rng, baseline=0.0):
    return pg_right(theta, arm_means, n_samples, rng, 0.0)


def pg_baseline_on_gradient(theta, arm_means, n_samples, rng, baseline=0.0):
    return pg_right(theta, arm_means, n_samples, rng, 0.0) - baseline


def pg_uniform_actions(theta, arm_means, n_samples, rng, baseline=0.0):
    pi = softmax(theta)
    actions = rng.integers(0, 2, size=n_samples)
    rewards = arm_means[actions] + rng.normal(size=n_samples)
    return ((np.eye(2)[actions] - pi) * (rewards - baseline)[:, None]).mean(axis=0)


def pg_global_rng(theta, arm_means, n_samples, rng, baseline=0.0):
    return pg_right(theta, arm_means, n_samples, np.random.default_rng(), baseline)


def test_mc_policy_gradient_accepts_the_reference(capsys):
    checks.check_mc_policy_gradient(pg_right)
    out = capsys.readouterr().out
    assert "Exercise 4.3 passed" in out and "variance" in out


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (stub, "Exercise 4.x"),
        (pg_grad_pi, "did you forget the log-derivative"),
        (pg_onehot_only, "you used onehot"),
        (pg_summed, "you summed"),
        (pg_flipped, "sign is flipped"),
        (pg_ignores_baseline, "should cut the variance"),
        (pg_baseline_on_gradient, "subtracted the baseline from the gradient"),
        (pg_uniform_actions, "drawn from the policy"),
        (pg_global_rng, "does not follow the rng"),
        (lambda *args: pg_right(*args)[:1], r"shape \(2,\)"),
    ],
)
def test_mc_policy_gradient_names_the_mistake(wrong, hint):
    error = NotImplementedError if wrong is stub else checks.CheckFailed
    with pytest.raises(error, match=hint):
        checks.check_mc_policy_gradient(wrong)
