"""Specification of course_lib.sample_batch: SampleBatch, MultiAgentBatch, concat_samples and
summarize."""

import pickle

import numpy as np
import pytest

from course_lib.sample_batch import (
    DEFAULT_POLICY_ID,
    MultiAgentBatch,
    SampleBatch,
    concat_samples,
    summarize,
)


def make_batch(n=10, eps_id=None, seed=0, start=0):
    """A CartPole-shaped batch whose 't' column holds the global row number start..start+n-1."""
    rng = np.random.default_rng(seed)
    return SampleBatch(
        {
            SampleBatch.OBS: rng.normal(size=(n, 4)).astype(np.float32),
            SampleBatch.NEXT_OBS: rng.normal(size=(n, 4)).astype(np.float32),
            SampleBatch.ACTIONS: rng.integers(0, 2, size=n),
            SampleBatch.REWARDS: np.ones(n, dtype=np.float32),
            SampleBatch.TERMINATEDS: np.zeros(n, dtype=bool),
            SampleBatch.TRUNCATEDS: np.zeros(n, dtype=bool),
            SampleBatch.EPS_ID: np.zeros(n, dtype=np.int64)
            if eps_id is None
            else np.asarray(eps_id),
            SampleBatch.T: np.arange(start, start + n),
            SampleBatch.INFOS: [{"row": start + i} for i in range(n)],
        }
    )


# --- construction and validation ------------------------------------------------------------------


def test_constructor_converts_lists_to_numpy_columns():
    batch = SampleBatch(obs=[[0.0, 1.0], [2.0, 3.0]], actions=[0, 1], infos=[{}, {"a": 1}])
    assert isinstance(batch["obs"], np.ndarray) and batch["obs"].shape == (2, 2)
    assert batch["actions"].dtype == np.int64
    assert batch["infos"].dtype == object and batch["infos"].shape == (2,)
    assert batch["infos"][1] == {"a": 1}


def test_constructor_accepts_dict_and_keywords_together():
    batch = SampleBatch({"obs": np.zeros((3, 4))}, rewards=[1.0, 2.0, 3.0])
    assert batch.columns == ["obs", "rewards"]
    np.testing.assert_array_equal(batch["rewards"], [1.0, 2.0, 3.0])


def test_ragged_lists_become_object_columns_with_one_row_per_step():
    batch = SampleBatch(seq=[[1], [1, 2], [1, 2, 3]])
    assert batch["seq"].dtype == object and batch.count == 3
    assert batch["seq"][2] == [1, 2, 3]


def test_column_length_mismatch_names_column_and_expected_length():
    with pytest.raises(ValueError) as error:
        SampleBatch(obs=np.zeros((200, 4)), rewards=np.zeros(199))
    assert str(error.value) == (
        "Column 'rewards' has 199 rows but 'obs' has 200; "
        "every column of a SampleBatch must have one row per timestep."
    )


def test_setting_a_column_validates_its_length():
    batch = make_batch(5)
    with pytest.raises(ValueError, match=r"Column 'advantages' has 4 rows but 'obs' has 5"):
        batch["advantages"] = np.zeros(4)
    batch["advantages"] = [0.5] * 5
    assert batch["advantages"].dtype == np.float64 and batch.count == 5


def test_replacing_the_only_column_may_change_the_length():
    batch = SampleBatch(obs=np.zeros(3))
    batch["obs"] = np.zeros(7)
    assert batch.count == 7


def test_update_validates_like_setitem():
    batch = make_batch(5)
    with pytest.raises(ValueError, match="'vf_preds' has 2 rows"):
        batch.update({"vf_preds": [0.0, 1.0]})
    with pytest.raises(ValueError, match="'x' has 1 rows"):
        batch |= {"x": [1]}
    batch.setdefault("vf_preds", np.zeros(5))
    assert "vf_preds" in batch


