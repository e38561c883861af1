"""LSTMWrapper: gives any feed-forward model a memory (what ``"use_lstm": True`` builds).

Data flow for a padded batch of ``num_seqs`` sequences of padded length T (B = num_seqs * T rows):

    obs (B, obs_size) -> wrapped model -> features (B, F)
    [+ prev action encoding (B, A)] [+ prev reward (B, 1)]
    -> add_time_dimension -> (num_seqs, T, F') -> nn.LSTM -> (num_seqs, T, cell) -> (B, cell)
    -> logits layer (B, num_outputs)   and   value layer (B,)

The LSTM runs on packed sequences, so each sequence stops at its own length: padding rows never
change the state that is returned, and carrying that state into the next call continues the
sequence exactly. Outputs on padding rows are meaningless; mask them out of the loss.

Introduced in notebooks/06_models.ipynb.
"""

from __future__ import annotations

import numpy as np
import torch
from gymnasium import spaces
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from course_lib.models.fcnet import (
    VALUE_GAIN,
    FullyConnectedNetwork,
    logits_layer,
    orthogonal_linear,
)
from course_lib.models.preprocessors import get_preprocessor
from course_lib.models.rnn_sequencing import add_time_dimension
from course_lib.models.torch_model import TorchModelV2, to_tensor


def encode_actions(actions: torch.Tensor, action_space: spaces.Space) -> torch.Tensor:
    """Actions ``(B, ...)`` -> float features ``(B, A)``: one-hot for (Multi)Discrete, flattened for
    Box.

    ``A`` is ``get_preprocessor(action_space).size``. Introduced in notebooks/06_models.ipynb.
    """
    batch_size = actions.shape[0]
    if isinstance(action_space, spaces.Discrete):
        index = actions.reshape(batch_size).long() - int(action_space.start)
        return nn.functional.one_hot(index, int(action_space.n)).float()
    if isinstance(action_space, spaces.MultiDiscrete):
        start = torch.as_tensor(np.asarray(action_space.start).reshape(-1), device=actions.device)
        index = actions.reshape(batch_size, -1).long() - start
        nvec = np.asarray(action_space.nvec).reshape(-1)
        return torch.cat(
            [nn.functional.one_hot(index[:, i], int(n)).float() for i, n in enumerate(nvec)], dim=1
        )
    if isinstance(action_space, spaces.Box):
        return actions.reshape(batch_size, -1).float()
    raise TypeError(
        "lstm_use_prev_action supports Discrete, "
        f"MultiDiscrete and Box actions, not {action_space}."
    )


