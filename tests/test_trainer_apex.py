"""Ape-X DQN (course_lib.agents.dqn.apex) and its replay shards (course_lib.execution.replay_actor):
sharded prioritized replay on Ray actors, per-worker epsilons, worker-side priorities, and
learning CartPole on two Ray rollout workers."""

from __future__ import annotations

import pathlib

import gymnasium as gym
import numpy as np
import pytest
import ray
import yaml

from course_lib.agents import get_trainer_class
from course_lib.agents.dqn import DQNTorchPolicy
from course_lib.agents.dqn.apex import (
    DEFAULT_CONFIG,
    ApexTrainer,
    execution_plan,
    learner_networks,
    load_learner_networks,
    put_sample_with_td_errors,
)
from course_lib.execution import LocalIterator, ReplayActor, ReplayFromActors
from course_lib.execution.replay_actor import (
    REPLAY_SHARD_SEED_OFFSET,
    TD_ERRORS,
    UpdateReplayActorPriorities,
    create_replay_actors,
    stop_actors_on_close,
)
from course_lib.exploration.per_worker_epsilon_greedy import apex_epsilon
from course_lib.sample_batch import SampleBatch

TUNED_EXAMPLE = pathlib.Path(__file__).parents[1] / "tuned_examples" / "apex-cartpole.yaml"


def rows(values, td_errors=None) -> SampleBatch:
    """A batch whose row i has obs ``[values[i]]``, so replayed rows say where they came from."""
    values = np.asarray(values, dtype=np.float32)
    columns = {"obs": values[:, None], "actions": np.zeros(len(values), dtype=np.int64)}
    if td_errors is not None:
        columns[TD_ERRORS] = np.asarray(td_errors, dtype=np.float32)
    return SampleBatch(columns)


def replayed_obs(shard, times: int) -> np.ndarray:
    """The obs of ``times`` replayed batches of ``shard``, concatenated."""
    batches = ray.get([shard.replay.remote() for _ in range(times)])
    return np.concatenate([b["obs"][:, 0] for b in batches])


def test_apex_is_registered_with_its_plan_and_per_worker_exploration():
    assert get_trainer_class("APEX") is ApexTrainer
    assert ApexTrainer.build_args["execution_plan"] is execution_plan
    assert ApexTrainer._default_policy is DQNTorchPolicy
    assert DEFAULT_CONFIG["num_workers"] == 2
    assert DEFAULT_CONFIG["exploration_config"]["type"] == "PerWorkerEpsilonGreedy"
    assert DEFAULT_CONFIG["n_step"] == 3


def test_apex_without_remote_workers_says_to_add_some():
    with pytest.raises(ValueError, match="num_workers >= 1"):
        ApexTrainer(config={"num_workers": 0}, env="CartPole-v1")


def test_apex_refuses_uniform_replay_and_names_the_setting():
    with pytest.raises(ValueError, match="prioritized_replay_alpha': 0"):
        ApexTrainer(config={"prioritized_replay": False}, env="CartPole-v1")


def test_worker_td_errors_are_the_learners_before_its_step():
    """compute_td_error is the loss's TD error: learn_on_batch reports the same one, computed
    before its gradient step."""
    env = gym.make("CartPole-v1")
    policy = DQNTorchPolicy(
        env.observation_space, env.action_space, {"model": {"fcnet_hiddens": [16]}, "n_step": 1}
    )
    rng = np.random.default_rng(0)
    batch = SampleBatch(
        {
            "obs": rng.normal(size=(8, 4)).astype(np.float32),
            "new_obs": rng.normal(size=(8, 4)).astype(np.float32),
            "actions": rng.integers(0, 2, 8),
            "rewards": np.ones(8, dtype=np.float32),
            "terminateds": np.zeros(8, dtype=bool),
            "discounts": np.full(8, 0.99, dtype=np.float32),
        }
    )
    before = policy.compute_td_error(batch)
    learned = policy.learn_on_batch(batch)["td_error"]
    np.testing.assert_allclose(before, learned, rtol=1e-6)
    assert not np.allclose(policy.compute_td_error(batch), before)  # the step changed Q


def test_replay_waits_for_learning_starts_rows_in_its_shard(ray_session):
    # 20 rows to start over 2 shards: each shard starts at 10.
    shards = create_replay_actors(2, buffer_size=200, replay_batch_size=4, learning_starts=20)
    try:
        ray.get(shards[0].add.remote(rows(range(9))))
        assert ray.get(shards[0].replay.remote()) is None
        ray.get(shards[0].add.remote(rows([9])))
        batch = ray.get(shards[0].replay.remote())
        assert batch.count == 4 and {"weights", "batch_indexes"} <= set(batch.columns)
        assert ray.get(shards[1].replay.remote()) is None  # the other holds nothing yet
        stats = ray.get([s.stats.remote() for s in shards])
        assert [s["capacity"] for s in stats] == [100, 100]
        assert [s["num_entries"] for s in stats] == [10, 0]
        assert stats[0]["replayed_count"] == 4
    finally:
        for shard in shards:
            ray.kill(shard)


