"""Graders for notebooks/17_offline_rl.ipynb: the IS and WIS off-policy estimators, and MARWIL's
advantage weights. The references are course_lib's own estimators and loss formula."""

from __future__ import annotations

import numpy as np

from ._common import (
    CheckFailed,
    expect_array,
    expect_pair,
    first_difference,
    name_known_mistake,
    passed,
    require_callable,
)

# --- Exercise 17.1: IS and WIS from per-step probabilities ---------------------------------------


def _reference_estimates(rewards, behaviour_probs, target_probs, gamma) -> tuple[float, float]:
    """(IS, WIS): course_lib's estimators (course_lib/offline/off_policy_estimator.py), averaged."""
    from course_lib.offline import ImportanceSampling, WeightedImportanceSampling

    ratios = [
        np.cumprod(np.asarray(t) / np.asarray(b))
        for b, t in zip(behaviour_probs, target_probs, strict=True)
    ]
    rewards = [np.asarray(r, dtype=np.float64) for r in rewards]
    return tuple(
        float(np.mean(estimator(None, gamma)._targets(rewards, ratios)))
        for estimator in (ImportanceSampling, WeightedImportanceSampling)
    )


def _discounted(values, gamma, offset=0) -> float:
    return float(np.sum(gamma ** (np.arange(len(values)) + offset) * values))


def _typical_mistakes(rewards, behaviour_probs, target_probs, gamma):
    """(IS, WIS) pairs of the usual wrong answers, each with the message that names it."""
    b = [np.asarray(x, dtype=np.float64) for x in behaviour_probs]
    t = [np.asarray(x, dtype=np.float64) for x in target_probs]
    r = [np.asarray(x, dtype=np.float64) for x in rewards]
    right_is, right_wis = _reference_estimates(r, b, t, gamma)

    def is_and_wis(ratios, discount=lambda v: _discounted(v, gamma)):
        is_ = np.mean([discount(ri * pi) for ri, pi in zip(r, ratios, strict=True)])
        longest = max(len(p) for p in ratios)
        held = np.stack([np.pad(p, (0, longest - len(p)), mode="edge") for p in ratios])
        mean = held.mean(axis=0)
        wis = np.mean(
            [discount(ri * pi / mean[: len(pi)]) for ri, pi in zip(r, ratios, strict=True)]
        )
        return is_, wis

    cumulative = [np.cumprod(ti / bi) for bi, ti in zip(b, t, strict=True)]
    running_only = []  # WIS normalised over the episodes still running at t (RLlib 2021's form)
    longest = max(len(p) for p in cumulative)
    for step in range(longest):
        alive = [p[step] for p in cumulative if len(p) > step]
        running_only.append(np.mean(alive))
    running_only = np.array(running_only)
    wis_running = np.mean(
        [
            _discounted(ri * pi / running_only[: len(pi)], gamma)
            for ri, pi in zip(r, cumulative, strict=True)
        ]
    )
    n = len(r)
    return [
        (
            is_and_wis([np.cumprod(bi / ti) for bi, ti in zip(b, t, strict=True)]),
            "the ratio is upside down: importance sampling weighs by target / behaviour, "
            "pi(a|s) / b(a|s) (target_probs / behaviour_probs), the factor that turns the "
            "behaviour's probability of the episode into the target's.",
        ),
        (
            is_and_wis([ti / bi for bi, ti in zip(b, t, strict=True)]),
            "you weighted each reward by its own step's ratio only. The reward at step t depends "
            "on every action up to t, so it needs the product of the ratios up to t: "
            "p_t = prod_{i<=t} pi_i / b_i (np.cumprod).",
        ),
        (
            is_and_wis([np.full(len(p), p[-1]) for p in cumulative]),
            "you weighted every reward of an episode by the episode's final ratio p_T. That is "
            "whole-trajectory importance sampling; the per-decision form asked for weighs r_t by "
            "p_t, the product of the ratios up to t only (later actions cannot change r_t).",
        ),
        (
            is_and_wis(cumulative, discount=lambda v: float(np.sum(v))),
            "the estimates are not discounted: weigh the reward of step t by gamma**t "
            "(sum_t gamma**t * p_t * r_t).",
        ),
        (
            is_and_wis(cumulative, discount=lambda v: _discounted(v, gamma, offset=1)),
            "the discount is one step off: the first reward of an episode (t = 0) counts fully, "
            "gamma**0 = 1; use gamma**t, not gamma**(t + 1).",
        ),
        (
            is_and_wis(cumulative, discount=lambda v: _discounted(v[::-1], gamma)),
            "the discount runs backwards: gamma**t with t counted from the episode's start, so "
            "the first reward is weighed by 1 and later ones less.",
        ),
        (
            (right_is, right_is),
            "your WIS equals IS: WIS divides each p_t by w_t, the mean of p_t over all the "
            "episodes (an ended episode counting with its last ratio).",
        ),
        (
            (right_is, right_wis / n),
            "your WIS is n times too small: normalise p_t by the *mean* of p_t over the episodes "
            "(w_t = mean), not by their sum.",
        ),
        (
            (right_is, wis_running),
            "your WIS averages p_t only over the episodes still running at step t. Average over "
            "all episodes, an episode that ended before t counting with its last ratio (np.pad "
            "with mode='edge'): in an episode that has ended, both policies act alike.",
        ),
        (
            (right_is * n, right_wis * n),
            "you summed the per-episode estimates; the estimate is their mean over the episodes.",
        ),
    ]


