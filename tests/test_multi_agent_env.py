"""Specification of multi-agent envs (MultiAgentEnv, make_multi_agent, RockPaperScissors) and the
rock-paper-scissors heuristic policies."""

import itertools
import pickle

import numpy as np
import pytest
from gymnasium import spaces

from course_lib.envs.multi_agent import MultiAgentEnv, RockPaperScissors, make_multi_agent
from course_lib.policy.heuristics import AlwaysSameHeuristic, BeatLastHeuristic
from course_lib.rock_paper_scissors import LIZARD, PAPER, ROCK, SCISSORS, SPOCK, beats
from course_lib.sample_batch import SampleBatch

P1, P2 = "player1", "player2"


class LateJoinerEnv(MultiAgentEnv):
    """Agent "early" acts at steps 0-2 and then terminates; "late" joins at step 2; 5 steps in
    all."""

    def __init__(self, env_config=None):
        self.possible_agents = ["early", "late"]
        self.observation_spaces = {
            "early": spaces.Discrete(10),
            "late": spaces.Box(-1.0, 1.0, (2,), np.float32),
        }
        self.action_spaces = {"early": spaces.Discrete(2), "late": spaces.Discrete(3)}
        self.t = 0

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return {"early": 0}, {"early": {}}

    def step(self, action_dict):
        acting = [
            agent
            for agent, first, last in (("early", 0, 2), ("late", 2, 4))
            if first <= self.t <= last
        ]
        self.check_action_dict(action_dict, acting)
        self.t += 1
        obs = {}
        if self.t <= 3:
            obs["early"] = self.t
        if self.t >= 2:
            obs["late"] = np.zeros(2, np.float32)
        rewards = {agent: 1.0 for agent in obs}
        terminateds = {agent: agent == "early" and self.t == 3 for agent in obs}
        terminateds["__all__"] = self.t == 5
        truncateds = {agent: False for agent in obs} | {"__all__": False}
        return obs, rewards, terminateds, truncateds, {agent: {} for agent in obs}


def acting_agents(obs, terminateds, truncateds):
    """The agents that act next: those with an observation that was not their last."""
    return [agent for agent in obs if not (terminateds.get(agent) or truncateds.get(agent))]


def play_rps(env, policies, episodes=1):
    """Run ``policies`` ({player: Policy}) like a worker does; return the per-step action and reward
    dicts."""
    history = []
    for _ in range(episodes):
        obs, _ = env.reset()
        states = {player: policy.get_initial_state() for player, policy in policies.items()}
        done = False
        while not done:
            actions = {}
            for player, policy in policies.items():
                actions[player], states[player], _ = policy.compute_single_action(
                    obs[player], states[player]
                )
            obs, rewards, terminateds, truncateds, _ = env.step(actions)
            history.append((actions, rewards))
            done = terminateds["__all__"] or truncateds["__all__"]
    return history


# --- MultiAgentEnv ------------------------------------------------------------------------------


def test_agents_act_only_when_they_have_an_observation():
    env = LateJoinerEnv()
    obs, infos = env.reset()
    assert set(obs) == set(infos) == {"early"}
    seen, acting = [], list(obs)
    while True:
        obs, rewards, terminateds, truncateds, infos = env.step({agent: 0 for agent in acting})
        acting = acting_agents(obs, terminateds, truncateds)
        assert "__all__" in terminateds and "__all__" in truncateds
        assert set(rewards) == set(infos) == set(obs)
        seen.append((sorted(obs), terminateds.get("early", False)))
        if terminateds["__all__"]:
            break
    assert seen == [
        (["early"], False),
        (["early", "late"], False),
        (["early", "late"], True),
        (["late"], False),
        (["late"], False),
    ]


def test_action_dict_errors_name_the_agents_that_must_act():
    env = LateJoinerEnv()
    env.reset()
    with pytest.raises(ValueError, match=r"no action for \['early'\].*\['early'\]"):
        env.step({})
    with pytest.raises(ValueError, match=r"'late'\], who do not act at this step"):
        env.step({"early": 0, "late": 0})
    with pytest.raises(
        ValueError, match=r"unknown agents \['ghost'\].*this env's agents: \['early', 'late'\]"
    ):
        env.step({"early": 0, "ghost": 1})
    with pytest.raises(
        ValueError, match=r"action 5 for agent 'early' is not in its action space Discrete\(2\)"
    ):
        env.step({"early": 5})
    with pytest.raises(TypeError, match="takes a dict"):
        env.step(0)


