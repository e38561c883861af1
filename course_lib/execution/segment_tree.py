"""Sum and min segment trees: what makes prioritized replay O(log N) per item.

A binary tree over ``capacity`` leaves (rounded up to a power of two) stored in one array: node
``i`` has children ``2i`` and ``2i + 1``, the root is node 1, leaf ``k`` is node ``capacity + k``.
Each inner node holds ``op`` of its children, so the root holds the sum (or min) of all leaves.
Updates and queries take arrays of indexes and touch one tree level per numpy operation.
Introduced in notebooks/11_execution_plans.ipynb.
"""

from __future__ import annotations

import numpy as np

from course_lib.validation import is_whole_number


class SegmentTree:
    """Leaves ``tree[k]`` for ``k < capacity``, and ``op`` over all of them at the root.

    Introduced in notebooks/11_execution_plans.ipynb.
    """

    def __init__(self, capacity: int, op, neutral: float):
        if not is_whole_number(capacity) or capacity < 1:
            raise ValueError(f"A segment tree needs a capacity >= 1, got {capacity!r}.")
        self.capacity = 1 << (capacity - 1).bit_length()
        self._op, self._neutral = op, neutral
        self._nodes = np.full(2 * self.capacity, neutral, dtype=np.float64)

    def __setitem__(self, indexes, values) -> None:
        """Set leaves ``indexes`` (int or array, shape (N,)) to ``values``, then recompute their
        ancestors."""
        nodes = np.atleast_1d(np.asarray(indexes, dtype=np.int64)) + self.capacity
        self._nodes[nodes] = values
        while (
            True
        ):  # all leaves are at one depth, so each pass is one level up, ending at the root (1)
            nodes = np.unique(nodes // 2)
            if nodes[0] == 0:  # capacity 1: the only leaf is the root
                break
            self._nodes[nodes] = self._op(self._nodes[2 * nodes], self._nodes[2 * nodes + 1])
            if nodes[0] == 1:
                break

    def __getitem__(self, indexes):
        return self._nodes[np.asarray(indexes, dtype=np.int64) + self.capacity]

    def reduce(self) -> float:
        """``op`` over all leaves (the root)."""
        return float(self._nodes[1])


class SumSegmentTree(SegmentTree):
    """Leaves are non-negative masses; ``find_prefixsum_idx`` samples a leaf in proportion to its
    mass."""

    def __init__(self, capacity: int):
        super().__init__(capacity, np.add, 0.0)

    def sum(self) -> float:
        return self.reduce()

    def find_prefixsum_idx(self, prefix_sums) -> np.ndarray:
        """For each ``s`` in ``prefix_sums`` (shape (N,)), the smallest leaf ``k`` with
        ``leaf[0] + ... + leaf[k] > s``.

        With ``s`` uniform in ``[0, sum())`` leaf ``k`` comes out with probability
        ``leaf[k] / sum()``.
        """
        remaining = np.array(prefix_sums, dtype=np.float64, ndmin=1)
        nodes = np.ones(len(remaining), dtype=np.int64)
        while nodes[0] < self.capacity:  # every query descends one level per pass
            left = 2 * nodes
            go_right = remaining >= self._nodes[left]
            remaining = np.where(go_right, remaining - self._nodes[left], remaining)
            nodes = np.where(go_right, left + 1, left)
        return nodes - self.capacity


class MinSegmentTree(SegmentTree):
    """Leaves are numbers; ``min()`` is the smallest (``inf`` where nothing was set)."""

    def __init__(self, capacity: int):
        super().__init__(capacity, np.minimum, np.inf)

    def min(self) -> float:
        return self.reduce()
