"""Checkpoint files that load without unpickling arbitrary objects.

A trainer's state (weights, optimizer moments, exploration and filter statistics, counters,
random-number-generator states, the episodes in progress) is a tree of dicts, lists, numbers,
strings, numpy arrays and torch tensors. ``save_state`` writes it with ``torch.save`` after turning
numpy arrays into tensors, and ``load_state`` reads it back with ``torch.load(weights_only=True)``,
which refuses anything that is not plain data: opening a checkpoint from someone else cannot run
their code. The readable part (trainer name, iteration, config) goes to ``metadata.json``.

Introduced in notebooks/11_trainers.ipynb.
"""

from __future__ import annotations

import json
import os

import numpy as np
import torch

STATE_FILE = "trainer_state.pt"
METADATA_FILE = "metadata.json"
FORMAT_VERSION = 1

# Tags for the containers a weights-only torch.load cannot hold directly.
_NUMPY, _TUPLE = "__numpy__", "__tuple__"


def to_storable(value, path: str = "state"):
    """``value`` with numpy arrays as tagged tensors and tuples as tagged lists; fails on other
    objects."""
    if isinstance(value, np.ndarray):
        if value.dtype == object or value.dtype.kind in "USV":
            return [to_storable(v, f"{path}[]") for v in value.tolist()]
        stored = value.astype(np.int64) if value.dtype.kind == "u" else value
        return {
            _NUMPY: torch.from_numpy(np.ascontiguousarray(stored)).clone(),
            "dtype": value.dtype.str,
        }
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (bool, int, float, str, type(None), torch.Tensor)):
        return value
    if isinstance(value, tuple):
        return {_TUPLE: [to_storable(v, f"{path}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [to_storable(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, (str, int)):
                raise TypeError(
                    f"Cannot checkpoint {path}: dict key {key!r} "
                    "is neither a string nor an integer."
                )
        return {key: to_storable(v, f"{path}[{key!r}]") for key, v in value.items()}
    raise TypeError(
        f"Cannot checkpoint {path}: {type(value).__name__} is not plain data (numbers, strings, "
        "lists, dicts, numpy arrays, tensors). Keep such objects out of get_state(), or give them "
        "a get_state() that returns plain data."
    )


def from_storable(value):
    """Inverse of ``to_storable``."""
    if isinstance(value, dict):
        if _NUMPY in value:
            return value[_NUMPY].numpy().astype(np.dtype(value["dtype"]), copy=False)
        if _TUPLE in value:
            return tuple(from_storable(v) for v in value[_TUPLE])
        return {key: from_storable(v) for key, v in value.items()}
    if isinstance(value, list):
        return [from_storable(v) for v in value]
    return value


def save_state(checkpoint_dir: str, state: dict, metadata: dict) -> None:
    """Write ``state`` (plain data) and ``metadata`` (JSON) into ``checkpoint_dir``."""
    os.makedirs(checkpoint_dir, exist_ok=True)
    torch.save(to_storable(state), os.path.join(checkpoint_dir, STATE_FILE))
    with open(os.path.join(checkpoint_dir, METADATA_FILE), "w") as f:
        json.dump({"format_version": FORMAT_VERSION, **metadata}, f, indent=2, default=repr)


def load_metadata(checkpoint_dir: str) -> dict:
    """The JSON half of a checkpoint, with a clear error when the folder is not one."""
    path = os.path.join(checkpoint_dir, METADATA_FILE)
    if not os.path.isfile(path):
        found = (
            sorted(os.listdir(checkpoint_dir))
            if os.path.isdir(checkpoint_dir)
            else "the folder does not exist"
        )
        raise FileNotFoundError(
            f"{checkpoint_dir!r} is not a course_lib checkpoint: it has no {METADATA_FILE} (found: "
            f"{found}). Pass the folder that trainer.save() returned, e.g. .../checkpoint_000010."
        )
    with open(path) as f:
        return json.load(f)


def load_state(checkpoint_dir: str) -> dict:
    """The state saved by ``save_state``; only plain data is accepted (``weights_only=True``)."""
    stored = torch.load(os.path.join(checkpoint_dir, STATE_FILE), weights_only=True)
    return from_storable(stored)
