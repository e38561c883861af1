"""Graders of the continuous-control lesson (15): the reference passes, the stubs and the typical
mistakes fail with a message that names the mistake."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib import checks


def stub(*args):
    raise NotImplementedError("Exercise 15.x: replace this line with your code.")


# --- 16.1 -----------------------------------------------------------------------------------------


def target_right(rewards, terminateds, next_q1, next_q2, next_logp, alpha, gamma):
    soft_value = np.minimum(next_q1, next_q2) - alpha * next_logp
    return rewards + gamma * (1.0 - terminateds) * soft_value


def target_from(next_value, *, mask_terminated=True):
    """A target with the next state's value computed by ``next_value(q1, q2, logp, alpha)``."""

    def target(rewards, terminateds, next_q1, next_q2, next_logp, alpha, gamma):
        mask = 1.0 - terminateds if mask_terminated else 1.0
        return rewards + gamma * mask * next_value(next_q1, next_q2, next_logp, alpha)

    return target


def target_entropy_outside_discount(
    rewards, terminateds, next_q1, next_q2, next_logp, alpha, gamma
):
    return rewards - alpha * next_logp + gamma * (1.0 - terminateds) * np.minimum(next_q1, next_q2)


def target_mask_on_q_only(rewards, terminateds, next_q1, next_q2, next_logp, alpha, gamma):
    masked_q = (1.0 - terminateds) * np.minimum(next_q1, next_q2)
    return rewards + gamma * (masked_q - alpha * next_logp)


def target_in_torch(rewards, terminateds, next_q1, next_q2, next_logp, alpha, gamma):
    tensors = [torch.as_tensor(x) for x in (rewards, terminateds, next_q1, next_q2, next_logp)]
    rewards, terminateds, next_q1, next_q2, next_logp = tensors
    soft_value = torch.minimum(next_q1, next_q2) - alpha * next_logp
    return rewards + gamma * (1.0 - terminateds.double()) * soft_value


def target_ignores_gamma_argument(rewards, terminateds, next_q1, next_q2, next_logp, alpha, gamma):
    return target_right(rewards, terminateds, next_q1, next_q2, next_logp, alpha, 0.9)


@pytest.mark.parametrize("answer", [target_right, target_in_torch])
def test_sac_critic_target_accepts_the_reference(answer, capsys):
    checks.check_sac_critic_target(answer)
    assert "Exercise 16.1 passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (stub, "Exercise 15.x"),
        (
            target_from(
                lambda q1, q2, logp, a: np.minimum(q1, q2) - a * logp, mask_terminated=False
            ),
            r"multiply the discounted soft value by \(1 - terminated\)",
        ),
        (
            target_from(lambda q1, q2, logp, a: np.maximum(q1, q2) - a * logp),
            "you took the larger of the two critics",
        ),
        (target_from(lambda q1, q2, logp, a: (q1 + q2) / 2 - a * logp), "you averaged"),
        (target_from(lambda q1, q2, logp, a: q1 - a * logp), "you used next_q1 only"),
        (
            target_from(lambda q1, q2, logp, a: np.minimum(q1, q2) + a * logp),
            "the entropy term has the wrong sign",
        ),
        (target_from(lambda q1, q2, logp, a: np.minimum(q1, q2) - logp), "alpha is missing"),
        (
            target_from(lambda q1, q2, logp, a: np.minimum(q1, q2)),
            "the entropy term is missing",
        ),
        (target_entropy_outside_discount, "outside the discount"),
        (target_mask_on_q_only, "only the Q part is masked"),
        (
            lambda r, d, q1, q2, logp, a, g: r + (1.0 - d) * (np.minimum(q1, q2) - a * logp),
            "gamma is missing",
        ),
        (target_ignores_gamma_argument, "use the alpha and gamma it is given"),
        (lambda *args: target_right(*args)[:, None], r"extra axis, e\.g\. \(B, 1\)"),
        (lambda *args: None, "returned None"),
    ],
)
def test_sac_critic_target_names_the_mistake(wrong, hint):
    error = NotImplementedError if wrong is stub else checks.CheckFailed
    with pytest.raises(error, match=hint):
        checks.check_sac_critic_target(wrong)


