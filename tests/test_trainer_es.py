"""Evolution strategies (course_lib.agents.es): the noise table in the object store, antithetic
pairs, centered ranks, the update on a known objective, the trainer's contract, and CartPole."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import ray
from gymnasium import spaces

from course_lib.agents import get_trainer_class
from course_lib.agents.config import merge_config
from course_lib.agents.es import DEFAULT_CONFIG, ESPolicy, ESTrainer, es
from course_lib.agents.es.es import (
    TaskSetup,
    centered_ranks,
    create_noise_table,
    es_step,
    estimate_gradient,
    play_antithetic_pairs,
    sample_offsets,
)
from course_lib.agents.es.es_policy import Adam
from course_lib.envs import get_env_creator
from course_lib.envs.multi_agent import MultiAgentEnv

RANDOM_RETURN = 22  # CartPole-v1, uniformly random actions


class BiasRewardEnv(gym.Env):
    """One step; the observation is zeros, the reward ``sum(action)`` plus a number drawn from the
    reset seed. With no hidden layers and a zero observation the action is the output bias, so
    ``theta +- sigma eps`` returns ``sum(bias(theta)) +- sigma * sum(bias(eps)) + that number``."""

    observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = spaces.Box(-1.0, 1.0, (3,), np.float32)
    # theta = [W (2 x 3), b (3,)]: the bias is entries 6, 7, 8.
    BIAS = slice(6, 9)

    def __init__(self, env_config=None):
        self.start_bonus = 0.0

    def reset(self, *, seed=None, options=None):
        self.start_bonus = float(np.random.default_rng(seed).uniform(0, 100))
        return np.zeros(2, np.float32), {}

    def step(self, action):
        return np.zeros(2, np.float32), float(np.sum(action)) + self.start_bonus, True, False, {}


def es_config(**overrides) -> dict:
    return merge_config(DEFAULT_CONFIG, overrides)


def bias_env_setup(pairs: int, **overrides) -> TaskSetup:
    settings = {
        "env": BiasRewardEnv,
        "model": {"fcnet_hiddens": []},
        "observation_filter": "NoFilter",
        "normalize_actions": False,
        "noise_stdev": 0.1,
    }
    config = es_config(**{**settings, **overrides})
    return TaskSetup(get_env_creator(BiasRewardEnv), BiasRewardEnv, config, pairs)


def test_es_is_registered_with_its_plan():
    assert get_trainer_class("ES") is ESTrainer
    assert ESTrainer.build_args["execution_plan"] is es.execution_plan
    assert ESTrainer._default_config["num_workers"] == 0


def test_noise_table_is_deterministic_from_its_seed():
    table = create_noise_table(200_000, seed=5)
    assert table.dtype == np.float32 and table.shape == (200_000,)
    assert np.array_equal(table, create_noise_table(200_000, seed=5))
    assert not np.array_equal(table[:100], create_noise_table(100, seed=6))
    # The same draws whatever the table's length: a slice depends on the seed and offset only.
    assert np.array_equal(table[:100], create_noise_table(100, seed=5))
    assert abs(table.mean()) < 0.01 and abs(table.std() - 1.0) < 0.01


def test_offsets_leave_room_for_a_whole_perturbation():
    offsets = sample_offsets(np.random.default_rng(0), noise_size=50, num_params=40, count=1000)
    assert offsets.min() == 0 and offsets.max() == 10


def test_centered_ranks_by_hand():
    # Sorted: 0 1 2 2 3 5 -> ranks 0 1 2.5 2.5 4 5 (the two 2s share theirs), / 5 - 0.5.
    returns = np.array([[1.0, 3.0], [2.0, 2.0], [5.0, 0.0]])
    expected = np.array([[-0.3, 0.3], [0.0, 0.0], [0.5, -0.5]])
    np.testing.assert_allclose(centered_ranks(returns), expected)
    # Only the order matters: any increasing map of the returns gives the same ranks.
    np.testing.assert_allclose(centered_ranks(1000 * returns**3 - 7), expected)


def test_gradient_estimate_by_hand():
    noise = np.arange(10, dtype=np.float32)
    offsets = np.array([0, 5])  # eps_0 = [0, 1, 2], eps_1 = [5, 6, 7]
    weights = np.array([[0.5, -0.5], [-0.1, 0.1]])  # differences 1.0 and -0.2
    # (1.0 * [0, 1, 2] - 0.2 * [5, 6, 7]) / (2 * 2 pairs * sigma 0.5)
    expected = np.array([-1.0, -0.2, 0.6]) / 2.0
    np.testing.assert_allclose(estimate_gradient(noise, offsets, weights, 3, 0.5), expected)


def test_es_step_climbs_a_quadratic_to_its_top():
    """ES on f(theta) = -|theta - t|^2, without an env, through the trainer's own update."""
    noise = create_noise_table(100_000, seed=0)
    rng = np.random.default_rng(0)
    target = np.linspace(-1.0, 1.0, 10).astype(np.float32)
    theta = np.zeros(10, np.float32)
    optimizer = Adam(10, stepsize=0.05)

    def objective(params):
        return -float(np.sum((params - target) ** 2))

    start_distance = np.linalg.norm(theta - target)
    for _ in range(150):
        offsets = sample_offsets(rng, len(noise), 10, count=20)
        eps = [noise[offset : offset + 10] for offset in offsets]
        returns = np.array(
            [[objective(theta + 0.05 * e), objective(theta - 0.05 * e)] for e in eps]
        )
        theta, stats = es_step(
            theta, optimizer, noise, offsets, returns, noise_stdev=0.05, l2_coeff=0.0
        )
    assert np.linalg.norm(theta - target) < 0.05 * start_distance, theta
    assert optimizer.t == 150 and stats["weights_norm"] == pytest.approx(np.linalg.norm(theta))


