"""The exercises are honest: generated from the solutions, and each stub fails only its check."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from jupyter_core.utils import run_sync
from nbclient import NotebookClient

from tools import make_exercises as mx

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))


def notebook(*cells) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    for kind, source in cells:
        nb.cells.append(
            nbformat.v4.new_markdown_cell(source)
            if kind == "md"
            else nbformat.v4.new_code_cell(source)
        )
    return nb


SOLVED = """def double(x):
    ### BEGIN SOLUTION
    # Hint: multiply by two.
    # Hint: return the result.
    y = 2 * x
    return y
    ### END SOLUTION"""


def test_a_block_becomes_its_hints_and_a_raise_at_the_same_indent():
    out = mx.make_exercise(
        notebook(("md", "### Exercise 3.2: double it"), ("code", SOLVED)), "x.ipynb"
    )
    assert out.cells[1].source == (
        "def double(x):\n"
        "    # Hint: multiply by two.\n"
        "    # Hint: return the result.\n"
        "    raise NotImplementedError('Exercise 3.2: multiply by two.')"
    )
    assert out.metadata["course_lib"]["generated_from"] == "solutions/x.ipynb"


def test_the_number_comes_from_the_nearest_heading_above():
    nb = notebook(
        ("md", "## Exercise 1.1"),
        ("code", SOLVED),
        ("md", "## Exercise 1.2 and more"),
        ("code", "z = 1"),
        ("code", SOLVED),
    )
    out = mx.make_exercise(nb, "x.ipynb")
    assert "Exercise 1.1:" in out.cells[1].source and "Exercise 1.2:" in out.cells[4].source
    assert out.cells[3].source == "z = 1"


def test_a_block_without_hints_gets_a_generic_message():
    source = "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n"
    out = mx.make_exercise(notebook(("md", "# Exercise 10.9"), ("code", source)), "x.ipynb")
    assert (
        out.cells[1].source == "def f():\n"
        "    raise NotImplementedError('Exercise 10.9: replace this line with your code.')"
    )


def test_a_folded_hint_in_the_exercise_text_is_named_in_the_message():
    folded = "### Exercise 3.2\n\n<details><summary>Hint</summary>\n\n- `2 * x`\n\n</details>"
    nb = notebook(("md", folded), ("code", SOLVED), ("md", "### Exercise 3.3"), ("code", SOLVED))
    out = mx.make_exercise(nb, "x.ipynb")
    assert out.cells[1].source.endswith(
        "raise NotImplementedError('Exercise 3.2: multiply by two. "
        "(a fuller hint is folded in the text above)')"
    )
    assert out.cells[3].source.endswith(
        "raise NotImplementedError('Exercise 3.3: multiply by two.')"
    )


def test_outputs_are_cleared():
    nb = notebook(("md", "# Exercise 1.1"), ("code", SOLVED))
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="hi")]
    nb.cells[1].execution_count = 3
    out = mx.make_exercise(nb, "x.ipynb")
    assert out.cells[1].outputs == [] and out.cells[1].execution_count is None


@pytest.mark.parametrize(
    "cells, message",
    [
        ([("code", SOLVED)], "needs a markdown heading 'Exercise N.M'"),
        (
            [("md", "# Exercise 1.1"), ("code", "### BEGIN SOLUTION\nx = 1")],
            "has no '### END SOLUTION'",
        ),
        ([("md", "# Exercise 1.1"), ("code", "x = 1\n### END SOLUTION")], "has no BEGIN above it"),
        (
            [
                ("md", "# Exercise 1.1"),
                ("code", "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION"),
            ],
            "nested",
        ),
        ([("md", "# Exercise 1.1"), ("code", "x = 1")], "no '### BEGIN SOLUTION' block"),
    ],
)
def test_broken_markers_name_the_notebook_and_the_problem(cells, message):
    with pytest.raises(mx.MarkerError, match=message):
        mx.make_exercise(notebook(*cells), "x.ipynb")


