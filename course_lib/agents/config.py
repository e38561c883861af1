"""``COMMON_CONFIG``, the settings every trainer reads, and the merge-and-check of a user's config.

Laid out in the 2021 RLlib tutorial's sections. Each algorithm adds its own keys on top
(``ppo.DEFAULT_CONFIG``); a user's config is merged over those defaults (``merge_config``) and
checked: an unknown key names the closest valid one, a value of the wrong type says which type
was expected, and ``framework: "tf"`` explains that the course is PyTorch-only.
Introduced in notebooks/12_trainers.ipynb.
"""

from __future__ import annotations

import copy
from typing import Any

from course_lib.callbacks import DefaultCallbacks
from course_lib.models.catalog import check_framework
from course_lib.validation import did_you_mean

COMMON_CONFIG: dict[str, Any] = {
    # === Settings for Rollout Worker processes ===
    # Rollout worker actors that sample in parallel; 0 samples in the trainer's own process.
    "num_workers": 2,
    # Envs stepped together in each worker: one batched forward pass for all of them.
    "num_envs_per_worker": 1,
    # True: those envs are one gymnasium vector env, sampled into column buffers (the fast
    # path, course_lib/evaluation/vector_sampler.py); feed-forward policies only.
    "vectorize_envs": False,
    # Steps per env in one worker.sample() call.
    "rollout_fragment_length": 200,
    # "truncate_episodes" cuts episodes at fragment ends (and bootstraps);
    # "complete_episodes" never cuts.
    "batch_mode": "truncate_episodes",
    # === Settings for the Trainer process ===
    "gamma": 0.99,
    "lr": 1e-4,
    # Env steps per training batch.
    "train_batch_size": 200,
    # The model of each policy (see MODEL_DEFAULTS, lesson 06).
    "model": {},
    # Clip the global gradient norm to this value (None: no clipping).
    "grad_clip": None,
    # === Debug Settings ===
    # Level of course_lib's log messages: "DEBUG", "INFO", "WARN" or "ERROR".
    "log_level": "WARN",
    # A DefaultCallbacks subclass (lesson 10).
    "callbacks": DefaultCallbacks,
    # === Deep Learning Framework Settings ===
    "framework": "torch",
    # === Exploration Settings ===
    # False: act greedily (the distribution's most likely action).
    "explore": True,
    "exploration_config": {"type": "StochasticSampling"},
    # === Evaluation Settings ===
    # Evaluate every this many train() calls (None: never).
    "evaluation_interval": None,
    "evaluation_num_episodes": 10,
    # Overrides for the evaluation workers. The default acts greedily, in the real env (also when
    # training reads recorded "input"), and records nothing.
    "evaluation_config": {"explore": False, "input": "sampler", "output": None},
    # Extra rollout workers for evaluation; 0 evaluates in the trainer's process.
    "evaluation_num_workers": 0,
    # === Advanced Rollout Settings ===
    # Box actions: the policy acts in [-1, 1] and the sampler maps its actions onto the env's
    # bounds before env.step (course_lib/evaluation/env_actions.py, lesson 16).
    "normalize_actions": True,
    # Clip the policy's actions into the env's Box bounds before env.step (when not normalizing).
    "clip_actions": False,
    # "NoFilter" or "MeanStdFilter" (running mean/std normalisation of Box observations).
    "observation_filter": "NoFilter",
    # One seed makes a run reproducible: torch, numpy, Python and every env are seeded from it.
    "seed": None,
    # The env: a registered name, a gymnasium id, or an env class (also Trainer(env=...)).
    "env": None,
    # Passed to the env creator as an EnvContext.
    "env_config": {},
    # Replace rollout workers whose process died, instead of failing.
    "recreate_failed_workers": False,
    # Episodes over which episode_reward_mean and friends are averaged.
    "metrics_smoothing_episodes": 100,
    # A train() call runs at least this long, and samples at least this many env steps.
    "min_iter_time_s": 0.0,
    "timesteps_per_iteration": 0,
    # Seconds to wait for workers' episode metrics.
    "collect_metrics_timeout": 180.0,
    # === Resource Settings ===
    "num_gpus": 0.0,
    "num_cpus_per_worker": 1.0,
    "num_gpus_per_worker": 0.0,
    # Other resources each rollout worker needs, such as {"simulator": 1} for a simulator licence
    # that only some nodes of a cluster have (ray start --resources='{"simulator": 4}', lesson 15).
    "custom_resources_per_worker": {},
    "num_cpus_for_driver": 1.0,
    # === Offline Datasets (lesson 17) ===
    # Where rollout workers get batches: "sampler" (their envs), a folder / file / glob / list of
    # JSON files written with "output", or a mix with weights, {"sampler": 0.5, "/data": 0.5}.
    "input": "sampler",
    # Estimate the new policy's return from recorded input: "is" (importance sampling), "wis"
    # (weighted). Needs the behaviour's "action_prob" column; skipped when "input" is "sampler".
    "input_evaluation": ["is", "wis"],
    # Run the policy's postprocessing (returns, advantages) on recorded batches, episode by
    # episode, as if they had just been sampled.
    "postprocess_inputs": False,
    # A folder to write every sampled batch to, one JSON line per batch (None: write nothing).
    "output": None,
    # Columns written as zlib-compressed base64 bytes instead of readable lists.
    "output_compress_columns": ["obs", "new_obs"],
    # Start a new output file once the current one is this many bytes.
    "output_max_file_size": 64 * 1024 * 1024,
    # === Settings for Multi-Agent Environments ===
    "multiagent": {
        # {policy_id: (policy_cls or None, obs_space, act_space, config overrides)}
        "policies": {},
        # policy_mapping_fn(agent_id, episode, **kwargs) -> policy_id
        "policy_mapping_fn": None,
        # Policy ids to train; None trains all of them.
        "policies_to_train": None,
        # "env_steps" or "agent_steps": what train_batch_size counts.
        "count_steps_by": "env_steps",
    },
    # === Logger ===
    # Where a standalone trainer writes its results folder (default ~/ray_results); under Tune,
    # Tune decides.
    "logger_config": {"logdir": None},
}

