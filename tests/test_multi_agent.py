"""Multi-agent sampling and training (lesson 20).

Per-agent trajectories, per-policy batches, policies_to_train.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from gymnasium import spaces

from course_lib.agents.pg import PGTrainer
from course_lib.agents.ppo import PPOTrainer
from course_lib.envs import MultiAgentEnv, RockPaperScissors, make_multi_agent
from course_lib.evaluation import RolloutWorker, WorkerSet
from course_lib.policy import PGTorchPolicy
from course_lib.policy.heuristics import AlwaysSameHeuristic, BeatLastHeuristic
from course_lib.sample_batch import MultiAgentBatch, SampleBatch

MOVES = spaces.Discrete(3)


class ComingAndGoing(MultiAgentEnv):
    """8 env steps per episode; the observation is the step number.

    - "early" acts at steps 0-3; its 4th action ends it (terminated).
    - "sleepy" acts at step 0, is rewarded 5 at step 2 while it waits, acts again at step 4 and
      never gets another observation: the episode's truncation ends it.
    - "late" gets its first observation after step 1, acts at steps 2-7, rewarded 1 each time.
    """

    def __init__(self, config=None):
        self.observation_space = spaces.Box(0.0, 10.0, (1,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.possible_agents = ["early", "sleepy", "late"]

    def reset(self, *, seed=None, options=None):
        self.t = 0
        self._acting = {"early", "sleepy"}
        return {"early": self._obs(), "sleepy": self._obs()}, {}

    def _obs(self):
        return np.array([self.t], np.float32)

    def step(self, action_dict):
        self.check_action_dict(action_dict, self._acting)
        self.t += 1
        obs, rewards, terminateds = {}, {}, {"__all__": False}
        if "early" in action_dict:
            obs["early"], rewards["early"], terminateds["early"] = self._obs(), 1.0, self.t == 4
        if "late" in action_dict or self.t == 2:
            obs["late"] = self._obs()
            if "late" in action_dict:
                rewards["late"] = 1.0
        if self.t == 2:
            rewards["sleepy"] = 5.0
        if self.t == 4:
            obs["sleepy"] = self._obs()
        self._acting = {agent for agent in obs if not terminateds.get(agent)}
        return obs, rewards, terminateds, {"__all__": self.t == 8}, {}


def coming_and_going_worker(**config):
    return RolloutWorker(
        env_creator=ComingAndGoing,
        policy_class=PGTorchPolicy,
        config={"rollout_fragment_length": 8, "seed": 0, **config},
    )


def select_rows(batch: SampleBatch, mask: np.ndarray) -> SampleBatch:
    return SampleBatch({name: column[mask] for name, column in batch.items()})


def rows_of(batch: SampleBatch, agent_index: int) -> SampleBatch:
    return select_rows(batch, batch[SampleBatch.AGENT_INDEX] == agent_index)


def test_agents_that_join_and_leave_get_their_own_rows_in_time_order():
    samples = coming_and_going_worker().sample()
    assert isinstance(samples, MultiAgentBatch) and samples.env_steps() == 8
    batch = samples.policy_batches["default_policy"]
    assert batch.count == samples.agent_steps() == 4 + 2 + 6
    early, sleepy, late = (
        rows_of(batch, index) for index in range(3)
    )  # index = order of first appearance
    assert early[SampleBatch.T].tolist() == [0, 1, 2, 3]
    assert early[SampleBatch.OBS][:, 0].tolist() == [0, 1, 2, 3]
    assert early[SampleBatch.NEXT_OBS][:, 0].tolist() == [1, 2, 3, 4]
    assert early[SampleBatch.TERMINATEDS].tolist() == [False, False, False, True]
    assert late[SampleBatch.T].tolist() == [2, 3, 4, 5, 6, 7]
    assert late[SampleBatch.TRUNCATEDS].tolist() == [False] * 5 + [True]
    assert late[SampleBatch.REWARDS].tolist() == [1.0] * 6
    # sleepy's first action earns the reward paid while it waited; its second one ends without a
    # new observation.
    assert sleepy[SampleBatch.T].tolist() == [0, 4]
    assert sleepy[SampleBatch.REWARDS].tolist() == [5.0, 0.0]
    assert sleepy[SampleBatch.NEXT_OBS][:, 0].tolist() == [4, 4]
    assert sleepy[SampleBatch.TRUNCATEDS].tolist() == [False, True]
    assert len(set(batch[SampleBatch.EPS_ID].tolist())) == 1


def test_an_agent_waiting_across_a_fragment_end_continues_in_the_next_fragment():
    worker = coming_and_going_worker(rollout_fragment_length=3)
    batches = [
        worker.sample().policy_batches["default_policy"] for _ in range(3)
    ]  # 9 steps: one whole episode
    first_episode = batches[0][SampleBatch.EPS_ID][0]
    rows = SampleBatch.concat_samples(batches)
    rows = select_rows(rows, rows[SampleBatch.EPS_ID] == first_episode)
    assert [rows_of(rows, index)[SampleBatch.T].tolist() for index in range(3)] == [
        [0, 1, 2, 3],
        [0, 4],
        [2, 3, 4, 5, 6, 7],
    ]
    assert rows_of(rows, 1)[SampleBatch.REWARDS].tolist() == [5.0, 0.0]


def test_episode_metrics_are_kept_per_agent_and_policy():
    worker = coming_and_going_worker(rollout_fragment_length=9)
    worker.sample()
    (episode,) = worker.get_metrics()
    assert episode.episode_length == 8
    assert episode.agent_rewards == {
        ("early", "default_policy"): 4.0,
        ("sleepy", "default_policy"): 5.0,
        ("late", "default_policy"): 6.0,
    }


def test_count_steps_by_env_steps_or_agent_steps():
    two_cartpoles = make_multi_agent("CartPole-v1")

    def worker(count_steps_by):
        return RolloutWorker(
            env_creator=lambda config: two_cartpoles({"num_agents": 2}),
            policy_class=PGTorchPolicy,
            config={
                "num_envs_per_worker": 2,
                "rollout_fragment_length": 50,
                "seed": 0,
                "multiagent": {"count_steps_by": count_steps_by},
            },
        )

    by_env = worker("env_steps").sample()
    assert by_env.env_steps() == 100
    assert by_env.env_steps() < by_env.agent_steps() <= 2 * by_env.env_steps()
    by_agent = worker("agent_steps").sample()
    assert 100 <= by_agent.agent_steps() < 100 + 2 * 2  # one step of every env may overshoot
    assert by_agent.env_steps() < by_agent.agent_steps()


def test_a_plain_gym_env_with_multiagent_policies_samples_a_multi_agent_batch():
    worker = RolloutWorker(
        env_creator=lambda config: __import__("gymnasium").make("CartPole-v1"),
        policy_class=PGTorchPolicy,
        config={
            "rollout_fragment_length": 20,
            "multiagent": {"policies": {"default_policy": (None, None, None, {})}},
        },
    )
    samples = worker.sample()
    assert (
        isinstance(samples, MultiAgentBatch)
        and samples.policy_batches["default_policy"].count == samples.env_steps() == 20
    )


def test_an_agent_mapped_to_an_unknown_policy_is_explained():
    worker = coming_and_going_worker(
        multiagent={
            "policies": {"p": (None, None, None, {})},
            "policy_mapping_fn": lambda agent_id, episode, **kw: "q",
        }
    )
    with pytest.raises(KeyError, match="not in"):
        worker.sample()


# --- the 2021 RLlib tutorial's rock paper scissors ----------------------------------------------


def select_policy(agent_id, episode, **kwargs):
    """The 2021 RLlib tutorial's mapping: player1 learns; player2 is a heuristic (per episode)."""
    if agent_id == "player1":
        return "learned"
    return random.choice(["always_same", "beat_last"])


