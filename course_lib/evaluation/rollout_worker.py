"""``RolloutWorker``: runs a policy in its own envs and returns postprocessed experience.

One worker owns ``num_envs_per_worker`` envs and steps them together: one batched forward pass of
the policy per step for all of them. ``sample()`` runs ``rollout_fragment_length`` steps in each
env and returns one ``SampleBatch``. Episodes that end are postprocessed whole; with
``batch_mode="truncate_episodes"`` an episode still running at the end of the fragment is cut
there (postprocessing bootstraps it) and goes on in the next call, while
``"complete_episodes"`` keeps sampling until every returned episode has ended.

With a ``MultiAgentEnv`` (or ``config["multiagent"]["policies"]``) the worker holds one policy
per policy id and samples through ``MultiAgentSampler``, returning a ``MultiAgentBatch``
(notebooks/14_multi_agent.ipynb); episodes in progress are then not part of ``get_state()``.

It works as a plain object (the "local worker" of a trainer) and as a Ray actor
(``RolloutWorker.as_remote().remote(...)``). Introduced in notebooks/07_rollout_workers.ipynb.
"""

from __future__ import annotations

import random
import warnings
from dataclasses import dataclass, field

import numpy as np

from course_lib.callbacks import make_callbacks
from course_lib.envs import EnvContext
from course_lib.envs.multi_agent import MultiAgentEnv
from course_lib.evaluation.episode import DEFAULT_AGENT_ID, Episode
from course_lib.evaluation.metrics import RolloutMetrics, metrics_from_plain, metrics_to_plain
from course_lib.evaluation.multi_agent_sampler import MultiAgentSampler, build_policy_map
from course_lib.evaluation.observation_filter import make_filter
from course_lib.evaluation.sampler_state import (
    env_snapshot,
    episode_snapshot,
    is_plain,
    restore_env,
    restore_episode,
)
from course_lib.sample_batch import DEFAULT_POLICY_ID, MultiAgentBatch, SampleBatch

# What a worker reads from the trainer config; WorkerSet and Trainer fill in the rest.
WORKER_DEFAULTS = {
    "env_config": {},
    "num_envs_per_worker": 1,
    "rollout_fragment_length": 200,
    "batch_mode": "truncate_episodes",
    "observation_filter": "NoFilter",
    "seed": None,
    "callbacks": None,
    "explore": True,
    # Lesson 14: {"policies": {pid: (cls, obs_space, act_space, overrides)}, "policy_mapping_fn": fn, "count_steps_by": ...}
    "multiagent": {},
}
BATCH_MODES = ("truncate_episodes", "complete_episodes")


@dataclass
class _EnvSlot:
    """One env of the worker and the episode running in it."""

    env: object
    episode: Episode = None
    obs: np.ndarray = None  # filtered, what the policy sees next
    state: list = field(default_factory=list)
    prev_action: object = None
    prev_reward: float = 0.0
    pending: list = field(
        default_factory=list
    )  # rows of an unfinished episode (complete_episodes mode)


