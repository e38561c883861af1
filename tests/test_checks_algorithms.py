"""Graders of lesson 13 accept right answers and name the mistake in wrong ones."""

from __future__ import annotations

import pytest
import torch

from course_lib import checks

# --- 12.1 clipped_surrogate ---------------------------------------------------------------------


def surrogate_right(logp, old_logp, advantages, clip_param):
    ratio = torch.exp(logp - old_logp)
    return torch.min(
        ratio * advantages, torch.clamp(ratio, 1 - clip_param, 1 + clip_param) * advantages
    )


def test_clipped_surrogate_accepts_the_reference(capsys):
    checks.check_clipped_surrogate(surrogate_right)
    assert "Exercise 13.1 passed" in capsys.readouterr().out


def test_clipped_surrogate_accepts_the_where_form():
    def with_where(logp, old_logp, advantages, clip_param):
        ratio = torch.exp(logp - old_logp)
        clipped = torch.where(
            advantages >= 0,
            torch.clamp(ratio, max=1 + clip_param),
            torch.clamp(ratio, min=1 - clip_param),
        )
        return clipped * advantages

    checks.check_clipped_surrogate(with_where)


WRONG_SURROGATES = {
    "divided ratio": (
        lambda lp, old, a, eps: surrogate_right(torch.log(lp / old), torch.zeros_like(old), a, eps),
        "exp(logp - old_logp)",
    ),
    "max": (
        lambda lp, old, a, eps: torch.max(
            torch.exp(lp - old) * a, torch.clamp(torch.exp(lp - old), 1 - eps, 1 + eps) * a
        ),
        "PPO takes the minimum, a pessimistic bound",
    ),
    "clipped advantage": (
        lambda lp, old, a, eps: torch.min(
            torch.exp(lp - old) * a, torch.exp(lp - old) * torch.clamp(a, 1 - eps, 1 + eps)
        ),
        "clip the probability ratio, not the advantage",
    ),
    "mean": (
        lambda lp, old, a, eps: surrogate_right(lp, old, a, eps).mean(),
        "Return the surrogate of every row",
    ),
    "detached": (
        lambda lp, old, a, eps: surrogate_right(lp.detach(), old, a, eps),
        "carries no gradient back to logp",
    ),
    "numpy": (
        lambda lp, old, a, eps: surrogate_right(lp, old, a, eps).detach().numpy(),
        "return a torch.Tensor",
    ),
    "negated": (lambda lp, old, a, eps: -surrogate_right(lp, old, a, eps), "the sign is flipped"),
    "inverted ratio": (lambda lp, old, a, eps: surrogate_right(old, lp, a, eps), "upside down"),
    "no clip": (lambda lp, old, a, eps: torch.exp(lp - old) * a, "nothing was clipped"),
    "only the clipped term": (
        lambda lp, old, a, eps: torch.clamp(torch.exp(lp - old), 1 - eps, 1 + eps) * a,
        "you returned only the clipped term",
    ),
    "fixed clip": (
        lambda lp, old, a, eps: surrogate_right(lp, old, a, 0.2),
        "use the clip_param argument",
    ),
    "ratio detached in one branch": (
        lambda lp, old, a, eps: torch.min(
            torch.exp(lp - old) * a, torch.clamp(torch.exp(lp - old).detach(), 1 - eps, 1 + eps) * a
        ),
        "the gradient with respect to logp is not",
    ),
}


@pytest.mark.parametrize("mistake", WRONG_SURROGATES)
def test_clipped_surrogate_names_the_mistake(mistake):
    wrong, hint = WRONG_SURROGATES[mistake]
    with pytest.raises(
        checks.CheckFailed, match=hint.replace("(", r"\(").replace(")", r"\)")
    ) as failure:
        checks.check_clipped_surrogate(wrong)
    assert failure.value.exercise == "13.1"


def test_clipped_surrogate_wants_the_function_itself():
    with pytest.raises(TypeError, match="Pass the function without calling it"):
        checks.check_clipped_surrogate(torch.zeros(3))


# --- 12.2 minimal_ppo_loss ----------------------------------------------------------------------


def ppo_loss_from(
    surrogate_fn=surrogate_right,
    *,
    sign=-1.0,
    vf="model",
    vf_coeff=None,
    logp_source="model",
    reduce=torch.mean,
):
    def loss(policy, model, dist_class, train_batch):
        logits, _ = model.from_batch(train_batch)
        dist = dist_class(logits, model)
        logp = (
            dist.logp(train_batch["actions"])
            if logp_source == "model"
            else train_batch["action_logp"]
        )
        surrogate = surrogate_fn(
            logp, train_batch["action_logp"], train_batch["advantages"], policy.config["clip_param"]
        )
        values = model.value_function() if vf == "model" else train_batch["vf_preds"]
        coeff = policy.config["vf_loss_coeff"] if vf_coeff is None else vf_coeff
        value_loss = reduce((values - train_batch["value_targets"]) ** 2) if vf else 0.0
        return sign * reduce(surrogate) + coeff * value_loss

    return loss


def test_minimal_ppo_loss_accepts_the_reference(capsys):
    checks.check_minimal_ppo_loss(ppo_loss_from())
    assert "Exercise 13.2 passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (ppo_loss_from(sign=1.0), "wrong sign"),
        (ppo_loss_from(vf=None), "the critic is not trained"),
        (ppo_loss_from(vf_coeff=1.0), "weigh the value loss"),
        (ppo_loss_from(vf_coeff=0.25), "without A2C's factor 1/2"),
        (ppo_loss_from(vf="vf_preds"), "vf_preds"),
        (ppo_loss_from(logp_source="batch"), "the ratio is 1 on every row"),
        (ppo_loss_from(reduce=torch.sum), "the mean over the batch"),
        (
            lambda policy, model, dist_class, train_batch: ppo_loss_from()(
                policy, model, dist_class, train_batch
            ).reshape(1),
            "0-d torch tensor",
        ),
        (
            lambda policy, model, dist_class, train_batch: ppo_loss_from()(
                policy, model, dist_class, train_batch
            ).detach(),
            "does not depend on",
        ),
    ],
    ids=[
        "sign",
        "no value loss",
        "no coefficient",
        "half value loss",
        "vf_preds",
        "recorded logp",
        "sum",
        "shape",
        "detached",
    ],
)
def test_minimal_ppo_loss_names_the_mistake(wrong, hint):
    with pytest.raises(checks.CheckFailed, match=hint) as failure:
        checks.check_minimal_ppo_loss(wrong)
    assert failure.value.exercise == "13.2"
