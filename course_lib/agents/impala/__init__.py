"""IMPALA (``IMPALATrainer``, ``IMPALATorchPolicy``) and its off-policy correction, V-trace
(``vtrace_from_importance_weights``). Introduced in notebooks/15_scaling_out.ipynb."""

from course_lib.agents.impala.impala import DEFAULT_CONFIG, IMPALATrainer
from course_lib.agents.impala.impala_torch_policy import IMPALATorchPolicy
from course_lib.agents.impala.vtrace import VTraceReturns, vtrace_from_importance_weights

__all__ = [
    "DEFAULT_CONFIG",
    "IMPALATorchPolicy",
    "IMPALATrainer",
    "VTraceReturns",
    "vtrace_from_importance_weights",
]
