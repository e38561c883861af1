"""A2C/A3C, PPO and DQN policies: their defaults, each loss against a hand computation, their
state, and a short CartPole run."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from course_lib.agents.a3c import a2c
from course_lib.agents.a3c.a3c_torch_policy import A3CTorchPolicy
from course_lib.agents.dqn import dqn
from course_lib.agents.dqn.dqn_torch_policy import (
    DQNTorchModel,
    DQNTorchPolicy,
    adjust_nstep,
    denormals_flushed,
    dqn_stats,
    flush_denormals,
)
from course_lib.agents.pg import pg
from course_lib.agents.ppo import ppo
from course_lib.agents.ppo.ppo_torch_policy import PPOTorchPolicy
from course_lib.evaluation import RolloutWorker
from course_lib.policy.pg import PG_DEFAULTS
from course_lib.sample_batch import SampleBatch

OBS_SPACE = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
ACT_SPACE = gym.spaces.Discrete(2)
SMALL = {"model": {"fcnet_hiddens": [16]}, "seed": 0}


def log_softmax(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def model_outputs(policy, obs):
    """Logits (B, n) and V (B,) of the policy's model, as numpy."""
    with torch.no_grad():
        logits, _ = policy.model({"obs": torch.as_tensor(obs)})
        return logits.numpy().astype(np.float64), policy.model.value_function().numpy().astype(
            np.float64
        )


def acted_batch(policy, n=8, seed=0):
    """A batch as a rollout worker records it (obs, actions, logp, dist inputs, vf_preds), plus
    advantages and value targets."""
    rng = np.random.default_rng(seed)
    obs = rng.uniform(-1, 1, (n, 4)).astype(np.float32)
    actions, _, extra = policy.compute_actions(obs)
    return SampleBatch(
        obs=obs,
        actions=actions,
        action_logp=extra["action_logp"],
        action_dist_inputs=extra["action_dist_inputs"],
        vf_preds=extra["vf_preds"],
        advantages=rng.normal(size=n).astype(np.float32),
        value_targets=rng.normal(size=n).astype(np.float32),
    )


def episode_piece(rewards, terminated_at_end, seed=0):
    n = len(rewards)
    rng = np.random.default_rng(seed)
    terminateds = np.zeros(n, bool)
    terminateds[-1] = terminated_at_end
    return SampleBatch(
        obs=rng.uniform(-1, 1, (n, 4)).astype(np.float32),
        new_obs=rng.uniform(-1, 1, (n, 4)).astype(np.float32),
        actions=rng.integers(0, 2, n),
        rewards=np.asarray(rewards, np.float32),
        terminateds=terminateds,
        truncateds=np.zeros(n, bool),
        eps_id=np.zeros(n, np.int64),
    )


# --- defaults: one dict per algorithm, shared by its trainer and its policy --------------------


@pytest.mark.parametrize(
    "policy_class, trainer_module",
    [(A3CTorchPolicy, a2c), (PPOTorchPolicy, ppo), (DQNTorchPolicy, dqn)],
    ids=["A2C", "PPO", "DQN"],
)
def test_a_policy_built_alone_has_its_trainers_defaults(policy_class, trainer_module):
    defaults = trainer_module.DEFAULT_CONFIG
    assert policy_class.build_args["get_default_config"]() is defaults
    policy = policy_class(OBS_SPACE, ACT_SPACE, {})
    for key, value in defaults.items():
        assert policy.config[key] == value, key
    assert policy.optimizer.param_groups[0]["lr"] == defaults["lr"]


def test_the_trainer_defaults_keep_their_values():
    """Lessons and tuned examples were measured with these; the policy now reads them too."""
    assert {key: ppo.DEFAULT_CONFIG[key] for key in ("lr", "lambda", "clip_param", "kl_coeff")} == {
        "lr": 3e-4,
        "lambda": 0.95,
        "clip_param": 0.3,
        "kl_coeff": 0.2,
    }
    assert (a2c.DEFAULT_CONFIG["lr"], a2c.DEFAULT_CONFIG["model"]) == (
        1e-3,
        {"fcnet_hiddens": [64, 64]},
    )
    assert (dqn.DEFAULT_CONFIG["lr"], dqn.DEFAULT_CONFIG["exploration_config"]["type"]) == (
        5e-4,
        "EpsilonGreedy",
    )