def learned_vs_frozen(agent_id, episode, **kwargs):
    return "learned" if agent_id == "player1" else "frozen"


RPS_POLICIES = {
    "always_same": (AlwaysSameHeuristic, MOVES, MOVES, {}),
    "beat_last": (BeatLastHeuristic, MOVES, MOVES, {}),
    "learned": (None, MOVES, MOVES, {"model": {"use_lstm": False}}),
}


def rps_config(tmp_path, **multiagent):
    return {
        "env": RockPaperScissors,
        "gamma": 0.9,
        "num_workers": 0,
        "num_envs_per_worker": 4,
        "rollout_fragment_length": 10,
        "train_batch_size": 200,
        "seed": 0,
        "logger_config": {"logdir": str(tmp_path)},
        "multiagent": {
            "policies_to_train": ["learned"],
            "policies": RPS_POLICIES,
            "policy_mapping_fn": select_policy,
            **multiagent,
        },
    }


@pytest.mark.slow
def test_the_tutorials_rock_paper_scissors_learns_to_beat_always_same(tmp_path):
    trainer = PGTrainer(config=rps_config(tmp_path))
    try:
        for _ in range(20):
            result = trainer.train()
    finally:
        trainer.stop()
    rewards = result["policy_reward_mean"]
    assert set(rewards) == {"learned", "always_same", "beat_last"}
    # Zero-sum: always_same's loss is what the learned policy wins against it (about -0.2 at first).
    assert rewards["always_same"] < -4.0
    assert rewards["learned"] > 1.0