def test_weight_decay_pulls_theta_to_zero_when_returns_say_nothing():
    noise = create_noise_table(1000, seed=0)
    theta = np.full(4, 2.0, np.float32)
    optimizer = Adam(4, stepsize=0.01)
    for _ in range(50):
        # All returns equal: every rank is 0, so the gradient estimate is exactly zero.
        theta, stats = es_step(
            theta,
            optimizer,
            noise,
            np.array([0, 7]),
            np.ones((2, 2)),
            noise_stdev=0.1,
            l2_coeff=0.1,
        )
        assert stats["grad_norm"] == 0.0
    # Adam moves each parameter by about one step size per step, towards zero.
    np.testing.assert_allclose(theta, 1.5, atol=0.02)


def test_a_task_plays_antithetic_pairs_from_one_env_seed():
    noise = create_noise_table(10_000, seed=1)
    theta = np.linspace(-0.5, 0.5, 9).astype(np.float32)
    setup = bias_env_setup(pairs=5)
    result = play_antithetic_pairs(noise, theta, {}, setup, seed=42)
    assert result.offsets.shape == (5,) and result.returns.shape == (5, 2)
    assert np.array_equal(result.lengths, np.ones((5, 2)))
    assert result.obs_stats is None  # NoFilter: no statistics to send back
    # theta + sigma eps minus theta - sigma eps: 2 sigma sum(eps's bias), from the offsets sent
    # back, and nothing else, so both episodes of a pair started from the same env seed.
    eps_bias = np.array([noise[o : o + 9][BiasRewardEnv.BIAS].sum() for o in result.offsets])
    np.testing.assert_allclose(
        result.returns[:, 0] - result.returns[:, 1], 2 * 0.1 * eps_bias, rtol=1e-4, atol=1e-4
    )
    # The pair's mean is theta's own return plus the start bonus, which differs between pairs.
    bonus = result.returns.mean(axis=1) - theta[BiasRewardEnv.BIAS].sum()
    assert np.all((bonus > 0) & (bonus < 100)) and len(np.unique(bonus.round(6))) == 5
    # The same arguments give the same results: a task depends on nothing else.
    again = play_antithetic_pairs(noise, theta, {}, setup, seed=42)
    assert np.array_equal(again.returns, result.returns)


