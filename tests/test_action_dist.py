"""Action distributions and the catalog's choice of them, checked against torch.distributions and
closed forms."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch
from gymnasium import spaces

from course_lib.models import (
    ActionDistribution,
    ModelCatalog,
    TorchCategorical,
    TorchDeterministic,
    TorchDiagGaussian,
    TorchMultiCategorical,
)


@pytest.fixture(autouse=True)
def empty_registries(monkeypatch):
    monkeypatch.setattr(ModelCatalog, "_custom_models", {})
    monkeypatch.setattr(ModelCatalog, "_custom_action_dists", {})


@pytest.fixture
def rng():
    torch.manual_seed(0)
    return np.random.default_rng(0)


def test_categorical_logp_entropy_kl_match_torch_categorical(rng):
    logits, other_logits = torch.randn(6, 4), torch.randn(6, 4)
    actions = torch.as_tensor(rng.integers(0, 4, size=6))
    reference = torch.distributions.Categorical(logits=logits)
    other_reference = torch.distributions.Categorical(logits=other_logits)
    dist, other = TorchCategorical(logits, None), TorchCategorical(other_logits, None)
    torch.testing.assert_close(dist.logp(actions), reference.log_prob(actions))
    torch.testing.assert_close(dist.entropy(), reference.entropy())
    torch.testing.assert_close(
        dist.kl(other), torch.distributions.kl_divergence(reference, other_reference)
    )
    assert dist.logp(actions).shape == dist.entropy().shape == dist.kl(other).shape == (6,)


def test_categorical_logp_accepts_numpy_and_float_actions():
    logits = torch.tensor([[0.0, 1.0, 2.0]])
    expected = torch.log_softmax(logits, dim=-1)[0, 2]
    assert torch.isclose(TorchCategorical(logits).logp(np.array([2])), expected)
    assert torch.isclose(TorchCategorical(logits).logp(torch.tensor([2.0])), expected)


def test_categorical_deterministic_sample_is_argmax():
    logits = torch.tensor([[0.1, 3.0, 0.2], [5.0, 0.0, 0.0]])
    assert TorchCategorical(logits).deterministic_sample().tolist() == [1, 0]


def test_categorical_samples_follow_the_probabilities():
    torch.manual_seed(0)
    probs = torch.tensor([0.2, 0.5, 0.3])
    samples = TorchCategorical(probs.log().expand(20_000, 3)).sample()
    frequencies = torch.bincount(samples, minlength=3).float() / len(samples)
    torch.testing.assert_close(frequencies, probs, atol=0.015, rtol=0)


def test_diag_gaussian_logp_and_entropy_are_sums_of_normals(rng):
    mean, log_std = torch.randn(5, 3), torch.randn(5, 3) * 0.5
    actions = torch.randn(5, 3)
    dist = TorchDiagGaussian(torch.cat([mean, log_std], dim=1), None)
    normal = torch.distributions.Normal(mean, log_std.exp())
    torch.testing.assert_close(dist.logp(actions), normal.log_prob(actions).sum(dim=1))
    torch.testing.assert_close(dist.entropy(), normal.entropy().sum(dim=1))
    closed_form_entropy = (0.5 * math.log(2 * math.pi * math.e) + log_std).sum(dim=1)
    torch.testing.assert_close(dist.entropy(), closed_form_entropy)


def test_diag_gaussian_kl_matches_the_closed_form():
    torch.manual_seed(1)
    mean1, log_std1, mean2, log_std2 = (torch.randn(4, 2) for _ in range(4))
    dist1 = TorchDiagGaussian(torch.cat([mean1, log_std1], 1))
    dist2 = TorchDiagGaussian(torch.cat([mean2, log_std2], 1))
    var1, var2 = (2 * log_std1).exp(), (2 * log_std2).exp()
    closed_form = (log_std2 - log_std1 + (var1 + (mean1 - mean2) ** 2) / (2 * var2) - 0.5).sum(
        dim=1
    )
    torch.testing.assert_close(dist1.kl(dist2), closed_form)
    torch.testing.assert_close(dist1.kl(dist1), torch.zeros(4))


def test_diag_gaussian_deterministic_sample_is_the_mean_and_samples_have_action_shape():
    inputs = torch.tensor([[1.0, -2.0, 0.0, 0.0]])
    dist = TorchDiagGaussian(inputs)
    assert dist.deterministic_sample().tolist() == [[1.0, -2.0]]
    assert dist.sample().shape == (1, 2)


def test_multi_categorical_is_the_sum_of_its_components():
    torch.manual_seed(2)
    nvec = [3, 2, 4]
    logits, other_logits = torch.randn(5, 9), torch.randn(5, 9)
    actions = torch.stack([torch.randint(0, n, (5,)) for n in nvec], dim=1)
    dist = TorchMultiCategorical(logits, None, input_lens=nvec)
    other = TorchMultiCategorical(other_logits, None, input_lens=nvec)
    parts = [torch.distributions.Categorical(logits=p) for p in torch.split(logits, nvec, dim=1)]
    other_parts = [
        torch.distributions.Categorical(logits=p) for p in torch.split(other_logits, nvec, dim=1)
    ]
    torch.testing.assert_close(
        dist.logp(actions), sum(p.log_prob(actions[:, i]) for i, p in enumerate(parts))
    )
    torch.testing.assert_close(dist.entropy(), sum(p.entropy() for p in parts))
    expected_kl = sum(
        torch.distributions.kl_divergence(p, q) for p, q in zip(parts, other_parts, strict=True)
    )
    torch.testing.assert_close(dist.kl(other), expected_kl)
    assert dist.sample().shape == (5, 3)
    argmax = torch.stack([p.logits.argmax(dim=1) for p in parts], dim=1)
    assert torch.equal(dist.deterministic_sample(), argmax)


def test_multi_categorical_needs_input_lens_that_match_the_inputs():
    with pytest.raises(ValueError, match="input_lens"):
        TorchMultiCategorical(torch.zeros(2, 5), None, input_lens=[3, 3])
    with pytest.raises(ValueError, match="input_lens"):
        TorchMultiCategorical(torch.zeros(2, 5), None)


def test_deterministic_samples_its_inputs_with_zero_logp_entropy_and_kl():
    inputs = torch.tensor([[0.5, -1.0], [2.0, 3.0]])
    dist = TorchDeterministic(inputs, None)
    assert torch.equal(dist.sample(), inputs)
    assert torch.equal(dist.deterministic_sample(), inputs)
    assert dist.logp(inputs).tolist() == [0.0, 0.0]
    assert dist.entropy().tolist() == [0.0, 0.0]
    assert dist.kl(TorchDeterministic(inputs * 2)).tolist() == [0.0, 0.0]


@pytest.mark.parametrize(
    "dist_class, inputs",
    [
        (TorchCategorical, torch.randn(7, 3)),
        (TorchDiagGaussian, torch.randn(7, 4)),
        (functools.partial(TorchMultiCategorical, input_lens=[2, 3]), torch.randn(7, 5)),
        (TorchDeterministic, torch.randn(7, 2)),
    ],
)
def test_sampled_action_logp_is_the_logp_of_the_last_sample(dist_class, inputs):
    dist = dist_class(inputs, None)
    with pytest.raises(RuntimeError, match="call sample\\(\\) first"):
        dist.sampled_action_logp()
    actions = dist.sample()
    torch.testing.assert_close(dist.sampled_action_logp(), dist.logp(actions))
    assert dist.sampled_action_logp().shape == (7,)


def test_logp_is_differentiable_with_respect_to_the_model_outputs():
    logits = torch.zeros(3, 2, requires_grad=True)
    TorchCategorical(logits).logp(torch.tensor([0, 1, 1])).sum().backward()
    torch.testing.assert_close(logits.grad, torch.tensor([[0.5, -0.5], [-0.5, 0.5], [-0.5, 0.5]]))


def test_kl_between_different_distribution_types_is_an_error():
    with pytest.raises(TypeError, match="compares two TorchCategoricals"):
        TorchCategorical(torch.zeros(1, 2)).kl(TorchDeterministic(torch.zeros(1, 2)))


@pytest.mark.parametrize(
    "dist_class, space, expected",
    [
        (TorchCategorical, spaces.Discrete(5), 5),
        (TorchMultiCategorical, spaces.MultiDiscrete([3, 4]), 7),
        (TorchDiagGaussian, spaces.Box(-1, 1, (3,)), 6),
        (TorchDiagGaussian, spaces.Box(-1, 1, (2, 3)), 12),
        (TorchDeterministic, spaces.Box(-1, 1, (3,)), 3),
    ],
)
def test_required_model_output_shape_for_each_space(dist_class, space, expected):
    assert dist_class.required_model_output_shape(space, {}) == expected


def test_required_model_output_shape_rejects_the_wrong_space():
    with pytest.raises(TypeError, match="TorchCategorical is for Discrete"):
        TorchCategorical.required_model_output_shape(spaces.Box(-1, 1, (2,)), {})


@pytest.mark.parametrize(
    "space, dist_class, num_outputs",
    [
        (spaces.Discrete(2), TorchCategorical, 2),
        (spaces.Box(-2, 2, (3,)), TorchDiagGaussian, 6),
    ],
)
def test_catalog_picks_the_distribution_by_action_space(space, dist_class, num_outputs):
    assert ModelCatalog.get_action_dist(space, {}) == (dist_class, num_outputs)


def test_catalog_gives_multi_discrete_a_multi_categorical_with_input_lens():
    dist_class, num_outputs = ModelCatalog.get_action_dist(spaces.MultiDiscrete([3, 4]), None)
    assert num_outputs == 7
    dist = dist_class(torch.zeros(2, 7), None)
    assert isinstance(dist, TorchMultiCategorical) and dist.input_lens == [3, 4]


def test_catalog_deterministic_dist_type():
    space = spaces.Box(-1, 1, (2,))
    assert ModelCatalog.get_action_dist(space, {}, dist_type="deterministic") == (
        TorchDeterministic,
        2,
    )


def test_catalog_rejects_action_spaces_without_a_distribution():
    with pytest.raises(NotImplementedError, match="Discrete, MultiDiscrete and Box"):
        ModelCatalog.get_action_dist(spaces.Tuple([spaces.Discrete(2)]), {})


class MyActionDist(ActionDistribution):
    """The 2021 RLlib tutorial's custom distribution: needs 7 model outputs; picks the argmax of the
    first 2."""

    @staticmethod
    def required_model_output_shape(action_space, model_config):
        return 7

    def __init__(self, inputs, model):
        super().__init__(inputs, model)
        assert model is None or model.num_outputs == 7

    def sample(self):
        self.last_sample = self.inputs[:, :2].argmax(dim=1)
        return self.last_sample

    def logp(self, actions):
        return torch.log_softmax(self.inputs[:, :2], dim=1).gather(
            1, torch.as_tensor(actions)[:, None]
        )[:, 0]


def test_custom_action_dist_registered_by_name_sets_the_model_output_size():
    ModelCatalog.register_custom_action_dist("my_dist", MyActionDist)
    config = {"custom_action_dist": "my_dist"}
    dist_class, num_outputs = ModelCatalog.get_action_dist(spaces.Discrete(2), config)
    assert (dist_class, num_outputs) == (MyActionDist, 7)
    model = ModelCatalog.get_model_v2(
        spaces.Box(-1, 1, (3,)), spaces.Discrete(2), num_outputs, config
    )
    logits, _ = model({"obs": torch.zeros(4, 3)})
    dist = dist_class(logits, model)
    dist.sample()
    assert dist.sampled_action_logp().shape == (4,)
    with pytest.raises(NotImplementedError, match="MyActionDist must implement entropy"):
        dist.entropy()


def test_unknown_custom_action_dist_lists_the_registered_ones():
    ModelCatalog.register_custom_action_dist("my_dist", MyActionDist)
    with pytest.raises(
        ValueError,
        match=r"No custom action dist is registered as 'my_dsit'\. Registered: \['my_dist'\]",
    ):
        ModelCatalog.get_action_dist(spaces.Discrete(2), {"custom_action_dist": "my_dsit"})


def test_registering_a_non_distribution_is_a_type_error():
    with pytest.raises(TypeError, match="subclass of course_lib.models.ActionDistribution"):
        ModelCatalog.register_custom_action_dist("bad", torch.distributions.Categorical)


def test_catalog_refuses_other_frameworks_with_a_pytorch_only_message():
    with pytest.raises(ValueError, match='PyTorch-only.*"framework": "torch"'):
        ModelCatalog.get_action_dist(spaces.Discrete(2), {}, framework="tf")


def test_categorical_samples_follow_the_softmax_of_the_logits():
    """sample() uses the Gumbel-max trick; its frequencies must be softmax(logits)'s."""
    torch.manual_seed(0)
    logits = torch.tensor([[0.0, 1.0, -1.0, 2.0]]).repeat(40_000, 1)
    dist = TorchCategorical(logits)
    counts = torch.bincount(dist.sample(), minlength=4).double() / len(logits)
    expected = torch.softmax(logits[0].double(), dim=0)
    assert torch.allclose(counts, expected, atol=0.01)
    assert torch.allclose(dist.sampled_action_logp(), expected.log()[dist.last_sample].float())
    masked = TorchCategorical(torch.tensor([[0.0, float("-inf")]]).repeat(1000, 1))
    assert (masked.sample() == 0).all()  # a -inf logit is never drawn