def test_scalar_column_gets_a_clear_error():
    with pytest.raises(
        ValueError, match=r"Column 'gamma' is a scalar \(0.99\).*one row per timestep"
    ):
        SampleBatch(obs=np.zeros(3), gamma=0.99)


def test_column_names_must_be_strings():
    with pytest.raises(TypeError, match="column names must be strings"):
        SampleBatch({1: [1, 2]})


def test_count_and_len_are_rows_not_columns():
    batch = make_batch(7)
    assert batch.count == len(batch) == 7
    assert len(batch.columns) == 9
    assert SampleBatch().count == len(SampleBatch()) == 0


def test_columns_lists_keys_in_insertion_order():
    batch = SampleBatch(b=[1], a=[2])
    assert batch.columns == list(batch.keys()) == ["b", "a"]


def test_column_name_constants_match_rllib_names():
    assert (SampleBatch.OBS, SampleBatch.NEXT_OBS, SampleBatch.TERMINATEDS) == (
        "obs",
        "new_obs",
        "terminateds",
    )
    assert (SampleBatch.VF_PREDS, SampleBatch.ADVANTAGES, SampleBatch.VALUE_TARGETS) == (
        "vf_preds",
        "advantages",
        "value_targets",
    )
    assert DEFAULT_POLICY_ID == "default_policy"


# --- concatenation --------------------------------------------------------------------------------


def test_concat_keeps_columns_aligned():
    parts = [make_batch(n, start=start, seed=n) for n, start in [(3, 0), (5, 3), (2, 8)]]
    merged = SampleBatch.concat_samples(parts)
    assert merged.count == 10
    np.testing.assert_array_equal(merged["t"], np.arange(10))
    assert [info["row"] for info in merged["infos"]] == list(range(10))
    np.testing.assert_array_equal(merged["obs"][3:8], parts[1]["obs"])
    assert merged["obs"].dtype == np.float32 and merged["terminateds"].dtype == bool


def test_module_function_and_method_concatenate_the_same_way():
    first, second = make_batch(3), make_batch(4, start=3)
    for merged in (concat_samples([first, second]), first.concat(second)):
        np.testing.assert_array_equal(merged["t"], np.arange(7))


def test_concat_with_different_columns_lists_missing_and_extra():
    first, second = make_batch(3), make_batch(3)
    del second["infos"]
    second["vf_preds"] = np.zeros(3)
    with pytest.raises(
        ValueError,
        match=r"batch 2 is missing columns \['infos'\] and has extra columns "
        r"\['vf_preds'\] compared with batch 0",
    ):
        SampleBatch.concat_samples([first, SampleBatch(), second])


def test_concat_of_nothing_is_an_error():
    with pytest.raises(ValueError, match="empty list"):
        SampleBatch.concat_samples([])


def test_concat_skips_batches_without_columns():
    merged = SampleBatch.concat_samples([SampleBatch(), make_batch(4), SampleBatch()])
    assert merged.count == 4
    assert SampleBatch.concat_samples([SampleBatch()]).count == 0


def test_concat_with_different_row_shapes_names_the_column():
    with pytest.raises(ValueError, match=r"column 'obs'.*\[\(4,\), \(5,\)\]"):
        SampleBatch.concat_samples(
            [SampleBatch(obs=np.zeros((2, 4))), SampleBatch(obs=np.zeros((2, 5)))]
        )


def test_concat_refuses_mixed_batch_types():
    with pytest.raises(TypeError, match="as_multi_agent"):
        SampleBatch.concat_samples([make_batch(2), make_batch(2).as_multi_agent()])


# --- slicing, shuffling, minibatches --------------------------------------------------------------


def test_slicing_returns_a_sample_batch_of_views():
    batch = make_batch(30)
    part = batch[10:20]
    assert isinstance(part, SampleBatch) and part.count == 10
    np.testing.assert_array_equal(part["t"], np.arange(10, 20))
    assert np.shares_memory(part["obs"], batch["obs"])
    np.testing.assert_array_equal(batch.slice(10, 20)["obs"], part["obs"])
    assert batch["obs"] is batch[SampleBatch.OBS]


