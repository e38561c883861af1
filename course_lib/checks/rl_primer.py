"""Graders for notebooks/04_rl_primer.ipynb: returns with episode ends, value iteration, and a
Monte Carlo policy gradient on a two-armed bandit."""

from __future__ import annotations

import numpy as np

from ._common import CheckFailed, expect_array, first_difference, passed, require_callable
from ._learner_calls import call_learner

# A right value iteration on these MDPs takes milliseconds; the limit only catches a loop whose
# stopping test never comes true.
TIME_LIMIT_S = 20.0

# --- Exercise 4.1: discounted returns with episode ends -------------------------------------------


def _reference_returns(rewards, terminateds, gamma) -> np.ndarray:
    """Reward-to-go per episode piece, each piece ending after a terminated step (or the data)."""
    from course_lib.postprocessing import discount_cumsum

    rewards = np.asarray(rewards, dtype=np.float64)
    ends = np.flatnonzero(terminateds) + 1
    pieces = np.split(rewards, ends[ends < len(rewards)])
    return np.concatenate([discount_cumsum(piece, gamma) for piece in pieces])


def _returns_resetting_after_storing(rewards, terminateds, gamma) -> np.ndarray:
    """A typical mistake: the running sum is reset one step too late (after G_t was stored)."""
    out, running = np.zeros(len(rewards)), 0.0
    for t in reversed(range(len(rewards))):
        running = rewards[t] + gamma * running
        out[t] = running
        if terminateds[t]:
            running = 0.0
    return out


def _returns_discounted_from_episode_start(rewards, terminateds, gamma) -> np.ndarray:
    """A typical mistake: r_{t+k} weighted by gamma**(t+k) instead of gamma**k."""
    steps = np.zeros(len(rewards))
    for t in range(1, len(rewards)):
        steps[t] = 0 if terminateds[t - 1] else steps[t - 1] + 1
    return _reference_returns(rewards, terminateds, gamma) * gamma**steps


def _call_returns(discounted_returns, rewards, terminateds, gamma) -> np.ndarray:
    what = f"discounted_returns(rewards, terminateds, gamma={gamma})"
    got = discounted_returns(np.array(rewards, dtype=np.float64), np.array(terminateds), gamma)
    return expect_array("4.1", what, got, (len(rewards),), "one return per step")


def check_discounted_returns(discounted_returns) -> None:
    """Exercise 4.1: ``G_t = r_t + gamma * G_{t+1}``, restarted after every terminated step."""
    require_callable("check_discounted_returns", "discounted_returns", discounted_returns)
    got = _call_returns(discounted_returns, [1.0, 1.0, 1.0], [False, False, False], 0.5)
    if np.allclose(got, [1.0, 1.5, 1.75]):
        raise CheckFailed(
            "4.1",
            "the returns are computed forward instead of backward: G_t looks ahead, at the "
            "rewards from t on. Loop from the last step to the first.",
        )
    simple = got
    rewards, terminateds = [1.0, 2.0, 3.0, 4.0], [False, True, False, False]
    got = _call_returns(discounted_returns, rewards, terminateds, 0.0)
    if not np.allclose(got, rewards):
        raise CheckFailed(
            "4.1",
            f"with gamma=0 the return of a step is its own reward, {rewards}; got "
            f"{got.round(4).tolist()}. Is gamma applied to the future only (G_t = r_t + gamma * "
            "G_{t+1})?",
        )
    if not np.allclose(simple, [1.75, 1.5, 1.0]):
        raise CheckFailed(
            "4.1",
            f"rewards [1, 1, 1] with gamma=0.5 and no episode end should give returns "
            f"[1.75, 1.5, 1.0]; got {simple.round(4).tolist()}.",
        )
    got = _call_returns(discounted_returns, rewards, terminateds, 0.9)
    want = _reference_returns(rewards, terminateds, 0.9)  # [2.8, 2.0, 6.6, 4.0]
    mistakes = [
        (
            _reference_returns(rewards, [False] * 4, 0.9),
            "you did not reset at episode ends: the episode ends after step 1 "
            "(terminateds[1] is True), so G_1 = r_1 and G_0 = r_0 + gamma * r_1; rewards of the "
            "next episode must not flow back into this one.",
        ),
        (
            _returns_resetting_after_storing(rewards, terminateds, 0.9),
            "you reset one step too late: terminateds[t] means the episode ended after step t, "
            "so set the running sum to 0 before adding r_t, not after storing G_t.",
        ),
        (
            _returns_discounted_from_episode_start(rewards, terminateds, 0.9),
            "you discounted from the start of the episode (gamma**(t + k)); the return at t "
            "weighs r_t by 1, r_{t+1} by gamma, and so on (gamma**k).",
        ),
    ]
    if not np.allclose(got, want):
        for wrong, message in mistakes:
            if np.allclose(got, wrong):
                raise CheckFailed("4.1", message)
        raise CheckFailed(
            "4.1",
            f"rewards {rewards} with terminateds {terminateds} and gamma=0.9 should give returns "
            f"{want.round(4).tolist()}; got {got.round(4).tolist()}.",
        )
    rng = np.random.default_rng(0)
    for gamma in (0.5, 0.99, 1.0):
        for ends_terminated in (True, False):
            terminateds = rng.random(40) < 0.15
            terminateds[-1] = ends_terminated
            rewards = rng.normal(size=40)
            got = _call_returns(discounted_returns, rewards, terminateds, gamma)
            want = _reference_returns(rewards, terminateds, gamma)
            if not np.allclose(got, want, atol=1e-6):
                first = first_difference(got, want, atol=1e-6)
                raise CheckFailed(
                    "4.1",
                    f"on 40 random rewards with {int(terminateds.sum())} episode ends and "
                    f"gamma={gamma}, the returns first differ at step {first}: got "
                    f"{got[first]:.4f}, expected {want[first]:.4f}.",
                )
    passed(
        "4.1",
        "returns run backward, restart after each episode end, and match the reference for "
        "gamma in {0, 0.5, 0.9, 0.99, 1}.",
    )


