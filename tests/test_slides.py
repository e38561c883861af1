"""tools/make_slides.py: every lesson carries slide metadata, and ``make slides`` turns a lesson
into a reveal.js deck of its key cells."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from tools import make_slides

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_every_lessons_slide_metadata_is_up_to_date():
    stale = make_slides.out_of_date(LESSONS)
    assert not stale, f"run `python tools/make_slides.py`: slide metadata out of date in {stale}"


def cell(cell_type: str, source: str, outputs=()):
    if cell_type == "markdown":
        return nbformat.v4.new_markdown_cell(source)
    made = nbformat.v4.new_code_cell(source)
    made.outputs = list(outputs)
    return made


def test_slide_rules():
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        cell("markdown", "# Lesson 99 — Title\n\nwhat you will learn"),  # 0 slide
        cell("code", "import ray\n\ninit_ray()"),  # 1 skip: set-up
        cell("markdown", "## 1. A section"),  # 2 slide
        cell("code", "x = 1 + 1\nprint(x)"),  # 3 on the slide
        cell("markdown", "### A sub-topic"),  # 4 subslide
        cell("markdown", "\n".join(f"line {i}" for i in range(12))),  # 5 notes: long prose
        cell("markdown", "A short remark."),  # 6 on the slide
        cell("code", "show(SampleBatch.concat_samples)"),  # 7 skip: library source
        cell("code", "from course_lib.models import X\nshow(X)"),  # 8 skip
        cell("code", "\n".join(f"y{i} = {i}" for i in range(30))),  # 9 skip: long
        cell(
            "code",
            "panel",
            [
                nbformat.v4.new_output(
                    "display_data", data={make_slides.WIDGET: {}, "text/plain": "panel"}
                )
            ],
        ),  # 10 skip: a widget
        cell("code", "plt.plot([1, 2])"),  # 11 on the slide
        cell("code", "ray.shutdown()"),  # 12 skip: the last cell
    ]
    notebook.cells[6].metadata["slideshow"] = {"slide_type": "fragment", "manual": True}
    assert make_slides.apply(notebook) == 12
    types = [c.metadata["slideshow"]["slide_type"] for c in notebook.cells]
    assert types == [
        "slide", "skip", "slide", "-", "subslide", "notes", "fragment",
        "skip", "skip", "skip", "skip", "-", "skip",
    ]  # fmt: skip
    assert make_slides.apply(notebook) == 0, "applying twice changes nothing"


@pytest.mark.parametrize("lesson", ["13_algorithms.ipynb"])
def test_a_deck_has_a_section_per_slide_and_leaves_the_skipped_cells_out(tmp_path, lesson):
    path = ROOT / "notebooks" / lesson
    (deck,) = make_slides.render([path], tmp_path, reveal_prefix="reveal.js")
    text = deck.read_text(encoding="utf-8")
    notebook = nbformat.read(path, as_version=4)
    types = [c.metadata["slideshow"]["slide_type"] for c in notebook.cells]
    # Every slide and sub-slide is a <section>; a slide holding sub-slides adds one wrapper.
    sections = len(re.findall(r"<section", text))
    assert sections >= types.count("slide") + types.count("subslide")
    assert "reveal.js/dist/reveal.js" in text or "reveal.js/" in text
    assert 'class="notes"' in text
    assert "runpy.run_path" not in text, "the set-up cell is skipped"
    assert "ray.shutdown" not in text
    title = notebook.cells[0].source.splitlines()[0].lstrip("# ")
    assert title.split(" — ")[0] in text
    assert (tmp_path / "index.html").read_text().count("<li>") == 1
