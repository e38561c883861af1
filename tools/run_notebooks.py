"""Execute notebooks in place (storing their outputs) and report each one's run time.

Usage: ``python tools/run_notebooks.py notebooks solutions`` or a list of .ipynb files.
Lessons keep their outputs so they read well on their own; nbval re-runs them in ``make test``
and compares only the cells marked ``# NBVAL_CHECK_OUTPUT``.
"""

from __future__ import annotations

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


def main(args: list[str]) -> int:
    paths = []
    for arg in args or ["notebooks", "solutions"]:
        p = Path(arg)
        paths.extend(sorted(p.glob("*.ipynb")) if p.is_dir() else [p])
    print("| notebook | seconds |\n|---|---|")
    for path in paths:
        print(f"| {path} | {run(path):.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
