"""``JsonReader``: batches from the JSON-lines files that ``JsonWriter`` wrote (config ``"input"``).

``"input"`` may name a folder (every ``*.json`` file in it), one file, a glob such as
``"/tmp/cartpole-out/*.json"``, or a list of these. The reader goes through the files in a
random order (seeded: each rollout worker draws its own order), line by line, and starts a new
random pass when all are read, so ``next()`` never runs out. A line that is not a batch stops
with an error that names the file, the line and what was wrong with it.
Introduced in notebooks/17_offline_rl.ipynb.
"""

from __future__ import annotations

import base64
import binascii
import glob
import json
import os
import zlib

import numpy as np

from course_lib.sample_batch import MultiAgentBatch, SampleBatch

INPUT_ACCEPTS = (
    '"input" accepts "sampler" (the default: sample the env), a folder of JSON files written '
    'with "output", one such file, a glob such as "/tmp/cartpole-out/*.json", a list of these, '
    "or a dict that mixes them with weights summing to 1, e.g. "
    '{"sampler": 0.5, "/tmp/cartpole-out": 0.5}.'
)


class OfflineDataError(ValueError):
    """A line of an offline-data file is not a batch; the message says where and why.

    Introduced in notebooks/17_offline_rl.ipynb.
    """


def expand_input_files(inputs) -> list[str]:
    """The JSON files behind ``inputs`` (a folder, a file, a glob, or a list of these), sorted.

    Introduced in notebooks/17_offline_rl.ipynb.
    """
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    if not items:
        raise ValueError(f'"input" is an empty list. {INPUT_ACCEPTS}')
    files = []
    for item in items:
        if not isinstance(item, (str, os.PathLike)):
            raise TypeError(f'"input" holds {item!r} ({type(item).__name__}). {INPUT_ACCEPTS}')
        path = os.path.expanduser(os.fspath(item))
        if os.path.isdir(path):
            found = sorted(glob.glob(os.path.join(path, "*.json")))
            if not found:
                raise FileNotFoundError(
                    f'"input" names the folder {path!r}, which holds no .json files. Write some '
                    'first: run a trainer with "output": '
                    f"{path!r}."
                )
        elif os.path.isfile(path):
            found = [path]
        else:
            found = sorted(p for p in glob.glob(path) if os.path.isfile(p))
            if not found:
                raise FileNotFoundError(
                    f'"input": {path!r} is neither "sampler" nor an existing folder or file, and '
                    f"as a glob it matches no file. {INPUT_ACCEPTS}"
                )
        files.extend(found)
    return files


def decode_column(name: str, encoded) -> np.ndarray:
    """The numpy column that ``encode_column`` wrote; ``ValueError`` saying what is wrong.

    Introduced in notebooks/17_offline_rl.ipynb.
    """
    if not isinstance(encoded, dict) or "dtype" not in encoded or "shape" not in encoded:
        raise ValueError(
            f"column {name!r} must be an object with 'dtype', 'shape' and 'data' (or "
            f"'zlib_base64'), got {json.dumps(encoded)[:80]}"
        )
    shape = encoded["shape"]
    if not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise ValueError(f"column {name!r} has shape {shape!r}, not a list of sizes")
    if encoded["dtype"] == "object":
        if not isinstance(encoded.get("data"), list) or len(encoded["data"]) != shape[0]:
            raise ValueError(f"column {name!r} must hold a list of {shape[0]} values")
        column = np.empty(len(encoded["data"]), dtype=object)
        column[:] = encoded["data"]
        return column
    try:
        dtype = np.dtype(encoded["dtype"])
    except TypeError:
        raise ValueError(f"column {name!r} has an unknown dtype {encoded['dtype']!r}") from None
    if "zlib_base64" in encoded:
        try:
            raw = zlib.decompress(base64.b64decode(encoded["zlib_base64"], validate=True))
        except (binascii.Error, zlib.error, TypeError) as error:
            raise ValueError(
                f"column {name!r}: its zlib_base64 text does not decode ({error})"
            ) from None
        expected = int(np.prod(shape)) * dtype.itemsize
        if len(raw) != expected:
            raise ValueError(
                f"column {name!r} decodes to {len(raw)} bytes, but shape {shape} of {dtype} "
                f"needs {expected}"
            )
        return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
    if "data" not in encoded:
        raise ValueError(f"column {name!r} has neither 'data' nor 'zlib_base64'")
    try:
        column = np.array(encoded["data"], dtype=dtype)
    except (ValueError, TypeError) as error:
        raise ValueError(
            f"column {name!r}: its data is not an array of {dtype} ({error})"
        ) from None
    if list(column.shape) != shape:
        raise ValueError(f"column {name!r} holds data of shape {list(column.shape)}, not {shape}")
    return column


