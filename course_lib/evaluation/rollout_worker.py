"""``RolloutWorker``: runs policies in its own envs and returns postprocessed experience.

A worker owns ``num_envs_per_worker`` envs, its policies (one, unless multi-agent) with their
observation filters, and one sampler that steps the envs: a ``SingleAgentSampler``
(single_agent_sampler.py) for a gymnasium env, a ``MultiAgentSampler`` (multi_agent_sampler.py,
notebooks/20_multi_agent.ipynb) for a ``MultiAgentEnv`` or when
``config["multiagent"]["policies"]`` is set. ``sample()`` returns a ``SampleBatch`` from the
first and a ``MultiAgentBatch`` from the second.

It works as a plain object (the "local worker" of a trainer) and as a Ray actor
(``RolloutWorker.as_remote().remote(...)``). Introduced in notebooks/08_rollout_workers.ipynb.
"""

from __future__ import annotations

import numpy as np

from course_lib.callbacks import make_callbacks
from course_lib.envs import EnvContext
from course_lib.envs.multi_agent import MultiAgentEnv
from course_lib.envs.registry import env_from_creator
from course_lib.evaluation.metrics import RolloutMetrics
from course_lib.evaluation.multi_agent_sampler import MultiAgentSampler
from course_lib.evaluation.observation_filter import make_filter
from course_lib.evaluation.policy_map import build_policy_map
from course_lib.evaluation.single_agent_sampler import SingleAgentSampler
from course_lib.evaluation.vector_sampler import VectorSampler, make_vector_env
from course_lib.offline.input_reader import (
    make_input_reader,
    make_output_writer,
    uses_sampler_only,
)
from course_lib.offline.off_policy_estimator import make_estimators
from course_lib.sample_batch import DEFAULT_POLICY_ID, MultiAgentBatch, SampleBatch
from course_lib.seeding import seed_global_rngs
from course_lib.validation import require_whole_number

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
    # Box actions: act in [-1, 1] and unsquash onto the env's bounds / clip into them
    # (env_actions.py, notebooks/16_continuous_control.ipynb).
    "normalize_actions": True,
    "clip_actions": False,
    # The fast path (vector_sampler.py): the worker's envs as one gymnasium vector env, sampled
    # into column buffers. Feed-forward policies with batch_mode="truncate_episodes" only.
    "vectorize_envs": False,
    # Offline datasets (course_lib/offline/, notebooks/17_offline_rl.ipynb): where sample() gets
    # its batches, what it estimates from recorded ones, and where it writes them.
    "input": "sampler",
    "input_evaluation": ["is", "wis"],
    "postprocess_inputs": False,
    "output": None,
    "output_compress_columns": ["obs", "new_obs"],
    "output_max_file_size": 64 * 1024 * 1024,
    # Lesson 20: {"policies": {pid: (cls, obs_space, act_space, overrides)},
    # "policy_mapping_fn": fn, "count_steps_by": "env_steps" or "agent_steps"}
    "multiagent": {},
}
BATCH_MODES = ("truncate_episodes", "complete_episodes")


