"""Multi-agent sampling: many agents per env, each acting with the policy its episode maps it to.

A ``RolloutWorker`` whose env is a ``MultiAgentEnv`` (or whose config lists
``config["multiagent"]["policies"]``) builds one policy per policy id (``build_policy_map``) and
hands its envs to a ``MultiAgentSampler``. At each step the sampler batches the observations of
all acting agents of all envs by policy (one ``compute_actions`` per policy), steps every env with
its action dict, and keeps one trajectory per agent. ``sample()`` postprocesses each agent's
trajectory with its own policy, shows it the other agents' trajectories (what a shared critic
reads), and returns a ``MultiAgentBatch`` with one SampleBatch per policy.

An agent's row opens when it acts and closes when its next observation arrives (or the episode
ends): rewards that arrive in between (turn-based games) are added to it. So each agent's rows are
in time order, and its last row in an episode is terminated or truncated.

Introduced in notebooks/14_multi_agent.ipynb.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from course_lib.envs.multi_agent import ALL_AGENTS, MultiAgentEnv
from course_lib.evaluation.episode import DEFAULT_AGENT_ID, Episode
from course_lib.evaluation.metrics import RolloutMetrics
from course_lib.sample_batch import DEFAULT_POLICY_ID, MultiAgentBatch, SampleBatch

STEP_COUNTS = ("env_steps", "agent_steps")


def default_policy_mapping_fn(agent_id, episode, **kwargs) -> str:
    """Every agent to ``"default_policy"``: all agents share one policy."""
    return DEFAULT_POLICY_ID


def _policy_config(base: dict, overrides: dict) -> dict:
    """The trainer config with one policy's overrides on top; ``"model"`` is merged one level deeper."""
    merged = {**base, **overrides}
    if isinstance(overrides.get("model"), dict):
        merged["model"] = {**(base.get("model") or {}), **overrides["model"]}
    return merged


def _space_for(env, pid: str, kind: str, mapping_fn, worker):
    """The env's ``kind`` ("observation"/"action") space for the agents mapped to policy ``pid``."""
    try:
        return getattr(env, f"{kind}_space")
    except AttributeError:
        pass  # agents have different spaces: find an agent that this policy controls
    for agent_id in sorted(env.get_agent_ids(), key=str):
        if mapping_fn(agent_id, None, worker=worker) == pid:
            return getattr(env, f"{kind}_space_for")(agent_id)
    raise ValueError(
        f"Cannot tell the {kind} space of policy {pid!r}: the env's agents have different spaces and "
        f"policy_mapping_fn(agent_id, None) maps none of {sorted(env.get_agent_ids(), key=str)} to it. "
        f'Give the space in config["multiagent"]["policies"][{pid!r}] = (cls, obs_space, act_space, config).'
    )


def build_policy_map(env, default_policy_class, policy_config: dict, worker) -> dict:
    """``{policy_id: policy}`` from ``config["multiagent"]["policies"]`` (default: one "default_policy").

    Each entry is ``(policy_cls or None, obs_space or None, act_space or None, config_overrides)``:
    None picks the trainer's policy class and the env's spaces for the agents mapped to that policy.
    """
    multiagent = policy_config.get("multiagent") or {}
    specs = multiagent.get("policies") or {DEFAULT_POLICY_ID: (None, None, None, {})}
    mapping_fn = multiagent.get("policy_mapping_fn") or default_policy_mapping_fn
    policy_map = {}
    for pid, spec in specs.items():
        if not isinstance(spec, (tuple, list)) or len(spec) != 4:
            raise ValueError(
                f'config["multiagent"]["policies"][{pid!r}] must be a tuple (policy_cls, obs_space, act_space, '
                f"config), each may be None / {{}}; got {spec!r}."
            )
        policy_cls, obs_space, act_space, overrides = spec
        obs_space = obs_space or _space_for(env, pid, "observation", mapping_fn, worker)
        act_space = act_space or _space_for(env, pid, "action", mapping_fn, worker)
        policy_map[pid] = (policy_cls or default_policy_class)(
            obs_space, act_space, _policy_config(policy_config, overrides or {})
        )
    return policy_map