def _decode_batch(record, what: str) -> SampleBatch:
    if not isinstance(record, dict) or not isinstance(record.get("columns"), dict):
        raise ValueError(f"{what} needs a 'columns' object mapping names to columns")
    batch = SampleBatch(
        {name: decode_column(name, column) for name, column in record["columns"].items()}
    )
    if "count" in record and record["count"] != batch.count:
        raise ValueError(f"{what} says count {record['count']} but its columns hold {batch.count}")
    return batch


def batch_from_json(line: str) -> SampleBatch | MultiAgentBatch:
    """The batch of one line that ``batch_to_json`` wrote; ``ValueError`` saying what is wrong.

    Introduced in notebooks/17_offline_rl.ipynb.
    """
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON ({error})") from None
    kind = record.get("type") if isinstance(record, dict) else None
    if kind == "SampleBatch":
        return _decode_batch(record, "a SampleBatch")
    if kind == "MultiAgentBatch":
        policy_batches = record.get("policy_batches")
        if not isinstance(policy_batches, dict) or not isinstance(record.get("env_steps"), int):
            raise ValueError("a MultiAgentBatch needs 'env_steps' and 'policy_batches'")
        return MultiAgentBatch(
            {pid: _decode_batch(b, f"policy batch {pid!r}") for pid, b in policy_batches.items()},
            record["env_steps"],
        )
    raise ValueError(
        f'expected a JSON object with "type": "SampleBatch" or "MultiAgentBatch", got '
        f"{line.strip()[:60]!r}"
    )


class JsonReader:
    """``next()``: the next batch from ``inputs`` (see ``expand_input_files``), forever.

    ``seed`` orders the files (None: a random order each time); ``postprocess`` (optional) maps
    each batch read to the batch returned, e.g. a policy's postprocessing episode by episode.
    Introduced in notebooks/17_offline_rl.ipynb.
    """

    def __init__(self, inputs, *, seed: int | None = None, postprocess=None):
        self.files = expand_input_files(inputs)
        self.rng = np.random.default_rng(seed)
        self.postprocess = postprocess
        self._lines = iter(())

    def next(self) -> SampleBatch | MultiAgentBatch:
        batch = self._read_batch()
        return self.postprocess(batch) if self.postprocess else batch

    def _read_batch(self):
        for _ in range(2):  # the running pass, then at most one fresh pass over every file
            for path, number, line in self._lines:
                try:
                    return batch_from_json(line)
                except ValueError as error:
                    raise OfflineDataError(f"{path}, line {number}: {error}") from None
            self._lines = self._file_lines(self.rng.permutation(len(self.files)))
        raise OfflineDataError(
            f"The input files {self.files[:3]}{'...' if len(self.files) > 3 else ''} hold no "
            'batches (only empty lines). Write some with a trainer\'s "output" setting.'
        )

    def _file_lines(self, order):
        for index in order:
            path = self.files[index]
            with open(path, encoding="utf-8") as file:
                for number, line in enumerate(file, start=1):
                    if line.strip():
                        yield path, number, line
