"""Graders for notebooks/13_algorithms.ipynb: PPO's clipped surrogate, and a minimal PPO loss built
on it."""

from __future__ import annotations

import numpy as np
import torch

from ._common import CheckFailed, passed, require_callable


def _reference_surrogate(logp, old_logp, advantages, clip_param):
    ratio = torch.exp(logp - old_logp)
    return torch.min(
        ratio * advantages, torch.clamp(ratio, 1.0 - clip_param, 1.0 + clip_param) * advantages
    )


def _surrogate_inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(logp, old_logp, advantages), each (B,): a grid of ratios from 0.45 to 1.55 crossed with
    advantages of both signs, so that every region of the clip (inside, below 1 - eps, above
    1 + eps; A > 0 and A < 0) has rows, followed by random rows. No grid ratio sits on a clip
    boundary, where gradients are ambiguous."""
    rng = np.random.default_rng(seed)
    grid_ratios = np.repeat(np.linspace(0.45, 1.55, 12), 4)
    grid_advantages = np.tile([1.5, 0.4, -0.6, -2.0], 12)
    random_ratios = np.exp(rng.normal(0.0, 0.4, 40))
    random_advantages = rng.normal(0.0, 1.0, 40)
    ratios = np.concatenate([grid_ratios, random_ratios])
    old_logp = np.log(rng.uniform(0.05, 0.6, len(ratios)))
    logp = old_logp + np.log(ratios)
    advantages = np.concatenate([grid_advantages, random_advantages])
    return tuple(torch.tensor(x, dtype=torch.float32) for x in (logp, old_logp, advantages))


def _first_difference(got, want, logp, old_logp, advantages) -> str:
    row = int(torch.argmax((got - want).abs()))
    ratio = float(torch.exp(logp[row] - old_logp[row]))
    return (
        f"e.g. row {row} (ratio {ratio:.3f}, advantage {float(advantages[row]):+.3f}): expected "
        f"{float(want[row]):+.4f}, got {float(got[row]):+.4f}"
    )


def check_clipped_surrogate(clipped_surrogate) -> None:
    """Exercise 13.1: ``min(r * A, clip(r, 1 - eps, 1 + eps) * A)`` per row, with
    ``r = exp(logp - old_logp)``."""
    require_callable("check_clipped_surrogate", "clipped_surrogate", clipped_surrogate)
    base_logp, old_logp, advantages = _surrogate_inputs()
    for clip_param in (0.2, 0.3):
        logp = base_logp.clone().requires_grad_(True)
        got = clipped_surrogate(logp, old_logp, advantages, clip_param)
        if not isinstance(got, torch.Tensor):
            raise CheckFailed(
                "13.1",
                "return a torch.Tensor built with torch operations (torch.exp, torch.clamp, "
                f"torch.min); got {type(got).__name__}.",
            )
        if got.numel() == 1:
            raise CheckFailed(
                "13.1",
                "you returned one number (a mean or a sum?). Return the surrogate of every row, "
                "shape (B,): the loss takes the mean later, and the grader compares row by row.",
            )
        if got.shape != advantages.shape:
            raise CheckFailed(
                "13.1",
                f"expected shape {tuple(advantages.shape)} (one value per row), got "
                f"{tuple(got.shape)}. Combine the tensors element-wise: "
                "torch.min(a, b), not min(a) or a.max(dim=...).",
            )
        if not got.requires_grad:
            raise CheckFailed(
                "13.1",
                "the result carries no gradient back to logp: the loss could not train the policy. "
                "Do not .detach() it, go through numpy or wrap "
                "it in torch.no_grad(); use torch ops on logp.",
            )
        want = _reference_surrogate(logp, old_logp, advantages, clip_param)
        if not torch.allclose(got, want, atol=1e-5, rtol=1e-5):
            raise CheckFailed(
                "13.1",
                _diagnose_surrogate(got.detach(), logp.detach(), old_logp, advantages, clip_param),
            )
        (got_grad,) = torch.autograd.grad(got.sum(), logp)
        (want_grad,) = torch.autograd.grad(want.sum(), logp)
        if not torch.allclose(got_grad, want_grad, atol=1e-5):
            raise CheckFailed(
                "13.1",
                "the values are right but the gradient with respect to logp is not: part of the "
                "computation is detached (.detach(), .item() or numpy). Only the clipped branch, "
                "where the clip is active, should have zero gradient.",
            )
    passed(
        "13.1",
        "the surrogate matches PPO's on every row, inside and outside the clip range, for A > 0 "
        "and A < 0, and its gradient flows to logp.",
    )


def _diagnose_surrogate(got, logp, old_logp, advantages, clip_param) -> str:
    """The hint for a wrong surrogate: which typical mistake reproduces the learner's values."""

    def close(candidate) -> bool:
        return torch.allclose(got, candidate, atol=1e-5, rtol=1e-5)

    ratio = torch.exp(logp - old_logp)
    low, high = 1.0 - clip_param, 1.0 + clip_param
    clipped = torch.clamp(ratio, low, high)
    want = _reference_surrogate(logp, old_logp, advantages, clip_param)
    if close(-want):
        return (
            "the sign is flipped: return the surrogate objective itself (the quantity PPO "
            "maximises); the loss puts the minus sign in front of its mean."
        )
    divided = logp / old_logp
    if close(torch.min(divided * advantages, torch.clamp(divided, low, high) * advantages)):
        return (
            "the ratio pi(a|s) / pi_old(a|s) is exp(logp - old_logp): log-probabilities are "
            "subtracted, not divided (logp / old_logp is not a probability ratio)."
        )
    inverted = torch.exp(old_logp - logp)
    if close(torch.min(inverted * advantages, torch.clamp(inverted, low, high) * advantages)):
        return (
            "the ratio is upside down: r = exp(logp - old_logp), the new policy over the old one."
        )
    if close(torch.max(ratio * advantages, clipped * advantages)):
        return (
            "you took the maximum of the two terms. PPO takes the minimum, a pessimistic bound: "
            "the ratio may not earn more than the clipped objective allows, "
            "but a ratio that went the wrong way is fully penalised."
        )
    if close(ratio * advantages):
        return (
            "nothing was clipped: clamp the ratio to [1 - clip_param, 1 + clip_param] and take "
            f"the min with r * A ({_first_difference(got, want, logp, old_logp, advantages)})."
        )
    if close(clipped * advantages):
        return (
            "you returned only the clipped term. Take torch.min with the unclipped r * A: where "
            "the ratio moved the wrong way (A > 0 and r < 1 - eps, or "
            "A < 0 and r > 1 + eps) the clip must not soften the penalty. "
            + _first_difference(got, want, logp, old_logp, advantages)
            + "."
        )
    clipped_advantages = torch.clamp(advantages, low, high)
    if close(torch.min(ratio * advantages, ratio * clipped_advantages)) or close(
        torch.min(ratio * advantages, clipped_advantages)
    ):
        return (
            "clip the probability ratio, not the advantage: "
            "torch.clamp(ratio, 1 - clip_param, 1 + clip_param) * advantages."
        )
    for other in (0.1, 0.2, 0.3):
        if other != clip_param and close(_reference_surrogate(logp, old_logp, advantages, other)):
            return (
                f"with clip_param={clip_param} your function clipped at "
                f"{other}: use the clip_param argument, not a fixed number."
            )
    if close(
        torch.min(ratio * advantages, torch.clamp(ratio, -clip_param, clip_param) * advantages)
    ):
        return (
            "the clip range is around 1, not 0: torch.clamp(ratio, 1 - clip_param, 1 + clip_param)."
        )
    return (
        "the values differ from min(r * A, clip(r, 1 - eps, 1 + eps) * A) with "
        f"r = exp(logp - old_logp): {_first_difference(got, want, logp, old_logp, advantages)}."
    )


