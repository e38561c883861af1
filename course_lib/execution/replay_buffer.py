"""Replay buffers: keep the last ``capacity`` rows of experience and sample minibatches from them.

``ReplayBuffer`` samples rows uniformly (with replacement). ``PrioritizedReplayBuffer`` samples
row ``i`` with probability ``p_i / sum_j p_j``, where ``p_i = (|td_error_i| + eps) ** alpha``,
and corrects the bias this adds with importance weights ``(N * P(i)) ** -beta``, divided by their
largest possible value so that every weight is at most 1.

Rows live in one preallocated numpy array per column, written round the ring: adding is one
array assignment per column, sampling one fancy-index per column.
Introduced in notebooks/11_execution_plans.ipynb.
"""

from __future__ import annotations

import numpy as np

from course_lib.execution.segment_tree import MinSegmentTree, SumSegmentTree
from course_lib.sample_batch import SampleBatch
from course_lib.validation import is_whole_number, require_whole_number


class ReplayBuffer:
    """The last ``capacity`` rows added; ``sample(n)`` draws ``n`` of them uniformly, with
    replacement.

    Every added SampleBatch must have the same columns.
    Introduced in notebooks/11_execution_plans.ipynb.
    """

    def __init__(self, capacity: int, *, seed: int | None = None):
        if not is_whole_number(capacity) or capacity < 1:
            raise ValueError(
                "capacity is the number of rows the buffer keeps: a whole number >= 1, "
                f"got {capacity!r}."
            )
        self.capacity = capacity
        self._columns: dict[str, np.ndarray] = {}
        self._next_index = 0  # the slot the next row goes to
        self._size = 0
        self._added_count = 0
        self._rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self._size

    def add(self, batch: SampleBatch) -> np.ndarray:
        """Store the rows of ``batch`` (oldest rows are overwritten); returns their slots, shape
        ``(count,)``."""
        if not isinstance(batch, SampleBatch):
            raise TypeError(
                f"{type(self).__name__}.add() takes a SampleBatch, got a {type(batch).__name__}."
            )
        self._added_count += batch.count
        if batch.count > self.capacity:  # only the newest rows would survive anyway
            batch = batch[batch.count - self.capacity :]
        if batch.count == 0:
            return np.empty(0, dtype=np.int64)
        if not self._columns:
            self._columns = {
                name: np.empty((self.capacity, *column.shape[1:]), dtype=column.dtype)
                for name, column in batch.items()
            }
        elif set(batch.columns) != set(self._columns):
            raise ValueError(
                "This batch's columns differ from those already stored: missing "
                f"{sorted(set(self._columns) - set(batch.columns))}, extra "
                f"{sorted(set(batch.columns) - set(self._columns))}. Every "
                "batch added to one buffer needs the same columns."
            )
        slots = (self._next_index + np.arange(batch.count)) % self.capacity
        for name, column in batch.items():
            stored = self._columns[name]
            if column.shape[1:] != stored.shape[1:]:
                raise ValueError(
                    f"Column {name!r} has rows of shape {column.shape[1:]}, "
                    f"but the buffer stores rows of shape {stored.shape[1:]}."
                )
            stored[slots] = column
        self._next_index = int((self._next_index + batch.count) % self.capacity)
        self._size = min(self._size + batch.count, self.capacity)
        return slots

    def sample(self, num_items: int) -> SampleBatch:
        """``num_items`` rows drawn uniformly with replacement, as a SampleBatch (columns
        ``(num_items, ...)``)."""
        self._check_can_sample(num_items)
        return self._rows(self._rng.integers(0, self._size, num_items))

    def _check_can_sample(self, num_items) -> None:
        if isinstance(num_items, np.integer):  # e.g. a size computed with numpy
            num_items = int(num_items)
        require_whole_number(num_items, "num_items", minimum=1)
        if self._size == 0:
            raise ValueError(
                f"Cannot sample from an empty {type(self).__name__}: add "
                "batches first (Replay(...) waits for learning_starts rows)."
            )

    def _rows(self, indexes: np.ndarray) -> SampleBatch:
        return SampleBatch({name: column[indexes] for name, column in self._columns.items()})

    def stats(self) -> dict:
        """``num_entries`` (rows held), ``added_count`` (rows ever added), ``capacity``,
        ``est_size_bytes``."""
        return {
            "num_entries": self._size,
            "added_count": self._added_count,
            "capacity": self.capacity,
            "est_size_bytes": sum(column.nbytes for column in self._columns.values()),
        }

    def get_state(self) -> dict:
        """Plain data for a checkpoint: the stored rows (in slot order), counters and the sampler's
        RNG state."""
        return {
            "columns": {
                name: column[: self._size].copy() for name, column in self._columns.items()
            },
            "next_index": self._next_index,
            "added_count": self._added_count,
            "rng": self._rng.bit_generator.state,
        }

    def set_state(self, state: dict) -> None:
        columns = state["columns"]
        size = len(next(iter(columns.values()))) if columns else 0
        if size > self.capacity:
            raise ValueError(
                f"The saved buffer holds {size} rows, more than this buffer's "
                f"capacity {self.capacity}; create it with capacity >= {size}."
            )
        self._columns = {}
        for name, saved in columns.items():
            self._columns[name] = np.empty((self.capacity, *saved.shape[1:]), dtype=saved.dtype)
            self._columns[name][:size] = saved
        self._size, self._next_index, self._added_count = (
            size,
            state["next_index"],
            state["added_count"],
        )
        self._rng.bit_generator.state = state["rng"]