# --- Exercise 4.2: value iteration ------------------------------------------------------------


def _random_mdp(seed: int, num_states: int = 6, num_actions: int = 3, gamma: float = 0.95):
    from course_lib.mdp import TabularMDP

    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(num_states), size=(num_states, num_actions))
    return TabularMDP(P, rng.normal(size=(num_states, num_actions)), gamma)


def _call_value_iteration(value_iteration, mdp, case: str):
    what = "value_iteration(P, R, gamma, tol)"
    result = call_learner(
        "4.2",
        what,
        value_iteration,
        mdp.P.copy(),
        mdp.R.copy(),
        mdp.gamma,
        1e-10,
        seconds=TIME_LIMIT_S,
        hint="a while loop whose stopping test never comes true: update V after every sweep and "
        "stop when the largest change is at most tol",
    )
    if not isinstance(result, tuple) or len(result) != 2:
        raise CheckFailed(
            "4.2",
            f"{what} should return a pair (V, policy); got {type(result).__name__} {result!r:.80}.",
        )
    values, policy = (np.asarray(part) for part in result)
    S = mdp.num_states
    if values.shape != (S,) or policy.shape != (S,):
        raise CheckFailed(
            "4.2",
            f"on {case} V and policy should both have shape ({S},), one entry per state; got "
            f"{values.shape} and {policy.shape}. Did you take max and argmax over axis=1 (the "
            "actions)?",
        )
    if not np.issubdtype(policy.dtype, np.integer):
        raise CheckFailed(
            "4.2", f"the policy should hold integer action ids (argmax); got dtype {policy.dtype}."
        )
    return values.astype(np.float64), policy


def _check_values(mdp, values, case: str, closed_form=None) -> None:
    from course_lib.mdp import policy_evaluation, q_from_v, value_iteration

    want, _ = value_iteration(mdp)
    if np.allclose(values, want, atol=1e-6):
        return
    uniform = np.full((mdp.num_states, mdp.num_actions), 1.0 / mdp.num_actions)
    if np.allclose(values, policy_evaluation(mdp, uniform), atol=1e-4):
        raise CheckFailed(
            "4.2",
            f"on {case} you computed the values of the uniform random policy: you averaged Q over "
            "the actions. The optimality equation takes the max: V[s] = max_a Q[s, a].",
        )
    worst = _min_backup_fixed_point(mdp)
    if np.allclose(values, worst, atol=1e-4):
        raise CheckFailed(
            "4.2",
            f"on {case} you took the min over actions; value iteration takes the max.",
        )
    residual = np.max(np.abs(q_from_v(mdp, values).max(axis=1) - values))
    if residual > 1e-4:
        raise CheckFailed(
            "4.2",
            f"on {case} your V does not satisfy the Bellman optimality equation yet: one more "
            f"backup changes it by up to {residual:.3g}. Did you stop too early (keep sweeping "
            "until the largest change is <= tol), or forget gamma or the sum over s' "
            "(P[s, a, :] @ V)?",
        )
    expected = want if closed_form is None else closed_form
    raise CheckFailed(
        "4.2",
        f"on {case} V should be {expected.round(4).tolist()}; got {values.round(4).tolist()}.",
    )