def test_every_lesson_has_an_exercise_notebook_and_a_solution():
    lessons = {p.name for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert lessons, "no lessons found"
    assert {p.name for p in SOLUTIONS} == lessons
    assert {p.name for p in (ROOT / "exercises").glob("*.ipynb")} == lessons


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_committed_exercises_are_generated_from_solutions(solution):
    committed = (ROOT / "exercises" / solution.name).read_text()
    assert committed == mx.expected_text(solution), (
        f"exercises/{solution.name} is stale or hand-edited: run `make exercises`"
    )


def exercise_numbers(nb) -> dict[str, dict[str, int]]:
    """Per exercise number: how many solution blocks and how many check cells follow its heading."""
    counts: dict[str, dict[str, int]] = {}
    current = None
    for cell in nb.cells:
        if cell.cell_type == "markdown" and (numbers := mx.EXERCISE_HEADING.findall(cell.source)):
            current = numbers[-1]
            counts.setdefault(current, {"solutions": 0, "checks": 0})
        elif current and mx.has_solution(cell):
            counts[current]["solutions"] += 1
        elif current and mx.is_check_cell(cell):
            counts[current]["checks"] += 1
    return counts


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_every_exercise_has_a_solution_and_a_check(solution):
    counts = exercise_numbers(nbformat.read(solution, as_version=4))
    incomplete = {n: c for n, c in counts.items() if c["solutions"] == 0 or c["checks"] == 0}
    assert counts and not incomplete, (
        f"{solution.name}: exercises without a solution block or check cell: {incomplete}"
    )


def execute_keeping_errors(nb: nbformat.NotebookNode, cwd: Path) -> None:
    """Run every cell of ``nb`` once, in order, in a fresh kernel; errors stay in the outputs."""
    client = NotebookClient(
        nb,
        timeout=240,  # per cell, as nbval's --nbval-cell-timeout for the lessons
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(cwd)}},
    )
    try:
        client.execute()
    finally:
        # pytest-timeout's SIGALRM can stop execute() before nbclient shuts its kernel down; the
        # kernel (and the Ray it started) would then keep running beside the rest of the suite.
        if client.km is not None and client.km.has_kernel:
            run_sync(client.km.shutdown_kernel)(now=True)


@pytest.mark.notebooks
@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_exercise_checks_fail_only_with_the_stub(solution):
    """Run the exercise notebook once: each check raises the stub's NotImplementedError and every
    other cell runs."""
    nb = nbformat.read(ROOT / "exercises" / solution.name, as_version=4)
    execute_keeping_errors(nb, cwd=ROOT / "exercises")
    current, problems, checks = None, [], 0
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and (numbers := mx.EXERCISE_HEADING.findall(cell.source)):
            current = numbers[-1]
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.outputs if o.output_type == "error"]
        if mx.is_check_cell(cell):
            checks += 1
            if (
                not errors
                or errors[0].ename != "NotImplementedError"
                or f"Exercise {current}:" not in errors[0].evalue
            ):
                got = f"{errors[0].ename}: {errors[0].evalue}" if errors else "no error"
                problems.append(
                    f"cell {index} (check of {current}) should raise the stub's "
                    f"NotImplementedError, got {got}"
                )
        elif errors:
            problems.append(
                f"cell {index} is not a check cell but raised {errors[0].ename}: {errors[0].evalue}"
            )
    assert checks, "no check cells found"
    assert not problems, "\n".join(problems)


STORED = sorted((ROOT / "notebooks").glob("*.ipynb")) + SOLUTIONS
# What must not be stored in an output, each pattern named for what a reader would see.
NOISE = {
    "terminal colour code": re.compile(r"\x1b\["),
    "traceback": re.compile(r"Traceback \(most recent call last\)"),
    "Ray's notice from the raylet": re.compile(r"^\(raylet\)", re.MULTILINE),
    # Ray's prefix for a worker's output: "(PG(env='CartPole-v1') pid=27739, ip=10.0.0.2) ..."
    "a worker's forwarded line": re.compile(r"^\(.*\bpid=\d+(, ip=[\d.]+)?\) ", re.MULTILINE),
    # Ray's log format: "2026-12-04 15:57:03,281\tINFO trainable.py:576 -- Restored ..."
    "a Ray log line": re.compile(r"\b(DEBUG|INFO|WARNING|ERROR)\s+\w+\.py:\d+ -- "),
    # A tqdm widget's text fallback as captured at creation; tools/run_notebooks.py replaces it.
    "a progress bar stored at 0%": re.compile(r"\| 0/[1-9]\d* \[00:00<\?"),
}


def output_texts(output) -> list[str]:
    """The text a reader sees of one stored output (streams, plain text, error tracebacks)."""
    if output.output_type == "stream":
        return [output.text]
    if output.output_type == "error":
        return ["\n".join(output.traceback)]
    return [output.get("data", {}).get("text/plain", "")]


@pytest.mark.parametrize("path", STORED, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_stored_outputs_hold_no_errors_logs_or_stalled_bars(path):
    """What GitHub shows of a notebook is what a learner should see: no tracebacks, Ray log noise,
    colour codes or progress bars frozen at 0%."""
    problems = []
    for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                problems.append(f"cell {index}: an error output ({output.ename}: {output.evalue})")
            for text in output_texts(output):
                for line in text.splitlines():
                    found = [what for what, pattern in NOISE.items() if pattern.search(line)]
                    if found:
                        problems.append(f"cell {index}: {', '.join(found)}: {line[:160]!r}")
    where = path.relative_to(ROOT)
    assert not problems, (
        f"{where} stores outputs a reader should not see; fix the cell, re-execute with "
        "tools/run_notebooks.py (it also tidies progress bars and colour codes):\n"
        + "\n".join(problems)
    )
