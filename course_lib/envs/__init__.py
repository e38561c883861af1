"""Environments: find them by name, write your own, wrap them, and check them before training.

Introduced in notebooks/03_environments.ipynb.
"""

from course_lib.envs.checker import EnvCheckError, EnvCheckReport, check_env
from course_lib.envs.examples import Corridor, MyEnv, SlowEnv, make_slow_cartpole
from course_lib.envs.multi_agent import MultiAgentEnv, RockPaperScissors, make_multi_agent
from course_lib.envs.registry import (
    EnvContext,
    get_env_creator,
    make_env,
    register_env,
    registered_envs,
)
from course_lib.envs.slow_simulator import SlowSimulator, calibrate_cpu_substeps
from course_lib.envs.traffic import (
    FixedTimeController,
    LongestQueueController,
    MaxPressureController,
    TrafficGridEnv,
    intersection_groups,
    plot_queues,
    run_controller,
)
from course_lib.envs.wrappers import ClipReward, OneHotObservation

__all__ = [
    "FixedTimeController",
    "LongestQueueController",
    "MaxPressureController",
    "TrafficGridEnv",
    "intersection_groups",
    "plot_queues",
    "run_controller",
    "ClipReward",
    "Corridor",
    "EnvCheckError",
    "EnvCheckReport",
    "EnvContext",
    "MultiAgentEnv",
    "MyEnv",
    "OneHotObservation",
    "RockPaperScissors",
    "SlowEnv",
    "SlowSimulator",
    "calibrate_cpu_substeps",
    "check_env",
    "get_env_creator",
    "make_env",
    "make_multi_agent",
    "make_slow_cartpole",
    "register_env",
    "registered_envs",
]