def test_a_task_sends_back_statistics_of_the_observations_it_saw():
    noise = create_noise_table(10_000, seed=1)
    setup = bias_env_setup(pairs=3, observation_filter="MeanStdFilter")
    filter_state = {"count": 0, "mean": np.zeros(2), "m2": np.zeros(2)}
    result = play_antithetic_pairs(noise, np.zeros(9, np.float32), filter_state, setup, seed=0)
    # One observation (the reset's) per one-step episode.
    assert result.obs_stats.count == result.lengths.sum() == 6


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"num_workers": 2}, "num_workers must be 0"),
        ({"num_tasks": 4, "episodes_per_batch": 50}, r"multiple of 2 \* num_tasks = 8, such as 48"),
        ({"num_tasks": 0}, "num_tasks"),
        ({"noise_stdev": 0.0}, "'noise_stdev' must be > 0"),
        ({"l2_coeff": -1.0}, "'l2_coeff' must be >= 0"),
        ({"noise_size": 100}, "smaller than the policy's 1282 parameters"),
        ({"model": {"use_lstm": True}}, "plain numpy MLP"),
        ({"output": "/tmp/es-batches"}, "writes none"),
    ],
)
def test_bad_configs_are_refused_with_the_fix(overrides, message, tmp_path):
    config = {"env": "CartPole-v1", "logger_config": {"logdir": str(tmp_path)}, **overrides}
    with pytest.raises(ValueError, match=message):
        ESTrainer(config=config)


class TwoAgentEnv(MultiAgentEnv):
    def __init__(self, env_config=None):
        super().__init__()
        self.observation_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.action_space = spaces.Discrete(2)


def test_multi_agent_envs_and_other_action_spaces_are_refused(tmp_path):
    logdir = {"logdir": str(tmp_path)}
    with pytest.raises(ValueError, match="single-agent gymnasium env"):
        ESTrainer(config={"env": TwoAgentEnv, "logger_config": logdir})
    with pytest.raises(TypeError, match="Discrete or a float Box"):
        ESPolicy(spaces.Box(-1, 1, (2,)), spaces.MultiDiscrete([2, 3]), {})


def test_a_trainer_built_to_act_puts_nothing_in_the_object_store(tmp_path, monkeypatch):
    """Building, acting and stopping need no Ray (course-rl rollout does just that): the noise
    table is made when the first iteration starts."""

    def forbidden_put(value, **kwargs):
        raise AssertionError("ray.put was called before the first train()")

    monkeypatch.setattr(ray, "put", forbidden_put)
    trainer = ESTrainer(config={"env": "CartPole-v1", "logger_config": {"logdir": str(tmp_path)}})
    try:
        obs, _ = gym.make("CartPole-v1").reset(seed=0)
        assert trainer.compute_single_action(obs) in (0, 1)
    finally:
        trainer.stop()


def test_tune_reserves_a_cpu_for_each_task_next_to_the_trainer():
    request = ESTrainer.default_resource_request({"num_tasks": 3})
    assert request.bundles == [{"CPU": 1.0}] + [{"CPU": 1.0}] * 3
    # Tasks play the episodes, so they take a rollout worker's resources.
    request = ESTrainer.default_resource_request(
        {"num_tasks": 2, "num_cpus_per_worker": 0.5, "custom_resources_per_worker": {"sim": 1}}
    )
    assert request.bundles == [{"CPU": 1.0}] + [{"CPU": 0.5, "sim": 1}] * 2


class RecordingTask:
    """Stands in for ``es.evaluate_perturbations``: records the noise argument of every call,
    then submits the real task."""

    def __init__(self, task):
        self.task, self.noise_args = task, []

    def options(self, **options):
        self.task = self.task.options(**options)
        return self

    def remote(self, noise, *args):
        self.noise_args.append(noise)
        return self.task.remote(noise, *args)


