"""Multi-agent environments: many agents in one env, talking to it through dicts keyed by agent id.

One ``step`` takes ``{agent_id: action}`` for the agents that were just given an observation and
returns five dicts keyed by agent id (gymnasium's API, one dict per value)::

    obs, infos = env.reset(seed=0)                 # {"player1": 0, "player2": 0}, {...}
    obs, rewards, terminateds, truncateds, infos = env.step({"player1": 1, "player2": 2})
    terminateds["__all__"] or truncateds["__all__"]  # True ends the episode for everyone

The agents present in the returned ``obs`` dict act next, unless that obs is their last (their
own terminated/truncated flag is True), so agents can take turns, join late and leave early.
This module holds the base class, ``make_multi_agent`` (N copies of a single-agent env as N
agents) and the 2021 RLlib tutorial's ``RockPaperScissors``.

Introduced in notebooks/20_multi_agent.ipynb.
"""

from __future__ import annotations

from typing import Any

from gymnasium import spaces

from course_lib.envs.registry import make_env
from course_lib.rock_paper_scissors import beats
from course_lib.validation import is_whole_number

ALL_AGENTS = "__all__"


class MultiAgentEnv:
    """Base class of environments that host several agents, identified by agent ids.

    Introduced in notebooks/20_multi_agent.ipynb.

    Subclasses implement:

    * ``reset(*, seed=None, options=None) -> (obs, infos)``: dicts for the agents that act first.
    * ``step(action_dict) -> (obs, rewards, terminateds, truncateds, infos)``: ``action_dict`` has
      one action for each agent of the last ``obs`` dict that is not done, no more, no less.
      ``rewards`` covers the agents rewarded this step; ``terminateds``/``truncateds`` map agent ids
      to bools and always carry ``"__all__"``, which ends the episode for every agent. An agent
      whose own flag is True gets its final observation in this step's ``obs`` and no further ones.

    and set their spaces either per agent (``self.observation_spaces = {agent_id: space}``, the same
    for ``action_spaces``) or once for all agents (``self.observation_space = space``). Both views
    are then available. ``possible_agents`` lists every agent id that can ever appear.
    """

    possible_agents: list | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        raise NotImplementedError(
            f"{type(self).__name__} must implement reset(*, seed=None, options=None)."
        )

    def step(self, action_dict: dict) -> tuple[dict, dict, dict, dict, dict]:
        raise NotImplementedError(f"{type(self).__name__} must implement step(action_dict).")

    def render(self):
        return None

    def close(self) -> None:
        pass

    # --- agents and spaces --------------------------------------------------------------------

    def get_agent_ids(self) -> set:
        """Every agent id that can appear in this env's dicts."""
        if self.possible_agents is not None:
            return set(self.possible_agents)
        return set(self.__dict__.get("_observation_spaces") or {}) | set(
            self.__dict__.get("_action_spaces") or {}
        )

    @property
    def observation_spaces(self) -> dict:
        """``{agent_id: observation space}`` for every agent of ``possible_agents``."""
        return self._per_agent_spaces("observation")

    @observation_spaces.setter
    def observation_spaces(self, value: dict) -> None:
        self._observation_spaces = dict(value)

    @property
    def action_spaces(self) -> dict:
        """``{agent_id: action space}`` for every agent of ``possible_agents``."""
        return self._per_agent_spaces("action")

    @action_spaces.setter
    def action_spaces(self, value: dict) -> None:
        self._action_spaces = dict(value)

    @property
    def observation_space(self) -> spaces.Space:
        """The observation space of every agent; only defined when all agents share one."""
        return self._shared_space("observation")

    @observation_space.setter
    def observation_space(self, value: spaces.Space) -> None:
        self._observation_space = value

    @property
    def action_space(self) -> spaces.Space:
        """The action space of every agent; only defined when all agents share one."""
        return self._shared_space("action")

    @action_space.setter
    def action_space(self, value: spaces.Space) -> None:
        self._action_space = value

    def observation_space_for(self, agent_id) -> spaces.Space:
        """The observation space of one agent (a worker builds that agent's policy from it)."""
        return self._space_for(agent_id, "observation")

    def action_space_for(self, agent_id) -> spaces.Space:
        """The action space of one agent."""
        return self._space_for(agent_id, "action")

    def _per_agent_spaces(self, kind: str) -> dict:
        per_agent = self.__dict__.get(f"_{kind}_spaces")
        if per_agent is not None:
            return per_agent
        return {agent_id: self._shared_space(kind) for agent_id in self.possible_agents or []}

    def _shared_space(self, kind: str) -> spaces.Space:
        shared = self.__dict__.get(f"_{kind}_space")
        if shared is not None:
            return shared
        per_agent = self.__dict__.get(f"_{kind}_spaces")
        if not per_agent:
            raise AttributeError(
                f"{type(self).__name__} has no {kind} spaces: in __init__, set either "
                f"self.{kind}_space (one space shared by all agents) or self.{kind}_spaces "
                "(a dict agent id -> space)."
            )
        first, *others = per_agent.values()
        if any(space != first for space in others):
            raise AttributeError(
                f"The agents of {type(self).__name__} have different {kind} spaces, so there is no "
                f"single {kind}_space; use {kind}_spaces[agent_id] or {kind}_space_for(agent_id)."
            )
        return first

    def _space_for(self, agent_id, kind: str) -> spaces.Space:
        per_agent = self.__dict__.get(f"_{kind}_spaces")
        if per_agent is None:
            return self._shared_space(kind)
        if agent_id not in per_agent:
            raise KeyError(
                f"{type(self).__name__} has no agent {agent_id!r}; "
                f"its agents are {_sorted(per_agent)}."
            )
        return per_agent[agent_id]

    # --- helpers for step() -------------------------------------------------------------------

    def check_action_dict(self, action_dict: Any, acting_agents) -> None:
        """Fail with a clear message unless ``action_dict`` holds one valid action per acting agent.

        ``acting_agents`` are the agents of the last observation dict that are not done: exactly
        those must act.
        """
        name = type(self).__name__
        if not isinstance(action_dict, dict):
            raise TypeError(
                f"{name}.step() takes a dict {{agent_id: action}}, got "
                f"{type(action_dict).__name__} {action_dict!r}. The "
                f"agents that act now are {_sorted(acting_agents)}."
            )
        expected, given = set(acting_agents), set(action_dict)
        problems = []
        if expected - given:
            problems.append(f"no action for {_sorted(expected - given)}")
        unknown = {agent for agent in given - expected if agent not in self.get_agent_ids()}
        if unknown:
            problems.append(
                f"unknown agents {_sorted(unknown)} (this env's "
                f"agents: {_sorted(self.get_agent_ids())})"
            )
        if given - expected - unknown:
            problems.append(
                f"actions for {_sorted(given - expected - unknown)}, who "
                "do not act at this step (done, or given no observation)"
            )
        if problems:
            raise ValueError(
                f"{name}.step() got an action dict with {'; '.join(problems)}. Expected exactly "
                "one action for each agent that got an "
                f"observation and is not done: {_sorted(expected)}."
            )
        for agent_id, action in action_dict.items():
            space = self.action_space_for(agent_id)
            if not space.contains(action):
                raise ValueError(
                    f"{name}.step(): the action {action!r} for agent "
                    f"{agent_id!r} is not in its action space {space}."
                )


