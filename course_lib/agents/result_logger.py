"""The results folder of a trainer run outside Tune: the same files Tune writes for a trial.

- ``params.json``: the config; ``result.json``: one JSON line per ``train()`` result;
- ``progress.csv``: one row per result, nested keys flattened to ``info/learner/...``;
- ``events.out.tfevents.*``: every number, for TensorBoard (``tensorboard --logdir ~/ray_results``;
  ``read_scalars`` in ``tensorboard.py`` reads them back).

No file is ever left half-written, even when training is interrupted: params.json is written
under a temporary name and renamed into place; result.json and progress.csv grow by whole
records. Introduced in notebooks/12_trainers.ipynb.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time

import numpy as np

from course_lib.agents.checkpoint import write_files_atomically
from course_lib.validation import is_real_number


def flatten(result: dict, prefix: str = "") -> dict:
    """``{"info": {"learner": {"x": 1}}}`` -> ``{"info/learner/x": 1}``."""
    flat = {}
    for key, value in result.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}/"))
        else:
            flat[name] = value
    return flat


def _json_default(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return repr(value)


class ResultLogger:
    """Writes params.json, result.json, progress.csv and TensorBoard events into ``logdir``.

    Introduced in notebooks/12_trainers.ipynb.
    """

    def __init__(self, logdir: str, config: dict):
        from tensorboardX.event_file_writer import EventsWriter

        self.logdir = logdir
        os.makedirs(logdir, exist_ok=True)
        params = json.dumps(config, indent=2, sort_keys=True, default=_json_default)
        write_files_atomically({os.path.join(logdir, "params.json"): params.encode()})
        self._json = _open_for_appending(os.path.join(logdir, "result.json"))
        self._csv = _open_for_appending(os.path.join(logdir, "progress.csv"))
        self._csv_columns = None
        # tensorboardX's EventsWriter writes in this thread; its SummaryWriter hands each number
        # to a background thread, so a result's numbers could reach the file seconds later.
        self._events = EventsWriter(os.path.join(logdir, "events"))

    def on_result(self, result: dict) -> None:
        _append(self._json, json.dumps(result, default=_json_default) + "\n")
        flat = {
            k: v for k, v in flatten(result).items() if not k.startswith(("hist_stats/", "config/"))
        }
        rows = io.StringIO()
        if self._csv_columns is None:
            # The columns are fixed by the first result, as in Tune's progress.csv.
            self._csv_columns = list(flat)
            csv.DictWriter(rows, fieldnames=self._csv_columns).writeheader()
        csv.DictWriter(rows, fieldnames=self._csv_columns, extrasaction="ignore").writerow(flat)
        _append(self._csv, rows.getvalue())
        self._write_scalars(
            flat, step=result.get("timesteps_total") or result.get("training_iteration", 0)
        )

    def _write_scalars(self, flat: dict, step: int) -> None:
        """One TensorBoard event per result: every finite number, tagged ``ray/tune/<key>`` and
        at the step Tune's TensorBoard logger uses, written to disk before ``train()`` returns so
        that TensorBoard and ``read_scalars`` see every finished iteration while training goes on.
        """
        from tensorboardX.proto.event_pb2 import Event
        from tensorboardX.proto.summary_pb2 import Summary

        values = [
            Summary.Value(tag=f"ray/tune/{key}", simple_value=float(value))
            for key, value in flat.items()
            if is_real_number(value) and np.isfinite(value)
        ]
        self._events.write_event(
            Event(wall_time=time.time(), step=int(step), summary=Summary(value=values))
        )
        self._events.flush()

    def close(self) -> None:
        os.close(self._json)
        os.close(self._csv)
        self._events.close()


# result.json and progress.csv grow by one record per result. Rewriting them under a temporary
# name each time (as params.json is written) would copy the whole file per result, so they are
# appended to instead, each record with one write() call: with O_APPEND it lands whole at the
# end of the file, where a buffered file may flush half a record before an interruption.


def _open_for_appending(path: str) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)


def _append(descriptor: int, text: str) -> None:
    data = text.encode()
    while data:  # write() writes less than asked only when the disk is full
        data = data[os.write(descriptor, data) :]
