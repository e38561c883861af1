"""Execute notebooks in place (storing their outputs) and report each one's run time.

Usage: ``python tools/run_notebooks.py notebooks solutions`` or a list of .ipynb files.
Lessons keep their outputs so they read well on their own; ``make test`` re-runs them (solutions
under nbval, lessons in tests/test_notebook_rerun.py) and compares only the cells marked
``# NBVAL_CHECK_OUTPUT``.

``--tidy-only`` skips the execution and only tidies the outputs a notebook already stores (terminal
colour codes, progress bars), for a notebook executed before this tool tidied them.
"""

from __future__ import annotations

import argparse
import html
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

# Ray colours the log lines it forwards, such as the "(raylet)" notice when a lesson kills an actor
# on purpose. JupyterLab shows the colours; stored as raw escape codes they read as noise on
# GitHub and in the rendered notebook, so the text is kept and the codes dropped.
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def strip_ansi(notebook) -> None:
    """Remove terminal colour codes from every stream output (stdout/stderr) in place."""
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                output["text"] = ANSI_ESCAPE.sub("", output["text"])


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
BAR_WIDTH = 10  # characters of the text bar, as tqdm draws it when it has no terminal width


def finish_progress_bars(notebook) -> None:
    """Make each stored tqdm bar's text the bar as it ended, not as it started.

    tqdm.auto draws a widget (an HBox of a label, a FloatProgress and a label). The output stores
    the widget's id plus a text/plain fallback, which is the bar at creation: "0%| 0/30". GitHub and
    any viewer without the live widget show that text, so the run looks stalled. nbclient stores
    the widgets' final state in the notebook's metadata; the fallback is rebuilt from it in tqdm's
    own text format: "desc: 100%|██████████| 30/30 [00:03<00:00,  9.46it/s]".
    """
    state = notebook.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW)
            text = view and _progress_bar_text(state, view.get("model_id"))
            if text:
                output["data"]["text/plain"] = text


def _progress_bar_text(state: dict, model_id: str | None) -> str | None:
    """tqdm's text for the HBox ``model_id`` if it is a tqdm bar: [HTML, FloatProgress, HTML]."""
    box = state.get(model_id, {})
    if box.get("model_name") != "HBoxModel":
        return None
    children = [state.get(c.removeprefix("IPY_MODEL_"), {}) for c in box["state"]["children"]]
    if [c.get("model_name") for c in children] != ["HTMLModel", "FloatProgressModel", "HTMLModel"]:
        return None
    left, progress, right = (c["state"] for c in children)
    filled = progress["value"] / progress["max"] if progress.get("max") else 0.0
    cells = max(0, min(BAR_WIDTH, round(BAR_WIDTH * filled)))
    bar = "█" * cells + " " * (BAR_WIDTH - cells)
    # tqdm pads with figure spaces (U+2007) and escapes "<" for HTML.
    left_text, right_text = (
        html.unescape(s.get("value", "")).replace("\u2007", " ") for s in (left, right)
    )
    return f"{left_text}|{bar}|{right_text}"


def tidy_outputs(notebook) -> None:
    """Everything this tool changes in a notebook's outputs after running it."""
    strip_ansi(notebook)
    finish_progress_bars(notebook)


def tidy(path: Path) -> None:
    """Tidy the outputs a notebook already stores, without running it."""
    notebook = nbformat.read(path, as_version=4)
    tidy_outputs(notebook)
    nbformat.write(notebook, path)


def run(path: Path, timeout: int = 600) -> float:
    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    seconds = time.perf_counter() - start
    tidy_outputs(notebook)
    nbformat.write(notebook, path)
    return seconds


def notebook_paths(args: list[str]) -> list[Path]:
    """The .ipynb files named, or found directly inside the folders named."""
    paths = []
    for arg in args:
        p = Path(arg)
        if p.is_dir():
            paths.extend(sorted(p.glob("*.ipynb")))
        elif p.suffix == ".ipynb" and p.is_file():
            paths.append(p)
        else:
            raise SystemExit(
                f"run_notebooks: {arg!r} is neither a folder nor an existing .ipynb file. "
                "Name notebooks or folders, e.g. notebooks/08_rollout_workers.ipynb or solutions."
            )
    return paths


def main(args: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "paths", nargs="*", default=["notebooks", "solutions"], help="notebooks or folders"
    )
    parser.add_argument(
        "--tidy-only",
        action="store_true",
        help="do not execute; only tidy the outputs stored (colour codes, progress bars)",
    )
    options = parser.parse_args(args)
    paths = notebook_paths(options.paths)
    if options.tidy_only:
        for path in paths:
            tidy(path)
            print(f"tidied {path}")
        return 0
    print("| notebook | seconds |\n|---|---|")
    for path in paths:
        print(f"| {path} | {run(path):.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