def test_pg_trainer_defaults_extend_the_lesson_06_policy_defaults():
    # PGTorchPolicy comes before trainers (lesson 07), so its few defaults live with it and
    # the trainer builds on them instead of the other way round.
    for key, value in PG_DEFAULTS.items():
        assert pg.DEFAULT_CONFIG[key] == value, key


# --- A2C / A3C ---------------------------------------------------------------------------------


def test_actor_critic_loss_pieces_match_a_hand_computation():
    policy = A3CTorchPolicy(
        OBS_SPACE, ACT_SPACE, {**SMALL, "vf_loss_coeff": 0.25, "entropy_coeff": 0.1}
    )
    batch = acted_batch(policy)
    logits, values = model_outputs(policy, batch["obs"])
    log_probs = log_softmax(logits)
    logp = log_probs[np.arange(batch.count), batch["actions"]]
    pi_loss = -np.mean(logp * batch["advantages"])
    vf_loss = 0.5 * np.mean((values - batch["value_targets"]) ** 2)
    entropy = np.mean(-(np.exp(log_probs) * log_probs).sum(axis=1))
    stats = policy.learn_on_batch(batch)["learner_stats"]
    assert stats["policy_loss"] == pytest.approx(pi_loss, rel=1e-5)
    assert stats["vf_loss"] == pytest.approx(vf_loss, rel=1e-5)
    assert stats["entropy"] == pytest.approx(entropy, rel=1e-5)
    assert stats["total_loss"] == pytest.approx(pi_loss + 0.25 * vf_loss - 0.1 * entropy, rel=1e-5)


def test_a3c_postprocessing_bootstraps_a_cut_piece_from_the_critic():
    policy = A3CTorchPolicy(OBS_SPACE, ACT_SPACE, {**SMALL, "gamma": 0.5, "lambda": 1.0})
    cut = episode_piece([1.0, 1.0, 1.0], terminated_at_end=False)
    cut["vf_preds"] = policy.compute_values(cut["obs"])
    last_value = policy.compute_values(cut["new_obs"][-1:])[0]
    out = policy.postprocess_trajectory(cut)
    # gamma = 0.5, lambda = 1: discounted rewards-to-go plus gamma^(steps left) * V(last new_obs).
    expected = [1.75 + 0.125 * last_value, 1.5 + 0.25 * last_value, 1.0 + 0.5 * last_value]
    np.testing.assert_allclose(out["value_targets"], expected, rtol=1e-5)
    np.testing.assert_allclose(
        out["advantages"], out["value_targets"] - cut["vf_preds"], rtol=1e-5, atol=1e-6
    )

    ended = episode_piece([1.0, 1.0, 1.0], terminated_at_end=True)
    ended["vf_preds"] = policy.compute_values(ended["obs"])
    np.testing.assert_allclose(
        policy.postprocess_trajectory(ended)["value_targets"], [1.75, 1.5, 1.0], rtol=1e-6
    )


def test_vf_explained_var_is_one_for_a_perfect_critic_and_zero_for_a_constant():
    policy = A3CTorchPolicy(OBS_SPACE, ACT_SPACE, SMALL)
    batch = acted_batch(policy)
    logits, values = model_outputs(policy, batch["obs"])
    batch["value_targets"] = values.astype(np.float32)
    assert policy.learn_on_batch(batch)["learner_stats"]["vf_explained_var"] == pytest.approx(
        1.0, abs=1e-5
    )
    _, values = model_outputs(policy, batch["obs"])
    batch["value_targets"] = (values + 3.0).astype(
        np.float32
    )  # off by a constant: explains all variance
    assert policy.learn_on_batch(batch)["learner_stats"]["vf_explained_var"] == pytest.approx(
        1.0, abs=1e-4
    )


