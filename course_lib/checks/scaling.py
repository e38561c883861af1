"""Graders for notebooks/15_scaling_out.ipynb: IMPALA's V-trace targets, and the ES update.

Each compares your function with the library's own code (``vtrace_from_importance_weights`` and
the ES module's functions) on inputs built so that every usual mistake gives different numbers,
and names the mistake it recognizes. The wrong answers are the library's functions fed altered
inputs (a threshold left out, the discounts set to 1...), so the grader holds no second copy of
the math.
"""

from __future__ import annotations

import numpy as np

from ._common import (
    CheckFailed,
    expect_array,
    first_difference,
    name_known_mistake,
    passed,
    require_callable,
)
from ._learner_calls import call_learner

# A right answer takes milliseconds; the limit only catches a loop that never ends.
TIME_LIMIT_S = 20.0
_HANG_HINT = "a loop over the time steps whose index never reaches its end"

# --- Exercise 15.1: the V-trace targets ----------------------------------------------------------

# The lesson's fragment: T=5 steps of B=3 actors (T != B, so a transposed answer shows). Fragment 0
# ends after step 1 and fragment 2 after step 3 (discount 0 there); the importance ratios fall
# below, between and above the thresholds, so each usual mistake gives its own targets.
_GAMMA = 0.9
_RHOS = np.array(
    [
        [0.5, 1.6, 1.0],
        [1.3, 0.7, 2.5],
        [0.9, 3.0, 0.6],
        [2.0, 0.4, 1.2],
        [0.8, 1.1, 0.3],
    ]
)
_TERMINATEDS = np.zeros((5, 3), dtype=bool)
_TERMINATEDS[1, 0] = _TERMINATEDS[3, 2] = True
_REWARDS = np.array(
    [
        [1.0, 0.0, 1.0],
        [-1.0, 1.0, 0.5],
        [1.0, 1.0, 0.0],
        [0.0, 2.0, 1.0],
        [1.0, -0.5, 1.0],
    ]
)
_VALUES = np.array(
    [
        [2.0, 3.0, 1.0],
        [1.5, 2.5, 1.5],
        [4.0, 2.0, 2.0],
        [3.0, 1.0, 0.5],
        [2.5, 1.5, 3.0],
    ]
)
_BOOTSTRAP = np.array([2.0, 4.0, 1.0])


def _lesson_fragment() -> tuple:
    """``(log_rhos, discounts, rewards, values, bootstrap_value)`` of the lesson's fragment."""
    discounts = _GAMMA * (1.0 - _TERMINATEDS)
    return np.log(_RHOS), discounts, _REWARDS.copy(), _VALUES.copy(), _BOOTSTRAP.copy()


def _reference_vtrace(log_rhos, discounts, rewards, values, bootstrap_value, rho_bar, c_bar):
    """The library's V-trace, ``(vs, pg_advantages)`` as float64 arrays (T, B)."""
    from course_lib.agents.impala.vtrace import vtrace_from_importance_weights

    result = vtrace_from_importance_weights(
        log_rhos,
        discounts,
        rewards,
        values,
        bootstrap_value,
        clip_rho_threshold=rho_bar,
        clip_c_threshold=c_bar,
    )
    return result.vs.numpy().astype(np.float64), result.pg_advantages.numpy().astype(np.float64)


def _reference_vs(*args) -> np.ndarray:
    return _reference_vtrace(*args)[0]


def _next_values(values, bootstrap_value) -> np.ndarray:
    """``V(x_{t+1})`` (T, B): the values shifted up by one step, the bootstrap value last."""
    return np.concatenate([values[1:], bootstrap_value[None]], axis=0)


