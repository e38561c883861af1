"""Graders for the exercise notebooks: each ``check_*`` runs your code and says what is wrong.

A grader checks behaviour (results, order, how tasks overlapped), never wall-clock speed, and a
failure names the likely mistake. Introduced in notebooks/00_welcome.ipynb ("How exercises work").
"""

from ._common import CheckFailed
from .environments import check_guess_number
from .exploration import check_decaying_boltzmann
from .models import check_custom_model
from .policies import check_pg_with_baseline, check_reinforce_loss
from .ray_actors import check_cartpole_actor, check_pool_map, check_scoreboard
from .rollouts import check_parallel_training_step, check_pole_angle_callbacks
from .ray_tasks import check_as_completed, check_batched_map, check_parallel_map
from .sample_batches import check_discount_cumsum, check_gae
from .welcome import check_mul

__all__ = [
    "CheckFailed",
    "check_as_completed",
    "check_batched_map",
    "check_cartpole_actor",
    "check_custom_model",
    "check_decaying_boltzmann",
    "check_discount_cumsum",
    "check_gae",
    "check_guess_number",
    "check_mul",
    "check_parallel_map",
    "check_parallel_training_step",
    "check_pg_with_baseline",
    "check_pole_angle_callbacks",
    "check_pool_map",
    "check_reinforce_loss",
    "check_scoreboard",
]
