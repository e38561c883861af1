"""What every grader shares: the failure type, the success line and argument checks."""

from __future__ import annotations


class CheckFailed(AssertionError):
    """Your answer ran but is not right yet; the message says what differs and the likely fix."""

    def __init__(self, exercise: str, message: str):
        super().__init__(f"Exercise {exercise}: {message}")
        self.exercise = exercise


def passed(exercise: str, what: str) -> None:
    print(f"✔ Exercise {exercise} passed: {what}")


def require_callable(grader: str, name: str, obj) -> None:
    if not callable(obj):
        raise TypeError(
            f"{grader}() expects your function itself, e.g. checks.{grader}({name}); "
            f"got {type(obj).__name__} {obj!r:.60}. Pass the function without calling it."
        )


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