def _vtrace_mistakes(log_rhos, discounts, rewards, values, bootstrap_value, rho_bar, c_bar):
    """What the usual wrong answers give on these inputs, each with the message that names it.

    Each is the library's V-trace on altered inputs. Two use a rewrite of the TD error:
    ``delta_t = rho_t (r_t + g * V(x_{t+1}) - V(x_t))`` is the same number for discounts ``g``
    and rewards ``r_t + (discounts_t - g) * V(x_{t+1})``, which moves the discount out of (or
    into) the TD error while the trace keeps the discounts it is given.
    """
    vs, pg_advantages = _reference_vtrace(
        log_rhos, discounts, rewards, values, bootstrap_value, rho_bar, c_bar
    )
    next_values = _next_values(values, bootstrap_value)
    ones = np.ones_like(discounts)

    def vtrace(
        log_rhos=log_rhos,
        discounts=discounts,
        rewards=rewards,
        bootstrap=bootstrap_value,
        rho_bar=rho_bar,
        c_bar=c_bar,
    ):
        return _reference_vs(log_rhos, discounts, rewards, values, bootstrap, rho_bar, c_bar)

    return [
        (
            vtrace(rho_bar=None, c_bar=None),
            "neither rho nor c is truncated. Clip the importance ratios rho_t = exp(log_rhos) "
            "twice: rho_bar_t = min(clip_rho_threshold, rho_t) weights the TD error delta_t, "
            "c_t = min(clip_c_threshold, rho_t) the trace.",
        ),
        (
            vtrace(rho_bar=None),
            "the TD errors are weighted by the raw rho_t; V-trace truncates it: "
            "delta_t = min(clip_rho_threshold, rho_t) * (r_t + discounts_t * V(x_{t+1}) - V(x_t)).",
        ),
        (
            vtrace(c_bar=None),
            "the trace coefficients c_t are not truncated: c_t = min(clip_c_threshold, rho_t). "
            "A product of raw ratios can grow without bound, which is what the clipping prevents.",
        ),
        (
            vtrace(c_bar=rho_bar),
            "your c_t is clipped at clip_rho_threshold; it has its own threshold: "
            "c_t = min(clip_c_threshold, rho_t).",
        ),
        (
            vtrace(rho_bar=c_bar),
            "your rho_bar_t is clipped at clip_c_threshold; the TD error's weight has its own "
            "threshold: rho_bar_t = min(clip_rho_threshold, rho_t).",
        ),
        (
            vtrace(log_rhos=np.zeros_like(log_rhos)),
            "your targets ignore the importance ratios: these are the on-policy n-step returns. "
            "Weight each TD error by rho_bar_t and the trace by c_t, both from exp(log_rhos).",
        ),
        (
            vtrace(discounts=ones),
            "the discounts never enter: both the TD error r_t + discounts_t * V(x_{t+1}) - V(x_t) "
            "and the trace v_s - V(x_s) = delta_s + discounts_s * c_s * (v_{s+1} - V(x_{s+1})) "
            "use them. They are gamma, and 0 after the step that ended an episode.",
        ),
        (
            vtrace(discounts=ones, rewards=rewards + (discounts - 1.0) * next_values),
            "the trace does not stop at the end of an episode: carry the correction backwards "
            "with discounts_s * c_s * (v_{s+1} - V(x_{s+1})), not c_s * (...) alone. discounts_s "
            "is 0 after the step that ended an episode, which cuts the trace there.",
        ),
        (
            vtrace(rewards=rewards + (1.0 - discounts) * next_values),
            "the TD error has no discount: delta_t = rho_bar_t * (r_t + discounts_t * "
            "V(x_{t+1}) - V(x_t)). Without it, it also bootstraps across the end of an episode.",
        ),
        (
            vtrace(bootstrap=np.zeros_like(bootstrap_value)),
            "the value after the last step is taken as 0. Use bootstrap_value, V(x_T), as "
            "V(x_{t+1}) of the last step and as v_T where the backward pass starts.",
        ),
        (
            vtrace(bootstrap=values[-1]),
            "the last step bootstraps from values[-1], its own state's value; the state after "
            "it is bootstrap_value, V(x_T).",
        ),
        (
            vtrace(rho_bar=1.0, c_bar=1.0),
            "your code clips at 1.0 whatever thresholds it is given: use clip_rho_threshold for "
            "rho_bar_t and clip_c_threshold for c_t.",
        ),
        (
            vs - values,
            "you returned v_s - V(x_s) (the corrections, which with equal thresholds are also "
            "the actor's advantages); the targets are v_s = V(x_s) + that: add values.",
        ),
        (
            pg_advantages,
            "you returned the policy-gradient advantages rho_bar_s * (r_s + discounts_s * "
            "v_{s+1} - V(x_s)); the exercise asks for the value targets v_s themselves.",
        ),
    ]