def test_a3c_without_critic_is_reinforce_with_an_entropy_bonus():
    policy = A3CTorchPolicy(
        OBS_SPACE, ACT_SPACE, {**SMALL, "use_critic": False, "use_gae": False, "gamma": 0.5}
    )
    piece = episode_piece([1.0, 1.0, 1.0], terminated_at_end=False)
    out = policy.postprocess_trajectory(piece)
    np.testing.assert_allclose(
        out["advantages"], [1.75, 1.5, 1.0]
    )  # no critic: nothing to bootstrap from
    stats = policy.learn_on_batch(out)["learner_stats"]
    assert stats["vf_loss"] == 0.0


def test_a3c_loss_on_a_recurrent_model_ignores_the_padding():
    config = {
        "model": {"fcnet_hiddens": [8], "use_lstm": True, "lstm_cell_size": 8, "max_seq_len": 4},
        "seed": 0,
    }
    policy = A3CTorchPolicy(OBS_SPACE, ACT_SPACE, config)
    pieces = []
    for eps_id, length in enumerate(
        [3, 6]
    ):  # sequences of 3, 4 and 2 rows: 12 padded rows, 9 real ones
        piece = episode_piece(np.ones(length), terminated_at_end=True, seed=eps_id)
        piece["eps_id"] = np.full(length, eps_id)
        state = [np.repeat(s[None], length, 0) for s in policy.get_initial_state()]
        piece["state_in_0"], piece["state_in_1"] = state
        piece["advantages"] = np.ones(length, np.float32)
        piece["value_targets"] = np.ones(length, np.float32)
        pieces.append(piece)
    batch = SampleBatch.concat_samples(pieces)
    train_batch = policy._lazy_tensor_dict(batch)
    assert len(train_batch["obs"]) == 12 and int(train_batch["loss_mask"].sum()) == 9
    train_batch["advantages"][~train_batch["loss_mask"]] = 1e6  # padding rows: must not count
    loss = policy.loss(policy.model, policy.dist_class, train_batch)
    assert abs(loss.item()) < 10


# --- PPO ---------------------------------------------------------------------------------------


def ppo_policy(**config):
    """A PPO policy whose loss is the surrogate alone, unless ``config`` turns other terms on."""
    only_surrogate = {"vf_loss_coeff": 0.0, "kl_coeff": 0.0, "entropy_coeff": 0.0}
    return PPOTorchPolicy(OBS_SPACE, ACT_SPACE, {**SMALL, **only_surrogate, **config})


def with_ratios(policy, batch, ratios, advantages):
    """Set ``action_logp`` so that pi / pi_old of each row is the given ratio."""
    logits, _ = model_outputs(policy, batch["obs"])
    logp = log_softmax(logits)[np.arange(batch.count), batch["actions"]]
    batch["action_logp"] = (logp - np.log(ratios)).astype(np.float32)
    batch["advantages"] = np.asarray(advantages, np.float32)
    return batch


def test_ppo_surrogate_clips_the_ratio_only_where_it_would_overshoot():
    policy = ppo_policy(clip_param=0.2)
    ratios = np.array([1.5, 1.5, 0.5, 0.5, 1.1, 0.9])
    advantages = np.array([1.0, -1.0, 1.0, -1.0, 2.0, -2.0])
    batch = with_ratios(policy, acted_batch(policy, n=6), ratios, advantages)
    # min(A r, A clip(r)): 1.2 clipped, -1.5 not, 0.5 not, -0.8 clipped, 2.2 and -1.8 inside the
    # range.
    expected = -np.mean([1.2, -1.5, 0.5, -0.8, 2.2, -1.8])
    assert policy.learn_on_batch(batch)["learner_stats"]["policy_loss"] == pytest.approx(
        expected, rel=1e-4
    )


