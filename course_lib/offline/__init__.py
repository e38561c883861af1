"""Offline datasets: record experience (``"output"``), learn from it (``"input"``), and estimate
a new policy's return from it (``"input_evaluation"``). Introduced in notebooks/17_offline_rl.ipynb.
"""

from course_lib.offline.input_reader import (
    InputReader,
    MixedInput,
    SamplerInput,
    make_input_reader,
    make_output_writer,
)
from course_lib.offline.json_reader import JsonReader, OfflineDataError, batch_from_json
from course_lib.offline.json_writer import JsonWriter, batch_to_json
from course_lib.offline.off_policy_estimator import (
    ImportanceSampling,
    OffPolicyEstimate,
    OffPolicyEstimator,
    WeightedImportanceSampling,
    make_estimators,
    summarize_estimates,
)

__all__ = [
    "ImportanceSampling",
    "InputReader",
    "JsonReader",
    "JsonWriter",
    "MixedInput",
    "OffPolicyEstimate",
    "OffPolicyEstimator",
    "OfflineDataError",
    "SamplerInput",
    "WeightedImportanceSampling",
    "batch_from_json",
    "batch_to_json",
    "make_estimators",
    "make_input_reader",
    "make_output_writer",
    "summarize_estimates",
]
