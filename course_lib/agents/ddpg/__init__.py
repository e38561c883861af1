"""DDPG and TD3: deterministic actor-critic for continuous (Box) actions, from a replay buffer.

Introduced in notebooks/16_continuous_control.ipynb.
"""

from course_lib.agents.ddpg.ddpg import DEFAULT_CONFIG, DDPGTrainer
from course_lib.agents.ddpg.ddpg_torch_policy import DDPGTorchModel, DDPGTorchPolicy
from course_lib.agents.ddpg.td3 import TD3_DEFAULT_CONFIG, TD3Trainer

__all__ = [
    "DEFAULT_CONFIG",
    "DDPGTorchModel",
    "DDPGTorchPolicy",
    "DDPGTrainer",
    "TD3_DEFAULT_CONFIG",
    "TD3Trainer",
]