def make_multi_agent(env_name_or_creator) -> type[MultiAgentEnv]:
    """A MultiAgentEnv class whose agents ``0..N-1`` each play their own copy of a single-agent env.

    Introduced in notebooks/20_multi_agent.ipynb.

    ``env_name_or_creator`` is anything ``make_env`` accepts (a gymnasium id, a registered name, an
    env class or creator). The class is built with ``env_config``; ``env_config["num_agents"]``
    (default 1) sets N and the other keys configure every copy. Each agent is done on its own;
    once done it gets no more observations, and the episode ends (``"__all__"``) when all are done:
    ``terminateds["__all__"]`` if every agent terminated, else ``truncateds["__all__"]``.
    ``reset(seed=s)`` seeds copy i with ``s + i``, so the copies differ but runs repeat.
    """
    env_name = (
        env_name_or_creator
        if isinstance(env_name_or_creator, str)
        else getattr(env_name_or_creator, "__name__", "Env")
    )
    env_name = "".join(char for char in env_name.split("-")[0] if char.isalnum())

    class MultiAgentCopies(MultiAgentEnv):
        def __init__(self, env_config: dict | None = None):
            config = dict(env_config or {})
            num_agents = config.pop("num_agents", 1)
            if not is_whole_number(num_agents) or num_agents < 1:
                raise ValueError(
                    f"env_config['num_agents'] must be an int >= 1, got {num_agents!r}."
                )
            where = {key: getattr(env_config, key, 0) for key in ("worker_index", "vector_index")}
            self.envs = [
                make_env(env_name_or_creator, dict(config), **where) for _ in range(num_agents)
            ]
            self.possible_agents = list(range(num_agents))
            self.observation_space = self.envs[0].observation_space
            self.action_space = self.envs[0].action_space
            self._acting: set[int] = set()
            self._terminated: set[int] = set()

        def reset(
            self, *, seed: int | None = None, options: dict | None = None
        ) -> tuple[dict, dict]:
            obs, infos = {}, {}
            for agent_id, env in enumerate(self.envs):
                obs[agent_id], infos[agent_id] = env.reset(
                    seed=None if seed is None else seed + agent_id, options=options
                )
            self._acting, self._terminated = set(self.possible_agents), set()
            return obs, infos

        def step(self, action_dict: dict) -> tuple[dict, dict, dict, dict, dict]:
            if not self._acting:
                raise RuntimeError(
                    f"{type(self).__name__}.step() needs a running episode (it was never reset, or "
                    "all agents are done): call reset() first."
                )
            self.check_action_dict(action_dict, self._acting)
            obs, rewards, terminateds, truncateds, infos = {}, {}, {}, {}, {}
            for agent_id, action in action_dict.items():
                step = self.envs[agent_id].step(action)
                (
                    obs[agent_id],
                    rewards[agent_id],
                    terminateds[agent_id],
                    truncateds[agent_id],
                    infos[agent_id],
                ) = step
                if terminateds[agent_id] or truncateds[agent_id]:
                    self._acting.discard(agent_id)
                if terminateds[agent_id]:
                    self._terminated.add(agent_id)
            everyone_done = not self._acting
            terminateds[ALL_AGENTS] = everyone_done and len(self._terminated) == len(self.envs)
            truncateds[ALL_AGENTS] = everyone_done and not terminateds[ALL_AGENTS]
            return obs, rewards, terminateds, truncateds, infos

        def render(self):
            return [env.render() for env in self.envs]

        def close(self) -> None:
            for env in self.envs:
                env.close()

    MultiAgentCopies.__name__ = MultiAgentCopies.__qualname__ = f"MultiAgent{env_name}"
    MultiAgentCopies.__doc__ = (
        f"``env_config['num_agents']`` copies of {env_name_or_creator!r} as agents "
        "0..N-1 (see make_multi_agent).\n\nIntroduced in notebooks/20_multi_agent.ipynb."
    )
    return MultiAgentCopies


