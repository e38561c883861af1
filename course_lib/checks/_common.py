"""What every grader shares: the failure types, the success line, and checks of what it was given
and what your code returned. Introduced in notebooks/00_welcome.ipynb ("How exercises work").
"""

from __future__ import annotations

import sys


class CheckFailed(AssertionError):
    """Your answer ran but is not right yet; the message says what differs and the likely fix."""

    def __init__(self, exercise: str, message: str):
        super().__init__(f"Exercise {exercise}: {message}")
        self.exercise = exercise


class LearnerHung(CheckFailed):
    """Your code did not return within the check's time limit, so the check stopped it."""


class LearnerCrashed(CheckFailed):
    """Your code raised an exception; ``error`` is the original one."""

    def __init__(self, exercise: str, message: str, error: BaseException):
        super().__init__(exercise, message)
        self.error = error


def passed(exercise: str, what: str) -> None:
    print(f"✔ Exercise {exercise} passed: {what}")


def require_callable(grader: str, name: str, obj) -> None:
    if not callable(obj):
        raise TypeError(
            f"{grader}() expects your function itself, e.g. checks.{grader}({name}); "
            f"got {type(obj).__name__} {obj!r:.60}. Pass the function without calling it."
        )


def require_subclass(grader: str, exercise: str, name: str, obj, base: type, why: str) -> None:
    """``obj`` must be a class (not an instance) derived from ``base``; ``why`` ends the message."""
    if not isinstance(obj, type):
        raise TypeError(
            f"{grader}() expects your class itself, e.g. checks.{grader}({name}); "
            f"got {type(obj).__name__} {obj!r:.60}. Pass the class without calling it."
        )
    if not issubclass(obj, base):
        raise CheckFailed(exercise, f"{obj.__name__} should subclass {base.__name__}{why}")


def require_ray(grader: str) -> None:
    import ray

    if not ray.is_initialized():
        raise RuntimeError(f"{grader}() needs Ray running: call course_lib.init_ray() first.")


def require_actor_class(grader: str, exercise: str, name: str, obj) -> None:
    from ray.actor import ActorClass

    if isinstance(obj, ActorClass):
        return
    if isinstance(obj, type):
        raise CheckFailed(
            exercise,
            f"{name} is a plain Python class. Put @ray.remote on the line above `class {name}` "
            f"so that checks can create it as an actor with {name}.remote(...).",
        )
    raise TypeError(
        f"{name} should be your actor class (decorated with @ray.remote); got {type(obj).__name__}."
    )


def name_known_mistake(exercise: str, got, mistakes, where: str, **tolerance) -> None:
    """Fail with the message of the first known wrong answer that ``got`` equals, if any.

    ``mistakes``: ``(wrong_answer, message)`` pairs, each the output of a typical slip on the same
    input; ``where`` starts the message ("on the lesson's six transitions "); ``tolerance`` goes to
    ``numpy.allclose``. Returns quietly when ``got`` matches none of them.
    """
    import numpy as np

    for wrong, message in mistakes:
        with np.errstate(invalid="ignore"):
            if np.allclose(got, wrong, **tolerance):
                raise CheckFailed(exercise, f"{where}{message}")


def expect_array(exercise: str, what: str, value, shape: tuple, description: str, hints=None):
    """``value`` (an array, list or torch tensor) as a float64 numpy array of ``shape``.

    Otherwise fail: a missing ``return``, or the shape, with ``description`` saying what the
    entries are ("one return per step") and ``hints[wrong_shape]`` added for a typical slip.
    """
    import numpy as np

    if value is None:
        raise CheckFailed(exercise, f"{what} returned None. Did you forget `return`?")
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().numpy()
    value = np.asarray(value, dtype=np.float64)
    if value.shape != tuple(shape):
        hint = (hints or {}).get(value.shape, "")
        raise CheckFailed(
            exercise,
            f"{what} should return {description}, shape {tuple(shape)}; got shape "
            f"{value.shape}.{hint}",
        )
    return value


def first_difference(got, want, **tolerance) -> int:
    """The index of the first entry where ``got`` and ``want`` differ (``numpy.isclose``)."""
    import numpy as np

    return int(np.flatnonzero(~np.isclose(got, want, **tolerance))[0])


def expect_pair(exercise: str, what: str, value, example: str):
    """Return ``value`` if it is a pair (a tuple or list of two); otherwise fail as
    ``expect_type`` does, naming ``example``, e.g. "a pair (is_estimate, wis_estimate)"."""
    value = expect_type(exercise, what, value, (tuple, list), example)
    if len(value) != 2:
        raise CheckFailed(exercise, f"{what} should return {example}; got {len(value)} values.")
    return value


def expect_type(exercise: str, what: str, value, expected, example: str):
    """Return ``value``, what your ``what`` returned, if it is an ``expected``; otherwise fail.

    ``what`` names the call ("parallel_map"); ``example`` says what it should return ("a list
    with one result per item, like [9, 1, 16]"). A missing ``return`` and an ObjectRef where a
    value belongs get their own hint.
    """
    if isinstance(value, expected):
        return value
    if value is None:
        raise CheckFailed(
            exercise, f"{what} returned None. Did you forget `return`? Expected {example}."
        )
    ray = sys.modules.get("ray")
    if ray is not None and isinstance(value, ray.ObjectRef):
        raise CheckFailed(
            exercise,
            f"{what} returned an ObjectRef, a claim ticket for a result, not the result: pass it "
            f"to ray.get(...) to fetch the value. Expected {example}.",
        )
    raise CheckFailed(
        exercise, f"{what} should return {example}; got {type(value).__name__} {value!r:.80}."
    )
