"""TorchModelV2: the interface every course_lib model implements (the 2021 RLlib tutorial's
``MyModelClass``).

A model maps ``input_dict["obs"]`` (already preprocessed to ``(B, obs_size)``) and an RNN state to
``(B, num_outputs)`` action-distribution inputs, and remembers what it needs to answer
``value_function()`` for that same batch.

Introduced in notebooks/06_models.ipynb.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from gymnasium import spaces

from course_lib.models.model_config import merge_model_config
from course_lib.models.preprocessors import get_preprocessor


def to_tensor(value, device=None, dtype=None) -> torch.Tensor:
    """``torch.as_tensor`` that also accepts lists of arrays; keeps tensors that are already right
    as they are.

    Introduced in notebooks/06_models.ipynb.
    """
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], np.ndarray):
        value = np.stack(value)
    return torch.as_tensor(value, dtype=dtype, device=device)


class TorchModelV2(torch.nn.Module):
    """Base class of course_lib models: subclass it, build layers in ``__init__``, implement
    ``forward``.

    ``__init__(obs_space, action_space, num_outputs, model_config, name)`` stores its arguments;
    ``model_config`` is merged with MODEL_DEFAULTS (unknown keys raise). ``obs_space`` is the
    environment's original space; ``self.obs_size`` is the length of its preprocessed vector,
    i.e. the input size of the first layer.

    Call the model as ``outputs, state_out = model(input_dict, state, seq_lens)``:

    - ``input_dict["obs"]``: float tensor ``(B, obs_size)`` (numpy is converted). The model also
      receives ``input_dict["obs_flat"]``, the same tensor (the name the 2021 RLlib tutorial's
      custom models use).
    - ``state``: list of tensors ``(num_seqs, ...)``, ``[]`` for feed-forward models.
    - ``seq_lens``: int tensor ``(num_seqs,)`` for recurrent models, else ``None``.
    - returns ``outputs`` ``(B, num_outputs)`` and the list of next states.

    Introduced in notebooks/06_models.ipynb.
    """

    def __init__(
        self,
        obs_space: spaces.Space,
        action_space: spaces.Space,
        num_outputs: int | None,
        model_config: Mapping | None,
        name: str,
    ):
        super().__init__()
        self.obs_space = obs_space
        self.action_space = action_space
        self.num_outputs = num_outputs
        self.model_config = merge_model_config(model_config)
        self.name = name
        self.obs_size = get_preprocessor(obs_space).size

    def _device(self) -> torch.device:
        return next(self.parameters(), torch.empty(0)).device

    def __call__(self, input_dict: Mapping, state: list | None = None, seq_lens=None):
        obs = to_tensor(input_dict["obs"], device=self._device(), dtype=torch.float32)
        if obs.dim() != 2 or obs.shape[1] != self.obs_size:
            raise ValueError(
                f"{type(self).__name__} expects input_dict['obs'] of shape (B, {self.obs_size}): "
                f"observations of {self.obs_space} after preprocessing. Got shape "
                f"{tuple(obs.shape)}. Preprocess first with "
                "ModelCatalog.get_preprocessor(obs_space).transform_batch(observations)."
            )
        input_dict = dict(input_dict, obs=obs, obs_flat=obs)
        return super().__call__(input_dict, [] if state is None else list(state), seq_lens)

    def forward(self, input_dict: dict, state: list, seq_lens) -> tuple[torch.Tensor, list]:
        """Computes ``(outputs (B, num_outputs), state_out)``; subclasses must implement it."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement forward(input_dict, state, seq_lens)."
        )

    def value_function(self) -> torch.Tensor:
        """Value estimates ``(B,)`` for the batch of the last forward call; subclasses must
        implement it."""
        raise NotImplementedError(f"{type(self).__name__} must implement value_function().")

    def get_initial_state(self) -> list[np.ndarray]:
        """The RNN state at the start of an episode, one array per state tensor (no batch dim);
        ``[]`` if feed-forward."""
        return []

    def is_recurrent(self) -> bool:
        """True when the model carries a state from one timestep to the next."""
        return len(self.get_initial_state()) > 0

    def from_batch(
        self, train_batch: Mapping, is_training: bool = True
    ) -> tuple[torch.Tensor, list]:
        """Runs the model on a (training) batch: ``logits, state = model.from_batch(train_batch)``.

        Reads ``train_batch["obs"]`` ``(B, obs_size)`` (tensor or numpy), and ``"prev_actions"`` /
        ``"prev_rewards"`` when present. ``input_dict["is_training"]`` is set from ``is_training``.
        Recurrent models also read ``"state_in_0"`` .. ``"state_in_{k-1}"`` (each
        ``(num_seqs, ...)``, the state at the start of each sequence) and ``"seq_lens"``
        ``(num_seqs,)``; the other columns must be padded to ``num_seqs * T`` rows, as
        ``pad_batch_to_sequences`` produces.

        Introduced in notebooks/06_models.ipynb.
        """
        device = self._device()
        input_dict = {"obs": train_batch["obs"], "is_training": is_training}
        for key in ("prev_actions", "prev_rewards"):
            if key in train_batch:
                input_dict[key] = to_tensor(train_batch[key], device=device)
        state, seq_lens = [], None
        if self.is_recurrent():
            state_keys = [f"state_in_{i}" for i in range(len(self.get_initial_state()))]
            missing = [key for key in [*state_keys, "seq_lens"] if key not in train_batch]
            if missing:
                raise KeyError(
                    f"{type(self).__name__} is recurrent, so from_batch needs {missing} in the "
                    "batch. Cut the batch into sequences first: "
                    "pad_batch_to_sequences(batch, model_config['max_seq_len'])."
                )
            state = [
                to_tensor(train_batch[key], device=device, dtype=torch.float32)
                for key in state_keys
            ]
            seq_lens = to_tensor(train_batch["seq_lens"], dtype=torch.int64)
        return self(input_dict, state, seq_lens)