def _random_episodes(seed: int, lengths):
    rng = np.random.default_rng(seed)
    rewards = [rng.uniform(0.0, 2.0, size=n) for n in lengths]
    behaviour = [rng.uniform(0.2, 0.9, size=n) for n in lengths]
    target = [rng.uniform(0.1, 1.0, size=n) for n in lengths]
    return rewards, behaviour, target


def _call_estimates(off_policy_estimates, rewards, behaviour, target, gamma):
    what = "off_policy_estimates(rewards, behaviour_probs, target_probs, gamma)"
    got = off_policy_estimates(
        [np.array(x) for x in rewards],
        [np.array(x) for x in behaviour],
        [np.array(x) for x in target],
        gamma,
    )
    got = expect_pair("17.1", what, got, "a pair (is_estimate, wis_estimate) of numbers")
    try:
        values = tuple(float(np.asarray(v).item()) for v in got)
    except (TypeError, ValueError):
        raise CheckFailed(
            "17.1",
            f"{what} should return two numbers, the means over the episodes; got {got!r:.80}. "
            "Average the per-episode estimates (np.mean).",
        ) from None
    return values


def _compare(got, rewards, behaviour, target, gamma, case: str) -> None:
    want = _reference_estimates(rewards, behaviour, target, gamma)
    if np.allclose(got, want, rtol=1e-6, atol=1e-9):
        return
    mistakes = _typical_mistakes(rewards, behaviour, target, gamma)
    name_known_mistake("17.1", got, mistakes, f"on {case}: ", rtol=1e-6, atol=1e-9)
    which = "IS" if not np.isclose(got[0], want[0], rtol=1e-6) else "WIS"
    raise CheckFailed(
        "17.1",
        f"on {case} the estimates should be IS {want[0]:.4f} and WIS {want[1]:.4f}; got "
        f"{got[0]:.4f} and {got[1]:.4f} (the {which} estimate differs). IS averages "
        "sum_t gamma**t p_t r_t over the episodes, with p_t = prod_{i<=t} target/behaviour; "
        "WIS divides each p_t by its mean over all the episodes first.",
    )


def check_off_policy_estimates(off_policy_estimates) -> None:
    """Exercise 17.1: per-decision IS and WIS estimates, means over the episodes."""
    require_callable("check_off_policy_estimates", "off_policy_estimates", off_policy_estimates)
    cases = [
        # The behaviour itself as target: every ratio is 1, both give the behaviour's return.
        ("the behaviour itself as the target (every ratio 1), gamma=0.9", 1, [3, 5], 0.9, True),
        ("two episodes of lengths 3 and 5, gamma=0.9", 2, [3, 5], 0.9, False),
        ("five episodes of lengths 1 to 9, gamma=0.95", 3, [4, 1, 9, 6, 2], 0.95, False),
        ("three episodes, gamma=1", 4, [6, 3, 7], 1.0, False),
    ]
    for case, seed, lengths, gamma, target_is_behaviour in cases:
        rewards, behaviour, target = _random_episodes(seed, lengths)
        if target_is_behaviour:
            target = behaviour
        got = _call_estimates(off_policy_estimates, rewards, behaviour, target, gamma)
        _compare(got, rewards, behaviour, target, gamma, case)
    passed(
        "17.1",
        "IS and WIS match course_lib's estimators on episodes of different lengths, and give back "
        "the behaviour's own return when the target is the behaviour.",
    )


# --- Exercise 17.2: MARWIL's advantage weights ---------------------------------------------------


def _reference_weights(returns, values, beta, sqd_adv_norm, rate):
    """course_lib's marwil_loss, in NumPy: c**2 moves towards mean(A**2) first, then the weights."""
    advantages = np.asarray(returns, dtype=np.float64) - np.asarray(values, dtype=np.float64)
    new_norm = sqd_adv_norm + rate * (np.mean(advantages**2) - sqd_adv_norm)
    return np.exp(beta * advantages / (1e-8 + np.sqrt(new_norm))), float(new_norm)


