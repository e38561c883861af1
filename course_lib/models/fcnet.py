"""FullyConnectedNetwork: the default model, an MLP with a policy head and a value head.

Initialization (the choice of PPO implementations such as CleanRL and stable-baselines3):
orthogonal weights and zero biases; gain sqrt(2) for hidden layers, 1.0 for the value head, and
0.01 for the logits layer, so that the initial logits are close to 0: a near-uniform Categorical,
or a Gaussian with mean near 0, which is what exploration at the start of training needs.

Introduced in notebooks/06_models.ipynb.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from course_lib.models.torch_model import TorchModelV2

HIDDEN_GAIN = math.sqrt(2.0)
LOGITS_GAIN = 0.01
VALUE_GAIN = 1.0

_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "linear": None, None: None}


def orthogonal_linear(in_size: int, out_size: int, gain: float) -> nn.Linear:
    """An ``nn.Linear(in_size, out_size)`` with orthogonal weights of the given gain and zero bias.

    Introduced in notebooks/06_models.ipynb.
    """
    layer = nn.Linear(in_size, out_size)
    nn.init.orthogonal_(layer.weight, gain=gain)
    nn.init.zeros_(layer.bias)
    return layer


def mlp(in_size: int, hiddens: list[int], activation: str | None) -> nn.Sequential:
    """Hidden layers ``in_size -> hiddens[0] -> ... -> hiddens[-1]``, each followed by
    ``activation``.

    An empty ``hiddens`` gives the identity. Introduced in notebooks/06_models.ipynb.
    """
    if activation not in _ACTIVATIONS:
        raise ValueError(
            f"Unknown fcnet_activation {activation!r}. Expected "
            "one of 'tanh', 'relu', 'linear' (or None)."
        )
    layers, size = [], in_size
    for hidden in hiddens:
        layers.append(orthogonal_linear(size, int(hidden), HIDDEN_GAIN))
        if _ACTIVATIONS[activation] is not None:
            layers.append(_ACTIVATIONS[activation]())
        size = int(hidden)
    return nn.Sequential(*layers)


class FreeLogStdLayer(nn.Module):
    """Logits layer for ``free_log_std``: a linear mean ``(B, n/2)`` next to a learned log-std
    vector ``(n/2,)``.

    Output ``(B, n)`` = ``[mean, log_std]``; the log-std does not depend on the input and starts at
    0 (std 1).

    Introduced in notebooks/06_models.ipynb.
    """

    def __init__(self, in_size: int, num_outputs: int):
        super().__init__()
        if num_outputs % 2:
            raise ValueError(
                "free_log_std needs an even num_outputs (mean and log-std halves, as for a "
                f"DiagGaussian), got {num_outputs}."
            )
        self.mean = orthogonal_linear(in_size, num_outputs // 2, LOGITS_GAIN)
        self.log_std = nn.Parameter(torch.zeros(num_outputs // 2))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        mean = self.mean(features)
        return torch.cat([mean, self.log_std.expand_as(mean)], dim=-1)


def logits_layer(in_size: int, num_outputs: int, free_log_std: bool) -> nn.Module:
    """The last layer of a policy head: ``(B, in_size) -> (B, num_outputs)``, small init.

    Introduced in notebooks/06_models.ipynb.
    """
    if free_log_std:
        return FreeLogStdLayer(in_size, num_outputs)
    return orthogonal_linear(in_size, num_outputs, LOGITS_GAIN)


class FullyConnectedNetwork(TorchModelV2):
    """MLP policy ``(B, obs_size) -> (B, num_outputs)`` plus a value head ``-> (B,)``.

    Reads ``fcnet_hiddens``, ``fcnet_activation``, ``vf_share_layers`` (value head on the policy's
    hidden layers, or on its own MLP of the same shape) and ``free_log_std``. With
    ``num_outputs=None`` there is no logits layer and no value head: the model returns its last
    hidden features and sets ``self.num_outputs`` to their size (how LSTMWrapper uses it).

    Introduced in notebooks/06_models.ipynb.
    """

    def __init__(self, obs_space, action_space, num_outputs, model_config, name):
        super().__init__(obs_space, action_space, num_outputs, model_config, name)
        hiddens = list(self.model_config["fcnet_hiddens"])
        activation = self.model_config["fcnet_activation"]
        feature_size = int(hiddens[-1]) if hiddens else self.obs_size
        self.hidden_layers = mlp(self.obs_size, hiddens, activation)
        self.logits_layer = None
        self.value_hidden_layers = None
        self.value_layer = None
        if num_outputs is None:
            self.num_outputs = feature_size
        else:
            self.logits_layer = logits_layer(
                feature_size, num_outputs, self.model_config["free_log_std"]
            )
            if not self.model_config["vf_share_layers"]:
                self.value_hidden_layers = mlp(self.obs_size, hiddens, activation)
            self.value_layer = orthogonal_linear(feature_size, 1, VALUE_GAIN)
        self._last_obs = None
        self._last_features = None

    def forward(self, input_dict, state, seq_lens):
        self._last_obs = input_dict["obs"]
        self._last_features = self.hidden_layers(self._last_obs)
        if self.logits_layer is None:
            return self._last_features, state
        return self.logits_layer(self._last_features), state

    def value_function(self) -> torch.Tensor:
        if self.value_layer is None:
            raise RuntimeError(
                f"{self.name} was built with num_outputs=None "
                "(features only), so it has no value head."
            )
        if self._last_obs is None:
            raise RuntimeError(
                "Call the model on a batch before value_function(): "
                "it returns values for that batch."
            )
        if self.value_hidden_layers is None:
            return self.value_layer(self._last_features).squeeze(-1)
        return self.value_layer(self.value_hidden_layers(self._last_obs)).squeeze(-1)
