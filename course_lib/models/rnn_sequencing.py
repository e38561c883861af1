"""Cutting a flat batch of timesteps into padded sequences for recurrent models, and back.

Rollouts are stored time-major and flat: row t of every column is timestep t, episodes one after
another. An LSTM is trained on sequences instead: ``chop_into_sequences`` cuts the rows into pieces
of at most ``max_seq_len`` steps that never cross an episode boundary, pads every piece with zeros
to ``max_seq_len`` rows, and keeps the RNN state at the start of each piece. The model folds the
padded rows into ``(num_seqs, T, ...)`` with ``add_time_dimension``; the loss ignores padding with
``sequence_mask``.

Example: episodes [a a a a b] with max_seq_len 3 -> sequences [a a a] [a 0 0] [b 0 0], seq_lens [3,
1, 1].

Introduced in notebooks/06_models.ipynb.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch


def _sequence_lengths(boundary_ids: np.ndarray, max_seq_len: int) -> np.ndarray:
    """Lengths of the sequences: runs of equal ids, each cut into pieces of at most max_seq_len."""
    if len(boundary_ids) == 0:
        return np.zeros(0, dtype=np.int32)
    run_starts = np.flatnonzero(np.concatenate([[True], boundary_ids[1:] != boundary_ids[:-1]]))
    run_lengths = np.diff(np.concatenate([run_starts, [len(boundary_ids)]]))
    lengths = []
    for run in run_lengths:
        full, rest = divmod(int(run), max_seq_len)
        lengths.extend([max_seq_len] * full + ([rest] if rest else []))
    return np.asarray(lengths, dtype=np.int32)


def chop_into_sequences(
    episode_ids,
    feature_columns: list[np.ndarray],
    state_columns: list[np.ndarray],
    max_seq_len: int,
) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Splits flat time-major columns into zero-padded sequences of ``max_seq_len`` rows.

    Args:
        episode_ids: ``(N,)``; a new sequence starts wherever the id changes (and every
            ``max_seq_len`` steps). Any per-row id works: in a multi-agent batch, combine the
            episode id with the agent index so that two agents' steps are never mixed.
        feature_columns: arrays ``(N, ...)`` to pad, e.g. obs, actions, advantages.
        state_columns: arrays ``(N, ...)`` holding the RNN state *before* each step.
        max_seq_len: the longest sequence, T.

    Returns:
        ``(padded_feature_columns, initial_states, seq_lens)``: each padded column has
        ``num_seqs * max_seq_len`` rows (sequence k in rows ``k*T .. k*T + seq_lens[k] - 1``, zeros
        after); each initial state has ``num_seqs`` rows (the state at the first step of each
        sequence); ``seq_lens`` is int32 ``(num_seqs,)``.

    Introduced in notebooks/06_models.ipynb.
    """
    if int(max_seq_len) < 1:
        raise ValueError(f"max_seq_len must be at least 1, got {max_seq_len!r}.")
    max_seq_len = int(max_seq_len)
    episode_ids = np.asarray(episode_ids).reshape(-1)
    for column in [*feature_columns, *state_columns]:
        if len(column) != len(episode_ids):
            raise ValueError(
                "Every column needs one row per episode id "
                f"({len(episode_ids)}), got {len(column)} rows."
            )
    seq_lens = _sequence_lengths(episode_ids, max_seq_len)
    seq_starts = np.concatenate([[0], np.cumsum(seq_lens)[:-1]]).astype(np.int64)
    # Row i of sequence k lands at k * T + (i - start of k).
    rows = np.arange(len(episode_ids)) - np.repeat(seq_starts, seq_lens)
    destination = np.repeat(np.arange(len(seq_lens)) * max_seq_len, seq_lens) + rows
    padded = []
    for column in feature_columns:
        column = np.asarray(column)
        out = np.zeros((len(seq_lens) * max_seq_len, *column.shape[1:]), dtype=column.dtype)
        out[destination] = column
        padded.append(out)
    initial_states = [np.asarray(column)[seq_starts] for column in state_columns]
    return padded, initial_states, seq_lens