# --- 16.2 -----------------------------------------------------------------------------------------


def gaussian_logp(u, mean, log_std):
    return -0.5 * ((u - mean) / np.exp(log_std)) ** 2 - log_std - 0.5 * np.log(2 * np.pi)


def logp_right(u, mean, log_std, low, high):
    log_det_tanh = 2.0 * (np.log(2.0) - u - np.logaddexp(0.0, -2.0 * u))
    log_half_range = np.log((high - low) / 2.0)
    return (gaussian_logp(u, mean, log_std) - log_det_tanh - log_half_range).sum(axis=-1)


def logp_naive_tanh(u, mean, log_std, low, high):
    """Right in the middle of the range, -inf where tanh(u) rounds to +-1."""
    with np.errstate(divide="ignore"):
        log_det_tanh = np.log(1.0 - np.tanh(u) ** 2)
    log_half_range = np.log((high - low) / 2.0)
    return (gaussian_logp(u, mean, log_std) - log_det_tanh - log_half_range).sum(axis=-1)


def logp_with_terms(*, tanh_sign=-1.0, half_range=lambda low, high: np.log((high - low) / 2.0)):
    """The log-density with the tanh term's sign and the linear term chosen by the caller."""

    def logp(u, mean, log_std, low, high):
        log_det_tanh = 2.0 * (np.log(2.0) - u - np.logaddexp(0.0, -2.0 * u))
        terms = gaussian_logp(u, mean, log_std) + tanh_sign * log_det_tanh
        return (terms - half_range(low, high)).sum(axis=-1)

    return logp


def logp_std_is_log_std(u, mean, log_std, low, high):
    with np.errstate(invalid="ignore", divide="ignore"):
        gauss = -0.5 * ((u - mean) / log_std) ** 2 - np.log(log_std) - 0.5 * np.log(2 * np.pi)
    return (gauss - np.log(1.0 - np.tanh(u) ** 2) - np.log((high - low) / 2.0)).sum(-1)


def logp_in_torch(u, mean, log_std, low, high):
    u, mean, log_std = (torch.as_tensor(x) for x in (u, mean, log_std))
    normal = torch.distributions.Normal(mean, log_std.exp())
    log_det_tanh = 2.0 * (np.log(2.0) - u - torch.nn.functional.softplus(-2.0 * u))
    log_half_range = torch.log(torch.as_tensor((high - low) / 2.0))
    return (normal.log_prob(u) - log_det_tanh - log_half_range).sum(-1)


@pytest.mark.parametrize("answer", [logp_right, logp_in_torch])
def test_squashed_gaussian_logp_accepts_the_reference(answer, capsys):
    checks.check_squashed_gaussian_logp(answer)
    assert "Exercise 16.2 passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (stub, "Exercise 15.x"),
        (logp_naive_tanh, r"np.logaddexp\(0, x\), which stays finite"),
        (logp_with_terms(half_range=lambda low, high: 0.0), "you left out the linear part"),
        (
            logp_with_terms(half_range=lambda low, high: -np.log((high - low) / 2.0)),
            "the linear part of the squash has the wrong sign",
        ),
        (
            logp_with_terms(half_range=lambda low, high: np.log(high - low)),
            r"you subtracted log\(high - low\)",
        ),
        (
            lambda u, m, s, low, high: gaussian_logp(u, m, s).sum(-1),
            "your log-density is the Gaussian's alone",
        ),
        (logp_with_terms(tanh_sign=0.0), "the tanh part of the change of variables is missing"),
        (logp_with_terms(tanh_sign=1.0), "the tanh term has the wrong sign"),
        (logp_std_is_log_std, r"is the standard deviation np.exp\(log_std\)"),
        (lambda *args: logp_right(*args) + 0.1, "first differ at row 0"),
        (
            lambda u, m, s, low, high: logp_right(u, m, s, low, high)[:, None] + 0 * u,
            r"Sum the per-dimension terms",
        ),
        (lambda *args: None, "returned None"),
    ],
)
def test_squashed_gaussian_logp_names_the_mistake(wrong, hint):
    error = NotImplementedError if wrong is stub else checks.CheckFailed
    with pytest.raises(error, match=hint):
        checks.check_squashed_gaussian_logp(wrong)
