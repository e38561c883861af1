"""RolloutWorker and WorkerSet: what they sample, how they seed, and how they survive failures."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from course_lib.callbacks import DefaultCallbacks, MultiCallbacks
from course_lib.evaluation import (
    MeanStdFilter,
    MultiAgentSampler,
    RolloutWorker,
    RunningStat,
    SingleAgentSampler,
    WorkerSet,
    collect_metrics,
    summarize_episodes,
)
from course_lib.policy import PGTorchPolicy
from course_lib.sample_batch import SampleBatch


def cartpole(env_config):
    return gym.make("CartPole-v1", max_episode_steps=env_config.get("max_steps", 500))


def worker(**config):
    base = {
        "num_envs_per_worker": 2,
        "rollout_fragment_length": 50,
        "seed": 0,
        "model": {"fcnet_hiddens": [16]},
    }
    return RolloutWorker(
        env_creator=cartpole, policy_class=PGTorchPolicy, config={**base, **config}
    )


def test_sample_returns_fragment_length_steps_per_env_with_the_policy_columns():
    batch = worker().sample()
    assert batch.count == 100
    for column in (
        "obs",
        "new_obs",
        "actions",
        "rewards",
        "terminateds",
        "truncateds",
        "eps_id",
        "t",
        "action_logp",
        "vf_preds",
        "advantages",
    ):
        assert column in batch, column
    assert batch["obs"].shape == (100, 4)


def test_rows_of_one_episode_are_consecutive_steps():
    batch = worker().sample()
    for piece in batch.split_by_episode():
        np.testing.assert_array_equal(np.diff(piece["t"]), 1)
        np.testing.assert_array_equal(piece["obs"][1:], piece["new_obs"][:-1])


def test_the_same_seed_gives_identical_samples():
    a, b = worker(seed=3).sample(), worker(seed=3).sample()
    for column in ("obs", "actions", "rewards", "eps_id", "action_logp"):
        np.testing.assert_array_equal(a[column], b[column])
    assert not np.array_equal(a["obs"], worker(seed=4).sample()["obs"])


def test_workers_with_different_indices_see_different_episodes():
    config = {
        "num_envs_per_worker": 1,
        "rollout_fragment_length": 30,
        "seed": 0,
        "model": {"fcnet_hiddens": [16]},
    }
    first = RolloutWorker(
        env_creator=cartpole, policy_class=PGTorchPolicy, config=config, worker_index=1
    ).sample()
    second = RolloutWorker(
        env_creator=cartpole, policy_class=PGTorchPolicy, config=config, worker_index=2
    ).sample()
    assert not np.array_equal(first["obs"][0], second["obs"][0])


def test_truncate_episodes_cuts_at_the_fragment_and_continues_next_call():
    w = worker(num_envs_per_worker=1, rollout_fragment_length=7)
    first, second = w.sample(), w.sample()
    last = first.split_by_episode()[-1]
    assert not last["terminateds"][-1] and not last["truncateds"][-1]  # cut mid-episode
    assert second["eps_id"][0] == last["eps_id"][-1] and second["t"][0] == last["t"][-1] + 1


def test_complete_episodes_never_cuts_an_episode():
    batch = worker(batch_mode="complete_episodes", rollout_fragment_length=30).sample()
    assert batch.count >= 60
    for piece in batch.split_by_episode():
        assert piece["terminateds"][-1] or piece["truncateds"][-1]
        assert piece["t"][0] == 0


def test_time_limit_truncation_is_recorded_as_truncated():
    batch = worker(
        env_config={"max_steps": 5}, num_envs_per_worker=1, rollout_fragment_length=20
    ).sample()
    ends = batch["truncateds"]
    assert ends.sum() >= 1 and not (ends & batch["terminateds"]).any()
    assert set(batch["t"][ends]) == {4}


def test_metrics_report_finished_episodes():
    w = worker(env_config={"max_steps": 10}, rollout_fragment_length=40)
    w.sample()
    result = collect_metrics(w)
    assert result["episodes_this_iter"] >= 8
    assert result["episode_len_mean"] <= 10 and result["episode_reward_max"] <= 10
    assert result["policy_reward_mean"]["default_policy"] == pytest.approx(
        result["episode_reward_mean"]
    )
    assert collect_metrics(w)["episodes_this_iter"] == 0  # metrics are handed over once


def test_weights_move_between_workers():
    a, b = worker(seed=1), worker(seed=2)
    b.set_weights(a.get_weights())
    obs = np.zeros((1, 4), np.float32)
    assert np.allclose(a.get_policy().compute_values(obs), b.get_policy().compute_values(obs))


def test_a_worker_holds_one_sampler_of_its_kind():
    assert isinstance(worker().sampler, SingleAgentSampler)
    two_policies = {"a": (None, None, None, {}), "b": (None, None, None, {})}
    assert isinstance(worker(multiagent={"policies": two_policies}).sampler, MultiAgentSampler)


def test_the_sampler_draws_episode_ids_from_the_rng_and_reports_to_the_metrics_list_it_is_given():
    w = worker(env_config={"max_steps": 10}, num_envs_per_worker=1, rollout_fragment_length=25)
    metrics = []
    sampler = SingleAgentSampler(w, w.envs, [5], rng=np.random.default_rng(42), metrics=metrics)
    batch = sampler.sample()
    ended = int((batch["terminateds"] | batch["truncateds"]).sum())
    episode_ids = [int(i) for i in dict.fromkeys(batch["eps_id"])]  # in order of appearance
    assert ended >= 2 and len(episode_ids) == ended + 1
    rng = np.random.default_rng(42)
    assert episode_ids == [int(rng.integers(2**62)) for _ in episode_ids]
    assert len(metrics) == ended and all(m.episode_length <= 10 for m in metrics)
    assert len(sampler.get_metrics()) == ended and metrics == [] and sampler.get_metrics() == []


def test_a_restored_worker_continues_the_episodes_exactly():
    config = {"observation_filter": "MeanStdFilter", "rollout_fragment_length": 33}
    original = worker(**config)
    original.sample()
    state = original.get_state()
    torch_rng = (
        torch.get_rng_state()
    )  # actions are sampled from it: a trainer's checkpoint saves it
    expected = original.sample()
    restored = worker(**config, seed=5)
    restored.set_state(state)
    torch.set_rng_state(torch_rng)
    got = restored.sample()
    for column in ("obs", "actions", "rewards", "eps_id", "t", "action_logp"):
        np.testing.assert_array_equal(got[column], expected[column])


def test_running_stat_merge_equals_one_stream():
    rng = np.random.default_rng(0)
    data = rng.normal(3.0, 2.0, (100, 3))
    whole, left, right = RunningStat((3,)), RunningStat((3,)), RunningStat((3,))
    whole.push_batch(data)
    left.push_batch(data[:37])
    right.push_batch(data[37:])
    left.merge(right)
    np.testing.assert_allclose(left.mean, data.mean(axis=0))
    np.testing.assert_allclose(left.std, data.std(axis=0, ddof=1))
    np.testing.assert_allclose(whole.m2, left.m2)


def test_mean_std_filter_normalizes_observations():
    w = worker(observation_filter="MeanStdFilter", rollout_fragment_length=200)
    batch = w.sample()
    filt = w.filters["default_policy"]
    episode_starts = 2 + int((batch["terminateds"] | batch["truncateds"]).sum())
    assert (
        isinstance(filt, MeanStdFilter) and filt.stats.count == 400 + episode_starts
    )  # every step and reset
    assert np.abs(batch["obs"][100:].mean(axis=0)).max() < 0.5  # once the statistics settle
    with pytest.raises(ValueError, match="needs a Box observation space"):
        RolloutWorker(
            env_creator=lambda c: gym.make("FrozenLake-v1"),
            policy_class=PGTorchPolicy,
            config={"observation_filter": "MeanStdFilter"},
        )


def test_bad_config_values_are_explained():
    with pytest.raises(ValueError, match="batch_mode"):
        worker(batch_mode="complete")
    with pytest.raises(ValueError, match="rollout_fragment_length"):
        worker(rollout_fragment_length=0)


class Recorder(DefaultCallbacks):
    """Logs every hook in order; counts steps per episode into custom metrics."""

    def __init__(self):
        self.log = []

    def on_episode_start(self, *, episode, env_index, **kwargs):
        self.log.append(("start", episode.episode_id))
        episode.user_data["steps"] = 0

    def on_episode_step(self, *, episode, **kwargs):
        episode.user_data["steps"] += 1

    def on_episode_end(self, *, episode, **kwargs):
        self.log.append(("end", episode.episode_id))
        episode.custom_metrics["steps"] = episode.user_data["steps"]
        episode.hist_data["len"] = [episode.length]

    def on_postprocess_trajectory(self, *, postprocessed_batch, **kwargs):
        self.log.append(("postprocess", int(postprocessed_batch["eps_id"][0])))
        postprocessed_batch["marker"] = np.ones(postprocessed_batch.count)

    def on_sample_end(self, *, samples, **kwargs):
        self.log.append(("sample_end", samples.count))


def test_callbacks_fire_in_order_and_feed_custom_metrics():
    w = worker(
        callbacks=Recorder,
        num_envs_per_worker=1,
        env_config={"max_steps": 6},
        rollout_fragment_length=12,
    )
    batch = w.sample()
    log = w.callbacks.log
    assert [kind for kind, _ in log[:2]] == ["start", "end"] and log[-1] == ("sample_end", 12)
    first_episode = log[0][1]
    assert ("postprocess", first_episode) in log and log.index(("end", first_episode)) < log.index(
        ("postprocess", first_episode)
    )
    assert (batch["marker"] == 1).all()
    result = collect_metrics(w)
    assert result["custom_metrics"]["steps_mean"] == 6 and result["hist_stats"]["len"] == [6, 6]


def test_multi_callbacks_runs_each_class():
    class Second(DefaultCallbacks):
        def on_episode_end(self, *, episode, **kwargs):
            episode.custom_metrics["second"] = 1.0

    w = worker(
        callbacks=MultiCallbacks([Recorder, Second]),
        env_config={"max_steps": 5},
        rollout_fragment_length=10,
    )
    w.sample()
    assert set(collect_metrics(w)["custom_metrics"]) >= {"steps_mean", "second_mean"}


def test_summarize_episodes_without_episodes_is_nan_not_an_error():
    result = summarize_episodes([])
    assert np.isnan(result["episode_reward_mean"]) and result["episodes_this_iter"] == 0


# --- WorkerSet on Ray ---------------------------------------------------------------------------

CONFIG = {
    "num_envs_per_worker": 1,
    "rollout_fragment_length": 20,
    "seed": 0,
    "model": {"fcnet_hiddens": [16]},
    "num_cpus_per_worker": 0.5,
}


def test_worker_set_samples_in_parallel_and_syncs_weights(ray_session):
    workers = WorkerSet(
        env_creator=cartpole, policy_class=PGTorchPolicy, trainer_config=CONFIG, num_workers=2
    )
    try:
        batch = workers.sample()
        assert batch.count == 40 and len(set(batch["eps_id"])) >= 2
        local = workers.local_worker()
        local.learn_on_batch(batch)
        workers.sync_weights()
        remote_weights = ray_session.get(workers.remote_workers()[0].get_weights.remote())
        for name, value in local.get_weights()["default_policy"].items():
            np.testing.assert_array_equal(value, remote_weights["default_policy"][name])
        assert workers.foreach_worker(lambda w: w.worker_index) == [0, 1, 2]
        assert workers.foreach_worker_with_index(lambda w, i: i) == [0, 1, 2]
    finally:
        workers.stop()


def test_a_killed_worker_is_recreated_and_sampling_continues(ray_session):
    workers = WorkerSet(
        env_creator=cartpole,
        policy_class=PGTorchPolicy,
        trainer_config={**CONFIG, "recreate_failed_workers": True},
        num_workers=2,
    )
    try:
        workers.sample()
        ray_session.kill(workers.remote_workers()[1])
        batch = workers.sample()
        assert batch.count == 40
        assert ray_session.get(workers.remote_workers()[1].ping.remote()) == "pong"
    finally:
        workers.stop()


def test_a_killed_worker_without_recreation_gives_a_clear_error(ray_session):
    workers = WorkerSet(
        env_creator=cartpole, policy_class=PGTorchPolicy, trainer_config=CONFIG, num_workers=1
    )
    try:
        ray_session.kill(workers.remote_workers()[0])
        with pytest.raises(RuntimeError, match=r"worker\(s\) \[1\] died.*recreate_failed_workers"):
            workers.sample()
    finally:
        workers.stop()


def test_filters_are_merged_across_workers(ray_session):
    workers = WorkerSet(
        env_creator=cartpole,
        policy_class=PGTorchPolicy,
        trainer_config={**CONFIG, "observation_filter": "MeanStdFilter"},
        num_workers=2,
    )
    try:
        workers.sample()
        workers.sync_filters()
        local = workers.local_worker().filters["default_policy"]
        assert local.stats.count >= 2 * (20 + 1)  # both workers' steps and resets
        remote_state = ray_session.get(
            workers.remote_workers()[0].apply.remote(
                lambda w: w.filters["default_policy"].get_state()
            )
        )
        np.testing.assert_allclose(remote_state["mean"], local.stats.mean)
    finally:
        workers.stop()


class FakeActorClass:
    """Stands in for ``ray.remote(...)(RolloutWorker)``: records how actors would be made."""

    def __init__(self, requests, resources):
        self.requests, self.resources = requests, resources

    def remote(self, **kwargs):
        self.requests.append({**self.resources, "worker_index": kwargs["worker_index"]})
        return kwargs["worker_index"]


def test_remote_workers_ask_ray_for_their_cpus_and_gpus(monkeypatch):
    import ray

    requests = []

    def as_remote(num_cpus=1, num_gpus=0, max_restarts=0, resources=None):
        return FakeActorClass(
            requests, {"num_cpus": num_cpus, "num_gpus": num_gpus, "resources": resources}
        )

    monkeypatch.setattr(RolloutWorker, "as_remote", as_remote)
    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    config = {**CONFIG, "num_cpus_per_worker": 2, "num_gpus_per_worker": 0.5}
    WorkerSet(
        env_creator=cartpole, policy_class=PGTorchPolicy, trainer_config=config, num_workers=2
    )
    assert requests == [
        {"num_cpus": 2, "num_gpus": 0.5, "resources": {}, "worker_index": 1},
        {"num_cpus": 2, "num_gpus": 0.5, "resources": {}, "worker_index": 2},
    ]


def test_remote_workers_ask_for_custom_resources_and_warn_when_no_node_has_them(monkeypatch):
    import ray

    requests = []

    def as_remote(num_cpus=1, num_gpus=0, max_restarts=0, resources=None):
        return FakeActorClass(requests, {"resources": resources})

    monkeypatch.setattr(RolloutWorker, "as_remote", as_remote)
    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    cluster = {"CPU": 4.0, "memory": 1e9, "node:127.0.0.1": 1.0, "simulator": 2.0}
    monkeypatch.setattr(ray, "cluster_resources", lambda: cluster)
    config = {**CONFIG, "custom_resources_per_worker": {"simulator": 1}}
    WorkerSet(
        env_creator=cartpole, policy_class=PGTorchPolicy, trainer_config=config, num_workers=2
    )
    assert [r["resources"] for r in requests] == [{"simulator": 1}, {"simulator": 1}]

    misspelt = {**CONFIG, "custom_resources_per_worker": {"simulater": 1}}
    with pytest.warns(
        UserWarning,
        match=r"\['simulater'\], which no node.*\(it has \['CPU', 'simulator'\]\).*"
        r"Did you mean 'simulator'",
    ):
        WorkerSet(
            env_creator=cartpole, policy_class=PGTorchPolicy, trainer_config=misspelt, num_workers=1
        )


def test_the_local_worker_does_not_sample_when_there_are_remote_workers(ray_session):
    workers = WorkerSet(
        env_creator=cartpole, policy_class=PGTorchPolicy, trainer_config=CONFIG, num_workers=1
    )
    try:
        with pytest.raises(RuntimeError, match="local worker does not sample"):
            workers.local_worker().sample()
    finally:
        workers.stop()


def test_sample_batches_are_sample_batch_objects():
    assert isinstance(worker().sample(), SampleBatch)