class RolloutWorker:
    """Collects experience with its policies (one, unless multi-agent) in ``num_envs_per_worker`` envs.

    ``env_creator(env_config)`` builds each env (it receives an ``EnvContext`` with
    ``worker_index`` and ``vector_index``); ``policy_class(obs_space, action_space, config)``
    builds the policy. Env seeds are ``seed + 1000 * worker_index + vector_index``, so two
    workers never collect the same episodes and one seed reproduces a whole run.
    Introduced in notebooks/07_rollout_workers.ipynb.
    """

    def __init__(
        self,
        *,
        env_creator,
        policy_class,
        config: dict | None = None,
        worker_index: int = 0,
        num_workers: int = 0,
        create_env: bool = True,
    ):
        self.config = {**WORKER_DEFAULTS, **(config or {})}
        self.worker_index, self.num_workers = worker_index, num_workers
        if self.config["batch_mode"] not in BATCH_MODES:
            raise ValueError(
                f'"batch_mode": {self.config["batch_mode"]!r} is not one of {BATCH_MODES}.'
            )
        length = self.config["rollout_fragment_length"]
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise ValueError(
                f'"rollout_fragment_length" must be a whole number >= 1, got {length!r}.'
            )
        seed = self.config["seed"]
        worker_seed = None if seed is None else seed + 1000 * worker_index
        if worker_seed is not None:
            random.seed(worker_seed)
            np.random.seed(worker_seed % 2**32)
        self._rng = np.random.default_rng(worker_seed)
        self.env_creator = env_creator
        num_envs = self.config["num_envs_per_worker"] if create_env else 0
        self.envs = [
            env_creator(
                EnvContext(self.config["env_config"], worker_index=worker_index, vector_index=i)
            )
            for i in range(num_envs)
        ]
        self._env_seeds = [
            None if worker_seed is None else worker_seed + i for i in range(num_envs)
        ]
        spaces_from = (
            self.envs[0]
            if self.envs
            else env_creator(EnvContext(self.config["env_config"], worker_index=worker_index))
        )
        policy_config = {
            **self.config,
            "worker_index": worker_index,
            "num_workers": num_workers,
            "seed": None if worker_seed is None else worker_seed,
        }
        self.callbacks = make_callbacks(self.config["callbacks"])
        self._metrics: list[RolloutMetrics] = []
        self._started = False
        self._slots = []
        self.multi_agent = isinstance(spaces_from, MultiAgentEnv) or bool(
            (self.config.get("multiagent") or {}).get("policies")
        )
        if self.multi_agent:
            # Lesson 14: one policy per policy id, and a sampler that keeps one trajectory per agent.
            self.policy_map = build_policy_map(spaces_from, policy_class, policy_config, self)
            self.filters = {
                pid: make_filter(self.config["observation_filter"], p.observation_space)
                for pid, p in self.policy_map.items()
            }
            self.observation_space = getattr(
                self.policy_map.get(DEFAULT_POLICY_ID), "observation_space", None
            )
            self.action_space = getattr(
                self.policy_map.get(DEFAULT_POLICY_ID), "action_space", None
            )
            self._sampler = MultiAgentSampler(self, self.envs, self._env_seeds)
        else:
            self.observation_space, self.action_space = (
                spaces_from.observation_space,
                spaces_from.action_space,
            )
            self.policy_map = {
                DEFAULT_POLICY_ID: policy_class(
                    self.observation_space, self.action_space, policy_config
                )
            }
            self.filters = {
                DEFAULT_POLICY_ID: make_filter(
                    self.config["observation_filter"], self.observation_space
                )
            }
            self._sampler = None
            self._init_single_agent()
        if not self.envs:
            spaces_from.close()

    def _init_single_agent(self) -> None:
        """The single-agent sampler's per-env slots and what the policy reads besides observations."""
        model_config = getattr(self.policy_map[DEFAULT_POLICY_ID], "model", None)
        model_config = getattr(model_config, "model_config", {})
        self._model_reads_prev = bool(
            model_config.get("lstm_use_prev_action") or model_config.get("lstm_use_prev_reward")
        )
        self._zero_action = np.zeros(self.action_space.shape, dtype=self.action_space.dtype)
        self._slots = [_EnvSlot(env) for env in self.envs]

    @classmethod
    def as_remote(cls, num_cpus: float = 1, num_gpus: float = 0, max_restarts: int = 0):
        """This class as a Ray actor class with the given resources."""
        import ray

        return ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, max_restarts=max_restarts)(cls)

    # --- policies and weights -----------------------------------------------------------------

    def get_policy(self, policy_id: str = DEFAULT_POLICY_ID):
        return self.policy_map[policy_id]

    def foreach_policy(self, fn):
        """``[fn(policy, policy_id) for each policy]``."""
        return [fn(policy, pid) for pid, policy in self.policy_map.items()]

    def get_weights(self, policies: list[str] | None = None) -> dict:
        """``{policy_id: weights}`` for the given (default: all) policies."""
        return {
            pid: p.get_weights()
            for pid, p in self.policy_map.items()
            if policies is None or pid in policies
        }

    def set_weights(self, weights: dict, global_vars: dict | None = None) -> None:
        """Load ``{policy_id: weights}``; pass an ObjectRef from ``ray.put`` to send one copy to many workers."""
        for pid, policy_weights in weights.items():
            self.policy_map[pid].set_weights(policy_weights)
        if global_vars:
            self.set_global_vars(global_vars)

    def set_global_vars(self, global_vars: dict) -> None:
        for policy in self.policy_map.values():
            policy.on_global_var_update(global_vars)

    def get_filters(self, flush_after: bool = True) -> dict:
        """The observation statistics gathered since the last sync, per policy."""
        return {pid: f.flush_delta() for pid, f in self.filters.items()} if flush_after else {}

    def sync_filters(self, filter_states: dict) -> None:
        """Replace each filter's statistics with the merged ones from the trainer."""
        for pid, state in filter_states.items():
            self.filters[pid].set_state(state)

    # --- learning (used on the local worker) --------------------------------------------------

    def learn_on_batch(self, samples: SampleBatch | MultiAgentBatch) -> dict:
        """``{policy_id: learner result}``: a MultiAgentBatch trains each of its policies on its rows."""
        if isinstance(samples, MultiAgentBatch):
            return {
                pid: self.policy_map[pid].learn_on_batch(batch)
                for pid, batch in samples.policy_batches.items()
            }
        return {DEFAULT_POLICY_ID: self.policy_map[DEFAULT_POLICY_ID].learn_on_batch(samples)}

    def compute_gradients(self, samples: SampleBatch):
        return self.policy_map[DEFAULT_POLICY_ID].compute_gradients(samples)

    def apply_gradients(self, gradients) -> None:
        self.policy_map[DEFAULT_POLICY_ID].apply_gradients(gradients)

    # --- sampling -----------------------------------------------------------------------------

    def sample(self) -> SampleBatch | MultiAgentBatch:
        """``rollout_fragment_length`` steps in every env, postprocessed, as one SampleBatch.

        In multi-agent mode a ``MultiAgentBatch`` with one SampleBatch per policy (see multi_agent_sampler).
        """
        if not self.envs:
            raise RuntimeError(
                f"Rollout worker {self.worker_index} has no environments: with num_workers > 0 the local "
                "worker does not sample. Sample from workers.remote_workers(), or set num_workers=0."
            )
        if self._sampler is not None:
            return self._sampler.sample()
        if not self._started:
            for index, slot in enumerate(self._slots):
                self._start_episode(index, slot, seed=self._env_seeds[index])
            self._started = True
        target = self.config["rollout_fragment_length"] * len(self.envs)
        pieces: list[SampleBatch] = []
        collected = 0
        complete_only = self.config["batch_mode"] == "complete_episodes"
        while True:
            rows = self._run_steps(self.config["rollout_fragment_length"])
            finished, steps = self._cut_pieces(rows, keep_unfinished=complete_only)
            pieces.extend(finished)
            collected += steps
            if not complete_only or collected >= target:
                break
        samples = SampleBatch.concat_samples(pieces) if pieces else SampleBatch()
        self.callbacks.on_sample_end(worker=self, samples=samples)
        return samples

    def _start_episode(self, index: int, slot: _EnvSlot, seed=None) -> None:
        raw_obs, info = slot.env.reset(seed=seed)
        slot.episode = Episode(int(self._rng.integers(2**62)), index)
        slot.obs = self._filter(raw_obs)
        slot.episode._record(DEFAULT_AGENT_ID, obs=slot.obs, raw_obs=raw_obs, info=info)
        policy = self.policy_map[DEFAULT_POLICY_ID]
        slot.state = policy.get_initial_state()
        slot.prev_action, slot.prev_reward = self._zero_action, 0.0
        policy.exploration.on_episode_start(policy, environment=slot.env, episode=slot.episode)
        self.callbacks.on_episode_start(
            worker=self,
            base_env=self.envs,
            policies=self.policy_map,
            episode=slot.episode,
            env_index=index,
        )

    def _filter(self, raw_obs):
        """The observation the policy sees: through the filter, unless there is none."""
        if self.config["observation_filter"] == "NoFilter":
            return raw_obs
        return self.filters[DEFAULT_POLICY_ID](np.asarray(raw_obs)[None])[0]

    def _run_steps(self, num_steps: int) -> list[list]:
        """Step every env ``num_steps`` times; per env, a list of per-step rows and finished Episodes.

        An ``Episode`` in the list marks where that episode ended, right after its last row.
        """
        policy = self.policy_map[DEFAULT_POLICY_ID]
        rows = [[] for _ in self._slots]
        for _ in range(num_steps):
            obs_batch = np.stack([slot.obs for slot in self._slots])
            state_batches = (
                [np.stack(s) for s in zip(*(slot.state for slot in self._slots))]
                if self._slots[0].state
                else None
            )
            prev = {}
            if self._model_reads_prev:
                prev = {
                    "prev_action_batch": np.stack(
                        [np.asarray(slot.prev_action) for slot in self._slots]
                    ),
                    "prev_reward_batch": np.array(
                        [slot.prev_reward for slot in self._slots], np.float32
                    ),
                }
            actions, state_outs, extra = policy.compute_actions(
                obs_batch, state_batches, explore=self.config["explore"], **prev
            )
            for index, slot in enumerate(self._slots):
                action = actions[index]
                raw_next, reward, terminated, truncated, info = slot.env.step(action)
                next_obs = self._filter(raw_next)
                row = {
                    SampleBatch.OBS: slot.obs,
                    SampleBatch.ACTIONS: action,
                    SampleBatch.REWARDS: float(reward),
                    SampleBatch.NEXT_OBS: next_obs,
                    SampleBatch.TERMINATEDS: bool(terminated),
                    SampleBatch.TRUNCATEDS: bool(truncated),
                    SampleBatch.INFOS: info,
                    SampleBatch.EPS_ID: slot.episode.episode_id,
                    SampleBatch.T: slot.episode.length,
                    SampleBatch.AGENT_INDEX: 0,
                    "prev_actions": slot.prev_action,
                    "prev_rewards": slot.prev_reward,
                }
                row.update({key: value[index] for key, value in extra.items()})
                for k, s in enumerate(slot.state):
                    row[f"state_in_{k}"] = s
                rows[index].append(row)
                episode = slot.episode
                episode.length += 1
                episode._add_reward(DEFAULT_AGENT_ID, float(reward))
                episode._record(
                    DEFAULT_AGENT_ID,
                    obs=next_obs,
                    raw_obs=raw_next,
                    action=action,
                    reward=float(reward),
                    info=info,
                )
                self.callbacks.on_episode_step(
                    worker=self,
                    base_env=self.envs,
                    policies=self.policy_map,
                    episode=episode,
                    env_index=index,
                )
                slot.obs, slot.prev_action, slot.prev_reward = next_obs, action, float(reward)
                slot.state = [s[index] for s in state_outs]
                if terminated or truncated:
                    policy.exploration.on_episode_end(policy, environment=slot.env, episode=episode)
                    self.callbacks.on_episode_end(
                        worker=self,
                        base_env=self.envs,
                        policies=self.policy_map,
                        episode=episode,
                        env_index=index,
                    )
                    self._metrics.append(
                        RolloutMetrics(
                            episode.length,
                            episode.total_reward,
                            dict(episode.agent_rewards),
                            dict(episode.custom_metrics),
                            dict(episode.hist_data),
                        )
                    )
                    rows[index].append(episode)
                    self._start_episode(index, slot)
        return rows

    def _cut_pieces(self, rows: list[list], keep_unfinished: bool) -> tuple[list[SampleBatch], int]:
        """Turn each env's rows into postprocessed episode pieces; returns them and their step count."""
        pieces, steps = [], 0
        for slot, env_rows in zip(self._slots, rows):
            current, slot.pending = slot.pending, []
            episodes = []
            for item in env_rows:
                if isinstance(item, Episode):
                    episodes.append((current, item))
                    current = []
                else:
                    current.append(item)
            if current and keep_unfinished:
                slot.pending = current
            elif current:
                episodes.append((current, slot.episode))
            for episode_rows, episode in episodes:
                batch = self._postprocess(episode_rows, episode)
                pieces.append(batch)
                steps += batch.count
        return pieces, steps

    def _postprocess(self, episode_rows: list[dict], episode: Episode) -> SampleBatch:
        policy = self.policy_map[DEFAULT_POLICY_ID]
        columns = {key: [row[key] for row in episode_rows] for key in episode_rows[0]}
        batch = SampleBatch(columns)
        original = batch.copy(
            deep=False
        )  # postprocessing adds columns; the originals are not changed in place
        batch = policy.postprocess_trajectory(batch, None, episode)
        self.callbacks.on_postprocess_trajectory(
            worker=self,
            episode=episode,
            agent_id=DEFAULT_AGENT_ID,
            policy_id=DEFAULT_POLICY_ID,
            policies=self.policy_map,
            postprocessed_batch=batch,
            original_batches={DEFAULT_AGENT_ID: original},
        )
        return batch

    def get_metrics(self) -> list[RolloutMetrics]:
        """Metrics of the episodes finished since the last call (and forget them)."""
        metrics, self._metrics = self._metrics, []
        return metrics

    # --- state for checkpoints (lesson 11) ----------------------------------------------------

    def get_state(self) -> dict:
        """Policies, filters and, when this worker samples, the episodes in progress (plain data)."""
        state = {
            "policies": {pid: p.get_state() for pid, p in self.policy_map.items()},
            "filters": {pid: f.get_state() for pid, f in self.filters.items()},
        }
        # Multi-agent episodes are not snapshotted: after a restore they start afresh.
        if self.envs and self._sampler is None:
            state["sampler"] = {
                "started": self._started,
                "rng": self._rng.bit_generator.state,
                "metrics": [metrics_to_plain(m) for m in self._metrics],
                "slots": [self._slot_state(slot) for slot in self._slots],
            }
        return state

    def _slot_state(self, slot: _EnvSlot) -> dict | None:
        if slot.episode is None:
            return None
        saved = {
            "env": env_snapshot(slot.env),
            "episode": episode_snapshot(slot.episode),
            "obs": slot.obs,
            "state": list(slot.state),
            "prev_action": slot.prev_action,
            "prev_reward": slot.prev_reward,
            "pending": slot.pending,
        }
        # Rows keep info dicts; an env whose infos hold objects cannot be snapshotted, so its episodes restart.
        return saved if is_plain(saved["pending"]) and is_plain(saved["episode"]) else None

    def set_state(self, state: dict) -> None:
        for pid, policy_state in state["policies"].items():
            self.policy_map[pid].set_state(policy_state)
        for pid, filter_state in state["filters"].items():
            self.filters[pid].set_state(filter_state)
        sampler = state.get("sampler")
        if not self.envs or sampler is None or self._sampler is not None:
            return
        if len(sampler["slots"]) != len(self._slots):
            warnings.warn(
                f"The checkpoint's worker ran {len(sampler['slots'])} envs, this one runs {len(self._slots)} "
                "(num_envs_per_worker differs): its episodes start afresh instead of continuing where they stopped.",
                stacklevel=2,
            )
            return
        self._rng.bit_generator.state = sampler["rng"]
        self._metrics = [metrics_from_plain(m) for m in sampler["metrics"]]
        self._started = sampler["started"]
        for index, (slot, saved) in enumerate(zip(self._slots, sampler["slots"])):
            if saved is None:
                if self._started:
                    self._start_episode(index, slot)
                continue
            restore_env(slot.env, saved["env"])
            slot.episode = restore_episode(saved["episode"])
            slot.obs, slot.state = saved["obs"], [np.asarray(s) for s in saved["state"]]
            slot.prev_action, slot.prev_reward, slot.pending = (
                saved["prev_action"],
                saved["prev_reward"],
                saved["pending"],
            )

    # --- plumbing for WorkerSet ---------------------------------------------------------------

    def apply(self, fn, *args):
        """``fn(self, *args)`` inside this worker's process (``WorkerSet.foreach_worker``)."""
        return fn(self, *args)

    def ping(self) -> str:
        return "pong"

    def stop(self) -> None:
        for env in self.envs:
            env.close()