def test_per_agent_spaces_and_their_lookup():
    env = LateJoinerEnv()
    assert env.get_agent_ids() == {"early", "late"}
    assert env.observation_space_for("late") == spaces.Box(-1.0, 1.0, (2,), np.float32)
    assert env.action_space_for("early") == spaces.Discrete(2)
    assert env.action_spaces == {"early": spaces.Discrete(2), "late": spaces.Discrete(3)}
    with pytest.raises(AttributeError, match="different action spaces"):
        _ = env.action_space
    with pytest.raises(KeyError, match=r"no agent 'ghost'; its agents are \['early', 'late'\]"):
        env.observation_space_for("ghost")


def test_one_shared_space_gives_per_agent_dicts_and_equal_dicts_give_a_shared_space():
    env = RockPaperScissors({})
    assert env.observation_spaces == {P1: spaces.Discrete(3), P2: spaces.Discrete(3)}
    assert env.action_space_for(P2) == spaces.Discrete(3)
    twins = MultiAgentEnv()
    twins.action_spaces = {"a": spaces.Discrete(4), "b": spaces.Discrete(4)}
    assert twins.action_space == spaces.Discrete(4) and twins.get_agent_ids() == {"a", "b"}


def test_base_class_explains_what_to_implement():
    env = MultiAgentEnv()
    with pytest.raises(NotImplementedError, match="reset"):
        env.reset()
    with pytest.raises(NotImplementedError, match="step"):
        env.step({})
    with pytest.raises(AttributeError, match="set either self.observation_space"):
        _ = env.observation_space


# --- make_multi_agent ---------------------------------------------------------------------------

MultiAgentCartPole = make_multi_agent("CartPole-v1")


def test_make_multi_agent_builds_one_agent_per_copy():
    env = MultiAgentCartPole({"num_agents": 3})
    assert MultiAgentCartPole.__name__ == "MultiAgentCartPole"
    assert env.possible_agents == [0, 1, 2] and len(env.envs) == 3
    assert env.action_space == spaces.Discrete(2) and set(env.observation_spaces) == {0, 1, 2}
    obs, infos = env.reset(seed=0)
    assert set(obs) == set(infos) == {0, 1, 2}
    assert all(env.observation_space.contains(o) for o in obs.values())
    assert len(MultiAgentCartPole().envs) == 1
    with pytest.raises(ValueError, match="num_agents"):
        MultiAgentCartPole({"num_agents": 0})


def test_make_multi_agent_agents_are_done_independently():
    env = MultiAgentCartPole({"num_agents": 2})
    obs, _ = env.reset(seed=0)
    acting, steps, done_at = list(obs), 0, {}
    while True:
        # Agent 0 always pushes left and falls fast; agent 1 alternates and stays up longer.
        actions = {agent: 0 if agent == 0 else steps % 2 for agent in acting}
        obs, rewards, terminateds, truncateds, _ = env.step(actions)
        steps += 1
        assert set(rewards) == set(obs) == set(actions), "a done agent gets its last obs, then none"
        done_at.update(
            {agent: steps for agent in actions if terminateds[agent] or truncateds[agent]}
        )
        if terminateds["__all__"]:
            break
        assert not truncateds["__all__"]
        acting = acting_agents(obs, terminateds, truncateds)
    assert done_at[0] < done_at[1] == steps
    with pytest.raises(RuntimeError, match="call reset"):
        env.step({})


def test_make_multi_agent_after_a_done_agent_acting_is_an_error():
    env = MultiAgentCartPole({"num_agents": 2})
    obs, _ = env.reset(seed=0)
    terminateds, step = {}, 0
    while not terminateds.get(0):  # agent 0 always pushes left and falls first
        obs, _, terminateds, _, _ = env.step({0: 0, 1: step % 2})
        step += 1
    assert 1 in obs and 0 in obs
    with pytest.raises(
        ValueError, match=r"actions for \[0\], who do not act at this step.*not done: \[1\]"
    ):
        env.step({0: 0, 1: 0})


