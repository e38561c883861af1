"""Action distributions: turn a model's outputs into a probability distribution over actions.

The model outputs ``inputs`` of shape ``(B, num_outputs)``; a distribution class reads them
(``TorchCategorical``: logits; ``TorchDiagGaussian``: mean and log-std halves) and offers
``sample()``, ``logp(actions)``, ``entropy()`` and ``kl(other)``, each per row: ``(B,)``.
``required_model_output_shape(action_space, model_config)`` tells the catalog how many outputs the
model needs. Write your own by subclassing ``ActionDistribution`` (the 2021 RLlib tutorial's
``MyActionDist``).

Introduced in notebooks/06_models.ipynb.
"""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces
from torch.distributions import Categorical, Independent, Normal, kl_divergence

from course_lib.models.torch_model import to_tensor


def _require_space(dist_class, action_space, space_type) -> None:
    if not isinstance(action_space, space_type):
        raise TypeError(
            f"{dist_class.__name__} is for {space_type.__name__} action spaces, got {action_space}."
        )


class ActionDistribution:
    """Interface of an action distribution over a batch: ``inputs`` ``(B, num_outputs)`` from
    ``model``.

    Subclasses implement ``required_model_output_shape``, ``sample``, ``deterministic_sample``,
    ``logp``, ``entropy`` and ``kl``, and store the action they return from ``sample()`` and
    ``deterministic_sample()`` in ``self.last_sample`` so that ``sampled_action_logp()`` works.

    Introduced in notebooks/06_models.ipynb.
    """

    def __init__(self, inputs, model=None):
        self.inputs = to_tensor(inputs, dtype=torch.float32)
        self.model = model
        self.last_sample = None

    @staticmethod
    def required_model_output_shape(action_space: spaces.Space, model_config: dict) -> int:
        """How many outputs per row the model must produce for this distribution."""
        raise NotImplementedError

    def sample(self) -> torch.Tensor:
        """A random action per row, ``(B, ...)``."""
        raise NotImplementedError(f"{type(self).__name__} must implement sample().")

    def deterministic_sample(self) -> torch.Tensor:
        """The most likely action per row (argmax / mean), ``(B, ...)``; used with
        ``explore=False``."""
        raise NotImplementedError(f"{type(self).__name__} must implement deterministic_sample().")

    def logp(self, actions) -> torch.Tensor:
        """Log-probability (density) of ``actions`` ``(B, ...)`` under each row's distribution:
        ``(B,)``."""
        raise NotImplementedError(f"{type(self).__name__} must implement logp(actions).")

    def entropy(self) -> torch.Tensor:
        """Entropy of each row's distribution: ``(B,)``."""
        raise NotImplementedError(f"{type(self).__name__} must implement entropy().")

    def kl(self, other: ActionDistribution) -> torch.Tensor:
        """``KL(self || other)`` per row: ``(B,)``."""
        raise NotImplementedError(f"{type(self).__name__} must implement kl(other).")

    def sampled_action_logp(self) -> torch.Tensor:
        """``logp`` of the action returned by the last ``sample()`` (or ``deterministic_sample()``):
        ``(B,)``."""
        if self.last_sample is None:
            raise RuntimeError(
                f"{type(self).__name__}.sampled_action_logp() needs a sample: call sample() first "
                f"(custom distributions: store the sampled action in self.last_sample)."
            )
        return self.logp(self.last_sample)

    def _check_same_type(self, other) -> None:
        if type(other) is not type(self):
            raise TypeError(
                f"kl() compares two {type(self).__name__}s, got a {type(other).__name__}."
            )


class TorchDistributionWrapper(ActionDistribution):
    """An ActionDistribution backed by a ``torch.distributions`` object in ``self.dist``.

    Subclasses build ``self.dist`` (whose ``log_prob``/``entropy`` return one value per row) and
    implement ``deterministic_sample``; sampling, logp, entropy and KL come from torch.

    Introduced in notebooks/06_models.ipynb.
    """

    dist: torch.distributions.Distribution

    def sample(self) -> torch.Tensor:
        self.last_sample = self.dist.sample()
        return self.last_sample

    def logp(self, actions) -> torch.Tensor:
        return self.dist.log_prob(self._actions_as_tensor(actions))

    def entropy(self) -> torch.Tensor:
        return self.dist.entropy()

    def kl(self, other: TorchDistributionWrapper) -> torch.Tensor:
        self._check_same_type(other)
        return kl_divergence(self.dist, other.dist)

    def _actions_as_tensor(self, actions) -> torch.Tensor:
        return to_tensor(actions, device=self.inputs.device)


