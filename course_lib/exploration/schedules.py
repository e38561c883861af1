"""Schedules: a number that changes with the timestep, such as epsilon or a noise scale.

A schedule is a pure function of the timestep ``t`` (env steps so far): ``schedule.value(t)`` or
``schedule(t)``. It keeps no state, so an exploration object that remembers its last ``t`` can
recompute every value after a restore.

    ConstantSchedule(0.1)                          0.1 forever
    LinearSchedule(10_000, final_p=0.05)           1.0 -> 0.05 over 10k steps, then flat
    PiecewiseSchedule([(0, 1.0), (1000, 0.1)])     straight lines between the endpoints
    ExponentialSchedule(1000, decay_rate=0.1)      x0.1 every 1000 steps

Introduced in notebooks/09_exploration.ipynb.
"""

from __future__ import annotations

import inspect
import itertools
import math
from typing import Any

from course_lib.validation import did_you_mean, is_real_number


def _check_number(owner: str, name: str, value) -> float:
    if not is_real_number(value) or not math.isfinite(value):
        raise TypeError(f"{owner}: {name} must be a finite number, got {value!r}.")
    return float(value)


def _check_positive(owner: str, name: str, value) -> float:
    value = _check_number(owner, name, value)
    if value <= 0:
        raise ValueError(f"{owner}: {name} must be > 0, got {value!r}.")
    return value


class Schedule:
    """Base class: ``value(t)`` is the scheduled number at timestep ``t``; ``schedule(t)`` is the
    same.

    Subclasses implement ``value``. Introduced in notebooks/09_exploration.ipynb.
    """

    def value(self, t: float) -> float:
        raise NotImplementedError(f"{type(self).__name__} must implement value(t).")

    def __call__(self, t: float) -> float:
        return self.value(t)


class ConstantSchedule(Schedule):
    """The same ``value`` at every timestep.

    Introduced in notebooks/09_exploration.ipynb.
    """

    def __init__(self, value: float):
        self._value = _check_number("ConstantSchedule", "value", value)

    def value(self, t: float) -> float:
        return self._value

    def __repr__(self) -> str:
        return f"ConstantSchedule({self._value})"


class LinearSchedule(Schedule):
    """From ``initial_p`` at t=0 to ``final_p`` at ``t = schedule_timesteps`` in a straight line,
    then flat.

    ``value(t) = initial_p + min(t / schedule_timesteps, 1) * (final_p - initial_p)``; e.g. epsilon
    annealed from 1.0 to 0.05 over the first 10,000 steps.
    Introduced in notebooks/09_exploration.ipynb.
    """

    def __init__(self, schedule_timesteps: int, final_p: float, initial_p: float = 1.0):
        self.schedule_timesteps = _check_positive(
            "LinearSchedule", "schedule_timesteps", schedule_timesteps
        )
        self.final_p = _check_number("LinearSchedule", "final_p", final_p)
        self.initial_p = _check_number("LinearSchedule", "initial_p", initial_p)

    def value(self, t: float) -> float:
        fraction = min(max(t, 0) / self.schedule_timesteps, 1.0)
        if fraction == 1.0:  # exactly final_p, not final_p plus rounding error
            return self.final_p
        return self.initial_p + fraction * (self.final_p - self.initial_p)

    def __repr__(self) -> str:
        return (
            f"LinearSchedule(schedule_timesteps={self.schedule_timesteps:g}"
            f", final_p={self.final_p}, initial_p={self.initial_p})"
        )