def _min_backup_fixed_point(mdp) -> np.ndarray:
    values = np.zeros(mdp.num_states)
    for _ in range(2000):
        values = (mdp.R + mdp.gamma * mdp.P @ values).min(axis=1)
    return values


def _check_policy(mdp, policy, case: str) -> None:
    from course_lib.mdp import q_from_v, value_iteration

    Q = q_from_v(mdp, value_iteration(mdp)[0])
    if np.any(policy < 0) or np.any(policy >= mdp.num_actions):
        raise CheckFailed(
            "4.2",
            f"on {case} the policy holds {policy.tolist()}; actions are 0..{mdp.num_actions - 1}.",
        )
    chosen = Q[np.arange(mdp.num_states), policy]
    bad = np.flatnonzero(chosen < Q.max(axis=1) - 1e-6)
    if not len(bad):
        return
    if np.array_equal(policy, mdp.R.argmax(axis=1)):
        raise CheckFailed(
            "4.2",
            f"on {case} your policy is greedy on the immediate reward R; it must be greedy on "
            "Q = R + gamma * P @ V, which counts what comes after the step too.",
        )
    s = int(bad[0])
    raise CheckFailed(
        "4.2",
        f"on {case} policy[{s}] = {policy[s]}, but Q[{s}] = {Q[s].round(4).tolist()}: the "
        "policy should pick argmax_a Q[s, a] with Q computed from your final V.",
    )


def check_value_iteration(value_iteration) -> None:
    """Exercise 4.2: ``value_iteration(P, R, gamma, tol)`` returns V* (S,) and a greedy policy."""
    from course_lib.mdp import TabularMDP, chain_mdp

    require_callable("check_value_iteration", "value_iteration", value_iteration)
    chain = chain_mdp(4, gamma=0.9)
    closed_form = np.array([0.9**2, 0.9, 1.0, 0.0])
    values, policy = _call_value_iteration(value_iteration, chain, "the 4-state chain")
    if np.allclose(values, [1.0, 1.0, 1.0, 0.0], atol=1e-6):
        raise CheckFailed(
            "4.2",
            "on the 4-state chain your V is [1, 1, 1, 0], the undiscounted values: multiply the "
            "next state's value by gamma (Q = R + gamma * P @ V).",
        )
    _check_values(chain, values, "the 4-state chain (gamma=0.9)", closed_form)
    _check_policy(chain, policy, "the 4-state chain (gamma=0.9)")
    myopic = TabularMDP(chain.P, chain.R, 0.0)
    values, policy = _call_value_iteration(value_iteration, myopic, "the chain with gamma=0")
    _check_values(myopic, values, "the chain with gamma=0", chain.R.max(axis=1))
    for seed in (1, 2):
        mdp = _random_mdp(seed)
        case = f"a random 6-state, 3-action MDP (seed {seed}, gamma=0.95)"
        values, policy = _call_value_iteration(value_iteration, mdp, case)
        _check_values(mdp, values, case)
        _check_policy(mdp, policy, case)
    passed(
        "4.2",
        "V matches the closed form on the chain and the reference on random MDPs, and the "
        "policy is greedy with respect to it.",
    )


# --- Exercise 4.3: Monte Carlo policy gradient on the bandit ---------------------------------


def _call_gradient(mc_policy_gradient, theta, arm_means, n_samples, seed, baseline):
    what = "mc_policy_gradient(theta, arm_means, n_samples, rng, baseline)"
    got = mc_policy_gradient(
        np.array(theta, dtype=np.float64),
        np.array(arm_means, dtype=np.float64),
        n_samples,
        np.random.default_rng(seed),
        baseline,
    )
    return expect_array(
        "4.3", what, got, (2,), "the gradient with respect to theta, averaged over the samples"
    )