def _weight_mistakes(returns, values, beta, sqd_adv_norm, rate):
    advantages = np.asarray(returns) - np.asarray(values)
    weights, new_norm = _reference_weights(returns, values, beta, sqd_adv_norm, rate)
    return [
        (
            _reference_weights(values, returns, beta, sqd_adv_norm, rate)[0],
            "the advantage has the wrong sign: A = returns - values (the action did better than "
            "expected when the return exceeds V(s)), so good actions get weights above 1.",
        ),
        (
            np.exp(beta * advantages),
            "the advantage is not scaled: divide it by c = sqrt(c**2), the running scale of the "
            "advantages, so that beta does not depend on the size of the rewards.",
        ),
        (
            np.exp(beta * advantages / new_norm),
            "you divided the advantage by c**2; divide by c = sqrt(c**2).",
        ),
        (
            np.exp(beta * advantages / np.sqrt(sqd_adv_norm)),
            "you scaled with c**2 from before the update: move c**2 towards mean(A**2) first "
            "(c**2 += rate * (mean(A**2) - c**2)), then use the new value.",
        ),
        (
            np.exp(beta * advantages / np.sqrt(np.mean(advantages**2))),
            "you replaced c**2 by this batch's mean(A**2); it is a moving average that moves "
            "towards it by `rate`: c**2 + rate * (mean(A**2) - c**2).",
        ),
        (
            np.exp(beta * advantages / np.sqrt(rate * np.mean(advantages**2))),
            "c**2 moves *towards* mean(A**2): new c**2 = c**2 + rate * (mean(A**2) - c**2), not "
            "rate * mean(A**2).",
        ),
        (
            np.exp(advantages / np.sqrt(new_norm)),
            "beta is missing: the weight is exp(beta * A / c) (beta = 0 gives every action weight "
            "1, behaviour cloning).",
        ),
    ]


def _call_weights(marwil_weights, returns, values, beta, sqd_adv_norm, rate):
    what = "marwil_weights(returns, values, beta, sqd_adv_norm, rate)"
    got = marwil_weights(np.array(returns), np.array(values), beta, sqd_adv_norm, rate)
    got = expect_pair("17.2", what, got, "a pair (weights, new_sqd_adv_norm)")
    weights, new_norm = got
    weights = expect_array("17.2", what, weights, (len(returns),), "one weight per row")
    try:
        new_norm = float(np.asarray(new_norm).item())
    except (TypeError, ValueError):
        raise CheckFailed(
            "17.2",
            f"the second value of {what} should be the new c**2, a number; got {new_norm!r:.60}.",
        ) from None
    return weights, new_norm


def check_marwil_weights(marwil_weights) -> None:
    """Exercise 17.2: ``exp(beta * A / c)`` with ``c**2`` a moving average of ``mean(A**2)``."""
    require_callable("check_marwil_weights", "marwil_weights", marwil_weights)
    rng = np.random.default_rng(0)
    returns, values = rng.uniform(0, 60, size=32), rng.uniform(0, 60, size=32)
    weights, new_norm = _call_weights(marwil_weights, returns, values, 0.0, 100.0, 0.5)
    if not np.allclose(weights, 1.0):
        raise CheckFailed(
            "17.2",
            f"with beta=0 every weight should be 1 (behaviour cloning); got weights from "
            f"{weights.min():.4g} to {weights.max():.4g}. The weight is exp(beta * A / c).",
        )
    cases = [
        ("beta=1, c**2=100, rate=0.5", 1.0, 100.0, 0.5),
        ("beta=0.5, c**2=400, rate=0.1", 0.5, 400.0, 0.1),
        ("beta=2, c**2=25, rate=0 (c**2 stays)", 2.0, 25.0, 0.0),
    ]
    for case, beta, norm, rate in cases:
        weights, new_norm = _call_weights(marwil_weights, returns, values, beta, norm, rate)
        want_weights, want_norm = _reference_weights(returns, values, beta, norm, rate)
        if not np.isclose(new_norm, want_norm, rtol=1e-6):
            advantages = returns - values
            if np.isclose(new_norm, np.sqrt(want_norm), rtol=1e-6):
                hint = "you returned c; return c**2 (the moving average of mean(A**2))"
            elif np.isclose(new_norm, rate * np.mean(advantages**2), rtol=1e-6):
                hint = "c**2 moves towards mean(A**2): c**2 + rate * (mean(A**2) - c**2)"
            elif np.isclose(new_norm, norm, rtol=1e-6):
                hint = "c**2 did not move: add rate * (mean(A**2) - c**2) to it"
            else:
                hint = "c**2 + rate * (mean(A**2) - c**2), with A = returns - values"
            raise CheckFailed(
                "17.2",
                f"with {case} the new c**2 should be {want_norm:.4f}; got {new_norm:.4f}: {hint}.",
            )
        if np.allclose(weights, want_weights, rtol=1e-6):
            continue
        mistakes = _weight_mistakes(returns, values, beta, norm, rate)
        name_known_mistake("17.2", weights, mistakes, f"with {case}: ", rtol=1e-6)
        first = first_difference(weights, want_weights, rtol=1e-6)
        raise CheckFailed(
            "17.2",
            f"with {case} the weights first differ at row {first}: got {weights[first]:.4f}, "
            f"expected {want_weights[first]:.4f} (A = {returns[first] - values[first]:.3f}). The "
            "weight is exp(beta * A / c) with A = returns - values and c = sqrt of the new c**2.",
        )
    passed(
        "17.2",
        "the weights are exp(beta * A / c) with c**2 updated first, beta=0 gives behaviour "
        "cloning, and the new c**2 matches course_lib's MARWIL loss.",
    )
