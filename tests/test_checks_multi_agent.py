"""Graders of lesson 20 accept right answers and name the mistake in wrong ones."""

from __future__ import annotations

import random

import numpy as np
import pytest

from course_lib import checks
from course_lib.policy.heuristics import BeatLastHeuristic, HeuristicPolicy

# --- 20.1 policy mapping ----------------------------------------------------------------------


def select_policy_right(agent_id, episode, **kwargs):
    if agent_id == "player1":
        return "learned"
    return "always_same" if episode.episode_id % 2 == 0 else "beat_last"


def test_mapping_accepts_the_reference(capsys):
    checks.check_policy_mapping(select_policy_right)
    assert "Exercise 20.1 passed" in capsys.readouterr().out


def test_mapping_without_kwargs_is_explained():
    def no_kwargs(agent_id, episode):
        return select_policy_right(agent_id, episode)

    with pytest.raises(checks.CheckFailed, match=r"\*\*kwargs"):
        checks.check_policy_mapping(no_kwargs)


def test_mapping_with_an_unknown_policy_id_is_explained():
    def typo(agent_id, episode, **kwargs):
        return "learned" if agent_id == "player1" else "alwayssame"

    with pytest.raises(checks.CheckFailed, match="not a policy of this config"):
        checks.check_policy_mapping(typo)


def test_mapping_that_returns_a_policy_object_is_explained():
    def returns_tuple(agent_id, episode, **kwargs):
        return (None, None, None, {})

    with pytest.raises(checks.CheckFailed, match="return a policy id"):
        checks.check_policy_mapping(returns_tuple)


def test_random_mapping_is_told_to_use_the_episode_id():
    random.seed(1)

    def seeds_choice(agent_id, episode, **kwargs):
        return "learned" if agent_id == "player1" else random.choice(["always_same", "beat_last"])

    with pytest.raises(checks.CheckFailed, match="episode_id|parity|odd|even"):
        checks.check_policy_mapping(seeds_choice)


def test_swapped_parity_is_explained():
    def swapped(agent_id, episode, **kwargs):
        if agent_id == "player1":
            return "learned"
        return "beat_last" if episode.episode_id % 2 == 0 else "always_same"

    with pytest.raises(checks.CheckFailed, match="episode.episode_id % 2 == 0"):
        checks.check_policy_mapping(swapped)


def test_player1_not_learning_is_explained():
    def both_heuristic(agent_id, episode, **kwargs):
        return "always_same" if episode.episode_id % 2 == 0 else "beat_last"

    with pytest.raises(checks.CheckFailed, match="player1 is the learner"):
        checks.check_policy_mapping(both_heuristic)


# --- 20.2 heuristic policy --------------------------------------------------------------------


class CopyLastRight(HeuristicPolicy):
    def compute_actions(
        self,
        obs_batch,
        state_batches=None,
        prev_action_batch=None,
        prev_reward_batch=None,
        explore=None,
        timestep=None,
        **kwargs,
    ):
        return np.asarray(obs_batch, dtype=np.int64), [], {}


def test_heuristic_accepts_the_reference(capsys):
    checks.check_heuristic_policy(CopyLastRight)
    assert "Exercise 20.2 passed" in capsys.readouterr().out


def test_heuristic_returning_only_actions_is_told_about_the_triple():
    class ActionsOnly(HeuristicPolicy):
        def compute_actions(self, obs_batch, *args, **kwargs):
            return np.asarray(obs_batch, dtype=np.int64)

    with pytest.raises(checks.CheckFailed, match="triple"):
        checks.check_heuristic_policy(ActionsOnly)


def test_heuristic_with_column_actions_is_told_the_shape():
    class Column(HeuristicPolicy):
        def compute_actions(self, obs_batch, *args, **kwargs):
            return np.asarray(obs_batch, dtype=np.int64)[:, None], [], {}

    with pytest.raises(checks.CheckFailed, match=r"shape \(B,\)"):
        checks.check_heuristic_policy(Column)


def test_heuristic_with_float_actions_is_told_the_dtype():
    class Floats(HeuristicPolicy):
        def compute_actions(self, obs_batch, *args, **kwargs):
            return np.asarray(obs_batch, dtype=np.float32), [], {}

    with pytest.raises(checks.CheckFailed, match="int64"):
        checks.check_heuristic_policy(Floats)


def test_heuristic_playing_the_wrong_move_is_explained():
    with pytest.raises(checks.CheckFailed, match="copy the observation"):
        checks.check_heuristic_policy(BeatLastHeuristic)


def test_heuristic_that_learns_is_explained():
    class Learns(CopyLastRight):
        def learn_on_batch(self, samples):
            self.learned = True
            return {"learner_stats": {}}

        def get_weights(self):
            return {"learned": getattr(self, "learned", False)}

    with pytest.raises(checks.CheckFailed, match="learn_on_batch must change nothing"):
        checks.check_heuristic_policy(Learns)


def test_heuristic_not_a_heuristic_policy_is_explained():
    class Plain:
        pass

    with pytest.raises(checks.CheckFailed, match="subclass HeuristicPolicy"):
        checks.check_heuristic_policy(Plain)
