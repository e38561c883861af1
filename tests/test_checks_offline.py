"""Graders of the offline-RL lesson (16): the reference passes, the stubs and the typical mistakes
fail with a message that names the mistake."""

from __future__ import annotations

import numpy as np
import pytest

from course_lib import checks


def stub(*args):
    raise NotImplementedError("Exercise 16.x: replace this line with your code.")


# --- 17.1 -----------------------------------------------------------------------------------------


def estimates_from_ratios(
    rewards, ratios, gamma, mean_over_running=False, normalise=True, reverse_discount=False
):
    discounts = [gamma ** np.arange(len(r))[:: -1 if reverse_discount else 1] for r in rewards]
    is_ = np.mean([np.sum(d * r * p) for d, r, p in zip(discounts, rewards, ratios, strict=True)])
    longest = max(len(p) for p in ratios)
    if mean_over_running:
        mean = np.array([np.mean([p[t] for p in ratios if len(p) > t]) for t in range(longest)])
    else:
        held = np.stack([np.pad(p, (0, longest - len(p)), mode="edge") for p in ratios])
        mean = held.mean(axis=0) if normalise else np.ones(longest)
    wis = np.mean(
        [
            np.sum(d * r * p / mean[: len(p)])
            for d, r, p in zip(discounts, rewards, ratios, strict=True)
        ]
    )
    return is_, wis


def estimates_right(rewards, behaviour_probs, target_probs, gamma):
    ratios = [np.cumprod(t / b) for b, t in zip(behaviour_probs, target_probs, strict=True)]
    return estimates_from_ratios(rewards, ratios, gamma)


def estimates_inverted(rewards, behaviour_probs, target_probs, gamma):
    return estimates_right(rewards, target_probs, behaviour_probs, gamma)


def estimates_per_step_ratio(rewards, behaviour_probs, target_probs, gamma):
    ratios = [t / b for b, t in zip(behaviour_probs, target_probs, strict=True)]
    return estimates_from_ratios(rewards, ratios, gamma)


def estimates_whole_episode_weight(rewards, behaviour_probs, target_probs, gamma):
    ratios = [
        np.full(len(t), np.prod(t / b)) for b, t in zip(behaviour_probs, target_probs, strict=True)
    ]
    return estimates_from_ratios(rewards, ratios, gamma)


def estimates_undiscounted(rewards, behaviour_probs, target_probs, gamma):
    return estimates_right(rewards, behaviour_probs, target_probs, 1.0)


def estimates_discount_off_by_one(rewards, behaviour_probs, target_probs, gamma):
    is_, wis = estimates_right(rewards, behaviour_probs, target_probs, gamma)
    return gamma * is_, gamma * wis


def estimates_discount_reversed(rewards, behaviour_probs, target_probs, gamma):
    ratios = [np.cumprod(t / b) for b, t in zip(behaviour_probs, target_probs, strict=True)]
    return estimates_from_ratios(rewards, ratios, gamma, reverse_discount=True)


def estimates_wis_unnormalised(rewards, behaviour_probs, target_probs, gamma):
    ratios = [np.cumprod(t / b) for b, t in zip(behaviour_probs, target_probs, strict=True)]
    return estimates_from_ratios(rewards, ratios, gamma, normalise=False)


def estimates_wis_by_sum(rewards, behaviour_probs, target_probs, gamma):
    is_, wis = estimates_right(rewards, behaviour_probs, target_probs, gamma)
    return is_, wis / len(rewards)


def estimates_wis_over_running_episodes(rewards, behaviour_probs, target_probs, gamma):
    ratios = [np.cumprod(t / b) for b, t in zip(behaviour_probs, target_probs, strict=True)]
    return estimates_from_ratios(rewards, ratios, gamma, mean_over_running=True)


def estimates_summed(rewards, behaviour_probs, target_probs, gamma):
    is_, wis = estimates_right(rewards, behaviour_probs, target_probs, gamma)
    return is_ * len(rewards), wis * len(rewards)


def test_off_policy_estimates_accept_the_reference(capsys):
    checks.check_off_policy_estimates(estimates_right)
    assert "Exercise 17.1 passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (stub, "Exercise 16.x"),
        (estimates_inverted, "the ratio is upside down"),
        (estimates_per_step_ratio, "its own step's ratio only"),
        (estimates_whole_episode_weight, "the episode's final ratio p_T"),
        (estimates_undiscounted, "not discounted"),
        (estimates_discount_off_by_one, "one step off"),
        (estimates_discount_reversed, "the discount runs backwards"),
        (estimates_wis_unnormalised, "your WIS equals IS"),
        (estimates_wis_by_sum, "not by their sum"),
        (estimates_wis_over_running_episodes, "still running at step t"),
        (estimates_summed, "you summed the per-episode estimates"),
        (lambda *args: estimates_right(*args)[0], r"should return a pair"),
        (lambda *args: None, "returned None"),
        (lambda *args: (0.0, 0.0), "the estimates should be IS"),
    ],
)
def test_off_policy_estimates_name_the_mistake(wrong, hint):
    error = NotImplementedError if wrong is stub else checks.CheckFailed
    with pytest.raises(error, match=hint):
        checks.check_off_policy_estimates(wrong)


