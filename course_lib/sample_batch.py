"""SampleBatch and MultiAgentBatch: the tables of experience that flow from workers to the learner.

A ``SampleBatch`` is a dict of numpy columns that all have one row per timestep. Rollout workers
produce them, ``concat_samples`` glues them together, postprocessing adds columns (advantages,
value targets) and the policy's loss reads them. Multi-agent training keeps one ``SampleBatch``
per policy inside a ``MultiAgentBatch``.

Introduced in notebooks/05_sample_batches.ipynb.
"""

from __future__ import annotations

import copy as _copy
import sys
from collections.abc import Iterable, Iterator, Mapping

import numpy as np

DEFAULT_POLICY_ID = "default_policy"
# The two ways to count experience, MultiAgentBatch's env_steps() and agent_steps():
# config["multiagent"]["count_steps_by"] names one (lesson 20).
STEP_COUNTS = ("env_steps", "agent_steps")

_HEAD_REPR_LIMIT = 60


def summarize(array) -> str:
    """One-line summary of an array, as in the 2021 RLlib tutorial's summarized SampleBatch print.

    Numeric and bool arrays show ``min``/``max``/``mean`` as floats rounded to 3 decimals;
    object (and string) arrays show ``head=`` the first element; empty arrays show no statistics.

    >>> summarize(np.array([0, 1, 1, 0]))
    'np.ndarray((4,), dtype=int64, min=0.0, max=1.0, mean=0.5)'

    Introduced in notebooks/05_sample_batches.ipynb.
    """
    array = np.asarray(array)
    prefix = f"np.ndarray({array.shape}, dtype={array.dtype}"
    if array.size == 0:
        return prefix + ")"
    if np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_:
        stats = (float(array.min()), float(array.max()), float(array.mean()))
        low, high, mean = (round(value, 3) for value in stats)
        return f"{prefix}, min={low}, max={high}, mean={mean})"
    head = repr(array.flat[0])
    if len(head) > _HEAD_REPR_LIMIT:
        head = head[: _HEAD_REPR_LIMIT - 3] + "..."
    return f"{prefix}, head={head})"


def _to_column(name, value) -> np.ndarray:
    """Turns ``value`` into a numpy column with at least one dimension."""
    if not isinstance(name, str):
        raise TypeError(
            f"SampleBatch column names must be strings, got {name!r} ({type(name).__name__})."
        )
    if isinstance(value, np.ndarray):
        column = value
    else:
        try:
            column = np.asarray(value)
        except ValueError:
            # Ragged rows (e.g. info dicts, variable-length lists) cannot form a rectangular array;
            # keep one Python object per row so that the column still has one row per timestep.
            column = np.empty(len(value), dtype=object)
            column[:] = list(value)
    if column.ndim == 0:
        raise ValueError(
            f"Column {name!r} is a scalar ({column.item()!r}), but a SampleBatch column needs one "
            "row per timestep. Store a per-timestep list or array, e.g. [value] * batch.count."
        )
    return column