def test_replay_samples_rows_in_proportion_to_the_workers_td_errors(ray_session):
    """With alpha 1 and eps 0, row i is drawn with probability |td_i| / sum |td|, and its weight
    is (N * P(i)) ** -beta over the largest weight."""
    shard = ReplayActor.as_remote().remote(
        capacity=400, replay_batch_size=400, alpha=1.0, beta=0.5, eps=0.0, seed=3
    )
    try:
        # 4 groups of 100 rows (obs = group), with |TD errors| 1, 2, 3, 4 (the sign does not
        # matter).
        group = np.repeat(np.arange(4), 100)
        ray.get(shard.add.remote(rows(group, td_errors=np.array([1.0, -2.0, 3.0, -4.0])[group])))
        batches = ray.get([shard.replay.remote() for _ in range(30)])
        drawn = np.concatenate([b["obs"][:, 0] for b in batches]).astype(int)
        expected = np.array([1, 2, 3, 4]) / 10
        frequencies = np.bincount(drawn, minlength=4) / len(drawn)
        np.testing.assert_allclose(frequencies, expected, atol=0.02)  # 12,000 draws: sd < 0.005
        assert TD_ERRORS not in batches[0]  # a priority, not a column to store
        # N * P(i) = 400 * expected[g] / 100 for a row of group g.
        weights = (4 * expected) ** -0.5
        np.testing.assert_allclose(
            batches[0]["weights"],
            (weights / weights.max())[batches[0]["obs"][:, 0].astype(int)],
            rtol=1e-5,
        )
    finally:
        ray.kill(shard)


def test_new_priorities_go_to_the_shard_that_replayed_the_batch(ray_session):
    """ReplayFromActors tags each batch with its shard; UpdateReplayActorPriorities changes that
    shard's priorities and no other's."""
    shards = create_replay_actors(
        2, buffer_size=16, replay_batch_size=8, alpha=1.0, eps=1e-6, seed=0
    )
    try:
        # Shard 0 holds obs 0-7, shard 1 obs 10-17, all with priority 1.
        ray.get([shards[0].add.remote(rows(range(8))), shards[1].add.remote(rows(range(10, 18)))])
        replayed = ReplayFromActors(shards, num_async=2)
        items = replayed.take(6)
        for shard, batch in items:
            offset = 10 * shards.index(shard)
            assert set(batch["obs"][:, 0]) <= set(range(offset, offset + 8))
        replayed.close()

        # The learner's TD errors for a batch of shard 1: row 3 of that shard gets all the weight.
        trained = rows(range(10, 18))
        trained["batch_indexes"] = np.arange(8)
        learner_info = {"default_policy": {"td_error": np.where(np.arange(8) == 3, 100.0, 0.0)}}
        UpdateReplayActorPriorities()((shards[1], trained, learner_info))
        from_1, from_0 = replayed_obs(shards[1], 10), replayed_obs(shards[0], 10)
        assert np.mean(from_1 == 13) > 0.99
        # Shard 0 still draws its 8 rows evenly (80 draws: each 10 on average).
        assert np.bincount(from_0.astype(int), minlength=8).max() < 25
    finally:
        for shard in shards:
            ray.kill(shard)


def test_each_shard_draws_with_its_own_seed(ray_session):
    shards = create_replay_actors(2, buffer_size=64, replay_batch_size=16, seed=7)
    try:
        ray.get([s.add.remote(rows(range(32))) for s in shards])
        stats = ray.get([s.stats.remote() for s in shards])
        assert [s["seed"] for s in stats] == [
            7 + REPLAY_SHARD_SEED_OFFSET,
            8 + REPLAY_SHARD_SEED_OFFSET,
        ]
        draws = [replayed_obs(s, 4) for s in shards]
        assert not np.array_equal(draws[0], draws[1])  # same rows, different draws
    finally:
        for shard in shards:
            ray.kill(shard)
    # The same seed draws the same rows again (here in this process, without Ray).
    again = ReplayActor(capacity=32, replay_batch_size=16, seed=7 + REPLAY_SHARD_SEED_OFFSET)
    again.add(rows(range(32)))
    np.testing.assert_array_equal(
        np.concatenate([again.replay()["obs"][:, 0] for _ in range(4)]), draws[0]
    )


def test_closing_the_plan_kills_its_replay_actors(ray_session):
    shard = ReplayActor.as_remote().remote(capacity=8, replay_batch_size=1)
    plan = stop_actors_on_close(LocalIterator([1, 2, 3]), [shard])
    assert next(plan) == 1
    plan.close()
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(shard.stats.remote(), timeout=30)


def exploration_epsilon(worker) -> float:
    return worker.get_policy().exploration.epsilon()