def _call_vtrace(vtrace_targets, case: str, args) -> np.ndarray:
    log_rhos, discounts, rewards, values, bootstrap_value, rho_bar, c_bar = args
    what = (
        "vtrace_targets(log_rhos, discounts, rewards, values, bootstrap_value, "
        "clip_rho_threshold, clip_c_threshold)"
    )
    copies = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    got = call_learner("15.1", what, vtrace_targets, *copies, seconds=TIME_LIMIT_S, hint=_HANG_HINT)
    steps, actors = values.shape
    hints = {
        (actors, steps): " That is (B, T): keep the inputs' time-major layout, step t of "
        "fragment b at [t, b].",
        (steps + 1, actors): " Drop the row of the bootstrap value: one target per step.",
    }
    return expect_array(
        "15.1",
        f"on {case} {what}",
        got,
        (steps, actors),
        "one target per step and fragment",
        hints,
    )


def _compare_vtrace(vtrace_targets, case: str, args) -> None:
    got = _call_vtrace(vtrace_targets, case, args)
    want = _reference_vs(*args)
    if np.allclose(got, want, atol=1e-4):
        return
    name_known_mistake("15.1", got, _vtrace_mistakes(*args), f"on {case} ", atol=1e-4)
    t, b = np.unravel_index(first_difference(got, want, atol=1e-4), want.shape)
    raise CheckFailed(
        "15.1",
        f"on {case} the targets first differ at step {t} of fragment {b}: got "
        f"{got[t, b]:.4f}, expected {want[t, b]:.4f}. Backwards from v_T = bootstrap_value: "
        "v_s = V(x_s) + delta_s + discounts_s * c_s * (v_{s+1} - V(x_{s+1})).",
    )


def check_vtrace_targets(vtrace_targets) -> None:
    """Exercise 15.1: the V-trace targets ``vs`` (T, B) of a time-major fragment."""
    require_callable("check_vtrace_targets", "vtrace_targets", vtrace_targets)
    fragment = _lesson_fragment()
    _compare_vtrace(
        vtrace_targets,
        "the lesson's fragment (T=5, B=3, thresholds 1.0 and 1.0)",
        (*fragment, 1.0, 1.0),
    )
    _compare_vtrace(
        vtrace_targets,
        "the lesson's fragment with clip_rho_threshold=2.0, clip_c_threshold=0.5",
        (*fragment, 2.0, 0.5),
    )
    rng = np.random.default_rng(15)
    for steps, actors, rho_bar, c_bar in ((20, 4, 1.0, 1.0), (7, 2, 1.5, 0.9), (9, 3, np.inf, 1.0)):
        args = (
            rng.normal(0.0, 0.7, (steps, actors)),
            0.99 * (rng.random((steps, actors)) > 0.1),
            rng.normal(size=(steps, actors)),
            rng.normal(size=(steps, actors)),
            rng.normal(size=actors),
            rho_bar,
            c_bar,
        )
        case = (
            f"a random fragment (T={steps}, B={actors}, gamma=0.99, clip_rho_threshold="
            f"{rho_bar}, clip_c_threshold={c_bar})"
        )
        got = _call_vtrace(vtrace_targets, case, args)
        want = _reference_vs(*args)
        if not np.allclose(got, want, atol=1e-4):
            t, b = np.unravel_index(first_difference(got, want, atol=1e-4), want.shape)
            raise CheckFailed(
                "15.1",
                f"on {case} the targets first differ at step {t} of fragment {b}: got "
                f"{got[t, b]:.4f}, expected {want[t, b]:.4f}. Does your code use the thresholds "
                "it is given, and work for any T and B?",
            )
    passed(
        "15.1",
        "your V-trace targets truncate rho and c at their own thresholds, stop at episode ends, "
        "bootstrap from V(x_T), and match the library's on random fragments.",
    )


# --- Exercise 15.2: the ES gradient from the tasks' results --------------------------------------

