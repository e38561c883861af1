"""Policy, TorchPolicy and build_policy: acting, learning, state, and the 2021 RLlib tutorial's
customization API."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from course_lib.policy import (
    PGTorchPolicy,
    TorchPolicy,
    build_policy,
    build_tf_policy,
    build_torch_policy,
    policy_gradient_loss,
)
from course_lib.postprocessing import compute_advantages_by_episode
from course_lib.sample_batch import SampleBatch

OBS_SPACE = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
ACT_SPACE = gym.spaces.Discrete(2)
SMALL = {"model": {"fcnet_hiddens": [16]}, "seed": 0}


def random_batch(n=40, seed=0, episodes=4):
    rng = np.random.default_rng(seed)
    terminateds = np.zeros(n, bool)
    terminateds[np.linspace(n // episodes - 1, n - 1, episodes).astype(int)] = True
    return SampleBatch(
        obs=rng.uniform(-1, 1, (n, 4)).astype(np.float32),
        new_obs=rng.uniform(-1, 1, (n, 4)).astype(np.float32),
        actions=rng.integers(0, 2, n),
        rewards=np.ones(n, np.float32),
        terminateds=terminateds,
        truncateds=np.zeros(n, bool),
        eps_id=np.repeat(np.arange(episodes), n // episodes),
    )


def test_compute_actions_returns_actions_state_and_extras():
    policy = PGTorchPolicy(OBS_SPACE, ACT_SPACE, SMALL)
    actions, state, extra = policy.compute_actions(np.zeros((5, 4), np.float32))
    assert actions.shape == (5,) and set(actions) <= {0, 1} and state == []
    assert extra["action_dist_inputs"].shape == (5, 2)
    assert extra["vf_preds"].shape == (5,)
    np.testing.assert_allclose(extra["action_prob"], np.exp(extra["action_logp"]), rtol=1e-6)
    assert policy.global_timestep == 5


def test_explore_false_picks_the_most_likely_action():
    policy = PGTorchPolicy(OBS_SPACE, ACT_SPACE, SMALL)
    obs = np.random.default_rng(1).uniform(-1, 1, (50, 4)).astype(np.float32)
    actions, _, extra = policy.compute_actions(obs, explore=False)
    np.testing.assert_array_equal(actions, extra["action_dist_inputs"].argmax(axis=1))


def test_compute_single_action_matches_the_batched_call():
    policy = PGTorchPolicy(OBS_SPACE, ACT_SPACE, SMALL)
    obs = np.array([0.1, -0.2, 0.3, 0.0], np.float32)
    action, state, extra = policy.compute_single_action(obs, explore=False)
    assert action == policy.compute_actions(obs[None], explore=False)[0][0] and state == []
    assert extra["action_dist_inputs"].shape == (2,)


def test_weights_round_trip_exactly_into_a_fresh_policy():
    a, b = (
        PGTorchPolicy(OBS_SPACE, ACT_SPACE, {**SMALL, "seed": 1}),
        PGTorchPolicy(OBS_SPACE, ACT_SPACE, {**SMALL, "seed": 2}),
    )
    b.set_weights(a.get_weights())
    for name, value in a.get_weights().items():
        np.testing.assert_array_equal(value, b.get_weights()[name])
    obs = np.ones((3, 4), np.float32)
    np.testing.assert_array_equal(
        a.compute_actions(obs, explore=False)[2]["action_dist_inputs"],
        b.compute_actions(obs, explore=False)[2]["action_dist_inputs"],
    )


def test_state_round_trip_includes_the_optimizer_so_learning_continues_identically():
    a = PGTorchPolicy(OBS_SPACE, ACT_SPACE, SMALL)
    batch = a.postprocess_trajectory(random_batch())
    a.learn_on_batch(batch)
    b = PGTorchPolicy(OBS_SPACE, ACT_SPACE, {**SMALL, "seed": 5})
    b.set_state(a.get_state())
    a.learn_on_batch(batch)
    b.learn_on_batch(batch)
    for name, value in a.get_weights().items():
        np.testing.assert_array_equal(value, b.get_weights()[name])
    assert b.global_timestep == a.global_timestep


def test_set_weights_of_another_model_explains_the_mismatch():
    small, big = (
        PGTorchPolicy(OBS_SPACE, ACT_SPACE, SMALL),
        PGTorchPolicy(OBS_SPACE, ACT_SPACE, {"model": {"fcnet_hiddens": [32]}}),
    )
    with pytest.raises(ValueError, match="different model.*wrong shape"):
        small.set_weights(big.get_weights())


def test_pg_postprocess_adds_reward_to_go_per_episode():
    policy = PGTorchPolicy(OBS_SPACE, ACT_SPACE, {**SMALL, "gamma": 0.5})
    batch = policy.postprocess_trajectory(random_batch(n=8, episodes=2))
    np.testing.assert_allclose(batch["advantages"][:4], [1.875, 1.75, 1.5, 1.0])
    np.testing.assert_allclose(batch["advantages"][4:], [1.875, 1.75, 1.5, 1.0])


def test_learn_on_batch_follows_the_gradient_of_the_loss():
    policy = PGTorchPolicy(OBS_SPACE, ACT_SPACE, {**SMALL, "lr": 1e-2})
    batch = policy.postprocess_trajectory(random_batch())
    before = policy.loss(policy.model, policy.dist_class, policy._lazy_tensor_dict(batch)).item()
    stats = policy.learn_on_batch(batch)["learner_stats"]
    after = policy.loss(policy.model, policy.dist_class, policy._lazy_tensor_dict(batch)).item()
    assert stats["total_loss"] == pytest.approx(before) and after < before
    assert stats["grad_gnorm"] > 0 and stats["cur_lr"] == 1e-2


def test_compute_then_apply_gradients_equals_learn_on_batch():
    a, b = PGTorchPolicy(OBS_SPACE, ACT_SPACE, SMALL), PGTorchPolicy(OBS_SPACE, ACT_SPACE, SMALL)
    batch = a.postprocess_trajectory(random_batch())
    grads, info = a.compute_gradients(batch)
    unchanged = a.get_weights()
    b.set_weights(unchanged)
    a.apply_gradients(grads)
    b.learn_on_batch(batch)
    for name in unchanged:
        np.testing.assert_allclose(a.get_weights()[name], b.get_weights()[name], rtol=1e-6)
    assert info["learner_stats"]["total_loss"] != 0


def test_grad_clip_bounds_the_update():
    policy = PGTorchPolicy(OBS_SPACE, ACT_SPACE, {**SMALL, "grad_clip": 1e-3})
    batch = policy.postprocess_trajectory(random_batch())
    assert (
        policy.learn_on_batch(batch)["learner_stats"]["grad_gnorm"] > 1e-3
    )  # norm before clipping
    total = sum(p.grad.norm() ** 2 for p in policy.model.parameters() if p.grad is not None).sqrt()
    assert total.item() == pytest.approx(1e-3, rel=1e-3)


def test_with_updates_makes_a_new_class_and_leaves_the_original_alone():
    def doubled_loss(policy, model, dist_class, train_batch):
        return 2 * policy_gradient_loss(policy, model, dist_class, train_batch)

    Doubled = PGTorchPolicy.with_updates(name="DoubledPG", loss_fn=doubled_loss)
    assert Doubled.__name__ == "DoubledPG" and PGTorchPolicy.__name__ == "PGTorchPolicy"
    assert PGTorchPolicy.build_args["loss_fn"] is policy_gradient_loss
    assert Doubled.build_args["postprocess_fn"] is PGTorchPolicy.build_args["postprocess_fn"]
    base, doubled = PGTorchPolicy(OBS_SPACE, ACT_SPACE, SMALL), Doubled(OBS_SPACE, ACT_SPACE, SMALL)
    doubled.set_weights(base.get_weights())  # the same network, so only the loss differs
    batch = base.postprocess_trajectory(random_batch())
    loss = lambda p: p.loss(p.model, p.dist_class, p._lazy_tensor_dict(batch)).item()  # noqa: E731
    assert loss(doubled) == pytest.approx(2 * loss(base))


def test_with_updates_rejects_unknown_arguments_with_a_suggestion():
    with pytest.raises(TypeError, match="Did you mean 'loss_fn'"):
        PGTorchPolicy.with_updates(los_fn=policy_gradient_loss)


def test_hooks_are_called_with_the_policy():
    calls = []

    class Mixin:
        def greet(self):
            return "hi"

    MyPolicy = build_policy(
        "MyPolicy",
        loss_fn=policy_gradient_loss,
        get_default_config=lambda: {"lr": 0.5},
        before_init=lambda p, o, a, c: calls.append(("before", c["lr"])),
        after_init=lambda p, o, a, c: calls.append(("after", type(p.model).__name__)),
        optimizer_fn=lambda p, c: torch.optim.SGD(p.model.parameters(), lr=c["lr"]),
        extra_action_out_fn=lambda p, i, s, m, d: {"q": d.inputs.max(dim=1).values},
        mixins=[Mixin],
    )
    policy = MyPolicy(OBS_SPACE, ACT_SPACE, {"model": {"fcnet_hiddens": [8]}})
    assert calls == [("before", 0.5), ("after", "FullyConnectedNetwork")]
    assert isinstance(policy.optimizer, torch.optim.SGD) and policy.greet() == "hi"
    assert set(policy.compute_actions(np.zeros((2, 4), np.float32))[2]) >= {"q", "action_logp"}


def test_action_sampler_fn_replaces_the_distribution():
    def always_one(policy, model, input_dict, state, explore, timestep):
        n = len(input_dict["obs"])
        return torch.ones(n, dtype=torch.int64), torch.zeros(n), state

    Fixed = build_policy("Fixed", loss_fn=None, action_sampler_fn=always_one)
    policy = Fixed(OBS_SPACE, ACT_SPACE, SMALL)
    assert list(policy.compute_actions(np.zeros((3, 4), np.float32))[0]) == [1, 1, 1]
    with pytest.raises(NotImplementedError, match="has no loss"):
        policy.learn_on_batch(random_batch())


def test_tensorflow_is_refused_with_a_clear_message():
    with pytest.raises(NotImplementedError, match="PyTorch-only.*build_policy"):
        build_tf_policy(name="X", loss_fn=policy_gradient_loss)
    with pytest.raises(ValueError, match='"framework": "torch"'):
        PGTorchPolicy(OBS_SPACE, ACT_SPACE, {"framework": "tf"})
    assert build_torch_policy("Alias", loss_fn=policy_gradient_loss).__module__ == __name__


def test_a_policy_class_built_in_a_module_pickles_by_name():
    import pickle

    assert pickle.loads(pickle.dumps(PGTorchPolicy)) is PGTorchPolicy


def test_recurrent_policy_carries_state_and_learns_on_padded_sequences():
    policy = PGTorchPolicy(
        OBS_SPACE,
        ACT_SPACE,
        {
            "model": {
                "use_lstm": True,
                "lstm_cell_size": 8,
                "max_seq_len": 4,
                "fcnet_hiddens": [8],
            },
            "seed": 0,
        },
    )
    assert [s.shape for s in policy.get_initial_state()] == [(8,), (8,)]
    obs = np.zeros((3, 4), np.float32)
    _, state1, _ = policy.compute_actions(obs)
    _, state2, _ = policy.compute_actions(obs, state_batches=state1)
    assert state1[0].shape == (3, 8) and not np.allclose(state1[0], state2[0])
    batch = random_batch(n=10, episodes=2)
    h, c = policy.get_initial_state()
    batch["state_in_0"], batch["state_in_1"] = np.repeat(h[None], 10, 0), np.repeat(c[None], 10, 0)
    batch = policy.postprocess_trajectory(batch)
    train_batch = policy._lazy_tensor_dict(batch)
    assert train_batch["seq_lens"].tolist() == [
        4,
        1,
        4,
        1,
    ]  # two episodes of 5 steps, cut at max_seq_len=4
    assert int(train_batch["loss_mask"].sum()) == 10
    assert np.isfinite(policy.learn_on_batch(batch)["learner_stats"]["total_loss"])


def test_base_policy_says_what_a_subclass_must_implement():
    with pytest.raises(NotImplementedError, match="has no loss"):
        TorchPolicy(OBS_SPACE, ACT_SPACE, SMALL).learn_on_batch(random_batch())


def test_pg_learns_to_prefer_the_rewarded_action():
    """A one-step bandit: action 1 pays 1, action 0 pays 0. PG must raise P(action 1)."""
    policy = PGTorchPolicy(OBS_SPACE, ACT_SPACE, {**SMALL, "lr": 0.05})
    obs = np.zeros((64, 4), np.float32)
    for _ in range(30):
        actions, _, _ = policy.compute_actions(obs)
        batch = SampleBatch(
            obs=obs,
            actions=actions,
            rewards=actions.astype(np.float32),
            terminateds=np.ones(64, bool),
            eps_id=np.arange(64),
        )
        batch = compute_advantages_by_episode(batch, use_gae=False, use_critic=False)
        batch["advantages"] -= batch["advantages"].mean()
        policy.learn_on_batch(batch)
    probs = torch.softmax(
        torch.as_tensor(policy.compute_actions(obs[:1])[2]["action_dist_inputs"]), dim=1
    )
    assert probs[0, 1] > 0.9


def test_on_learn_on_batch_fires_before_learning_and_adds_to_the_stats():
    from course_lib.callbacks import DefaultCallbacks

    class Counting(DefaultCallbacks):
        def on_learn_on_batch(self, *, policy, train_batch, result, **kwargs):
            result["rows_seen"] = train_batch.count

    policy = PGTorchPolicy(OBS_SPACE, ACT_SPACE, {**SMALL, "callbacks": Counting})
    stats = policy.learn_on_batch(policy.postprocess_trajectory(random_batch()))["learner_stats"]
    assert stats["rows_seen"] == 40 and "total_loss" in stats
