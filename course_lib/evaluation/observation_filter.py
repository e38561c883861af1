"""Observation filters: normalize observations with running statistics shared by all workers.

``MeanStdFilter`` keeps a running mean and variance per observation dimension and returns
``clip((obs - mean) / std)``. Each worker updates its own copy while sampling; the trainer gathers
the new statistics from every worker, merges them and sends the result back, so all workers (and
the policy they train) see observations on the same scale.
Introduced in notebooks/08_rollout_workers.ipynb.
"""

from __future__ import annotations

import numpy as np


class RunningStat:
    """Count, mean and sum of squared deviations of a stream of arrays (Welford's algorithm).

    Introduced in notebooks/08_rollout_workers.ipynb.
    """

    def __init__(self, shape):
        self.count = 0
        self.mean = np.zeros(shape, np.float64)
        self.m2 = np.zeros(shape, np.float64)

    def push_batch(self, rows) -> None:
        """Add many arrays at once, shape ``(B, *shape)``: one merge instead of B pushes."""
        rows = np.asarray(rows, np.float64)
        if len(rows) == 0:
            return
        batch = RunningStat(self.mean.shape)
        batch.count, batch.mean = len(rows), rows.mean(axis=0)
        batch.m2 = ((rows - batch.mean) ** 2).sum(axis=0)
        self.merge(batch)

    def merge(self, other: RunningStat) -> None:
        """Combine another stream's statistics into this one (Chan et al.'s parallel formula)."""
        if other.count == 0:
            return
        total = self.count + other.count
        delta = other.mean - self.mean
        self.m2 += other.m2 + delta**2 * self.count * other.count / total
        self.mean += delta * other.count / total
        self.count = total

    @property
    def std(self) -> np.ndarray:
        var = self.m2 / (self.count - 1) if self.count > 1 else np.ones_like(self.m2)
        return np.sqrt(np.maximum(var, 1e-8))

    def copy(self) -> RunningStat:
        new = RunningStat(self.mean.shape)
        new.count, new.mean, new.m2 = self.count, self.mean.copy(), self.m2.copy()
        return new


class NoFilter:
    """Leaves observations as they are. Introduced in notebooks/08_rollout_workers.ipynb."""

    def __call__(self, obs, update: bool = True):
        return obs

    def get_state(self) -> dict:
        return {}

    def set_state(self, state: dict) -> None:
        pass

    def flush_delta(self):
        return None

    def apply_delta(self, delta) -> None:
        pass


class MeanStdFilter:
    """``clip((obs - running_mean) / running_std, -clip, clip)``, float32, with a delta to sync.

    ``stats`` is what the filter normalizes with; ``delta`` holds what this worker saw since
    the last sync. Introduced in notebooks/08_rollout_workers.ipynb.
    """

    def __init__(self, shape, clip: float = 10.0):
        self.shape = tuple(shape)
        self.clip = clip
        self.stats = RunningStat(self.shape)
        self.delta = RunningStat(self.shape)

    def __call__(self, obs, update: bool = True) -> np.ndarray:
        obs = np.asarray(obs, np.float64)
        if obs.shape[obs.ndim - len(self.shape) :] != self.shape:
            raise ValueError(
                f"MeanStdFilter for shape {self.shape} got an observation of shape {obs.shape}."
            )
        if update:
            rows = obs.reshape(-1, *self.shape)
            self.stats.push_batch(rows)
            self.delta.push_batch(rows)
        normalized = (obs - self.stats.mean) / self.stats.std
        return np.clip(normalized, -self.clip, self.clip).astype(np.float32)

    def flush_delta(self) -> RunningStat:
        """The statistics gathered since the last call, and start a new delta."""
        delta, self.delta = self.delta, RunningStat(self.shape)
        return delta

    def apply_delta(self, delta: RunningStat) -> None:
        self.stats.merge(delta)

    def get_state(self) -> dict:
        return {
            "count": self.stats.count,
            "mean": self.stats.mean.copy(),
            "m2": self.stats.m2.copy(),
        }

    def set_state(self, state: dict) -> None:
        self.stats = RunningStat(self.shape)
        self.stats.count, self.stats.mean, self.stats.m2 = (
            state["count"],
            np.array(state["mean"]),
            np.array(state["m2"]),
        )
        self.delta = RunningStat(self.shape)


def make_filter(name: str, observation_space):
    """``"NoFilter"`` or ``"MeanStdFilter"`` (Box observations only) for one observation space.

    Introduced in notebooks/08_rollout_workers.ipynb.
    """
    if name == "NoFilter":
        return NoFilter()
    if name == "MeanStdFilter":
        shape = getattr(observation_space, "shape", None)
        if type(observation_space).__name__ != "Box":
            raise ValueError(
                '"observation_filter": "MeanStdFilter" needs a Box observation space; this env '
                f'has {observation_space}. Use "NoFilter".'
            )
        return MeanStdFilter(shape)
    raise ValueError(
        f'Unknown "observation_filter": {name!r}; choose "NoFilter" or "MeanStdFilter".'
    )