def test_make_multi_agent_truncated_when_any_agent_was_cut_off():
    env = MultiAgentCartPole({"num_agents": 2, "max_episode_steps": 30})
    obs, _ = env.reset(seed=0)
    acting, terminated_early = list(obs), False
    for step in range(30):
        obs, _, terminateds, truncateds, _ = env.step(
            {agent: 0 if agent == 0 else step % 2 for agent in acting}
        )
        terminated_early = terminated_early or terminateds.get(0, False)
        acting = acting_agents(obs, terminateds, truncateds)
    assert terminated_early and truncateds[1] and not terminateds[1]
    assert truncateds["__all__"] and not terminateds["__all__"]


def test_make_multi_agent_seeding_repeats_and_copies_differ():
    first, second = MultiAgentCartPole({"num_agents": 2}), MultiAgentCartPole({"num_agents": 2})
    obs_a, _ = first.reset(seed=7)
    obs_b, _ = second.reset(seed=7)
    np.testing.assert_array_equal(obs_a[1], obs_b[1])
    assert not np.array_equal(obs_a[0], obs_a[1])
    step_a, step_b = first.step({0: 1, 1: 0}), second.step({0: 1, 1: 0})
    np.testing.assert_array_equal(step_a[0][0], step_b[0][0])


def test_make_multi_agent_passes_env_config_to_each_copy():
    env = make_multi_agent("Corridor")({"num_agents": 2, "corridor_length": 3})
    assert [copy.corridor_length for copy in env.envs] == [3, 3]


# --- RockPaperScissors --------------------------------------------------------------------------

# Sheldon's list: who beats whom in rock-paper-scissors-lizard-Spock.
RPSLS_WINS = {
    (SCISSORS, PAPER),
    (PAPER, ROCK),
    (ROCK, LIZARD),
    (LIZARD, SPOCK),
    (SPOCK, SCISSORS),
    (SCISSORS, LIZARD),
    (LIZARD, PAPER),
    (PAPER, SPOCK),
    (SPOCK, ROCK),
    (ROCK, SCISSORS),
}


@pytest.mark.parametrize("num_moves", [3, 5])
def test_rps_rewards_every_pair_of_moves_zero_sum(num_moves):
    env = RockPaperScissors({"sheldon_cooper": num_moves == 5})
    assert env.action_space == env.observation_space == spaces.Discrete(num_moves)
    for move1, move2 in itertools.product(range(num_moves), repeat=2):
        env.reset()
        obs, rewards, _, _, _ = env.step({P1: move1, P2: move2})
        expected = (
            1.0 if (move1, move2) in RPSLS_WINS else -1.0 if (move2, move1) in RPSLS_WINS else 0.0
        )
        assert rewards == {P1: expected, P2: -expected}, (move1, move2)
        assert obs == {P1: move2, P2: move1}
        assert beats(move1, move2) == (expected == 1.0)


def test_rps_classic_game_has_no_lizard():
    env = RockPaperScissors({})
    env.reset()
    with pytest.raises(ValueError, match=r"action 3 for agent 'player1'.*Discrete\(3\)"):
        env.step({P1: LIZARD, P2: ROCK})
    with pytest.raises(ValueError, match=r"no action for \['player2'\]"):
        env.step({P1: ROCK})


def test_rps_game_terminates_after_ten_moves_and_scores_add_up():
    env = RockPaperScissors({})
    obs, infos = env.reset()
    assert obs == {P1: 0, P2: 0} and set(infos) == {P1, P2}
    for move in range(10):
        _, _, terminateds, truncateds, _ = env.step({P1: PAPER, P2: ROCK if move < 7 else SCISSORS})
        # The 10-move end is the game's own rule: terminated, never truncated.
        assert terminateds == {P1: move == 9, P2: move == 9, "__all__": move == 9}
        assert not any(truncateds.values())
    assert (env.player1_score, env.player2_score) == (7 - 3, 3 - 7)
    with pytest.raises(RuntimeError, match="call reset"):
        env.step({P1: ROCK, P2: ROCK})
    env.reset()
    assert env.player1_score == 4, (
        "scores add up over the env's life, as in the 2021 RLlib tutorial"
    )