class PrioritizedReplayBuffer(ReplayBuffer):
    """Samples rows in proportion to their priority; ``sample`` adds ``weights`` and
    ``batch_indexes`` columns.

    - ``alpha``: how much priorities matter (0: uniform);
    - ``beta``: how much of the sampling bias the weights undo (1: all of it);
    - ``eps``: added to ``|td_error|`` so that no row's priority is 0.

    New rows get the largest priority so far (1.0 at first), so each is likely replayed at least
    once. Introduced in notebooks/11_execution_plans.ipynb.
    """

    def __init__(
        self,
        capacity: int,
        *,
        alpha: float = 0.6,
        beta: float = 0.4,
        eps: float = 1e-6,
        seed: int | None = None,
    ):
        super().__init__(capacity, seed=seed)
        for name, value in (("alpha", alpha), ("beta", beta), ("eps", eps)):
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value!r}.")
        self.alpha, self.beta, self.eps = alpha, beta, eps
        self._reset_trees()

    def _reset_trees(self) -> None:
        self._sum_tree = SumSegmentTree(self.capacity)
        self._min_tree = MinSegmentTree(self.capacity)
        self._max_priority = 1.0

    def add(self, batch: SampleBatch) -> np.ndarray:
        slots = super().add(batch)
        self._set_priorities(slots, np.full(len(slots), self._max_priority))
        return slots

    def _set_priorities(self, slots: np.ndarray, priorities: np.ndarray) -> None:
        if len(slots):
            self._sum_tree[slots] = priorities
            self._min_tree[slots] = priorities
            self._max_priority = max(self._max_priority, float(np.max(priorities)))

    def sample(self, num_items: int, beta: float | None = None) -> SampleBatch:
        """``num_items`` rows drawn with probability ``p_i / sum(p)``, plus ``weights`` (B,) float32
        and ``batch_indexes`` (B,) int64."""
        self._check_can_sample(num_items)
        beta = self.beta if beta is None else beta
        total = self._sum_tree.sum()
        # Rounding can push a prefix sum past the last stored row; clip it back.
        indexes = np.minimum(
            self._sum_tree.find_prefixsum_idx(self._rng.random(num_items) * total), self._size - 1
        )
        probabilities = self._sum_tree[indexes] / total
        max_weight = (
            self._size * self._min_tree.min() / total
        ) ** -beta  # the weight of the least likely row
        batch = self._rows(indexes)
        batch["weights"] = ((self._size * probabilities) ** -beta / max_weight).astype(np.float32)
        batch["batch_indexes"] = indexes
        return batch

    def update_priorities(self, indexes, td_errors, *, eps: float | None = None) -> None:
        """Rows ``indexes`` (B,) get priority ``(|td_errors| + eps) ** alpha`` (``eps`` default: the
        buffer's)."""
        indexes = np.asarray(indexes, dtype=np.int64).reshape(-1)
        td_errors = np.asarray(td_errors, dtype=np.float64).reshape(-1)
        if len(indexes) != len(td_errors):
            raise ValueError(
                f"update_priorities got {len(indexes)} indexes but "
                f"{len(td_errors)} TD errors; pass one TD error per sampled row."
            )
        if len(indexes) and (indexes.min() < 0 or indexes.max() >= self._size):
            raise IndexError(
                f"update_priorities got indexes from {indexes.min()} to {indexes.max()}, but the "
                f"buffer holds rows 0..{self._size - 1}. Pass the "
                "'batch_indexes' column of a batch this buffer sampled."
            )
        self._set_priorities(
            indexes, (np.abs(td_errors) + (self.eps if eps is None else eps)) ** self.alpha
        )

    def get_state(self) -> dict:
        return {
            **super().get_state(),
            "priorities": self._sum_tree[np.arange(self._size)],
            "max_priority": self._max_priority,
        }

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        self._reset_trees()
        self._set_priorities(np.arange(self._size), state["priorities"])
        self._max_priority = state["max_priority"]
