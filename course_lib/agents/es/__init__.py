"""Evolution strategies on plain Ray tasks. Introduced in notebooks/15_scaling_out.ipynb."""

from course_lib.agents.es.es import DEFAULT_CONFIG, ESTrainer
from course_lib.agents.es.es_policy import ESPolicy

__all__ = ["DEFAULT_CONFIG", "ESPolicy", "ESTrainer"]
