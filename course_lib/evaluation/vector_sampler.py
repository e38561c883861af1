"""The fast path of single-agent sampling: one gymnasium vector env and column buffers.

``SingleAgentSampler`` (single_agent_sampler.py) is the sampler to read: it steps each env in
turn and builds one dict per row, which makes every step easy to follow and costs about 25 µs of
Python per row. With ``"vectorize_envs": True`` a worker uses this sampler instead. It gives the
same ``SampleBatch`` columns and the same episodes, hooks and metrics, but it does per step what
the other one does per row:

- the ``num_envs_per_worker`` envs are one ``gymnasium.vector.VectorEnv``. For an env that ships
  a vectorized implementation (CartPole-v1's ``vector_entry_point``) all envs advance in one
  numpy call; any other env is wrapped in gymnasium's ``SyncVectorEnv``;
- each step appends whole arrays (``(num_envs, ...)``) to per-column lists: no dict per row;
- the observation filter and the policy see the whole batch once per step;
- per-env Python runs only when an episode starts or ends (episode objects, exploration and
  callback hooks, metrics), and at the end of ``sample()``, which cuts each env's column into
  episode pieces and postprocesses them like the other sampler.

Vector envs reset an ended env on the *next* ``step()`` (gymnasium's ``NEXT_STEP`` autoreset):
that step returns the env's first observation and ignores its action, so it makes no row here.

What the fast path does not do (it refuses these with a clear error): recurrent models and
models that read the previous action or reward, ``batch_mode="complete_episodes"``, and
multi-agent envs. It keeps no ``infos`` (the column holds empty dicts), callbacks that override
``on_episode_step`` make it call that hook per env and step (slower), and a checkpoint does
not hold its running episodes: after a restore they start afresh.

Introduced in notebooks/08_rollout_workers.ipynb (the fast path section).
"""

from __future__ import annotations

import gymnasium
import numpy as np

from course_lib.callbacks import DefaultCallbacks
from course_lib.envs.registry import registered_envs
from course_lib.evaluation.episode import DEFAULT_AGENT_ID
from course_lib.evaluation.sampler import Sampler
from course_lib.sample_batch import DEFAULT_POLICY_ID, SampleBatch


def make_vector_env(
    env_id, env_config: dict, make_one, num_envs: int
) -> gymnasium.vector.VectorEnv:
    """``num_envs`` copies of an env as one vector env.

    ``env_id``: what the worker's config names as its env. When that is a gymnasium id (not a
    course env of the same name) whose registration has a ``vector_entry_point``, as CartPole-v1
    has, and there is no ``env_config``, the envs step together in numpy. Otherwise
    ``make_one(vector_index)`` builds each copy and gymnasium's ``SyncVectorEnv`` steps them in
    turn.
    """
    spec = None
    if isinstance(env_id, str) and env_id not in registered_envs() and not env_config:
        spec = gymnasium.registry.get(env_id)
    if spec is not None and spec.vector_entry_point is not None:
        return gymnasium.make_vec(
            env_id, num_envs=num_envs, vectorization_mode="vector_entry_point"
        )
    return gymnasium.vector.SyncVectorEnv(
        [lambda index=index: make_one(index) for index in range(num_envs)],
        autoreset_mode=gymnasium.vector.AutoresetMode.NEXT_STEP,
    )


