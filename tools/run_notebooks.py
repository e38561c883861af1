"""Execute notebooks in place (storing their outputs) and report each one's run time.

Usage: ``python tools/run_notebooks.py notebooks solutions`` or a list of .ipynb files.
Lessons keep their outputs so they read well on their own; nbval re-runs them in ``make test``
and compares only the cells marked ``# NBVAL_CHECK_OUTPUT``.
"""

from __future__ import annotations

import argparse
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
    strip_ansi(notebook)
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
                "Name notebooks or folders, e.g. notebooks/07_rollout_workers.ipynb or solutions."
            )
    return paths


def main(args: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "paths", nargs="*", default=["notebooks", "solutions"], help="notebooks or folders"
    )
    paths = notebook_paths(parser.parse_args(args).paths)
    print("| notebook | seconds |\n|---|---|")
    for path in paths:
        print(f"| {path} | {run(path):.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