def test_ppo_rows_clipped_in_the_direction_of_their_advantage_give_no_gradient():
    policy = ppo_policy(clip_param=0.2)
    clipped = with_ratios(
        policy, acted_batch(policy, n=4), [1.5, 1.3, 0.5, 0.7], [1.0, 2.0, -1.0, -3.0]
    )
    gradients, _ = policy.compute_gradients(clipped)
    assert all(g is None or not g.any() for g in gradients)
    inside = with_ratios(
        policy, acted_batch(policy, n=4), [1.1, 1.0, 0.9, 0.95], [1.0, 2.0, -1.0, -3.0]
    )
    gradients, _ = policy.compute_gradients(inside)
    assert any(g is not None and g.any() for g in gradients)


def test_ppo_kl_and_entropy_match_a_hand_computation():
    policy = ppo_policy(kl_coeff=0.5, entropy_coeff=0.1)
    batch = acted_batch(policy)
    batch["action_dist_inputs"] = (
        np.random.default_rng(3).normal(size=(batch.count, 2)).astype(np.float32)
    )
    logits, _ = model_outputs(policy, batch["obs"])
    new, old = log_softmax(logits), log_softmax(batch["action_dist_inputs"].astype(np.float64))
    kl = np.mean((np.exp(old) * (old - new)).sum(axis=1))
    entropy = np.mean(-(np.exp(new) * new).sum(axis=1))
    stats = policy.learn_on_batch(batch)["learner_stats"]
    assert stats["kl"] == pytest.approx(kl, rel=1e-4) and stats["entropy"] == pytest.approx(
        entropy, rel=1e-5
    )
    assert stats["total_loss"] == pytest.approx(
        stats["policy_loss"] + 0.5 * kl - 0.1 * entropy, rel=1e-4
    )
    assert stats["cur_kl_coeff"] == 0.5


def test_ppo_value_loss_keeps_the_worse_of_the_clipped_and_unclipped_errors():
    policy = ppo_policy(vf_loss_coeff=1.0, vf_clip_param=0.1)
    batch = acted_batch(policy, n=5)
    _, values = model_outputs(policy, batch["obs"])
    batch["vf_preds"] = (values + np.array([0.0, 0.5, -0.5, 0.05, 2.0])).astype(np.float32)
    batch["value_targets"] = (values + np.array([1.0, 1.0, 1.0, -1.0, 0.0])).astype(np.float32)
    old, targets = batch["vf_preds"].astype(np.float64), batch["value_targets"].astype(np.float64)
    clipped = old + np.clip(values - old, -0.1, 0.1)
    expected = np.mean(np.maximum((values - targets) ** 2, (clipped - targets) ** 2))
    assert policy.learn_on_batch(batch)["learner_stats"]["vf_loss"] == pytest.approx(
        expected, rel=1e-4
    )


def test_update_kl_raises_lowers_or_keeps_the_coefficient():
    policy = ppo_policy(kl_coeff=0.2, kl_target=0.01)
    assert policy.kl_coeff == 0.2
    assert policy.update_kl(0.03) == pytest.approx(0.3)  # > 2 * target: x1.5
    assert policy.update_kl(0.01) == pytest.approx(0.3)  # close to target: unchanged
    assert policy.update_kl(0.001) == pytest.approx(0.15)  # < target / 2: x0.5
    assert policy.kl_coeff == pytest.approx(0.15)


def test_kl_coeff_zero_keeps_the_loss_finite_when_the_kl_is_not():
    box = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    batch = None
    for kl_coeff in (0.0, 0.2):
        policy = PPOTorchPolicy(OBS_SPACE, box, {**SMALL, "kl_coeff": kl_coeff})
        batch = batch or acted_batch(policy)
        batch["action_dist_inputs"] = np.tile(
            np.array([[0.0, 50.0]], np.float32), (batch.count, 1)
        )  # old std e^50
        stats = policy.learn_on_batch(batch)["learner_stats"]
        assert not np.isfinite(stats["kl"])
        assert np.isfinite(stats["total_loss"]) == (kl_coeff == 0.0)


