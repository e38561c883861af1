"""Multi-agent sampling: many agents per env, each acting with the policy its episode maps it to.

A ``RolloutWorker`` whose env is a ``MultiAgentEnv`` (or whose config lists
``config["multiagent"]["policies"]``) builds one policy per policy id (policy_map.py) and samples
with a ``MultiAgentSampler``. At each step the sampler batches the observations of all acting
agents of all envs by policy (one ``compute_actions`` per policy), steps every env with its
action dict, and keeps one trajectory per agent. ``sample()`` postprocesses each agent's
trajectory with its own policy, shows it the other agents' trajectories (what a shared critic
reads), and returns a ``MultiAgentBatch`` with one SampleBatch per policy.

An agent's row opens when it acts and closes when its next observation arrives (or the episode
ends): rewards that arrive in between (turn-based games) are added to it. So each agent's rows are
in time order, and its last row in an episode is terminated or truncated. What it shares with the
single-agent sampler (filters, rows, episode hooks, metrics) lives in sampler.py.

Introduced in notebooks/20_multi_agent.ipynb.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from course_lib.envs.multi_agent import ALL_AGENTS, MultiAgentEnv
from course_lib.evaluation.episode import DEFAULT_AGENT_ID, Episode
from course_lib.evaluation.policy_map import default_policy_mapping_fn
from course_lib.evaluation.sampler import Sampler, action_row, close_row, rows_to_batch
from course_lib.sample_batch import STEP_COUNTS, MultiAgentBatch, SampleBatch


class SingleAgentEnvAsMulti(MultiAgentEnv):
    """A gymnasium env seen as a MultiAgentEnv with one agent, ``DEFAULT_AGENT_ID``.

    Introduced in notebooks/20_multi_agent.ipynb.
    """

    def __init__(self, env):
        self.env = env
        self.possible_agents = [DEFAULT_AGENT_ID]
        self.observation_space, self.action_space = env.observation_space, env.action_space

    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        return {DEFAULT_AGENT_ID: obs}, {DEFAULT_AGENT_ID: info}

    def step(self, action_dict):
        obs, reward, terminated, truncated, info = self.env.step(action_dict[DEFAULT_AGENT_ID])
        return (
            {DEFAULT_AGENT_ID: obs},
            {DEFAULT_AGENT_ID: reward},
            {DEFAULT_AGENT_ID: terminated, ALL_AGENTS: terminated},
            {DEFAULT_AGENT_ID: truncated, ALL_AGENTS: truncated},
            {DEFAULT_AGENT_ID: info},
        )

    def close(self):
        self.env.close()


@dataclass
class _AgentState:
    """One agent of a running episode: what its policy sees next, and its rows not yet returned."""

    policy_id: str
    index: int  # the agent_index column: order of first appearance in the episode
    state: list
    prev_action: object
    obs: object = None
    prev_reward: float = 0.0
    open_row: dict | None = None  # it acted and waits for its next observation
    rows: list = field(default_factory=list)


@dataclass
class _Slot:
    """One env, its running episode and the episodes that ended but were not returned yet."""

    env: MultiAgentEnv
    episode: Episode = None
    agents: dict = field(default_factory=dict)
    acting: list = field(default_factory=list)  # agent ids that act at the next step
    env_steps: int = 0  # env steps of the rows not returned yet
    finished: list = field(default_factory=list)  # (rows by agent, env steps, Episode)


class MultiAgentSampler(Sampler):
    """Steps a multi-agent worker's envs together; ``sample()`` returns a ``MultiAgentBatch``.

    ``config["multiagent"]["count_steps_by"]``: ``"env_steps"`` runs ``rollout_fragment_length``
    env steps per env; ``"agent_steps"`` runs until ``rollout_fragment_length * num_envs`` agent
    actions were taken. Episodes in progress are not part of ``get_state()``: a restored worker
    starts new episodes. Introduced in notebooks/20_multi_agent.ipynb.
    """

    def __init__(self, worker, envs: list, env_seeds: list, *, rng, metrics: list):
        super().__init__(worker, envs, env_seeds, rng=rng, metrics=metrics)
        multiagent = self.config.get("multiagent") or {}
        self.mapping_fn = multiagent.get("policy_mapping_fn") or default_policy_mapping_fn
        self.count_steps_by = multiagent.get("count_steps_by", "env_steps")
        if self.count_steps_by not in STEP_COUNTS:
            raise ValueError(
                f'config["multiagent"]["count_steps_by"] must be one of {STEP_COUNTS}, '
                f"got {self.count_steps_by!r}."
            )
        self.slots = [
            _Slot(env if isinstance(env, MultiAgentEnv) else SingleAgentEnvAsMulti(env))
            for env in envs
        ]

    def sample(self) -> MultiAgentBatch:
        """``rollout_fragment_length`` steps (``count_steps_by``); one SampleBatch per policy."""
        self._start_episodes_once()
        length = self.config["rollout_fragment_length"]
        complete_only = self.config["batch_mode"] == "complete_episodes"
        pieces, env_steps, collected = defaultdict(list), 0, 0
        while True:
            self._run(length)
            for batches, steps, agent_rows in self._cut_pieces(keep_unfinished=complete_only):
                for pid, policy_batches in batches.items():
                    pieces[pid].extend(policy_batches)
                env_steps += steps
                collected += steps if self.count_steps_by == "env_steps" else agent_rows
            if not complete_only or collected >= length * len(self.slots):
                break
        samples = MultiAgentBatch(
            {pid: SampleBatch.concat_samples(b) for pid, b in pieces.items() if b}, env_steps
        )
        self.callbacks.on_sample_end(worker=self.worker, samples=samples)
        return samples

    def get_state(self) -> None:
        """None: the episodes in progress are not saved, so after a restore they start afresh.

        (Their agents' rows, per-agent recurrent states and open rows would all have to be
        saved; the policies and filters, which the worker saves, are what training needs.)
        """
        return None

    def set_state(self, state: None) -> None:
        """Nothing to restore: see ``get_state``."""

    # --- episodes and agents ------------------------------------------------------------------

    def _start_episode(self, index: int, slot: _Slot, seed=None) -> None:
        raw_obs, infos = slot.env.reset(seed=seed)

        def policy_for(agent_id):
            return self.mapping_fn(agent_id, episode, worker=self.worker)

        episode = self.new_episode(index, policy_for)
        slot.episode, slot.agents, slot.acting = episode, {}, []
        for agent_id, raw in raw_obs.items():
            self._observe(slot, agent_id, raw, infos.get(agent_id, {}))
            slot.acting.append(agent_id)
        self.episode_started(index, slot.env, episode)

    def _agent(self, slot: _Slot, agent_id) -> _AgentState:
        """The agent's state in this episode; made (and mapped to its policy) on first sight."""
        if agent_id not in slot.agents:
            pid = slot.episode.policy_for(agent_id)
            policy = self.policy_map.get(pid)
            if policy is None:
                raise KeyError(
                    f"policy_mapping_fn mapped agent {agent_id!r} to policy {pid!r}, which is not "
                    f'in config["multiagent"]["policies"] (it has {list(self.policy_map)}).'
                )
            zero_action = np.zeros(policy.action_space.shape, dtype=policy.action_space.dtype)
            slot.agents[agent_id] = _AgentState(
                pid, len(slot.agents), policy.get_initial_state(), zero_action
            )
        return slot.agents[agent_id]

    def _observe(self, slot: _Slot, agent_id, raw_obs, info) -> _AgentState:
        agent = self._agent(slot, agent_id)
        agent.obs = self.filter_observation(agent.policy_id, raw_obs)
        slot.episode._record(agent_id, obs=agent.obs, raw_obs=raw_obs, info=info)
        return agent

    # --- the step loop ------------------------------------------------------------------------

    def _run(self, length: int) -> None:
        """``length`` env steps in every env, or (agent_steps) until ``length * num_envs`` acts."""
        if self.count_steps_by == "env_steps":
            for _ in range(length):
                self._step_all()
            return
        acted = 0
        while acted < length * len(self.slots):
            acted += self._step_all()

    def _step_all(self) -> int:
        """One step of every env; one ``compute_actions`` per policy for all its acting agents."""
        requests = defaultdict(list)  # policy id -> [(env index, agent id)]
        for index, slot in enumerate(self.slots):
            for agent_id in slot.acting:
                requests[slot.agents[agent_id].policy_id].append((index, agent_id))
        action_dicts = [{} for _ in self.slots]
        for pid, who in requests.items():
            agents = [self.slots[index].agents[agent_id] for index, agent_id in who]
            actions, state_outs, extra = self.compute_actions(pid, agents)
            env_actions = self.env_actions(pid, actions)
            for k, ((index, agent_id), agent) in enumerate(zip(who, agents, strict=True)):
                agent_extra = {key: value[k] for key, value in extra.items()}
                episode = self.slots[index].episode
                agent.open_row = action_row(agent, actions[k], agent_extra, episode, agent.index)
                agent.state = [s[k] for s in state_outs]
                action_dicts[index][agent_id] = env_actions[k]
        for index, (slot, action_dict) in enumerate(zip(self.slots, action_dicts, strict=True)):
            self._step_env(index, slot, action_dict)
        return sum(len(who) for who in requests.values())

    def _step_env(self, index: int, slot: _Slot, action_dict: dict) -> None:
        """One step of one env: rewards into open rows, new observations close them."""
        raw_obs, rewards, terminateds, truncateds, infos = slot.env.step(action_dict)
        episode = slot.episode
        episode.length += 1
        slot.env_steps += 1
        for agent_id, reward in rewards.items():
            episode._add_reward(agent_id, float(reward))
            agent = slot.agents.get(agent_id)
            if agent is not None and agent.open_row is not None:
                agent.open_row[SampleBatch.REWARDS] += float(reward)
        episode_over = bool(terminateds.get(ALL_AGENTS) or truncateds.get(ALL_AGENTS))
        slot.acting = []
        for agent_id, raw in raw_obs.items():
            info = infos.get(agent_id, {})
            agent = self._observe(slot, agent_id, raw, info)
            terminated, truncated = self._flags(agent_id, terminateds, truncateds, episode_over)
            self._close_row(agent, agent.obs, terminated, truncated, info)
            if not (terminated or truncated or episode_over):
                slot.acting.append(agent_id)
        for agent_id, agent in slot.agents.items():
            terminated, truncated = self._flags(agent_id, terminateds, truncateds, episode_over)
            if agent.open_row is not None and (terminated or truncated):
                # Done without a final observation of its own: its last one stands in for it.
                self._close_row(agent, agent.obs, terminated, truncated, infos.get(agent_id, {}))
        self.episode_stepped(index, episode)
        if episode_over:
            self._end_episode(index, slot)
        elif not slot.acting:
            raise RuntimeError(
                f"{type(slot.env).__name__}.step() gave no observation to any agent that is not "
                f'done, but did not end the episode: set terminateds["{ALL_AGENTS}"] or '
                f'truncateds["{ALL_AGENTS}"] to True when no agent acts any more.'
            )

    @staticmethod
    def _flags(
        agent_id, terminateds: dict, truncateds: dict, episode_over: bool
    ) -> tuple[bool, bool]:
        """An agent's own flags; if the episode ends and both are False, the episode's flags."""
        terminated, truncated = (
            bool(terminateds.get(agent_id, False)),
            bool(truncateds.get(agent_id, False)),
        )
        if episode_over and not (terminated or truncated):
            terminated, truncated = (
                bool(terminateds.get(ALL_AGENTS)),
                not terminateds.get(ALL_AGENTS),
            )
        return terminated, truncated

    @staticmethod
    def _close_row(agent: _AgentState, next_obs, terminated: bool, truncated: bool, info) -> None:
        if agent.open_row is None:  # an observation before the agent's first action
            return
        row = close_row(agent.open_row, next_obs, terminated, truncated, info)
        agent.rows.append(row)
        agent.open_row = None
        agent.prev_action, agent.prev_reward = row[SampleBatch.ACTIONS], row[SampleBatch.REWARDS]

    def _end_episode(self, index: int, slot: _Slot) -> None:
        """Hooks and metrics of the ended episode; its rows wait for postprocessing; reset."""
        self.episode_ended(index, slot.env, slot.episode)
        slot.finished.append(self._take_rows(slot))
        self._start_episode(index, slot)

    @staticmethod
    def _take_rows(slot: _Slot) -> tuple[dict, int, Episode]:
        """The running episode's closed rows (by agent) and their env steps; the slot drops them."""
        rows = {agent_id: agent.rows for agent_id, agent in slot.agents.items() if agent.rows}
        for agent in slot.agents.values():
            agent.rows = []
        steps, slot.env_steps = slot.env_steps, 0
        return rows, steps, slot.episode

    # --- postprocessing -----------------------------------------------------------------------

    def _cut_pieces(self, keep_unfinished: bool):
        """Per episode piece: ``({policy_id: [postprocessed batch per agent]}, env steps, rows)``.

        Ended episodes always; with ``keep_unfinished=False`` also the running ones so far.
        """
        for slot in self.slots:
            pieces, slot.finished = slot.finished, []
            if not keep_unfinished:
                pieces.append(self._take_rows(slot))
            for rows, steps, episode in pieces:
                yield self._postprocess(rows, episode), steps, sum(len(r) for r in rows.values())

    def _postprocess(self, rows_by_agent: dict, episode: Episode) -> dict:
        """``{policy_id: [batch per agent]}``; each agent's policy sees the others' batches."""
        originals = {agent_id: rows_to_batch(rows) for agent_id, rows in rows_by_agent.items()}
        result = defaultdict(list)
        for agent_id in originals:
            others = {
                other: (self.policy_map[episode.policy_for(other)], batch)
                for other, batch in originals.items()
                if other != agent_id
            }
            batch = self.postprocess(episode, agent_id, originals, others)
            result[episode.policy_for(agent_id)].append(batch)
        return result