def _biased_expectations(theta, arm_means, baseline):
    """What typical wrong estimators converge to, each with the message that names it."""
    from course_lib.mdp import bandit_policy_gradient, softmax

    pi = softmax(theta)
    advantage = np.asarray(arm_means) - baseline
    score = np.eye(2) - pi  # row a: grad log pi(a)
    right = bandit_policy_gradient(theta, arm_means)
    return [
        (
            -right,
            "the sign is flipped: the gradient of log pi(a) for a softmax is onehot(a) - pi, "
            "not pi - onehot(a).",
        ),
        (
            pi * advantage,
            "you used onehot(a) as the gradient of log pi(a); for a softmax it is onehot(a) - pi. "
            "Without the - pi your estimate is biased.",
        ),
        (
            pi @ (pi[:, None] * score * advantage[:, None]),
            "your estimate is biased: did you forget the log-derivative? You multiplied the "
            "reward by grad pi(a); the estimator needs grad log pi(a) = grad pi(a) / pi(a) = "
            "onehot(a) - pi.",
        ),
        (
            0.5 * (score * advantage[:, None]).sum(axis=0),
            "your estimate is biased: the actions must be drawn from the policy pi = "
            "softmax(theta) (rng.choice(2, size=n_samples, p=pi)), not uniformly.",
        ),
        (
            right - baseline,
            "you subtracted the baseline from the gradient; subtract it from the reward: "
            "(onehot(a) - pi) * (r - baseline).",
        ),
    ]


def check_mc_policy_gradient(mc_policy_gradient) -> None:
    """Exercise 4.3: an unbiased score-function estimate, within 5 standard errors of the exact
    gradient, whose variance a baseline reduces."""
    from course_lib.mdp import bandit_gradient_variance, bandit_policy_gradient

    require_callable("check_mc_policy_gradient", "mc_policy_gradient", mc_policy_gradient)
    first = _call_gradient(mc_policy_gradient, [0.0, 0.0], [1.0, 2.0], 1000, 7, 0.0)
    again = _call_gradient(mc_policy_gradient, [0.0, 0.0], [1.0, 2.0], 1000, 7, 0.0)
    other = _call_gradient(mc_policy_gradient, [0.0, 0.0], [1.0, 2.0], 1000, 8, 0.0)
    if not np.array_equal(first, again) or np.array_equal(first, other):
        raise CheckFailed(
            "4.3",
            "your estimate does not follow the rng it is given (the same seed gave different "
            "results, or two seeds the same one). Draw actions and noise with rng.choice and "
            "rng.normal, not np.random.",
        )
    n = 20_000
    cases = [
        ([0.0, 0.0], [1.0, 2.0], 0.0),
        ([1.0, -0.5], [1.0, 2.0], 0.0),
        ([-0.5, 0.5], [-1.0, 3.0], 0.0),
        ([0.5, 0.0], [1.0, 2.0], 1.5),
    ]
    for index, (theta, arm_means, baseline) in enumerate(cases):
        got = _call_gradient(mc_policy_gradient, theta, arm_means, n, 100 + index, baseline)
        want = bandit_policy_gradient(theta, arm_means)
        # The mean of n independent samples has standard error sqrt(var / n); 5 of them make a
        # right answer fail less than once in a million checks.
        tolerance = 5 * np.sqrt(bandit_gradient_variance(theta, arm_means, baseline) / n)
        if np.all(np.abs(got - want) <= tolerance):
            continue
        case = f"theta={theta}, arm_means={arm_means}, baseline={baseline}, n_samples={n}"
        if np.allclose(got / n, want, atol=tolerance.max()):
            raise CheckFailed(
                "4.3",
                f"with {case} your estimate is about n_samples times the gradient: you summed the "
                "per-sample terms; average them (.mean(axis=0)).",
            )
        for wrong, message in _biased_expectations(theta, arm_means, baseline):
            if np.all(np.abs(got - wrong) <= tolerance):
                raise CheckFailed("4.3", f"with {case}: {message}")
        raise CheckFailed(
            "4.3",
            f"with {case} your estimate {got.round(4).tolist()} is further than 5 standard "
            f"errors ({tolerance.round(4).tolist()}) from the exact gradient "
            f"{want.round(4).tolist()}. Is it the mean of (onehot(a) - pi) * (r - baseline), "
            "with a ~ pi and r = arm_means[a] + noise?",
        )
    single = {
        baseline: np.array(
            [
                _call_gradient(mc_policy_gradient, [0.0, 0.0], [1.0, 2.0], 1, seed, baseline)
                for seed in range(2000)
            ]
        ).var(axis=0)[1]
        for baseline in (0.0, 1.5)
    }
    if single[1.5] > 0.6 * single[0.0]:
        raise CheckFailed(
            "4.3",
            f"a baseline of 1.5 (the mean reward) should cut the variance of one-sample estimates "
            f"about threefold; yours went from {single[0.0]:.3f} to {single[1.5]:.3f}. Subtract "
            "the baseline from each reward: (onehot(a) - pi) * (r - baseline).",
        )
    passed(
        "4.3",
        f"on {len(cases)} bandits your estimate is within 5 standard errors of the exact "
        f"gradient, and the baseline cut its variance {single[0.0] / single[1.5]:.1f}-fold.",
    )