def test_ppo_trains_every_policy_by_default_and_skips_heuristics_when_standardizing(tmp_path):
    config = {
        **rps_config(tmp_path, policies_to_train=None),
        "sgd_minibatch_size": 64,
        "num_sgd_iter": 2,
    }
    trainer = PPOTrainer(config=config)
    try:
        result = trainer.train()
    finally:
        trainer.stop()
    assert "kl" in result["info"]["learner"]["learned"]
    assert set(result["info"]["learner"]) <= {"learned", "always_same", "beat_last"}
    assert result["info"]["num_agent_steps_trained"] == 2 * result["info"]["num_steps_trained"]


def test_policies_to_train_leaves_the_other_policies_unchanged(tmp_path):
    policies = {"learned": (None, MOVES, MOVES, {}), "frozen": (None, MOVES, MOVES, {})}
    trainer = PGTrainer(
        config=rps_config(tmp_path, policies=policies, policy_mapping_fn=learned_vs_frozen)
    )
    try:
        before = trainer.get_weights()
        result = trainer.train()
        after = trainer.get_weights()
    finally:
        trainer.stop()
    assert set(result["info"]["learner"]) == {"learned"}
    assert all(
        np.array_equal(before["frozen"][name], after["frozen"][name]) for name in before["frozen"]
    )
    assert any(
        not np.array_equal(before["learned"][name], after["learned"][name])
        for name in before["learned"]
    )


def test_two_policies_of_the_same_class_and_spaces_start_with_different_weights(tmp_path):
    policies = {"learned": (None, MOVES, MOVES, {}), "frozen": (None, MOVES, MOVES, {})}
    trainer = PGTrainer(
        config=rps_config(tmp_path, policies=policies, policy_mapping_fn=learned_vs_frozen)
    )
    try:
        weights = trainer.get_weights()
    finally:
        trainer.stop()
    assert any(
        not np.array_equal(weights["learned"][name], weights["frozen"][name])
        for name in weights["learned"]
    )


def test_compute_single_action_uses_the_named_policy(tmp_path):
    trainer = PGTrainer(config=rps_config(tmp_path))
    try:
        assert trainer.compute_single_action(0, policy_id="beat_last") == 1  # paper beats rock
        assert MOVES.contains(int(trainer.compute_single_action(0, policy_id="learned")))
    finally:
        trainer.stop()


def test_a_checkpoint_restores_every_policy(tmp_path):
    policies = {**RPS_POLICIES, "frozen": (None, MOVES, MOVES, {})}
    config = rps_config(
        tmp_path,
        policies=policies,
        policies_to_train=["learned", "frozen"],
        policy_mapping_fn=lambda agent_id, episode, **kw: (
            "learned" if agent_id == "player1" else "frozen"
        ),
    )
    trainer = PGTrainer(config=config)
    restored = PGTrainer(config=config)
    try:
        trainer.train()
        path = trainer.save(str(tmp_path / "checkpoint"))
        restored.restore(path)
        saved, loaded = trainer.get_weights(), restored.get_weights()
        assert set(loaded) == {"always_same", "beat_last", "learned", "frozen"}
        for pid in ("learned", "frozen"):
            assert all(np.array_equal(saved[pid][name], loaded[pid][name]) for name in saved[pid])
        assert restored.train()["training_iteration"] == 2
    finally:
        trainer.stop()
        restored.stop()


def test_remote_workers_sample_multi_agent_batches(ray_session, tmp_path):
    config = rps_config(tmp_path)
    workers = WorkerSet(
        env_creator=RockPaperScissors,
        policy_class=PGTorchPolicy,
        trainer_config=config,
        num_workers=1,
    )
    try:
        workers.sync_weights()
        samples = workers.sample()
        assert isinstance(samples, MultiAgentBatch)
        assert samples.env_steps() == 40 and samples.agent_steps() == 80
        assert samples.policy_batches["learned"].count == 40
        assert set(samples.policy_batches) <= {"learned", "always_same", "beat_last"}
    finally:
        workers.stop()


def test_each_policy_keeps_its_own_observation_filter():
    two_cartpoles = make_multi_agent("CartPole-v1")
    policies = {"left": (None, None, None, {}), "right": (None, None, None, {})}
    worker = RolloutWorker(
        env_creator=lambda config: two_cartpoles({"num_agents": 2}),
        policy_class=PGTorchPolicy,
        config={
            "rollout_fragment_length": 30,
            "seed": 0,
            "observation_filter": "MeanStdFilter",
            "multiagent": {
                "policies": policies,
                "policy_mapping_fn": lambda agent_id, episode, **kw: ["left", "right"][agent_id],
            },
        },
    )
    samples = worker.sample()
    for pid in ("left", "right"):
        # every observation the policy saw went through its filter: its rows' obs plus each
        # episode's first obs
        assert worker.filters[pid].stats.count >= samples.policy_batches[pid].count
    assert not np.allclose(worker.filters["left"].stats.mean, worker.filters["right"].stats.mean)
