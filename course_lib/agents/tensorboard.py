"""TensorBoard: read the scalars of a run's event files, and the command that opens the viewer.

Every result a trainer logs becomes one point per number in ``events.out.tfevents.*``, under the
tag ``ray/tune/<flattened key>`` (``ray/tune/info/learner/default_policy/entropy``) at the step
``timesteps_total``, as Tune's TensorBoard logger writes them (see ``result_logger.py``).
``read_scalars`` reads them back with TensorBoard's own reader, so it sees what the viewer shows.
Introduced in notebooks/12_trainers.ipynb.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Iterable

from course_lib.validation import did_you_mean


def read_scalars(
    logdir: str | os.PathLike, tags: str | Iterable[str] | None = None
) -> dict[str, list[tuple[int, float]]]:
    """``{tag: [(step, value), ...]}`` from the event files in ``logdir``, each list sorted by step.

    ``logdir`` is one run's results folder (``trainer.logdir``, or a Tune trial's folder); every
    event file in it is read, none in its subfolders. ``tags`` picks tags (one tag or a list);
    ``None`` returns all of them. Every point is kept (TensorBoard's reader would otherwise keep a
    random sample of 10,000 per tag). Values are TensorBoard's 32-bit floats: ``result.json`` holds
    the exact numbers.
    Introduced in notebooks/12_trainers.ipynb.
    """
    logdir = os.fspath(logdir)
    _require_event_files(logdir)
    try:
        from tensorboard.backend.event_processing import event_accumulator
    except ImportError as error:
        raise ImportError(
            "read_scalars reads event files with TensorBoard, which is not installed here. "
            "Install it with `pip install tensorboard` (`make setup` installs it with the course)."
        ) from error

    # A size of 0 keeps every scalar instead of a random sample of them.
    accumulator = event_accumulator.EventAccumulator(
        logdir, size_guidance={event_accumulator.SCALARS: 0}
    )
    accumulator.Reload()
    available = accumulator.Tags()["scalars"]
    if tags is None:
        wanted = list(available)
    else:
        wanted = [tags] if isinstance(tags, str) else list(tags)
        _require_known_tags(wanted, available, logdir)
    return {
        tag: sorted(
            ((int(event.step), float(event.value)) for event in accumulator.Scalars(tag)),
            key=lambda point: point[0],
        )
        for tag in wanted
    }


def tensorboard_command(logdir: str | os.PathLike) -> str:
    """The shell command that serves TensorBoard on ``logdir``, at http://localhost:6006.

    It names this Python environment's ``tensorboard`` (``.venv/bin/tensorboard`` after
    ``make setup``) so that it works without activating the environment, and an absolute
    ``logdir``, so that it works from any folder. ``logdir`` may be one run's folder or a folder of
    runs (``~/ray_results``): TensorBoard finds the runs in its subfolders and draws each as one
    curve. Introduced in notebooks/12_trainers.ipynb.
    """
    folder = os.path.abspath(os.path.expanduser(os.fspath(logdir)))
    program = shutil.which("tensorboard", path=os.path.dirname(sys.executable)) or "tensorboard"
    return f"{shlex.quote(program)} --logdir {shlex.quote(folder)}"


def _require_event_files(logdir: str) -> None:
    if os.path.isfile(logdir):
        raise NotADirectoryError(
            f"read_scalars: {logdir!r} is a file; expected a trial's results folder, e.g. "
            f"trainer.logdir (here the folder that holds it, {os.path.dirname(logdir) or '.'!r})."
        )
    if not os.path.isdir(logdir):
        raise FileNotFoundError(
            f"read_scalars: no such folder {logdir!r}; expected a trial's results folder, "
            "e.g. trainer.logdir."
        )
    names = sorted(os.listdir(logdir))
    if any(_is_event_file(name) for name in names):
        return
    holds = f"it holds {', '.join(names)}" if names else "it is empty"
    runs = [
        name
        for name in names
        if os.path.isdir(path := os.path.join(logdir, name))
        and any(_is_event_file(inner) for inner in os.listdir(path))
    ]
    where = (
        f" Its subfolders {', '.join(runs)} hold event files: pass one of them (one run each)."
        if runs
        else ""
    )
    raise FileNotFoundError(
        f"read_scalars: no TensorBoard event file (events.out.tfevents.*) in {logdir!r}; {holds}."
        f"{where} A trainer writes one into trainer.logdir when it is built, and Tune writes one "
        "into each trial's folder unless its loggers are turned off "
        "(TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1)."
    )


def _is_event_file(name: str) -> bool:
    return "tfevents" in name  # TensorBoard's own test for an event file's name


def _require_known_tags(wanted: list[str], available: list[str], logdir: str) -> None:
    unknown = [tag for tag in wanted if tag not in available]
    if not unknown:
        return
    if not available:
        raise ValueError(
            f"read_scalars: no scalars in {logdir!r} yet, so no tag {unknown[0]!r}: a trainer "
            "logs its numbers at the end of each train()."
        )
    problems = " ".join(f"Unknown tag {tag!r}.{did_you_mean(tag, available)}" for tag in unknown)
    raise ValueError(
        f"read_scalars: {problems} Tags in {logdir!r} (result keys under 'ray/tune/'): "
        f"{', '.join(available)}."
    )
