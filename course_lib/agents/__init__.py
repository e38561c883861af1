"""Trainers: the config, the training loop, checkpoints, and the algorithms built on them.

``Trainer``/``COMMON_CONFIG``/``build_trainer`` are introduced in notebooks/12_trainers.ipynb;
the algorithms (``pg``, ``a3c``, ``ppo``, ``dqn``) in notebooks/13_algorithms.ipynb.
"""

from course_lib.agents.config import COMMON_CONFIG
from course_lib.agents.registry import ALGORITHMS, get_trainer_class, register_with_tune
from course_lib.agents.tensorboard import read_scalars, tensorboard_command
from course_lib.agents.trainer import Trainer, default_execution_plan
from course_lib.agents.trainer_template import build_trainer

__all__ = [
    "ALGORITHMS",
    "COMMON_CONFIG",
    "Trainer",
    "build_trainer",
    "default_execution_plan",
    "get_trainer_class",
    "read_scalars",
    "register_with_tune",
    "tensorboard_command",
]

# tune.run("PPO", ...) looks trainers up by name in Ray Tune's registry.
register_with_tune()
