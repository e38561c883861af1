"""DQN (deep Q-network with double Q, dueling heads, n-step returns and prioritized replay).

Introduced in notebooks/13_algorithms.ipynb. Ape-X, DQN scaled out with many exploring workers
and sharded replay, is in ``apex.py`` (notebooks/15_scaling_out.ipynb).
"""

from course_lib.agents.dqn.apex import DEFAULT_CONFIG as APEX_DEFAULT_CONFIG
from course_lib.agents.dqn.apex import ApexTrainer
from course_lib.agents.dqn.dqn import DEFAULT_CONFIG, DQNTrainer
from course_lib.agents.dqn.dqn_torch_policy import DQNTorchPolicy

__all__ = ["APEX_DEFAULT_CONFIG", "ApexTrainer", "DEFAULT_CONFIG", "DQNTorchPolicy", "DQNTrainer"]