# The lesson's results: 6 antithetic pairs of a 7-parameter policy, sigma 0.05 (neither 1 nor
# 1 / (2n)), one outlier return (raw returns and ranks then point different ways), no ties (each
# rank is then unique, however it treats ties).
_ES_NUM_PARAMS = 7
_ES_NOISE_STDEV = 0.05
_ES_OFFSETS = np.array([3, 250, 91, 17, 160, 402])
_ES_RETURNS = np.array(
    [
        [21.0, 14.0],
        [9.0, 35.0],
        [480.0, 12.0],
        [17.0, 18.0],
        [26.0, 11.0],
        [10.0, 30.0],
    ]
)


def _es_noise(size: int = 500, seed: int = 15) -> np.ndarray:
    from course_lib.agents.es.es import create_noise_table

    return create_noise_table(size, seed)


def _reference_es_gradient(noise, offsets, returns, num_params, noise_stdev) -> np.ndarray:
    """The ES module's own estimate: ``estimate_gradient`` on ``centered_ranks(returns)``."""
    from course_lib.agents.es.es import centered_ranks, estimate_gradient

    weights = centered_ranks(returns)
    return estimate_gradient(noise, offsets, weights, num_params, noise_stdev).astype(np.float64)


def _es_mistakes(noise, offsets, returns, num_params, noise_stdev):
    """What the usual wrong gradients give on these inputs, each with the message that names it:
    the ES module's ``estimate_gradient`` on other weights, or the right one rescaled."""
    from course_lib.agents.es.es import centered_ranks, estimate_gradient

    def gradient(weights):
        return estimate_gradient(noise, offsets, weights, num_params, noise_stdev).astype(
            np.float64
        )

    right = _reference_es_gradient(noise, offsets, returns, num_params, noise_stdev)
    ranks = centered_ranks(returns)
    pairs = len(offsets)
    per_column = np.stack([centered_ranks(returns[:, 0]), centered_ranks(returns[:, 1])], axis=1)
    only_plus = np.stack([ranks[:, 0], np.zeros(pairs)], axis=1)
    return [
        (
            gradient(returns),
            "you weighted the noise with the raw returns (or the returns minus their mean, which "
            "gives the same differences). ES uses their centered ranks: each return's rank among "
            "all 2n returns, scaled to [-0.5, 0.5], so that one lucky episode (the 480 here) "
            "cannot dominate the step.",
        ),
        (
            -right,
            "your gradient points the wrong way: the weight of eps_i is F(theta + sigma eps_i) - "
            "F(theta - sigma eps_i), column 0 minus column 1 of the (centered-ranked) returns, "
            "and a higher return must get a higher rank.",
        ),
        (
            gradient(per_column),
            "you ranked each column on its own; rank all 2n returns together (both columns), "
            "so that the + and - episodes of a pair are compared on one scale.",
        ),
        (
            gradient((ranks + 0.5) * (ranks.size - 1)),
            "your ranks are not scaled: divide the ranks 0 ... 2n-1 by 2n - 1 and subtract 0.5, "
            "so they lie in [-0.5, 0.5] whatever the number of episodes.",
        ),
        (
            right * pairs,
            "the sum over the pairs is not divided by their number: the estimate is "
            "1 / (2 n sigma) * sum_i (w_i+ - w_i-) * eps_i, an average over the n pairs.",
        ),
        (
            right * 2,
            "the sum is divided by n sigma; the antithetic estimate divides by 2 n sigma "
            "(each pair is two episodes).",
        ),
        (
            right * noise_stdev,
            "sigma is missing from the denominator (or you multiplied the noise by sigma, which "
            "gives the same numbers): the estimate is 1 / (2 n sigma) * sum_i (w_i+ - w_i-) * "
            "eps_i, with eps_i the noise table's slice itself.",
        ),
        (
            right / noise_stdev,
            "you divided by sigma twice (or by sigma squared): the estimate is "
            "1 / (2 n sigma) * sum_i (w_i+ - w_i-) * eps_i, with eps_i the unscaled noise.",
        ),
        (
            gradient(only_plus),
            "only the theta + sigma eps episodes count in your estimate; each pair contributes "
            "(w_i+ - w_i-) * eps_i, its two ranks' difference.",
        ),
        (
            2 * gradient(only_plus),
            "only the theta + sigma eps episodes count in your estimate; each pair contributes "
            "(w_i+ - w_i-) * eps_i, its two ranks' difference.",
        ),
    ]