def test_ppo_state_round_trip_keeps_kl_coeff_so_learning_continues_identically():
    a = PPOTorchPolicy(OBS_SPACE, ACT_SPACE, SMALL)
    batch = acted_batch(a)
    a.learn_on_batch(batch)
    a.update_kl(1.0)
    b = PPOTorchPolicy(OBS_SPACE, ACT_SPACE, {**SMALL, "seed": 7})
    b.set_state(a.get_state())
    assert b.kl_coeff == a.kl_coeff == pytest.approx(0.3)
    stats_a, stats_b = (
        a.learn_on_batch(batch)["learner_stats"],
        b.learn_on_batch(batch)["learner_stats"],
    )
    assert stats_a == stats_b
    for name, value in a.get_weights().items():
        np.testing.assert_array_equal(value, b.get_weights()[name])


# --- DQN ---------------------------------------------------------------------------------------

ONE_HOT = gym.spaces.Box(0.0, 1.0, (3,), np.float32)
TABLE = {"model": {"fcnet_hiddens": []}, "hiddens": [], "dueling": False, "seed": 0}


def q_table_policy(online, target, **config):
    """A DQN whose networks are Q-tables: no hidden layers on one-hot observations of 3 states."""
    policy = DQNTorchPolicy(ONE_HOT, ACT_SPACE, {**TABLE, **config})
    for model, table in ((policy.model, online), (policy.target_model, target)):
        head = model.advantage_stream[1]
        with torch.no_grad():
            head.weight.copy_(torch.as_tensor(np.asarray(table, np.float32).T))
            head.bias.zero_()
    return policy


def transitions(states, actions, rewards, next_states, terminateds, discounts):
    eye = np.eye(3, dtype=np.float32)
    return SampleBatch(
        obs=eye[states],
        actions=np.asarray(actions),
        rewards=np.asarray(rewards, np.float32),
        new_obs=eye[next_states],
        terminateds=np.asarray(terminateds),
        discounts=np.asarray(discounts, np.float32),
    )


ONLINE = [[0.0, 1.0], [1.0, 2.0], [4.0, 0.0]]  # in state 1 the online net prefers action 1 ...
TARGET = [[0.0, 0.0], [5.0, 3.0], [0.0, 0.0]]  # ... the target net action 0


@pytest.mark.parametrize("double_q, bootstrap", [(True, 3.0), (False, 5.0)])
def test_dqn_target_uses_the_online_argmax_only_with_double_q(double_q, bootstrap):
    policy = q_table_policy(ONLINE, TARGET, double_q=double_q)
    batch = transitions(
        states=[0, 2],
        actions=[1, 0],
        rewards=[1.0, 1.0],
        next_states=[1, 1],
        terminateds=[False, True],
        discounts=[0.5, 0.5],
    )
    result = policy.learn_on_batch(batch)
    # Row 0: Q(0, 1) = 1 against 1 + 0.5 * bootstrap; row 1 terminated: Q(2, 0) = 4 against
    # r = 1 only.
    np.testing.assert_allclose(
        result["td_error"], [1.0 - (1.0 + 0.5 * bootstrap), 4.0 - 1.0], rtol=1e-6
    )
    assert result["td_error"].shape == (2,)
    assert result["learner_stats"]["mean_q"] == pytest.approx(2.5) and result["learner_stats"][
        "max_q"
    ] == pytest.approx(4.0)


def test_dqn_loss_is_huber_weighted_by_prioritized_replay_weights():
    policy = q_table_policy(ONLINE, TARGET)
    batch = transitions(
        states=[0, 1, 2],
        actions=[1, 1, 0],
        rewards=[0.5, 5.0, 1.0],
        next_states=[0, 0, 0],
        terminateds=[True] * 3,
        discounts=[0.9] * 3,
    )
    td = np.array([1.0 - 0.5, 2.0 - 5.0, 4.0 - 1.0])
    huber = np.where(np.abs(td) <= 1.0, 0.5 * td**2, np.abs(td) - 0.5)
    train_batch = policy._lazy_tensor_dict(batch)
    assert policy.loss(policy.model, policy.dist_class, train_batch).item() == pytest.approx(
        huber.mean()
    )
    batch["weights"] = np.array([1.0, 0.5, 0.0], np.float32)
    train_batch = policy._lazy_tensor_dict(batch)
    weighted = np.mean(huber * batch["weights"])
    assert policy.loss(policy.model, policy.dist_class, train_batch).item() == pytest.approx(
        weighted
    )


