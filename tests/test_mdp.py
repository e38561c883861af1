"""course_lib.mdp: the Bellman equations on tables, checked against closed forms and hand sums."""

from __future__ import annotations

import numpy as np
import pytest

from course_lib.mdp import (
    TabularMDP,
    as_policy_table,
    bandit_expected_reward,
    bandit_gradient_variance,
    bandit_policy_gradient,
    bellman_optimality_backup,
    chain_mdp,
    policy_evaluation,
    q_from_v,
    softmax,
    softmax_score,
    value_iteration,
)


def two_state_mdp(gamma=0.5):
    """State 0: action 0 stays (reward 1), action 1 moves on (reward 0); state 1 pays 2 forever."""
    P = np.zeros((2, 2, 2))
    P[0, 0, 0] = P[0, 1, 1] = P[1, :, 1] = 1.0
    R = np.array([[1.0, 0.0], [2.0, 2.0]])
    return TabularMDP(P, R, gamma)


@pytest.mark.parametrize("n, gamma", [(2, 0.5), (4, 0.9), (7, 0.99)])
def test_value_iteration_on_a_chain_matches_the_closed_form(n, gamma):
    values, policy = value_iteration(chain_mdp(n, reward=2.0, gamma=gamma))
    closed_form = np.append(2.0 * gamma ** (n - 2 - np.arange(n - 1)), 0.0)
    np.testing.assert_allclose(values, closed_form, atol=1e-8)
    assert policy[:-1].tolist() == [1] * (n - 1)


def test_two_state_mdp_by_hand():
    mdp = two_state_mdp(gamma=0.6)
    values, policy = value_iteration(mdp)
    # V(1) = 2 / 0.4 = 5; moving: 0.6 * 5 = 3; staying forever: 1 / 0.4 = 2.5. Moving wins.
    np.testing.assert_allclose(values, [3.0, 5.0])
    assert policy[0] == 1
    np.testing.assert_allclose(q_from_v(mdp, values), [[1.0 + 0.6 * 3.0, 3.0], [5.0, 5.0]])


def test_policy_evaluation_solves_the_bellman_expectation_equation():
    mdp = two_state_mdp(gamma=0.6)
    np.testing.assert_allclose(policy_evaluation(mdp, np.array([0, 0])), [2.5, 5.0])
    half = np.array([[0.5, 0.5], [0.5, 0.5]])
    # V0 = 0.5 (1 + 0.6 V0) + 0.5 (0.6 * 5)  =>  0.7 V0 = 2  =>  V0 = 2 / 0.7
    np.testing.assert_allclose(policy_evaluation(mdp, half), [2.0 / 0.7, 5.0])


def test_policy_evaluation_agrees_with_iterating_the_expectation_backup():
    rng = np.random.default_rng(0)
    mdp = TabularMDP(rng.dirichlet(np.ones(5), size=(5, 3)), rng.normal(size=(5, 3)), 0.9)
    pi = rng.dirichlet(np.ones(3), size=5)
    values = np.zeros(5)
    for _ in range(500):
        values = (pi * q_from_v(mdp, values)).sum(axis=1)
    np.testing.assert_allclose(policy_evaluation(mdp, pi), values, atol=1e-10)


def test_the_optimal_values_are_a_fixed_point_and_dominate_every_policy():
    rng = np.random.default_rng(1)
    mdp = TabularMDP(rng.dirichlet(np.ones(4), size=(4, 2)), rng.normal(size=(4, 2)), 0.8)
    values, policy = value_iteration(mdp)
    np.testing.assert_allclose(bellman_optimality_backup(mdp, values), values, atol=1e-9)
    np.testing.assert_allclose(policy_evaluation(mdp, policy), values, atol=1e-8)
    for actions in np.ndindex(2, 2, 2, 2):
        assert np.all(policy_evaluation(mdp, np.array(actions)) <= values + 1e-9)