def _call_es_gradient(es_gradient, case: str, args) -> np.ndarray:
    noise, offsets, returns, num_params, noise_stdev = args
    what = "es_gradient(noise, offsets, returns, num_params, noise_stdev)"
    got = call_learner(
        "15.2",
        what,
        es_gradient,
        noise,  # read-only, like the object store's view of the noise table
        offsets.copy(),
        returns.copy(),
        num_params,
        noise_stdev,
        seconds=TIME_LIMIT_S,
        hint="a loop over the pairs that never ends",
    )
    pairs = len(offsets)
    hints = {
        (pairs, num_params): " That is one row per pair: sum the weighted noise over the pairs.",
        (pairs,): " That is one number per pair: multiply each pair's weight by its noise "
        "vector eps_i (num_params,) and sum.",
        (pairs, 2): " That is one number per episode, the ranks: the gradient is their "
        "pairwise differences times the noise vectors, summed.",
    }
    return expect_array(
        "15.2", f"on {case} {what}", got, (num_params,), "one entry per parameter", hints
    )


def _read_only(noise: np.ndarray) -> np.ndarray:
    view = noise.view()
    view.flags.writeable = False
    return view


def check_es_gradient(es_gradient) -> None:
    """Exercise 15.2: the ES gradient estimate (num_params,) from the tasks' offsets and returns."""
    require_callable("check_es_gradient", "es_gradient", es_gradient)
    noise = _read_only(_es_noise())
    args = (noise, _ES_OFFSETS, _ES_RETURNS, _ES_NUM_PARAMS, _ES_NOISE_STDEV)
    case = "the lesson's 6 pairs (7 parameters, sigma=0.05)"
    got = _call_es_gradient(es_gradient, case, args)
    want = _reference_es_gradient(*args)
    if not np.allclose(got, want, rtol=1e-4, atol=1e-5):
        name_known_mistake("15.2", got, _es_mistakes(*args), f"on {case} ", rtol=1e-4, atol=1e-5)
        first = first_difference(got, want, rtol=1e-4, atol=1e-5)
        raise CheckFailed(
            "15.2",
            f"on {case} the gradient should be {want.round(4).tolist()}; got "
            f"{got.round(4).tolist()} (first difference at parameter {first}). It is "
            "1 / (2 n sigma) * sum_i (w_i+ - w_i-) * eps_i, with w the centered ranks of all 2n "
            "returns and eps_i = noise[offsets[i] : offsets[i] + num_params].",
        )
    rng = np.random.default_rng(15)
    big_noise = _read_only(_es_noise(5000, seed=16))
    for pairs, num_params, noise_stdev in ((32, 50, 0.02), (5, 3, 0.5)):
        # Distinct returns: no ties, so any correct ranking gives the same ranks.
        returns = rng.permutation(2 * pairs).reshape(pairs, 2) * 3.0 + rng.random((pairs, 2))
        offsets = rng.integers(0, len(big_noise) - num_params + 1, size=pairs)
        args = (big_noise, offsets, returns, num_params, noise_stdev)
        case = f"{pairs} random pairs ({num_params} parameters, sigma={noise_stdev})"
        got = _call_es_gradient(es_gradient, case, args)
        want = _reference_es_gradient(*args)
        if not np.allclose(got, want, rtol=1e-4, atol=1e-5):
            first = first_difference(got, want, rtol=1e-4, atol=1e-5)
            raise CheckFailed(
                "15.2",
                f"on {case} the gradients first differ at parameter {first}: got "
                f"{got[first]:.5f}, expected {want[first]:.5f}. Does your code use the "
                "num_params and noise_stdev it is given, and work for any number of pairs?",
            )
    passed(
        "15.2",
        "your gradient ranks all 2n returns, weights each noise slice by its pair's difference, "
        "divides by 2 n sigma, and matches the ES module's estimate on random results.",
    )