class LSTMWrapper(TorchModelV2):
    """Runs an LSTM on the features of ``wrapped_model``; reads ``lstm_cell_size`` and
    ``lstm_use_prev_action/reward``.

    - ``wrapped_model``: any TorchModelV2 built with ``num_outputs=None`` whose ``num_outputs`` is
      its feature size F (the catalog builds it; default: a FullyConnectedNetwork).
    - ``forward(input_dict, state, seq_lens)``: ``input_dict["obs"]`` ``(num_seqs * T, obs_size)``
      padded; ``state = [h, c]``, each ``(num_seqs, cell)``; ``seq_lens`` ``(num_seqs,)`` (``None``
      means one step per row, as in ``compute_actions``). With ``lstm_use_prev_action`` it reads
      ``input_dict["prev_actions"]`` (raw actions of the previous step, zeros at episode start),
      with ``lstm_use_prev_reward`` ``input_dict["prev_rewards"]`` ``(B,)``.
    - returns logits ``(num_seqs * T, num_outputs)`` and ``[h, c]`` after each sequence's last real
      step.

    Introduced in notebooks/06_models.ipynb.
    """

    def __init__(
        self,
        obs_space,
        action_space,
        num_outputs,
        model_config,
        name,
        wrapped_model: TorchModelV2 | None = None,
    ):
        super().__init__(obs_space, action_space, num_outputs, model_config, name)
        if wrapped_model is None:
            wrapped_model = FullyConnectedNetwork(
                obs_space, action_space, None, self.model_config, f"{name}_base"
            )
        if not isinstance(wrapped_model.num_outputs, int) or wrapped_model.num_outputs < 1:
            raise ValueError(
                "The model wrapped by LSTMWrapper was built with num_outputs=None and must then "
                "set self.num_outputs to the size of the features it returns; "
                f"{type(wrapped_model).__name__} has num_outputs={wrapped_model.num_outputs!r}."
            )
        self.wrapped_model = wrapped_model
        self.cell_size = int(self.model_config["lstm_cell_size"])
        self.use_prev_action = bool(self.model_config["lstm_use_prev_action"])
        self.use_prev_reward = bool(self.model_config["lstm_use_prev_reward"])
        input_size = wrapped_model.num_outputs
        if self.use_prev_action:
            input_size += get_preprocessor(action_space).size
        if self.use_prev_reward:
            input_size += 1
        self.lstm = nn.LSTM(input_size, self.cell_size, batch_first=True)
        if num_outputs is None:
            self.num_outputs = self.cell_size
            self.logits_layer = None
        else:
            self.logits_layer = logits_layer(
                self.cell_size, num_outputs, self.model_config["free_log_std"]
            )
        self.value_layer = orthogonal_linear(self.cell_size, 1, VALUE_GAIN)
        self._last_features = None

    def get_initial_state(self) -> list[np.ndarray]:
        """``[h, c]``: two float32 zero arrays of shape ``(lstm_cell_size,)``."""
        return [
            np.zeros(self.cell_size, dtype=np.float32),
            np.zeros(self.cell_size, dtype=np.float32),
        ]

    def _read_extra_input(self, input_dict, key: str, flag: str) -> torch.Tensor:
        if key not in input_dict:
            raise KeyError(
                f"{flag}=True, so the model needs input_dict[{key!r}] (the value of the previous "
                "step, zeros at the start of an episode)."
            )
        return to_tensor(input_dict[key], device=input_dict["obs"].device)

    def forward(self, input_dict, state, seq_lens):
        features, _ = self.wrapped_model(input_dict, [], None)
        pieces = [features]
        if self.use_prev_action:
            prev_actions = self._read_extra_input(
                input_dict, "prev_actions", "lstm_use_prev_action"
            )
            pieces.append(encode_actions(prev_actions, self.action_space))
        if self.use_prev_reward:
            prev_rewards = self._read_extra_input(
                input_dict, "prev_rewards", "lstm_use_prev_reward"
            )
            pieces.append(prev_rewards.reshape(-1, 1).float())
        inputs = torch.cat(pieces, dim=1) if len(pieces) > 1 else features
        if seq_lens is None:
            seq_lens = torch.ones(inputs.shape[0], dtype=torch.int64)
        seq_lens = torch.as_tensor(seq_lens, dtype=torch.int64).cpu()
        inputs = add_time_dimension(inputs, seq_lens)
        num_seqs, time_size = inputs.shape[:2]
        if len(state) != 2:
            raise ValueError(
                f"LSTMWrapper expects state [h, c], got a list of {len(state)} tensors."
            )
        h, c = (to_tensor(s, device=inputs.device, dtype=torch.float32) for s in state)
        if h.shape != (num_seqs, self.cell_size) or c.shape != (num_seqs, self.cell_size):
            raise ValueError(
                f"LSTMWrapper expects h and c of shape (num_seqs, {self.cell_size}) = ({num_seqs}, "
                f"{self.cell_size}), one state per sequence (per row when "
                f"seq_lens is None); got {tuple(h.shape)} and {tuple(c.shape)}."
            )
        packed = pack_padded_sequence(inputs, seq_lens, batch_first=True, enforce_sorted=False)
        packed_out, (h_out, c_out) = self.lstm(packed, (h.unsqueeze(0), c.unsqueeze(0)))
        outputs, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=time_size)
        self._last_features = outputs.reshape(num_seqs * time_size, self.cell_size)
        logits = (
            self._last_features
            if self.logits_layer is None
            else self.logits_layer(self._last_features)
        )
        return logits, [h_out.squeeze(0), c_out.squeeze(0)]

    def value_function(self) -> torch.Tensor:
        if self._last_features is None:
            raise RuntimeError(
                "Call the model on a batch before value_function(): "
                "it returns values for that batch."
            )
        return self.value_layer(self._last_features).squeeze(-1)