# Nested dicts whose keys are checked too (the model config is checked by the model catalog).
_NESTED = ("multiagent", "logger_config")
# Values that may be None or of a type other than the default's.
_ANY_TYPE = {
    "seed",
    "env",
    "grad_clip",
    "evaluation_interval",
    "callbacks",
    "exploration_config",
    "model",
    "evaluation_config",
    "input",
}


def merge_dicts(base: dict, overrides: dict) -> dict:
    """A deep copy of ``base`` with ``overrides`` merged in, recursively for nested dicts.

    Introduced in notebooks/12_trainers.ipynb.
    """
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_dicts(merged[key], value)
        else:
            merged[key] = value
    return merged


def merge_exploration(default: dict, user: dict | None) -> dict:
    """The user's exploration_config over the default's, unless the user picks another ``type``.

    Introduced in notebooks/09_exploration.ipynb.
    """
    if not user:
        return dict(default)
    if "type" in user and user["type"] != default.get("type"):
        return dict(user)
    return {**default, **user}


def merge_config(base: dict, overrides: dict) -> dict:
    """A trainer config ``base`` with ``overrides`` merged in: ``merge_dicts``, plus one rule.

    ``exploration_config`` merges only within one exploration type (``merge_exploration``):
    ``{"epsilon_timesteps": 500}`` tunes the default EpsilonGreedy, while ``{"type": "SoftQ"}``
    replaces it, since EpsilonGreedy's settings mean nothing to SoftQ. Trainers use it for the
    user's config and for ``evaluation_config``. Introduced in notebooks/12_trainers.ipynb.
    """
    merged = merge_dicts(base, {k: v for k, v in overrides.items() if k != "exploration_config"})
    if "exploration_config" in overrides:
        merged["exploration_config"] = merge_exploration(
            base.get("exploration_config") or {}, overrides["exploration_config"]
        )
    return merged