def test_integer_index_gets_a_helpful_error():
    with pytest.raises(TypeError, match=r"batch\[i:i \+ 1\]"):
        make_batch(3)[0]


def test_shuffle_applies_one_permutation_to_every_column():
    batch = make_batch(50)
    shuffled = batch.shuffle(seed=3)
    order = shuffled["t"]
    assert sorted(order) == list(range(50)) and not np.array_equal(order, np.arange(50))
    np.testing.assert_array_equal(shuffled["obs"], batch["obs"][order])
    assert [info["row"] for info in shuffled["infos"]] == order.tolist()


def test_shuffle_is_reproducible_with_a_seed_and_leaves_the_original_alone():
    batch = make_batch(50)
    np.testing.assert_array_equal(batch.shuffle(seed=1)["t"], batch.shuffle(seed=1)["t"])
    assert not np.array_equal(batch.shuffle(seed=1)["t"], batch.shuffle(seed=2)["t"])
    np.testing.assert_array_equal(batch["t"], np.arange(50))


def test_rows_yields_one_dict_per_timestep():
    rows = list(make_batch(3).rows())
    assert len(rows) == 3 and rows[2]["t"] == 2 and rows[2]["infos"] == {"row": 2}
    assert rows[0]["obs"].shape == (4,)


def test_minibatches_cover_all_rows_and_last_one_is_smaller():
    batch = make_batch(10)
    sizes = [mb.count for mb in batch.minibatches(4)]
    assert sizes == [4, 4, 2]
    seen = np.concatenate([mb["t"] for mb in batch.minibatches(4, shuffle=True, seed=0)])
    assert sorted(seen) == list(range(10)) and not np.array_equal(seen, np.arange(10))


def test_minibatch_size_must_be_positive():
    with pytest.raises(ValueError, match="positive integer, got 0"):
        next(make_batch(3).minibatches(0))


def test_timeslices_are_consecutive_chunks():
    slices = make_batch(7).timeslices(3)
    assert [s["t"].tolist() for s in slices] == [[0, 1, 2], [3, 4, 5], [6]]


# --- episodes -------------------------------------------------------------------------------------


def test_split_by_episode_uses_eps_id():
    batch = make_batch(6, eps_id=[7, 7, 7, 2, 2, 9])
    pieces = batch.split_by_episode()
    assert [p["t"].tolist() for p in pieces] == [[0, 1, 2], [3, 4], [5]]


def test_split_by_episode_splits_when_an_eps_id_recurs_later():
    batch = SampleBatch.concat_samples(
        [make_batch(2, eps_id=[1, 1]), make_batch(2, eps_id=[2, 2]), make_batch(2, eps_id=[1, 1])]
    )
    assert [p["eps_id"].tolist() for p in batch.split_by_episode()] == [[1, 1], [2, 2], [1, 1]]


def test_split_by_episode_without_eps_id_uses_terminated_or_truncated():
    batch = SampleBatch(
        t=np.arange(6),
        terminateds=[False, True, False, False, False, False],
        truncateds=[False, False, False, True, False, False],
    )
    assert [p["t"].tolist() for p in batch.split_by_episode()] == [[0, 1], [2, 3], [4, 5]]


def test_split_by_episode_needs_eps_id_or_flags():
    with pytest.raises(ValueError, match=r"'eps_id'.*'terminateds'.*\['obs', 'rewards'\]"):
        SampleBatch(obs=np.zeros(3), rewards=np.zeros(3)).split_by_episode()


def test_split_of_an_empty_batch_is_empty():
    assert SampleBatch().split_by_episode() == []


# --- copies, size, printing, pickling -------------------------------------------------------------


