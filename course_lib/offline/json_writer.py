"""``JsonWriter``: sampled batches to JSON-lines files, one batch a line (config ``"output"``).

Each line is one JSON object. A ``SampleBatch`` line reads::

    {"type": "SampleBatch", "count": 200,
     "columns": {"obs": {"dtype": "<f4", "shape": [200, 4], "zlib_base64": "eJz..."},
                 "actions": {"dtype": "<i8", "shape": [200], "data": [0, 1, ...]}, ...}}

Every column keeps its numpy ``dtype`` (as ``dtype.str``, byte order included) and ``shape``, so
reading a line back gives an equal batch. A column is stored either as nested lists (``"data"``,
readable in any editor) or, for the columns named in ``"output_compress_columns"``, as its raw
bytes compressed with zlib and written as base64 text (``"zlib_base64"``): observations are most
of a batch's size and compress well. Columns of Python objects (``infos``) are always lists.
A ``MultiAgentBatch`` line holds one such ``{"count", "columns"}`` entry per policy.
Introduced in notebooks/17_offline_rl.ipynb.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
import zlib
from datetime import datetime

import numpy as np

from course_lib.sample_batch import MultiAgentBatch, SampleBatch


def _plain(value):
    """``json.dumps``'s fallback for numpy values inside object columns (e.g. info dicts)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} {value!r:.60} cannot be written as JSON")


def encode_column(name: str, column: np.ndarray, compress: bool) -> dict:
    """One column as a JSON-ready dict: ``dtype``, ``shape`` and ``data`` or ``zlib_base64``.

    Introduced in notebooks/17_offline_rl.ipynb.
    """
    if column.dtype == object:
        try:
            data = json.loads(json.dumps(column.tolist(), default=_plain))
        except TypeError as error:
            raise TypeError(
                f"Column {name!r} holds a value that JSON cannot store ({error}). Keep infos and "
                "other object columns to numbers, strings, lists and dicts, or drop the column "
                "before writing."
            ) from None
        return {"dtype": "object", "shape": list(column.shape), "data": data}
    encoded = {"dtype": column.dtype.str, "shape": list(column.shape)}
    if compress:
        raw = zlib.compress(np.ascontiguousarray(column).tobytes())
        encoded["zlib_base64"] = base64.b64encode(raw).decode("ascii")
    else:
        encoded["data"] = column.tolist()
    return encoded


def _encode_batch(batch: SampleBatch, compress_columns) -> dict:
    return {
        "count": batch.count,
        "columns": {
            name: encode_column(name, column, name in compress_columns)
            for name, column in batch.items()
        },
    }


def batch_to_json(batch: SampleBatch | MultiAgentBatch, compress_columns=()) -> str:
    """One line of JSON (no newline) that ``batch_from_json`` turns back into an equal batch.

    ``compress_columns``: names of the columns to store as zlib-compressed base64 bytes.
    Introduced in notebooks/17_offline_rl.ipynb.
    """
    compress_columns = set(compress_columns)
    if isinstance(batch, MultiAgentBatch):
        record = {
            "type": "MultiAgentBatch",
            "env_steps": batch.env_steps(),
            "policy_batches": {
                pid: _encode_batch(b, compress_columns) for pid, b in batch.policy_batches.items()
            },
        }
    elif isinstance(batch, SampleBatch):
        record = {"type": "SampleBatch", **_encode_batch(batch, compress_columns)}
    else:
        raise TypeError(
            f"JsonWriter writes SampleBatch or MultiAgentBatch objects, got {type(batch).__name__}."
        )
    return json.dumps(record)


class JsonWriter:
    """Appends batches to ``<path>/output-<time>-<random>_worker-<i>_<n>.json``, a batch a line.

    A new file (``n + 1``) starts once the current one holds ``max_file_size`` bytes or more.
    Each rollout worker writes its own files (``worker_index``), so workers never share one.
    Lines are flushed as they are written: a reader sees every finished batch.
    Introduced in notebooks/17_offline_rl.ipynb.
    """

    def __init__(
        self,
        path: str,
        *,
        compress_columns=("obs", "new_obs"),
        max_file_size: int = 64 * 1024 * 1024,
        worker_index: int = 0,
    ):
        self.path = os.path.abspath(os.path.expanduser(os.fspath(path)))
        os.makedirs(self.path, exist_ok=True)
        self.compress_columns = list(compress_columns)
        self.max_file_size = max_file_size
        self.worker_index = worker_index
        # The random part keeps two writers started in the same second from sharing a file.
        self._stamp = f"{datetime.now():%Y-%m-%d_%H-%M-%S}-{uuid.uuid4().hex[:6]}"
        self._file_index = 0
        self._file = None

    def write(self, batch: SampleBatch | MultiAgentBatch) -> None:
        """Append ``batch`` as one line (an empty batch writes nothing)."""
        if batch.count == 0:
            return
        line = batch_to_json(batch, self.compress_columns) + "\n"
        if self._file is None:
            name = f"output-{self._stamp}_worker-{self.worker_index}_{self._file_index}.json"
            self._file = open(os.path.join(self.path, name), "w", encoding="utf-8")  # noqa: SIM115
        self._file.write(line)
        self._file.flush()
        if self._file.tell() >= self.max_file_size:
            self.close()
            self._file_index += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
