"""What the two samplers of a rollout worker share.

A ``RolloutWorker`` holds one sampler: a ``SingleAgentSampler`` for a gymnasium env
(single_agent_sampler.py, notebooks/08_rollout_workers.ipynb) or a ``MultiAgentSampler`` for a
``MultiAgentEnv`` (multi_agent_sampler.py, notebooks/20_multi_agent.ipynb). Both step all of the
worker's envs together and answer ``sample()``, ``get_metrics()``, ``get_state()`` and
``set_state()``. What they do the same way lives here, in the ``Sampler`` base class:

- the observation filter between the env and the policy (``filter_observation``), and the
  map from the policy's actions to the env's bounds (``env_actions``);
- one batched forward pass for many actors: the envs of a single-agent worker, or all the agents
  that one policy controls (``compute_actions``);
- the rows of a trajectory: ``action_row`` when an agent acts, ``close_row`` when its next
  observation arrives (in a single-agent env, right away);
- episodes: ids from the worker's random generator, exploration's and callbacks' hooks at the
  start, at each step and at the end, and the finished episode's metrics;
- postprocessing one agent's rows with its policy, then the ``on_postprocess_trajectory`` hook.
"""

from __future__ import annotations

import numpy as np

from course_lib.evaluation.env_actions import to_env_actions
from course_lib.evaluation.episode import Episode
from course_lib.evaluation.metrics import RolloutMetrics
from course_lib.sample_batch import SampleBatch


class Sampler:
    """The parts of sampling that single- and multi-agent workers share; subclass it.

    ``worker`` is the ``RolloutWorker`` (callbacks receive it); its ``config``, ``policy_map``,
    ``filters`` and ``callbacks`` are read here. ``envs`` are the worker's envs and
    ``env_seeds`` the seed of each one's first reset. ``rng`` draws episode ids; ``metrics`` is
    the list that finished episodes' ``RolloutMetrics`` are appended to, until ``get_metrics``.
    A subclass keeps ``self.slots`` (one per env) and implements ``_start_episode``,
    ``sample``, ``get_state`` and ``set_state``. Introduced in notebooks/08_rollout_workers.ipynb.
    """

    def __init__(self, worker, envs: list, env_seeds: list, *, rng, metrics: list):
        self.worker = worker
        self.config = worker.config
        self.policy_map = worker.policy_map
        self.filters = worker.filters
        self.callbacks = worker.callbacks
        self.envs, self.env_seeds = envs, env_seeds
        self.rng, self.metrics = rng, metrics
        self.slots: list = []
        self.started = False
        self._reads_prev = {pid: _reads_prev_inputs(p) for pid, p in self.policy_map.items()}

    def get_metrics(self) -> list[RolloutMetrics]:
        """Metrics of the episodes finished since the last call (and forget them)."""
        finished = list(self.metrics)
        self.metrics.clear()
        return finished

    def _start_episodes_once(self) -> None:
        """The first ``sample()`` resets every env with its seed; later ones go on from there."""
        if not self.started:
            for index, slot in enumerate(self.slots):
                self._start_episode(index, slot, seed=self.env_seeds[index])
            self.started = True

    def _start_episode(self, index: int, slot, seed=None) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement _start_episode().")

    # --- observations and actions -------------------------------------------------------------

    def filter_observation(self, policy_id: str, raw_obs):
        """The observation the policy sees: through its filter, unless there is none."""
        if self.config["observation_filter"] == "NoFilter":
            return raw_obs
        return self.filters[policy_id](np.asarray(raw_obs)[None])[0]

    def compute_actions(self, policy_id: str, actors: list):
        """One forward pass of a policy for many actors: ``(actions, state_outs, extra_fetches)``.

        Each actor (an env's slot, or an agent) has ``obs``, ``state`` (its recurrent state, a
        list), ``prev_action`` and ``prev_reward``; row ``i`` of each output belongs to actor ``i``.
        """
        obs_batch = np.stack([np.asarray(actor.obs) for actor in actors])
        state_batches = [np.stack(s) for s in zip(*(a.state for a in actors), strict=True)] or None
        prev = {}
        if self._reads_prev[policy_id]:  # only LSTMs with lstm_use_prev_action/_reward read them
            prev = {
                "prev_action_batch": np.stack([np.asarray(actor.prev_action) for actor in actors]),
                "prev_reward_batch": np.array([actor.prev_reward for actor in actors], np.float32),
            }
        return self.policy_map[policy_id].compute_actions(
            obs_batch, state_batches, explore=self.config["explore"], **prev
        )

    def env_actions(self, policy_id: str, actions):
        """What ``env.step`` receives for a batch of the policy's ``actions``: unsquashed or
        clipped to the env's bounds as ``normalize_actions``/``clip_actions`` say
        (env_actions.py). The batch keeps the policy's own actions."""
        return to_env_actions(actions, self.policy_map[policy_id], self.config)

    # --- episodes -----------------------------------------------------------------------------

    def new_episode(self, env_index: int, policy_for=None) -> Episode:
        return Episode(int(self.rng.integers(2**62)), env_index, policy_for)

    def episode_started(self, env_index: int, env, episode: Episode) -> None:
        """Exploration and callbacks hear of the new episode (the env was just reset)."""
        for policy in self.policy_map.values():
            if hasattr(policy, "exploration"):  # heuristic policies do not explore
                policy.exploration.on_episode_start(policy, environment=env, episode=episode)
        self.callbacks.on_episode_start(**self._hook_args(env_index, episode))

    def episode_stepped(self, env_index: int, episode: Episode) -> None:
        self.callbacks.on_episode_step(**self._hook_args(env_index, episode))

    def episode_ended(self, env_index: int, env, episode: Episode) -> None:
        """Exploration and callbacks hear of the end; the episode's metrics wait for the trainer."""
        for policy in self.policy_map.values():
            if hasattr(policy, "exploration"):
                policy.exploration.on_episode_end(policy, environment=env, episode=episode)
        self.callbacks.on_episode_end(**self._hook_args(env_index, episode))
        self.metrics.append(RolloutMetrics.from_episode(episode))

    def _hook_args(self, env_index: int, episode: Episode) -> dict:
        return {
            "worker": self.worker,
            "base_env": self.envs,
            "policies": self.policy_map,
            "episode": episode,
            "env_index": env_index,
        }

    # --- trajectories -------------------------------------------------------------------------

    def postprocess(self, episode: Episode, agent_id, originals: dict, others=None):
        """One agent's rows through its policy's ``postprocess_trajectory``, then the callbacks.

        ``originals``: ``{agent_id: SampleBatch}`` of the episode piece, left unchanged;
        ``others``: what a multi-agent policy sees of the other agents (None: single-agent).
        """
        policy_id = episode.policy_for(agent_id)
        original = originals[agent_id]
        batch = self.policy_map[policy_id].postprocess_trajectory(
            original.copy(deep=False), others, episode
        )
        self.callbacks.on_postprocess_trajectory(
            worker=self.worker,
            episode=episode,
            agent_id=agent_id,
            policy_id=policy_id,
            policies=self.policy_map,
            postprocessed_batch=batch,
            original_batches=originals,
        )
        return batch


