"""``show(obj)``: render the source code of a library object in a notebook.

Lessons call ``show`` instead of pasting library code, so a notebook and the library it
teaches can never drift apart. Introduced in notebooks/00_welcome.ipynb.
"""

from __future__ import annotations

import ast
import inspect
import linecache
import os
import textwrap
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
        lines = f"lines {self.first_line}-{self.last_line}"
        where = f"<small>{_escape_markdown(self.path)}, {lines}</small>"
        code = f"{fence}python\n{self.code.rstrip()}\n{fence}\n"
        return f"**`{self.qualname}`** &nbsp; {where}\n\n{code}"

    def __repr__(self) -> str:
        return f"# {self.title}\n{self.code.rstrip()}"

    __str__ = __repr__


def _escape_markdown(text: str) -> str:
    """``text`` with Markdown's inline punctuation backslash-escaped, so that a path such as
    ``course_lib/__init__.py`` renders as written, not with a bold "init"."""
    return "".join("\\" + char if char in _MARKDOWN_PUNCTUATION else char for char in text)


_MARKDOWN_PUNCTUATION = set("\\`*_{}[]<>()#+!|~")


@dataclass(frozen=True)
class SourceViews:
    """Several ``SourceView`` parts, rendered one after another.

    ``show`` returns one for a class made by ``build_policy`` or ``build_trainer``: the builder
    call first, then each function and mixin the class was built from.
    Introduced in notebooks/07_policies.ipynb.
    """

    parts: tuple[SourceView, ...]

    def _repr_markdown_(self) -> str:
        return "\n".join(part._repr_markdown_() for part in self.parts)

    def __repr__(self) -> str:
        return "\n\n".join(repr(part) for part in self.parts)

    __str__ = __repr__


def show(obj) -> SourceView | SourceViews:
    """Return the source of a function, class, method or module as a ``SourceView``.

    In a notebook, leave it as the last expression of a cell: ``show(SampleBatch.concat_samples)``.
    Paths are shown relative to the package that holds the object (``course_lib/parallel.py``).
    A class made by ``build_policy``/``build_trainer`` gives ``SourceViews``: the call that built
    it and the functions it was built from, since it has no ``class`` statement of its own.
    """
    target = inspect.unwrap(obj.__func__ if inspect.ismethod(obj) else obj)
    # A Ray remote function or actor class keeps the plain Python object it wraps; so does a Ray
    # Serve deployment (its func_or_class).
    target = (
        getattr(target, "_function", None)
        or getattr(target, "__ray_actor_class__", None)
        or getattr(target, "func_or_class", None)
        or target
    )
    if inspect.isclass(target) and "build_args" in vars(target):
        return _show_built_class(target)
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


def _show_built_class(cls: type) -> SourceViews:
    """The builder call recorded in ``cls.built_at``, then the functions and mixins of
    ``cls.build_args`` (a lambda written inside that call is already shown with it)."""
    call = _builder_call(cls)
    parts = [call] if call else []
    for argument in cls.build_args.values():
        pieces = argument if isinstance(argument, list) else [argument]
        for piece in pieces:
            # A class in a list is a mixin; a class on its own (default_policy) has its own show.
            is_mixin = inspect.isclass(piece) and isinstance(argument, list)
            if not (inspect.isfunction(piece) or is_mixin):
                continue
            try:
                view = show(piece)
            except TypeError:
                continue
            inside_call = call and view.path == call.path and call.first_line <= view.first_line
            inside_call = inside_call and view.first_line <= call.last_line
            if not inside_call and view not in parts:
                parts.append(view)
    return SourceViews(tuple(parts))


def _builder_call(cls: type) -> SourceView | None:
    """The statement at ``cls.built_at`` (e.g. ``PGTorchPolicy = build_policy(...)``), whole."""
    filename, line = getattr(cls, "built_at", (None, 0))
    lines = linecache.getlines(filename) if filename else []
    try:
        tree = ast.parse("".join(lines))
    except SyntaxError:
        return None
    around = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.stmt) and node.lineno <= line <= node.end_lineno
    ]
    if not around:
        return None
    statement = min(around, key=lambda node: node.end_lineno - node.lineno)
    code = textwrap.dedent("".join(lines[statement.lineno - 1 : statement.end_lineno]))
    return SourceView(
        qualname=f"{cls.__module__}.{cls.__qualname__}",
        path=_short_path(filename, cls.__module__),
        first_line=statement.lineno,
        code=code,
    )


def _short_path(path: str, module: str) -> str:
    """Path from the top-level package folder on, e.g. ``course_lib/envs/registry.py``."""
    top = module.split(".")[0] if module else ""
    parts = os.path.normpath(path).split(os.sep)
    if top in parts:
        return "/".join(parts[len(parts) - 1 - parts[::-1].index(top) :])
    return os.path.basename(path)
