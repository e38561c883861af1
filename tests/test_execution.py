"""Execution plans: LocalIterator, the rollout/train/replay/concurrency operators, and metrics
reporting."""

from __future__ import annotations

import itertools
import threading

import gymnasium as gym
import numpy as np
import pytest

from course_lib.evaluation import WorkerSet
from course_lib.execution import (
    AGENT_STEPS_SAMPLED_COUNTER,
    LAST_TARGET_UPDATE_TS,
    NUM_TARGET_UPDATES,
    STEPS_SAMPLED_COUNTER,
    STEPS_TRAINED_COUNTER,
    ApplyGradients,
    AsyncGradients,
    ComputeGradients,
    ConcatBatches,
    Concurrently,
    LocalIterator,
    MetricsContext,
    NextValueNotReady,
    ParallelRollouts,
    PrioritizedReplayBuffer,
    Replay,
    ReplayBuffer,
    SelectExperiences,
    StandardizeFields,
    StandardMetricsReporting,
    StoreToReplayBuffer,
    TimerStat,
    TrainOneStep,
    UpdatePriorities,
    UpdateTargetNetwork,
    get_shared_metrics,
)
from course_lib.policy import PGTorchPolicy
from course_lib.sample_batch import MultiAgentBatch, SampleBatch


def cartpole(env_config):
    return gym.make("CartPole-v1", max_episode_steps=env_config.get("max_steps", 500))


CONFIG = {"rollout_fragment_length": 50, "seed": 0, "model": {"fcnet_hiddens": [16]}}


def local_workers(policy_class=PGTorchPolicy, **config) -> WorkerSet:
    return WorkerSet(
        env_creator=cartpole,
        policy_class=policy_class,
        trainer_config={**CONFIG, **config},
        num_workers=0,
    )


def run_op(op, *items):
    """Push ``items`` through ``op`` inside a plan (operators read the plan's shared metrics)."""
    plan = LocalIterator(list(items)).for_each(op)
    return plan.take(len(items)), plan.shared_metrics


def weights_of(policy) -> dict:
    return {name: value.copy() for name, value in policy.get_weights().items()}


def same_weights(a: dict, b: dict) -> bool:
    return all(np.array_equal(a[name], b[name]) for name in a)


