"""Graders for notebooks/16_continuous_control.ipynb: SAC's critic target, and the log-density of
a tanh-squashed Gaussian action.

Each compares your function with the library's own code (``bellman_targets`` and
``TorchSquashedGaussian``) on small batches built so that every usual mistake gives a different
number, and names the mistake it recognizes.
"""

from __future__ import annotations

import numpy as np
import torch

from ._common import (
    CheckFailed,
    expect_array,
    first_difference,
    name_known_mistake,
    passed,
    require_callable,
)

# --- Exercise 16.1: the SAC critic target ------------------------------------------------------

# Six transitions: two end the episode (terminated), the twin critics disagree in both
# directions, and alpha is neither 0 nor 1, so each usual mistake gives its own targets.
_REWARDS = np.array([-1.0, -0.5, -2.0, 0.0, -1.5, -0.25])
_TERMINATEDS = np.array([False, True, False, False, True, False])
_NEXT_Q1 = np.array([-10.0, -4.0, -6.0, -2.0, -8.0, -3.0])
_NEXT_Q2 = np.array([-12.0, -3.0, -5.0, -2.5, -9.0, -1.0])
_NEXT_LOGP = np.array([0.5, -1.0, 1.2, -0.3, 0.8, 0.1])
_ALPHA, _GAMMA = 0.2, 0.9


def _reference_sac_target(rewards, terminateds, next_q1, next_q2, next_logp, alpha, gamma):
    """The library's target: ``bellman_targets`` on the soft value ``min(Q1, Q2) - alpha*logp``."""
    from course_lib.agents.ddpg.ddpg_torch_policy import bellman_targets

    soft_next_q = np.minimum(next_q1, next_q2) - alpha * next_logp
    as_tensor = torch.as_tensor
    return bellman_targets(
        as_tensor(rewards), as_tensor(terminateds), gamma, as_tensor(soft_next_q)
    ).numpy()


def _sac_target_mistakes(rewards, terminateds, next_q1, next_q2, next_logp, alpha, gamma):
    """What the usual wrong targets give on these inputs, each with the message that names it."""
    not_done = 1.0 - terminateds.astype(np.float64)
    min_q = np.minimum(next_q1, next_q2)

    def target(next_value, mask=not_done):
        return rewards + gamma * mask * next_value

    return [
        (
            target(min_q - alpha * next_logp, mask=1.0),
            "your targets bootstrap after a terminated step too. When terminateds[i] is True the "
            "episode ended there and has no future: multiply the discounted soft value by "
            "(1 - terminated), so that y = r for those rows.",
        ),
        (
            target(np.maximum(next_q1, next_q2) - alpha * next_logp),
            "you took the larger of the two critics. SAC (like TD3) takes the smaller one, "
            "np.minimum(next_q1, next_q2): each critic overestimates somewhere, and the min "
            "keeps that error out of the target.",
        ),
        (
            target((next_q1 + next_q2) / 2 - alpha * next_logp),
            "you averaged the two critics; take the smaller one, np.minimum(next_q1, next_q2), "
            "which is what keeps the overestimation out of the target.",
        ),
        (
            target(next_q1 - alpha * next_logp),
            "you used next_q1 only; the target uses both critics, through "
            "np.minimum(next_q1, next_q2).",
        ),
        (
            target(min_q + alpha * next_logp),
            "the entropy term has the wrong sign. The soft value of the next state is "
            "min(Q1, Q2) - alpha * logp: a likely action (high logp) is worth less, which is "
            "what rewards the policy for staying random.",
        ),
        (
            target(min_q - next_logp),
            "alpha is missing: the entropy term is alpha * next_logp, weighted by the current "
            "temperature, not next_logp alone.",
        ),
        (
            target(min_q),
            "the entropy term is missing: that is DDPG's target. SAC's next-state value is "
            "min(Q1, Q2) - alpha * next_logp.",
        ),
        (
            rewards - alpha * next_logp + gamma * not_done * min_q,
            "the entropy term sits outside the discount. It belongs to the next state's soft "
            "value: y = r + gamma * (1 - terminated) * (min(Q1, Q2) - alpha * next_logp).",
        ),
        (
            rewards + gamma * (not_done * min_q - alpha * next_logp),
            "only the Q part is masked at episode ends; after a terminated step the whole next "
            "value, entropy term included, is 0: multiply (min(Q1, Q2) - alpha * next_logp) by "
            "(1 - terminated).",
        ),
        (
            rewards + not_done * (min_q - alpha * next_logp),
            "gamma is missing: the next state's soft value is discounted, "
            "y = r + gamma * (1 - terminated) * (...).",
        ),
    ]