def test_dqn_loss_discounts_each_row_by_its_own_column():
    policy = q_table_policy(ONLINE, TARGET)
    batch = transitions(
        states=[0, 0],
        actions=[1, 1],
        rewards=[0.0, 0.0],
        next_states=[1, 1],
        terminateds=[False, False],
        discounts=[0.9, 0.81],
    )
    np.testing.assert_allclose(
        policy.learn_on_batch(batch)["td_error"], [1.0 - 0.9 * 3.0, 1.0 - 0.81 * 3.0], rtol=1e-6
    )


def reference_nstep(rewards, terminateds, n, gamma):
    """Per row: (n-step reward, index of the row whose new_obs/terminated it takes, discount),
    computed by two plain loops."""
    out = []
    for t in range(len(rewards)):
        total, k = 0.0, 0
        while k < n and t + k < len(rewards):
            total += gamma**k * rewards[t + k]
            k += 1
        out.append((total, t + k - 1, gamma**k))
    return out


@pytest.mark.parametrize(
    "rewards, terminated, n",
    [
        ([1.0, 2.0, 3.0, 4.0, 5.0], True, 3),  # terminated end: the last rows' windows stop there
        ([1.0, -1.0, 0.5, 2.0], False, 2),  # cut piece: the last row bootstraps after 1 step
        ([1.0, 2.0], False, 3),  # piece shorter than n
        ([1.0, 2.0, 3.0], True, 1),  # n=1: only the discounts column is new
    ],
)
def test_adjust_nstep_matches_a_double_loop(rewards, terminated, n):
    piece = episode_piece(rewards, terminated)
    original = piece.copy()
    adjust_nstep(piece, n, 0.9)
    for t, (reward, last, discount) in enumerate(
        reference_nstep(rewards, original["terminateds"], n, 0.9)
    ):
        assert piece["rewards"][t] == pytest.approx(reward, rel=1e-6)
        np.testing.assert_array_equal(piece["new_obs"][t], original["new_obs"][last])
        assert piece["terminateds"][t] == original["terminateds"][last]
        assert piece["discounts"][t] == pytest.approx(discount, rel=1e-6)
    np.testing.assert_array_equal(piece["obs"], original["obs"])


def test_adjust_nstep_refuses_several_episodes_and_bad_n():
    two = SampleBatch.concat_samples([episode_piece([1.0, 1.0], True), episode_piece([1.0], True)])
    two["eps_id"] = np.array([0, 0, 1])
    with pytest.raises(ValueError, match="ONE episode piece"):
        adjust_nstep(two, 2, 0.9)
    with pytest.raises(ValueError, match="n_step must be a whole number"):
        adjust_nstep(episode_piece([1.0], True), 0, 0.9)


def test_dqn_postprocessing_adds_nstep_rewards_and_discounts():
    policy = DQNTorchPolicy(OBS_SPACE, ACT_SPACE, {**SMALL, "n_step": 2, "gamma": 0.5})
    out = policy.postprocess_trajectory(episode_piece([1.0, 1.0, 1.0], terminated_at_end=False))
    np.testing.assert_allclose(out["rewards"], [1.5, 1.5, 1.0])
    np.testing.assert_allclose(out["discounts"], [0.25, 0.25, 0.5])


def test_dueling_q_values_average_to_the_value_stream():
    model = DQNTorchModel(
        OBS_SPACE,
        gym.spaces.Discrete(3),
        3,
        {"fcnet_hiddens": [8]},
        "q",
        q_hiddens=[8],
        dueling=True,
    )
    obs = torch.as_tensor(np.random.default_rng(0).uniform(-1, 1, (5, 4)).astype(np.float32))
    with torch.no_grad():
        q_values, _ = model({"obs": obs})
        features = model.torso(obs)
        value, advantages = model.value_stream(features), model.advantage_stream(features)
    assert q_values.shape == (5, 3)
    torch.testing.assert_close(q_values.mean(dim=1), value.squeeze(1))
    centred = q_values - q_values.mean(dim=1, keepdim=True)
    torch.testing.assert_close(centred, advantages - advantages.mean(dim=1, keepdim=True))