def test_deep_copy_is_independent_and_shallow_copy_shares_arrays():
    batch = make_batch(3)
    deep, shallow = batch.copy(), batch.copy(deep=False)
    deep["obs"][0, 0] = 100.0
    deep["infos"][0]["row"] = -1
    assert batch["obs"][0, 0] != 100.0 and batch["infos"][0]["row"] == 0
    assert shallow["obs"] is batch["obs"] and isinstance(shallow, SampleBatch)


def test_size_bytes_sums_column_bytes():
    batch = SampleBatch(
        obs=np.zeros((10, 4), dtype=np.float32), actions=np.zeros(10, dtype=np.int64)
    )
    assert batch.size_bytes() == 10 * 4 * 4 + 10 * 8
    with_infos = SampleBatch(infos=[{}] * 10)
    assert with_infos.size_bytes() >= 10 * 8 + 10 * 64


def test_repr_matches_the_tutorials_summary_format():
    batch = SampleBatch(
        rewards=np.array([1.0, 0.5, 2.0], dtype=np.float32),
        actions=np.array([0, 1, 1]),
        terminateds=np.array([False, False, True]),
        infos=[{}, {}, {}],
        obs=np.zeros((3, 0)),
    )
    assert repr(batch) == (
        "SampleBatch(3 rows) {\n"
        "  'actions': np.ndarray((3,), dtype=int64, min=0.0, max=1.0, mean=0.667),\n"
        "  'infos': np.ndarray((3,), dtype=object, head={}),\n"
        "  'obs': np.ndarray((3, 0), dtype=float64),\n"
        "  'rewards': np.ndarray((3,), dtype=float32, min=0.5, max=2.0, mean=1.167),\n"
        "  'terminateds': np.ndarray((3,), dtype=bool, min=0.0, max=1.0, mean=0.333),\n"
        "}"
    )
    assert str(batch) == repr(batch)
    assert repr(SampleBatch()) == "SampleBatch(0 rows) {}"


def test_summarize_rounds_to_three_decimals_and_shortens_long_heads():
    expected = "np.ndarray((2,), dtype=float64, min=-2.46, max=2.259, mean=-0.101)"
    assert summarize(np.array([-2.4601, 2.2589])) == expected
    assert summarize(np.array([], dtype=np.int64)) == "np.ndarray((0,), dtype=int64)"
    long_head = summarize(np.array(["x" * 100]))
    assert long_head.endswith("...)") and len(long_head) < 120


def test_pickle_round_trip_keeps_columns_and_type():
    batch = make_batch(5)
    restored = pickle.loads(pickle.dumps(batch))
    assert isinstance(restored, SampleBatch) and restored.columns == batch.columns
    for name in batch:
        np.testing.assert_array_equal(restored[name], batch[name])


def test_pickle_protocol_5_ships_columns_out_of_band():
    # What Ray's object store relies on to share numpy columns without copying them.
    buffers = []
    pickle.dumps(make_batch(1000), protocol=5, buffer_callback=buffers.append)
    assert len(buffers) >= 8


# --- MultiAgentBatch ------------------------------------------------------------------------------


def make_multi_agent(env_steps=4, seed=0):
    return MultiAgentBatch(
        {
            "player1": make_batch(env_steps, seed=seed),
            "player2": make_batch(2 * env_steps, seed=seed),
        },
        env_steps,
    )


def test_multi_agent_batch_counts_env_and_agent_steps():
    batch = make_multi_agent(4)
    assert batch.env_steps() == batch.count == 4
    assert batch.agent_steps() == 12


def test_as_multi_agent_wraps_under_default_policy():
    single = make_batch(5)
    wrapped = single.as_multi_agent()
    assert list(wrapped.policy_batches) == [DEFAULT_POLICY_ID]
    assert wrapped.policy_batches[DEFAULT_POLICY_ID] is single and wrapped.env_steps() == 5


