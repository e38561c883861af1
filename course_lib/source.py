"""``show(obj)``: render the source code of a library object in a notebook.

Lessons call ``show`` instead of pasting library code, so a notebook and the library it
teaches can never drift apart. Introduced in notebooks/00_welcome.ipynb.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class SourceView:
    """The source of one object; Jupyter renders it as highlighted Python, a terminal as text."""

    qualname: str
    path: str
    first_line: int
    code: str

    @property
    def last_line(self) -> int:
        return self.first_line + self.code.count("\n") - (1 if self.code.endswith("\n") else 0)

    @property
    def title(self) -> str:
        return f"{self.qualname}  ({self.path}, lines {self.first_line}-{self.last_line})"

    def _repr_markdown_(self) -> str:
        fence = "````" if "```" in self.code else "```"
        return f"**`{self.qualname}`** &nbsp; <small>{self.path}, lines {self.first_line}-{self.last_line}</small>\n\n{fence}python\n{self.code.rstrip()}\n{fence}\n"

    def __repr__(self) -> str:
        return f"# {self.title}\n{self.code.rstrip()}"

    __str__ = __repr__


def show(obj) -> SourceView:
    """Return the source of a function, class, method or module as a ``SourceView``.

    In a notebook, leave it as the last expression of a cell: ``show(SampleBatch.concat_samples)``.
    Paths are shown relative to the package that holds the object (``course_lib/parallel.py``).
    """
    target = inspect.unwrap(obj.__func__ if inspect.ismethod(obj) else obj)
    # A Ray remote function or actor class keeps the plain Python object it wraps.
    target = (
        getattr(target, "_function", None) or getattr(target, "__ray_actor_class__", None) or target
    )
    if inspect.isbuiltin(target) or inspect.ismethoddescriptor(target):
        raise TypeError(
            f"show() found no Python source for {obj!r:.60}: it is built in (written in C)."
        )
    if not (
        inspect.isfunction(target)
        or inspect.isclass(target)
        or inspect.ismodule(target)
        or inspect.ismethod(target)
    ):
        raise TypeError(
            f"show() renders the source of a function, class, method or module; got "
            f"{type(obj).__name__} {obj!r:.60}. Pass the object itself, e.g. show(SampleBatch), "
            "not an instance of it or the result of calling it."
        )
    try:
        lines, first_line = inspect.getsourcelines(target)
        path = inspect.getsourcefile(target)
    except (OSError, TypeError) as err:
        raise TypeError(
            f"show() found no Python source for {obj!r:.60}: it is built in, written in C, or "
            f"was defined interactively ({err})."
        ) from None
    qualname = getattr(target, "__qualname__", None) or target.__name__
    module = getattr(target, "__module__", None) or getattr(target, "__name__", "")
    if not inspect.ismodule(target) and module:
        qualname = f"{module}.{qualname}"
    return SourceView(
        qualname=qualname,
        path=_short_path(path, module),
        first_line=max(first_line, 1),
        code="".join(lines),
    )


def _short_path(path: str, module: str) -> str:
    """Path from the top-level package folder on, e.g. ``course_lib/envs/registry.py``."""
    top = module.split(".")[0] if module else ""
    parts = os.path.normpath(path).split(os.sep)
    if top in parts:
        return "/".join(parts[len(parts) - 1 - parts[::-1].index(top) :])
    return os.path.basename(path)
