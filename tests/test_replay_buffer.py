"""Replay buffers and the segment trees behind prioritized replay."""

from __future__ import annotations

import numpy as np
import pytest

from course_lib.execution import (
    MinSegmentTree,
    PrioritizedReplayBuffer,
    ReplayBuffer,
    SumSegmentTree,
)
from course_lib.sample_batch import SampleBatch


def rows(start: int, stop: int) -> SampleBatch:
    """Rows whose ``x`` is their position in the stream, with a (N, 2) ``obs`` and an object
    column."""
    x = np.arange(start, stop)
    return SampleBatch(
        x=x, obs=np.stack([x, -x], axis=1).astype(np.float32), infos=[{"i": int(i)} for i in x]
    )


def stored_x(buffer: ReplayBuffer) -> list[int]:
    return sorted(buffer.get_state()["columns"]["x"].tolist())


# --- ReplayBuffer ---------------------------------------------------------------------------------


def test_the_buffer_keeps_the_newest_capacity_rows():
    buffer = ReplayBuffer(5)
    buffer.add(rows(0, 3))
    assert len(buffer) == 3 and stored_x(buffer) == [0, 1, 2]
    slots = buffer.add(rows(3, 7))
    assert len(buffer) == 5 and stored_x(buffer) == [2, 3, 4, 5, 6]
    np.testing.assert_array_equal(slots, [3, 4, 0, 1])  # round the ring
    buffer.add(rows(7, 20))  # more than the capacity at once
    assert stored_x(buffer) == [15, 16, 17, 18, 19]
    assert buffer.stats()["added_count"] == 20 and buffer.stats()["num_entries"] == 5


def test_sampled_rows_keep_their_columns_together():
    buffer = ReplayBuffer(100, seed=0)
    buffer.add(rows(0, 30))
    batch = buffer.sample(64)
    assert isinstance(batch, SampleBatch) and batch.count == 64 and batch["obs"].shape == (64, 2)
    np.testing.assert_array_equal(batch["obs"][:, 0], batch["x"])
    assert [info["i"] for info in batch["infos"]] == batch["x"].tolist()
    assert (
        set(batch["x"].tolist()) <= set(range(30)) and len(set(batch["x"].tolist())) < 64
    )  # with replacement


def test_sampling_is_uniform_and_reproducible_with_a_seed():
    buffer = ReplayBuffer(10, seed=1)
    buffer.add(rows(0, 10))
    counts = np.bincount(buffer.sample(20000)["x"], minlength=10) / 20000
    np.testing.assert_allclose(counts, 0.1, atol=0.015)
    a, b = ReplayBuffer(10, seed=3), ReplayBuffer(10, seed=3)
    a.add(rows(0, 10))
    b.add(rows(0, 10))
    np.testing.assert_array_equal(a.sample(8)["x"], b.sample(8)["x"])


def test_state_round_trip_resumes_the_same_samples():
    buffer = ReplayBuffer(8, seed=0)
    buffer.add(rows(0, 11))
    state = buffer.get_state()
    restored = ReplayBuffer(8)
    restored.set_state(state)
    assert len(restored) == 8 and restored.stats()["added_count"] == 11
    np.testing.assert_array_equal(buffer.sample(16)["x"], restored.sample(16)["x"])
    buffer.add(rows(11, 12))
    restored.add(rows(11, 12))
    assert stored_x(buffer) == stored_x(restored)  # the ring position came back too
    with pytest.raises(ValueError, match="capacity >= 8"):
        ReplayBuffer(4).set_state(state)


def test_buffer_errors_say_what_to_do():
    with pytest.raises(ValueError, match="empty ReplayBuffer"):
        ReplayBuffer(5).sample(1)
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(0)
    buffer = ReplayBuffer(5)
    buffer.add(SampleBatch(x=[1, 2]))
    with pytest.raises(ValueError, match=r"missing \['x'\], extra \['y'\]"):
        buffer.add(SampleBatch(y=[1, 2]))
    with pytest.raises(ValueError, match="shape"):
        buffer.add(SampleBatch(x=np.zeros((2, 3))))


# --- PrioritizedReplayBuffer ----------------------------------------------------------------------


def test_rows_are_sampled_in_proportion_to_their_priority():
    buffer = PrioritizedReplayBuffer(4, alpha=1.0, eps=0.0, seed=0)
    buffer.add(rows(0, 4))
    buffer.update_priorities([0, 1, 2, 3], [1.0, -2.0, 3.0, 4.0])  # |td| counts, not its sign
    counts = np.bincount(buffer.sample(20000)["x"], minlength=4) / 20000
    np.testing.assert_allclose(counts, [0.1, 0.2, 0.3, 0.4], atol=0.015)


