"""PPO (proximal policy optimisation). Introduced in notebooks/13_algorithms.ipynb."""

from course_lib.agents.ppo.ppo import DEFAULT_CONFIG, PPOTrainer
from course_lib.agents.ppo.ppo_torch_policy import PPOTorchPolicy

__all__ = ["DEFAULT_CONFIG", "PPOTorchPolicy", "PPOTrainer"]