class SingleAgentEnvAsMulti(MultiAgentEnv):
    """A gymnasium env seen as a MultiAgentEnv with one agent, ``DEFAULT_AGENT_ID``.

    Introduced in notebooks/14_multi_agent.ipynb.
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


class MultiAgentSampler:
    """Steps a worker's multi-agent envs together; ``sample()`` returns a ``MultiAgentBatch``.

    Reads the worker's ``config``, ``policy_map``, ``filters``, ``callbacks`` and ``_rng``.
    ``config["multiagent"]["count_steps_by"]``: ``"env_steps"`` runs ``rollout_fragment_length``
    env steps per env; ``"agent_steps"`` runs until ``rollout_fragment_length * num_envs`` agent
    actions were taken. Introduced in notebooks/14_multi_agent.ipynb.
    """

    def __init__(self, worker, envs: list, env_seeds: list):
        self.worker = worker
        multiagent = worker.config.get("multiagent") or {}
        self.mapping_fn = multiagent.get("policy_mapping_fn") or default_policy_mapping_fn
        self.count_steps_by = multiagent.get("count_steps_by", "env_steps")
        if self.count_steps_by not in STEP_COUNTS:
            raise ValueError(
                f'config["multiagent"]["count_steps_by"] must be one of {STEP_COUNTS}, got {self.count_steps_by!r}.'
            )
        self.slots = [
            _Slot(env if isinstance(env, MultiAgentEnv) else SingleAgentEnvAsMulti(env))
            for env in envs
        ]
        self.env_seeds = env_seeds
        self.started = False
        self._reads_prev = {pid: _reads_prev_inputs(p) for pid, p in worker.policy_map.items()}

    def sample(self) -> MultiAgentBatch:
        worker, config = self.worker, self.worker.config
        if not self.started:
            for index, slot in enumerate(self.slots):
                self._start_episode(index, slot, seed=self.env_seeds[index])
            self.started = True
        length = config["rollout_fragment_length"]
        complete_only = config["batch_mode"] == "complete_episodes"
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
        worker.callbacks.on_sample_end(worker=worker, samples=samples)
        return samples

    # --- episodes and agents ------------------------------------------------------------------

    def _start_episode(self, index: int, slot: _Slot, seed=None) -> None:
        worker = self.worker
        raw_obs, infos = slot.env.reset(seed=seed)
        episode = Episode(
            int(worker._rng.integers(2**62)),
            index,
            policy_for=lambda agent_id: self.mapping_fn(agent_id, episode, worker=worker),
        )
        slot.episode, slot.agents, slot.acting = episode, {}, []
        for agent_id, raw in raw_obs.items():
            self._observe(slot, agent_id, raw, infos.get(agent_id, {}))
            slot.acting.append(agent_id)
        for policy in worker.policy_map.values():
            if hasattr(policy, "exploration"):  # heuristics have no exploration
                policy.exploration.on_episode_start(policy, environment=slot.env, episode=episode)
        worker.callbacks.on_episode_start(
            worker=worker,
            base_env=worker.envs,
            policies=worker.policy_map,
            episode=episode,
            env_index=index,
        )

    def _agent(self, slot: _Slot, agent_id) -> _AgentState:
        """The agent's state in this episode; made (and mapped to its policy) on first sight."""
        if agent_id not in slot.agents:
            pid = slot.episode.policy_for(agent_id)
            policy = self.worker.policy_map.get(pid)
            if policy is None:
                raise KeyError(
                    f"policy_mapping_fn mapped agent {agent_id!r} to policy {pid!r}, which is not in "
                    f'config["multiagent"]["policies"] (it has {list(self.worker.policy_map)}).'
                )
            zero_action = np.zeros(policy.action_space.shape, dtype=policy.action_space.dtype)
            slot.agents[agent_id] = _AgentState(
                pid, len(slot.agents), policy.get_initial_state(), zero_action
            )
        return slot.agents[agent_id]

    def _observe(self, slot: _Slot, agent_id, raw_obs, info) -> _AgentState:
        agent = self._agent(slot, agent_id)
        obs = raw_obs
        if self.worker.config["observation_filter"] != "NoFilter":
            obs = self.worker.filters[agent.policy_id](np.asarray(raw_obs)[None])[0]
        agent.obs = obs
        slot.episode._record(agent_id, obs=obs, raw_obs=raw_obs, info=info)
        return agent

    # --- stepping -----------------------------------------------------------------------------

    def _run(self, length: int) -> None:
        """``length`` env steps in every env, or (agent_steps) until ``length * num_envs`` agents acted."""
        if self.count_steps_by == "env_steps":
            for _ in range(length):
                self._step_all()
            return
        acted = 0
        while acted < length * len(self.slots):
            acted += self._step_all()

    def _step_all(self) -> int:
        """One step of every env; one ``compute_actions`` per policy for all its acting agents."""
        worker = self.worker
        requests = defaultdict(list)  # policy id -> [(env index, agent id)]
        for index, slot in enumerate(self.slots):
            for agent_id in slot.acting:
                requests[slot.agents[agent_id].policy_id].append((index, agent_id))
        action_dicts = [{} for _ in self.slots]
        for pid, who in requests.items():
            agents = [self.slots[index].agents[agent_id] for index, agent_id in who]
            actions, state_outs, extra = self._compute_actions(pid, agents)
            for k, ((index, agent_id), agent) in enumerate(zip(who, agents)):
                episode = self.slots[index].episode
                row = {
                    SampleBatch.OBS: agent.obs,
                    SampleBatch.ACTIONS: actions[k],
                    SampleBatch.REWARDS: 0.0,
                    SampleBatch.EPS_ID: episode.episode_id,
                    SampleBatch.T: episode.length,
                    SampleBatch.AGENT_INDEX: agent.index,
                    "prev_actions": agent.prev_action,
                    "prev_rewards": agent.prev_reward,
                }
                row.update({key: value[k] for key, value in extra.items()})
                for j, s in enumerate(agent.state):
                    row[f"state_in_{j}"] = s
                agent.open_row, agent.state = row, [s[k] for s in state_outs]
                action_dicts[index][agent_id] = actions[k]
        for index, (slot, action_dict) in enumerate(zip(self.slots, action_dicts)):
            self._step_env(index, slot, action_dict)
        return sum(len(who) for who in requests.values())

    def _compute_actions(self, pid: str, agents: list[_AgentState]):
        policy = self.worker.policy_map[pid]
        obs_batch = np.stack([np.asarray(agent.obs) for agent in agents])
        state_batches = (
            [np.stack(s) for s in zip(*(agent.state for agent in agents))]
            if agents[0].state
            else None
        )
        prev = {}
        if self._reads_prev[pid]:
            prev = {
                "prev_action_batch": np.stack([np.asarray(agent.prev_action) for agent in agents]),
                "prev_reward_batch": np.array([agent.prev_reward for agent in agents], np.float32),
            }
        return policy.compute_actions(
            obs_batch, state_batches, explore=self.worker.config["explore"], **prev
        )

    def _step_env(self, index: int, slot: _Slot, action_dict: dict) -> None:
        worker, episode = self.worker, slot.episode
        raw_obs, rewards, terminateds, truncateds, infos = slot.env.step(action_dict)
        episode.length += 1
        slot.env_steps += 1
        for agent_id, action in action_dict.items():
            episode._record(agent_id, action=action)
        for agent_id, reward in rewards.items():
            episode._add_reward(agent_id, float(reward))
            episode._record(agent_id, reward=float(reward))
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
        worker.callbacks.on_episode_step(
            worker=worker,
            base_env=worker.envs,
            policies=worker.policy_map,
            episode=episode,
            env_index=index,
        )
        if episode_over:
            self._end_episode(index, slot)
        elif not slot.acting:
            raise RuntimeError(
                f"{type(slot.env).__name__}.step() gave no observation to any agent that is not done, but did not "
                f'end the episode: set terminateds["{ALL_AGENTS}"] or truncateds["{ALL_AGENTS}"] to True when no agent acts any more.'
            )

    @staticmethod
    def _flags(
        agent_id, terminateds: dict, truncateds: dict, episode_over: bool
    ) -> tuple[bool, bool]:
        """An agent's own flags; when the episode ends and they are both False, the episode's flags."""
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
        row = agent.open_row
        if row is None:  # an observation before the agent's first action
            return
        row.update(
            {
                SampleBatch.NEXT_OBS: next_obs,
                SampleBatch.TERMINATEDS: terminated,
                SampleBatch.TRUNCATEDS: truncated,
                SampleBatch.INFOS: info,
            }
        )
        agent.rows.append(row)
        agent.open_row = None
        agent.prev_action, agent.prev_reward = row[SampleBatch.ACTIONS], row[SampleBatch.REWARDS]

    def _end_episode(self, index: int, slot: _Slot) -> None:
        worker, episode = self.worker, slot.episode
        for policy in worker.policy_map.values():
            if hasattr(policy, "exploration"):
                policy.exploration.on_episode_end(policy, environment=slot.env, episode=episode)
        worker.callbacks.on_episode_end(
            worker=worker,
            base_env=worker.envs,
            policies=worker.policy_map,
            episode=episode,
            env_index=index,
        )
        worker._metrics.append(
            RolloutMetrics(
                episode.length,
                episode.total_reward,
                dict(episode.agent_rewards),
                dict(episode.custom_metrics),
                dict(episode.hist_data),
            )
        )
        slot.finished.append(self._take_rows(slot))
        self._start_episode(index, slot)

    @staticmethod
    def _take_rows(slot: _Slot) -> tuple[dict, int, Episode]:
        """The closed rows of the running episode (by agent) and their env steps; the slot forgets them."""
        rows = {agent_id: agent.rows for agent_id, agent in slot.agents.items() if agent.rows}
        for agent in slot.agents.values():
            agent.rows = []
        steps, slot.env_steps = slot.env_steps, 0
        return rows, steps, slot.episode

    # --- postprocessing -----------------------------------------------------------------------

    def _cut_pieces(self, keep_unfinished: bool):
        """Per episode piece: ``({policy_id: [postprocessed batch per agent]}, env steps, agent rows)``.

        Ended episodes always; with ``keep_unfinished=False`` also what the running ones have so far.
        """
        for slot in self.slots:
            pieces, slot.finished = slot.finished, []
            if not keep_unfinished:
                pieces.append(self._take_rows(slot))
            for rows, steps, episode in pieces:
                yield self._postprocess(rows, episode), steps, sum(len(r) for r in rows.values())

    def _postprocess(self, rows_by_agent: dict, episode: Episode) -> dict:
        """``{policy_id: [batch per agent]}``; each agent's policy sees the others' batches."""
        worker = self.worker
        originals = {
            agent_id: SampleBatch({key: [row[key] for row in rows] for key in rows[0]})
            for agent_id, rows in rows_by_agent.items()
        }
        result = defaultdict(list)
        for agent_id, original in originals.items():
            pid = episode.policy_for(agent_id)
            policy = worker.policy_map[pid]
            others = {
                other: (worker.policy_map[episode.policy_for(other)], batch)
                for other, batch in originals.items()
                if other != agent_id
            }
            batch = policy.postprocess_trajectory(original.copy(deep=False), others, episode)
            worker.callbacks.on_postprocess_trajectory(
                worker=worker,
                episode=episode,
                agent_id=agent_id,
                policy_id=pid,
                policies=worker.policy_map,
                postprocessed_batch=batch,
                original_batches=originals,
            )
            result[pid].append(batch)
        return result


def _reads_prev_inputs(policy) -> bool:
    model_config = getattr(getattr(policy, "model", None), "model_config", {})
    return bool(
        model_config.get("lstm_use_prev_action") or model_config.get("lstm_use_prev_reward")
    )
