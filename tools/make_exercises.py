"""Generate exercises/ from solutions/: every solution block becomes a stub that raises.

Marker syntax in a code cell of a solutions/ notebook::

    def parallel_map(remote_fn, items):
        ### BEGIN SOLUTION
        # Hint: submit every task first, then call ray.get once.
        return ray.get([remote_fn.remote(x) for x in items])
        ### END SOLUTION

becomes, in exercises/::

    def parallel_map(remote_fn, items):
        # Hint: submit every task first, then call ray.get once.
        raise NotImplementedError('Exercise 1.1: submit every task first, then call ray.get once.')

The exercise number comes from the nearest markdown heading above the cell that says
"Exercise N.M". ``# Hint:`` lines right after BEGIN stay in the exercise: keep them to short
nudges. A hint that spells out the answer goes in the exercise's markdown, folded away::

    <details><summary>Hint</summary>

    - one `remote_fn.remote(x)` per item, then one `ray.get` on the list.

    </details>

and the stub's message then points to it ("... (a fuller hint is folded in the text above)").
Solution blocks belong inside function or class bodies, so that the stub only raises when a check
cell calls it.
Check cells call a grader: ``checks.check_parallel_map(parallel_map)``.

Usage: ``python tools/make_exercises.py`` (writes) or ``--check`` (exit 1 if exercises/ is stale).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
BEGIN = re.compile(r"^(?P<indent>\s*)### BEGIN SOLUTION\s*$")
END = re.compile(r"^\s*### END SOLUTION\s*$")
HINT = re.compile(r"^\s*# Hint:\s*(?P<text>.*)$")
EXERCISE_HEADING = re.compile(r"^#+\s.*\bExercise\s+(?P<number>\d+\.\d+)\b", re.MULTILINE)
CHECK_CALL = re.compile(r"\bchecks\.check_\w+\(")


class MarkerError(ValueError):
    """A solutions notebook breaks the marker syntax; the message names the notebook and cell."""


def is_check_cell(cell) -> bool:
    return cell.cell_type == "code" and bool(CHECK_CALL.search(cell.source))


def has_solution(cell) -> bool:
    return cell.cell_type == "code" and any(BEGIN.match(line) for line in cell.source.splitlines())


def has_marker(cell) -> bool:
    return cell.cell_type == "code" and any(
        BEGIN.match(line) or END.match(line) for line in cell.source.splitlines()
    )


FOLDED_HINT = "<summary>Hint</summary>"
FOLDED_HINT_NOTE = " (a fuller hint is folded in the text above)"


def stub_source(source: str, exercise: str, where: str, folded_hint: bool = False) -> str:
    """Replace each BEGIN/END block of one cell with its hint comments and a raise.

    ``folded_hint``: the exercise's markdown holds a folded Hint block; the message says so.
    """
    out, lines, i = [], source.splitlines(), 0
    while i < len(lines):
        begin = BEGIN.match(lines[i])
        if END.match(lines[i]):
            raise MarkerError(f"{where}: '### END SOLUTION' on line {i + 1} has no BEGIN above it.")
        if not begin:
            out.append(lines[i])
            i += 1
            continue
        indent, hints, j = begin["indent"], [], i + 1
        while j < len(lines) and not END.match(lines[j]):
            if BEGIN.match(lines[j]):
                raise MarkerError(
                    f"{where}: a BEGIN SOLUTION on line {j + 1} is nested in the block "
                    f"opened on line {i + 1}."
                )
            j += 1
        if j == len(lines):
            raise MarkerError(
                f"{where}: '### BEGIN SOLUTION' on line {i + 1} has no '### END SOLUTION' below it."
            )
        for line in lines[i + 1 : j]:
            hint = HINT.match(line)
            if not hint:
                break
            hints.append(hint["text"].strip())
        out.extend(f"{indent}# Hint: {h}" for h in hints)
        message = f"Exercise {exercise}: " + (
            hints[0] if hints else "replace this line with your code."
        )
        if folded_hint:
            message += FOLDED_HINT_NOTE
        out.append(f"{indent}raise NotImplementedError({message!r})")
        i = j + 1
    return "\n".join(out)


def make_exercise(solution: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """The exercise notebook for one solution notebook: stubs instead of solutions, no outputs."""
    exercise = nbformat.from_dict(solution)
    current, blocks, folded_hint = None, 0, False
    for index, cell in enumerate(exercise.cells):
        if cell.cell_type == "markdown":
            numbers = EXERCISE_HEADING.findall(cell.source)
            if numbers:
                current, folded_hint = numbers[-1], False
            folded_hint = folded_hint or FOLDED_HINT in cell.source
            continue
        if cell.cell_type != "code":
            continue
        cell.outputs, cell.execution_count = [], None
        if has_marker(cell):
            where = f"{name}, cell {index}"
            if current is None:
                raise MarkerError(
                    f"{where}: a solution block needs a markdown heading 'Exercise N.M' above it."
                )
            cell.source = stub_source(cell.source, current, where, folded_hint)
            blocks += 1
    if blocks == 0:
        raise MarkerError(
            f"{name}: no '### BEGIN SOLUTION' block; every solutions notebook holds exercises."
        )
    exercise.metadata["course_lib"] = {
        "generated_from": f"solutions/{name}",
        "edit": "the solution, then run `make exercises`",
    }
    return exercise


def expected_text(solution_path: Path) -> str:
    solution = nbformat.read(solution_path, as_version=4)
    return nbformat.writes(make_exercise(solution, solution_path.name)) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="report stale exercises instead of writing them"
    )
    args = parser.parse_args(argv)
    stale = []
    for solution_path in sorted((ROOT / "solutions").glob("*.ipynb")):
        target = ROOT / "exercises" / solution_path.name
        text = expected_text(solution_path)
        if target.exists() and target.read_text() == text:
            continue
        stale.append(target.relative_to(ROOT))
        if not args.check:
            target.write_text(text)
    verb = "stale" if args.check else "written"
    print(f"{len(stale)} exercise notebook(s) {verb}: {', '.join(map(str, stale)) or '-'}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
