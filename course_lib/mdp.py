"""Tabular MDPs and a two-armed bandit: the theory behind every algorithm in the course, in numpy.

An MDP here is a table: ``P[s, a, s']`` is the probability of moving to ``s'`` after action ``a``
in state ``s``, ``R[s, a]`` the expected reward of that step, and ``gamma`` the discount. A policy
is a table too, ``policy[s, a]`` = pi(a | s). With tables, the Bellman equations become a linear
solve (policy evaluation) and a repeated max (value iteration), so their answers can be checked
against closed forms. The bandit helpers give the exact policy gradient of a softmax policy, which
Monte Carlo estimates are compared with.

Introduced in notebooks/04_rl_primer.ipynb.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# How far a row of P (or of a policy) may sum from 1 and still count as a distribution.
_PROBABILITY_ATOL = 1e-6


def _check_distribution_rows(name: str, table: np.ndarray, index: str) -> None:
    """Every entry of ``table`` is >= 0 and it sums to 1 over its last axis."""
    if np.any(table < 0):
        where = tuple(int(i) for i in np.argwhere(table < 0)[0])
        raise ValueError(
            f"{name}{list(where)} = {table[where]:.3g} is negative; probabilities must be >= 0."
        )
    sums = table.sum(axis=-1)
    bad = np.argwhere(np.abs(sums - 1.0) > _PROBABILITY_ATOL)
    if len(bad):
        where = tuple(int(i) for i in bad[0])
        raise ValueError(
            f"{name}[{', '.join(map(str, where))}, :] sums to {sums[where]:.6g}, not 1: each "
            f"{index} must be a probability distribution over its last axis."
        )


@dataclass(frozen=True)
class TabularMDP:
    """A finite MDP: transitions ``P`` (S, A, S), expected rewards ``R`` (S, A), discount ``gamma``.

    A terminal state is an absorbing one: every action leads back to it with reward 0, so its value
    is 0. ``gamma`` must be below 1, which makes every Bellman backup a contraction (value
    iteration converges) and ``I - gamma * P_pi`` invertible (policy evaluation has one answer).

    Introduced in notebooks/04_rl_primer.ipynb.
    """

    P: np.ndarray
    R: np.ndarray
    gamma: float

    def __post_init__(self):
        P = np.asarray(self.P, dtype=np.float64)
        R = np.asarray(self.R, dtype=np.float64)
        if P.ndim != 3 or P.shape[0] != P.shape[2]:
            raise ValueError(
                f"P must have shape (S, A, S), P[s, a, s'] = Pr(s' | s, a); got shape {P.shape}."
            )
        if R.shape != P.shape[:2]:
            raise ValueError(
                f"R must have shape (S, A) = {P.shape[:2]}, one expected reward per state and "
                f"action, to match P of shape {P.shape}; got shape {R.shape}."
            )
        _check_distribution_rows("P", P, "P[s, a, :]")
        if not 0.0 <= self.gamma < 1.0:
            raise ValueError(
                f"gamma must be in [0, 1), got {self.gamma}. With gamma = 1 the values of an "
                "endless episode are infinite; use an absorbing terminal state and gamma < 1."
            )
        # Frozen: set the float64 copies through object.__setattr__, once, here.
        object.__setattr__(self, "P", P)
        object.__setattr__(self, "R", R)
        object.__setattr__(self, "gamma", float(self.gamma))

    @property
    def num_states(self) -> int:
        return self.P.shape[0]

    @property
    def num_actions(self) -> int:
        return self.P.shape[1]


def chain_mdp(num_states: int = 4, reward: float = 1.0, gamma: float = 0.9) -> TabularMDP:
    """A corridor of ``num_states`` states; action 0 steps left, action 1 steps right.

    Stepping right from state ``num_states - 2`` into the last state pays ``reward``; the last
    state is terminal (absorbing, reward 0); stepping left from state 0 stays there. The optimal
    policy always steps right, and its values have a closed form::

        V*(s) = gamma ** (num_states - 2 - s) * reward   for s < num_states - 1,   V*(last) = 0

    Introduced in notebooks/04_rl_primer.ipynb.
    """
    if num_states < 2:
        raise ValueError(f"a chain needs at least 2 states (a start and a goal); got {num_states}.")
    P = np.zeros((num_states, 2, num_states))
    R = np.zeros((num_states, 2))
    goal = num_states - 1
    for s in range(goal):
        P[s, 0, max(s - 1, 0)] = 1.0
        P[s, 1, s + 1] = 1.0
    P[goal, :, goal] = 1.0
    R[goal - 1, 1] = reward
    return TabularMDP(P, R, gamma)


def as_policy_table(mdp: TabularMDP, policy) -> np.ndarray:
    """``policy`` as a table (S, A) of probabilities; a deterministic policy (S,) of action ids
    becomes one-hot rows. Introduced in notebooks/04_rl_primer.ipynb."""
    policy = np.asarray(policy)
    S, A = mdp.num_states, mdp.num_actions
    if policy.shape == (S,) and np.issubdtype(policy.dtype, np.integer):
        if policy.min() < 0 or policy.max() >= A:
            raise ValueError(
                f"a deterministic policy holds action ids in 0..{A - 1}; got {policy}."
            )
        return np.eye(A)[policy]
    if policy.shape != (S, A):
        raise ValueError(
            f"a policy is a table (S, A) = {(S, A)} of probabilities pi(a | s), or (S,) integer "
            f"action ids; got shape {policy.shape}, dtype {policy.dtype}."
        )
    policy = policy.astype(np.float64)
    _check_distribution_rows("policy", policy, "policy[s, :]")
    return policy


def policy_evaluation(mdp: TabularMDP, policy) -> np.ndarray:
    """V^pi (S,), solving the Bellman expectation equation exactly as a linear system.

    ``V = R_pi + gamma * P_pi @ V`` with ``R_pi[s] = sum_a pi(a|s) R[s, a]`` and
    ``P_pi[s, s'] = sum_a pi(a|s) P[s, a, s']``, so ``V = (I - gamma * P_pi)^-1 R_pi``.
    ``policy``: (S, A) probabilities or (S,) action ids.

    Introduced in notebooks/04_rl_primer.ipynb.
    """
    pi = as_policy_table(mdp, policy)
    R_pi = np.einsum("sa,sa->s", pi, mdp.R)
    P_pi = np.einsum("sa,sat->st", pi, mdp.P)
    return np.linalg.solve(np.eye(mdp.num_states) - mdp.gamma * P_pi, R_pi)


def q_from_v(mdp: TabularMDP, values) -> np.ndarray:
    """Q (S, A) from V (S,): ``Q[s, a] = R[s, a] + gamma * sum_s' P[s, a, s'] V[s']``.

    Introduced in notebooks/04_rl_primer.ipynb.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (mdp.num_states,):
        raise ValueError(f"V must have shape (S,) = ({mdp.num_states},); got {values.shape}.")
    return mdp.R + mdp.gamma * mdp.P @ values


def bellman_optimality_backup(mdp: TabularMDP, values) -> np.ndarray:
    """One sweep of value iteration: ``V_new[s] = max_a Q[s, a]`` with Q from ``values`` (S,).

    Introduced in notebooks/04_rl_primer.ipynb.
    """
    return q_from_v(mdp, values).max(axis=1)


def value_iteration(
    mdp: TabularMDP, tol: float = 1e-10, max_iterations: int = 10_000
) -> tuple[np.ndarray, np.ndarray]:
    """V* (S,) and a greedy optimal policy (S,) of action ids, by repeated Bellman backups.

    Starts from V = 0 and stops when no value changes by more than ``tol`` in one sweep. Each
    sweep shrinks the distance to V* by a factor gamma at least, so about
    ``log(tol) / log(gamma)`` sweeps suffice; reaching ``max_iterations`` first raises.

    Introduced in notebooks/04_rl_primer.ipynb.
    """
    values = np.zeros(mdp.num_states)
    for _ in range(max_iterations):
        new_values = bellman_optimality_backup(mdp, values)
        converged = np.max(np.abs(new_values - values)) <= tol
        values = new_values
        if converged:
            return values, q_from_v(mdp, values).argmax(axis=1)
    raise RuntimeError(
        f"value iteration did not converge to tol={tol} in {max_iterations} sweeps "
        f"(gamma={mdp.gamma}); raise max_iterations or tol."
    )


# --- the two-armed bandit with a softmax policy ---------------------------------------------------


def softmax(logits) -> np.ndarray:
    """pi = exp(logits) / sum(exp(logits)) over the last axis, computed without overflow.

    Introduced in notebooks/04_rl_primer.ipynb.
    """
    logits = np.asarray(logits, dtype=np.float64)
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def bandit_expected_reward(theta, arm_means) -> float:
    """J(theta) = sum_a pi_theta(a) * mean reward of arm a. Introduced in
    notebooks/04_rl_primer.ipynb."""
    return float(softmax(theta) @ np.asarray(arm_means, dtype=np.float64))


def bandit_policy_gradient(theta, arm_means) -> np.ndarray:
    """The exact gradient of J(theta) for a softmax policy: ``dJ/dtheta_i = pi_i (mu_i - J)``.

    ``theta``, ``arm_means``: (A,). Follows from ``d pi_a / d theta_i = pi_a (1[a=i] - pi_i)``.

    Introduced in notebooks/04_rl_primer.ipynb.
    """
    pi = softmax(theta)
    means = np.asarray(arm_means, dtype=np.float64)
    return pi * (means - pi @ means)


def softmax_score(theta, actions) -> np.ndarray:
    """grad_theta log pi_theta(a) per action: ``onehot(a) - pi``, shape (N, A) for (N,) actions.

    Introduced in notebooks/04_rl_primer.ipynb.
    """
    pi = softmax(theta)
    return np.eye(len(pi))[np.asarray(actions)] - pi


def bandit_gradient_variance(theta, arm_means, baseline: float = 0.0, noise_std: float = 1.0):
    """Per-component variance (A,) of one score-function sample ``(onehot(a) - pi) (r - b)``.

    Rewards are ``arm_means[a]`` plus normal noise of std ``noise_std``. The mean of ``n`` such
    samples has variance this / n: the standard error that a Monte Carlo estimate is judged by.

    Introduced in notebooks/04_rl_primer.ipynb.
    """
    pi = softmax(theta)
    means = np.asarray(arm_means, dtype=np.float64)
    score = np.eye(len(pi)) - pi  # row a: the score of action a
    second_moment = pi @ (score**2 * ((means - baseline) ** 2 + noise_std**2)[:, None])
    return second_moment - bandit_policy_gradient(theta, means) ** 2
