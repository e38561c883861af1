"""Every lesson's "How this maps to RLlib today" section, checked against the installed RLlib 2.60.

The rule: every claim such a section makes about today's Ray or RLlib is either a test here (or a
code cell of its lesson), or is written as history (past tense, with a year or a version). Names
are imported from the paths the text gives, keywords are checked on the real signatures, defaults
are read from the real objects, and the code the sections show runs against RLlib on CartPole-v1.
A deprecated RLlib spelling fails a test like an error (see `deprecations_fail`), so a section
cannot keep teaching a name RLlib is about to drop.

One test function (or a few) per lesson, named `test_lesson_NN_...`, its docstring quoting the
claim it proves; `test_every_lesson_maps_to_rllib_today_and_is_tested_here` makes sure a new
lesson's section cannot go untested. Lesson 19 is the RLlib lesson itself: it runs RLlib in its own
code cells, so it has no section to check here.

The fast tests need no Ray; the `slow` ones share one Ray instance (conftest's `ray_session`) and
one tiny PPO built on it (`trained_ppo`), and write checkpoints and Tune trials under tmp_path.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import inspect
import json
import logging
import os
import re
import shutil
import sys
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import ray
import torch
from gymnasium.envs.classic_control import CartPoleEnv
from ray import tune
from ray.rllib.algorithms.algorithm import Algorithm
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.algorithms.dqn import DQNConfig
from ray.rllib.algorithms.ppo import PPO, PPOConfig
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.core.learner.learner import Learner
from ray.rllib.core.rl_module.rl_module import RLModule
from ray.rllib.env.env_runner import EnvRunner
from ray.rllib.env.multi_agent_env_runner import MultiAgentEnvRunner
from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner
from ray.rllib.env.single_agent_episode import SingleAgentEpisode
from ray.rllib.execution.rollout_ops import synchronous_parallel_sample
from ray.rllib.utils.metrics import (
    ENV_RUNNER_RESULTS,
    LEARNER_RESULTS,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
)

from course_lib.rllib_today import handle_rllib_deprecations, is_internal_deprecation

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
# Lesson 19 ("RLlib today") runs RLlib in its own code cells instead of ending with a section.
RLLIB_LESSON = "19"
LESSONS = {
    path.name[:2]: path
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if path.name[:2] != RLLIB_LESSON
}
SECTION_HEADING = re.compile(r"^## How this maps to .*today", re.MULTILINE)

# Small enough that a train() call takes about a second on two busy cores.
TINY_BATCH = 200

# ---------------------------------------------------------------------------------------------
# Deprecated spellings fail
# ---------------------------------------------------------------------------------------------


class _FailOnDeprecation(logging.Handler):
    """Turns RLlib's logged deprecation warnings into an AssertionError at the deprecated call.

    RLlib 2.60 logs one deprecation about its own internals whenever it builds a default RLModule
    (an RLModuleConfig it still fills); no spelling of ours can avoid that one, so it passes.
    """

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if is_internal_deprecation(message):
            return
        raise AssertionError(
            f"A section of the course uses a deprecated RLlib spelling: {message} "
            "Change the section (and this test) to the spelling RLlib recommends."
        )


@contextlib.contextmanager
def deprecations_fail():
    """Inside, a deprecated RLlib spelling raises instead of logging a warning.

    RLlib's `deprecation_warning` logs (course_lib.rllib_today routes those lines to a handler)
    and some RLlib code calls `warnings.warn`, so both paths are covered.
    """
    with handle_rllib_deprecations(_FailOnDeprecation()), warnings.catch_warnings():
        warnings.filterwarnings("error", category=DeprecationWarning, module=r"ray\.rllib")
        yield


@pytest.fixture(autouse=True)
def deprecated_spellings_are_errors():
    with deprecations_fail():
        yield


def test_a_deprecated_rllib_spelling_fails_here():
    """`.training(learner_class=...)` is deprecated (RLlib logs it); `.learners(...)` is not."""
    with pytest.raises(AssertionError, match=re.escape("config.training(learner_class=..)")):
        PPOConfig().training(learner_class=PPOTorchLearner)
    config = PPOConfig().learners(learner_class=PPOTorchLearner)
    assert config.learner_class is PPOTorchLearner


def test_every_lesson_maps_to_rllib_today_and_is_tested_here():
    """Each lesson but 16 ends with a "How this maps to ... today" section, tested in this file."""
    assert len(LESSONS) >= 16, f"expected the lessons under {NOTEBOOKS}, found {sorted(LESSONS)}"
    tests = [name for name in globals() if name.startswith("test_lesson_")]
    for number, path in LESSONS.items():
        notebook = json.loads(path.read_text(encoding="utf-8"))
        markdown = ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "markdown"]
        assert any(SECTION_HEADING.search(text) for text in markdown), (
            f"{path.name} has no '## How this maps to RLlib today' section; every lesson ends "
            "with one (see lesson 03's for the shape)."
        )
        assert any(name.startswith(f"test_lesson_{number}_") for name in tests), (
            f"{path.name}'s RLlib-today section has no test: add test_lesson_{number}_... to "
            f"{Path(__file__).name} with a check for each claim it makes."
        )


# ---------------------------------------------------------------------------------------------
# Shared, cheap RLlib objects (no Ray needed: a local EnvRunner builds its envs and RLModule)
# ---------------------------------------------------------------------------------------------


class ContextCartPole(CartPoleEnv):
    """CartPole built from an env_config, as lesson 03's `MyEnv(env_config)`: keeps what it got."""

    def __init__(self, env_config):
        super().__init__()
        self.env_config = env_config


@pytest.fixture(scope="module")
def cartpole_runner():
    """A local single-agent EnvRunner stepping two CartPole-v1 copies with PPO's default module."""
    with deprecations_fail():
        config = (
            PPOConfig()
            .environment("CartPole-v1")
            .env_runners(num_envs_per_env_runner=2)
            .training(gamma=0.9, lambda_=0.8)
        )
        runner = SingleAgentEnvRunner(config=config)
    yield runner
    runner.stop()


def sample_until(runner, num_timesteps, wanted, what):
    """Random CartPole episodes end at random steps: sample again until a cut shows `what`."""
    for _ in range(10):
        episodes = runner.sample(num_timesteps=num_timesteps, random_actions=True)
        if wanted(episodes):
            return episodes
    pytest.fail(f"ten samples of {num_timesteps} CartPole steps never held {what}")


def stop(algo):
    """Stops an Algorithm and removes the result folder it made under ~/ray_results."""
    logdir = algo.logdir
    algo.stop()
    shutil.rmtree(logdir, ignore_errors=True)