def test_alpha_zero_samples_uniformly():
    buffer = PrioritizedReplayBuffer(4, alpha=0.0, seed=0)
    buffer.add(rows(0, 4))
    buffer.update_priorities([0, 1, 2, 3], [100.0, 0.0, 0.0, 0.0])
    counts = np.bincount(buffer.sample(20000)["x"], minlength=4) / 20000
    np.testing.assert_allclose(counts, 0.25, atol=0.015)


def test_importance_weights_are_at_most_one_and_follow_the_formula():
    buffer = PrioritizedReplayBuffer(4, alpha=1.0, beta=0.5, eps=0.0, seed=0)
    buffer.add(rows(0, 4))
    buffer.update_priorities([0, 1, 2, 3], [1.0, 2.0, 3.0, 4.0])
    batch = buffer.sample(200)
    probabilities = np.array([0.1, 0.2, 0.3, 0.4])
    expected = (4 * probabilities) ** -0.5 / (4 * 0.1) ** -0.5
    np.testing.assert_allclose(batch["weights"], expected[batch["batch_indexes"]], rtol=1e-5)
    assert (
        batch["weights"].max() <= 1.0
        and (batch["weights"][batch["batch_indexes"] == 0] == 1.0).all()
    )  # the least likely row
    np.testing.assert_array_equal(batch["x"], batch["batch_indexes"])
    assert (buffer.sample(50, beta=0.0)["weights"] == 1.0).all()  # beta 0: no correction


def test_update_priorities_changes_what_is_sampled():
    buffer = PrioritizedReplayBuffer(10, alpha=1.0, seed=0)
    buffer.add(rows(0, 10))
    buffer.update_priorities(np.arange(10), np.full(10, 0.01))
    buffer.update_priorities([7], [10.0])
    assert (buffer.sample(1000)["x"] == 7).mean() > 0.9  # 10 / (10 + 9 * 0.01) = 0.99


def test_new_rows_get_the_largest_priority_so_far():
    buffer = PrioritizedReplayBuffer(10, alpha=0.5, eps=0.0, seed=0)
    buffer.add(rows(0, 3))
    np.testing.assert_allclose(buffer.get_state()["priorities"], [1.0, 1.0, 1.0])
    buffer.update_priorities([0, 1, 2], [0.25, 16.0, 1.0])
    buffer.add(rows(3, 4))
    np.testing.assert_allclose(buffer.get_state()["priorities"], [0.5, 4.0, 1.0, 4.0])


def test_prioritized_state_round_trip_keeps_the_priorities():
    buffer = PrioritizedReplayBuffer(6, alpha=1.0, seed=0)
    buffer.add(rows(0, 6))
    buffer.update_priorities([2], [50.0])
    restored = PrioritizedReplayBuffer(6, alpha=1.0)
    restored.set_state(buffer.get_state())
    batch, again = buffer.sample(32), restored.sample(32)
    np.testing.assert_array_equal(batch["batch_indexes"], again["batch_indexes"])
    np.testing.assert_allclose(batch["weights"], again["weights"])


def test_update_priorities_checks_its_arguments():
    buffer = PrioritizedReplayBuffer(10)
    buffer.add(rows(0, 3))
    with pytest.raises(ValueError, match="2 indexes but 1 TD errors"):
        buffer.update_priorities([0, 1], [0.5])
    with pytest.raises(IndexError, match="rows 0..2"):
        buffer.update_priorities([5], [0.5])


# --- segment trees --------------------------------------------------------------------------------


def test_segment_trees_match_brute_force():
    rng = np.random.default_rng(0)
    values = rng.uniform(0.1, 5.0, 13)
    sums, mins = SumSegmentTree(13), MinSegmentTree(13)
    sums[np.arange(13)] = values
    mins[np.arange(13)] = values
    sums[[4]] = 0.0
    values[4] = 0.0
    assert sums.capacity == 16 and sums.sum() == pytest.approx(values.sum())
    assert mins.min() == pytest.approx(values[values > 0].min())
    cumulative = np.cumsum(values)
    queries = rng.uniform(0, values.sum(), 500)
    np.testing.assert_array_equal(
        sums.find_prefixsum_idx(queries), np.searchsorted(cumulative, queries, side="right")
    )
    assert 4 not in sums.find_prefixsum_idx(queries)  # zero mass is never found


def test_a_segment_tree_of_one_leaf_is_its_root():
    tree = SumSegmentTree(1)
    tree[0] = 2.5
    assert tree.sum() == 2.5 and tree.find_prefixsum_idx([1.0]).tolist() == [0]