class VectorSampler(Sampler):
    """Single-agent sampling through one vector env; ``sample()`` returns a ``SampleBatch``.

    ``vector_env`` holds the worker's ``num_envs_per_worker`` envs; ``seed`` seeds its first
    reset (a ``SyncVectorEnv`` gives env ``i`` the seed ``seed + i``, as the other sampler does).
    Introduced in notebooks/08_rollout_workers.ipynb.
    """

    def __init__(self, worker, vector_env, seed, *, rng, metrics: list):
        super().__init__(worker, [vector_env], [seed], rng=rng, metrics=metrics)
        self.vector_env = vector_env
        self.num_envs = vector_env.num_envs
        self.policy = self.policy_map[DEFAULT_POLICY_ID]
        self._check_supported()
        space = self.policy.action_space
        self._zero_actions = np.zeros((self.num_envs, *space.shape), dtype=space.dtype)
        self._steps_hook = (
            type(self.callbacks).on_episode_step is not DefaultCallbacks.on_episode_step
        )
        self.episodes: list = [None] * self.num_envs
        self.slots = self.episodes  # what the base class counts
        self._ended: dict = {}  # episode id -> Episode, for the episodes that ended this sample

    def _check_supported(self) -> None:
        problems = []
        if self.policy.get_initial_state():
            problems.append("a recurrent model (its state would need a column per env)")
        if self._reads_prev[DEFAULT_POLICY_ID]:
            problems.append("a model that reads the previous action or reward")
        if self.config["batch_mode"] != "truncate_episodes":
            problems.append(f"batch_mode={self.config['batch_mode']!r}")
        if problems:
            raise ValueError(
                '"vectorize_envs": True is the fast path for feed-forward policies with '
                f'batch_mode="truncate_episodes"; this worker has {" and ".join(problems)}. '
                'Set "vectorize_envs": False to sample with SingleAgentSampler.'
            )

    # --- the step loop ------------------------------------------------------------------------

    def _start_episodes_once(self) -> None:
        if self.started:
            return
        raw_obs, _ = self.vector_env.reset(seed=self.env_seeds[0])
        self._obs = self.filters[DEFAULT_POLICY_ID](raw_obs)
        self._raw_obs = raw_obs
        self._lengths = np.zeros(self.num_envs, np.int64)
        self._returns = np.zeros(self.num_envs, np.float64)
        self._prev_actions = self._zero_actions.copy()
        self._prev_rewards = np.zeros(self.num_envs, np.float32)
        self._ids = np.zeros(self.num_envs, np.int64)
        self._resetting = np.zeros(self.num_envs, bool)
        for index in range(self.num_envs):
            self._start_episode(index)
        self.started = True

    def _start_episode(self, index: int, slot=None, seed=None) -> None:
        episode = self.new_episode(index)
        episode._record(DEFAULT_AGENT_ID, obs=self._obs[index], raw_obs=self._raw_obs[index])
        self.episodes[index] = episode
        self._ids[index] = episode.episode_id
        self._lengths[index], self._returns[index] = 0, 0.0
        self._prev_actions[index], self._prev_rewards[index] = self._zero_actions[index], 0.0
        self.episode_started(index, self.vector_env, episode)

    def sample(self) -> SampleBatch:
        """At least ``rollout_fragment_length * num_envs`` rows, postprocessed, as one batch."""
        self._start_episodes_once()
        self._ended.clear()
        target = self.config["rollout_fragment_length"] * self.num_envs
        columns: dict[str, list] = {}
        valid_steps, collected = [], 0
        while collected < target:
            valid = ~self._resetting
            step = self._step(valid)
            for key, value in step.items():
                columns.setdefault(key, []).append(value)
            valid_steps.append(valid)
            collected += int(valid.sum())
        pieces = self._cut_pieces(
            {key: np.stack(values) for key, values in columns.items()}, np.stack(valid_steps)
        )
        samples = SampleBatch.concat_samples(pieces) if pieces else SampleBatch()
        self.callbacks.on_sample_end(worker=self.worker, samples=samples)
        return samples

    def _step(self, valid: np.ndarray) -> dict:
        """One step of every env: the columns of this step's rows, ``(num_envs, ...)`` each.

        Envs where ``valid`` is False were reset by this step (their row is dropped later).
        """
        actions, _, extra = self.policy.compute_actions(self._obs, explore=self.config["explore"])
        step = {
            SampleBatch.OBS: self._obs,
            SampleBatch.ACTIONS: actions,
            SampleBatch.EPS_ID: self._ids.copy(),
            SampleBatch.T: self._lengths.copy(),
            "prev_actions": self._prev_actions.copy(),
            "prev_rewards": self._prev_rewards.copy(),
            **extra,
        }
        raw_obs, rewards, terminateds, truncateds, _ = self.vector_env.step(
            self.env_actions(DEFAULT_POLICY_ID, actions)
        )
        rewards = np.asarray(rewards, np.float64)
        obs = self.filters[DEFAULT_POLICY_ID](raw_obs)
        step.update(
            {
                SampleBatch.REWARDS: rewards,
                SampleBatch.NEXT_OBS: obs,
                SampleBatch.TERMINATEDS: np.asarray(terminateds, bool),
                SampleBatch.TRUNCATEDS: np.asarray(truncateds, bool),
            }
        )
        self._obs, self._raw_obs = obs, raw_obs
        self._lengths += valid
        self._returns += np.where(valid, rewards, 0.0)
        self._prev_actions[valid], self._prev_rewards[valid] = actions[valid], rewards[valid]
        if self._steps_hook:
            for index in np.flatnonzero(valid):
                self._sync_episode(index)
                self.episode_stepped(int(index), self.episodes[index])
        for index in np.flatnonzero(self._resetting):  # reset by this step: a new episode
            self._start_episode(int(index))
        done = valid & (step[SampleBatch.TERMINATEDS] | step[SampleBatch.TRUNCATEDS])
        for index in np.flatnonzero(done):
            self._sync_episode(index)
            self.episode_ended(int(index), self.vector_env, self.episodes[index])
        self._resetting = done
        return step

    def _sync_episode(self, index) -> None:
        """Bring env ``index``'s Episode up to date from the step counters (done only when read)."""
        episode = self.episodes[index]
        reward = self._returns[index] - episode.total_reward
        episode.length = int(self._lengths[index])
        episode._add_reward(DEFAULT_AGENT_ID, float(reward))
        episode._record(DEFAULT_AGENT_ID, obs=self._obs[index], raw_obs=self._raw_obs[index])

    # --- postprocessing -----------------------------------------------------------------------

    def _cut_pieces(self, columns: dict, valid: np.ndarray) -> list[SampleBatch]:
        """Each env's rows, cut into episode pieces and postprocessed.

        ``columns[key]`` is ``(steps, num_envs, ...)``; the rows of env ``i`` are
        ``columns[key][valid[:, i], i]``. Rows of an episode still running at the end are cut
        there: postprocessing bootstraps them from the value of their last observation.
        """
        pieces = []
        for index in range(self.num_envs):
            rows = {key: column[valid[:, index], index] for key, column in columns.items()}
            ids = rows[SampleBatch.EPS_ID]
            starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
            for start, end in zip(starts, np.r_[starts[1:], len(ids)], strict=True):
                piece = SampleBatch({key: value[start:end] for key, value in rows.items()})
                piece[SampleBatch.AGENT_INDEX] = np.zeros(end - start, np.int64)
                piece[SampleBatch.INFOS] = np.array([{} for _ in range(end - start)], object)
                episode = self._episode_of(int(ids[start]), index)
                pieces.append(
                    self.postprocess(episode, DEFAULT_AGENT_ID, {DEFAULT_AGENT_ID: piece})
                )
        return pieces

    def _episode_of(self, episode_id: int, index: int):
        """The Episode with this id: the running one, or one that ended during this sample."""
        running = self.episodes[index]
        if running.episode_id == episode_id:
            return running
        return self._ended[episode_id]

    def episode_ended(self, env_index: int, env, episode) -> None:
        super().episode_ended(env_index, env, episode)
        self._ended[episode.episode_id] = episode

    # --- state for checkpoints (lesson 12) ----------------------------------------------------

    def get_state(self) -> None:
        """None: a checkpoint does not hold the fast path's running episodes (they restart)."""
        return None

    def set_state(self, state) -> None:
        self.started = False  # the restored worker starts fresh episodes
