"""The results folder of a trainer run outside Tune: the same files Tune writes for a trial.

- ``params.json``: the config; ``result.json``: one JSON line per ``train()`` result;
- ``progress.csv``: one row per result, nested keys flattened to ``info/learner/...``;
- ``events.out.tfevents.*``: every number, for TensorBoard (``tensorboard --logdir ~/ray_results``).

Introduced in notebooks/11_trainers.ipynb.
"""

from __future__ import annotations

import csv
import json
import os

import numpy as np

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
    """Writes params.json, result.json, progress.csv and TensorBoard events into ``logdir``."""

    def __init__(self, logdir: str, config: dict):
        from tensorboardX import SummaryWriter

        self.logdir = logdir
        os.makedirs(logdir, exist_ok=True)
        with open(os.path.join(logdir, "params.json"), "w") as f:
            json.dump(config, f, indent=2, sort_keys=True, default=_json_default)
        self._json = open(os.path.join(logdir, "result.json"), "a")
        self._csv_file = open(os.path.join(logdir, "progress.csv"), "a", newline="")
        self._csv = None
        self._tb = SummaryWriter(logdir, flush_secs=30)

    def on_result(self, result: dict) -> None:
        self._json.write(json.dumps(result, default=_json_default) + "\n")
        self._json.flush()
        flat = {
            k: v for k, v in flatten(result).items() if not k.startswith(("hist_stats/", "config/"))
        }
        if self._csv is None:
            # The columns are fixed by the first result, as in Tune's progress.csv.
            self._csv = csv.DictWriter(self._csv_file, fieldnames=list(flat), extrasaction="ignore")
            self._csv.writeheader()
        self._csv.writerow(flat)
        self._csv_file.flush()
        step = result.get("timesteps_total") or result.get("training_iteration", 0)
        for key, value in flat.items():
            if is_real_number(value) and np.isfinite(value):
                self._tb.add_scalar(f"ray/tune/{key}", value, global_step=step)

    def close(self) -> None:
        self._json.close()
        self._csv_file.close()
        self._tb.close()