def test_dqn_acts_greedily_on_its_q_values_and_records_them():
    policy = DQNTorchPolicy(OBS_SPACE, ACT_SPACE, SMALL)
    obs = np.random.default_rng(0).uniform(-1, 1, (6, 4)).astype(np.float32)
    actions, _, extra = policy.compute_actions(obs, explore=False)
    assert extra["q_values"].shape == (6, 2)
    np.testing.assert_array_equal(actions, extra["q_values"].argmax(axis=1))
    assert type(policy.exploration).__name__ == "EpsilonGreedy"
    assert policy.exploration.epsilon(0) == 1.0 and policy.exploration.epsilon(
        10_000
    ) == pytest.approx(0.02)


def test_update_target_copies_or_blends_the_online_weights():
    policy = DQNTorchPolicy(OBS_SPACE, ACT_SPACE, SMALL)
    before = {k: v.clone() for k, v in policy.target_model.state_dict().items()}
    with torch.no_grad():
        for param in policy.model.parameters():
            param.add_(1.0)
    online = policy.model.state_dict()
    policy.update_target(tau=0.5)
    for name, value in policy.target_model.state_dict().items():
        torch.testing.assert_close(value, 0.5 * online[name] + 0.5 * before[name])
    policy.update_target()  # config tau = 1.0: a copy
    for name, value in policy.target_model.state_dict().items():
        torch.testing.assert_close(value, online[name])
    assert (
        not any(p.requires_grad for p in policy.target_model.parameters())
        and not policy.target_model.training
    )
    optimized = {id(p) for group in policy.optimizer.param_groups for p in group["params"]}
    assert not optimized & {id(p) for p in policy.target_model.parameters()}


def test_dqn_state_includes_the_target_network_but_weights_do_not():
    a = DQNTorchPolicy(OBS_SPACE, ACT_SPACE, SMALL)
    batch = a.postprocess_trajectory(episode_piece([1.0, 0.0, 1.0, 1.0], terminated_at_end=True))
    a.learn_on_batch(batch)
    a.update_target(tau=0.3)
    assert set(a.get_weights()) == set(a.model.state_dict())
    b = DQNTorchPolicy(OBS_SPACE, ACT_SPACE, {**SMALL, "seed": 3})
    b.set_state(a.get_state())
    for name, value in a.target_model.state_dict().items():
        torch.testing.assert_close(b.target_model.state_dict()[name], value)
    result_a, result_b = a.learn_on_batch(batch), b.learn_on_batch(batch)
    np.testing.assert_array_equal(result_a["td_error"], result_b["td_error"])
    for name, value in a.get_weights().items():
        np.testing.assert_array_equal(value, b.get_weights()[name])


SUBNORMAL = torch.finfo(torch.float32).tiny / 4  # below the smallest normal float32


def test_flush_denormals_flushes_inside_the_block_and_restores_the_mode_after():
    assert not denormals_flushed()
    assert (torch.tensor(SUBNORMAL) * 1.0).item() == SUBNORMAL
    with flush_denormals():
        assert denormals_flushed()
        assert (torch.tensor(SUBNORMAL * 4) / 4).item() == 0.0
    assert not denormals_flushed()
    with pytest.raises(RuntimeError, match="inside"), flush_denormals():
        raise RuntimeError("an error inside the block")
    assert not denormals_flushed()
    torch.set_flush_denormal(True)  # a process that flushes already keeps flushing
    try:
        with flush_denormals():
            pass
        assert denormals_flushed()
    finally:
        torch.set_flush_denormal(False)