class PiecewiseSchedule(Schedule):
    """Straight lines between ``endpoints`` ``[(t0, v0), (t1, v1), ...]`` (t strictly increasing).

    Outside ``[t0, t_last]`` the value is ``outside_value``; if that is None, asking for such a t is
    an error (so a schedule that ran out is noticed). Introduced in notebooks/09_exploration.ipynb.
    """

    def __init__(self, endpoints: list[tuple[float, float]], outside_value: float | None = None):
        try:
            pairs = [(float(t), float(v)) for t, v in endpoints]
        except (TypeError, ValueError):
            raise TypeError(
                "PiecewiseSchedule: endpoints must be a list "
                f"of (timestep, value) pairs, got {endpoints!r}."
            ) from None
        if not pairs:
            raise ValueError(
                "PiecewiseSchedule: endpoints is empty; give at least one (timestep, value) pair."
            )
        for (t_a, _), (t_b, _) in itertools.pairwise(pairs):
            if t_b <= t_a:
                raise ValueError(
                    "PiecewiseSchedule: endpoint timesteps must increase, "
                    f"but {t_b:g} follows {t_a:g} in {endpoints!r}."
                )
        self.endpoints = pairs
        self.outside_value = (
            None
            if outside_value is None
            else _check_number("PiecewiseSchedule", "outside_value", outside_value)
        )

    def value(self, t: float) -> float:
        for (t_a, v_a), (t_b, v_b) in itertools.pairwise(self.endpoints):
            if t_a <= t <= t_b:
                return v_a + (t - t_a) / (t_b - t_a) * (v_b - v_a)
        if t == self.endpoints[0][0]:  # a single endpoint defines one point
            return self.endpoints[0][1]
        if self.outside_value is None:
            first, last = self.endpoints[0][0], self.endpoints[-1][0]
            raise ValueError(
                f"PiecewiseSchedule: timestep {t:g} is outside the endpoints [{first:g}, {last:g}] "
                "and no outside_value was given. Add an endpoint "
                "that covers it or pass outside_value=..."
            )
        return self.outside_value

    def __repr__(self) -> str:
        return f"PiecewiseSchedule({self.endpoints}, outside_value={self.outside_value})"


class ExponentialSchedule(Schedule):
    """Exponential decay: ``initial_p * decay_rate ** (t / schedule_timesteps)``.

    With ``decay_rate=0.1`` the value shrinks tenfold every ``schedule_timesteps`` steps, and keeps
    shrinking after that. Introduced in notebooks/09_exploration.ipynb.
    """

    def __init__(self, schedule_timesteps: int, initial_p: float = 1.0, decay_rate: float = 0.1):
        self.schedule_timesteps = _check_positive(
            "ExponentialSchedule", "schedule_timesteps", schedule_timesteps
        )
        self.initial_p = _check_number("ExponentialSchedule", "initial_p", initial_p)
        self.decay_rate = _check_positive("ExponentialSchedule", "decay_rate", decay_rate)

    def value(self, t: float) -> float:
        return self.initial_p * self.decay_rate ** (t / self.schedule_timesteps)

    def __repr__(self) -> str:
        return (
            f"ExponentialSchedule(schedule_timesteps={self.schedule_timesteps:g}"
            f", initial_p={self.initial_p}, decay_rate={self.decay_rate})"
        )


SCHEDULES: dict[str, type[Schedule]] = {
    cls.__name__: cls
    for cls in (ConstantSchedule, LinearSchedule, PiecewiseSchedule, ExponentialSchedule)
}


def make_schedule(spec: Any) -> Schedule:
    """A Schedule from a config value: a number (constant), a Schedule, or a dict with ``"type"``.

    ``make_schedule({"type": "LinearSchedule", "schedule_timesteps": 1000, "final_p": 0.1})``: the
    other keys are the class's constructor arguments. Introduced in notebooks/09_exploration.ipynb.
    """
    if isinstance(spec, Schedule):
        return spec
    if is_real_number(spec):
        return ConstantSchedule(spec)
    if not isinstance(spec, dict):
        raise TypeError(
            f"A schedule is a number, a Schedule or a dict with a 'type' key, got {spec!r}."
        )
    kwargs = dict(spec)
    name = kwargs.pop("type", None)
    if name not in SCHEDULES:
        hint = did_you_mean(name, SCHEDULES)
        raise ValueError(
            f"Unknown schedule type {name!r}.{hint} Known types: {', '.join(SCHEDULES)}."
        )
    cls = SCHEDULES[name]
    try:
        inspect.signature(cls).bind(**kwargs)
    except TypeError as err:
        raise TypeError(
            f"make_schedule({spec!r}): {err}. {name} takes {inspect.signature(cls)}."
        ) from None
    return cls(**kwargs)
