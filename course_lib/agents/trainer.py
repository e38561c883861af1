"""``Trainer``: config + rollout workers + execution plan, as a real ``ray.tune.Trainable``.

One ``train()`` call pulls one result from the execution plan (sample, learn, broadcast weights,
report metrics), evaluates every ``evaluation_interval`` calls, and fires ``on_train_result``.
Because it is a Trainable, ``tune.run(PPOTrainer, config=..., stop=...)`` and ``Tuner`` run it
unchanged and write the results folder; a trainer built directly writes one too.

``save()`` writes a checkpoint folder (tensors loaded with ``weights_only=True`` plus JSON
metadata); ``restore(path)`` loads it. With ``num_workers=0`` and a seed, training after a restore
is identical to training that never stopped: the checkpoint holds weights, optimizer moments,
exploration and filter statistics, counters, random-generator states and the running episodes.

Introduced in notebooks/12_trainers.ipynb.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import tempfile
from datetime import datetime

import numpy as np
import torch
from gymnasium import spaces
from ray.tune import Trainable

from course_lib.agents.checkpoint import load_metadata, load_state, save_state
from course_lib.agents.config import COMMON_CONFIG, merge_config, merge_dicts, validate_config
from course_lib.agents.result_logger import ResultLogger
from course_lib.callbacks import make_callbacks
from course_lib.envs import EnvContext, get_env_creator
from course_lib.evaluation import WorkerSet, collect_episodes, summarize_episodes
from course_lib.evaluation.env_actions import to_env_actions
from course_lib.execution import (
    ConcatBatches,
    ParallelRollouts,
    StandardMetricsReporting,
    TrainOneStep,
)
from course_lib.models import ModelCatalog
from course_lib.sample_batch import DEFAULT_POLICY_ID
from course_lib.seeding import global_rngs_unchanged, seed_global_rngs

logger = logging.getLogger("course_lib")
_TUNE_TRAINABLE_LOGGER = logging.getLogger("ray.tune.trainable.trainable")


@contextlib.contextmanager
def _logger_level(target: logging.Logger, level: int):
    """Give ``target`` at least ``level`` for the block, then its own level back."""
    saved = target.level
    target.setLevel(max(level, target.getEffectiveLevel()))
    try:
        yield
    finally:
        target.setLevel(saved)


# Evaluation envs are seeded away from the training envs, so they do not replay the same episodes.
EVALUATION_SEED_OFFSET = 100_000
# What save_checkpoint() writes and load_checkpoint() reads back.
_CHECKPOINT_COUNTERS = ("iteration", "timesteps_total", "episodes_total", "time_total_s")
_TRAINER_STATE_KEYS = {"worker", "execution", "rng"}
_TRAINABLE_COUNTERS = (
    "_iteration",
    "_time_total",
    "_time_since_restore",
    "_iterations_since_restore",
    "_timesteps_total",
    "_timesteps_since_restore",
    "_episodes_total",
)


def default_execution_plan(workers: WorkerSet, config: dict):
    """The 2021 RLlib tutorial's A2C dataflow: sample in parallel -> concatenate -> one gradient
    step -> report.

    Multi-agent (lesson 20): ``train_batch_size`` counts ``multiagent.count_steps_by`` and only
    ``multiagent.policies_to_train`` learn (None: every policy).
    """
    multiagent = config["multiagent"]
    rollouts = ParallelRollouts(workers, mode="bulk_sync")
    train_op = rollouts.combine(
        ConcatBatches(
            min_batch_size=config["train_batch_size"], count_steps_by=multiagent["count_steps_by"]
        )
    ).for_each(TrainOneStep(workers, policies=multiagent["policies_to_train"]))
    return StandardMetricsReporting(train_op, workers, config)


def _check_single_observation(observation, space) -> None:
    """Fail with the fix when ``observation`` cannot be one observation of ``space``.

    Only spaces whose observations are arrays (or one integer) are checked here; a Tuple or Dict
    observation is checked part by part by its preprocessor.
    """
    if not isinstance(
        space, (spaces.Box, spaces.Discrete, spaces.MultiBinary, spaces.MultiDiscrete)
    ):
        return
    described = (
        f"Box(shape={space.shape}, dtype={space.dtype})"
        if isinstance(space, spaces.Box)
        else str(space)
    )
    expected = (
        f"one observation of the env's observation space {described}: an array of shape "
        f"{tuple(space.shape)}, as env.reset() and env.step() return it"
    )
    if (
        isinstance(observation, tuple)
        and len(observation) == 2
        and isinstance(observation[1], dict)
    ):
        raise TypeError(
            f"compute_single_action expected {expected}; got a pair (obs, info), as env.reset() "
            "returns it. Unpack it first: `obs, info = env.reset()`, then pass obs."
        )
    try:
        values = np.asarray(observation)
    except ValueError:  # a ragged list such as [[1, 2], [3]]
        values = None
    if values is None or values.dtype.kind not in "biuf":
        raise TypeError(
            f"compute_single_action expected {expected}; got {type(observation).__name__} "
            f"{_short_repr(observation)}, which is not an array of numbers. Pass the obs from "
            "`obs, info = env.reset()` or from env.step(action)."
        )
    if values.shape != tuple(space.shape):
        looks_like_a_batch = values.ndim == len(space.shape) + 1 and values.shape[1:] == space.shape
        fix = (
            f" It looks like a batch of {len(values)} observations: pass them one at a time, or "
            "the whole batch to trainer.get_policy().compute_actions(batch)."
            if looks_like_a_batch
            else " Pass the obs from `obs, info = env.reset()` or env.step(action) unchanged."
        )
        raise ValueError(
            f"compute_single_action expected {expected}; got shape {values.shape}: "
            f"{_short_repr(observation)}.{fix}"
        )


def _short_repr(value, limit: int = 80) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Trainer(Trainable):
    """Base trainer; algorithms are made with ``build_trainer`` (see ``trainer_template``).

    ``Trainer(config=None, env=None)``: ``env`` may also be given as ``config["env"]``.
    Introduced in notebooks/12_trainers.ipynb.
    """

    _name = "Trainer"
    _default_config = COMMON_CONFIG
    _default_policy = None
    _hooks: dict = {}
    execution_plan = staticmethod(default_execution_plan)

    def __init__(self, config: dict | None = None, env=None, **kwargs):
        config = dict(config or {})
        if env is not None:
            config["env"] = env
        super().__init__(config=config, **kwargs)

    # --- set-up -------------------------------------------------------------------------------

    @classmethod
    def merge_trainer_configs(cls, defaults: dict, config: dict) -> dict:
        """``defaults`` with ``config`` merged in, after checking every key and type of
        ``config``."""
        validate_config(config, defaults)
        return merge_config(defaults, config)

    def setup(self, config: dict) -> None:
        self.config = config = self.merge_trainer_configs(self._default_config, config)
        if config["env"] is None:
            raise ValueError(
                'No environment: pass Trainer(config, env="CartPole-v1") or set config["env"].'
            )
        level = config["log_level"].upper()
        logger.setLevel({"WARN": "WARNING"}.get(level, level))
        if self._hooks.get("validate_config"):
            self._hooks["validate_config"](config)
        if config["seed"] is not None:
            seed_global_rngs(config["seed"])  # this process's one seeding (course_lib/seeding.py)
        self.env_creator = get_env_creator(config["env"])
        self.callbacks = make_callbacks(config["callbacks"])
        if self._hooks.get("validate_env"):
            env = self.env_creator(EnvContext(config["env_config"], worker_index=0))
            self._hooks["validate_env"](env, EnvContext(config["env_config"], worker_index=0))
            env.close()
        if self._hooks.get("before_init"):
            self._hooks["before_init"](self)
        self.workers = self._make_workers(config, config["num_workers"])
        self.train_exec_impl = self.execution_plan(self.workers, config)
        if not hasattr(self.train_exec_impl, "__next__"):
            self.workers.stop()
            raise TypeError(
                f"The execution plan of {self._name} returned {self.train_exec_impl!r}, not an "
                "iterator of result dicts. End it with `return "
                "StandardMetricsReporting(train_op, workers, config)`."
            )
        self.evaluation_workers = None
        if config["evaluation_interval"]:
            eval_config = merge_config(config, config["evaluation_config"])
            if eval_config["seed"] is not None:
                eval_config["seed"] += EVALUATION_SEED_OFFSET
            # The evaluation's local worker samples itself, so it needs envs even when there are
            # remote ones. Their policies draw initial weights (replaced before each evaluation):
            # training must see the same random numbers with and without evaluation.
            with global_rngs_unchanged():
                self.evaluation_workers = self._make_workers(
                    eval_config, config["evaluation_num_workers"]
                )
        if self._hooks.get("after_init"):
            self._hooks["after_init"](self)
        self._result_logger = None if self._storage else ResultLogger(self.logdir, config)

    def get_policy_class(self, config: dict):
        """The policy class for ``config``: ``get_policy_class(config)`` if given and not None, else
        the default."""
        chooser = self._hooks.get("get_policy_class")
        policy_class = chooser(config) if chooser else None
        policy_class = policy_class or self._default_policy
        if policy_class is None:
            raise ValueError(
                f"{self._name} has no policy: build it with "
                "build_trainer(..., default_policy=MyPolicy)."
            )
        return policy_class

    def _make_workers(self, config: dict, num_workers: int) -> WorkerSet:
        worker_config = dict(config, model=ModelCatalog.resolve_custom_names(config["model"]))
        return WorkerSet(
            env_creator=self.env_creator,
            policy_class=self.get_policy_class(config),
            trainer_config=worker_config,
            num_workers=num_workers,
            process_seeded=True,  # the local worker shares this process, seeded in setup()
        )

    def _setup_logdir(self) -> None:
        # Under Tune, Tune names the trial folder; standalone, name it like Tune would:
        # PPO_CartPole-v1_<date>.
        if self._storage:
            return super()._setup_logdir()
        from ray.train.constants import DEFAULT_STORAGE_PATH

        root = (self.config.get("logger_config") or {}).get("logdir") or DEFAULT_STORAGE_PATH
        os.makedirs(root, exist_ok=True)
        env = self.config.get("env")
        env_name = env if isinstance(env, str) else getattr(env, "__name__", "env")
        prefix = f"{self._name}_{env_name}_{datetime.today():%Y-%m-%d_%H-%M-%S}_"
        self._logdir = tempfile.mkdtemp(prefix=prefix, dir=root)

    @classmethod
    def default_resource_request(cls, config: dict):
        """What Tune reserves per trial: one bundle for the trainer, one per rollout worker."""
        from ray.tune.execution.placement_groups import PlacementGroupFactory

        cf = merge_dicts(
            cls._default_config,
            {k: v for k, v in (config or {}).items() if k in cls._default_config},
        )

        def bundle(cpu, gpu):
            return {"CPU": cpu, **({"GPU": gpu} if gpu else {})}

        workers = cf["num_workers"] + (
            cf["evaluation_num_workers"] if cf["evaluation_interval"] else 0
        )
        bundles = [bundle(cf["num_cpus_for_driver"], cf["num_gpus"])]
        worker_bundle = {
            **bundle(cf["num_cpus_per_worker"], cf["num_gpus_per_worker"]),
            **cf["custom_resources_per_worker"],
        }
        bundles += [worker_bundle] * workers
        return PlacementGroupFactory(bundles, strategy="PACK")

    # --- training -----------------------------------------------------------------------------

    def step(self) -> dict:
        result = next(self.train_exec_impl)
        interval = self.config["evaluation_interval"]
        if interval and (self.iteration + 1) % interval == 0:
            result["evaluation"] = self.evaluate()
        return result

    def evaluate(self) -> dict:
        """Run ``evaluation_num_episodes`` episodes with the current weights and
        ``evaluation_config``."""
        if self.evaluation_workers is None:
            raise RuntimeError(
                "This trainer has no evaluation workers: set "
                '"evaluation_interval" (e.g. 1) in its config.'
            )
        if self._hooks.get("before_evaluate_fn"):
            self._hooks["before_evaluate_fn"](self)
        local = self.workers.local_worker()
        eval_local = self.evaluation_workers.local_worker()
        eval_local.set_weights(local.get_weights())
        eval_local.sync_filters({pid: f.get_state() for pid, f in local.filters.items()})
        self.evaluation_workers.sync_weights()
        remote = self.evaluation_workers.remote_workers()
        wanted = self.config["evaluation_num_episodes"]
        episodes = []
        while len(episodes) < wanted:
            if remote:
                self.evaluation_workers.sample()
            else:
                eval_local.sample()
            episodes.extend(collect_episodes(eval_local if not remote else None, remote))
        return summarize_episodes(episodes[:wanted])

    def log_result(self, result: dict) -> None:
        # Called by Trainable.train() once it has added training_iteration, time_total_s, ... to the
        # result.
        self.callbacks.on_train_result(trainer=self, result=result)
        if self._result_logger is not None:
            self._result_logger.on_result(result)

    # --- acting -------------------------------------------------------------------------------

    def get_policy(self, policy_id: str = DEFAULT_POLICY_ID):
        return self.workers.local_worker().get_policy(policy_id)

    def get_weights(self, policies: list[str] | None = None) -> dict:
        return self.workers.local_worker().get_weights(policies)

    def set_weights(self, weights: dict) -> None:
        self.workers.local_worker().set_weights(weights)
        self.workers.sync_weights()

    def compute_single_action(
        self,
        observation,
        state=None,
        prev_action=None,
        prev_reward=None,
        *,
        policy_id: str = DEFAULT_POLICY_ID,
        explore: bool | None = None,
        full_fetch: bool = False,
    ):
        """The action for one raw observation (through the observation filter, without updating it).

        Returns the action, or ``(action, state_out, extra_fetches)`` when ``state`` is given
        (recurrent policies) or ``full_fetch=True``. The action is ready for ``env.step``: a
        Box action is mapped onto the env's bounds as ``normalize_actions``/``clip_actions``
        say, as the rollout workers do (lesson 16).
        """
        _check_single_observation(observation, self.get_policy(policy_id).observation_space)
        worker = self.workers.local_worker()
        if self.config["observation_filter"] != "NoFilter":
            observation = worker.filters[policy_id](np.asarray(observation)[None], update=False)[0]
        policy = self.get_policy(policy_id)
        action, state_out, extra = policy.compute_single_action(
            observation, state, prev_action=prev_action, prev_reward=prev_reward, explore=explore
        )
        action = to_env_actions([action], policy, self.config)[0]
        if state is not None or full_fetch:
            return action, state_out, extra
        return action

    def compute_action(self, observation, *args, **kwargs):
        """The 2021 RLlib tutorial's name for ``compute_single_action`` (RLlib 2021 used both)."""
        return self.compute_single_action(observation, *args, **kwargs)

    # --- checkpoints --------------------------------------------------------------------------

    def save(self, checkpoint_dir: str | None = None):
        """Write a checkpoint and return its folder (``<logdir>/checkpoint_<iteration>`` by
        default).

        Under Tune this is Tune's own save, which returns Tune's result object. A save that fails
        or is interrupted leaves the folder's previous checkpoint, if any, intact.
        """
        if self._storage:
            return super().save(checkpoint_dir)
        checkpoint_dir = os.fspath(checkpoint_dir or "") or os.path.join(
            self.logdir, f"checkpoint_{self.iteration:06d}"
        )
        created = not os.path.exists(checkpoint_dir)
        try:
            super().save(checkpoint_dir)
        except BaseException:
            if created:
                # A failed first save leaves no empty folder that looks like a checkpoint.
                with contextlib.suppress(OSError):
                    os.rmdir(checkpoint_dir)
            raise
        return checkpoint_dir

    def restore(self, checkpoint_path) -> None:
        """Load a checkpoint folder that ``save()`` returned (a str or a ``pathlib.Path``).

        A folder that is missing, damaged or not a course_lib checkpoint is refused before any of
        this trainer's state changes. Under Tune, Tune passes its own checkpoint objects.
        """
        if isinstance(checkpoint_path, (str, os.PathLike)):
            checkpoint_path = os.path.expanduser(os.fspath(checkpoint_path))
            load_metadata(checkpoint_path)  # Tune's restore says less about a wrong folder
        # Tune's restore zeroes the counters before load_checkpoint() reads the files.
        counters = {name: getattr(self, name) for name in _TRAINABLE_COUNTERS}
        try:
            # Tune's restore logs "Restored on <ip> from checkpoint: ..." at INFO on the "ray.tune"
            # logger, whose level Ray leaves at INFO unless init_ray(quiet=True) ran. The trainer's
            # own log_level decides instead, as for course_lib's messages (default WARN: silent).
            with _logger_level(_TUNE_TRAINABLE_LOGGER, logger.getEffectiveLevel()):
                super().restore(checkpoint_path)
        except BaseException:
            for name, value in counters.items():
                setattr(self, name, value)
            raise

    def save_checkpoint(self, checkpoint_dir: str) -> str:
        metadata = {
            "trainer": self._name,
            "iteration": self.iteration,
            "timesteps_total": self._timesteps_total,
            "episodes_total": self._episodes_total,
            "time_total_s": self._time_total,
            "env": self.config["env"]
            if isinstance(self.config["env"], str)
            else repr(self.config["env"]),
            "config": {
                k: v
                for k, v in self.config.items()
                if isinstance(v, (int, float, str, bool, type(None)))
            },
        }
        save_state(checkpoint_dir, self.get_trainer_state(), metadata)
        return checkpoint_dir

    def load_checkpoint(self, checkpoint_dir: str) -> None:
        metadata = load_metadata(checkpoint_dir)
        if metadata.get("trainer") != self._name:
            raise ValueError(
                f"This checkpoint was written by a {metadata.get('trainer')!r} trainer; a "
                f"{self._name!r} trainer cannot load it. Build a {metadata.get('trainer')} trainer "
                f"(e.g. course-rl rollout --run {metadata.get('trainer')}) to restore it."
            )
        # Everything is read and checked before anything is set: a bad checkpoint leaves this
        # trainer as it was.
        missing = [key for key in _CHECKPOINT_COUNTERS if key not in metadata]
        if missing:
            raise ValueError(
                f"{checkpoint_dir!r} is damaged: its metadata.json lacks {missing}. Restore "
                "another checkpoint (the other checkpoint_* folders beside it), or save again."
            )
        state = load_state(checkpoint_dir)
        if not isinstance(state, dict) or set(state) != _TRAINER_STATE_KEYS:
            found = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(
                f"{checkpoint_dir!r} holds plain data but not a trainer's state (found {found}, "
                f"expected the keys {sorted(_TRAINER_STATE_KEYS)}), so trainer.save() did not "
                "write it. Pass the folder that trainer.save() returned."
            )
        try:
            self.set_trainer_state(state)
        except (KeyError, RuntimeError, ValueError) as error:
            raise ValueError(
                f"The checkpoint {checkpoint_dir!r} does not fit this {self._name} trainer "
                f"({' '.join(str(error).split())[:300]}). Build the trainer with the config it "
                "was trained with (the model's layer sizes and the policies must match; see "
                "the trial's params.json), then restore. This trainer may be partly restored: "
                "build a new one."
            ) from error
        self._iteration = metadata["iteration"]
        self._timesteps_total = metadata["timesteps_total"]
        self._episodes_total = metadata["episodes_total"]
        self._time_total = metadata["time_total_s"]

    def _shared_metrics(self):
        """The plan's counters and episode window (None for a plan that is a plain iterator)."""
        return getattr(self.train_exec_impl, "shared_metrics", None)

    def get_trainer_state(self) -> dict:
        """Everything a resumed run needs, as plain data (see ``checkpoint.to_storable``)."""
        return {
            "worker": self.workers.local_worker().get_state(),
            "execution": self._shared_metrics().get_state() if self._shared_metrics() else {},
            "rng": {
                "torch": torch.get_rng_state(),
                "numpy": np.random.get_state(),
                "python": random.getstate(),
            },
        }

    def set_trainer_state(self, state: dict) -> None:
        self.workers.local_worker().set_state(state["worker"])
        if state["execution"]:
            self._shared_metrics().set_state(state["execution"])
        self.workers.sync_weights()
        self.workers.sync_filters()
        torch.set_rng_state(state["rng"]["torch"])
        np.random.set_state(state["rng"]["numpy"])
        random.setstate(state["rng"]["python"])

    # --- clean-up -----------------------------------------------------------------------------

    def cleanup(self) -> None:
        if hasattr(self.train_exec_impl, "close"):
            # stops the threads of a Concurrently(mode="async") plan now
            self.train_exec_impl.close()
        self.workers.stop()
        if self.evaluation_workers is not None:
            self.evaluation_workers.stop()
        if self._result_logger is not None:
            self._result_logger.close()

    def __repr__(self) -> str:
        return (
            f"{self._name}(env={self.config.get('env')!r}, "
            f"num_workers={self.config.get('num_workers')})"
        )
