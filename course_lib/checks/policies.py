"""Graders for notebooks/07_policies.ipynb: a loss function, and a policy variant via
with_updates."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from ._common import CheckFailed, expect_type, passed, require_callable
from ._learner_calls import call_learner

OBS_SPACE = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
ACT_SPACE = gym.spaces.Discrete(2)

# How long one call of your code may run before the check stops it. A right answer computes a loss
# on 24 rows in milliseconds; the limit only has to catch a loop that never ends.
TIME_LIMIT_S = 30.0

_HANG_HINT = "a loop that never ends (a while loop whose condition never changes)"


def _call(exercise: str, what: str, fn, *args):
    return call_learner(exercise, what, fn, *args, seconds=TIME_LIMIT_S, hint=_HANG_HINT)


def _batch(seed: int = 0, n: int = 24):
    from course_lib.sample_batch import SampleBatch

    rng = np.random.default_rng(seed)
    terminateds = np.zeros(n, bool)
    terminateds[[7, 15]] = True
    return SampleBatch(
        obs=rng.uniform(-1, 1, (n, 4)).astype(np.float32),
        new_obs=rng.uniform(-1, 1, (n, 4)).astype(np.float32),
        actions=rng.integers(0, 2, n),
        rewards=rng.uniform(0, 1, n).astype(np.float32),
        terminateds=terminateds,
        truncateds=np.zeros(n, bool),
        eps_id=np.repeat([0, 1, 2], n // 3),
        vf_preds=rng.normal(size=n).astype(np.float32),
    )


def check_reinforce_loss(reinforce_loss) -> None:
    """Exercise 7.1: ``-mean(logp(actions) * advantages)`` from ``model.from_batch`` and
    ``dist_class``."""
    from course_lib.policy import PGTorchPolicy, policy_gradient_loss

    require_callable("check_reinforce_loss", "reinforce_loss", reinforce_loss)
    policy = PGTorchPolicy(OBS_SPACE, ACT_SPACE, {"model": {"fcnet_hiddens": [16]}, "seed": 0})
    train_batch = policy._lazy_tensor_dict(policy.postprocess_trajectory(_batch()))
    loss = _call(
        "7.1",
        "reinforce_loss(policy, model, dist_class, train_batch)",
        reinforce_loss,
        policy,
        policy.model,
        policy.dist_class,
        train_batch,
    )
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        raise CheckFailed(
            "7.1",
            "the loss must be a scalar torch tensor (use .mean()), "
            f"got {type(loss).__name__} {getattr(loss, 'shape', '')}.",
        )
    if not loss.requires_grad:
        raise CheckFailed(
            "7.1",
            "the loss does not depend on the model's parameters: "
            "compute logits with model.from_batch(train_batch).",
        )
    want = policy_gradient_loss(policy, policy.model, policy.dist_class, train_batch)
    if torch.isclose(loss, -want):
        raise CheckFailed(
            "7.1",
            "the sign is flipped: optimizers minimize, so "
            "the loss is MINUS the mean of logp * advantages.",
        )
    dist = policy.dist_class(policy.model.from_batch(train_batch)[0], policy.model)
    with_rewards = -(dist.logp(train_batch["actions"]) * train_batch["rewards"]).mean()
    if torch.isclose(loss, with_rewards):
        raise CheckFailed(
            "7.1",
            "you weighted logp by each step's reward (the 2021 RLlib tutorial's "
            "version). Use train_batch['advantages'], the reward-to-go.",
        )
    if torch.isclose(loss, want * len(train_batch["actions"])):
        raise CheckFailed(
            "7.1",
            "you summed over the batch; take the mean so the "
            "step size does not grow with the batch size.",
        )
    if not torch.isclose(loss, want, atol=1e-6):
        raise CheckFailed(
            "7.1", f"expected {want.item():.5f} on the check batch, got {loss.item():.5f}."
        )
    passed("7.1", f"the loss matches REINFORCE's on the check batch ({loss.item():.4f}).")


def check_pg_with_baseline(PGWithBaseline) -> None:
    """Exercise 7.2: ``PGTorchPolicy.with_updates`` adding a learned value baseline."""
    from course_lib.policy import PGTorchPolicy, policy_gradient_loss
    from course_lib.postprocessing import discount_cumsum
    from course_lib.sample_batch import SampleBatch

    if not (isinstance(PGWithBaseline, type) and hasattr(PGWithBaseline, "build_args")):
        raise CheckFailed(
            "7.2", "PGWithBaseline should be the class returned by PGTorchPolicy.with_updates(...)."
        )
    if PGWithBaseline.__name__ != "PGWithBaseline":
        raise CheckFailed(
            "7.2",
            "pass name='PGWithBaseline' to with_updates; the "
            f"class is called {PGWithBaseline.__name__!r}.",
        )
    if PGTorchPolicy.build_args["loss_fn"] is not policy_gradient_loss:
        raise CheckFailed(
            "7.2",
            "PGTorchPolicy itself changed; with_updates "
            "must return a new class and leave it alone.",
        )
    config = {"model": {"fcnet_hiddens": [16]}, "seed": 0, "gamma": 0.9}
    policy = _call(
        "7.2",
        "PGWithBaseline(obs_space, action_space, config)",
        PGWithBaseline,
        OBS_SPACE,
        ACT_SPACE,
        config,
    )
    batch = _call(
        "7.2", "policy.postprocess_trajectory(batch)", policy.postprocess_trajectory, _batch()
    )
    expect_type(
        "7.2",
        "postprocess_trajectory (your postprocess_fn)",
        batch,
        SampleBatch,
        "the SampleBatch it was given, with value_targets and advantages added",
    )
    pieces = batch.split_by_episode()
    last_obs = pieces[-1]["new_obs"][-1:]
    bootstrap = float(policy.compute_values(last_obs)[0])
    returns = np.concatenate(
        [
            discount_cumsum(
                np.append(p["rewards"], 0.0 if p["terminateds"][-1] else bootstrap), 0.9
            )[:-1]
            for p in pieces
        ]
    )
    if not np.allclose(batch["value_targets"], returns, atol=1e-4):
        raise CheckFailed(
            "7.2",
            "value_targets should be the discounted returns, bootstrapped from V(new_obs) where "
            "the piece did not terminate: compute_advantages_by_episode(batch, "
            "gamma, use_gae=False, use_critic=True, value_fn=policy.compute_values).",
        )
    if not np.allclose(batch["advantages"], returns - batch["vf_preds"], atol=1e-4):
        raise CheckFailed(
            "7.2", "advantages should be returns minus the baseline: value_targets - vf_preds."
        )
    train_batch = policy._lazy_tensor_dict(batch)
    loss = _call("7.2", "your loss_fn", policy.loss, policy.model, policy.dist_class, train_batch)
    expect_type("7.2", "your loss_fn", loss, torch.Tensor, "a scalar torch tensor")
    policy.model.zero_grad()
    loss.backward()
    value_params = [n for n, p in policy.model.named_parameters() if "value" in n or "vf" in n]
    if value_params and all(
        dict(policy.model.named_parameters())[n].grad is None for n in value_params
    ):
        raise CheckFailed(
            "7.2",
            "the value head gets no gradient: add a value loss, e.g. "
            "0.5 * mean((model.value_function() - value_targets) ** 2).",
        )
    pg_part = policy_gradient_loss(policy, policy.model, policy.dist_class, train_batch)
    vf_part = 0.5 * torch.mean((policy.model.value_function() - train_batch["value_targets"]) ** 2)
    if not torch.isclose(loss, pg_part + vf_part, atol=1e-5):
        raise CheckFailed(
            "7.2",
            "expected loss = policy_gradient_loss + 0.5 * mean((V - value_targets)^2) = "
            f"{(pg_part + vf_part).item():.5f}, got {loss.item():.5f}. Note "
            "that model.value_function() answers for the LAST forward "
            "pass: run model.from_batch(train_batch) before calling it.",
        )
    passed(
        "7.2",
        "PGWithBaseline bootstraps returns, subtracts the baseline, and trains its value head.",
    )
