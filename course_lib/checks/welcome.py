"""Grader for notebooks/00_welcome.ipynb: the warm-up that shows how exercises work."""

from __future__ import annotations

from ._common import CheckFailed, passed, require_callable


def check_mul(mul) -> None:
    """Exercise 0.1: the 2021 RLlib tutorial's ``mul(x)`` returns ``x * 10`` for numbers and numpy
    arrays."""
    import numpy as np

    require_callable("check_mul", "mul", mul)
    for x in (5, 7, -3, 0, 2.5):
        got = mul(x)
        if got is None:
            raise CheckFailed(
                "0.1", f"mul({x}) returned None. A function hands back a value with `return`."
            )
        if got == x + 10:
            raise CheckFailed(
                "0.1", f"mul({x}) returned {got}: that is x + 10. Multiply instead: x * 10."
            )
        if got != x * 10:
            raise CheckFailed("0.1", f"mul({x}) should be {x * 10}, got {got!r}.")
    array = np.arange(4)
    if not np.array_equal(mul(array), array * 10):
        raise CheckFailed(
            "0.1",
            "mul(np.arange(4)) should be array([0, 10, 20, "
            "30]); use x * 10, which works on arrays too.",
        )
    passed("0.1", "mul multiplies numbers and arrays by ten.")
