"""V-trace (course_lib.agents.impala.vtrace) against the paper's definition written as a double
loop, and its on-policy case: the n-step returns to the end of the fragment."""

from __future__ import annotations

import numpy as np
import pytest

from course_lib.agents.impala import vtrace_from_importance_weights


def reference_vtrace(log_rhos, discounts, rewards, values, bootstrap, rho_bar_max, c_max, pg_max):
    """Espeholt et al. (2018), eq. (1), summed term by term for every s (no recursion)."""
    T, B = values.shape
    rhos = np.exp(log_rhos)

    def clip(x, m):
        return x if m is None else np.minimum(x, m)

    rho_bar, cs, pg_rhos = clip(rhos, rho_bar_max), clip(rhos, c_max), clip(rhos, pg_max)
    next_values = np.concatenate([values[1:], bootstrap[None]], axis=0)
    vs = np.zeros((T, B))
    for b in range(B):
        for s in range(T):
            total = values[s, b]
            for t in range(s, T):
                weight = 1.0
                for i in range(s, t):
                    weight *= discounts[i, b] * cs[i, b]
                delta = rho_bar[t, b] * (
                    rewards[t, b] + discounts[t, b] * next_values[t, b] - values[t, b]
                )
                total += weight * delta
            vs[s, b] = total
    next_vs = np.concatenate([vs[1:], bootstrap[None]], axis=0)
    advantages = pg_rhos * (rewards + discounts * next_vs - values)
    return vs, advantages


def random_fragment(T=7, B=3, seed=0, spread=1.0):
    rng = np.random.default_rng(seed)
    log_rhos = rng.normal(0.0, spread, (T, B))
    terminated = rng.random((T, B)) < 0.2
    discounts = 0.9 * (1.0 - terminated)
    rewards = rng.normal(size=(T, B))
    values = rng.normal(size=(T, B))
    bootstrap = rng.normal(size=B)
    return log_rhos, discounts, rewards, values, bootstrap


@pytest.mark.parametrize(
    "thresholds", [(1.0, 1.0, 1.0), (2.0, 0.5, 1.5), (None, None, None), (0.3, 1.0, 0.3)]
)
@pytest.mark.parametrize("seed", [0, 1])
def test_vtrace_equals_the_papers_sum(thresholds, seed):
    fragment = random_fragment(seed=seed)
    got = vtrace_from_importance_weights(*fragment, *thresholds)
    vs, advantages = reference_vtrace(*fragment, *thresholds)
    np.testing.assert_allclose(got.vs.numpy(), vs, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got.pg_advantages.numpy(), advantages, rtol=1e-5, atol=1e-5)


def test_on_policy_vtrace_is_the_n_step_return():
    _, discounts, rewards, values, bootstrap = random_fragment(T=6, B=2, seed=3)
    on_policy = np.zeros_like(values)
    got = vtrace_from_importance_weights(on_policy, discounts, rewards, values, bootstrap)
    # G_s = r_s + gamma_s * G_{s+1}, G_T = V(x_T): the discounted return to the fragment's end.
    expected = np.zeros_like(values)
    running = bootstrap.copy()
    for t in reversed(range(len(values))):
        running = rewards[t] + discounts[t] * running
        expected[t] = running
    np.testing.assert_allclose(got.vs.numpy(), expected, rtol=1e-5, atol=1e-5)
    # ... and the advantages are the one-step TD errors on those targets: G_s - V(x_s).
    np.testing.assert_allclose(got.pg_advantages.numpy(), expected - values, rtol=1e-5, atol=1e-5)


def test_a_terminal_step_cuts_the_trace():
    log_rhos, discounts, rewards, values, bootstrap = random_fragment(T=5, B=1, seed=4)
    discounts[2, 0] = 0.0  # the episode ends after step 2
    got = vtrace_from_importance_weights(log_rhos, discounts, rewards, values, bootstrap)
    changed = rewards.copy()
    changed[3:, 0] += 100.0  # what happens after the end must not reach steps 0-2
    later = vtrace_from_importance_weights(log_rhos, discounts, changed, values, bootstrap)
    np.testing.assert_allclose(got.vs.numpy()[:3], later.vs.numpy()[:3], rtol=1e-6)
    assert not np.allclose(got.vs.numpy()[3:], later.vs.numpy()[3:])


def test_truncation_bounds_the_weights():
    """A huge importance ratio counts at most clip_rho_threshold times its TD error."""
    log_rhos = np.log(np.array([[50.0]]))
    rewards, values, discounts = np.array([[1.0]]), np.array([[0.0]]), np.array([[0.0]])
    got = vtrace_from_importance_weights(log_rhos, discounts, rewards, values, np.zeros(1))
    assert got.vs.item() == pytest.approx(1.0)  # rho_bar = 1: one TD error of 1
    untruncated = vtrace_from_importance_weights(
        log_rhos, discounts, rewards, values, np.zeros(1), clip_rho_threshold=None
    )
    assert untruncated.vs.item() == pytest.approx(50.0, rel=1e-5)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda f: (*f[:3], f[3][:, 0], f[4]), r"time-major \(T, B\)"),
        (lambda f: (f[0][:-1], *f[1:]), "log_rhos has shape"),
        (lambda f: (*f[:4], f[4][:-1]), "bootstrap_value has shape"),
    ],
)
def test_wrong_shapes_are_named(change, message):
    with pytest.raises(ValueError, match=message):
        vtrace_from_importance_weights(*change(random_fragment()))