# --- heuristic policies -------------------------------------------------------------------------


@pytest.mark.parametrize("num_moves", [3, 5])
def test_always_same_repeats_its_move_within_an_episode_through_its_state(num_moves):
    env = RockPaperScissors({"sheldon_cooper": num_moves == 5})
    space = spaces.Discrete(num_moves)
    policy = AlwaysSameHeuristic(space, space, {"seed": 0})
    history = play_rps(env, {P1: policy, P2: BeatLastHeuristic(space, space, {})}, episodes=20)
    episodes = [history[i : i + 10] for i in range(0, len(history), 10)]
    chosen = [{int(actions[P1]) for actions, _ in episode} for episode in episodes]
    assert all(len(moves) == 1 for moves in chosen)
    assert set().union(*chosen) == set(range(num_moves)), "each episode draws a new move"
    assert policy.is_recurrent() and policy.num_state_tensors() == 1
    actions, state_outs, extra = policy.compute_actions(
        np.zeros(3, np.int64), [np.array([2, 0, 1])]
    )
    assert actions.tolist() == state_outs[0].tolist() == [2, 0, 1] and extra == {}


@pytest.mark.parametrize("num_moves", [3, 5])
def test_beat_last_beats_every_observed_move(num_moves):
    space = spaces.Discrete(num_moves)
    policy = BeatLastHeuristic(space, space, {})
    moves = np.arange(num_moves)
    actions, state_outs, _ = policy.compute_actions(moves)
    assert state_outs == [] and actions.shape == (num_moves,)
    assert all(beats(action, move) for action, move in zip(actions, moves, strict=True))
    one_hot_actions, _, _ = policy.compute_actions(np.eye(num_moves, dtype=np.float32))
    assert one_hot_actions.tolist() == actions.tolist()


def test_beat_last_wins_every_move_but_the_first_against_always_same():
    space = spaces.Discrete(5)
    env = RockPaperScissors({"sheldon_cooper": True})
    policies = {
        P1: BeatLastHeuristic(space, space, {}),
        P2: AlwaysSameHeuristic(space, space, {"seed": 1}),
    }
    history = play_rps(env, policies, episodes=3)
    for episode_start in (0, 10, 20):
        assert [rewards[P1] for _, rewards in history[episode_start + 1 : episode_start + 10]] == [
            1.0
        ] * 9


def test_heuristics_learn_nothing():
    space = spaces.Discrete(3)
    batch = SampleBatch(
        {
            SampleBatch.OBS: np.array([0, 1, 2]),
            SampleBatch.ACTIONS: np.array([1, 2, 0]),
            SampleBatch.REWARDS: np.ones(3, np.float32),
        }
    )
    for policy in (
        AlwaysSameHeuristic(space, space, {"seed": 0}),
        BeatLastHeuristic(space, space, {}),
    ):
        state = [np.array([1, 1, 1])]
        before = policy.compute_actions(np.array([0, 1, 2]), state)[0]
        assert policy.learn_on_batch(batch) == {"learner_stats": {}}
        assert policy.get_weights() == {}
        policy.set_weights({})
        np.testing.assert_array_equal(policy.compute_actions(np.array([0, 1, 2]), state)[0], before)
        saved = pickle.loads(pickle.dumps(policy.get_state()))
        policy.set_state(saved)
        assert saved["weights"] == {}


def test_heuristics_reject_games_they_cannot_play():
    with pytest.raises(TypeError, match="Discrete action space"):
        AlwaysSameHeuristic(spaces.Discrete(3), spaces.Box(-1, 1, (1,)), {})
    with pytest.raises(ValueError, match="4 moves"):
        BeatLastHeuristic(spaces.Discrete(4), spaces.Discrete(4), {})
    with pytest.raises(ValueError, match="shape"):
        BeatLastHeuristic(spaces.Discrete(3), spaces.Discrete(3), {}).compute_actions(
            np.zeros((2, 2, 2))
        )
