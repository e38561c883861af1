"""The words of course_lib's input checks, kept in one place so every message reads the same.

Two checks recur all over the library: "is this a whole number?" (``True`` is an ``int`` in Python,
so a plain ``isinstance(x, int)`` lets ``num_workers=True`` through) and "which known name did the
learner mean?" for a misspelt config key, env name or type name. Introduced in
notebooks/03_environments.ipynb (the first "Did you mean ...?" a learner meets).
"""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Iterable


def is_whole_number(value) -> bool:
    """True for an ``int`` that is not a ``bool`` (``True``/``False`` are ints in Python)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_real_number(value) -> bool:
    """True for a real number (int, float, numpy scalar) that is not a ``bool``."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def require_whole_number(value, name: str, *, minimum: int | None = None) -> int:
    """``value`` when it is a whole number (``>= minimum`` if given); otherwise a clear ValueError.

    ``name`` is how the learner wrote the setting, e.g. ``'"num_workers"'``.
    """
    if not is_whole_number(value) or (minimum is not None and value < minimum):
        bound = "" if minimum is None else f" >= {minimum}"
        raise ValueError(f"{name} must be a whole number{bound}, got {value!r}.")
    return value


def close_matches(name, choices: Iterable, *, n: int = 1, cutoff: float = 0.6) -> list[str]:
    """Up to ``n`` of ``choices`` that look like ``name``, best first.

    A choice that differs from ``name`` only in case always comes first: ``"ppo"`` means ``"PPO"``.
    """
    texts = [str(choice) for choice in choices]
    same_but_case = [text for text in texts if text.lower() == str(name).lower() and text != name]
    close = difflib.get_close_matches(str(name), texts, n=n, cutoff=cutoff)
    return list(dict.fromkeys(same_but_case + close))[:n]


def did_you_mean(name, choices: Iterable, *, n: int = 1, cutoff: float = 0.6) -> str:
    """``" Did you mean 'x'?"`` (or ``'x' or 'y'``) for the closest choices; ``""`` when none is
    close.

    The leading space lets a message append it directly: ``f"Unknown key {key!r}.{hint}"``.
    """
    close = close_matches(name, choices, n=n, cutoff=cutoff)
    return f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
