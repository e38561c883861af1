"""Specification of course_lib.postprocessing, checked against brute-force double loops."""

import numpy as np
import pytest

from course_lib.postprocessing import (
    compute_advantages,
    compute_advantages_by_episode,
    discount_cumsum,
)
from course_lib.sample_batch import SampleBatch

SEEDS = [0, 1, 2, 3, 4]


# --- brute-force references: the definitions, written as literally as possible -------------------


def reference_returns(rewards, last_value, gamma):
    """R_t = sum_{k=t}^{T-1} gamma^(k-t) r_k + gamma^(T-t) V(s_T)."""
    horizon = len(rewards)
    returns = np.zeros(horizon)
    for t in range(horizon):
        for k in range(t, horizon):
            returns[t] += gamma ** (k - t) * rewards[k]
        returns[t] += gamma ** (horizon - t) * last_value
    return returns


def reference_gae(rewards, values, last_value, gamma, lambda_):
    """A_t = sum_{k=t}^{T-1} (gamma lambda)^(k-t) delta_k, delta_k = r_k + gamma
    V(s_{k+1}) - V(s_k)."""
    horizon = len(rewards)
    extended = list(values) + [last_value]
    advantages = np.zeros(horizon)
    for t in range(horizon):
        for k in range(t, horizon):
            delta = rewards[k] + gamma * extended[k + 1] - extended[k]
            advantages[t] += (gamma * lambda_) ** (k - t) * delta
    return advantages


def value_of(obs):
    """A stand-in critic: V(s) = sum of the observation's features, shape (M, 4) -> (M,)."""
    return np.asarray(obs).sum(axis=1)


