"""The fast path of sampling (``"vectorize_envs": True``, course_lib/evaluation/vector_sampler.py).

It must give what SingleAgentSampler gives: the same rows where the two can be compared, whole
episodes whose rows chain, episode metrics that agree with the rows, and the hooks.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from course_lib.agents.ppo import PPOTorchPolicy
from course_lib.callbacks import DefaultCallbacks
from course_lib.evaluation import RolloutWorker
from course_lib.evaluation.single_agent_sampler import SingleAgentSampler
from course_lib.evaluation.vector_sampler import VectorSampler


def cartpole(env_config):
    return gym.make("CartPole-v1", max_episode_steps=env_config.get("max_steps", 500))


def worker(env=None, **config):
    base = {
        "env": env,
        "num_envs_per_worker": 4,
        "rollout_fragment_length": 50,
        "seed": 0,
        "vectorize_envs": True,
        "model": {"fcnet_hiddens": [16]},
    }
    return RolloutWorker(
        env_creator=cartpole, policy_class=PPOTorchPolicy, config={**base, **config}
    )


def test_cartpole_steps_in_numpy_and_other_envs_in_a_sync_vector_env():
    fast = worker(env="CartPole-v1")
    assert isinstance(fast.sampler, VectorSampler)
    assert type(fast.envs[0].unwrapped).__name__ == "CartPoleVectorEnv"
    creator = worker(env=None)  # only a creator: each copy is built by it
    assert isinstance(creator.envs[0], gym.vector.SyncVectorEnv)
    assert isinstance(worker(vectorize_envs=False).sampler, SingleAgentSampler)


def test_same_rows_as_the_row_sampler_while_no_episode_ends():
    # Same seeds, same envs (SyncVectorEnv seeds env i with seed + i, as the row sampler does),
    # same policy draws: identical rows, advantages included (the cut pieces are bootstrapped).
    rows = worker(vectorize_envs=False, rollout_fragment_length=8).sample()
    fast = worker(rollout_fragment_length=8).sample()
    assert rows.count == fast.count == 32
    for column in ("obs", "new_obs", "actions", "rewards", "eps_id", "t", "action_logp"):
        np.testing.assert_array_equal(rows[column], fast[column], err_msg=column)
    np.testing.assert_allclose(rows["advantages"], fast["advantages"], rtol=1e-6)
    assert set(rows.keys()) == set(fast.keys())
    for column in rows.keys():
        assert rows[column].dtype == fast[column].dtype or column == "prev_rewards", column


def test_episodes_chain_and_the_metrics_agree_with_the_rows():
    fast = worker(env="CartPole-v1", num_envs_per_worker=8, rollout_fragment_length=100)
    batches = [fast.sample() for _ in range(3)]
    for batch in batches:
        assert 800 <= batch.count < 808  # at least fragment * envs, at most one step more
    rows = batches[0].concat_samples(batches)
    returns, lengths = {}, {}
    for piece in rows.split_by_episode():
        # No row comes from the step that reset an env: each row follows the previous one.
        np.testing.assert_array_equal(np.diff(piece["t"]), 1)
        np.testing.assert_array_equal(piece["obs"][1:], piece["new_obs"][:-1])
        episode = int(piece["eps_id"][0])
        returns[episode] = returns.get(episode, 0.0) + piece["rewards"].sum()
        lengths[episode] = lengths.get(episode, 0) + piece.count
    ended = rows["eps_id"][rows["terminateds"] | rows["truncateds"]]
    metrics = fast.get_metrics()
    assert len(metrics) == len(ended) > 20  # an untrained CartPole policy falls in ~20 steps
    from_rows = sorted((lengths[int(e)], float(returns[int(e)])) for e in ended)
    from_metrics = sorted((m.episode_length, m.episode_reward) for m in metrics)
    assert from_metrics == from_rows  # CartPole pays 1 per step: return == length


def test_hooks_see_every_episode_with_its_counters():
    class Counting(DefaultCallbacks):
        def on_episode_start(self, *, episode, **kwargs):
            episode.user_data["steps"] = 0

        def on_episode_step(self, *, episode, **kwargs):
            episode.user_data["steps"] += 1
            assert episode.length == episode.user_data["steps"]

        def on_episode_end(self, *, episode, **kwargs):
            episode.custom_metrics["counted"] = episode.user_data["steps"]

    fast = worker(callbacks=Counting)
    fast.sample()
    fast.sample()
    metrics = fast.get_metrics()
    assert metrics
    for metric in metrics:
        assert metric.custom_metrics["counted"] == metric.episode_length


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"model": {"use_lstm": True, "fcnet_hiddens": [16]}}, "recurrent model"),
        ({"batch_mode": "complete_episodes"}, "complete_episodes"),
    ],
)
def test_what_the_fast_path_does_not_do_is_refused_with_the_way_out(config, named):
    with pytest.raises(ValueError, match=f'{named}.*Set "vectorize_envs": False'):
        worker(**config)


def test_a_restored_worker_starts_fresh_episodes():
    fast = worker()
    fast.sample()
    state = fast.get_state()
    assert "sampler" not in state  # the running episodes are not saved
    restored = worker(seed=1)
    restored.set_state(state)
    batch = restored.sample()
    assert set(batch["t"][:1]) == {0}  # the first row starts an episode