# Keys of an RLlib AlgorithmConfig's dict that no course_lib config has: RLlib's config, sent by
# Tune to a course_lib trainer that took over its name (see validate_config).
_RLLIB_ONLY_KEYS = frozenset(
    {"enable_rl_module_and_learner", "extra_python_environs_for_driver", "num_env_runners"}
)


def _unknown_key_error(key: str, valid, where: str) -> ValueError:
    hint = did_you_mean(key, valid) or f" Valid keys: {', '.join(sorted(valid))}."
    return ValueError(f"Unknown config key {key!r}{where}.{hint}")


def _is_search_space(value) -> bool:
    return (
        isinstance(value, dict)
        and "grid_search" in value
        or type(value).__module__.startswith("ray.tune")
    )


def _check_type(key: str, value, default, where: str = "") -> None:
    if _is_search_space(value):
        raise TypeError(
            f"Config key {key!r}{where} holds a Tune search space ({value!r}). Search spaces "
            "only work inside tune.run(...) or Tuner(...), which pick one value per trial; a "
            "Trainer built directly needs a plain value."
        )
    if key in _ANY_TYPE or default is None:
        return
    expected = type(default)
    if isinstance(value, bool) != (expected is bool):
        ok = False
    elif expected is float:
        ok = isinstance(value, (int, float))
    else:
        ok = isinstance(value, expected)
    if not ok:
        raise TypeError(
            f"Config key {key!r}{where} expects a {expected.__name__} (default {default!r}), "
            f"got {value!r} of type {type(value).__name__}."
        )


def validate_config(config: dict, defaults: dict) -> None:
    """Check a user's config against ``defaults`` (COMMON_CONFIG plus the algorithm's keys).

    Introduced in notebooks/12_trainers.ipynb.
    """
    if not isinstance(config, dict):
        raise TypeError(
            "A trainer config is a dict such as {'env': 'CartPole-v1', 'lr': 1e-3}, "
            f"got {type(config).__name__}."
        )
    rllib_keys = sorted(_RLLIB_ONLY_KEYS & set(config))
    if rllib_keys:
        raise ValueError(
            f"This config is RLlib's (it has {', '.join(map(repr, rllib_keys))}), given to "
            "course_lib's trainer. Once course_lib.agents is imported, the Tune names 'PG', "
            "'A2C', 'PPO' and 'DQN' mean course_lib's trainers; to run RLlib's, pass its class: "
            "tune.Tuner(PPO, param_space=PPOConfig()...) with "
            "`from ray.rllib.algorithms.ppo import PPO, PPOConfig`."
        )
    for key, value in config.items():
        if key not in defaults:
            raise _unknown_key_error(key, defaults, "")
        _check_type(key, value, defaults[key])
        if key in _NESTED:
            if not isinstance(value, dict):
                raise TypeError(
                    f"Config key {key!r} expects a dict such as {defaults[key]!r}, got {value!r}."
                )
            for sub_key, sub_value in value.items():
                if sub_key not in defaults[key]:
                    raise _unknown_key_error(sub_key, defaults[key], f" in {key!r}")
                _check_type(sub_key, sub_value, defaults[key][sub_key], f" in {key!r}")
    for key in config.get("evaluation_config") or {}:
        if key not in defaults:
            raise _unknown_key_error(key, defaults, " in 'evaluation_config'")
    check_framework(config.get("framework", "torch"))
    for key in (
        "num_workers",
        "num_envs_per_worker",
        "rollout_fragment_length",
        "train_batch_size",
        "evaluation_num_episodes",
    ):
        if key in config and config[key] < (0 if key == "num_workers" else 1):
            minimum = 0 if key == "num_workers" else 1
            raise ValueError(f"Config key {key!r} must be >= {minimum}, got {config[key]!r}.")