def make_fragment(seed, ending):
    """A fragment of several episodes; the last one ends in 'terminated', 'truncated' or 'cut'
    (neither)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 12, size=rng.integers(1, 5))
    eps_id, terminateds, truncateds = [], [], []
    for index, length in enumerate(lengths):
        last = index == len(lengths) - 1
        kind = ending if last else rng.choice(["terminated", "truncated"])
        eps_id += [100 + index] * length
        terminateds += [False] * (length - 1) + [kind == "terminated"]
        truncateds += [False] * (length - 1) + [kind == "truncated"]
    n = len(eps_id)
    return SampleBatch(
        obs=rng.normal(size=(n, 4)).astype(np.float32),
        new_obs=rng.normal(size=(n, 4)).astype(np.float32),
        rewards=rng.normal(size=n).astype(np.float32),
        vf_preds=rng.normal(size=n).astype(np.float32),
        terminateds=terminateds,
        truncateds=truncateds,
        eps_id=eps_id,
    )


def reference_by_episode(batch, gamma, lambda_, use_gae):
    """Walks the rows, closing an episode where eps_id changes or the batch ends."""
    n = batch.count
    advantages, targets = np.zeros(n), np.zeros(n)
    start = 0
    for end in range(1, n + 1):
        if end < n and batch["eps_id"][end] == batch["eps_id"][start]:
            continue
        last = end - 1
        last_value = (
            0.0
            if batch["terminateds"][last]
            else float(value_of(batch["new_obs"][last : last + 1])[0])
        )
        rewards = batch["rewards"][start:end].astype(np.float64)
        values = batch["vf_preds"][start:end].astype(np.float64)
        if use_gae:
            advantages[start:end] = reference_gae(rewards, values, last_value, gamma, lambda_)
            targets[start:end] = advantages[start:end] + values
        else:
            targets[start:end] = reference_returns(rewards, last_value, gamma)
            advantages[start:end] = targets[start:end] - values
        start = end
    return advantages, targets


# --- discount_cumsum ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_discount_cumsum_matches_double_loop(seed):
    rewards = np.random.default_rng(seed).normal(size=25)
    np.testing.assert_allclose(
        discount_cumsum(rewards, 0.9), reference_returns(rewards, 0.0, 0.9), rtol=1e-12
    )


def test_discount_cumsum_edge_discounts():
    np.testing.assert_array_equal(discount_cumsum([1.0, 2.0, 3.0], 1.0), [6.0, 5.0, 3.0])
    np.testing.assert_array_equal(discount_cumsum([1.0, 2.0, 3.0], 0.0), [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(discount_cumsum([1.0, 1.0, 1.0], 0.5), [1.75, 1.5, 1.0])
    assert discount_cumsum([], 0.9).shape == (0,)


def test_discount_cumsum_rejects_bad_gamma_and_shapes():
    with pytest.raises(ValueError, match=r"gamma must be between 0 and 1.*1\.5"):
        discount_cumsum([1.0], 1.5)
    with pytest.raises(ValueError, match=r"1-D array.*\(2, 2\)"):
        discount_cumsum(np.zeros((2, 2)), 0.9)


# --- compute_advantages on one trajectory piece ---------------------------------------------------


def one_piece(seed, n=20):
    rng = np.random.default_rng(seed)
    return SampleBatch(
        rewards=rng.normal(size=n).astype(np.float32),
        vf_preds=rng.normal(size=n).astype(np.float32),
    )


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("lambda_", [0.0, 0.95, 1.0])
def test_gae_matches_double_loop(seed, lambda_):
    batch = one_piece(seed)
    rewards, values = batch["rewards"].astype(np.float64), batch["vf_preds"].astype(np.float64)
    compute_advantages(batch, last_value=0.7, gamma=0.97, lambda_=lambda_)
    expected = reference_gae(rewards, values, 0.7, 0.97, lambda_)
    np.testing.assert_allclose(batch["advantages"], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(batch["value_targets"], expected + values, rtol=1e-5, atol=1e-5)
    assert batch["advantages"].dtype == batch["value_targets"].dtype == np.float32


@pytest.mark.parametrize("seed", SEEDS)
def test_plain_returns_without_critic_match_double_loop(seed):
    batch = one_piece(seed)
    del batch["vf_preds"]
    compute_advantages(batch, last_value=2.0, gamma=0.9, use_gae=False, use_critic=False)
    expected = reference_returns(batch["rewards"].astype(np.float64), 2.0, 0.9)
    np.testing.assert_allclose(batch["advantages"], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(batch["value_targets"], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("seed", SEEDS)
def test_returns_minus_baseline_with_critic_without_gae(seed):
    batch = one_piece(seed)
    compute_advantages(batch, last_value=-1.0, gamma=0.9, use_gae=False)
    expected = reference_returns(batch["rewards"].astype(np.float64), -1.0, 0.9)
    np.testing.assert_allclose(batch["value_targets"], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        batch["advantages"], expected - batch["vf_preds"], rtol=1e-5, atol=1e-5
    )


def test_gae_with_lambda_one_equals_returns_minus_values():
    gae, plain = one_piece(7), one_piece(7)
    compute_advantages(gae, 0.3, gamma=0.99, lambda_=1.0)
    compute_advantages(plain, 0.3, gamma=0.99, use_gae=False)
    np.testing.assert_allclose(gae["advantages"], plain["advantages"], rtol=1e-4, atol=1e-5)


def test_compute_advantages_explains_bad_inputs():
    with pytest.raises(KeyError, match="'vf_preds' column"):
        compute_advantages(SampleBatch(rewards=[1.0]), 0.0)
    with pytest.raises(KeyError, match="'rewards' column"):
        compute_advantages(SampleBatch(vf_preds=[1.0]), 0.0)
    with pytest.raises(ValueError, match="use_gae=True needs a critic"):
        compute_advantages(SampleBatch(rewards=[1.0]), 0.0, use_critic=False)
    with pytest.raises(ValueError, match=r"lambda_ must be between 0 and 1.*-0\.1"):
        compute_advantages(one_piece(0), 0.0, lambda_=-0.1)
    with pytest.raises(ValueError, match=r"last_value must be a single number.*\(3,\)"):
        compute_advantages(one_piece(0), np.zeros(3))


# --- compute_advantages_by_episode: bootstrap on truncation, not on termination -------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("ending", ["terminated", "truncated", "cut"])
@pytest.mark.parametrize("use_gae", [True, False])
def test_by_episode_matches_double_loop_reference(seed, ending, use_gae):
    batch = make_fragment(seed, ending)
    expected_advantages, expected_targets = reference_by_episode(batch, 0.95, 0.9, use_gae)
    compute_advantages_by_episode(
        batch, gamma=0.95, lambda_=0.9, value_fn=value_of, use_gae=use_gae
    )
    np.testing.assert_allclose(batch["advantages"], expected_advantages, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(batch["value_targets"], expected_targets, rtol=1e-5, atol=1e-5)


def two_step_episode(terminated, truncated):
    return SampleBatch(
        rewards=[1.0, 1.0],
        vf_preds=[0.0, 0.0],
        new_obs=np.zeros((2, 4)),
        terminateds=[False, terminated],
        truncateds=[False, truncated],
        eps_id=[0, 0],
    )


def always_ten(obs):
    return np.full(len(obs), 10.0)


def test_truncation_bootstraps_from_value_of_next_obs():
    batch = compute_advantages_by_episode(
        two_step_episode(False, True), gamma=0.5, value_fn=always_ten
    )
    np.testing.assert_allclose(
        batch["value_targets"], [1.0 + 0.5 * (1.0 + 0.5 * 10.0), 1.0 + 0.5 * 10.0]
    )


def test_termination_does_not_bootstrap():
    batch = compute_advantages_by_episode(
        two_step_episode(True, False), gamma=0.5, value_fn=always_ten
    )
    np.testing.assert_allclose(batch["value_targets"], [1.5, 1.0])


def test_fragment_cut_mid_episode_bootstraps():
    batch = compute_advantages_by_episode(
        two_step_episode(False, False), gamma=0.5, value_fn=always_ten
    )
    assert batch["value_targets"][-1] == pytest.approx(6.0)


def test_terminated_and_truncated_together_counts_as_terminated():
    batch = compute_advantages_by_episode(
        two_step_episode(True, True), gamma=0.5, value_fn=always_ten
    )
    assert batch["value_targets"][-1] == pytest.approx(1.0)


def test_value_fn_is_called_once_with_every_bootstrap_observation():
    # Three episodes: truncated, terminated, then cut off by the end of the fragment.
    batch = SampleBatch(
        rewards=np.ones(6),
        vf_preds=np.zeros(6),
        new_obs=np.arange(24, dtype=np.float32).reshape(6, 4),
        terminateds=[False, False, False, True, False, False],
        truncateds=[False, True, False, False, False, False],
        eps_id=[1, 1, 2, 2, 3, 3],
    )
    calls = []

    def recording_value_fn(obs):
        calls.append(obs.copy())
        return value_of(obs)

    compute_advantages_by_episode(batch, value_fn=recording_value_fn)
    assert len(calls) == 1
    np.testing.assert_array_equal(calls[0], batch["new_obs"][[1, 5]])


def test_value_fn_is_not_called_when_every_episode_terminated():
    def failing_value_fn(obs):
        raise AssertionError("no bootstrap was needed")

    batch = compute_advantages_by_episode(two_step_episode(True, False), value_fn=failing_value_fn)
    assert batch.count == 2


def test_missing_value_fn_with_critic_is_explained():
    with pytest.raises(ValueError, match="Pass value_fn"):
        compute_advantages_by_episode(two_step_episode(False, True))


def test_without_critic_and_value_fn_unfinished_pieces_bootstrap_from_zero():
    batch = two_step_episode(False, True)
    compute_advantages_by_episode(batch, gamma=0.5, use_gae=False, use_critic=False)
    np.testing.assert_allclose(batch["advantages"], [1.5, 1.0])


def test_value_fn_returning_wrong_number_of_values_is_explained():
    with pytest.raises(ValueError, match=r"returned 3 values for 1 observations"):
        compute_advantages_by_episode(
            two_step_episode(False, True), value_fn=lambda obs: np.zeros(3)
        )


def test_by_episode_needs_terminateds_and_new_obs():
    batch = two_step_episode(False, True)
    del batch["terminateds"]
    with pytest.raises(KeyError, match="'terminateds' column"):
        compute_advantages_by_episode(batch, value_fn=always_ten)
    batch = two_step_episode(False, True)
    del batch["new_obs"]
    with pytest.raises(KeyError, match="'new_obs' column"):
        compute_advantages_by_episode(batch, value_fn=always_ten)


def test_by_episode_without_eps_id_splits_on_flags():
    batch = make_fragment(3, "truncated")
    expected = reference_by_episode(batch, 0.99, 0.95, use_gae=True)
    del batch["eps_id"]
    compute_advantages_by_episode(batch, gamma=0.99, lambda_=0.95, value_fn=value_of)
    np.testing.assert_allclose(batch["advantages"], expected[0], rtol=1e-5, atol=1e-5)