class TorchCategorical(TorchDistributionWrapper):
    """Categorical over ``Discrete(n)`` actions; ``inputs`` are logits ``(B, n)``; actions ``(B,)``
    int64.

    Introduced in notebooks/06_models.ipynb.
    """

    def __init__(self, inputs, model=None):
        super().__init__(inputs, model)
        self._dist = None

    # Acting needs only sample() and logp(), computed below straight from the logits: building
    # torch's Categorical normalizes them first, which costs a rollout worker more than the
    # sampling itself. entropy() and kl() build it when they are first called.
    @property
    def dist(self) -> Categorical:
        if self._dist is None:
            self._dist = Categorical(logits=self.inputs, validate_args=False)
        return self._dist

    @dist.setter
    def dist(self, value) -> None:
        self._dist = value

    @staticmethod
    def required_model_output_shape(action_space, model_config) -> int:
        _require_space(TorchCategorical, action_space, spaces.Discrete)
        return int(action_space.n)

    def sample(self) -> torch.Tensor:
        # The Gumbel-max trick: argmax(logits + g) with g ~ Gumbel(0, 1) = -log(E), E ~ Exp(1),
        # is an exact sample of softmax(logits), with no normalization and no torch.multinomial
        # (which costs more than the network's forward pass on a batch of 8).
        noise = torch.empty_like(self.inputs).exponential_().log_()
        self.last_sample = (self.inputs - noise).argmax(dim=-1)
        return self.last_sample

    def logp(self, actions) -> torch.Tensor:
        index = self._actions_as_tensor(actions).unsqueeze(-1)
        return torch.log_softmax(self.inputs, dim=-1).gather(-1, index).squeeze(-1)

    def deterministic_sample(self) -> torch.Tensor:
        self.last_sample = self.inputs.argmax(dim=-1)
        return self.last_sample

    def _actions_as_tensor(self, actions) -> torch.Tensor:
        return super()._actions_as_tensor(actions).reshape(-1).long()


class TorchMultiCategorical(ActionDistribution):
    """One Categorical per component of ``MultiDiscrete(nvec)``; ``inputs`` ``(B, sum(nvec))`` split
    by ``input_lens``.

    Actions are ``(B, len(nvec))`` int64; ``logp``, ``entropy`` and ``kl`` are sums over components.
    The catalog returns ``functools.partial(TorchMultiCategorical, input_lens=nvec)``.

    Introduced in notebooks/06_models.ipynb.
    """

    def __init__(self, inputs, model=None, input_lens=None):
        super().__init__(inputs, model)
        if input_lens is None or sum(int(n) for n in input_lens) != self.inputs.shape[-1]:
            raise ValueError(
                "TorchMultiCategorical needs input_lens (the nvec of the MultiDiscrete space) "
                f"summing to the number of inputs {self.inputs.shape[-1]}, got {input_lens!r}."
            )
        self.input_lens = [int(n) for n in input_lens]
        self.cats = [
            Categorical(logits=part, validate_args=False)
            for part in torch.split(self.inputs, self.input_lens, dim=-1)
        ]

    @staticmethod
    def required_model_output_shape(action_space, model_config) -> int:
        _require_space(TorchMultiCategorical, action_space, spaces.MultiDiscrete)
        return int(np.sum(action_space.nvec))

    def sample(self) -> torch.Tensor:
        self.last_sample = torch.stack([cat.sample() for cat in self.cats], dim=-1)
        return self.last_sample

    def deterministic_sample(self) -> torch.Tensor:
        self.last_sample = torch.stack([cat.logits.argmax(dim=-1) for cat in self.cats], dim=-1)
        return self.last_sample

    def logp(self, actions) -> torch.Tensor:
        actions = to_tensor(actions, device=self.inputs.device).long().reshape(-1, len(self.cats))
        return sum(cat.log_prob(actions[:, i]) for i, cat in enumerate(self.cats))

    def entropy(self) -> torch.Tensor:
        return sum(cat.entropy() for cat in self.cats)

    def kl(self, other: TorchMultiCategorical) -> torch.Tensor:
        self._check_same_type(other)
        return sum(
            kl_divergence(mine, theirs) for mine, theirs in zip(self.cats, other.cats, strict=True)
        )


class TorchDiagGaussian(TorchDistributionWrapper):
    """Gaussian with diagonal covariance over ``Box`` actions; ``inputs``
    ``(B, 2d)`` = ``[mean, log_std]``.

    Actions are ``(B, d)`` with ``d = prod(action_space.shape)`` (flattened); ``logp``, ``entropy``
    and ``kl`` sum over the d dimensions. Samples are not clipped to the Box: that is the policy's
    job.

    Introduced in notebooks/06_models.ipynb.
    """

    def __init__(self, inputs, model=None):
        super().__init__(inputs, model)
        mean, log_std = torch.chunk(self.inputs, 2, dim=-1)
        self.mean, self.log_std = mean, log_std
        self.dist = Independent(Normal(mean, log_std.exp()), 1)

    @staticmethod
    def required_model_output_shape(action_space, model_config) -> int:
        _require_space(TorchDiagGaussian, action_space, spaces.Box)
        return 2 * int(np.prod(action_space.shape))

    def deterministic_sample(self) -> torch.Tensor:
        self.last_sample = self.mean
        return self.last_sample

    def _actions_as_tensor(self, actions) -> torch.Tensor:
        return super()._actions_as_tensor(actions).float().reshape(self.mean.shape)


class TorchDeterministic(ActionDistribution):
    """A point mass on the model's output: ``sample() == inputs`` ``(B, d)``; logp, entropy and KL
    are 0.

    For deterministic policies (DDPG-style), chosen with ``dist_type="deterministic"``.

    Introduced in notebooks/06_models.ipynb.
    """

    @staticmethod
    def required_model_output_shape(action_space, model_config) -> int:
        _require_space(TorchDeterministic, action_space, spaces.Box)
        return int(np.prod(action_space.shape))

    def sample(self) -> torch.Tensor:
        self.last_sample = self.inputs
        return self.last_sample

    deterministic_sample = sample

    def _zeros(self) -> torch.Tensor:
        return torch.zeros(self.inputs.shape[0], device=self.inputs.device)

    def logp(self, actions) -> torch.Tensor:
        return self._zeros()

    def entropy(self) -> torch.Tensor:
        return self._zeros()

    def kl(self, other: TorchDeterministic) -> torch.Tensor:
        self._check_same_type(other)
        return self._zeros()