class SampleBatch(dict):
    """A dict of equal-length numpy columns, one row per timestep.

    ``batch["obs"]`` has shape ``(count, *obs_shape)``, ``batch["rewards"]`` shape ``(count,)``.
    Build one from a dict or keyword arguments; lists become numpy arrays and every column is
    checked to have ``count`` rows. ``len(batch)`` is the number of rows (not of columns).

    Introduced in notebooks/05_sample_batches.ipynb.
    """

    OBS = "obs"
    NEXT_OBS = "new_obs"
    ACTIONS = "actions"
    REWARDS = "rewards"
    TERMINATEDS = "terminateds"
    TRUNCATEDS = "truncateds"
    INFOS = "infos"
    EPS_ID = "eps_id"
    T = "t"
    AGENT_INDEX = "agent_index"
    UNROLL_ID = "unroll_id"
    ACTION_LOGP = "action_logp"
    ACTION_DIST_INPUTS = "action_dist_inputs"
    VF_PREDS = "vf_preds"
    ADVANTAGES = "advantages"
    VALUE_TARGETS = "value_targets"

    def __init__(self, data: Mapping | None = None, /, **columns):
        super().__init__()
        if data is not None and not isinstance(data, Mapping):
            raise TypeError(
                "SampleBatch takes a dict of equal-length columns, e.g. SampleBatch({'obs': "
                f"obs, 'rewards': rewards}}), got {type(data).__name__} {data!r:.60}."
            )
        merged = dict({} if data is None else data, **columns)
        converted = {name: _to_column(name, value) for name, value in merged.items()}
        if converted:
            reference = next(iter(converted))
            for name, column in converted.items():
                self._check_length(name, column, reference, len(converted[reference]))
        dict.update(self, converted)

    @classmethod
    def _from_aligned_columns(cls, columns: dict) -> SampleBatch:
        # Slices, permutations and concatenations of a valid batch are valid by construction;
        # skipping the checks keeps split_by_episode fast on thousands of short episodes.
        batch = cls.__new__(cls)
        dict.update(batch, columns)
        return batch

    @staticmethod
    def _check_length(name, column, reference, expected) -> None:
        if len(column) != expected:
            raise ValueError(
                f"Column {name!r} has {len(column)} rows but {reference!r} has {expected}; "
                f"every column of a SampleBatch must have one row per timestep."
            )

    def __setitem__(self, name, value) -> None:
        column = _to_column(name, value)
        reference = next((key for key in self if key != name), None)
        if reference is not None:
            self._check_length(name, column, reference, len(dict.__getitem__(self, reference)))
        dict.__setitem__(self, name, column)

    def update(self, other=(), /, **columns) -> None:
        """Sets several columns, each validated as in ``batch[name] = value``."""
        for name, value in dict(other, **columns).items():
            self[name] = value

    def setdefault(self, name, default=None):
        if name not in self:
            self[name] = default
        return dict.__getitem__(self, name)

    def __ior__(self, other):
        self.update(other)
        return self

    def __getitem__(self, key):
        if isinstance(key, slice):
            return SampleBatch._from_aligned_columns(
                {name: column[key] for name, column in self.items()}
            )
        if not isinstance(key, str):
            raise TypeError(
                f"Index a SampleBatch with a column name (batch['obs']) or a slice (batch[10:20]), "
                f"not {type(key).__name__}. For one row as a batch use batch[i:i + 1]."
            )
        return dict.__getitem__(self, key)

    @property
    def count(self) -> int:
        """Number of rows (timesteps); 0 for a batch without columns."""
        for column in self.values():
            return len(column)
        return 0

    def __len__(self) -> int:
        return self.count

    @property
    def columns(self) -> list[str]:
        """Column names in insertion order (``len(batch.columns)`` counts columns)."""
        return list(self.keys())

    def __reduce__(self):
        # Pickle as "call SampleBatch(columns)": plain numpy arrays, which Ray's object store
        # serializes without copying, and the constructor re-checks the invariant on load.
        return (type(self), (dict(self),))

    def __repr__(self) -> str:
        rows = "row" if self.count == 1 else "rows"
        if not self.columns:
            return f"SampleBatch({self.count} {rows}) {{}}"
        lines = [f"  {name!r}: {summarize(self[name])}," for name in sorted(self)]
        return f"SampleBatch({self.count} {rows}) {{\n" + "\n".join(lines) + "\n}"

    __str__ = __repr__

    @staticmethod
    def concat_samples(
        batches: Iterable[SampleBatch | MultiAgentBatch],
    ) -> SampleBatch | MultiAgentBatch:
        """Concatenates batches along rows: one ``np.concatenate`` per column.

        Every batch must have the same columns (batches without any column are skipped). Given
        ``MultiAgentBatch`` objects, concatenates per policy and sums ``env_steps``.

        Introduced in notebooks/05_sample_batches.ipynb.
        """
        batches = list(batches)
        if not batches:
            raise ValueError("concat_samples() got an empty list; pass at least one batch.")
        if all(isinstance(batch, MultiAgentBatch) for batch in batches):
            return MultiAgentBatch.concat_samples(batches)
        for index, batch in enumerate(batches):
            if not isinstance(batch, SampleBatch):
                raise TypeError(
                    f"concat_samples() item {index} is a {type(batch).__name__}; pass only "
                    "SampleBatch or only MultiAgentBatch objects (SampleBatch.as_multi_agent() "
                    "converts a single-agent batch)."
                )
        indexed = [(index, batch) for index, batch in enumerate(batches) if len(batch.columns) > 0]
        if not indexed:
            return SampleBatch()
        first_index, first = indexed[0]
        names = first.columns
        expected = set(names)
        for index, batch in indexed[1:]:
            if set(batch.keys()) != expected:
                missing = sorted(expected - set(batch.keys()))
                extra = sorted(set(batch.keys()) - expected)
                raise ValueError(
                    f"Cannot concatenate: batch {index} is missing columns {missing} and has extra "
                    f"columns {extra} compared with batch {first_index}. Every batch must have the "
                    "same columns (did only some batches go through postprocessing?)."
                )
        non_empty = [batch for _, batch in indexed]
        concatenated = {}
        for name in names:
            try:
                concatenated[name] = np.concatenate(
                    [dict.__getitem__(batch, name) for batch in non_empty]
                )
            except ValueError as error:
                shapes = sorted({dict.__getitem__(batch, name).shape[1:] for batch in non_empty})
                raise ValueError(
                    f"Cannot concatenate column {name!r}: its rows have different shapes {shapes} "
                    "across batches."
                ) from error
        return SampleBatch._from_aligned_columns(concatenated)

    def concat(self, other: SampleBatch) -> SampleBatch:
        """Returns a new batch with the rows of ``self`` followed by those of ``other``."""
        return SampleBatch.concat_samples([self, other])

    def slice(self, start: int, end: int) -> SampleBatch:
        """Rows ``start:end`` as a new SampleBatch whose columns are views (no copy)."""
        return self[start:end]

    def copy(self, deep: bool = True) -> SampleBatch:
        """A copy; ``deep=True`` also copies the arrays (and the objects in object columns)."""
        if not deep:
            return SampleBatch(self)
        return SampleBatch(
            {
                name: _copy.deepcopy(column) if column.dtype == object else column.copy()
                for name, column in self.items()
            }
        )

    def size_bytes(self) -> int:
        """Memory held by the columns; estimated for object columns (pointers + ``getsizeof``)."""
        total = 0
        for column in self.values():
            total += column.nbytes
            if column.dtype == object:
                total += sum(sys.getsizeof(item) for item in column.flat)
        return total

    def shuffle(self, seed: int | None = None, *, rng=None) -> SampleBatch:
        """A new batch with the rows in random order, the same permutation for every column.

        The same ``seed`` gives the same order; ``seed=None`` draws fresh randomness. Or pass
        ``rng``, a generator to draw the order from: ``np.random.default_rng(0)``, or the
        module ``np.random`` itself for the global generator that a trainer seeds and saves in
        its checkpoints (``TrainOneStep`` does that, so a resumed run shuffles the same way).
        """
        if rng is not None and seed is not None:
            raise ValueError(
                "shuffle() takes a seed or an rng, not both: the rng alone decides the order."
            )
        generator = rng if rng is not None else np.random.default_rng(seed)
        permutation = generator.permutation(self.count)
        return SampleBatch._from_aligned_columns(
            {name: column[permutation] for name, column in self.items()}
        )

    def rows(self) -> Iterator[dict]:
        """Yields one ``{column: value}`` dict per row; slow, meant for reading and debugging."""
        for index in range(self.count):
            yield {name: column[index] for name, column in self.items()}

    def minibatches(
        self,
        size: int,
        shuffle: bool = False,
        seed: int | None = None,
        *,
        rng=None,
        drop_last: bool = False,
    ) -> Iterator[SampleBatch]:
        """Yields batches of ``size`` rows for SGD, in order or (``shuffle=True``) shuffled first.

        The last one is smaller when ``size`` does not divide ``count``; ``drop_last=True`` leaves
        it out, so every minibatch weighs the same in an SGD epoch. ``seed`` and ``rng`` choose
        the shuffle's randomness, as in ``shuffle()``.
        """
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0:
            raise ValueError(f"Minibatch size must be a positive integer, got {size!r}.")
        source = self.shuffle(seed, rng=rng) if shuffle else self
        last_start = source.count - size if drop_last else source.count - 1
        for start in range(0, last_start + 1, size):
            yield source[start : start + size]

    def timeslices(self, k: int) -> list[SampleBatch]:
        """Consecutive chunks of ``k`` rows in time order (the last may be shorter), as a list."""
        return list(self.minibatches(k))

    def split_by_episode(self) -> list[SampleBatch]:
        """Splits into one batch per episode piece, in order; each piece's columns are views.

        Uses ``eps_id`` when present, cutting wherever it changes (after concatenation the same id
        can come back later, which starts a new piece). Otherwise cuts after every row whose
        ``terminateds`` or ``truncateds`` flag is set.
        """
        if self.count == 0:
            return []
        if SampleBatch.EPS_ID in self:
            eps_id = self[SampleBatch.EPS_ID]
            cuts = np.flatnonzero(eps_id[1:] != eps_id[:-1]) + 1
        elif SampleBatch.TERMINATEDS in self or SampleBatch.TRUNCATEDS in self:
            ended = np.zeros(self.count, dtype=bool)
            for flag in (SampleBatch.TERMINATEDS, SampleBatch.TRUNCATEDS):
                if flag in self:
                    ended |= self[flag].astype(bool)
            cuts = np.flatnonzero(ended[:-1]) + 1
        else:
            raise ValueError(
                f"split_by_episode() needs an {SampleBatch.EPS_ID!r} column, or "
                f"{SampleBatch.TERMINATEDS!r}/{SampleBatch.TRUNCATEDS!r} columns, to find where "
                f"episodes end; this batch has {self.columns}."
            )
        bounds = [0, *cuts.tolist(), self.count]
        return [self[start:end] for start, end in zip(bounds[:-1], bounds[1:], strict=True)]

    def as_multi_agent(self) -> MultiAgentBatch:
        """Wraps this batch as the only policy batch (``"default_policy"``) of a MultiAgentBatch."""
        return MultiAgentBatch({DEFAULT_POLICY_ID: self}, self.count)


