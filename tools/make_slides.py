"""Slide metadata for every lesson, and reveal.js decks made from it (``make slides``).

A workshop shows the key cells of a lesson; learners keep the full notebook. Each lesson stores
Jupyter's standard slide metadata (``cell.metadata.slideshow.slide_type``, what JupyterLab's
property inspector edits), chosen by the rules in ``slide_type``:

- a markdown cell that opens with a ``#`` or ``##`` heading starts a new slide, ``###`` a
  sub-slide (reveal.js shows sub-slides below their slide);
- other short markdown stays on the current slide; a long explanation becomes speaker notes
  (press ``s`` in the deck);
- a code cell stays on the slide, except the set-up cell (imports, starting Ray), library source
  shown with ``show(...)``, an interactive widget, long cells, and the last cell (``ray.shutdown``):
  those are skipped, since the notebook is where they are read or used.

A cell whose ``slideshow`` metadata was set by hand (``"manual": true`` next to ``slide_type``)
keeps it. ``python tools/make_slides.py`` writes the metadata (run it after adding cells; a test
fails when a lesson's metadata is out of date); ``--check`` only reports; ``--render DIR`` writes
``DIR/NN_name.slides.html`` per lesson with nbconvert's ``SlidesExporter``, from the stored
outputs, without running anything, plus ``DIR/index.html``.

The decks load reveal.js from ``--reveal-prefix`` (nbconvert's default, the unpkg CDN). In a room
without internet, serve a copy of reveal.js 4 beside the decks and pass its path.
"""

from __future__ import annotations

import argparse
import html
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
LESSONS = ROOT / "notebooks"
REVEAL_PREFIX = "https://unpkg.com/reveal.js@4.0.2"
SHORT_MARKDOWN = 8  # lines; a longer paragraph that opens no section becomes speaker notes
LONG_CODE = 25  # lines; a longer code cell is left to the notebook
WIDGET = "application/vnd.jupyter.widget-view+json"
SHOW_ONLY = re.compile(r"^(?:from \S+ import [^\n]+\n+)*(?:course_lib\.)?show\([^\n]*\)\s*$")


def slide_type(cell, index: int, code_indices: list[int]) -> str:
    """The slide type of ``cell`` (the ``index``-th cell; ``code_indices``: all code cells)."""
    source = cell.source.strip()
    if cell.cell_type == "markdown":
        first = source.splitlines()[0] if source else ""
        if first.startswith(("# ", "## ")):
            return "slide"
        if first.startswith("### "):
            return "subslide"
        return "-" if len(source.splitlines()) <= SHORT_MARKDOWN else "notes"
    if cell.cell_type != "code" or not source:
        return "skip"
    outputs = cell.get("outputs", [])
    if (
        index in (code_indices[0], code_indices[-1])
        or SHOW_ONLY.match(source)
        or any(WIDGET in output.get("data", {}) for output in outputs)
        or len(source.splitlines()) > LONG_CODE
    ):
        return "skip"
    return "-"


def apply(notebook) -> int:
    """Set every cell's slide type in place; return how many changed."""
    cells = notebook.cells
    code_indices = [i for i, c in enumerate(cells) if c.cell_type == "code" and c.source.strip()]
    changed = 0
    for index, cell in enumerate(notebook.cells):
        current = cell.metadata.get("slideshow", {})
        if current.get("manual"):
            continue
        wanted = slide_type(cell, index, code_indices) if code_indices else "-"
        if current.get("slide_type") != wanted:
            cell.metadata["slideshow"] = {"slide_type": wanted}
            changed += 1
    return changed


def out_of_date(paths) -> list[str]:
    """The lessons whose stored slide metadata differs from what ``apply`` would write."""
    stale = []
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        if apply(notebook):
            stale.append(path.name)
    return stale


def render(paths, out_dir: Path, reveal_prefix: str = REVEAL_PREFIX) -> list[Path]:
    """One reveal.js deck per lesson in ``out_dir``, and an index page; returns the decks."""
    from nbconvert import SlidesExporter

    exporter = SlidesExporter(reveal_url_prefix=reveal_prefix, reveal_scroll=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    decks = []
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        apply(notebook)  # the decks follow the rules even before the metadata is written back
        body, _ = exporter.from_notebook_node(notebook, resources={"metadata": {"name": path.stem}})
        deck = out_dir / f"{path.stem}.slides.html"
        deck.write_text(body, encoding="utf-8")
        decks.append(deck)
    names = [(html.escape(d.name), html.escape(d.stem.removesuffix(".slides"))) for d in decks]
    items = "\n".join(f'<li><a href="{href}">{name}</a></li>' for href, name in names)
    (out_dir / "index.html").write_text(
        f"<!doctype html><meta charset='utf-8'><title>course_lib slides</title>"
        f"<h1>course_lib: slide decks</h1><ul>\n{items}\n</ul>\n",
        encoding="utf-8",
    )
    return decks


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lessons", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    parser.add_argument("--check", action="store_true", help="report stale metadata, write nothing")
    parser.add_argument("--render", type=Path, metavar="DIR", help="write the decks into DIR")
    parser.add_argument("--reveal-prefix", default=REVEAL_PREFIX, help="where reveal.js is served")
    args = parser.parse_args(argv)
    paths = args.lessons or sorted(LESSONS.glob("[0-9][0-9]_*.ipynb"))
    if args.render:
        decks = render(paths, args.render, args.reveal_prefix)
        print(f"{len(decks)} slide decks in {args.render}/ (open index.html)")
        return 0
    if args.check:
        stale = out_of_date(paths)
        if stale:
            print(f"slide metadata out of date in {', '.join(stale)}: run tools/make_slides.py")
        return 1 if stale else 0
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        if apply(notebook):
            nbformat.write(notebook, path)
            print(f"slide metadata written: {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
