"""Single-agent sampling: one policy acting in ``num_envs_per_worker`` gymnasium envs at once.

Each step is one batched forward pass of the policy for all envs, then one step of each env.
``sample()`` runs ``rollout_fragment_length`` steps in each env and returns one ``SampleBatch``.
Episodes that end are postprocessed whole; with ``batch_mode="truncate_episodes"`` an episode
still running at the end of the fragment is cut there (postprocessing bootstraps it) and goes on
in the next call, while ``"complete_episodes"`` keeps sampling until every returned episode has
ended. What it shares with the multi-agent sampler lives in sampler.py.

Introduced in notebooks/08_rollout_workers.ipynb.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field

import numpy as np

from course_lib.evaluation.episode import DEFAULT_AGENT_ID, Episode
from course_lib.evaluation.metrics import metrics_from_plain, metrics_to_plain
from course_lib.evaluation.sampler import Sampler, action_row, close_row, rows_to_batch
from course_lib.evaluation.sampler_state import (
    env_snapshot,
    episode_snapshot,
    is_plain,
    restore_env,
    restore_episode,
)
from course_lib.sample_batch import DEFAULT_POLICY_ID, SampleBatch


@dataclass
class _EnvSlot:
    """One env, the episode running in it, and what the policy reads next."""

    env: object
    episode: Episode = None
    obs: np.ndarray = None  # filtered: what the policy sees next
    state: list = field(default_factory=list)  # recurrent state for the next step
    prev_action: object = None
    prev_reward: float = 0.0
    rows: list = field(default_factory=list)  # rows of the running episode not returned yet
    finished: list = field(default_factory=list)  # (rows, Episode) of ended episodes


class SingleAgentSampler(Sampler):
    """Steps a single-agent worker's envs together; ``sample()`` returns a ``SampleBatch``.

    Env ``i`` starts from seed ``env_seeds[i]``; episode ids come from ``rng``; finished
    episodes' metrics go to ``metrics`` (see ``Sampler``). ``get_state()`` holds the running
    episodes, so a restored worker continues them exactly.
    Introduced in notebooks/08_rollout_workers.ipynb.
    """

    def __init__(self, worker, envs: list, env_seeds: list, *, rng, metrics: list):
        super().__init__(worker, envs, env_seeds, rng=rng, metrics=metrics)
        self.policy = self.policy_map[DEFAULT_POLICY_ID]
        space = self.policy.action_space
        self._zero_action = np.zeros(space.shape, dtype=space.dtype)  # prev_action at t=0
        self.slots = [_EnvSlot(env) for env in envs]

    def sample(self) -> SampleBatch:
        """``rollout_fragment_length`` steps in every env, postprocessed, as one SampleBatch."""
        self._start_episodes_once()
        length = self.config["rollout_fragment_length"]
        complete_only = self.config["batch_mode"] == "complete_episodes"
        pieces, collected = [], 0
        while True:
            self._run_steps(length)
            finished, steps = self._cut_pieces(keep_unfinished=complete_only)
            pieces.extend(finished)
            collected += steps
            if not complete_only or collected >= length * len(self.slots):
                break
        samples = SampleBatch.concat_samples(pieces) if pieces else SampleBatch()
        self.callbacks.on_sample_end(worker=self.worker, samples=samples)
        return samples

    # --- the step loop ------------------------------------------------------------------------

    def _run_steps(self, num_steps: int) -> None:
        """Step every env ``num_steps`` times: one forward pass for all envs, then each env."""
        for _ in range(num_steps):
            actions, state_outs, extra = self.compute_actions(DEFAULT_POLICY_ID, self.slots)
            env_actions = self.env_actions(DEFAULT_POLICY_ID, actions)
            for index, slot in enumerate(self.slots):
                state_out = [s[index] for s in state_outs]
                env_extra = {key: value[index] for key, value in extra.items()}
                self._step_env(
                    index, slot, actions[index], env_actions[index], state_out, env_extra
                )

    def _step_env(
        self, index: int, slot: _EnvSlot, action, env_action, state_out: list, extra: dict
    ):
        """One step of one env: its row, the episode's counters and hooks, the end if it ended.

        ``env_action`` is what the env receives; the row keeps the policy's ``action``."""
        raw_obs, reward, terminated, truncated, info = slot.env.step(env_action)
        reward = float(reward)
        next_obs = self.filter_observation(DEFAULT_POLICY_ID, raw_obs)
        row = action_row(slot, action, extra, slot.episode, agent_index=0)
        row[SampleBatch.REWARDS] = reward
        slot.rows.append(close_row(row, next_obs, bool(terminated), bool(truncated), info))
        episode = slot.episode
        episode.length += 1
        episode._add_reward(DEFAULT_AGENT_ID, reward)
        episode._record(DEFAULT_AGENT_ID, obs=next_obs, raw_obs=raw_obs, info=info)
        self.episode_stepped(index, episode)
        slot.obs, slot.state = next_obs, state_out
        slot.prev_action, slot.prev_reward = action, reward
        if terminated or truncated:
            self._end_episode(index, slot)

    def _start_episode(self, index: int, slot: _EnvSlot, seed=None) -> None:
        raw_obs, info = slot.env.reset(seed=seed)
        slot.episode = self.new_episode(index)
        slot.obs = self.filter_observation(DEFAULT_POLICY_ID, raw_obs)
        slot.episode._record(DEFAULT_AGENT_ID, obs=slot.obs, raw_obs=raw_obs, info=info)
        slot.state = self.policy.get_initial_state()
        slot.prev_action, slot.prev_reward = self._zero_action, 0.0
        self.episode_started(index, slot.env, slot.episode)

    def _end_episode(self, index: int, slot: _EnvSlot) -> None:
        """Hooks and metrics of the ended episode; its rows wait for postprocessing; reset."""
        self.episode_ended(index, slot.env, slot.episode)
        slot.finished.append((slot.rows, slot.episode))
        slot.rows = []
        self._start_episode(index, slot)

    # --- postprocessing -----------------------------------------------------------------------

    def _cut_pieces(self, keep_unfinished: bool) -> tuple[list[SampleBatch], int]:
        """Postprocessed episode pieces of every env, and their steps.

        Ended episodes always; with ``keep_unfinished=False`` also the running ones so far.
        """
        pieces, steps = [], 0
        for slot in self.slots:
            episodes, slot.finished = slot.finished, []
            if slot.rows and not keep_unfinished:
                episodes.append((slot.rows, slot.episode))
                slot.rows = []
            for rows, episode in episodes:
                originals = {DEFAULT_AGENT_ID: rows_to_batch(rows)}
                pieces.append(self.postprocess(episode, DEFAULT_AGENT_ID, originals))
                steps += pieces[-1].count
        return pieces, steps

    # --- state for checkpoints (lesson 12) ----------------------------------------------------

    def get_state(self) -> dict | None:
        """The running episodes (envs included), the episode-id generator and unreported metrics.

        None for a sampler without envs (a trainer's local worker when remote ones sample).
        """
        if not self.slots:
            return None
        return {
            "started": self.started,
            "rng": self.rng.bit_generator.state,
            "metrics": [metrics_to_plain(m) for m in self.metrics],
            "slots": [_slot_state(slot) for slot in self.slots],
        }

    def set_state(self, state: dict | None) -> None:
        if state is None or not self.slots:
            return
        if len(state["slots"]) != len(self.slots):
            warnings.warn(
                f"The checkpoint's worker ran {len(state['slots'])} envs, this one runs "
                f"{len(self.slots)} (num_envs_per_worker differs): its episodes start afresh "
                "instead of continuing where they stopped.",
                stacklevel=3,
            )
            return
        self.rng.bit_generator.state = state["rng"]
        self.metrics[:] = [metrics_from_plain(m) for m in state["metrics"]]
        self.started = state["started"]
        for index, (slot, saved) in enumerate(zip(self.slots, state["slots"], strict=True)):
            slot.rows, slot.finished = [], []
            if saved is not None:
                _restore_slot(slot, saved)
            elif self.started:
                self._start_episode(index, slot)


def _slot_state(slot: _EnvSlot) -> dict | None:
    if slot.episode is None:
        return None
    saved = {
        "env": env_snapshot(slot.env),
        "episode": episode_snapshot(slot.episode),
        "obs": slot.obs,
        "state": list(slot.state),
        "prev_action": slot.prev_action,
        "prev_reward": slot.prev_reward,
        "pending": slot.rows,
    }
    # Rows keep info dicts: if an env's infos hold objects, they cannot be saved: it restarts.
    if not (is_plain(saved["pending"]) and is_plain(saved["episode"])):
        return None
    # A copy: sampling goes on appending to these rows and callbacks write to the episode's dicts.
    return copy.deepcopy(saved)


def _restore_slot(slot: _EnvSlot, saved: dict) -> None:
    restore_env(slot.env, saved["env"])
    slot.episode = restore_episode(saved["episode"])
    slot.obs, slot.state = saved["obs"], [np.asarray(s) for s in saved["state"]]
    slot.prev_action, slot.prev_reward = saved["prev_action"], saved["prev_reward"]
    slot.rows = saved["pending"]