def module_state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def same_state(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------------------------------------
# 00 welcome
# ---------------------------------------------------------------------------------------------


def test_lesson_00_welcome_names_of_today():
    """Claims (the table): `Trainer`, config dict → `Algorithm`, `AlgorithmConfig`; `RolloutWorker`
    → `EnvRunner`; `Policy` + `ModelV2` → `RLModule` (+ `Learner`); preprocessors, filters →
    `ConnectorV2` pipelines; `DefaultCallbacks` → `RLlibCallback`."""
    from ray.rllib.algorithms import Algorithm as PublicAlgorithm
    from ray.rllib.algorithms import AlgorithmConfig as PublicAlgorithmConfig
    from ray.rllib.connectors.connector_v2 import ConnectorV2 as PublicConnectorV2
    from ray.rllib.core.learner import Learner as PublicLearner
    from ray.rllib.core.rl_module import RLModule as PublicRLModule

    assert PublicAlgorithm is Algorithm and PublicAlgorithmConfig is AlgorithmConfig
    assert PublicLearner is Learner and PublicRLModule is RLModule
    assert PublicConnectorV2 is ConnectorV2
    assert issubclass(SingleAgentEnvRunner, EnvRunner)
    assert issubclass(MultiAgentEnvRunner, EnvRunner)
    assert inspect.isclass(RLlibCallback)
    assert isinstance(PPOConfig(), AlgorithmConfig) and issubclass(PPO, Algorithm)


# ---------------------------------------------------------------------------------------------
# 01 Ray tasks
# ---------------------------------------------------------------------------------------------


def test_lesson_01_ray_tasks_api_of_today():
    """Claims: "`ray.get` and `ray.wait` also take a `timeout`"; "refs can also be `await`ed"; "Ray
    Data's `Dataset.map_batches`"; "`ray.util.multiprocessing.Pool` keeps the Pool API"."""
    for function in (ray.get, ray.wait):
        assert "timeout" in inspect.signature(function).parameters
    assert "num_returns" in inspect.signature(ray.wait).parameters
    for name in ("remote", "put", "shutdown"):
        assert callable(getattr(ray, name))
    assert hasattr(ray.ObjectRef, "__await__")

    from ray.data import Dataset

    assert callable(Dataset.map_batches)

    from ray.util.multiprocessing import Pool

    for method in ("map", "imap", "imap_unordered", "starmap", "apply", "apply_async", "close"):
        assert callable(getattr(Pool, method)), method
    # "runs on a Ray cluster": the pool takes the address of the cluster it should join.
    assert "ray_address" in inspect.signature(Pool).parameters


def test_lesson_01_and_02_env_runners_are_ray_actors():
    """Claims: "RLlib's `EnvRunner`s, like the course's `RolloutWorker` in lesson 08, are actors";
    they are created "with Ray's own `max_restarts` (`max_num_env_runner_restarts`)"."""
    from ray.rllib.env.env_runner_group import EnvRunnerGroup

    make_worker = inspect.getsource(EnvRunnerGroup._make_worker)
    assert "ray.remote(**self._remote_args)(self.env_runner_cls)" in make_worker
    init = inspect.getsource(EnvRunnerGroup.__init__)
    assert re.search(r'"max_restarts": \(\s*config\.max_num_env_runner_restarts', init)


# ---------------------------------------------------------------------------------------------
# 02 Ray actors
# ---------------------------------------------------------------------------------------------


def test_lesson_02_actor_options_are_current_ray_api():
    """Claims: "`@ray.remote` classes, handles, named actors, `num_cpus`, `ActorPool`,
    `max_restarts` and `max_task_retries`" are current Ray API."""

    @ray.remote(num_cpus=0.5, max_restarts=2, max_task_retries=1)
    class Counter:
        def add(self):
            return 1

    # .options() validates its keywords without starting Ray.
    Counter.options(name="counter", get_if_exists=True, num_cpus=1, max_restarts=-1)
    with pytest.raises(ValueError):
        Counter.options(no_such_option=1)
    assert callable(ray.get_actor) and callable(ray.kill) and callable(ray.cancel)

    from ray.util import ActorPool

    assert callable(ActorPool.map) and callable(ActorPool.map_unordered)


def test_lesson_02_env_runner_fault_tolerance():
    """Claims: "`AlgorithmConfig.env_runners(num_env_runners=..., num_cpus_per_env_runner=...)`.
    Fault tolerance is `AlgorithmConfig.fault_tolerance(restart_failed_env_runners=True)` (the
    default) ... checks the unhealthy ones between iterations, and sends each restored actor the
    current weights"."""
    from ray.rllib.env.env_runner_group import EnvRunnerGroup

    config = (
        AlgorithmConfig()
        .env_runners(num_env_runners=2, num_cpus_per_env_runner=1)
        .fault_tolerance(restart_failed_env_runners=True, max_num_env_runner_restarts=5)
    )
    assert config.num_env_runners == 2 and config.max_num_env_runner_restarts == 5
    assert AlgorithmConfig().restart_failed_env_runners is True
    assert callable(EnvRunnerGroup.probe_unhealthy_env_runners)
    # Every training iteration restores the env runners that came back ...
    assert "self.restore_env_runners(" in inspect.getsource(Algorithm._run_one_training_iteration)
    # ... by probing them, then setting the current state (weights included) on them.
    restore = inspect.getsource(Algorithm.restore_env_runners)
    assert "probe_unhealthy_env_runners()" in restore and ".set_state(" in restore


# ---------------------------------------------------------------------------------------------
# 03 environments
# ---------------------------------------------------------------------------------------------


def test_lesson_03_registering_and_configuring_envs():
    """Claims: "`ray.tune.registry.register_env(name, creator)` (also `tune.register_env`) still
    takes a creator of `env_config`, an `EnvContext` with `worker_index`, `vector_index` and
    `num_workers`. The config is set with `AlgorithmConfig.environment(env="my_env",
    env_config={...})`; a gymnasium id or an env class works too."""
    from ray.rllib.env.env_context import EnvContext
    from ray.tune.registry import register_env

    assert tune.register_env is register_env
    register_env("rllib_today_cartpole", lambda env_config: ContextCartPole(env_config))

    for env in ("rllib_today_cartpole", ContextCartPole):
        config = PPOConfig().environment(env=env, env_config={"length": 7})
        # What an EnvRunnerGroup passes its second of three remote EnvRunners.
        runner = SingleAgentEnvRunner(config=config, worker_index=2, num_workers=3)
        made = runner.env.unwrapped.envs[0].unwrapped
        runner.stop()
        assert isinstance(made, ContextCartPole)
        assert isinstance(made.env_config, EnvContext) and made.env_config["length"] == 7
        context = made.env_config
        assert (context.worker_index, context.vector_index, context.num_workers) == (2, 0, 3)


def test_lesson_03_env_runner_vectorizes_with_gymnasium(cartpole_runner):
    """Claims: "each single-agent `EnvRunner` ... builds its envs with `gymnasium.make_vec`
    (`num_envs_per_env_runner`, `gym_env_vectorize_mode` "sync" or "async") and handles `NextStep`
    autoreset itself, so reset steps never count as timesteps"; "RLlib's sample data keeps
    `terminateds` and `truncateds` apart"."""
    from ray.rllib.core.columns import Columns

    assert isinstance(cartpole_runner.env.unwrapped, gym.vector.SyncVectorEnv)
    assert cartpole_runner.num_envs == 2
    assert AlgorithmConfig().gym_env_vectorize_mode == "sync"
    assert gym.VectorizeMode("async") is gym.VectorizeMode.ASYNC
    assert "gym_env_vectorize_mode" in inspect.signature(AlgorithmConfig.env_runners).parameters

    # Random CartPole episodes last ~20 steps, so 200 steps hold several resets: had a reset
    # counted as a step, the episodes would hold fewer steps than were asked for.
    episodes = sample_until(
        cartpole_runner, 200, lambda eps: sum(e.is_done for e in eps) >= 4, "four resets"
    )
    assert 200 <= sum(len(e) for e in episodes) < 200 + cartpole_runner.num_envs
    assert (Columns.TERMINATEDS, Columns.TRUNCATEDS) == ("terminateds", "truncateds")


def test_lesson_03_preprocessing_is_connectors():
    """Claims: "preprocessors ... moved into connectors (`ConnectorV2` pipelines such as
    env-to-module), which can also see the whole episode"."""
    from ray.rllib.connectors.env_to_module import EnvToModulePipeline

    assert issubclass(EnvToModulePipeline, ConnectorV2)
    assert "episodes" in inspect.signature(ConnectorV2.__call__).parameters


# ---------------------------------------------------------------------------------------------
# 04 RL primer
# ---------------------------------------------------------------------------------------------


def test_lesson_04_rl_primer_discount_replay_and_importance_weights():
    """Claims: the discount is `AlgorithmConfig.training(gamma=...)`, "0.99 by default", and PPO's
    GAE parameter is `lambda_`; "APPO and IMPALA correct for slightly stale samples with importance
    weights (V-trace)"; off-policy DQN and SAC store transitions in "`EpisodeReplayBuffer` and its
    prioritized variant"; the advantages come from "the GAE learner connector (`ConnectorV2`)"."""
    from ray.rllib.algorithms.appo import APPOConfig
    from ray.rllib.algorithms.impala import IMPALAConfig
    from ray.rllib.algorithms.sac import SACConfig
    from ray.rllib.connectors.learner import GeneralAdvantageEstimation
    from ray.rllib.utils.replay_buffers import EpisodeReplayBuffer, PrioritizedEpisodeReplayBuffer

    assert "gamma" in inspect.signature(AlgorithmConfig.training).parameters
    assert AlgorithmConfig().gamma == 0.99
    assert "lambda_" in inspect.signature(PPOConfig.training).parameters
    assert PPOConfig().training(gamma=0.9, lambda_=0.8).gamma == 0.9
    assert IMPALAConfig().vtrace and APPOConfig().vtrace
    assert issubclass(PrioritizedEpisodeReplayBuffer, EpisodeReplayBuffer)
    for config in (DQNConfig(), SACConfig()):
        assert config.replay_buffer_config["type"] in {
            "EpisodeReplayBuffer",
            "PrioritizedEpisodeReplayBuffer",
        }, config.replay_buffer_config
    assert issubclass(GeneralAdvantageEstimation, ConnectorV2)


# ---------------------------------------------------------------------------------------------
# 05 sample batches
# ---------------------------------------------------------------------------------------------


def test_lesson_05_sample_batch_still_exists():
    """Claims: "`SampleBatch` and `MultiAgentBatch` still exist in `ray.rllib.policy.sample_batch`
    ... with the same column names (`SampleBatch.TERMINATEDS`, `SampleBatch.TRUNCATEDS`)";
    "`discount_cumsum` still lives in `ray.rllib.evaluation.postprocessing`"."""
    from ray.rllib.evaluation.postprocessing import discount_cumsum
    from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch

    assert (SampleBatch.TERMINATEDS, SampleBatch.TRUNCATEDS) == ("terminateds", "truncateds")
    assert (SampleBatch.OBS, SampleBatch.NEXT_OBS) == ("obs", "new_obs")
    batch = SampleBatch({"obs": np.zeros(3), "rewards": np.ones(3)})
    assert MultiAgentBatch({"p": batch}, env_steps=3).agent_steps() == 3
    np.testing.assert_allclose(discount_cumsum(np.ones(3), 0.5), [1.75, 1.5, 1.0])


def test_lesson_05_env_runners_return_episodes(cartpole_runner):
    """Claims: "The new API stack (the default since Ray 2.40) records experience as episodes:
    `SingleAgentEpisode` and `MultiAgentEpisode` objects, which an `EnvRunner` returns from
    `sample()`. An episode keeps its observations (one more than its actions ...), its
    `is_terminated`/`is_truncated` flags, and it can be continued across `sample()` calls"."""
    from ray.rllib.env.multi_agent_episode import MultiAgentEpisode

    assert inspect.isclass(MultiAgentEpisode)
    config = AlgorithmConfig()
    assert config.enable_rl_module_and_learner and config.enable_env_runner_and_connector_v2

    first = sample_until(
        cartpole_runner, 100, lambda eps: any(not e.is_done for e in eps), "an unfinished episode"
    )
    assert all(isinstance(e, SingleAgentEpisode) for e in first)
    for episode in first:
        assert len(episode.get_observations()) == len(episode.get_actions()) + 1
        assert isinstance(episode.is_terminated, (bool, np.bool_))
        assert isinstance(episode.is_truncated, (bool, np.bool_))
    unfinished = {e.id_: e.t_started + len(e) for e in first if not e.is_done}
    second = cartpole_runner.sample(num_timesteps=100, random_actions=True)
    continued = [e for e in second if e.id_ in unfinished]
    assert continued and all(e.t_started == unfinished[e.id_] for e in continued)


def test_lesson_05_and_13_gae_is_a_learner_connector(cartpole_runner):
    """Claims: "the `Learner` turns episodes into a training batch through a learner `ConnectorV2`
    pipeline; for PPO, the GAE connector computes the value predictions with the `RLModule`,
    bootstraps truncated and unfinished episodes from the value of their last observation, and adds
    `advantages` and `value_targets`"; lesson 13: "GAE is a `ConnectorV2` piece of the learner
    pipeline (`GeneralAdvantageEstimation`)"."""
    from ray.rllib.connectors.learner import GeneralAdvantageEstimation

    config = cartpole_runner.config
    learner = config.build_learner(env=cartpole_runner.env)
    pieces = learner._learner_connector.connectors
    assert any(isinstance(piece, GeneralAdvantageEstimation) for piece in pieces)

    module = learner.module["default_policy"]
    episodes = sample_until(
        cartpole_runner,
        100,
        lambda eps: any(e.is_terminated for e in eps) and any(not e.is_done for e in eps),
        "a terminated and an unfinished episode",
    )
    expected = []  # the last step's value target: r, plus gamma * V(last obs) unless terminated
    for episode in episodes:
        observations = torch.as_tensor(np.array(episode.get_observations()), dtype=torch.float32)
        with torch.no_grad():
            last_value = module.compute_values({"obs": observations})[-1].item()
        bootstrap = 0.0 if episode.is_terminated else config.gamma * last_value
        expected.append((len(episode), episode.get_rewards()[-1] + bootstrap))

    batch = learner._learner_connector(
        rl_module=learner.module,
        batch={},
        episodes=episodes,
        shared_data={},
        metrics=learner.metrics,
    )["default_policy"]
    assert {"advantages", "value_targets"} <= set(batch)
    # The connector appends one artificial step per episode for the bootstrap value and masks
    # it out of the loss; the real steps keep the episodes' order.
    targets = batch["value_targets"][batch["loss_mask"]].numpy()
    end = 0
    for length, target in expected:
        end += length
        assert targets[end - 1] == pytest.approx(target, abs=1e-5)


# ---------------------------------------------------------------------------------------------
# 06 models
# ---------------------------------------------------------------------------------------------


def test_lesson_06_rl_module_forward_methods(cartpole_runner):
    """Claims: "A `TorchRLModule` holds the networks and has three forward methods,
    `forward_inference` ..., `forward_exploration` ... and `forward_train` ..., each returning a
    dict with `"action_dist_inputs"`. The value function is the `ValueFunctionAPI`'s
    `compute_values(batch)`"."""
    from ray.rllib.core.rl_module.apis import ValueFunctionAPI
    from ray.rllib.core.rl_module.torch import TorchRLModule

    # The EnvRunner's copy is inference-only; the Learner's (built here) also trains.
    module = PPOConfig().get_rl_module_spec(env=gym.make("CartPole-v1")).build()
    assert isinstance(module, TorchRLModule) and isinstance(module, ValueFunctionAPI)
    assert isinstance(cartpole_runner.module, TorchRLModule)
    batch = {"obs": torch.zeros(3, 4)}
    with torch.no_grad():
        for forward in (module.forward_inference, module.forward_exploration):
            assert forward(batch)["action_dist_inputs"].shape == (3, 2)
        assert module.forward_train(batch)["action_dist_inputs"].shape == (3, 2)
        assert module.compute_values(batch).shape == (3,)


def test_lesson_06_custom_modules_and_model_config():
    """Claims: "Custom models become custom RLModules, passed as `AlgorithmConfig.rl_module(
    rl_module_spec=RLModuleSpec(module_class=..., model_config={...}))`"; "`MODEL_DEFAULTS` →
    `DefaultModelConfig`, a dataclass with the same core keys ..., set with
    `AlgorithmConfig.rl_module(model_config=DefaultModelConfig(...))`. Note that its
    `vf_share_layers` defaults to `True`"."""
    import dataclasses

    from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import (
        DefaultPPOTorchRLModule,
    )
    from ray.rllib.core.rl_module import RLModuleSpec
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    keys = {f.name for f in dataclasses.fields(DefaultModelConfig)}
    core = {"fcnet_hiddens", "fcnet_activation", "vf_share_layers", "use_lstm"}
    assert core | {"lstm_cell_size", "max_seq_len"} <= keys
    assert DefaultModelConfig().vf_share_layers is True

    model_config = DefaultModelConfig(fcnet_hiddens=[16], fcnet_activation="relu")
    config = PPOConfig().rl_module(model_config=model_config)
    assert config.model_config["fcnet_hiddens"] == [16]

    spec = RLModuleSpec(
        module_class=DefaultPPOTorchRLModule,
        observation_space=gym.spaces.Box(-1.0, 1.0, (4,), np.float32),
        action_space=gym.spaces.Discrete(2),
        model_config={"fcnet_hiddens": [8], "vf_share_layers": False},
    )
    config = PPOConfig().rl_module(rl_module_spec=spec)
    assert config.rl_module_spec.module_class is DefaultPPOTorchRLModule
    assert config.rl_module_spec.model_config == {"fcnet_hiddens": [8], "vf_share_layers": False}
    module = spec.build()
    linear_widths = {m.out_features for m in module.modules() if isinstance(m, torch.nn.Linear)}
    assert 8 in linear_widths and 256 not in linear_widths


def test_lesson_06_catalog_connectors_and_distributions():
    """Claims: "a `Catalog` (e.g. `PPOCatalog`) builds the encoder and heads of the default
    RLModules and picks their action distribution classes"; "`FlattenObservations` and
    `MeanStdFilter`, configured with `AlgorithmConfig.env_runners(env_to_module_connector=...)`";
    "Action distributions live in `ray.rllib.core.distribution.torch.torch_distribution`
    (`TorchCategorical`, `TorchDiagGaussian`, `TorchMultiCategorical`, ...) with the same
    `sample`/`logp`/`entropy`/`kl`; an RLModule chooses them with `get_inference_action_dist_cls`,
    `get_exploration_action_dist_cls` and `get_train_action_dist_cls`"."""
    import dataclasses

    from ray.rllib.algorithms.ppo.ppo_catalog import PPOCatalog
    from ray.rllib.connectors.env_to_module import FlattenObservations, MeanStdFilter
    from ray.rllib.core.distribution.torch.torch_distribution import (
        TorchCategorical,
        TorchDiagGaussian,
        TorchMultiCategorical,
    )
    from ray.rllib.core.models.catalog import Catalog
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    assert issubclass(PPOCatalog, Catalog)
    catalog = PPOCatalog(
        observation_space=gym.spaces.Box(-1.0, 1.0, (4,), np.float32),
        action_space=gym.spaces.Discrete(2),
        model_config_dict=dataclasses.asdict(DefaultModelConfig()),
    )
    encoder = catalog.build_actor_critic_encoder(framework="torch")
    pi_head, vf_head = catalog.build_pi_head(framework="torch"), catalog.build_vf_head("torch")
    assert all(isinstance(part, torch.nn.Module) for part in (encoder, pi_head, vf_head))
    assert catalog.get_action_dist_cls(framework="torch") is TorchCategorical

    assert isinstance(FlattenObservations(), ConnectorV2)
    assert isinstance(MeanStdFilter(), ConnectorV2)
    config = PPOConfig().environment("CartPole-v1")
    config.env_runners(env_to_module_connector=lambda env, spaces, device: MeanStdFilter())
    runner = SingleAgentEnvRunner(config=config)
    pieces = runner._env_to_module.connectors
    runner.stop()
    assert any(isinstance(piece, MeanStdFilter) for piece in pieces)

    logits = torch.tensor([[0.0, 1.0], [2.0, 0.0]])
    dist = TorchCategorical.from_logits(logits)
    other = TorchCategorical.from_logits(torch.zeros(2, 2))
    actions = dist.sample()
    assert dist.logp(actions).shape == dist.entropy().shape == dist.kl(other).shape == (2,)
    assert inspect.isclass(TorchDiagGaussian) and inspect.isclass(TorchMultiCategorical)
    for name in ("inference", "exploration", "train"):
        assert callable(getattr(RLModule, f"get_{name}_action_dist_cls"))


def test_lesson_06_use_lstm():
    """Claims: "`use_lstm` is `DefaultModelConfig(use_lstm=True)`: the default encoder becomes an
    LSTM, and a connector (`AddTimeDimToBatchAndZeroPad`) cuts and zero-pads the training batch into
    sequences"."""
    from ray.rllib.connectors.common import AddTimeDimToBatchAndZeroPad
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    env = gym.make("CartPole-v1")
    config = PPOConfig().rl_module(model_config=DefaultModelConfig(use_lstm=True, max_seq_len=5))
    module = config.get_rl_module_spec(env=env).build()
    assert module.is_stateful()
    assert any(isinstance(m, torch.nn.LSTM) for m in module.modules())
    pipeline = config.build_learner_connector(env.observation_space, env.action_space)
    assert any(isinstance(piece, AddTimeDimToBatchAndZeroPad) for piece in pipeline.connectors)


# ---------------------------------------------------------------------------------------------
# 07 policies
# ---------------------------------------------------------------------------------------------


def test_lesson_07_loss_lives_in_a_learner():
    """Claims: "a `Learner` holds the loss (`compute_loss_for_module`) and the optimizer
    (`configure_optimizers_for_module`)"; "You subclass a Learner (say, `PPOTorchLearner`) and
    override `compute_loss_for_module`, then pass it with
    `AlgorithmConfig.learners(learner_class=...)`. Ray's examples include a vanilla policy gradient
    learner built this way"."""
    from ray.rllib.core.learner.torch.torch_learner import TorchLearner
    from ray.rllib.examples.learners.classes.vpg_torch_learner import VPGTorchLearner

    for method in ("compute_loss_for_module", "configure_optimizers_for_module"):
        assert callable(getattr(Learner, method))
    assert issubclass(PPOTorchLearner, Learner)

    class MyLearner(PPOTorchLearner):
        def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
            return super().compute_loss_for_module(
                module_id=module_id, config=config, batch=batch, fwd_out=fwd_out
            )

    assert PPOConfig().learners(learner_class=MyLearner).learner_class is MyLearner
    assert issubclass(VPGTorchLearner, TorchLearner)
    assert "compute_loss_for_module" in vars(VPGTorchLearner)


def test_lesson_07_env_runner_acts_with_the_module(cartpole_runner, monkeypatch):
    """Claims: "Acting happens in the `EnvRunner` ..., which calls the RLModule's
    `forward_exploration` or `forward_inference`"."""
    calls = []
    module = cartpole_runner.module
    for name in ("forward_exploration", "forward_inference"):
        method = getattr(module, name)

        def spy(batch, _method=method, _name=name, **kwargs):
            calls.append(_name)
            return _method(batch, **kwargs)

        monkeypatch.setattr(module, name, spy)
    cartpole_runner.sample(num_timesteps=10, explore=True)
    assert set(calls) == {"forward_exploration"}
    calls.clear()
    cartpole_runner.sample(num_timesteps=10, explore=False)
    assert set(calls) == {"forward_inference"}


def test_lesson_07_state_of_every_component(cartpole_runner):
    """Claims: "every component has `get_state`/`set_state`; ... checkpoints include the optimizer
    state"."""
    from ray.rllib.core import COMPONENT_OPTIMIZER
    from ray.rllib.utils.checkpoints import Checkpointable

    components = (Algorithm, SingleAgentEnvRunner, MultiAgentEnvRunner, Learner, RLModule)
    for component in (*components, ConnectorV2):
        assert issubclass(component, Checkpointable), component
    learner = cartpole_runner.config.build_learner(env=cartpole_runner.env)
    state = learner.get_state()
    assert state[COMPONENT_OPTIMIZER], "the Learner's state carries its optimizer's state"
    learner.set_state(state)


# ---------------------------------------------------------------------------------------------
# 08 rollout workers
# ---------------------------------------------------------------------------------------------


def test_lesson_08_env_runner_group_and_its_config():
    """Claims: "the rollout worker is an `EnvRunner` (`SingleAgentEnvRunner`, stepping a gymnasium
    vector env, or `MultiAgentEnvRunner`, RLlib's `VectorMultiAgentEnv`), the `WorkerSet` is an
    `EnvRunnerGroup`, configured with
    `AlgorithmConfig.env_runners(num_env_runners=..., num_envs_per_env_runner=...,
    rollout_fragment_length=..., batch_mode=...)`"; "`MeanStdFilter` is a connector"."""
    from ray.rllib.connectors.env_to_module import MeanStdFilter
    from ray.rllib.env.env_runner_group import EnvRunnerGroup
    from ray.rllib.env.vector.vector_multi_agent_env import VectorMultiAgentEnv

    assert inspect.isclass(EnvRunnerGroup) and inspect.isclass(VectorMultiAgentEnv)
    # Lesson 03's test checks the single-agent runner's gymnasium vector env, lesson 20's the
    # multi-agent runner's VectorMultiAgentEnv.
    config = AlgorithmConfig().env_runners(
        num_env_runners=2,
        num_envs_per_env_runner=8,
        rollout_fragment_length=50,
        batch_mode="complete_episodes",
    )
    assert (config.num_envs_per_env_runner, config.batch_mode) == (8, "complete_episodes")
    fault_tolerance = inspect.signature(AlgorithmConfig.fault_tolerance).parameters
    assert "restart_failed_env_runners" in fault_tolerance
    assert issubclass(MeanStdFilter, ConnectorV2)


# ---------------------------------------------------------------------------------------------
# 09 exploration
# ---------------------------------------------------------------------------------------------


def test_lesson_09_old_stack_exploration_classes():
    """Claims: "In the old API stack ... RLlib still has exactly these classes in
    `ray.rllib.utils.exploration` and the `"exploration_config"` key"."""
    from ray.rllib.utils import exploration

    for name in (
        "Exploration",
        "EpsilonGreedy",
        "PerWorkerEpsilonGreedy",
        "SoftQ",
        "StochasticSampling",
        "Random",
        "GaussianNoise",
        "OrnsteinUhlenbeckNoise",
    ):
        assert inspect.isclass(getattr(exploration, name)), name
    assert "exploration_config" in inspect.signature(AlgorithmConfig.env_runners).parameters


def test_lesson_09_module_to_env_connector_samples_the_action(cartpole_runner):
    """Claims: "The new API stack has no `Exploration` objects. An `RLModule` has two forward
    passes, `forward_exploration` ... and `forward_inference` .... Each returns action-distribution
    inputs; the module-to-env connector pipeline (`ConnectorV2`) then samples from the distribution,
    or takes the deterministic action, and adds `action_logp`"."""
    from ray.rllib.connectors.module_to_env import GetActions
    from ray.rllib.utils.exploration import Exploration

    module = cartpole_runner.module
    assert not any(isinstance(v, Exploration) for v in vars(module).values())
    pieces = cartpole_runner._module_to_env.connectors
    assert any(isinstance(piece, GetActions) for piece in pieces)

    logits = torch.tensor([[0.0, 3.0], [3.0, 0.0]])
    for explore in (True, False):
        batch = GetActions()(
            rl_module=module,
            batch={"action_dist_inputs": logits},
            episodes=[SingleAgentEpisode()],
            explore=explore,
        )
        assert batch["action_logp"].shape == (2,)
    assert batch["actions"].tolist() == [1, 0], "explore=False takes the most likely action"


def test_lesson_09_dqn_epsilon_lives_in_its_module():
    """Claims: "Epsilon-greedy for DQN lives in the DQN `RLModule`
    (`DQNConfig.training(epsilon=...)`), annealed with a schedule keyed on the global timestep;
    custom exploration is a custom `RLModule._forward_exploration` or a connector piece. `"explore":
    False` in an evaluation config still switches exploration off"."""
    config = DQNConfig().training(epsilon=[(0, 1.0), (1000, 0.0)])
    module = config.get_rl_module_spec(env=gym.make("CartPole-v1")).build()
    batch = {"obs": torch.zeros(400, 4)}  # one state: a greedy policy picks one action for all
    with torch.no_grad():
        at_start = module.forward_exploration(batch, t=0)["actions"]
        annealed = module.forward_exploration(batch, t=1000)["actions"]
    assert 100 < int(at_start.sum()) < 300, "epsilon 1 at t=0: uniform random actions"
    assert len(set(annealed.tolist())) == 1, "epsilon 0 at t=1000: the greedy action only"
    assert callable(RLModule._forward_exploration)

    evaluation = AlgorithmConfig().evaluation(evaluation_config={"explore": False})
    assert evaluation.get_evaluation_config_object().explore is False
    assert AlgorithmConfig().explore is True


# ---------------------------------------------------------------------------------------------
# 10 callbacks
# ---------------------------------------------------------------------------------------------


class PoleAngleCallback(RLlibCallback):
    """Lesson 10's pole-angle metric on the new API stack."""

    def on_episode_step(self, *, episode, **kwargs):
        angle = abs(float(episode.get_observations(-1)[2]))
        episode.custom_data.setdefault("angles", []).append(angle)

    def on_episode_end(self, *, episode, metrics_logger, **kwargs):
        angles = episode.custom_data.get("angles", [0.0])
        metrics_logger.log_value("pole_angle", float(np.mean(angles)), reduce="mean")


class HookRecorder(RLlibCallback):
    """Records which hooks RLlib calls: the old-stack ones should never fire here."""

    calls: list[str] = []

    def on_postprocess_trajectory(self, **kwargs):
        self.calls.append("on_postprocess_trajectory")

    def on_learn_on_batch(self, **kwargs):
        self.calls.append("on_learn_on_batch")

    def on_sample_end(self, *, env_runner, metrics_logger, samples, **kwargs):
        self.calls.append("on_sample_end")

    def on_train_result(self, *, algorithm, metrics_logger, result, **kwargs):
        self.calls.append("on_train_result")


def test_lesson_10_callbacks_of_today():
    """Claims: "`DefaultCallbacks` was renamed `RLlibCallback` (`ray.rllib.callbacks.callbacks`);
    you set it with `AlgorithmConfig.callbacks(MyCallbacks)`, or a list of classes"; the episode
    hooks "(`on_episode_start/step/end`, plus `on_episode_created`) run in the `EnvRunner` and
    receive a `SingleAgentEpisode`/`MultiAgentEpisode` and a `metrics_logger`"; "`user_data` became
    `episode.custom_data`, and `episode.get_observations(-1)` replaces `last_observation_for()`";
    "`on_sample_end` and `on_train_result` still exist, with `on_algorithm_init`,
    `on_evaluate_start/end` and `on_checkpoint_loaded` alongside"."""
    from ray.rllib.algorithms.callbacks import DefaultCallbacks
    from ray.rllib.utils.metrics.metrics_logger import MetricsLogger

    assert DefaultCallbacks is RLlibCallback
    assert AlgorithmConfig().callbacks(PoleAngleCallback).callbacks_class is PoleAngleCallback
    both = [PoleAngleCallback, HookRecorder]
    assert AlgorithmConfig().callbacks(both).callbacks_class == both
    for hook in ("on_episode_created", "on_episode_start", "on_episode_step", "on_episode_end"):
        parameters = inspect.signature(getattr(RLlibCallback, hook)).parameters
        assert {"episode", "env_runner", "metrics_logger"} <= set(parameters), hook
    for hook in ("on_algorithm_init", "on_evaluate_start", "on_evaluate_end",
                 "on_checkpoint_loaded", "on_sample_end", "on_train_result"):  # fmt: skip
        assert callable(getattr(RLlibCallback, hook)), hook
    metrics_logger = MetricsLogger()
    for angle in (0.1, 0.3):
        metrics_logger.log_value("pole_angle", angle, reduce="mean")
    assert metrics_logger.peek("pole_angle") == pytest.approx(0.2)
    episode = SingleAgentEpisode(observations=[np.zeros(4)])
    episode.custom_data["angles"] = [0.1]
    assert episode.get_observations(-1).shape == (4,)


# ---------------------------------------------------------------------------------------------
# 11 execution plans
# ---------------------------------------------------------------------------------------------


class MyA2C(Algorithm):
    """Lesson 11's `MyA2C.training_step`, as the section prints it."""

    def training_step(self):
        # ParallelRollouts + ConcatBatches: sample on the EnvRunners until the batch is full.
        episodes, env_runner_results = synchronous_parallel_sample(
            worker_set=self.env_runner_group,
            max_env_steps=self.config.total_train_batch_size,
            _uses_new_env_runners=True,
            _return_metrics=True,
        )
        self.metrics.aggregate(env_runner_results, key=ENV_RUNNER_RESULTS)
        # TrainOneStep: the LearnerGroup runs the RLModule's loss
        # (num_epochs/minibatch_size for PPO).
        learner_results = self.learner_group.update(
            episodes=episodes,
            timesteps={
                NUM_ENV_STEPS_SAMPLED_LIFETIME: self.metrics.peek(
                    (ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME)
                )
            },
        )
        self.metrics.aggregate(learner_results, key=LEARNER_RESULTS)
        # ...and the weights go back to the EnvRunners.
        self.env_runner_group.sync_weights(from_worker_or_learner_group=self.learner_group)


def test_lesson_11_training_step_replaces_the_plan():
    """Claims: "Today an `Algorithm` ... implements `training_step()`" (compare "RLlib's
    `PPO.training_step` in `ray/rllib/algorithms/ppo/ppo.py`"); "`StandardMetricsReporting` ...
    became the algorithm's `MetricsLogger` (`self.metrics.log_value`, `log_time`, `aggregate`);
    `min_iter_time_s` and `timesteps_per_iteration` survive as `min_time_s_per_iteration` and
    `min_sample_timesteps_per_iteration`"; "Replay is a buffer object the `training_step` of DQN or
    SAC adds episodes to and samples from; asynchronous algorithms (APPO, IMPALA) call
    `env_runner_group.foreach_env_runner_async_fetch_ready`, which sends new sample requests and
    returns the results that are ready"; "A2C and A3C themselves are no longer part of RLlib"; "a
    `LearnerGroup` can train on several GPUs"."""
    from ray.rllib.algorithms.appo import APPO
    from ray.rllib.algorithms.dqn import DQN
    from ray.rllib.algorithms.impala import IMPALA
    from ray.rllib.algorithms.sac import SAC
    from ray.rllib.core.learner.learner_group import LearnerGroup
    from ray.rllib.env.env_runner_group import EnvRunnerGroup
    from ray.rllib.utils.metrics.metrics_logger import MetricsLogger

    assert not hasattr(Algorithm, "execution_plan")
    assert "training_step" in vars(PPO)
    assert inspect.getsourcefile(PPO.training_step).endswith(os.path.join("ppo", "ppo.py"))
    for method in ("log_value", "log_time", "aggregate", "peek"):
        assert callable(getattr(MetricsLogger, method)), method
    reporting = AlgorithmConfig().reporting(
        min_time_s_per_iteration=1, min_sample_timesteps_per_iteration=100
    )
    assert reporting.min_sample_timesteps_per_iteration == 100
    for method in ("foreach_env_runner_async_fetch_ready", "sync_weights"):
        assert callable(getattr(EnvRunnerGroup, method)), method
    assert "self._sample_and_get_connector_states()" in inspect.getsource(IMPALA.training_step)
    sampling = inspect.getsource(IMPALA._sample_and_get_connector_states)
    assert "env_runner_group.foreach_env_runner_async_fetch_ready(" in sampling
    assert issubclass(APPO, IMPALA) and "super().training_step()" in inspect.getsource(
        APPO.training_step
    )
    assert "self._training_step_new_api_stack()" in inspect.getsource(DQN.training_step)
    dqn_step = inspect.getsource(DQN._training_step_new_api_stack)
    assert "local_replay_buffer.add(" in dqn_step and "local_replay_buffer.sample(" in dqn_step
    assert issubclass(SAC, DQN) and "training_step" not in vars(SAC)
    for gone in ("a2c", "a3c"):
        assert importlib.util.find_spec(f"ray.rllib.algorithms.{gone}") is None
    assert callable(LearnerGroup.update)
    learners = AlgorithmConfig().learners(num_learners=2, num_gpus_per_learner=1)
    assert (learners.num_learners, learners.num_gpus_per_learner) == (2, 1)


@pytest.mark.slow
def test_lesson_11_my_a2c_training_step_runs(ray_session):
    """The section's `MyA2C.training_step` trains: one `train()` samples, updates the Learner
    (PPO's loss with one epoch over the whole batch: the ratio is 1, so the gradient is A2C's)
    and sends the new weights back to the EnvRunner."""
    config = (
        PPOConfig(algo_class=MyA2C)
        .environment("CartPole-v1")
        .env_runners(num_env_runners=0)
        .training(train_batch_size_per_learner=TINY_BATCH)
    )
    algo = config.build_algo()
    try:
        before = module_state(algo.env_runner.module)
        result = algo.train()
        after = module_state(algo.env_runner.module)
        learned = algo.learner_group.get_weights()["default_policy"]
    finally:
        stop(algo)
    assert result[ENV_RUNNER_RESULTS]["num_env_steps_sampled"] >= TINY_BATCH
    assert "default_policy" in result[LEARNER_RESULTS]
    assert not same_state(before, after), "the EnvRunner got the updated weights"
    # The EnvRunner's module is inference-only: it holds a subset of the Learner's weights.
    for name, weight in after.items():
        torch.testing.assert_close(weight, torch.as_tensor(learned[name]), rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------
# The shared PPO of lessons 10, 12, 13 and 14 (slow: needs Ray)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_ppo(ray_session):
    """Lesson 12's snippet with lesson 13's keywords, 12's evaluation and 10's callbacks, trained
    for one iteration. `num_env_runners=0` (the snippet has 1): sampling stays in this process,
    which saves starting an actor and lets the callbacks record into this process."""
    HookRecorder.calls.clear()
    with deprecations_fail():
        config = (
            PPOConfig()
            .environment("CartPole-v1")
            .env_runners(num_env_runners=0, num_envs_per_env_runner=2)
            .training(
                lr=1e-3,
                lambda_=0.95,
                train_batch_size_per_learner=TINY_BATCH,
                minibatch_size=TINY_BATCH // 2,
                num_epochs=1,
                clip_param=0.3,
                kl_coeff=0.2,
                kl_target=0.01,
            )
            .evaluation(
                evaluation_interval=1, evaluation_duration=3, evaluation_config={"explore": False}
            )
            .callbacks([PoleAngleCallback, HookRecorder])
        )
        algo = config.build_algo()
        result = algo.train()
    yield algo, result
    stop(algo)


@pytest.mark.slow
def test_lesson_10_callbacks_log_metrics_in_a_real_run(trained_ppo):
    """Claims: "Custom metrics are logged with `metrics_logger.log_value("pole_angle", value,
    reduce="mean")`"; "`on_postprocess_trajectory` and `on_learn_on_batch` belong to the old stack"
    (never called here); a list of callback classes runs them all."""
    _, result = trained_ppo
    assert 0.0 <= result[ENV_RUNNER_RESULTS]["pole_angle"] < 0.21
    assert "on_train_result" in HookRecorder.calls and "on_sample_end" in HookRecorder.calls
    assert "on_postprocess_trajectory" not in HookRecorder.calls
    assert "on_learn_on_batch" not in HookRecorder.calls


@pytest.mark.slow
def test_lesson_12_snippet_trains_saves_and_restores(trained_ppo, tmp_path):
    """`config.build_algo()`, `algo.train()` ("metrics under
    `result["env_runners"]["episode_return_mean"]`"), `algo.save_to_path()` ("a folder;
    `Algorithm.from_checkpoint(path)` rebuilds it"); "Evaluation is `.evaluation(...)`";
    "Checkpoints are folders of components (the algorithm, its EnvRunners, its Learners, each
    RLModule) with a pickled state file by default (`use_msgpack=True` writes msgpack instead,
    once the `msgpack_numpy` package is installed)"."""
    from ray.rllib.core import (
        COMPONENT_ENV_RUNNER,
        COMPONENT_LEARNER,
        COMPONENT_LEARNER_GROUP,
        COMPONENT_RL_MODULE,
        DEFAULT_MODULE_ID,
    )

    algo, result = trained_ppo
    assert result[ENV_RUNNER_RESULTS]["episode_return_mean"] > 0
    assert result["evaluation"][ENV_RUNNER_RESULTS]["episode_return_mean"] > 0

    path = algo.save_to_path(tmp_path / "pickle")
    module_dir = Path(
        path, COMPONENT_LEARNER_GROUP, COMPONENT_LEARNER, COMPONENT_RL_MODULE, DEFAULT_MODULE_ID
    )
    for folder in (Path(path), Path(path, COMPONENT_ENV_RUNNER), module_dir.parents[1]):
        assert any(folder.glob("*state.pkl")), folder
    assert any(module_dir.glob("*.pkl"))
    if importlib.util.find_spec("msgpack_numpy") is None:
        with pytest.raises(ImportError, match="msgpack_numpy"):
            algo.save_to_path(tmp_path / "msgpack", use_msgpack=True)
    else:
        packed = algo.save_to_path(tmp_path / "msgpack", use_msgpack=True)
        assert any(Path(packed).glob("*.msgpack")) and not any(Path(packed).glob("*state.pkl"))

    restored = Algorithm.from_checkpoint(path)
    try:
        assert type(restored) is PPO
        assert same_state(module_state(restored.get_module()), module_state(algo.get_module()))
    finally:
        stop(restored)


@pytest.mark.slow
def test_lesson_12_and_14_module_acts_without_the_algorithm(trained_ppo, tmp_path):
    """Claims: "today you get the module with `algo.get_module()` and call
    `forward_inference({"obs": batch})`, then pick the action from the returned distribution
    inputs"; lesson 14: "`RLModule`s can be loaded alone from a checkpoint's subfolder to act
    without an algorithm"."""
    from ray.rllib.core import (
        COMPONENT_LEARNER,
        COMPONENT_LEARNER_GROUP,
        COMPONENT_RL_MODULE,
        DEFAULT_MODULE_ID,
    )

    algo, _ = trained_ppo
    obs = torch.as_tensor(np.array([gym.make("CartPole-v1").reset(seed=s)[0] for s in range(4)]))
    with torch.no_grad():
        logits = algo.get_module().forward_inference({"obs": obs})["action_dist_inputs"]
    actions = logits.argmax(dim=-1)
    assert actions.shape == (4,)

    path = algo.save_to_path(tmp_path / "ckpt")
    module_dir = Path(
        path, COMPONENT_LEARNER_GROUP, COMPONENT_LEARNER, COMPONENT_RL_MODULE, DEFAULT_MODULE_ID
    )
    alone = RLModule.from_checkpoint(module_dir)
    with torch.no_grad():
        torch.testing.assert_close(
            alone.forward_inference({"obs": obs})["action_dist_inputs"], logits
        )


def test_lesson_12_config_typos_and_what_is_gone():
    """Claims: "A typo in a config method's keyword is a Python `TypeError`"; "`build_trainer`,
    `with_updates` and execution plans are gone"; "`compute_single_action` is deprecated with the
    old API stack"; "The `rllib` command line ... is no longer installed with Ray 2.60"."""
    with pytest.raises(TypeError, match="num_env_runner"):
        PPOConfig().env_runners(num_env_runner=1)
    with pytest.raises(TypeError, match="lrr"):
        PPOConfig().training(lrr=1e-3)
    evaluation = inspect.signature(AlgorithmConfig.evaluation).parameters
    assert {"evaluation_interval", "evaluation_duration", "evaluation_config"} <= set(evaluation)

    assert importlib.util.find_spec("ray.rllib.agents") is None  # build_trainer's old home
    for gone in ("with_updates", "execution_plan"):
        assert not hasattr(Algorithm, gone), gone
    with pytest.raises(AssertionError, match="compute_single_action"):
        Algorithm.compute_single_action(None)
    for name in ("get_module", "save_to_path", "from_checkpoint"):
        assert callable(getattr(Algorithm, name)), name

    scripts = {ep.name for ep in importlib.metadata.entry_points(group="console_scripts")}
    ray_scripts = {
        ep.name
        for ep in importlib.metadata.distribution("ray").entry_points
        if ep.group == "console_scripts"
    }
    assert "ray" in ray_scripts and "rllib" not in ray_scripts and "rllib" not in scripts
    assert shutil.which("rllib", path=str(Path(sys.executable).parent)) is None


# ---------------------------------------------------------------------------------------------
# 13 algorithms
# ---------------------------------------------------------------------------------------------


def test_lesson_13_config_classes_and_keywords():
    """Claims: "`PPOConfig().environment("CartPole-v1").env_runners(num_env_runners=0,
    num_envs_per_env_runner=8).training(lr=1e-3, lambda_=0.95, train_batch_size_per_learner=2000,
    minibatch_size=256, num_epochs=10, clip_param=0.3, kl_coeff=0.2, kl_target=0.01)`";
    "`sgd_minibatch_size` became `minibatch_size`, `num_sgd_iter` became `num_epochs`,
    `train_batch_size` became `train_batch_size_per_learner`"; "`DQNConfig().training(n_step=3,
    double_q=True, dueling=False, target_network_update_freq=256, training_intensity=32,
    replay_buffer_config={"type": "PrioritizedEpisodeReplayBuffer", ...})`; the episode replay
    buffer computes n-step returns when it samples"."""
    from ray.rllib.utils.replay_buffers import EpisodeReplayBuffer, PrioritizedEpisodeReplayBuffer

    config = (
        PPOConfig()
        .environment("CartPole-v1")
        .env_runners(num_env_runners=0, num_envs_per_env_runner=8)
        .training(
            lr=1e-3,
            lambda_=0.95,
            train_batch_size_per_learner=2000,
            minibatch_size=256,
            num_epochs=10,
            clip_param=0.3,
            kl_coeff=0.2,
            kl_target=0.01,
        )
    )
    assert (config.minibatch_size, config.num_epochs, config.lambda_) == (256, 10, 0.95)
    assert config.total_train_batch_size == 2000
    two_learners = PPOConfig().training(train_batch_size_per_learner=500).learners(num_learners=2)
    assert two_learners.total_train_batch_size == 1000, "counted per Learner"
    with pytest.raises(TypeError, match="sgd_minibatch_size"):
        PPOConfig().training(sgd_minibatch_size=128)
    with pytest.raises(AssertionError, match=re.escape("config.training(num_sgd_iter=..)")):
        PPOConfig().training(num_sgd_iter=10)

    dqn = DQNConfig().training(
        n_step=3,
        double_q=True,
        dueling=False,
        target_network_update_freq=256,
        training_intensity=32,
        replay_buffer_config={"type": "PrioritizedEpisodeReplayBuffer", "capacity": 1000},
    )
    assert (dqn.n_step, dqn.double_q, dqn.dueling, dqn.training_intensity) == (3, True, False, 32)
    assert issubclass(PrioritizedEpisodeReplayBuffer, EpisodeReplayBuffer)
    assert "n_step" in inspect.signature(EpisodeReplayBuffer.sample).parameters


def test_lesson_13_which_algorithms_ship_and_where_the_loss_lives():
    """Claims: "PG, A2C and A3C ... no longer ship with it; PPO, DQN, SAC, APPO, IMPALA and
    DreamerV3 still do"; "`PPOTorchLearner.compute_loss_for_module` holds the clipped surrogate, and
    the KL coefficient is updated in `PPOLearner.after_gradient_based_update`"; "the execution plan
    became `Algorithm.training_step()`: sample from the `EnvRunner`s, `learner_group.update(...,
    num_epochs=..., minibatch_size=...)`, sync the weights"."""
    from ray.rllib.algorithms.appo import APPOConfig
    from ray.rllib.algorithms.dreamerv3 import DreamerV3Config
    from ray.rllib.algorithms.impala import IMPALAConfig
    from ray.rllib.algorithms.ppo.ppo_learner import PPOLearner
    from ray.rllib.algorithms.sac import SACConfig

    for gone in ("pg", "a2c", "a3c"):
        assert importlib.util.find_spec(f"ray.rllib.algorithms.{gone}") is None, gone
    for config_class in (
        PPOConfig,
        DQNConfig,
        SACConfig,
        APPOConfig,
        IMPALAConfig,
        DreamerV3Config,
    ):
        assert issubclass(config_class, AlgorithmConfig)

    loss = inspect.getsource(PPOTorchLearner.compute_loss_for_module)
    assert "torch.clamp(" in loss and "clip_param" in loss and "torch.min(" in loss
    assert "after_gradient_based_update" in vars(PPOLearner)
    assert "_update_module_kl_coeff" in inspect.getsource(PPOLearner.after_gradient_based_update)

    step = inspect.getsource(PPO.training_step)
    for call in ("synchronous_parallel_sample(", "learner_group.update(", "sync_weights("):
        assert call in step, call
    assert "num_epochs=self.config.num_epochs" in step
    assert "minibatch_size=self.config.minibatch_size" in step


@pytest.mark.slow
def test_lesson_13_ppo_keywords_train(trained_ppo):
    """PPO with lesson 13's training keywords trains (the shared `trained_ppo` uses them)."""
    algo, result = trained_ppo
    assert (algo.config.clip_param, algo.config.kl_target) == (0.3, 0.01)
    learner_stats = result[LEARNER_RESULTS]["default_policy"]
    assert "policy_loss" in learner_stats and "curr_kl_coeff" in learner_stats


@pytest.mark.slow
def test_lesson_13_dqn_keywords_train(ray_session):
    """DQN with lesson 13's keywords and a prioritized episode replay buffer trains."""
    config = (
        DQNConfig()
        .environment("CartPole-v1")
        .env_runners(num_env_runners=0)
        .training(
            n_step=3,
            double_q=True,
            dueling=False,
            target_network_update_freq=256,
            training_intensity=32,
            replay_buffer_config={"type": "PrioritizedEpisodeReplayBuffer", "capacity": 2000},
            num_steps_sampled_before_learning_starts=64,
            train_batch_size_per_learner=32,
        )
        .reporting(min_sample_timesteps_per_iteration=TINY_BATCH)
    )
    algo = config.build_algo()
    try:
        result = algo.train()
    finally:
        stop(algo)
    assert result[ENV_RUNNER_RESULTS]["num_env_steps_sampled_lifetime"] >= TINY_BATCH
    assert "qf_loss" in result[LEARNER_RESULTS]["default_policy"]


# ---------------------------------------------------------------------------------------------
# 14 Tune
# ---------------------------------------------------------------------------------------------


def test_lesson_14_algorithm_is_a_trainable_asking_for_its_actors():
    """Claims: "`Algorithm` is still a `Trainable`; its resource request counts the `EnvRunner`s ...
    and the `Learner`s"; "`tune.run`, `checkpoint_freq`/`checkpoint_at_end` as keywords and
    `local_dir` are the old spelling; `RunConfig`/`CheckpointConfig` in `ray.tune` and
    `storage_path` are the current one"."""
    assert issubclass(Algorithm, tune.Trainable)

    def bundles(num_env_runners, num_learners):
        config = (
            PPOConfig()
            .env_runners(num_env_runners=num_env_runners)
            .learners(num_learners=num_learners)
        )
        return len(PPO.default_resource_request(config).bundles)

    assert bundles(2, 0) == bundles(0, 0) + 2
    assert bundles(0, 2) == bundles(0, 0) + 2

    assert "storage_path" in inspect.signature(tune.RunConfig).parameters
    checkpointing = inspect.signature(tune.CheckpointConfig).parameters
    assert {"checkpoint_frequency", "checkpoint_at_end"} <= set(checkpointing)
    with pytest.raises(DeprecationWarning, match="storage_path"):
        tune.RunConfig(local_dir="/tmp/old")


@pytest.mark.slow
def test_lesson_14_result_keys(trained_ppo):
    """Claims: "`episode_reward_mean` is `env_runners/episode_return_mean`, `timesteps_total` is
    `num_env_steps_sampled_lifetime`"."""
    _, result = trained_ppo
    assert "episode_reward_mean" not in result and "timesteps_total" not in result
    assert result[ENV_RUNNER_RESULTS]["episode_return_mean"] > 0
    assert result[NUM_ENV_STEPS_SAMPLED_LIFETIME] >= TINY_BATCH


def test_lesson_14_rllib_config_sent_to_course_lib_ppo_says_to_pass_rllib_class():
    """Claim: "in a kernel that imported `course_lib.agents` the name means course_lib's trainer
    (the last registration wins), so pass the class"."""
    from ray.tune.registry import get_trainable_cls

    import course_lib.agents  # noqa: F401  (registers course_lib's trainers with Tune)

    trainer_class = get_trainable_cls("PPO")
    assert trainer_class.__module__ == "course_lib.agents.ppo.ppo"
    rllib_config = PPOConfig().environment("CartPole-v1").to_dict()
    expected = r"This config is RLlib's .* pass its class: tune.Tuner\(PPO"
    with pytest.raises(ValueError, match=expected):
        trainer_class(config=rllib_config)


@pytest.mark.slow
def test_lesson_14_tuner_takes_the_config_object(ray_session, tmp_path):
    """Claims: "`tune.Tuner(PPO, param_space=PPOConfig().environment("CartPole-v1")
    .training(lr=tune.grid_search([1e-3, 1e-4])), run_config=tune.RunConfig(stop={...})).fit()`";
    "stop criteria and `get_best_result(metric=...)` use these names (nested keys joined with
    `/`)"."""
    param_space = (
        PPOConfig()
        .environment("CartPole-v1")
        .env_runners(num_env_runners=0)
        .training(
            lr=tune.grid_search([1e-3, 1e-4]),
            train_batch_size_per_learner=TINY_BATCH,
            minibatch_size=TINY_BATCH,
            num_epochs=1,
        )
    )
    tuner = tune.Tuner(
        PPO,  # the class: this process imported course_lib.agents, whose "PPO" Tune now finds
        param_space=param_space,
        run_config=tune.RunConfig(
            stop={NUM_ENV_STEPS_SAMPLED_LIFETIME: TINY_BATCH},
            storage_path=str(tmp_path),
            name="rllib_today",
            verbose=0,
        ),
    )
    results = tuner.fit()
    assert results.num_errors == 0 and len(results) == 2
    assert sorted(r.config["lr"] for r in results) == [1e-4, 1e-3]
    metric = f"{ENV_RUNNER_RESULTS}/episode_return_mean"
    best = results.get_best_result(metric=metric, mode="max")
    assert best.metrics[ENV_RUNNER_RESULTS]["episode_return_mean"] > 0
    assert best.metrics["training_iteration"] == 1


# ---------------------------------------------------------------------------------------------
# 15 scaling out
# ---------------------------------------------------------------------------------------------


def test_lesson_15_impala_and_appo_on_the_new_stack():
    """Claims: "IMPALA and APPO (IMPALA's asynchronous sampling with PPO's clipped loss;
    `APPOConfig` subclasses `IMPALAConfig`) ship in RLlib 2.60 on the new API stack. The sampling
    actors are `EnvRunner`s (`.env_runners(num_env_runners=...)`, 2 by default for IMPALA);
    learning happens in a `Learner` (`IMPALALearner`, one remote learner actor by default,
    `.learners(num_learners=...)`), which still learns in a thread of its own fed by a queue.
    Optional aggregator actors (`.learners(num_aggregator_actors_per_learner=...)`, 0 by default)
    turn the EnvRunners' episodes into train batches off the algorithm's process"."""
    import threading

    from ray.rllib.algorithms.appo import APPO, APPOConfig
    from ray.rllib.algorithms.appo.torch.appo_torch_learner import APPOTorchLearner
    from ray.rllib.algorithms.impala import IMPALA, IMPALAConfig, impala_learner
    from ray.rllib.algorithms.impala.impala_learner import IMPALALearner
    from ray.rllib.algorithms.utils import AggregatorActor

    config = IMPALAConfig()
    assert config.enable_rl_module_and_learner and config.enable_env_runner_and_connector_v2
    assert issubclass(APPOConfig, IMPALAConfig) and issubclass(APPO, IMPALA)
    appo_loss = inspect.getsource(APPOTorchLearner.compute_loss_for_module)
    assert "torch.clip(logp_ratio, 1 - config.clip_param, 1 + config.clip_param)" in appo_loss
    assert (config.num_env_runners, config.num_learners) == (2, 1)
    assert config.num_aggregator_actors_per_learner == 0
    assert "num_env_runners" in inspect.signature(AlgorithmConfig.env_runners).parameters
    learner_keywords = inspect.signature(AlgorithmConfig.learners).parameters
    assert {"num_learners", "num_aggregator_actors_per_learner"} <= set(learner_keywords)
    assert issubclass(config.get_default_learner_class(), IMPALALearner)
    assert issubclass(IMPALALearner, Learner)
    assert issubclass(impala_learner._LearnerThread, threading.Thread)
    assert "self._in_queue.get()" in inspect.getsource(impala_learner._LearnerThread.step)
    assert "self._learner_thread: threading.Thread = _LearnerThread(" in inspect.getsource(
        IMPALALearner.build
    )
    assert "LearnerConnector pipeline" in AggregatorActor.__doc__
    assert callable(AggregatorActor.get_batch)


def test_lesson_15_vtrace_of_today():
    """Claims: "V-trace is `vtrace_torch` in `ray.rllib.algorithms.impala.torch.vtrace_torch_v2`,
    with `vtrace_clip_rho_threshold` and `vtrace_clip_pg_rho_threshold` (1.0 by default); c̄ is
    fixed at 1.0 there, with no setting of its own"; and it computes the targets the lesson's
    `vtrace_from_importance_weights` computes with c̄ = 1."""
    from ray.rllib.algorithms.impala import IMPALAConfig
    from ray.rllib.algorithms.impala.torch.vtrace_torch_v2 import vtrace_torch

    from course_lib.agents.impala import vtrace_from_importance_weights

    config = IMPALAConfig()
    assert (config.vtrace_clip_rho_threshold, config.vtrace_clip_pg_rho_threshold) == (1.0, 1.0)
    keywords = inspect.signature(vtrace_torch).parameters
    assert {"clip_rho_threshold", "clip_pg_rho_threshold"} <= set(keywords)
    assert not any("clip_c" in name for name in keywords)
    assert "cs = torch.clamp(rhos, max=1.0)" in inspect.getsource(vtrace_torch)
    assert not any("clip_c" in name for name in inspect.signature(IMPALAConfig.training).parameters)

    rng = np.random.default_rng(15)
    target_logp, behaviour_logp = (torch.as_tensor(rng.normal(-0.7, 0.5, (6, 3))) for _ in "ab")
    discounts = torch.as_tensor(0.9 * (rng.random((6, 3)) > 0.2))
    rewards, values = (torch.as_tensor(rng.normal(size=(6, 3))) for _ in "ab")
    bootstrap = torch.as_tensor(rng.normal(size=3))
    for rho_bar in (1.0, 2.0):
        rllib_vs, rllib_advantages = vtrace_torch(
            target_action_log_probs=target_logp,
            behaviour_action_log_probs=behaviour_logp,
            discounts=discounts,
            rewards=rewards,
            values=values,
            bootstrap_values=bootstrap,
            clip_rho_threshold=rho_bar,
            clip_pg_rho_threshold=1.0,
        )
        course = vtrace_from_importance_weights(
            target_logp - behaviour_logp,
            discounts,
            rewards,
            values,
            bootstrap,
            clip_rho_threshold=rho_bar,
            clip_c_threshold=1.0,
        )
        np.testing.assert_allclose(course.vs.numpy(), rllib_vs.numpy(), atol=1e-5)
        np.testing.assert_allclose(
            course.pg_advantages.numpy(), rllib_advantages.numpy(), atol=1e-5
        )


def test_lesson_15_a3c_apex_and_es_are_gone():
    """Claims: "A3C, Ape-X DQN and ES (with its cousin ARS) are gone from RLlib" (the move to
    `rllib_contrib` around Ray 2.8 and its removal in 2024 are history); "Today's DQN keeps one
    replay buffer in the algorithm's process (`PrioritizedEpisodeReplayBuffer` by default) and
    explores with one epsilon schedule for every EnvRunner (`DQNConfig().training(epsilon=[(0,
    1.0), (10000, 0.05)])`)"."""
    from ray.rllib.algorithms import registry
    from ray.rllib.algorithms.dqn import DQN

    for gone in ("a3c", "a2c", "apex_dqn", "es", "ars"):
        assert importlib.util.find_spec(f"ray.rllib.algorithms.{gone}") is None, gone
    for name in ("A3C", "APEX", "ES", "ARS"):
        assert name not in registry.ALGORITHMS, name
    assert {"IMPALA", "APPO", "DQN"} <= set(registry.ALGORITHMS)
    assert importlib.util.find_spec("rllib_contrib") is None
    assert importlib.util.find_spec("ray.rllib_contrib") is None

    defaults = DQNConfig()
    assert defaults.replay_buffer_config["type"] == "PrioritizedEpisodeReplayBuffer"
    assert defaults.epsilon == [(0, 1.0), (10000, 0.05)]
    config = DQNConfig().training(epsilon=[(0, 1.0), (10000, 0.05)])
    assert config.epsilon == [(0, 1.0), (10000, 0.05)]
    training_step = inspect.getsource(DQN._training_step_new_api_stack)
    assert "self.local_replay_buffer.add(episodes)" in training_step
    assert "self.local_replay_buffer.sample(" in training_step


def test_lesson_15_fault_tolerance_and_placement_names():
    """Claims: "`recreate_failed_workers` is `restart_failed_env_runners`, set with
    `.fault_tolerance(...)` and on by default; the old name raises an error.
    `custom_resources_per_worker` is `.env_runners(custom_resources_per_env_runner=...)`";
    "`ray.cluster_utils.Cluster` is still Ray's tool for a multi-node cluster on one machine"."""
    from ray.cluster_utils import Cluster

    assert AlgorithmConfig().restart_failed_env_runners is True
    config = PPOConfig().fault_tolerance(restart_failed_env_runners=False)
    assert config.restart_failed_env_runners is False
    with pytest.raises(ValueError, match="restart_failed_env_runners"):
        PPOConfig().fault_tolerance(recreate_failed_workers=True)
    config = PPOConfig().env_runners(custom_resources_per_env_runner={"simulator": 1})
    assert config.custom_resources_per_env_runner == {"simulator": 1}
    for method in ("add_node", "remove_node", "wait_for_nodes", "shutdown"):
        assert callable(getattr(Cluster, method)), method
    assert {"initialize_head", "head_node_args"} <= set(inspect.signature(Cluster).parameters)


# ---------------------------------------------------------------------------------------------
# 16 continuous control
# ---------------------------------------------------------------------------------------------


def test_lesson_16_sac_config_defaults_and_names():
    """Claims: "SAC is `SACConfig` in `ray.rllib.algorithms.sac`, on the new API stack:
    `SACConfig().environment("Pendulum-v1").training(twin_q=True, tau=0.005,
    initial_alpha=1.0, target_entropy="auto", actor_lr=..., critic_lr=..., alpha_lr=...)`. Those are
    its defaults for `twin_q`, `tau`, `initial_alpha` and `target_entropy`; `"auto"` means −|A|";
    "`entropy_lr` is `alpha_lr` there, `learning_starts` is
    `num_steps_sampled_before_learning_starts` (1500 by default), and the default replay buffer is
    a `PrioritizedEpisodeReplayBuffer`"."""
    from ray.rllib.algorithms.sac import SACConfig
    from ray.rllib.algorithms.sac.sac_learner import SACLearner

    defaults = SACConfig()
    assert defaults.enable_rl_module_and_learner and defaults.enable_env_runner_and_connector_v2
    assert (defaults.twin_q, defaults.tau, defaults.initial_alpha) == (True, 0.005, 1.0)
    assert defaults.target_entropy == "auto"
    assert defaults.num_steps_sampled_before_learning_starts == 1500
    assert defaults.replay_buffer_config["type"] == "PrioritizedEpisodeReplayBuffer"

    config = (
        SACConfig()
        .environment("Pendulum-v1")
        .training(
            twin_q=True,
            tau=0.005,
            initial_alpha=1.0,
            target_entropy="auto",
            actor_lr=1e-3,
            critic_lr=1e-3,
            alpha_lr=1e-3,
        )
    )
    assert (config.actor_lr, config.critic_lr, config.alpha_lr) == (1e-3, 1e-3, 1e-3)
    keywords = inspect.signature(SACConfig.training).parameters
    assert {"alpha_lr", "num_steps_sampled_before_learning_starts"} <= set(keywords)
    assert not {"entropy_lr", "learning_starts"} & set(keywords)
    auto = inspect.getsource(SACLearner._get_target_entropy)
    assert 'target_entropy == "auto"' in auto
    assert "-np.prod(" in auto and "action_space.shape" in auto


def test_lesson_16_sac_loss_lives_in_the_learner():
    """Claims: "`SACTorchLearner.compute_loss_for_module` builds the same soft target,
    r + γⁿ(1 − terminated)(Q_targ(s′, a′) − α log π(a′|s′)), with the min over the twin target
    critics taken in the RLModule's `forward_target`; the critics regress onto it with a Huber loss
    rather than a squared error"."""
    from ray.rllib.algorithms.sac.torch.default_sac_torch_rl_module import (
        DefaultSACTorchRLModule,
    )
    from ray.rllib.algorithms.sac.torch.sac_torch_learner import SACTorchLearner

    assert "compute_loss_for_module" in vars(SACTorchLearner)
    dispatch = inspect.getsource(SACTorchLearner.compute_loss_for_module)
    assert "_compute_loss_for_module_continuous" in dispatch
    loss = inspect.getsource(SACTorchLearner._compute_loss_for_module_continuous)
    assert 'fwd_out["q_target_next"] - alpha.detach() * fwd_out["logp_next_resampled"]' in loss
    assert "(1.0 - batch[Columns.TERMINATEDS].float())" in loss
    assert 'config.gamma ** batch["n_step"]' in loss
    assert "HuberLoss" in loss and "MSELoss" not in loss and "** 2" not in loss
    target = inspect.getsource(DefaultSACTorchRLModule.forward_target)
    assert "if self.twin_q:" in target and "torch.min(" in target


def test_lesson_16_squashed_gaussian_and_its_deterministic_action():
    """Claims: "The actor's distribution is `TorchSquashedGaussian`
    (`ray.rllib.core.distribution.torch.torch_distribution`), which SAC's catalog picks for a Box
    action space; it squashes into [-1, 1] by default. Its `to_deterministic()` (used with
    `explore=False`) returns the Gaussian's mean **before** the tanh, where course_lib's
    `deterministic_sample()` squashes the mean"."""
    from ray.rllib.algorithms.sac import SACConfig
    from ray.rllib.connectors.module_to_env import GetActions
    from ray.rllib.core.distribution.torch.torch_distribution import TorchSquashedGaussian

    from course_lib.models import TorchSquashedGaussian as CourseSquashedGaussian

    module = SACConfig().get_rl_module_spec(env=gym.make("Pendulum-v1")).build()
    assert module.get_inference_action_dist_cls() is TorchSquashedGaussian
    assert module.get_exploration_action_dist_cls() is TorchSquashedGaussian

    wide = TorchSquashedGaussian.from_logits(torch.tensor([[3.0, 2.0]] * 1000))
    samples = wide.sample()
    assert samples.min() >= -1.0 and samples.max() <= 1.0, "squashed into [-1, 1] by default"
    mean_before_tanh = torch.tensor([[2.0, 0.0]])
    rllib_greedy = TorchSquashedGaussian.from_logits(mean_before_tanh).to_deterministic().sample()
    assert torch.allclose(rllib_greedy, torch.tensor([[2.0]])), "the raw mean, outside [-1, 1]"
    get_actions = inspect.getsource(GetActions._get_actions)
    assert "if not explore:" in get_actions and "action_dist.to_deterministic()" in get_actions
    course_greedy = CourseSquashedGaussian(mean_before_tanh).deterministic_sample()
    assert torch.allclose(course_greedy, torch.tanh(torch.tensor([[2.0]])))


def test_lesson_16_normalize_actions_connector():
    """Claims: "`normalize_actions=True` and `clip_actions=False` are still the defaults, set with
    `.environment(normalize_actions=..., clip_actions=...)`; the `NormalizeAndClipActions` piece of
    the module-to-env `ConnectorV2` pipeline does what `to_env_actions` does here, with the same
    formula (`ray.rllib.utils.spaces.space_utils.unsquash_action`), and sends a copy to the env as
    `actions_for_env` while the `actions` column keeps the module's own"."""
    from ray.rllib.algorithms.sac import SACConfig
    from ray.rllib.connectors.module_to_env import NormalizeAndClipActions
    from ray.rllib.core.columns import Columns
    from ray.rllib.utils.spaces.space_utils import unsquash_action as rllib_unsquash

    from course_lib.evaluation.env_actions import unsquash_action

    for defaults in (AlgorithmConfig(), SACConfig()):
        assert (defaults.normalize_actions, defaults.clip_actions) == (True, False)
    config = PPOConfig().environment(normalize_actions=False, clip_actions=True)
    assert (config.normalize_actions, config.clip_actions) == (False, True)

    assert issubclass(NormalizeAndClipActions, ConnectorV2)
    box = gym.spaces.Box(-2.0, 2.0, (5,), np.float32)
    actions = np.array([-1.0, -0.5, 0.0, 0.25, 1.7])
    assert np.allclose(rllib_unsquash(actions, box), [-2.0, -1.0, 0.0, 0.5, 2.0])
    assert np.allclose(rllib_unsquash(actions, box), unsquash_action(actions, box))

    assert Columns.ACTIONS_FOR_ENV == "actions_for_env"
    call = inspect.getsource(NormalizeAndClipActions.__call__)
    assert "batch[Columns.ACTIONS_FOR_ENV] = copy.deepcopy(batch[Columns.ACTIONS])" in call


def test_lesson_16_sac_explores_by_sampling_its_distribution():
    """Claim: "SAC needs no exploration object: its RLModule's `forward_exploration` returns the
    same distribution inputs as `forward_inference`, and the `GetActions` connector samples from
    them while exploring"."""
    from ray.rllib.algorithms.sac import SACConfig
    from ray.rllib.connectors.module_to_env import GetActions
    from ray.rllib.utils.exploration import Exploration

    module = SACConfig().get_rl_module_spec(env=gym.make("Pendulum-v1")).build()
    assert not any(isinstance(value, Exploration) for value in vars(module).values())
    batch = {"obs": torch.randn(64, 3)}
    with torch.no_grad():
        exploring = module.forward_exploration(batch)
        inference = module.forward_inference(batch)
    assert torch.equal(exploring["action_dist_inputs"], inference["action_dist_inputs"])

    inputs = {"action_dist_inputs": exploring["action_dist_inputs"]}
    sampled = [
        GetActions()(
            rl_module=module,
            batch=dict(inputs),
            episodes=[SingleAgentEpisode()],
            explore=True,
        )["actions"]
        for _ in range(2)
    ]
    assert sampled[0].shape == (64, 1) and not torch.equal(sampled[0], sampled[1])


def test_lesson_16_which_continuous_control_algorithms_ship():
    """Claims: "DDPG and TD3 are no longer part of RLlib"; "`TQCConfig` (truncated quantile
    critics) and, for offline data, `CQLConfig` both subclass `SACConfig`"."""
    from ray.rllib.algorithms.cql import CQL, CQLConfig
    from ray.rllib.algorithms.sac import SACConfig
    from ray.rllib.algorithms.tqc import TQCConfig

    for gone in ("ddpg", "td3", "apex_ddpg"):
        assert importlib.util.find_spec(f"ray.rllib.algorithms.{gone}") is None, gone
    assert issubclass(TQCConfig, SACConfig) and issubclass(CQLConfig, SACConfig)
    assert "self.offline_data.sample(" in inspect.getsource(CQL.training_step)


# ---------------------------------------------------------------------------------------------
# 17 offline RL
# ---------------------------------------------------------------------------------------------


def test_lesson_17_offline_data_is_read_and_written_through_ray_data():
    """Claims: "Offline data is configured with `AlgorithmConfig.offline_data(input_=...,
    output=...)` and read through **Ray Data**: `OfflineData` calls `ray.data.<input_read_method>`
    on `input_`, by default `"read_parquet"`"; "`input_read_episodes=True` reads whole
    `SingleAgentEpisode`s; `input_read_sample_batches=True` reads old-stack `SampleBatch` files such
    as the 2021 JSON format"; "with `output` set, RLlib's `EnvRunnerGroup` uses an
    `OfflineSingleAgentEnvRunner`, which writes with `output_write_method` (default
    `"write_parquet"`), as whole episodes by default (`output_write_episodes=True`); multi-agent
    recording is not supported yet"."""
    from ray.rllib.env.env_runner_group import EnvRunnerGroup
    from ray.rllib.offline.offline_data import OfflineData
    from ray.rllib.offline.offline_env_runner import OfflineSingleAgentEnvRunner

    keywords = inspect.signature(AlgorithmConfig.offline_data).parameters
    for keyword in (
        "input_",
        "output",
        "input_read_method",
        "input_read_episodes",
        "input_read_sample_batches",
        "output_write_method",
        "output_write_episodes",
    ):
        assert keyword in keywords, keyword
    config = AlgorithmConfig().offline_data(input_=["/tmp/cartpole-out"], output="/tmp/recorded")
    assert config.input_ == ["/tmp/cartpole-out"] and config.output == "/tmp/recorded"
    assert config.input_read_method == "read_parquet" and callable(ray.data.read_json)
    assert "getattr(ray.data, self.data_read_method)" in inspect.getsource(OfflineData.__init__)
    assert config.input_read_episodes is False and config.input_read_sample_batches is False
    doc = " ".join(inspect.getdoc(AlgorithmConfig.offline_data).split())
    assert "stored in RLlib's old stack `SampleBatch` type" in doc
    assert "older data recorded with RLlib in JSON line format" in doc
    assert "`ray.rllib.env.SingleAgentEpisode`" in doc
    assert config.output_write_method == "write_parquet" and config.output_write_episodes is True
    assert issubclass(OfflineSingleAgentEnvRunner, SingleAgentEnvRunner)
    source = inspect.getsource(EnvRunnerGroup)
    assert (
        "self.env_runner_cls = OfflineSingleAgentEnvRunner" in source
        and "if config.output:" in source
    )
    assert "Multi-agent recording is not supported, yet." in source


def test_lesson_17_marwil_bc_and_the_other_offline_algorithms():
    """Claims: "`MARWILConfig().training(beta=1.0, vf_coeff=1.0,
    moving_average_sqd_adv_norm_start=100.0, moving_average_sqd_adv_norm_update_rate=1e-8)` has
    the defaults used here, and `BCConfig` subclasses it with `beta=0.0` (validation refuses
    another beta). The loss lives in `MARWILTorchLearner.compute_loss_for_module`. Offline RL also
    has `CQLConfig` (conservative Q-learning, built on `SACConfig`) and `IQLConfig` (implicit
    Q-learning)"."""
    from ray.rllib.algorithms.bc import BCConfig
    from ray.rllib.algorithms.cql import CQLConfig
    from ray.rllib.algorithms.iql import IQLConfig
    from ray.rllib.algorithms.marwil import MARWILConfig
    from ray.rllib.algorithms.marwil.torch.marwil_torch_learner import MARWILTorchLearner
    from ray.rllib.algorithms.sac import SACConfig

    from course_lib.agents.marwil import DEFAULT_CONFIG

    defaults = {
        "beta": 1.0,
        "vf_coeff": 1.0,
        "moving_average_sqd_adv_norm_start": 100.0,
        "moving_average_sqd_adv_norm_update_rate": 1e-8,
    }
    config = MARWILConfig()
    for key, value in defaults.items():
        assert getattr(config, key) == value == DEFAULT_CONFIG[key], key
    assert MARWILConfig().training(**defaults).beta == 1.0
    assert issubclass(BCConfig, MARWILConfig) and BCConfig().beta == 0.0
    assert "For behavioral cloning, `beta` parameter must be 0.0!" in inspect.getsource(
        BCConfig.validate
    )
    loss = inspect.getsource(MARWILTorchLearner.compute_loss_for_module)
    assert "torch.exp(" in loss and "config.beta" in loss and "moving_avg_sqd_adv_norms" in loss
    assert issubclass(CQLConfig, SACConfig)
    assert "implicit q-learning" in inspect.getsource(
        importlib.import_module("ray.rllib.algorithms.iql.iql")
    ).lower() and callable(IQLConfig)


def test_lesson_17_off_policy_evaluation_today():
    """Claims: "The 2021 key `input_evaluation` is deprecated"; "off-policy evaluation runs in
    `OfflinePolicyEvaluationRunner`s: `.evaluation(offline_evaluation_interval=1,
    offline_evaluation_type="is")`, where the type is `"eval_loss"` (the default), `"is"` or
    `"pdis"`"; "`"is"` weighs the undiscounted return by one product of probability ratios over
    the whole episode, and `"pdis"` weighs each reward by its own step's ratio only"; "The old
    estimators (`ImportanceSampling`, `WeightedImportanceSampling`, `DirectMethod`,
    `DoublyRobust` in `ray.rllib.offline.estimators`) remain; they take an old-stack `Policy` and
    are configured with `off_policy_estimation_methods`"."""
    from ray._common.deprecation import DEPRECATED_VALUE
    from ray.rllib.offline.estimators import (
        DirectMethod,
        DoublyRobust,
        ImportanceSampling,
        WeightedImportanceSampling,
    )
    from ray.rllib.offline.offline_policy_evaluation_runner import (
        OfflinePolicyEvaluationRunner,
        OfflinePolicyEvaluationTypes,
    )
    from ray.rllib.policy.policy import Policy

    assert AlgorithmConfig().input_evaluation == DEPRECATED_VALUE
    config = AlgorithmConfig().evaluation(
        offline_evaluation_interval=1, offline_evaluation_type="is"
    )
    assert config.offline_evaluation_interval == 1 and config.offline_evaluation_type == "is"
    assert AlgorithmConfig().offline_evaluation_type == "eval_loss"
    assert {t.value for t in OfflinePolicyEvaluationTypes} == {"eval_loss", "is", "pdis"}
    evaluate = inspect.getsource(OfflinePolicyEvaluationRunner._evaluate)
    assert "weight = torch.prod(" in evaluate and "episode[Columns.REWARDS].sum()" in evaluate
    assert "torch.dot(weights, episode[Columns.REWARDS])" in evaluate
    assert "cumprod" not in evaluate and "gamma" not in evaluate
    for estimator in (ImportanceSampling, WeightedImportanceSampling, DirectMethod, DoublyRobust):
        policy = inspect.signature(estimator.__init__).parameters["policy"]
        assert policy.annotation is Policy, estimator
    assert (
        "off_policy_estimation_methods" in inspect.signature(AlgorithmConfig.evaluation).parameters
    )


# ---------------------------------------------------------------------------------------------
# 18 serving
# ---------------------------------------------------------------------------------------------


def test_lesson_18_rllib_serves_rl_modules_with_serve():
    """Claims: RLlib's own example is "`ray/rllib/examples/ray_serve/ray_serve_with_rllib.py`
    (deployment in `classes/cartpole_deployment.py`)", "a `@serve.deployment` class whose
    `__call__` reads `{"observation": [...]}` and returns `{"action": ...}`, one request per
    forward pass" built with "`RLModule.from_checkpoint(path)`" and "`forward_inference`", whose
    output holds `Columns.ACTION_DIST_INPUTS`; "an RLlib module trained with env-to-module
    connectors (observation normalization, frame stacking)"; "the Serve side is the same API as
    here: `@serve.deployment`, `serve.run`, `@serve.batch`, `user_config`/`reconfigure`,
    `DeploymentHandle`; production adds `autoscaling_config` ... and `serve deploy`". (The module's
    subfolder, `learner_group/learner/rl_module/default_policy`, is proven by
    test_lesson_12_and_14_module_acts_without_the_algorithm.)"""
    from ray import serve
    from ray.rllib.connectors.env_to_module import MeanStdFilter
    from ray.rllib.connectors.env_to_module.frame_stacking import FrameStackingEnvToModule
    from ray.rllib.core import Columns
    from ray.serve.deployment import Deployment
    from ray.serve.handle import DeploymentHandle

    examples = Path(importlib.util.find_spec("ray.rllib.examples").origin).parent / "ray_serve"
    assert (examples / "ray_serve_with_rllib.py").is_file()
    from ray.rllib.examples.ray_serve.classes.cartpole_deployment import ServeRLlibRLModule

    assert isinstance(ServeRLlibRLModule, Deployment)
    source = inspect.getsource(ServeRLlibRLModule.func_or_class)
    assert "RLModule.from_checkpoint" in source and "forward_inference" in source
    assert '["observation"]' in source and '{"action": action}' in source
    assert "serve.batch" not in source, "the lesson says RLlib's example answers one by one"
    assert Columns.ACTION_DIST_INPUTS == "action_dist_inputs"
    assert callable(RLModule.forward_inference) and callable(RLModule.from_checkpoint)
    assert issubclass(MeanStdFilter, ConnectorV2) and callable(FrameStackingEnvToModule)
    for name in ("deployment", "run", "batch", "delete", "shutdown", "get_app_handle"):
        assert callable(getattr(serve, name)), name
    options = inspect.signature(Deployment.options).parameters
    for keyword in ("user_config", "autoscaling_config", "num_replicas", "max_ongoing_requests"):
        assert keyword in options, keyword
    assert DeploymentHandle.__module__.startswith("ray.serve")
    scripts = {ep.name for ep in importlib.metadata.distribution("ray").entry_points}
    assert "serve" in scripts, "the `serve deploy` command line"


# ---------------------------------------------------------------------------------------------
# 20 multi-agent
# ---------------------------------------------------------------------------------------------


def rock_paper_scissors_config():
    """Lesson 20's game on today's stack: a learned module against a heuristic one."""
    from ray.rllib.connectors.env_to_module import FlattenObservations
    from ray.rllib.core.rl_module import MultiRLModuleSpec, RLModuleSpec
    from ray.rllib.examples.envs.classes.multi_agent.rock_paper_scissors import RockPaperScissors
    from ray.rllib.examples.rl_modules.classes.rock_paper_scissors_heuristic_rlm import (
        AlwaysSameHeuristicRLM,
    )

    moves = gym.spaces.Discrete(3)
    return (
        PPOConfig()
        .environment(RockPaperScissors)
        .env_runners(
            # The learned module needs a float vector; the heuristic reads the raw move.
            env_to_module_connector=lambda env, spaces, device: FlattenObservations(
                multi_agent=True, agent_ids={"player1"}
            )
        )
        .multi_agent(
            policies={"learned", "always_same"},
            policy_mapping_fn=lambda agent_id, episode, **kw: (
                "learned" if agent_id == "player1" else "always_same"
            ),
            policies_to_train=["learned"],
        )
        .rl_module(
            rl_module_spec=MultiRLModuleSpec(
                rl_module_specs={
                    "learned": RLModuleSpec(),
                    "always_same": RLModuleSpec(
                        module_class=AlwaysSameHeuristicRLM,
                        observation_space=moves,
                        action_space=moves,
                    ),
                }
            )
        )
    )


def test_lesson_20_multi_agent_on_the_new_stack():
    """Claims: "`MultiAgentEnv` stays, with the same dicts and `"__all__"`; agent ids are listed in
    `possible_agents` and spaces per agent in `observation_spaces`/`action_spaces`"; "The multiagent
    block is `AlgorithmConfig.multi_agent(policies={...}, policy_mapping_fn=lambda agent_id,
    episode, **kw: ..., policies_to_train=["learned"])`"; "each policy is an `RLModule`, described
    by an `RLModuleSpec` per module id in a `MultiRLModuleSpec` ...; a heuristic is an `RLModule`
    without trainable weights. The `EnvRunner`s collect `MultiAgentEpisode`s and the `Learner`
    updates only the modules to train"; "`count_steps_by` is
    `config.multi_agent(count_steps_by="agent_steps")`"."""
    from ray.rllib.core.rl_module import MultiRLModule
    from ray.rllib.env.multi_agent_env import MultiAgentEnv
    from ray.rllib.env.multi_agent_episode import MultiAgentEpisode

    config = rock_paper_scissors_config()
    runner = MultiAgentEnvRunner(config=config)
    try:
        env = runner.env.envs[0].unwrapped
        assert isinstance(env, MultiAgentEnv)
        assert set(env.possible_agents) == set(env.observation_spaces) == set(env.action_spaces)
        _, _, terminateds, _, _ = env.step(dict.fromkeys(env.possible_agents, 0))
        assert "__all__" in terminateds

        from ray.rllib.env.vector.vector_multi_agent_env import VectorMultiAgentEnv

        assert isinstance(runner.env.unwrapped, VectorMultiAgentEnv)
        assert isinstance(runner.module, MultiRLModule)
        assert not isinstance(runner.module["always_same"], torch.nn.Module), "no weights"
        episodes = runner.sample(num_episodes=1)
        assert isinstance(episodes[0], MultiAgentEpisode)
        assert episodes[0].module_for("player1") == "learned"
        assert episodes[0].module_for("player2") == "always_same"
        learner = config.build_learner(spaces=runner.get_spaces())
    finally:
        runner.stop()
    assert learner.should_module_be_updated("learned")
    assert not learner.should_module_be_updated("always_same")
    assert AlgorithmConfig().multi_agent(count_steps_by="agent_steps").count_steps_by == (
        "agent_steps"
    )


# ---------------------------------------------------------------------------------------------
# 21 capstone
# ---------------------------------------------------------------------------------------------


def test_lesson_21_custom_multi_agent_algorithm_pieces():
    """Claims: "a custom algorithm subclasses `Algorithm` (or `PPO`) and overrides
    `training_step()`, which samples with `EnvRunner`s (`synchronous_parallel_sample(...,
    max_agent_steps=...)`), updates the `Learner`s and logs its metrics with `self.metrics`; configs
    are `PPOConfig().environment("TrafficGrid", env_config=...).training(lr=5e-4,
    vf_clip_param=1000.0, ...)`"; "`.multi_agent(policies={"row_0", "row_1"}, policy_mapping_fn=
    lambda agent_id, episode, **kw: ..., policies_to_train=[...], count_steps_by="agent_steps")`;
    each policy is an `RLModule` inside a `MultiRLModule`. Custom metrics go through
    `RLlibCallback.on_episode_end(..., metrics_logger=...)`"; "RLlib still ships
    `centralized_critic.py` among its old-stack examples (`ray/rllib/examples/_old_api_stack/`: the
    same postprocessing trick, with `other_agent_batches`)"; "the new stack has no
    `postprocess_trajectory`"."""
    from ray.rllib.core.rl_module import MultiRLModule
    from ray.rllib.policy.policy import Policy

    assert "max_agent_steps" in inspect.signature(synchronous_parallel_sample).parameters
    assert inspect.signature(PPO.training_step).return_annotation in (None, "None")
    assert issubclass(MultiRLModule, RLModule)
    config = (
        PPOConfig()
        .environment("TrafficGrid", env_config={"rows": 2})
        .training(lr=5e-4, vf_clip_param=1000.0)
        .multi_agent(
            policies={"row_0", "row_1"},
            policy_mapping_fn=lambda agent_id, episode, **kw: f"row_{agent_id[0]}",
            policies_to_train=["row_0", "row_1"],
            count_steps_by="agent_steps",
        )
    )
    assert (config.env, config.env_config) == ("TrafficGrid", {"rows": 2})
    assert config.is_multi_agent and set(config.policies) == {"row_0", "row_1"}
    assert "metrics_logger" in inspect.signature(RLlibCallback.on_episode_end).parameters
    assert callable(Policy.postprocess_trajectory), "the old stack's Policy still has it"
    example = importlib.util.find_spec("ray.rllib.examples._old_api_stack.centralized_critic")
    assert "other_agent_batches" in Path(example.origin).read_text(encoding="utf-8")
    for new_stack_class in (RLModule, Learner, ConnectorV2, SingleAgentEnvRunner):
        assert not hasattr(new_stack_class, "postprocess_trajectory"), new_stack_class
