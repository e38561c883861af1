"""Preprocessors: turn any supported observation into one flat float32 vector a network can read.

- ``Discrete(n)`` -> one-hot of length ``n``: ``Discrete(3)``, value 1 -> ``[0, 1, 0]``.
- ``MultiDiscrete([3, 4])`` -> the one-hots side by side: value ``[1, 0]`` ->
  ``[0, 1, 0, 1, 0, 0, 0]``.
- ``Box`` (and ``MultiBinary``) -> flattened to 1-D float32. Image-shaped Boxes are flattened too:
  this course has no convolutional networks, so pixels go into the fully connected net as a vector.
- ``Tuple`` -> the flat pieces concatenated in order; ``Dict`` -> the same in sorted key order,
  recursively for nested spaces.

The policy preprocesses observations before they reach the model, so models always see
``(B, size)`` float tensors. To preprocess differently, wrap the environment (notebook 03).

Introduced in notebooks/06_models.ipynb.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces


class Preprocessor:
    """Base class: maps observations of ``space`` to float32 vectors of shape ``(size,)``.

    Subclasses implement ``transform`` (one observation) or ``transform_batch`` (many); each
    defaults to the other. ``observation_space`` is the flat ``Box`` the outputs live in.

    Introduced in notebooks/06_models.ipynb.
    """

    def __init__(self, space: spaces.Space):
        self.space = space
        low, high = self._bounds()
        self._low = np.asarray(low, dtype=np.float32).reshape(-1)
        self._high = np.asarray(high, dtype=np.float32).reshape(-1)
        self.size = int(self._low.size)
        self.shape = (self.size,)

    def _bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lowest and highest value of each output entry; their length defines ``size``."""
        raise NotImplementedError

    @property
    def observation_space(self) -> spaces.Box:
        """The flat Box of shape ``(size,)`` that transformed observations belong to."""
        return spaces.Box(self._low, self._high, shape=self.shape, dtype=np.float32)

    def transform(self, observation) -> np.ndarray:
        """One observation -> float32 array of shape ``(size,)``."""
        return self.transform_batch([observation])[0]

    def transform_batch(self, observations) -> np.ndarray:
        """A list (or array) of B observations -> float32 array of shape ``(B, size)``."""
        rows = [self.transform(observation) for observation in observations]
        return np.stack(rows) if rows else np.zeros((0, self.size), dtype=np.float32)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.space} -> shape {self.shape})"


class OneHotPreprocessor(Preprocessor):
    """``Discrete(n)`` -> one-hot vectors of shape ``(n,)``.

    Introduced in notebooks/06_models.ipynb.
    """

    def _bounds(self):
        return np.zeros(self.space.n), np.ones(self.space.n)

    def transform_batch(self, observations) -> np.ndarray:
        values = np.asarray(observations).reshape(-1)
        index = values.astype(np.int64) - int(self.space.start)
        bad = (index < 0) | (index >= self.size) | (index != values - int(self.space.start))
        if bad.any():
            raise ValueError(
                f"Observation {values[bad][0].item()!r} is not a valid value of {self.space}."
            )
        out = np.zeros((len(index), self.size), dtype=np.float32)
        out[np.arange(len(index)), index] = 1.0
        return out


class MultiDiscretePreprocessor(Preprocessor):
    """``MultiDiscrete(nvec)`` -> the one-hot of each component, concatenated: shape
    ``(sum(nvec),)``.

    Introduced in notebooks/06_models.ipynb.
    """

    def __init__(self, space: spaces.MultiDiscrete):
        self._nvec = np.asarray(space.nvec).reshape(-1)
        self._start = np.asarray(space.start).reshape(-1)
        self._offsets = np.concatenate([[0], np.cumsum(self._nvec)[:-1]])
        super().__init__(space)

    def _bounds(self):
        total = int(self._nvec.sum())
        return np.zeros(total), np.ones(total)

    def transform_batch(self, observations) -> np.ndarray:
        values = np.asarray(observations).reshape(-1, len(self._nvec))
        index = values.astype(np.int64) - self._start
        bad = (index < 0) | (index >= self._nvec)
        if bad.any():
            row = int(np.flatnonzero(bad.any(axis=1))[0])
            raise ValueError(
                f"Observation {values[row].tolist()} is not a valid value of {self.space}."
            )
        out = np.zeros((len(values), self.size), dtype=np.float32)
        out[np.arange(len(values))[:, None], self._offsets + index] = 1.0
        return out