def _call_sac_target(sac_critic_target, case: str, *args) -> np.ndarray:
    what = "sac_critic_target(rewards, terminateds, next_q1, next_q2, next_logp, alpha, gamma)"
    copies = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    got = sac_critic_target(*copies)
    size = len(args[0])
    extra_axis = " Did you keep an extra axis, e.g. (B, 1)?"
    hints = {(size, 1): extra_axis, (1, size): extra_axis}
    return expect_array(
        "16.1", f"on {case} {what}", got, (size,), "one target per transition", hints
    )


def check_sac_critic_target(sac_critic_target) -> None:
    """Exercise 16.1: ``y = r + gamma * (1 - terminated) * (min(Q1', Q2') - alpha * logp')``."""
    require_callable("check_sac_critic_target", "sac_critic_target", sac_critic_target)
    args = (_REWARDS, _TERMINATEDS, _NEXT_Q1, _NEXT_Q2, _NEXT_LOGP, _ALPHA, _GAMMA)
    case = "the lesson's six transitions (alpha=0.2, gamma=0.9)"
    got = _call_sac_target(sac_critic_target, case, *args)
    want = _reference_sac_target(*args)
    if not np.allclose(got, want, atol=1e-6):
        name_known_mistake("16.1", got, _sac_target_mistakes(*args), f"on {case} ", atol=1e-6)
        first = first_difference(got, want, atol=1e-6)
        raise CheckFailed(
            "16.1",
            f"on {case} the targets should be {want.round(4).tolist()}; got "
            f"{got.round(4).tolist()} (first difference at row {first}). The target is "
            "r + gamma * (1 - terminated) * (min(next_q1, next_q2) - alpha * next_logp).",
        )
    rng = np.random.default_rng(15)
    for alpha, gamma in ((0.05, 0.99), (1.3, 0.5), (0.7, 0.0)):
        size = 64
        args = (
            rng.normal(size=size),
            rng.random(size) < 0.2,
            rng.normal(-5.0, 3.0, size=size),
            rng.normal(-5.0, 3.0, size=size),
            rng.normal(size=size),
            alpha,
            gamma,
        )
        case = f"64 random transitions (alpha={alpha}, gamma={gamma})"
        got = _call_sac_target(sac_critic_target, case, *args)
        want = _reference_sac_target(*args)
        if not np.allclose(got, want, atol=1e-6):
            first = first_difference(got, want, atol=1e-6)
            raise CheckFailed(
                "16.1",
                f"on {case} the targets first differ at row {first}: got {got[first]:.4f}, "
                f"expected {want[first]:.4f}. Does your code use the alpha and gamma it is "
                "given, and work for any batch size?",
            )
    passed(
        "16.1",
        "the soft Bellman target takes the smaller critic, subtracts alpha * logp inside the "
        "discount, stops at terminated steps, and matches the library's on random batches.",
    )


# --- Exercise 16.2: the log-density of a squashed Gaussian --------------------------------------


