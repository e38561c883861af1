"""Graders of lessons 06-07 accept right answers and name the mistake in wrong ones."""

from __future__ import annotations

import pytest
from torch import nn

from course_lib import checks
from course_lib.models import TorchModelV2
from course_lib.policy import PGTorchPolicy, masked_mean, policy_gradient_loss
from course_lib.postprocessing import compute_advantages_by_episode


class TwoHeads(TorchModelV2):
    def __init__(self, obs_space, action_space, num_outputs, model_config, name, hidden=16):
        super().__init__(obs_space, action_space, num_outputs, model_config, name)
        self.body = nn.Sequential(nn.Linear(self.obs_size, hidden), nn.Tanh())
        self.logits = nn.Linear(hidden, num_outputs)
        self.value = nn.Linear(hidden, 1)

    def forward(self, input_dict, state, seq_lens):
        self._features = self.body(input_dict["obs"])
        return self.logits(self._features), state

    def value_function(self):
        return self.value(self._features).squeeze(-1)


class ValueNotSqueezed(TwoHeads):
    def value_function(self):
        return self.value(self._features)


class FixedHidden(TwoHeads):
    def __init__(self, obs_space, action_space, num_outputs, model_config, name, hidden=16):
        super().__init__(obs_space, action_space, num_outputs, model_config, name, hidden=16)


def test_custom_model_accepts_a_two_headed_model(capsys):
    checks.check_custom_model(TwoHeads)
    assert "Exercise 6.1 passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    "model, hint",
    [
        (ValueNotSqueezed, "squeeze"),
        (FixedHidden, "hidden=48"),
        (nn.Linear, "subclasses TorchModelV2"),
    ],
)
def test_custom_model_names_the_mistake(model, hint):
    with pytest.raises(checks.CheckFailed, match=hint):
        checks.check_custom_model(model)


def test_reinforce_loss_accepts_the_reference(capsys):
    checks.check_reinforce_loss(policy_gradient_loss)
    assert "Exercise 7.1 passed" in capsys.readouterr().out


def _logp(model, dist_class, train_batch):
    return dist_class(model.from_batch(train_batch)[0], model).logp(train_batch["actions"])


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda p, m, d, b: (_logp(m, d, b) * b["advantages"]).mean(), "sign is flipped"),
        (lambda p, m, d, b: -(_logp(m, d, b) * b["rewards"]).mean(), "reward-to-go"),
        (lambda p, m, d, b: -(_logp(m, d, b) * b["advantages"]).sum(), "summed"),
        (lambda p, m, d, b: -(_logp(m, d, b) * b["advantages"]), "scalar"),
    ],
)
def test_reinforce_loss_names_the_mistake(wrong, hint):
    with pytest.raises(checks.CheckFailed, match=hint):
        checks.check_reinforce_loss(wrong)


def baseline_postprocess(policy, batch, other_agent_batches=None, episode=None):
    return compute_advantages_by_episode(
        batch,
        policy.config["gamma"],
        use_gae=False,
        use_critic=True,
        value_fn=policy.compute_values,
    )


def baseline_loss(policy, model, dist_class, train_batch):
    pg_loss = policy_gradient_loss(
        policy, model, dist_class, train_batch
    )  # runs the model on this batch first
    return pg_loss + 0.5 * masked_mean(
        (model.value_function() - train_batch["value_targets"]) ** 2, train_batch
    )


def test_pg_with_baseline_accepts_the_reference(capsys):
    cls = PGTorchPolicy.with_updates(
        name="PGWithBaseline", postprocess_fn=baseline_postprocess, loss_fn=baseline_loss
    )
    checks.check_pg_with_baseline(cls)
    assert "Exercise 7.2 passed" in capsys.readouterr().out


def test_pg_with_baseline_detects_a_missing_value_loss():
    cls = PGTorchPolicy.with_updates(name="PGWithBaseline", postprocess_fn=baseline_postprocess)
    with pytest.raises(checks.CheckFailed, match="value head gets no gradient"):
        checks.check_pg_with_baseline(cls)


def test_pg_with_baseline_detects_plain_returns():
    cls = PGTorchPolicy.with_updates(name="PGWithBaseline", loss_fn=baseline_loss)
    with pytest.raises(checks.CheckFailed, match="value_targets should be the discounted returns"):
        checks.check_pg_with_baseline(cls)


def test_pg_with_baseline_wants_the_name():
    with pytest.raises(checks.CheckFailed, match="name='PGWithBaseline'"):
        checks.check_pg_with_baseline(
            PGTorchPolicy.with_updates(postprocess_fn=baseline_postprocess, loss_fn=baseline_loss)
        )