def test_value_iteration_raises_when_it_runs_out_of_sweeps():
    with pytest.raises(RuntimeError, match="did not converge"):
        value_iteration(chain_mdp(4, gamma=0.99), tol=1e-12, max_iterations=2)


@pytest.mark.parametrize(
    "P, R, gamma, message",
    [
        (np.ones((2, 2)), np.zeros((2, 2)), 0.9, r"shape \(S, A, S\)"),
        (np.full((2, 1, 2), 0.5), np.zeros((2, 2)), 0.9, r"R must have shape \(S, A\) = \(2, 1\)"),
        (np.full((2, 1, 2), 0.4), np.zeros((2, 1)), 0.9, r"P\[0, 0, :\] sums to 0.8"),
        (np.array([[[1.5, -0.5]], [[0.0, 1.0]]]), np.zeros((2, 1)), 0.9, "negative"),
        (np.full((2, 1, 2), 0.5), np.zeros((2, 1)), 1.0, r"gamma must be in \[0, 1\)"),
    ],
)
def test_a_bad_mdp_is_refused_with_a_clear_message(P, R, gamma, message):
    with pytest.raises(ValueError, match=message):
        TabularMDP(P, R, gamma)


def test_bad_policies_and_values_are_refused():
    mdp = chain_mdp(3)
    assert as_policy_table(mdp, np.array([1, 0, 1])).tolist() == [[0, 1], [1, 0], [0, 1]]
    with pytest.raises(ValueError, match="action ids in 0..1"):
        as_policy_table(mdp, np.array([2, 0, 1]))
    with pytest.raises(ValueError, match=r"policy\[1, :\] sums to"):
        policy_evaluation(mdp, np.array([[0.5, 0.5], [0.5, 0.6], [1.0, 0.0]]))
    with pytest.raises(ValueError, match=r"got shape \(2,\)"):
        policy_evaluation(mdp, np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match=r"V must have shape \(S,\) = \(3,\)"):
        q_from_v(mdp, np.zeros(4))
    with pytest.raises(ValueError, match="at least 2 states"):
        chain_mdp(1)


def test_softmax_is_stable_and_sums_to_one():
    np.testing.assert_allclose(softmax([0.0, np.log(3.0)]), [0.25, 0.75])
    np.testing.assert_allclose(softmax([1000.0, 1000.0]), [0.5, 0.5])


def test_bandit_gradient_matches_finite_differences():
    theta, means = np.array([0.3, -1.2]), np.array([1.0, 2.5])
    eps = 1e-6
    numeric = [
        (
            bandit_expected_reward(theta + eps * e, means)
            - bandit_expected_reward(theta - eps * e, means)
        )
        / (2 * eps)
        for e in np.eye(2)
    ]
    np.testing.assert_allclose(bandit_policy_gradient(theta, means), numeric, atol=1e-8)
    # At theta = 0: pi = (1/2, 1/2), J = 1.75, gradient = 0.5 * (mu - J) = (-0.375, 0.375).
    np.testing.assert_allclose(bandit_policy_gradient([0.0, 0.0], means), [-0.375, 0.375])


def test_the_score_of_a_softmax_is_onehot_minus_pi():
    np.testing.assert_allclose(
        softmax_score([0.0, np.log(3.0)], [0, 1]), [[0.75, -0.75], [-0.25, 0.25]]
    )


def test_gradient_variance_matches_an_exact_enumeration():
    theta, means, baseline = np.array([0.5, -0.5]), np.array([1.0, 2.0]), 0.7
    pi = softmax(theta)
    # Without noise, one sample is score(a) * (mu_a - b) with probability pi_a; add the noise term
    # (score**2 * noise variance) by hand.
    terms = softmax_score(theta, [0, 1]) * (means - baseline)[:, None]
    mean = pi @ terms
    variance = pi @ (terms - mean) ** 2 + pi @ softmax_score(theta, [0, 1]) ** 2
    np.testing.assert_allclose(bandit_gradient_variance(theta, means, baseline), variance)
    np.testing.assert_allclose(mean, bandit_policy_gradient(theta, means))