class RockPaperScissors(MultiAgentEnv):
    """Two-player rock paper scissors, from the 2021 RLlib tutorial; the observation is the
    opponent's last move.

    Introduced in notebooks/20_multi_agent.ipynb.

    * agents: ``"player1"`` and ``"player2"``, both acting at every step
    * actions: ``Discrete(3)`` (rock, paper, scissors), or ``Discrete(5)`` adding lizard and Spock
      with ``config["sheldon_cooper"] = True``
    * observation: ``Discrete`` of the same size, the opponent's previous move (0 after reset)
    * rewards: +1 to the winner, -1 to the loser, 0 each for a draw (zero-sum)
    * a game is 10 moves and ends with ``terminateds["__all__"]``: the 10-move end is a rule of this
      game, not a limit set from outside, so after it there is nothing more to win (lesson 03's
      rule; RLlib's own example, ``rllib/examples/envs/classes/multi_agent/rock_paper_scissors.py``,
      ends it the same way)

    ``player1_score``/``player2_score`` sum the rewards over the env's life, for inspection.
    """

    MOVES_PER_EPISODE = 10

    def __init__(self, config: dict | None = None):
        self.sheldon_cooper = (config or {}).get("sheldon_cooper", False)
        self.action_space = spaces.Discrete(5 if self.sheldon_cooper else 3)
        self.observation_space = spaces.Discrete(5 if self.sheldon_cooper else 3)
        self.player1 = "player1"
        self.player2 = "player2"
        self.possible_agents = [self.player1, self.player2]
        self.last_move = None
        self.num_moves = 0

        # For test-case inspections (compare both players' scores).
        self.player1_score = self.player2_score = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        # Nothing here is random, so there is nothing to seed.
        self.last_move = (0, 0)
        self.num_moves = 0
        obs = {self.player1: self.last_move[1], self.player2: self.last_move[0]}
        return obs, {self.player1: {}, self.player2: {}}

    def step(self, action_dict: dict) -> tuple[dict, dict, dict, dict, dict]:
        if self.last_move is None or self.num_moves >= self.MOVES_PER_EPISODE:
            raise RuntimeError("RockPaperScissors.step() needs a running game: call reset() first.")
        self.check_action_dict(action_dict, self.possible_agents)
        move1, move2 = int(action_dict[self.player1]), int(action_dict[self.player2])
        self.last_move = (move1, move2)
        self.num_moves += 1

        score1 = 1 if beats(move1, move2) else -1 if beats(move2, move1) else 0
        self.player1_score += score1
        self.player2_score -= score1
        obs = {self.player1: move2, self.player2: move1}
        rewards = {self.player1: float(score1), self.player2: float(-score1)}
        over = self.num_moves >= self.MOVES_PER_EPISODE
        terminateds = {self.player1: over, self.player2: over, ALL_AGENTS: over}
        truncateds = {self.player1: False, self.player2: False, ALL_AGENTS: False}
        return obs, rewards, terminateds, truncateds, {self.player1: {}, self.player2: {}}


def _sorted(agent_ids) -> list:
    """Agent ids in a stable order for messages (ids may mix ints and strings)."""
    return sorted(agent_ids, key=lambda agent_id: (type(agent_id).__name__, agent_id))