# --- 17.2 -----------------------------------------------------------------------------------------


def weights_right(returns, values, beta, sqd_adv_norm, rate):
    advantages = returns - values
    sqd_adv_norm = sqd_adv_norm + rate * (np.mean(advantages**2) - sqd_adv_norm)
    return np.exp(beta * advantages / np.sqrt(sqd_adv_norm)), sqd_adv_norm


def weights_sign_flipped(returns, values, beta, sqd_adv_norm, rate):
    weights, norm = weights_right(returns, values, beta, sqd_adv_norm, rate)
    return 1.0 / weights, norm


def weights_unscaled(returns, values, beta, sqd_adv_norm, rate):
    _, norm = weights_right(returns, values, beta, sqd_adv_norm, rate)
    return np.exp(beta * (returns - values)), norm


def weights_divided_by_square(returns, values, beta, sqd_adv_norm, rate):
    _, norm = weights_right(returns, values, beta, sqd_adv_norm, rate)
    return np.exp(beta * (returns - values) / norm), norm


def weights_with_old_norm(returns, values, beta, sqd_adv_norm, rate):
    _, norm = weights_right(returns, values, beta, sqd_adv_norm, rate)
    return np.exp(beta * (returns - values) / np.sqrt(sqd_adv_norm)), norm


def weights_without_beta(returns, values, beta, sqd_adv_norm, rate):
    weights, norm = weights_right(returns, values, 1.0, sqd_adv_norm, rate)
    return weights, norm


def weights_norm_replaced(returns, values, beta, sqd_adv_norm, rate):
    return weights_right(returns, values, beta, sqd_adv_norm, 1.0)


def weights_return_c(returns, values, beta, sqd_adv_norm, rate):
    weights, norm = weights_right(returns, values, beta, sqd_adv_norm, rate)
    return weights, np.sqrt(norm)


def weights_norm_not_updated(returns, values, beta, sqd_adv_norm, rate):
    weights, _ = weights_right(returns, values, beta, sqd_adv_norm, rate)
    return weights, sqd_adv_norm


def test_marwil_weights_accept_the_reference(capsys):
    checks.check_marwil_weights(weights_right)
    assert "Exercise 17.2 passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (stub, "Exercise 16.x"),
        (weights_sign_flipped, "the advantage has the wrong sign"),
        (weights_unscaled, "the advantage is not scaled"),
        (weights_divided_by_square, r"divided the advantage by c\*\*2"),
        (weights_with_old_norm, "from before the update"),
        (weights_without_beta, "with beta=0 every weight should be 1"),
        (weights_norm_replaced, r"c\*\*2 should be"),
        (weights_return_c, "you returned c"),
        (weights_norm_not_updated, "c\\*\\*2 did not move"),
        (lambda *args: weights_right(*args)[0], r"should return a pair"),
        (lambda *args: (weights_right(*args)[0][:3], 1.0), r"shape \(32,\)"),
        (lambda *args: None, "returned None"),
    ],
)
def test_marwil_weights_name_the_mistake(wrong, hint):
    error = NotImplementedError if wrong is stub else checks.CheckFailed
    with pytest.raises(error, match=hint):
        checks.check_marwil_weights(wrong)


def test_the_weights_reference_matches_the_library_loss():
    """The grader's NumPy formula is the one marwil_loss computes (its mean weight and new c**2)."""
    from course_lib.agents.marwil import MARWILTorchPolicy
    from course_lib.checks.offline import _reference_weights
    from course_lib.envs import make_env
    from course_lib.sample_batch import SampleBatch

    env = make_env("CartPole-v1")
    config = {"beta": 0.5, "moving_average_sqd_adv_norm_update_rate": 0.3, "seed": 0}
    policy = MARWILTorchPolicy(env.observation_space, env.action_space, config)
    rng = np.random.default_rng(0)
    batch = SampleBatch(
        obs=rng.normal(size=(16, 4)).astype(np.float32),
        actions=rng.integers(0, 2, size=16),
        value_targets=rng.uniform(0, 30, size=16).astype(np.float32),
    )
    values = policy.compute_values(batch[SampleBatch.OBS])
    start = policy.sqd_adv_norm
    policy.learn_on_batch(batch)
    weights, norm = _reference_weights(batch["value_targets"], values, 0.5, start, 0.3)
    assert policy.sqd_adv_norm == pytest.approx(norm, rel=1e-4)
    assert policy.loss_stats["mean_weight"] == pytest.approx(weights.mean(), rel=1e-4)