def test_dqn_learns_with_denormals_flushed_and_leaves_the_mode_as_it_was():
    seen = []

    def recording_stats(policy, train_batch):  # runs inside learn_on_batch
        seen.append(denormals_flushed())
        return dqn_stats(policy, train_batch)

    policy = DQNTorchPolicy.with_updates(stats_fn=recording_stats)(OBS_SPACE, ACT_SPACE, SMALL)
    batch = policy.postprocess_trajectory(episode_piece([1.0, 0.0, 1.0], terminated_at_end=True))
    result = policy.learn_on_batch(batch)
    assert seen == [True] and not denormals_flushed()
    assert result["td_error"].shape == (3,)


def test_dqn_rejects_continuous_actions_with_a_clear_message():
    with pytest.raises(TypeError, match="needs a Discrete action space.*PPO or A2C"):
        DQNTorchPolicy(OBS_SPACE, gym.spaces.Box(-1.0, 1.0, (2,), np.float32), SMALL)


# --- learning on CartPole ----------------------------------------------------------------------


def make_cartpole(env_context):
    return gym.make("CartPole-v1")


def cartpole_worker(policy_class, config):
    return RolloutWorker(
        env_creator=make_cartpole, policy_class=policy_class, config={"seed": 0, **config}
    )


def mean_return(returns, last=20):
    return float(np.mean(returns[-last:]))


@pytest.mark.slow
def test_a2c_learns_cartpole():
    config = {
        "rollout_fragment_length": 20,
        "num_envs_per_worker": 8,
        "model": {"fcnet_hiddens": [64, 64]},
    }
    worker = cartpole_worker(
        A3CTorchPolicy, config
    )  # the default lr (1e-3), gamma, lambda and coefficients
    policy, returns = worker.get_policy(), []
    for _ in range(120):
        policy.learn_on_batch(worker.sample())
        returns += [m.episode_reward for m in worker.get_metrics()]
    assert mean_return(returns) > 80, (
        f"A2C's mean return {mean_return(returns):.1f}; a random policy gets ~22"
    )


@pytest.mark.slow
def test_ppo_learns_cartpole():
    config = {
        "rollout_fragment_length": 128,
        "num_envs_per_worker": 4,
        "lr": 1e-3,
        "lambda": 0.95,
        "vf_loss_coeff": 0.5,
        "model": {"fcnet_hiddens": [64, 64]},
    }
    worker = cartpole_worker(PPOTorchPolicy, config)
    policy, returns = worker.get_policy(), []
    for iteration in range(25):
        batch = worker.sample()
        for epoch in range(4):
            for minibatch in batch.minibatches(128, shuffle=True, seed=10 * iteration + epoch):
                stats = policy.learn_on_batch(minibatch)["learner_stats"]
        policy.update_kl(stats["kl"])
        returns += [m.episode_reward for m in worker.get_metrics()]
    assert mean_return(returns) > 80, (
        f"PPO's mean return {mean_return(returns):.1f}; a random policy gets ~22"
    )


@pytest.mark.slow
def test_dqn_learns_cartpole_from_replay():
    config = {
        "rollout_fragment_length": 4,
        "lr": 1e-3,
        "n_step": 3,
        "hiddens": [64],
        "model": {"fcnet_hiddens": [64], "fcnet_activation": "relu"},
        "exploration_config": {
            "type": "EpsilonGreedy",
            "final_epsilon": 0.02,
            "epsilon_timesteps": 3000,
        },
    }
    worker = cartpole_worker(DQNTorchPolicy, config)
    policy, returns, replay, rng = worker.get_policy(), [], [], np.random.default_rng(0)
    for iteration in range(1250):
        replay = [*replay[-1249:], worker.sample()]  # the last 5000 transitions
        if iteration >= 125:  # learning starts after 500 steps of (mostly random) experience
            if iteration % 50 == 0 or iteration == 125:
                memory = SampleBatch.concat_samples(replay)
            rows = rng.integers(memory.count, size=32)
            policy.learn_on_batch(
                SampleBatch({name: column[rows] for name, column in memory.items()})
            )
        if iteration % 125 == 0:
            policy.update_target()
        returns += [m.episode_reward for m in worker.get_metrics()]
    assert mean_return(returns, last=10) > 80, (
        f"DQN's mean return {mean_return(returns, 10):.1f}; a random policy gets ~22"
    )