def test_noise_table_is_put_once_and_every_task_gets_its_ref(ray_session, tmp_path, monkeypatch):
    puts, real_put = [], ray.put

    def recording_put(value, **kwargs):
        puts.append(value)
        return real_put(value, **kwargs)

    monkeypatch.setattr(ray, "put", recording_put)
    recorder = RecordingTask(es.evaluate_perturbations)
    monkeypatch.setattr(es, "evaluate_perturbations", recorder)
    trainer = ESTrainer(
        config={
            "env": "CartPole-v1",
            "seed": 7,
            "noise_size": 100_000,
            "num_tasks": 2,
            "episodes_per_batch": 8,
            "metrics_smoothing_episodes": 8,
            "logger_config": {"logdir": str(tmp_path)},
        }
    )
    try:
        results = [trainer.train() for _ in range(3)]
    finally:
        trainer.stop()
    # The table once, first; then theta once per iteration, shared by that iteration's tasks.
    assert [put.shape for put in puts] == [(100_000,)] + [(trainer.get_policy().num_params,)] * 3
    assert len(recorder.noise_args) == 3 * 2
    noise_ref = recorder.noise_args[0]
    assert isinstance(noise_ref, ray.ObjectRef)
    assert all(ref == noise_ref for ref in recorder.noise_args)
    assert np.array_equal(ray.get(noise_ref), create_noise_table(100_000, seed=7))
    # Every env step of every perturbed episode is counted, and every episode reported.
    total = 0
    for result in results:
        assert result["episodes_this_iter"] == 8
        assert result["timesteps_this_iter"] == sum(result["hist_stats"]["episode_lengths"])
        total += result["timesteps_this_iter"]
        assert result["timesteps_total"] == total
        assert set(result["info"]["learner"]["default_policy"]) == {
            "grad_norm",
            "weights_norm",
            "update_ratio",
        }
    assert results[-1]["episodes_total"] == 24


def test_save_restore_continues_exactly_and_actions_come_from_theta(ray_session, tmp_path):
    config = {
        "env": "CartPole-v1",
        "seed": 3,
        "num_tasks": 2,
        "episodes_per_batch": 8,
        "logger_config": {"logdir": str(tmp_path)},
    }
    first = ESTrainer(config=config)
    second = ESTrainer(config=config)
    try:
        for _ in range(2):
            first.train()
        checkpoint = first.save(str(tmp_path / "checkpoint"))
        after_save = first.train()
        second.restore(checkpoint)
        after_restore = second.train()
        assert after_restore["training_iteration"] == 3
        assert after_restore["timesteps_total"] == after_save["timesteps_total"]
        assert np.array_equal(
            first.get_policy().get_flat_weights(), second.get_policy().get_flat_weights()
        )
        obs, _ = gym.make("CartPole-v1").reset(seed=0)
        action = first.compute_single_action(obs)
        assert action in (0, 1) and action == second.compute_single_action(obs)
    finally:
        first.stop()
        second.stop()


def test_tune_runs_es_by_name(ray_session, tmp_path):
    from ray import tune

    analysis = tune.run(
        "ES",
        config={"env": "CartPole-v1", "seed": 0, "num_tasks": 1, "episodes_per_batch": 8},
        stop={"training_iteration": 2},
        storage_path=str(tmp_path),
        verbose=0,
    )
    [trial] = analysis.trials
    assert trial.status == "TERMINATED"
    assert trial.last_result["timesteps_total"] > 0
    assert trial.last_result["episodes_total"] == 16
    assert trial.last_result["episode_reward_mean"] > 0


@pytest.mark.slow
def test_es_learns_cartpole(ray_session, tmp_path):
    """Far above random within 300k env steps: the perturbed episodes' 100-episode mean reaches
    475, and theta itself then scores at least 475 over 10 evaluation episodes (measured:
    475 after 105-150k steps, iterations 5-8, seeds 0-2; about 2-6 s on 2 idle cores)."""
    trainer = ESTrainer(
        config={
            "env": "CartPole-v1",
            "seed": 0,
            "evaluation_interval": 1000,  # evaluation workers for the final check only
            "evaluation_num_episodes": 10,
            "logger_config": {"logdir": str(tmp_path)},
        }
    )
    try:
        means, steps = [], 0
        while not means or (means[-1] < 475 and steps < 300_000):
            result = trainer.train()
            means.append(result["episode_reward_mean"])
            steps = result["timesteps_total"]
        evaluation = trainer.evaluate()
    finally:
        trainer.stop()
    assert means[-1] >= max(475, 20 * RANDOM_RETURN), (
        f"ES's 100-episode means per iteration: {[round(m, 1) for m in means]}"
    )
    assert evaluation["episode_reward_mean"] >= 475, evaluation["hist_stats"]["episode_reward"]