def non_greedy_share(worker) -> float:
    """Share of one fresh sample's actions that are not the argmax of the recorded Q-values."""
    batches = [worker.sample() for _ in range(20)]
    actions = np.concatenate([b["actions"] for b in batches])
    greedy = np.concatenate([b["q_values"].argmax(axis=1) for b in batches])
    return float(np.mean(actions != greedy))


def target_weights(worker) -> dict:
    return worker.get_policy().get_target_weights()


def test_workers_explore_with_their_own_epsilon_and_take_the_learners_networks(
    ray_session, tmp_path
):
    trainer = ApexTrainer(
        config={
            "env": "CartPole-v1",
            "seed": 0,
            "learning_starts": 256,
            "timesteps_per_iteration": 512,
            "training_intensity": 4,
            "logger_config": {"logdir": str(tmp_path)},
        }
    )
    try:
        workers = trainer.workers.remote_workers()
        # Ape-X's epsilons, read back from the worker processes: 0.4 and 0.4 ** 8.
        epsilons = ray.get([w.apply.remote(exploration_epsilon) for w in workers])
        assert epsilons == pytest.approx([apex_epsilon(1, 2), apex_epsilon(2, 2)])
        assert epsilons == pytest.approx([0.4, 0.4**8])
        # ...and used: with 2 actions, a random action is not the greedy one half the time.
        shares = ray.get([w.apply.remote(non_greedy_share) for w in workers])  # 1,280 steps each
        assert 0.15 < shares[0] < 0.25, shares
        assert shares[1] < 0.01, shares

        # Round robin: both shards get rows, and the learner replays from both (a shard's first
        # answers may be from requests sent before it had enough rows, so allow a few rounds).
        for _ in range(5):
            result = trainer.train()
            shard_stats = result["info"]["replay_shards"]
            if all(s["replayed_count"] > 0 for s in shard_stats):
                break
        assert len(shard_stats) == 2
        assert all(s["num_entries"] > 0 and s["replayed_count"] > 0 for s in shard_stats), (
            shard_stats
        )
        assert result["info"]["num_steps_trained"] > 0
        assert [i["cur_epsilon"] for i in result["info"]["exploration_infos"]] == pytest.approx(
            epsilons
        )

        # A worker's TD errors come with its batch, from the learner's networks once sent.
        local = trainer.workers.local_worker()
        local.get_policy().update_target()
        ray.get(workers[0].apply.remote(load_learner_networks, learner_networks(local), {}))
        remote_target = ray.get(workers[0].apply.remote(target_weights))
        for name, value in local.get_policy().get_target_weights().items():
            np.testing.assert_array_equal(remote_target[name], value)
        batch_ref, steps, _ = ray.get(workers[0].apply.remote(put_sample_with_td_errors))
        batch = ray.get(batch_ref)
        assert batch[TD_ERRORS].shape == (steps,)
        np.testing.assert_allclose(
            batch[TD_ERRORS],
            local.get_policy().compute_td_error(
                SampleBatch({k: v for k, v in batch.items() if k != TD_ERRORS})
            ),
            rtol=1e-4,
            atol=1e-5,
        )
    finally:
        trainer.stop()


@pytest.mark.slow
def test_apex_solves_cartpole_on_two_workers(ray_session, tmp_path):
    """tuned_examples/apex-cartpole.yaml reaches a greedy 20-episode mean return >= 475 within
    150k env steps on 2 Ray rollout workers.

    What is measured: the trainer's evaluation (20 episodes with ``explore: False`` after each
    iteration), not the workers' own episodes. One worker explores with epsilon 0.4, so the
    workers' 20-episode mean stayed near 150-300 when the greedy policy already scored 475+.
    Measured: 475 after 25-45k env steps (median 38k; 9 runs, seeds 0-5), 35-58 s for this test
    on the busy 2-core machine; the order in which worker batches arrive varies, so runs differ
    even with one seed. The budget leaves more than 3x the slowest run.
    """
    [experiment] = yaml.safe_load(TUNED_EXAMPLE.read_text()).values()
    budget = experiment["stop"]["timesteps_total"]
    trainer = ApexTrainer(
        config={**experiment["config"], "seed": 0, "logger_config": {"logdir": str(tmp_path)}},
        env=experiment["env"],
    )
    greedy_means = []
    try:
        assert len(trainer.workers.remote_workers()) == 2
        while True:
            result = trainer.train()
            greedy_means.append(result["evaluation"]["episode_reward_mean"])
            if greedy_means[-1] >= 475 or result["timesteps_total"] >= budget:
                break
    finally:
        trainer.stop()
    assert result["evaluation"]["episodes_this_iter"] == 20
    assert greedy_means[-1] >= 475, (
        f"Greedy 20-episode means per iteration: {[round(m) for m in greedy_means]} "
        f"({result['timesteps_total']} env steps)"
    )