def pad_batch_to_sequences(batch: Mapping, max_seq_len: int) -> dict:
    """A flat training batch -> the padded batch a recurrent model's ``from_batch`` and loss read.

    Every column is padded with ``chop_into_sequences`` except the per-step states
    ``"state_in_0"``, ``"state_in_1"``, ... which become the states at sequence starts
    ``(num_seqs, ...)``; ``"seq_lens"`` ``(num_seqs,)`` is added. Sequences break where ``"eps_id"``
    (or ``"agent_index"``, if present) changes, or where ``"t"`` (if present) does not go up by one.
    Returns a plain dict, since its columns no longer all have the same number of rows.

    Introduced in notebooks/06_models.ipynb.
    """
    if "eps_id" not in batch:
        raise KeyError(
            "pad_batch_to_sequences needs the 'eps_id' column to know where episodes end."
        )
    count = len(batch["eps_id"])
    new_sequence = np.zeros(count, dtype=bool)
    for key in ("eps_id", "agent_index"):
        if key in batch:
            new_sequence[1:] |= np.asarray(batch[key])[1:] != np.asarray(batch[key])[:-1]
    if "t" in batch:
        new_sequence[1:] |= np.diff(np.asarray(batch["t"])) != 1
    boundary_ids = np.cumsum(new_sequence)
    state_keys = sorted(
        (key for key in batch if key.startswith("state_in_")),
        key=lambda k: int(k.rsplit("_", 1)[1]),
    )
    feature_keys = [key for key in batch if key not in state_keys and key != "seq_lens"]
    padded, initial_states, seq_lens = chop_into_sequences(
        boundary_ids,
        [batch[key] for key in feature_keys],
        [batch[key] for key in state_keys],
        max_seq_len,
    )
    return {
        **dict(zip(feature_keys, padded, strict=True)),
        **dict(zip(state_keys, initial_states, strict=True)),
        "seq_lens": seq_lens,
    }


def add_time_dimension(padded_inputs: torch.Tensor, seq_lens) -> torch.Tensor:
    """``(num_seqs * T, ...)`` -> ``(num_seqs, T, ...)``, with ``num_seqs = len(seq_lens)``.

    T is the padded length, ``rows // num_seqs``: ``max_seq_len`` for a batch from
    ``chop_into_sequences``, 1 for single-step inference (``seq_lens = ones(B)``).

    Introduced in notebooks/06_models.ipynb.
    """
    num_seqs = len(seq_lens)
    rows = padded_inputs.shape[0]
    if num_seqs == 0 or rows % num_seqs:
        raise ValueError(
            f"A padded batch of {rows} rows cannot hold {num_seqs} sequences of equal padded "
            "length. Pad every sequence to the same length T "
            "(chop_into_sequences) so that rows = num_seqs * T."
        )
    time_size = rows // num_seqs
    if int(torch.as_tensor(seq_lens).max()) > time_size:
        raise ValueError(f"seq_lens has a sequence longer than the padded length T={time_size}.")
    return padded_inputs.reshape(num_seqs, time_size, *padded_inputs.shape[1:])


def sequence_mask(seq_lens, max_len: int | None = None) -> torch.Tensor:
    """Bool mask ``(num_seqs, max_len)``: True for real steps, False for padding.

    ``max_len`` defaults to ``max(seq_lens)``; pass the padded length T (``max_seq_len``) for a
    batch from ``chop_into_sequences``. Flatten it to mask a per-row loss:
    ``mask = sequence_mask(batch["seq_lens"], T).reshape(-1)``.

    Introduced in notebooks/06_models.ipynb.
    """
    seq_lens = torch.as_tensor(seq_lens, dtype=torch.int64)
    max_len = int(seq_lens.max()) if max_len is None else int(max_len)
    return torch.arange(max_len, device=seq_lens.device)[None, :] < seq_lens[:, None]
