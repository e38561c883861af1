"""IMPALA's off-policy correction, V-trace (``vtrace_from_importance_weights``)."""

from course_lib.agents.impala.vtrace import VTraceReturns, vtrace_from_importance_weights

__all__ = ["VTraceReturns", "vtrace_from_importance_weights"]
