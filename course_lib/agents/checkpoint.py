"""Checkpoint files that load without unpickling arbitrary objects.

A trainer's state (weights, optimizer moments, exploration and filter statistics, counters,
random-number-generator states, the episodes in progress) is a tree of dicts, lists, numbers,
strings, numpy arrays and torch tensors. ``save_state`` writes it with ``torch.save`` after turning
numpy arrays into tensors, and ``load_state`` reads it back with ``torch.load(weights_only=True)``,
which refuses anything that is not plain data: opening a checkpoint from someone else cannot run
their code. The readable part (trainer name, iteration, config) goes to ``metadata.json``.

Both files are written under temporary names and renamed into place, so a save that fails or is
interrupted never leaves a half-written file for ``restore`` to half-read; and a folder that is
damaged, incomplete or someone else's (an RLlib checkpoint) is refused with a message that says so.

Introduced in notebooks/12_trainers.ipynb.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import pickle
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

STATE_FILE = "trainer_state.pt"
METADATA_FILE = "metadata.json"
FORMAT_VERSION = 1
# An RLlib Algorithm's checkpoint holds this file (its components hold a metadata.json with a
# "ray_version"); course_lib's never do.
RLLIB_CHECKPOINT_FILE = "rllib_checkpoint.json"

# Tags for the containers a weights-only torch.load cannot hold directly.
_NUMPY, _TUPLE = "__numpy__", "__tuple__"


def to_storable(value, path: str = "state"):
    """``value`` with numpy arrays as tagged tensors and tuples as tagged lists; fails on other
    objects."""
    if isinstance(value, np.ndarray):
        if value.dtype == object or value.dtype.kind in "USV":
            return [to_storable(v, f"{path}[]") for v in value.tolist()]
        stored = value.astype(np.int64) if value.dtype.kind == "u" else value
        # Not np.ascontiguousarray: it turns a 0-d array (SAC's log_alpha) into shape (1,).
        return {
            _NUMPY: torch.from_numpy(np.require(stored, requirements="C")).clone(),
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
    """Write ``state`` (plain data) and ``metadata`` (JSON) into ``checkpoint_dir``.

    Neither file is ever half-written under its final name (see ``write_files_atomically``): a
    save that fails or is interrupted leaves the folder's previous checkpoint, if any, as it was.
    """
    os.makedirs(checkpoint_dir, exist_ok=True)
    # Both are built in memory first, so that an object that cannot be stored fails before any
    # file is touched.
    storable = to_storable(state)
    metadata_text = json.dumps(
        {"format_version": FORMAT_VERSION, **metadata}, indent=2, default=repr
    )
    write_files_atomically(
        {
            # metadata.json goes last: a folder counts as a checkpoint once it holds one.
            os.path.join(checkpoint_dir, STATE_FILE): functools.partial(torch.save, storable),
            os.path.join(checkpoint_dir, METADATA_FILE): metadata_text.encode(),
        }
    )


def write_files_atomically(contents: dict[str, bytes | Callable[[BinaryIO], object]]) -> None:
    """Write each file of ``contents`` (its bytes, or a function that writes into a binary file)
    under a temporary name in its folder, then rename them all into place with ``os.replace``, in
    the order given.

    A rename within one folder is atomic, so a reader sees either the old file or the new one,
    never a half-written one. All files are written before the first rename, so a failure while
    writing (disk full, Ctrl-C) changes nothing; the temporary files are removed. Introduced in
    notebooks/12_trainers.ipynb.
    """
    temporary = {}
    try:
        for path, content in contents.items():
            folder, name = os.path.split(os.path.abspath(path))
            # Not tempfile.mkstemp: its files are private (mode 600), and the renamed file should
            # get the usual permissions, as a plain open() gives it.
            temporary[path] = os.path.join(folder, f".{name}.{uuid.uuid4().hex[:12]}.tmp")
            with open(temporary[path], "xb") as f:
                if isinstance(content, bytes):
                    f.write(content)
                else:
                    content(f)
                f.flush()
                # On disk before the rename: after a power cut the new name holds the new data.
                os.fsync(f.fileno())
        for path, temporary_path in temporary.items():
            os.replace(temporary_path, path)
    except BaseException:
        for temporary_path in temporary.values():
            with contextlib.suppress(FileNotFoundError):
                os.remove(temporary_path)
        raise


def load_metadata(checkpoint_dir: str) -> dict:
    """The JSON half of a checkpoint, with a clear error when the folder is not one.

    Raises ``FileNotFoundError`` when there is no metadata.json, ``ValueError`` when it is damaged
    or belongs to another program (RLlib's checkpoints have a metadata.json too).
    """
    path = os.path.join(checkpoint_dir, METADATA_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(_not_a_checkpoint_message(checkpoint_dir))
    try:
        with open(path, encoding="utf-8") as f:
            metadata = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(
            f"{path!r} is not valid JSON ({error}): this checkpoint is damaged, probably cut off "
            f"by an interrupted save or copy. {_DAMAGED_FIX}"
        ) from None
    if not isinstance(metadata, dict) or "trainer" not in metadata:
        raise ValueError(_foreign_metadata_message(checkpoint_dir, metadata))
    version = metadata.get("format_version", FORMAT_VERSION)
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise ValueError(
            f"{checkpoint_dir!r} was written by a newer course_lib (checkpoint format "
            f"{metadata['format_version']}; this one reads format {FORMAT_VERSION}). Update "
            "course_lib (git pull in the course folder) to load it."
        )
    return metadata


def load_state(checkpoint_dir: str) -> dict:
    """The state saved by ``save_state``; only plain data is accepted (``weights_only=True``).

    Raises ``FileNotFoundError`` when trainer_state.pt is missing, ``ValueError`` when it is cut
    off or holds objects other than plain data.
    """
    path = os.path.join(checkpoint_dir, STATE_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{checkpoint_dir!r} has no {STATE_FILE}: the checkpoint is incomplete (only part of "
            f"the folder was copied, or its {STATE_FILE} was deleted). {_DAMAGED_FIX}"
        )
    # torch.save always writes a zip archive; a cut-off one has lost the index at its end.
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path!r} is not a complete torch file ({os.path.getsize(path)} bytes, no zip "
            f"index at its end): an interrupted save or copy cut it off. {_DAMAGED_FIX}"
        )
    try:
        stored = torch.load(path, weights_only=True)
    except pickle.UnpicklingError:
        raise ValueError(
            f"{path!r} holds Python objects, not only plain data (numbers, strings, arrays, "
            "tensors), so it was not written by course_lib's trainer.save(); it is not loaded, "
            "as unpickling objects could run code from whoever wrote it. Pass a folder that "
            "trainer.save() returned."
        ) from None
    except (RuntimeError, EOFError, KeyError) as error:
        raise ValueError(
            f"{path!r} is damaged: torch.load could not read it "
            f"({' '.join(str(error).split())[:200]}). {_DAMAGED_FIX}"
        ) from None
    return from_storable(stored)


_DAMAGED_FIX = (
    "Restore an earlier checkpoint (the other checkpoint_* folders beside it), copy the folder "
    "again, or train again and save a new one."
)


def _not_a_checkpoint_message(checkpoint_dir: str) -> str:
    if os.path.isfile(checkpoint_dir):
        return (
            f"{checkpoint_dir!r} is a file; a checkpoint is a folder. Pass the folder that holds "
            f"it, {os.path.dirname(checkpoint_dir) or '.'!r}, as trainer.save() returned it."
        )
    if not os.path.isdir(checkpoint_dir):
        found = "the folder does not exist"
    else:
        found = sorted(os.listdir(checkpoint_dir))
        if RLLIB_CHECKPOINT_FILE in found:
            return rllib_checkpoint_message(checkpoint_dir)
    return (
        f"{checkpoint_dir!r} is not a course_lib checkpoint: it has no {METADATA_FILE} (found: "
        f"{found}). Pass the folder that trainer.save() returned, e.g. .../checkpoint_000010."
    )


def _foreign_metadata_message(checkpoint_dir: str, metadata) -> str:
    if isinstance(metadata, dict) and (
        "ray_version" in metadata
        or os.path.isfile(os.path.join(checkpoint_dir, RLLIB_CHECKPOINT_FILE))
    ):
        return rllib_checkpoint_message(checkpoint_dir)
    keys = sorted(metadata) if isinstance(metadata, dict) else type(metadata).__name__
    return (
        f"{checkpoint_dir!r} is not a course_lib checkpoint: its {METADATA_FILE} does not say "
        f"which trainer wrote it (no 'trainer' key; found {keys}). Pass the folder that "
        "trainer.save() returned, e.g. .../checkpoint_000010."
    )


def training_config(checkpoint_dir: str, trainer_cls: type) -> dict:
    """The config a checkpoint was trained with, read from the trial's params.json beside it.

    The model settings (``fcnet_hiddens``, ...) are needed to rebuild a network the saved weights
    fit; metadata.json keeps only the scalar settings. Classes and functions (callbacks,
    multi-agent policies) were written to JSON as their names only: they cannot be rebuilt from
    those and are left out, as are keys ``trainer_cls`` does not know. A checkpoint saved outside
    a results folder has no params.json: the result is ``{}`` (the trainer's defaults). Raises
    ``ValueError`` when params.json is damaged. Used by ``course-rl rollout`` and
    ``course_lib.serving`` (notebooks/18_serving.ipynb).
    """
    params = Path(checkpoint_dir).parent / "params.json"
    if not params.is_file():
        return {}
    try:
        config = json.loads(params.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(
            f"{params} is damaged ({error}); the model config is read from it. Copy the trial "
            "folder again, or move the checkpoint folder out of it and pass the config the "
            "checkpoint was trained with yourself."
        ) from None
    skipped = ("callbacks", "multiagent", "logger_config")
    return {
        key: value
        for key, value in config.items()
        if key in trainer_cls._default_config and key not in skipped
    }


def rllib_checkpoint_message(checkpoint_dir: str) -> str:
    """Why course_lib refuses an RLlib checkpoint, and how to load it instead.

    Introduced in notebooks/12_trainers.ipynb.
    """
    return (
        f"{checkpoint_dir!r} is an RLlib checkpoint (written by ray.rllib's save_to_path() or "
        "save()), not a course_lib one; course_lib cannot load it. Load it with RLlib itself, "
        "ray.rllib.algorithms.algorithm.Algorithm.from_checkpoint(path) (see "
        "notebooks/19_rllib_today.ipynb), or pass a folder that a course_lib trainer.save() "
        "returned."
    )
