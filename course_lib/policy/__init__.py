"""Policies: how an agent acts and learns (lesson 07). PyTorch only."""

from course_lib.policy.heuristics import AlwaysSameHeuristic, BeatLastHeuristic, HeuristicPolicy
from course_lib.policy.pg import PGTorchPolicy, policy_gradient_loss
from course_lib.policy.policy import POLICY_DEFAULTS, Policy
from course_lib.policy.policy_template import build_policy, build_tf_policy, build_torch_policy
from course_lib.policy.torch_policy import TorchPolicy, masked_mean

__all__ = [
    "AlwaysSameHeuristic",
    "BeatLastHeuristic",
    "HeuristicPolicy",
    "POLICY_DEFAULTS",
    "PGTorchPolicy",
    "Policy",
    "TorchPolicy",
    "build_policy",
    "build_tf_policy",
    "build_torch_policy",
    "masked_mean",
    "policy_gradient_loss",
]