concat_samples = SampleBatch.concat_samples


class MultiAgentBatch:
    """One SampleBatch per policy, plus how many environment steps produced them.

    ``env_steps()`` counts environment steps; ``agent_steps()`` counts rows over all policies
    (several agents can act in one env step, and a policy can serve several agents).

    Introduced in notebooks/05_sample_batches.ipynb.
    """

    def __init__(self, policy_batches: Mapping[str, SampleBatch], env_steps: int):
        if not isinstance(policy_batches, Mapping):
            raise TypeError(
                "policy_batches must be a dict mapping policy id to SampleBatch, "
                f"got {type(policy_batches).__name__}."
            )
        for policy_id, batch in policy_batches.items():
            if not isinstance(policy_id, str):
                raise TypeError(
                    f"Policy ids must be strings, got {policy_id!r} ({type(policy_id).__name__})."
                )
            if not isinstance(batch, SampleBatch):
                raise TypeError(
                    f"policy_batches[{policy_id!r}] is a {type(batch).__name__}, expected a "
                    "SampleBatch (wrap a dict of columns with SampleBatch(...))."
                )
        if (
            isinstance(env_steps, bool)
            or not isinstance(env_steps, (int, np.integer))
            or env_steps < 0
        ):
            raise ValueError(f"env_steps must be a non-negative integer, got {env_steps!r}.")
        self.policy_batches: dict[str, SampleBatch] = dict(policy_batches)
        self._env_steps = int(env_steps)

    def env_steps(self) -> int:
        """Number of environment steps that produced this batch."""
        return self._env_steps

    def agent_steps(self) -> int:
        """Number of rows summed over all policy batches."""
        return sum(batch.count for batch in self.policy_batches.values())

    @property
    def count(self) -> int:
        """Same as ``env_steps()``: code that reads ``batch.count`` works for both batch types."""
        return self._env_steps

    def copy(self) -> MultiAgentBatch:
        """A deep copy of every policy batch."""
        return MultiAgentBatch(
            {pid: batch.copy() for pid, batch in self.policy_batches.items()}, self._env_steps
        )

    def size_bytes(self) -> int:
        """Memory held by all policy batches (see ``SampleBatch.size_bytes``)."""
        return sum(batch.size_bytes() for batch in self.policy_batches.values())

    @staticmethod
    def concat_samples(batches: Iterable[MultiAgentBatch]) -> MultiAgentBatch:
        """Concatenates per policy (a policy may be absent from some batches); sums env steps."""
        batches = list(batches)
        if not batches:
            raise ValueError("concat_samples() got an empty list; pass at least one batch.")
        for index, batch in enumerate(batches):
            if not isinstance(batch, MultiAgentBatch):
                raise TypeError(
                    f"MultiAgentBatch.concat_samples() item {index} is a {type(batch).__name__}; "
                    f"convert SampleBatch objects with .as_multi_agent() first."
                )
        policy_ids = list(dict.fromkeys(pid for batch in batches for pid in batch.policy_batches))
        merged = {
            pid: SampleBatch.concat_samples(
                [b.policy_batches[pid] for b in batches if pid in b.policy_batches]
            )
            for pid in policy_ids
        }
        return MultiAgentBatch(merged, sum(batch.env_steps() for batch in batches))

    def __repr__(self) -> str:
        header = f"MultiAgentBatch({self._env_steps} env steps, {self.agent_steps()} agent steps)"
        if not self.policy_batches:
            return header + " {}"
        parts = [
            f"  {pid!r}: " + repr(batch).replace("\n", "\n  ") + ","
            for pid, batch in sorted(self.policy_batches.items())
        ]
        return header + " {\n" + "\n".join(parts) + "\n}"