class RecordingPolicy(PGTorchPolicy):
    """PG that records every batch it learns on, and adds numeric, non-numeric, per-row outputs."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls: list[SampleBatch] = []

    def learn_on_batch(self, samples):
        self.calls.append(samples)
        result = self._learn(samples)
        result["learner_stats"].update(
            rows=samples.count, call=len(self.calls), note="not a number"
        )
        result["td_error"] = np.arange(samples.count, dtype=np.float32)
        return result

    def _learn(self, samples):
        return super().learn_on_batch(samples)


class RecurrentRecordingPolicy(RecordingPolicy):
    def is_recurrent(self):
        return True

    def _learn(self, samples):
        return {"learner_stats": {}}


class TargetPolicy(PGTorchPolicy):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.target_updates = 0

    def update_target(self):
        self.target_updates += 1


# --- LocalIterator --------------------------------------------------------------------------------


def test_operators_compose_lazily_and_pull_only_what_is_needed():
    pulled = []
    times_ten = LocalIterator(lambda: iter(range(100))).for_each(
        lambda x: pulled.append(x) or 10 * x
    )
    assert pulled == []
    plan = times_ten.filter(lambda x: x % 20 == 0).combine(lambda x: [x, x + 1]).batch(3)
    assert plan.take(2) == [[0, 1, 20], [21, 40, 41]]
    assert pulled == [0, 1, 2, 3, 4]


def test_derived_iterators_share_one_metrics_context_that_operators_can_read():
    base = LocalIterator(range(3))

    def count(x):
        get_shared_metrics().counters["seen"] += 1
        return x

    plan = base.for_each(count).filter(lambda x: True)
    assert plan.take(5) == [0, 1, 2]
    assert plan.shared_metrics is base.shared_metrics and base.shared_metrics.counters["seen"] == 3


def test_shared_metrics_outside_a_running_plan_is_a_clear_error():
    with pytest.raises(
        RuntimeError, match="outside a running execution plan.*iterator.shared_metrics"
    ):
        get_shared_metrics()


def test_union_alternates_and_merges_the_metrics_contexts():
    a, b = LocalIterator(["a0", "a1", "a2"]), LocalIterator(["b0"])
    merged = a.union(b)
    assert merged.take(10) == ["a0", "b0", "a1", "a2"]
    assert a.shared_metrics is b.shared_metrics is merged.shared_metrics


def test_union_without_determinism_yields_every_item():
    merged = LocalIterator(range(0, 5)).union(LocalIterator(range(5, 10)), deterministic=False)
    assert sorted(merged.take(20)) == list(range(10))


def test_next_value_not_ready_passes_through_without_calling_the_function():
    calls = []
    source = LocalIterator([1, NextValueNotReady(), 2])
    items = list(source.for_each(lambda x: calls.append(x) or x))
    assert calls == [1, 2] and isinstance(items[1], NextValueNotReady)
    assert LocalIterator([NextValueNotReady(), 7, NextValueNotReady(), 8]).take(2) == [7, 8]


def test_timer_stat_averages_its_window_and_times_with_blocks():
    timer = TimerStat(window=2)
    for seconds in (1.0, 2.0, 3.0):
        timer.push(seconds)
    assert timer.mean == 2.5 and timer.count == 3
    with timer:
        pass
    assert timer.count == 4 and timer.mean >= 1.5  # (3.0 + a tiny duration) / 2


def test_metrics_context_counters_round_trip_through_plain_state():
    metrics = MetricsContext()
    metrics.counters[STEPS_SAMPLED_COUNTER] += 500
    restored = MetricsContext()
    restored.set_state(metrics.get_state())
    restored.counters["new"] += 1
    assert restored.counters[STEPS_SAMPLED_COUNTER] == 500 and restored.counters["new"] == 1


# --- rollout operators ----------------------------------------------------------------------------


def test_parallel_rollouts_samples_the_local_worker_and_counts_steps():
    workers = local_workers()
    rollouts = ParallelRollouts(workers, mode="bulk_sync")
    first, second = rollouts.take(2)
    assert first.count == second.count == 50 and first["eps_id"][-1] == second["eps_id"][0]
    assert rollouts.shared_metrics.counters[STEPS_SAMPLED_COUNTER] == 100
    assert rollouts.shared_metrics.counters[AGENT_STEPS_SAMPLED_COUNTER] == 100
    [raw] = ParallelRollouts(workers, mode="raw").take(1)
    assert isinstance(raw, list) and len(raw) == 1 and raw[0].count == 50


def test_parallel_rollouts_rejects_an_unknown_mode():
    with pytest.raises(ValueError, match=r"'bulk'.*\('bulk_sync', 'async', 'raw'\)"):
        ParallelRollouts(local_workers(), mode="bulk")


def test_concat_batches_waits_for_the_minimum_then_emits_one_batch():
    pieces = [SampleBatch(x=np.arange(40 * i, 40 * (i + 1))) for i in range(4)]
    concat = ConcatBatches(min_batch_size=100)
    assert concat(pieces[0]) == [] and concat(pieces[1]) == []
    [batch] = concat(pieces[2])
    np.testing.assert_array_equal(batch["x"], np.arange(120))
    assert concat(pieces[3]) == []  # the buffer starts over
    assert [
        b.count for b in LocalIterator(pieces).combine(ConcatBatches(min_batch_size=80)).take(5)
    ] == [80, 80]


def test_concat_batches_counts_env_or_agent_steps():
    rows = SampleBatch(x=np.zeros(30))
    two_agents = MultiAgentBatch({"a": rows, "b": rows}, env_steps=30)
    assert ConcatBatches(50)(two_agents) == []
    [by_agents] = ConcatBatches(50, count_steps_by="agent_steps")(two_agents)
    assert by_agents.agent_steps() == 60
    with pytest.raises(TypeError, match="combine"):
        ConcatBatches(50)([rows, rows])


def test_select_experiences_keeps_only_the_chosen_policies():
    rows = SampleBatch(x=np.zeros(5))
    selected = SelectExperiences(["b"])(MultiAgentBatch({"a": rows, "b": rows}, env_steps=5))
    assert list(selected.policy_batches) == ["b"] and selected.env_steps() == 5
    assert SelectExperiences(["b"])(rows) is rows
    with pytest.raises(TypeError, match=r"SelectExperiences\(\['b'\]\)"):
        SelectExperiences("b")


def test_standardize_fields_gives_mean_zero_std_one_and_leaves_the_input_alone():
    batch = local_workers().local_worker().sample()
    original = batch["advantages"].copy()
    result = StandardizeFields(["advantages"])(batch)
    assert abs(result["advantages"].mean()) < 1e-5 and result["advantages"].std() == pytest.approx(
        1.0, abs=1e-4
    )
    np.testing.assert_array_equal(batch["advantages"], original)
    assert result["advantages"].dtype == original.dtype
    multi = StandardizeFields(["v"])(
        MultiAgentBatch({"a": SampleBatch(v=[1.0, 3.0]), "b": SampleBatch(v=[5.0, 5.0])}, 2)
    )
    np.testing.assert_allclose(multi.policy_batches["a"]["v"], [-1.0, 1.0])
    np.testing.assert_allclose(
        multi.policy_batches["b"]["v"], [0.0, 0.0]
    )  # std 0: no division by zero
    with pytest.raises(KeyError, match="no column"):
        StandardizeFields(["missing"])(batch)


# --- train operators ------------------------------------------------------------------------------


def set_steps_sampled(steps):
    def setter(item):
        get_shared_metrics().counters[STEPS_SAMPLED_COUNTER] = steps
        return item

    return setter


def test_train_one_step_learns_once_and_reports_stats_counters_and_timestep():
    workers = local_workers(RecordingPolicy)
    policy = workers.local_worker().get_policy()
    batch = workers.local_worker().sample()
    before = weights_of(policy)
    plan = LocalIterator([batch]).for_each(set_steps_sampled(12345)).for_each(TrainOneStep(workers))
    [(trained, info)] = plan.take(1)
    assert trained is batch and policy.calls == [batch]
    assert not same_weights(before, policy.get_weights())
    np.testing.assert_array_equal(
        info["default_policy"]["td_error"], np.arange(50)
    )  # extra outputs kept
    metrics = plan.shared_metrics
    assert metrics.info["learner"]["default_policy"]["rows"] == 50
    assert metrics.counters[STEPS_TRAINED_COUNTER] == 50 and metrics.timers["learn"].count == 1
    assert policy.global_timestep == 12345  # global_vars["timestep"] = steps sampled


def test_train_one_step_runs_epochs_of_shuffled_minibatches_and_averages_stats():
    workers = local_workers(RecordingPolicy)
    policy = workers.local_worker().get_policy()
    batch = SampleBatch.concat_samples([workers.local_worker().sample() for _ in range(4)])
    np.random.seed(0)
    [(_, info)], _ = run_op(TrainOneStep(workers, num_sgd_iter=3, sgd_minibatch_size=64), batch)
    assert [call.count for call in policy.calls] == [64] * 9
    stats = info["default_policy"]["learner_stats"]
    assert (
        stats["rows"] == 64
        and stats["call"] == 5.0
        and "note" not in stats
        and "total_loss" in stats
    )
    assert "td_error" not in info["default_policy"]
    rows = lambda b: set(zip(b["eps_id"].tolist(), b["t"].tolist(), strict=True))  # noqa: E731
    epoch = policy.calls[:3]
    assert len(set.union(*map(rows, epoch))) == 192  # no row twice within an epoch
    assert not np.array_equal(epoch[0]["obs"], batch["obs"][:64])  # shuffled
    first_order = [call["obs"] for call in policy.calls]
    policy.calls.clear()
    np.random.seed(0)
    run_op(TrainOneStep(workers, num_sgd_iter=3, sgd_minibatch_size=64), batch)
    assert all(
        np.array_equal(a, b["obs"]) for a, b in zip(first_order, policy.calls, strict=True)
    )  # np.random decides


def test_train_one_step_epochs_are_the_sample_batchs_minibatches_from_the_global_generator():
    workers = local_workers(RecordingPolicy)
    policy = workers.local_worker().get_policy()
    batch = SampleBatch.concat_samples([workers.local_worker().sample() for _ in range(4)])
    np.random.seed(5)
    run_op(TrainOneStep(workers, num_sgd_iter=2, sgd_minibatch_size=60), batch)
    np.random.seed(5)
    expected = []
    for _ in range(2):
        # One permutation per epoch from np.random, then full minibatches only (200 = 3 x 60 + 20).
        order = np.random.permutation(batch.count)
        expected += [batch["obs"][order][start : start + 60] for start in (0, 60, 120)]
    assert len(policy.calls) == len(expected) == 6
    pairs = zip(policy.calls, expected, strict=True)
    assert all(np.array_equal(call["obs"], want) for call, want in pairs)


def test_train_one_step_uses_the_whole_batch_when_smaller_than_a_minibatch_or_recurrent():
    workers = local_workers(RecordingPolicy)
    batch = workers.local_worker().sample()
    run_op(TrainOneStep(workers, num_sgd_iter=2, sgd_minibatch_size=64), batch)
    assert [call.count for call in workers.local_worker().get_policy().calls] == [50, 50]
    recurrent = local_workers(RecurrentRecordingPolicy)
    big = SampleBatch.concat_samples([recurrent.local_worker().sample() for _ in range(4)])
    run_op(TrainOneStep(recurrent, num_sgd_iter=2, sgd_minibatch_size=64), big)
    calls = recurrent.local_worker().get_policy().calls
    assert len(calls) == 2 and all(
        np.array_equal(call["obs"], big["obs"]) for call in calls
    )  # in order


def test_train_one_step_trains_each_policy_of_a_multi_agent_batch_on_its_rows():
    workers = local_workers(RecordingPolicy)
    local = workers.local_worker()
    local.policy_map["other"] = RecordingPolicy(local.observation_space, local.action_space, CONFIG)
    first, second = local.sample(), local.sample()
    multi = MultiAgentBatch({"default_policy": first, "other": second}, env_steps=50)
    [(_, info)], metrics = run_op(TrainOneStep(workers, policies=["other"]), multi)
    assert (
        list(info) == ["other"]
        and local.policy_map["other"].calls == [second]
        and local.get_policy().calls == []
    )
    assert (
        metrics.counters[STEPS_TRAINED_COUNTER] == 50
        and metrics.counters["num_agent_steps_trained"] == 100
    )
    [(_, info)], _ = run_op(TrainOneStep(workers), multi)
    assert set(info) == {"default_policy", "other"} and local.get_policy().calls == [first]
    with pytest.raises(KeyError, match="no policy 'ghost' on the local worker"):
        run_op(TrainOneStep(workers), MultiAgentBatch({"ghost": first}, env_steps=50))


def test_compute_then_apply_gradients_changes_the_weights_once():
    workers = local_workers()
    policy = workers.local_worker().get_policy()
    before = weights_of(policy)
    batch = workers.local_worker().sample()
    [(grads, count)], metrics = run_op(ComputeGradients(workers), batch)
    assert count == 50 and len(grads) == len(list(policy.model.parameters()))
    assert same_weights(before, policy.get_weights())  # computing alone changes nothing
    assert "total_loss" in metrics.info["learner"]["default_policy"]
    _, metrics = run_op(ApplyGradients(workers), (grads, count))
    assert (
        not same_weights(before, policy.get_weights())
        and metrics.counters[STEPS_TRAINED_COUNTER] == 50
    )


def test_async_gradients_without_remote_workers_computes_on_the_local_worker():
    workers = local_workers()
    plan = AsyncGradients(workers).for_each(ApplyGradients(workers, update_all=False))
    items = plan.take(2)
    assert [count for _, count in items] == [50, 50]
    counters = plan.shared_metrics.counters
    assert counters[STEPS_SAMPLED_COUNTER] == 100 and counters[STEPS_TRAINED_COUNTER] == 100


def test_update_target_network_fires_every_target_update_freq_steps():
    workers = local_workers(TargetPolicy)
    policy = workers.local_worker().get_policy()
    seen = []

    def sample_30_steps(item):
        get_shared_metrics().counters[STEPS_SAMPLED_COUNTER] += 30
        return item

    def record(item):
        seen.append((get_shared_metrics().counters[STEPS_SAMPLED_COUNTER], policy.target_updates))
        return item

    plan = (
        LocalIterator(range(10))
        .for_each(sample_30_steps)
        .for_each(UpdateTargetNetwork(workers, 100))
        .for_each(record)
    )
    plan.take(10)
    fired_at = [
        steps
        for (steps, updates), (_, before) in zip(seen, [(0, 0), *seen], strict=False)
        if updates > before
    ]
    assert fired_at == [120, 240] and policy.target_updates == 2
    assert (
        plan.shared_metrics.counters[LAST_TARGET_UPDATE_TS] == 240
        and plan.shared_metrics.counters[NUM_TARGET_UPDATES] == 2
    )
    by_trained = (
        LocalIterator(range(10))
        .for_each(sample_30_steps)
        .for_each(UpdateTargetNetwork(workers, 100, by_steps_trained=True))
    )
    by_trained.take(10)
    assert policy.target_updates == 2  # nothing was trained


# --- replay operators -----------------------------------------------------------------------------


def test_replay_is_not_ready_until_learning_starts_and_never_blocks_storing():
    buffer = ReplayBuffer(1000, seed=0)
    pieces = [SampleBatch(x=np.arange(20 * i, 20 * (i + 1))) for i in range(6)]
    store_op = LocalIterator(pieces).for_each(StoreToReplayBuffer(local_buffer=buffer))
    replay_op = Replay(local_buffer=buffer, replay_batch_size=8, learning_starts=30)
    assert isinstance(next(replay_op), NextValueNotReady)
    sizes_when_replayed = []
    train_op = replay_op.for_each(lambda batch: sizes_when_replayed.append(len(buffer)) or batch)
    replayed = Concurrently([store_op, train_op], mode="round_robin", output_indexes=[1]).take(3)
    assert sizes_when_replayed == [40, 60, 80]
    assert all(
        b.count == 8 and b["x"].max() < size
        for b, size in zip(replayed, sizes_when_replayed, strict=True)
    )


def test_update_priorities_uses_the_td_errors_of_the_replayed_rows():
    buffer = PrioritizedReplayBuffer(50, alpha=0.5, eps=0.01, seed=0)
    buffer.add(SampleBatch(x=np.arange(50)))
    batch = buffer.sample(10)
    td_error = batch["batch_indexes"] * 2.0 - 40  # the same value for a row sampled twice
    item = (batch, {"default_policy": {"learner_stats": {}, "td_error": td_error}})
    assert UpdatePriorities(buffer)(item) is item
    priorities = buffer.get_state()["priorities"]
    np.testing.assert_allclose(priorities[batch["batch_indexes"]], (np.abs(td_error) + 0.01) ** 0.5)
    untouched = np.setdiff1d(np.arange(50), batch["batch_indexes"])
    np.testing.assert_allclose(priorities[untouched], 1.0)
    assert UpdatePriorities(ReplayBuffer(5))(item) is item  # uniform buffer: nothing to do
    with pytest.raises(KeyError, match="batch_indexes"):
        UpdatePriorities(buffer)((SampleBatch(x=[1]), {"default_policy": {"td_error": [0.5]}}))


def test_store_to_replay_buffer_explains_multi_policy_batches():
    rows = SampleBatch(x=np.zeros(3))
    buffer = ReplayBuffer(10)
    StoreToReplayBuffer(local_buffer=buffer)(MultiAgentBatch({"only": rows}, 3))
    assert len(buffer) == 3
    with pytest.raises(TypeError, match="SelectExperiences"):
        StoreToReplayBuffer(local_buffer=buffer)(MultiAgentBatch({"a": rows, "b": rows}, 3))


# --- Concurrently ---------------------------------------------------------------------------------


def recorded_source(name, n, pulled):
    return LocalIterator([f"{name}{i}" for i in range(n)]).for_each(lambda x: pulled.append(x) or x)


def test_concurrently_round_robin_pulls_every_op_but_outputs_only_the_chosen():
    pulled = []
    out = Concurrently(
        [recorded_source("a", 4, pulled), recorded_source("b", 2, pulled)], output_indexes=[1]
    ).take(10)
    assert out == ["b0", "b1"]
    assert pulled == ["a0", "b0", "a1", "b1", "a2", "a3"]


def test_concurrently_round_robin_weights_and_skipped_not_ready_items():
    pulled = []
    weighted = Concurrently(
        [recorded_source("a", 4, pulled), recorded_source("b", 4, pulled)],
        round_robin_weights=[2, 1],
    )
    assert weighted.take(6) == ["a0", "a1", "b0", "a2", "a3", "b1"]
    flaky = LocalIterator(["x0", NextValueNotReady(), "x1"])
    assert Concurrently([flaky, LocalIterator(["y0", "y1", "y2"])]).take(10) == [
        "x0",
        "y0",
        "y1",
        "x1",
        "y2",
    ]


def test_concurrently_shares_one_metrics_context_between_separately_built_ops():
    def count(name):
        def counter(item):
            get_shared_metrics().counters[name] += 1
            return item

        return counter

    a, b = (
        LocalIterator(range(3)).for_each(count("a")),
        LocalIterator(range(3)).for_each(count("b")),
    )
    merged = Concurrently([a, b])
    merged.take(6)
    assert a.shared_metrics is b.shared_metrics is merged.shared_metrics
    assert dict(merged.shared_metrics.counters) == {"a": 3, "b": 3}


def test_concurrently_async_delivers_everything_and_its_threads_stop_when_closed():
    merged = Concurrently([LocalIterator(range(5)), LocalIterator(range(100, 105))], mode="async")
    assert sorted(merged.take(10)) == [0, 1, 2, 3, 4, 100, 101, 102, 103, 104]
    endless = Concurrently(
        [LocalIterator(itertools.count()), LocalIterator(itertools.count(1000))], mode="async"
    )
    assert len(endless.take(5)) == 5
    endless.close()
    for thread in [
        t for t in threading.enumerate() if t.name.startswith("course_lib-concurrently-")
    ]:
        thread.join(timeout=10)
        assert not thread.is_alive()


def test_concurrently_async_raises_the_error_of_a_failing_op():
    def broken(x):
        raise ZeroDivisionError("boom")

    merged = Concurrently(
        [LocalIterator(range(3)).for_each(broken), LocalIterator(itertools.count())], mode="async"
    )
    with pytest.raises(ZeroDivisionError, match="boom"):
        merged.take(1000)
    merged.close()


def test_concurrently_explains_bad_arguments():
    ops = [LocalIterator([1]), LocalIterator([2])]
    with pytest.raises(ValueError, match="'parallel'.*round_robin"):
        Concurrently(ops, mode="parallel")
    with pytest.raises(ValueError, match=r"\[2\].*0\.\.1"):
        Concurrently(ops, output_indexes=[2])
    with pytest.raises(ValueError, match="only apply to mode='round_robin'"):
        Concurrently(ops, mode="async", round_robin_weights=[1, 1])
    with pytest.raises(TypeError, match=r"ops\[1\] is a list"):
        Concurrently([ops[0], [1, 2]])


# --- StandardMetricsReporting and the A2C plan ----------------------------------------------------


def a2c_plan(workers, config):
    rollouts = ParallelRollouts(workers, mode="bulk_sync")
    train_op = rollouts.combine(ConcatBatches(min_batch_size=config["train_batch_size"])).for_each(
        TrainOneStep(workers)
    )
    return StandardMetricsReporting(train_op, workers, config)


def test_the_a2c_plan_reports_results_with_the_standard_keys():
    config = {"train_batch_size": 120}
    first, second = a2c_plan(local_workers(), config).take(2)
    for key in (
        "episode_reward_mean",
        "episode_len_mean",
        "episodes_this_iter",
        "timesteps_total",
        "timesteps_this_iter",
        "agent_timesteps_total",
        "num_healthy_workers",
        "info",
        "timers",
    ):
        assert key in second, key
    assert (
        first["timesteps_total"] == first["timesteps_this_iter"] == 150
    )  # three fragments of 50 reach 120
    assert second["timesteps_total"] - first["timesteps_total"] >= config["train_batch_size"]
    assert "total_loss" in second["info"]["learner"]["default_policy"]
    assert second["info"][STEPS_TRAINED_COUNTER] == 300 and second["num_healthy_workers"] == 0
    assert {"sample_time_ms", "learn_time_ms"} <= set(second["timers"])
    assert second["episode_reward_mean"] > 0


def test_metrics_reporting_pulls_until_timesteps_per_iteration():
    config = {"train_batch_size": 50, "timesteps_per_iteration": 120}
    results = a2c_plan(local_workers(), config).take(2)
    assert [r["timesteps_this_iter"] for r in results] == [150, 150]


def test_episode_statistics_are_smoothed_over_a_window_across_iterations():
    config = {"train_batch_size": 50, "metrics_smoothing_episodes": 3}
    results = a2c_plan(local_workers(env_config={"max_steps": 10}), config).take(2)
    for result in results:
        assert result["episodes_this_iter"] >= 4
        assert (
            len(result["hist_stats"]["episode_reward"]) == 3 and result["episode_reward_max"] <= 10
        )
    assert (
        results[1]["episodes_total"]
        == results[0]["episodes_this_iter"] + results[1]["episodes_this_iter"]
    )


# --- with remote workers --------------------------------------------------------------------------

REMOTE_CONFIG = {
    "rollout_fragment_length": 20,
    "seed": 0,
    "model": {"fcnet_hiddens": [16]},
    "num_cpus_per_worker": 0.5,
}


@pytest.fixture(scope="module")
def remote_workers(ray_session):
    workers = WorkerSet(
        env_creator=cartpole,
        policy_class=PGTorchPolicy,
        trainer_config=REMOTE_CONFIG,
        num_workers=2,
    )
    yield workers
    workers.stop()


def remote_weights(ray, actor) -> dict:
    return ray.get(actor.get_weights.remote())["default_policy"]


def test_bulk_sync_and_raw_rollouts_sample_every_remote_worker(remote_workers):
    rollouts = ParallelRollouts(remote_workers, mode="bulk_sync")
    [batch] = rollouts.take(1)
    assert batch.count == 40 and rollouts.shared_metrics.counters[STEPS_SAMPLED_COUNTER] == 40
    [pieces] = ParallelRollouts(remote_workers, mode="raw").take(1)
    assert [piece.count for piece in pieces] == [20, 20]
    assert not set(pieces[0]["eps_id"]) & set(pieces[1]["eps_id"])


def test_async_rollouts_yield_single_worker_batches_and_name_the_worker(remote_workers):
    actors = []
    rollouts = ParallelRollouts(remote_workers, mode="async", num_async=2)
    batches = rollouts.for_each(
        lambda b: actors.append(get_shared_metrics().current_actor) or b
    ).take(4)
    assert [b.count for b in batches] == [20] * 4
    assert set(actors) <= set(remote_workers.remote_workers()) and None not in actors
    assert rollouts.shared_metrics.counters[STEPS_SAMPLED_COUNTER] == 80


def test_train_one_step_sends_weights_and_timestep_to_remote_workers(ray_session, remote_workers):
    plan = ParallelRollouts(remote_workers, mode="bulk_sync").for_each(TrainOneStep(remote_workers))
    before = weights_of(remote_workers.local_worker().get_policy())
    plan.take(1)
    local = remote_workers.local_worker().get_policy().get_weights()
    assert not same_weights(before, local)
    for actor in remote_workers.remote_workers():
        assert same_weights(local, remote_weights(ray_session, actor))
        assert ray_session.get(actor.apply.remote(lambda w: w.get_policy().global_timestep)) == 40
    assert plan.shared_metrics.timers["update"].count == 1


def test_apply_gradients_without_update_all_updates_only_the_current_actor(
    ray_session, remote_workers
):
    remote_workers.sync_weights()
    old = weights_of(remote_workers.local_worker().get_policy())
    plan = AsyncGradients(remote_workers).for_each(ApplyGradients(remote_workers, update_all=False))
    [(_, count)] = plan.take(1)
    new = remote_workers.local_worker().get_policy().get_weights()
    assert count == 20 and not same_weights(old, new)
    current = plan.shared_metrics.current_actor
    [other] = [actor for actor in remote_workers.remote_workers() if actor != current]
    assert same_weights(new, remote_weights(ray_session, current))
    assert same_weights(old, remote_weights(ray_session, other))
    assert plan.shared_metrics.counters[STEPS_TRAINED_COUNTER] == 20


def test_apply_gradients_for_one_actor_needs_a_current_actor(remote_workers):
    grads = [
        np.zeros_like(p.detach().numpy())
        for p in remote_workers.local_worker().get_policy().model.parameters()
    ]
    with pytest.raises(RuntimeError, match="no worker is recorded as current_actor"):
        run_op(ApplyGradients(remote_workers, update_all=False), (grads, 0))


def test_the_a2c_plan_runs_on_remote_workers(remote_workers):
    [result] = a2c_plan(remote_workers, {"train_batch_size": 100}).take(1)
    assert result["timesteps_this_iter"] == 120 and result["num_healthy_workers"] == 2