# --- 12.2 a minimal PPO loss ----------------------------------------------------------------------

MINIMAL_CONFIG = {
    "model": {"fcnet_hiddens": [32]},
    "seed": 0,
    "clip_param": 0.2,
    "vf_loss_coeff": 0.5,
    "kl_coeff": 0.0,
}


def _ppo_policy_and_batch():
    """A PPO policy, a postprocessed CartPole batch it sampled, and its weights moved a little
    since, so that the probability ratios differ from 1 and some rows are clipped."""
    import gymnasium as gym

    from course_lib.agents.ppo import PPOTorchPolicy
    from course_lib.evaluation import RolloutWorker

    worker = RolloutWorker(
        env_creator=lambda env_config: gym.make("CartPole-v1"),
        policy_class=PPOTorchPolicy,
        config={**MINIMAL_CONFIG, "num_envs_per_worker": 2, "rollout_fragment_length": 100},
    )
    batch = worker.sample()
    worker.stop()
    policy = worker.get_policy()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in policy.model.parameters():
            param.add_(0.3 * torch.randn(param.shape, generator=generator))
    return policy, policy._lazy_tensor_dict(batch)


def check_minimal_ppo_loss(minimal_ppo_loss) -> None:
    """Exercise 13.2: ``-mean(clipped surrogate) + vf_loss_coeff * mean((V - value_targets)^2)``."""
    require_callable("check_minimal_ppo_loss", "minimal_ppo_loss", minimal_ppo_loss)
    policy, train_batch = _ppo_policy_and_batch()
    model, config = policy.model, policy.config
    model.zero_grad()
    loss = minimal_ppo_loss(policy, model, policy.dist_class, train_batch)
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        raise CheckFailed(
            "13.2",
            f"the loss must be one number, a 0-d torch tensor (take .mean() of each part); "
            f"got {type(loss).__name__} {tuple(getattr(loss, 'shape', ()))}.",
        )
    if not loss.requires_grad:
        raise CheckFailed(
            "13.2",
            "the loss does not depend on the model's parameters: run model.from_batch(train_batch) "
            "and build logp and the value from its outputs.",
        )
    loss.backward()
    grads = {name: param.grad for name, param in model.named_parameters()}

    logits, _ = model.from_batch(train_batch)
    dist = policy.dist_class(logits, model)
    values = model.value_function()
    actions, old_logp = train_batch["actions"], train_batch["action_logp"]
    advantages, targets = train_batch["advantages"], train_batch["value_targets"]
    with torch.no_grad():
        surrogate = _reference_surrogate(
            dist.logp(actions), old_logp, advantages, config["clip_param"]
        ).mean()
        vf_loss = torch.mean((values - targets) ** 2)
        vf_coeff = config["vf_loss_coeff"]
        want = -surrogate + vf_coeff * vf_loss
        stale_vf_loss = torch.mean((train_batch["vf_preds"] - targets) ** 2)
        ratio_one_surrogate = _reference_surrogate(
            old_logp, old_logp, advantages, config["clip_param"]
        ).mean()
    got = loss.detach()

    def close(candidate) -> bool:
        return bool(torch.isclose(got, candidate, atol=1e-4, rtol=1e-4))

    if not close(want):
        if close(surrogate + vf_coeff * vf_loss):
            hint = (
                "the policy term has the wrong sign: optimizers "
                "minimise, so the loss is MINUS the mean surrogate."
            )
        elif close(-surrogate):
            hint = (
                "the critic is not trained: add policy.config['vf_loss_coeff'] "
                "* mean((model.value_function() - value_targets) ** 2)."
            )
        elif close(-surrogate + vf_loss):
            hint = "weigh the value loss with policy.config['vf_loss_coeff'] (0.5 in this check)."
        elif close(-surrogate + 0.5 * vf_coeff * vf_loss):
            hint = (
                "this exercise's value loss is mean((V - "
                "value_targets) ** 2), without A2C's factor 1/2."
            )
        elif close(-surrogate + vf_coeff * stale_vf_loss):
            hint = (
                "the value term uses train_batch['vf_preds'], the values recorded while sampling, "
                "which carry no gradient. Use model.value_function() "
                "after model.from_batch(train_batch)."
            )
        elif close(-ratio_one_surrogate + vf_coeff * vf_loss):
            hint = (
                "the ratio is 1 on every row: you used the recorded action_logp as the new "
                "log-probability. Compute logp = dist_class(logits, "
                "model).logp(train_batch['actions']) from the model's current output."
            )
        elif any(
            close(candidate)
            for candidate in (
                want * len(actions),
                -surrogate * len(actions) + vf_coeff * vf_loss,
                -surrogate + vf_coeff * vf_loss * len(actions),
            )
        ):
            hint = "take the mean over the batch of each part, not the sum."
        else:
            hint = (
                "expected -mean(clipped_surrogate) + vf_loss_coeff * mean((V - value_targets)^2) "
                f"= {want.item():.5f} on the check batch, got {got.item():.5f}. "
                "Pass policy.config['clip_param'] to clipped_surrogate."
            )
        raise CheckFailed("13.2", hint)
    value_grads = [g for name, g in grads.items() if name.startswith("value")]
    policy_grads = [g for name, g in grads.items() if not name.startswith("value")]
    if all(g is None or not g.abs().sum() for g in policy_grads):
        raise CheckFailed(
            "13.2",
            "the policy layers get no gradient: compute logp "
            "from the model's output, not from numpy copies.",
        )
    if value_grads and all(g is None or not g.abs().sum() for g in value_grads):
        raise CheckFailed(
            "13.2",
            "the value head gets no gradient: use model.value_function(), not a detached copy.",
        )
    passed(
        "13.2",
        "the loss matches -mean(surrogate) + vf_loss_coeff * vf_loss on the check batch "
        f"({got.item():.4f}), and both the policy and the value head get gradients.",
    )
