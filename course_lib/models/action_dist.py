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


class TorchSquashedGaussian(ActionDistribution):
    """A Gaussian squashed by tanh into the Box ``[low, high]``: SAC's policy distribution.

    ``inputs`` ``(B, 2d)`` = ``[mean, log_std]`` of ``u ~ N(mean, std)``; the action is
    ``a = low + (tanh(u) + 1) * (high - low) / 2``, so every sample lies inside the bounds and
    no clipping is needed. Its density follows from the change of variables ``u -> a``:

        log p(a) = log N(u; mean, std) - sum_i log(1 - tanh(u_i)^2)
                                       - sum_i log((high_i - low_i) / 2)

    with ``log(1 - tanh(u)^2) = 2 * (log 2 - u - softplus(-2u))``, which stays finite where
    ``tanh(u)`` rounds to +-1 (``|u|`` above ~9 in float32). ``sample()`` is reparameterized
    (``rsample``: gradients flow from the action back to ``mean`` and ``log_std``, which SAC's
    actor loss needs) and remembers ``u``, so ``sampled_action_logp()`` never inverts tanh.
    ``logp(actions)`` of given actions inverts it with ``atanh``, clipped just inside +-1.
    There is no closed form for the entropy or the KL of two such distributions.
    ``low``/``high`` are floats or ``(d,)`` arrays; the catalog passes the action space's
    (``dist_type="squashed_gaussian"``). Introduced in notebooks/16_continuous_control.ipynb.
    """

    # atanh(1 - 1e-6) ~ 7.25: actions on a bound count as just inside it.
    EPSILON = 1e-6

    def __init__(self, inputs, model=None, low=-1.0, high=1.0):
        super().__init__(inputs, model)
        mean, log_std = torch.chunk(self.inputs, 2, dim=-1)
        self.mean, self.log_std = mean, log_std
        self.normal = Normal(mean, log_std.exp())
        self.low = torch.as_tensor(low, dtype=torch.float32, device=self.inputs.device)
        self.high = torch.as_tensor(high, dtype=torch.float32, device=self.inputs.device)
        if not bool(torch.all(torch.isfinite(self.low) & torch.isfinite(self.high))) or not bool(
            torch.all(self.low < self.high)
        ):
            raise ValueError(
                "TorchSquashedGaussian squashes into [low, high] and needs finite bounds with "
                f"low < high, got low={low!r}, high={high!r}. For an unbounded Box action space "
                "use TorchDiagGaussian."
            )
        self.last_u = None

    @staticmethod
    def required_model_output_shape(action_space, model_config) -> int:
        _require_space(TorchSquashedGaussian, action_space, spaces.Box)
        return 2 * int(np.prod(action_space.shape))

    def squash(self, u: torch.Tensor) -> torch.Tensor:
        """``u (B, d)`` -> action ``(B, d)`` in ``[low, high]``."""
        return self.low + (torch.tanh(u) + 1.0) * (self.high - self.low) / 2.0

    def unsquash(self, actions: torch.Tensor) -> torch.Tensor:
        """The inverse of ``squash`` (actions on a bound move EPSILON inside it)."""
        unit = 2.0 * (actions - self.low) / (self.high - self.low) - 1.0
        return torch.atanh(unit.clamp(-1.0 + self.EPSILON, 1.0 - self.EPSILON))

    def sample(self) -> torch.Tensor:
        self.last_u = self.normal.rsample()
        self.last_sample = self.squash(self.last_u)
        return self.last_sample

    def deterministic_sample(self) -> torch.Tensor:
        self.last_u = self.mean
        self.last_sample = self.squash(self.mean)
        return self.last_sample

    def logp_of_u(self, u: torch.Tensor) -> torch.Tensor:
        """``log p(squash(u))`` per row ``(B,)``, computed from the pre-squash ``u (B, d)``."""
        log_det_tanh = 2.0 * (np.log(2.0) - u - torch.nn.functional.softplus(-2.0 * u))
        log_half_range = torch.log((self.high - self.low) / 2.0).expand_as(u)
        return (self.normal.log_prob(u) - log_det_tanh - log_half_range).sum(dim=-1)

    def logp(self, actions) -> torch.Tensor:
        actions = to_tensor(actions, device=self.inputs.device).float().reshape(self.mean.shape)
        return self.logp_of_u(self.unsquash(actions))

    def sampled_action_logp(self) -> torch.Tensor:
        if self.last_u is None:
            return super().sampled_action_logp()  # raises: nothing was sampled yet
        return self.logp_of_u(self.last_u)

    def entropy(self) -> torch.Tensor:
        raise NotImplementedError(
            "TorchSquashedGaussian has no closed-form entropy; estimate it as "
            "-sampled_action_logp() of a sample (what SAC does)."
        )

    def kl(self, other) -> torch.Tensor:
        raise NotImplementedError(
            "TorchSquashedGaussian has no closed-form KL divergence; use TorchDiagGaussian for "
            "algorithms with a KL term (PPO)."
        )
