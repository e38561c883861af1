"""DQN (deep Q-network with double Q, dueling heads, n-step returns and prioritized replay).

Introduced in notebooks/13_algorithms.ipynb.
"""

from course_lib.agents.dqn.dqn import DEFAULT_CONFIG, DQNTrainer
from course_lib.agents.dqn.dqn_torch_policy import DQNTorchPolicy

__all__ = ["DEFAULT_CONFIG", "DQNTorchPolicy", "DQNTrainer"]