class RolloutWorker:
    """Collects experience with its policies in ``num_envs_per_worker`` envs.

    ``env_creator(env_config)`` builds each env (it receives an ``EnvContext`` with
    ``worker_index`` and ``vector_index``); ``policy_class(obs_space, action_space, config)``
    builds the policy. Env seeds are ``seed + 1000 * worker_index + vector_index``, so two
    workers never collect the same episodes and one seed reproduces a whole run.

    With a seed, the worker also seeds its process's global random generators (Python, numpy,
    torch) with ``seed + 1000 * worker_index``, unless ``process_seeded=True``: a trainer passes
    that for the workers it builds in its own process, which it has seeded already
    (see course_lib/seeding.py). Introduced in notebooks/08_rollout_workers.ipynb.
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
        process_seeded: bool = False,
    ):
        self.config = {**WORKER_DEFAULTS, **(config or {})}
        self.worker_index, self.num_workers = worker_index, num_workers
        if self.config["batch_mode"] not in BATCH_MODES:
            raise ValueError(
                f'"batch_mode": {self.config["batch_mode"]!r} is not one of {BATCH_MODES}.'
            )
        require_whole_number(
            self.config["rollout_fragment_length"], '"rollout_fragment_length"', minimum=1
        )
        seed = self.config["seed"]
        worker_seed = None if seed is None else seed + 1000 * worker_index
        if worker_seed is not None and not process_seeded:
            seed_global_rngs(worker_seed)
        self.env_creator = env_creator
        num_envs = self.config["num_envs_per_worker"] if create_env else 0
        env_seeds = [None if worker_seed is None else worker_seed + i for i in range(num_envs)]
        # The first env tells a multi-agent env apart and gives the policies their spaces; a
        # worker without envs of its own (a trainer's local worker) builds it only for that.
        spaces_from = self._make_env(0)
        self.multi_agent = isinstance(spaces_from, MultiAgentEnv) or bool(
            (self.config.get("multiagent") or {}).get("policies")
        )
        vectorize = bool(self.config["vectorize_envs"]) and num_envs > 0 and not self.multi_agent
        if vectorize:  # the fast path builds all of its envs inside one vector env
            self.envs = [
                make_vector_env(
                    self.config.get("env"), self.config["env_config"], self._make_env, num_envs
                )
            ]
        else:
            self.envs = [spaces_from, *map(self._make_env, range(1, num_envs))] if num_envs else []
        self.callbacks = make_callbacks(self.config["callbacks"])
        policy_config = {
            **self.config,
            "worker_index": worker_index,
            "num_workers": num_workers,
            "seed": worker_seed,
        }
        self.policy_map = build_policy_map(spaces_from, policy_class, policy_config, self)
        self.filters = {
            pid: make_filter(self.config["observation_filter"], policy.observation_space)
            for pid, policy in self.policy_map.items()
        }
        default_policy = self.policy_map.get(DEFAULT_POLICY_ID)
        self.observation_space = getattr(default_policy, "observation_space", None)
        self.action_space = getattr(default_policy, "action_space", None)
        rng = np.random.default_rng(worker_seed)
        if vectorize:
            self.sampler = VectorSampler(self, self.envs[0], worker_seed, rng=rng, metrics=[])
        else:
            sampler_class = MultiAgentSampler if self.multi_agent else SingleAgentSampler
            self.sampler = sampler_class(self, self.envs, env_seeds, rng=rng, metrics=[])
        if vectorize or not self.envs:
            spaces_from.close()
        self.input_reader = make_input_reader(self.config, self, self._sample_envs, worker_seed)
        self.output_writer = make_output_writer(self.config, worker_index)
        self.reward_estimators = (
            []
            if uses_sampler_only(self.config)
            else make_estimators(self.config["input_evaluation"], default_policy)
        )
        self._off_policy_estimates: list = []

    def _make_env(self, vector_index: int):
        context = EnvContext(
            self.config["env_config"], worker_index=self.worker_index, vector_index=vector_index
        )
        return env_from_creator(self.env_creator, context, self.config.get("env"))

    @classmethod
    def as_remote(
        cls,
        num_cpus: float = 1,
        num_gpus: float = 0,
        max_restarts: int = 0,
        resources: dict | None = None,
    ):
        """This class as a Ray actor class with the given resources (``resources``: custom ones,
        ``{name: amount}``)."""
        import ray

        return ray.remote(
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            max_restarts=max_restarts,
            resources=resources or None,
        )(cls)

    # --- policies and weights -----------------------------------------------------------------

    def get_policy(self, policy_id: str = DEFAULT_POLICY_ID):
        return self.policy_map[policy_id]

    def get_weights(self, policies: list[str] | None = None) -> dict:
        """``{policy_id: weights}`` for the given (default: all) policies."""
        return {
            pid: p.get_weights()
            for pid, p in self.policy_map.items()
            if policies is None or pid in policies
        }

    def set_weights(self, weights: dict, global_vars: dict | None = None) -> None:
        """Load ``{policy_id: weights}``.

        Pass an ObjectRef from ``ray.put`` to send one copy to many workers.
        """
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
        """``{policy_id: learner result}``; a MultiAgentBatch trains each policy on its rows."""
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
        """The next batch from ``"input"``: by default ``rollout_fragment_length`` steps in every
        env, postprocessed, from the sampler; or batches recorded in files (lesson 17).

        A ``SampleBatch``, or in multi-agent mode a ``MultiAgentBatch`` with one SampleBatch
        per policy. With ``"output"`` set, the batch is also written there; recorded input is
        also scored by the ``"input_evaluation"`` estimators (``get_off_policy_estimates``).
        """
        batch = self.input_reader.next()
        if self.output_writer is not None:
            self.output_writer.write(batch)
        for estimator in self.reward_estimators:
            self._off_policy_estimates.extend(estimator.estimate(batch))
        return batch

    def _sample_envs(self) -> SampleBatch | MultiAgentBatch:
        if not self.envs:
            raise RuntimeError(
                f"Rollout worker {self.worker_index} has no environments: with num_workers > 0 "
                "the local worker does not sample. Sample from workers.remote_workers(), or set "
                "num_workers=0."
            )
        return self.sampler.sample()

    def get_metrics(self) -> list[RolloutMetrics]:
        """Metrics of the episodes finished since the last call (and forget them)."""
        return self.sampler.get_metrics()

    def get_off_policy_estimates(self) -> list:
        """Off-policy estimates of the batches read since the last call (and forget them)."""
        estimates, self._off_policy_estimates = self._off_policy_estimates, []
        return estimates

    # --- state for checkpoints (lesson 12) ----------------------------------------------------

    def get_state(self) -> dict:
        """Policies, filters and, when the sampler can save them, the episodes in progress."""
        state = {
            "policies": {pid: p.get_state() for pid, p in self.policy_map.items()},
            "filters": {pid: f.get_state() for pid, f in self.filters.items()},
        }
        sampler_state = self.sampler.get_state()
        if sampler_state is not None:
            state["sampler"] = sampler_state
        return state

    def set_state(self, state: dict) -> None:
        for pid, policy_state in state["policies"].items():
            self.policy_map[pid].set_state(policy_state)
        for pid, filter_state in state["filters"].items():
            self.filters[pid].set_state(filter_state)
        self.sampler.set_state(state.get("sampler"))

    # --- plumbing for WorkerSet ---------------------------------------------------------------

    def apply(self, fn, *args):
        """``fn(self, *args)`` inside this worker's process (``WorkerSet.foreach_worker``)."""
        return fn(self, *args)

    def ping(self) -> str:
        return "pong"

    def stop(self) -> None:
        for env in self.envs:
            env.close()
        if self.output_writer is not None:
            self.output_writer.close()