def _reference_squashed_logp(u, mean, log_std, low, high) -> np.ndarray:
    """``TorchSquashedGaussian(...).logp_of_u(u)``, in float64."""
    from course_lib.models import TorchSquashedGaussian

    inputs = torch.as_tensor(np.concatenate([mean, log_std], axis=-1), dtype=torch.float64)
    dist = TorchSquashedGaussian(inputs, None, low=low, high=high)
    dist.low, dist.high = (torch.as_tensor(b, dtype=torch.float64) for b in (low, high))
    return dist.logp_of_u(torch.as_tensor(u, dtype=torch.float64)).numpy()


def _gaussian_logp(u, mean, log_std) -> np.ndarray:
    """``log N(u; mean, exp(log_std))`` per dimension, ``(B, d)``."""
    return -0.5 * ((u - mean) / np.exp(log_std)) ** 2 - log_std - 0.5 * np.log(2 * np.pi)


def _log_det_tanh(u) -> np.ndarray:
    """``log(1 - tanh(u)^2)``, computed stably."""
    return 2.0 * (np.log(2.0) - u - np.logaddexp(0.0, -2.0 * u))


def _squashed_logp_mistakes(u, mean, log_std, low, high):
    """What the usual wrong log-densities give, each with the message that names it."""
    gauss = _gaussian_logp(u, mean, log_std)
    tanh_term = _log_det_tanh(u)
    half_range = np.log((high - low) / 2.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        std_as_log_std = (
            -0.5 * ((u - mean) / log_std) ** 2 - np.log(np.abs(log_std)) - 0.5 * np.log(2 * np.pi)
        )
    return [
        (
            (gauss - tanh_term).sum(-1),
            "you left out the linear part of the squash. a = low + (tanh(u) + 1) * (high - low) "
            "/ 2 also stretches tanh's [-1, 1] by (high - low) / 2 in each dimension, which "
            "subtracts log((high - low) / 2) per dimension (0 only when the Box is [-1, 1]).",
        ),
        (
            (gauss - tanh_term + half_range).sum(-1),
            "the linear part of the squash has the wrong sign: stretching by (high - low) / 2 "
            "spreads the probability thinner, so subtract log((high - low) / 2).",
        ),
        (
            (gauss - tanh_term - np.log(high - low)).sum(-1),
            "the linear part should subtract log((high - low) / 2), the stretch from tanh's "
            "[-1, 1] (width 2) to [low, high]; you subtracted log(high - low).",
        ),
        (
            gauss.sum(-1),
            "your log-density is the Gaussian's alone. The action is a squashed u, and a change "
            "of variables subtracts the log of the squash's slope: log(1 - tanh(u)^2) per "
            "dimension, and log((high - low) / 2).",
        ),
        (
            (gauss - half_range).sum(-1),
            "the tanh part of the change of variables is missing: subtract log(1 - tanh(u)^2) "
            "per dimension.",
        ),
        (
            (gauss + tanh_term - half_range).sum(-1),
            "the tanh term has the wrong sign. tanh squeezes u, so the density of a is higher "
            "than u's: log p(a) = log N(u) - log(1 - tanh(u)^2) - log((high - low) / 2), and "
            "log(1 - tanh(u)^2) is negative.",
        ),
        (
            std_as_log_std.sum(-1) - (tanh_term + half_range).sum(-1),
            "you used log_std as the standard deviation; the standard deviation is "
            "np.exp(log_std).",
        ),
    ]


def _call_squashed_logp(squashed_gaussian_logp, case: str, u, mean, log_std, low, high):
    what = "squashed_gaussian_logp(u, mean, log_std, low, high)"
    got = squashed_gaussian_logp(u.copy(), mean.copy(), log_std.copy(), low.copy(), high.copy())
    not_summed = (
        " Sum the per-dimension terms over the last axis (.sum(axis=-1)): the action's "
        "dimensions are independent, so their log-densities add up."
    )
    return expect_array(
        "16.2",
        f"on {case} {what}",
        got,
        (u.shape[0],),
        "one log-density per row",
        {u.shape: not_summed},
    )


def _squashed_case(rng, batch, dims, low, high, spread=1.5):
    mean = rng.normal(0.0, 0.5, size=(batch, dims))
    log_std = rng.uniform(-1.5, 0.5, size=(batch, dims))
    u = mean + np.exp(log_std) * rng.normal(size=(batch, dims)) * spread
    low, high = np.full(dims, low, dtype=np.float64), np.full(dims, high, dtype=np.float64)
    return u, mean, log_std, low, high


def _compare_squashed(squashed_gaussian_logp, case: str, args) -> None:
    got = _call_squashed_logp(squashed_gaussian_logp, case, *args)
    want = _reference_squashed_logp(*args)
    if np.allclose(got, want, atol=1e-5):
        return
    if not np.all(np.isfinite(got)):
        raise CheckFailed(
            "16.2",
            f"on {case} your log-density holds nan or inf where the right one is finite; is "
            "the standard deviation np.exp(log_std)?",
        )
    name_known_mistake("16.2", got, _squashed_logp_mistakes(*args), f"on {case} ", atol=1e-5)
    first = first_difference(got, want, atol=1e-5)
    raise CheckFailed(
        "16.2",
        f"on {case} the log-densities first differ at row {first}: got {got[first]:.5f}, "
        f"expected {want[first]:.5f}. log p(a) = sum over dimensions of log N(u; mean, std) - "
        "log(1 - tanh(u)^2) - log((high - low) / 2).",
    )


def check_squashed_gaussian_logp(squashed_gaussian_logp) -> None:
    """Exercise 16.2: ``log p(a)`` of ``a = low + (tanh(u) + 1) * (high - low) / 2``, ``(B,)``."""
    require_callable(
        "check_squashed_gaussian_logp", "squashed_gaussian_logp", squashed_gaussian_logp
    )
    rng = np.random.default_rng(15)
    _compare_squashed(
        squashed_gaussian_logp,
        "8 rows of one action dimension in Pendulum's [-2, 2]",
        _squashed_case(rng, 8, 1, -2.0, 2.0),
    )
    _compare_squashed(
        squashed_gaussian_logp,
        "8 rows of one action dimension in [-1, 1]",
        _squashed_case(rng, 8, 1, -1.0, 1.0),
    )
    _compare_squashed(
        squashed_gaussian_logp,
        "32 rows of three action dimensions in [-2, 2]",
        _squashed_case(rng, 32, 3, -2.0, 2.0),
    )
    # Far out in the tails tanh(u) rounds to exactly +-1 (from |u| ~ 19 in float64), and the
    # naive log(1 - tanh(u)**2) is log(0) = -inf: SAC's actor meets such u when its mean drifts.
    u = np.array([[25.0], [-30.0], [0.5]])
    mean, log_std = np.array([[24.0], [-29.0], [0.0]]), np.zeros((3, 1))
    bounds = (np.array([-2.0]), np.array([2.0]))
    case = "u = 25 and -30, where tanh(u) rounds to +-1 even in float64"
    got = _call_squashed_logp(squashed_gaussian_logp, case, u, mean, log_std, *bounds)
    want = _reference_squashed_logp(u, mean, log_std, *bounds)
    if not np.all(np.isfinite(got)):
        raise CheckFailed(
            "16.2",
            f"on {case} your log-density is {got.round(3).tolist()}: np.log(1 - np.tanh(u)**2) "
            "is log(0) there. Use the identity log(1 - tanh(u)^2) = 2 * (log(2) - u - "
            "softplus(-2u)), with softplus(x) = np.logaddexp(0, x), which stays finite.",
        )
    if not np.allclose(got, want, atol=1e-5):
        raise CheckFailed(
            "16.2",
            f"on {case} the log-densities should be {want.round(4).tolist()}; got "
            f"{got.round(4).tolist()}.",
        )
    passed(
        "16.2",
        "your log-density matches TorchSquashedGaussian's in [-1, 1] and in [-2, 2], over "
        "several dimensions, and stays finite far out in the tails.",
    )