class FlattenPreprocessor(Preprocessor):
    """``Box`` of any shape (images included) or ``MultiBinary`` -> flattened float32 of shape
    ``(prod(shape),)``.

    Introduced in notebooks/06_models.ipynb.
    """

    def _bounds(self):
        if isinstance(self.space, spaces.MultiBinary):
            return np.zeros(self.space.shape), np.ones(self.space.shape)
        return self.space.low, self.space.high

    def transform_batch(self, observations) -> np.ndarray:
        values = np.asarray(observations, dtype=np.float32)
        if values.shape[1:] != tuple(self.space.shape):
            raise ValueError(
                f"Expected observations of shape {self.space.shape} for {self.space}, "
                f"got a batch of shape {values.shape[1:]} each."
            )
        return values.reshape(len(values), self.size)

    def transform(self, observation) -> np.ndarray:
        return self.transform_batch(np.asarray(observation, dtype=np.float32)[None])[0]


class NoPreprocessor(FlattenPreprocessor):
    """1-D ``Box``: observations pass through unchanged, as float32 of shape ``(n,)``.

    Introduced in notebooks/06_models.ipynb.
    """


class TupleFlatteningPreprocessor(Preprocessor):
    """``Tuple`` -> the flat vectors of its components, concatenated in order.

    Introduced in notebooks/06_models.ipynb.
    """

    def __init__(self, space: spaces.Tuple):
        self.preprocessors = [get_preprocessor(child) for child in space.spaces]
        super().__init__(space)

    def _bounds(self):
        return (
            np.concatenate([p._low for p in self.preprocessors]),
            np.concatenate([p._high for p in self.preprocessors]),
        )

    def transform_batch(self, observations) -> np.ndarray:
        observations = list(observations)
        parts = [
            p.transform_batch([obs[i] for obs in observations])
            for i, p in enumerate(self.preprocessors)
        ]
        return np.concatenate(parts, axis=1).astype(np.float32, copy=False)


class DictFlatteningPreprocessor(Preprocessor):
    """``Dict`` -> the flat vectors of its values, concatenated in sorted key order (recursively).

    Introduced in notebooks/06_models.ipynb.
    """

    def __init__(self, space: spaces.Dict):
        self.keys = sorted(space.spaces)
        self.preprocessors = {key: get_preprocessor(space.spaces[key]) for key in self.keys}
        super().__init__(space)

    def _bounds(self):
        return (
            np.concatenate([self.preprocessors[k]._low for k in self.keys]),
            np.concatenate([self.preprocessors[k]._high for k in self.keys]),
        )

    def transform_batch(self, observations) -> np.ndarray:
        observations = list(observations)
        for obs in observations:
            missing = [key for key in self.keys if key not in obs]
            if missing:
                raise ValueError(f"Observation is missing keys {missing} of {self.space}.")
        parts = [
            self.preprocessors[key].transform_batch([obs[key] for obs in observations])
            for key in self.keys
        ]
        return np.concatenate(parts, axis=1).astype(np.float32, copy=False)


_PREPROCESSOR_FOR_SPACE = {
    spaces.Discrete: OneHotPreprocessor,
    spaces.MultiDiscrete: MultiDiscretePreprocessor,
    spaces.MultiBinary: FlattenPreprocessor,
    spaces.Tuple: TupleFlatteningPreprocessor,
    spaces.Dict: DictFlatteningPreprocessor,
}


def get_preprocessor(space: spaces.Space) -> Preprocessor:
    """The built-in preprocessor for an observation space (see the module docstring for the rules).

    Raises TypeError for spaces the course does not flatten (e.g. ``Text``, ``Graph``,
    ``Sequence``).

    Introduced in notebooks/06_models.ipynb.
    """
    if isinstance(space, spaces.Box):
        return NoPreprocessor(space) if len(space.shape) == 1 else FlattenPreprocessor(space)
    for space_type, preprocessor_class in _PREPROCESSOR_FOR_SPACE.items():
        if isinstance(space, space_type):
            return preprocessor_class(space)
    raise TypeError(
        f"course_lib cannot preprocess observations of {space!r} ({type(space).__name__}). "
        "Supported spaces: Box, Discrete, MultiDiscrete, MultiBinary, and Tuple/Dict of these. "
        "Wrap the environment in a gymnasium.ObservationWrapper "
        "that maps observations into one of them."
    )
