"""Trainers by name ("PG", "PPO", "DQN", "SAC", ...), for the CLI and ``tune.run("PPO", ...)``.

Introduced in notebooks/12_trainers.ipynb.
"""

from __future__ import annotations

import importlib

from course_lib.envs.registry import share_envs_with_tune
from course_lib.validation import did_you_mean

# name -> (module, class). Importing course_lib.agents imports all of them (to register them
# with Tune).
ALGORITHMS = {
    "PG": ("course_lib.agents.pg", "PGTrainer"),
    "A2C": ("course_lib.agents.a3c", "A2CTrainer"),
    "A3C": ("course_lib.agents.a3c.a3c", "A3CTrainer"),
    "IMPALA": ("course_lib.agents.impala.impala", "IMPALATrainer"),
    "PPO": ("course_lib.agents.ppo", "PPOTrainer"),
    "DQN": ("course_lib.agents.dqn", "DQNTrainer"),
    "APEX": ("course_lib.agents.dqn.apex", "ApexTrainer"),
    "DDPG": ("course_lib.agents.ddpg.ddpg", "DDPGTrainer"),
    "TD3": ("course_lib.agents.ddpg.td3", "TD3Trainer"),
    "SAC": ("course_lib.agents.sac", "SACTrainer"),
    "MARWIL": ("course_lib.agents.marwil.marwil", "MARWILTrainer"),
    "BC": ("course_lib.agents.marwil.bc", "BCTrainer"),
    "ES": ("course_lib.agents.es", "ESTrainer"),
}


def get_trainer_class(name: str) -> type:
    """The trainer class registered under ``name`` (case-sensitive, as in RLlib)."""
    if name not in ALGORITHMS:
        # The names are upper case: compare in upper case, so that "dqm" still finds "DQN".
        hint = did_you_mean(str(name).upper(), ALGORITHMS)
        raise ValueError(f"Unknown algorithm {name!r}.{hint} Available: {', '.join(ALGORITHMS)}.")
    module, class_name = ALGORITHMS[name]
    return getattr(importlib.import_module(module), class_name)


def register_with_tune() -> None:
    """Register every trainer (and every env registered so far) with Ray Tune, so
    ``tune.run("PPO", ...)`` finds them, now and after every later ``ray.init()``.

    Tune keeps its registry inside the running Ray instance, so ``ray.shutdown()`` forgets it. A
    lesson run a second time in the same kernel would then get RLlib's own PPO from
    ``tune.run("PPO")``, silently. Ray calls its post-init hooks at the end of every
    ``ray.init()`` (Tune's registry flushes itself the same way), so the names come back each time.
    """
    import ray._private.worker as ray_worker
    from ray.tune.registry import register_trainable

    share_envs_with_tune()
    for name in ALGORITHMS:
        register_trainable(name, get_trainer_class(name), warn=False)
    if register_with_tune not in ray_worker._post_init_hooks:
        ray_worker._post_init_hooks.append(register_with_tune)
