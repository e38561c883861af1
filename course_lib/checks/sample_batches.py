"""Graders for notebooks/05_sample_batches.ipynb: discounted returns and GAE with truncation."""

from __future__ import annotations

import numpy as np

from ._common import CheckFailed, passed, require_callable


def check_discount_cumsum(discount_cumsum) -> None:
    """Exercise 5.1: ``discount_cumsum(x, gamma)[t] == sum_k gamma**k * x[t+k]``."""
    from course_lib.postprocessing import discount_cumsum as reference

    require_callable("check_discount_cumsum", "discount_cumsum", discount_cumsum)
    simple = np.asarray(discount_cumsum(np.array([1.0, 1.0, 1.0]), 0.5), dtype=np.float64)
    if simple.shape != (3,):
        raise CheckFailed(
            "5.1", f"discount_cumsum([1, 1, 1], 0.5) should have shape (3,), got {simple.shape}."
        )
    if np.allclose(simple, [1.0, 1.5, 1.75]):
        raise CheckFailed(
            "5.1",
            "you accumulated forwards (from t=0). The return at "
            "t looks ahead: loop from the last step backwards.",
        )
    if not np.allclose(simple, [1.75, 1.5, 1.0]):
        raise CheckFailed(
            "5.1",
            f"discount_cumsum([1, 1, 1], 0.5) should be [1.75, 1.5, 1.0], got {simple.tolist()}.",
        )
    rng = np.random.default_rng(0)
    for gamma in (0.0, 0.9, 0.99, 1.0):
        x = rng.normal(size=50)
        got = np.asarray(discount_cumsum(x, gamma), dtype=np.float64)
        if not np.allclose(got, reference(x, gamma), atol=1e-6):
            raise CheckFailed(
                "5.1",
                f"with gamma={gamma} on 50 random rewards the "
                "result differs from y[t] = x[t] + gamma * y[t+1].",
            )
    passed("5.1", "discounted returns match the reference for gamma in {0, 0.9, 0.99, 1}.")


def _reference_gae(rewards, vf_preds, next_value, terminated, gamma, lambda_):
    from course_lib.postprocessing import compute_advantages
    from course_lib.sample_batch import SampleBatch

    batch = SampleBatch({"rewards": rewards, "vf_preds": vf_preds})
    last_value = 0.0 if terminated else next_value
    return compute_advantages(batch, last_value, gamma=gamma, lambda_=lambda_)["advantages"].astype(
        np.float64
    )


def check_gae(gae_advantages) -> None:
    """Exercise 5.2: GAE advantages of one episode piece, bootstrapping only when not terminated."""
    require_callable("check_gae", "gae_advantages", gae_advantages)
    rng = np.random.default_rng(1)
    rewards, vf_preds = rng.normal(size=20), rng.normal(size=20)
    gamma, lambda_, next_value = 0.9, 0.8, 5.0
    results = {}
    for terminated in (True, False):
        got = gae_advantages(rewards, vf_preds, next_value, terminated, gamma, lambda_)
        got = np.asarray(got, dtype=np.float64)
        if got.shape != (20,):
            raise CheckFailed(
                "5.2", f"expected one advantage per step, shape (20,), got {got.shape}."
            )
        results[terminated] = got
    want = {
        t: _reference_gae(rewards, vf_preds, next_value, t, gamma, lambda_) for t in (True, False)
    }
    swapped = np.allclose(results[True], want[False]) and np.allclose(results[False], want[True])
    if swapped:
        raise CheckFailed(
            "5.2",
            "terminated and truncated are swapped: a terminated episode has "
            "no future (V = 0); a truncated one bootstraps from next_value.",
        )
    for terminated in (True, False):
        if np.allclose(results[terminated], want[terminated], atol=1e-5):
            continue
        if not terminated and np.allclose(results[False], want[True], atol=1e-5):
            raise CheckFailed(
                "5.2",
                "on a truncated piece you used V = 0 after the last step. The episode was cut by a "
                "time limit, not finished: the state after it is worth "
                "next_value, so delta_T-1 = r + gamma * next_value - V.",
            )
        if terminated and np.allclose(results[True], want[False], atol=1e-5):
            raise CheckFailed(
                "5.2",
                "on a terminated piece you bootstrapped from "
                "next_value; after termination the future is worth 0.",
            )
        deltas = (
            rewards + gamma * np.append(vf_preds[1:], 0.0 if terminated else next_value) - vf_preds
        )
        if np.allclose(results[terminated], deltas, atol=1e-5):
            raise CheckFailed(
                "5.2",
                "you returned the one-step TD errors; GAE discounts them with "
                "gamma * lambda_: discount_cumsum(deltas, gamma * lambda_).",
            )
        raise CheckFailed(
            "5.2",
            f"with terminated={terminated} the advantages differ from "
            f"GAE(gamma={gamma}, lambda={lambda_}); first values "
            f"{results[terminated][:3].round(3)} vs {want[terminated][:3].round(3)}.",
        )
    passed("5.2", "GAE matches the reference, bootstrapping on truncation and not on termination.")