def test_concat_of_multi_agent_batches_concatenates_per_policy():
    first = make_multi_agent(4)
    second = MultiAgentBatch({"player2": make_batch(3, start=8)}, 3)
    merged = SampleBatch.concat_samples([first, second])
    assert isinstance(merged, MultiAgentBatch)
    assert merged.env_steps() == 7 and merged.agent_steps() == 4 + 8 + 3
    np.testing.assert_array_equal(merged.policy_batches["player2"]["t"], np.arange(11))
    assert MultiAgentBatch.concat_samples([first, second]).agent_steps() == 15


def test_multi_agent_concat_refuses_single_agent_batches():
    with pytest.raises(TypeError, match="as_multi_agent"):
        MultiAgentBatch.concat_samples([make_multi_agent(), make_batch(2)])
    with pytest.raises(ValueError, match="empty list"):
        MultiAgentBatch.concat_samples([])


def test_multi_agent_copy_and_size_bytes():
    batch = make_multi_agent(4)
    copied = batch.copy()
    copied.policy_batches["player1"]["obs"][0, 0] = 42.0
    assert batch.policy_batches["player1"]["obs"][0, 0] != 42.0
    assert batch.size_bytes() == sum(b.size_bytes() for b in batch.policy_batches.values())


def test_multi_agent_batch_validates_inputs():
    with pytest.raises(
        TypeError, match=r"policy_batches\['p1'\] is a dict, expected a SampleBatch"
    ):
        MultiAgentBatch({"p1": {"obs": [1]}}, 1)
    with pytest.raises(TypeError, match="Policy ids must be strings"):
        MultiAgentBatch({0: make_batch(1)}, 1)
    with pytest.raises(TypeError, match="must be a dict"):
        MultiAgentBatch([make_batch(1)], 1)
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="non-negative integer"):
            MultiAgentBatch({"p1": make_batch(1)}, bad)


def test_multi_agent_repr_nests_policy_summaries_and_pickles():
    batch = MultiAgentBatch({"p1": SampleBatch(actions=[0, 1])}, 2)
    assert repr(batch) == (
        "MultiAgentBatch(2 env steps, 2 agent steps) {\n"
        "  'p1': SampleBatch(2 rows) {\n"
        "    'actions': np.ndarray((2,), dtype=int64, min=0.0, max=1.0, mean=0.5),\n"
        "  },\n"
        "}"
    )
    restored = pickle.loads(pickle.dumps(batch))
    assert restored.env_steps() == 2 and restored.policy_batches["p1"]["actions"].tolist() == [0, 1]


def test_shuffle_and_minibatches_can_draw_from_a_given_generator():
    batch = SampleBatch(x=np.arange(10))
    np.random.seed(1)
    want = np.random.permutation(10)
    np.random.seed(1)
    assert np.array_equal(batch.shuffle(rng=np.random)["x"], want)  # the global generator
    rng_a, rng_b = np.random.default_rng(4), np.random.default_rng(4)
    assert np.array_equal(batch.shuffle(rng=rng_a)["x"], rng_b.permutation(10))
    with pytest.raises(ValueError, match="a seed or an rng, not both"):
        batch.shuffle(3, rng=np.random.default_rng(3))
    np.random.seed(1)
    parts = list(batch.minibatches(4, shuffle=True, rng=np.random, drop_last=True))
    assert [part["x"].tolist() for part in parts] == [want[:4].tolist(), want[4:8].tolist()]


def test_minibatches_drop_last_leaves_out_only_the_short_rest():
    batch = SampleBatch(x=np.arange(8))
    assert [len(part) for part in batch.minibatches(3)] == [3, 3, 2]
    assert [len(part) for part in batch.minibatches(3, drop_last=True)] == [3, 3]
    assert [len(part) for part in batch.minibatches(4, drop_last=True)] == [4, 4]
    assert list(batch.minibatches(9, drop_last=True)) == []