def action_row(actor, action, extra: dict, episode: Episode, agent_index: int) -> dict:
    """The row of one action, columns in their batch order; ``close_row`` fills in the outcome.

    ``actor`` is what acted (see ``Sampler.compute_actions``); ``extra`` is its share of the
    policy's extra fetches (``action_logp``, ``vf_preds``, ...).
    Introduced in notebooks/08_rollout_workers.ipynb.
    """
    row = {
        SampleBatch.OBS: actor.obs,
        SampleBatch.ACTIONS: action,
        SampleBatch.REWARDS: 0.0,
        SampleBatch.NEXT_OBS: None,
        SampleBatch.TERMINATEDS: False,
        SampleBatch.TRUNCATEDS: False,
        SampleBatch.INFOS: None,
        SampleBatch.EPS_ID: episode.episode_id,
        SampleBatch.T: episode.length,
        SampleBatch.AGENT_INDEX: agent_index,
        "prev_actions": actor.prev_action,
        "prev_rewards": actor.prev_reward,
        **extra,
    }
    for k, state in enumerate(actor.state):
        row[f"state_in_{k}"] = state
    return row


def close_row(row: dict, next_obs, terminated: bool, truncated: bool, info) -> dict:
    """Complete an action's row with what followed it; returns the row.

    Introduced in notebooks/08_rollout_workers.ipynb.
    """
    row[SampleBatch.NEXT_OBS] = next_obs
    row[SampleBatch.TERMINATEDS] = terminated
    row[SampleBatch.TRUNCATEDS] = truncated
    row[SampleBatch.INFOS] = info
    return row


def rows_to_batch(rows: list[dict]) -> SampleBatch:
    """The rows of one agent's episode piece as columns.

    Introduced in notebooks/08_rollout_workers.ipynb.
    """
    return SampleBatch({key: [row[key] for row in rows] for key in rows[0]})


def _reads_prev_inputs(policy) -> bool:
    """Whether the policy's model reads the previous action and reward (some LSTM configs)."""
    model_config = getattr(getattr(policy, "model", None), "model_config", {})
    return bool(
        model_config.get("lstm_use_prev_action") or model_config.get("lstm_use_prev_reward")
    )
