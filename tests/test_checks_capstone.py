"""Graders of lesson 17 (course_lib/checks/capstone.py): the reference passes, typical mistakes get
their hint."""

from __future__ import annotations

import re

import pytest

from course_lib import checks
from course_lib.checks import CheckFailed
from course_lib.execution import (
    ConcatBatches,
    ParallelRollouts,
    StandardizeFields,
    StandardMetricsReporting,
    TrainOneStep,
)
from course_lib.sample_batch import SampleBatch


def map_by_row(agent_id, episode, **kwargs):
    return "row_" + agent_id.split("_")[1]


def test_map_by_row_reference_passes(capsys):
    checks.check_map_by_row(map_by_row)
    assert "17.1 passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda agent_id, episode: "row_" + agent_id.split("_")[1], "**kwargs"),
        (lambda agent_id, episode, **kw: agent_id, "agent id itself"),
        (lambda agent_id, episode, **kw: "row_" + agent_id.split("_")[2], "That is the column"),
        (lambda agent_id, episode, **kw: int(agent_id.split("_")[1]), "is a string"),
    ],
)
def test_map_by_row_mistakes_are_named(wrong, hint):
    with pytest.raises(CheckFailed, match=re.escape(hint)):
        checks.check_map_by_row(wrong)


def make_plan(*, policies=True, count_steps_by="agent_steps", report=True):
    def plan(workers, config):
        multiagent = config["multiagent"]
        train_op = (
            ParallelRollouts(workers, mode="bulk_sync")
            .combine(
                ConcatBatches(
                    min_batch_size=config["train_batch_size"], count_steps_by=count_steps_by
                )
            )
            .for_each(StandardizeFields([SampleBatch.ADVANTAGES]))
            .for_each(
                TrainOneStep(
                    workers,
                    policies=multiagent["policies_to_train"] if policies else None,
                    num_sgd_iter=config["num_sgd_iter"],
                    sgd_minibatch_size=config["sgd_minibatch_size"],
                )
            )
        )
        return StandardMetricsReporting(train_op, workers, config) if report else train_op

    return plan


def test_traffic_plan_reference_passes(capsys):
    checks.check_traffic_plan(make_plan())
    assert "17.2 passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (make_plan(policies=False), "policies=config"),
        (make_plan(count_steps_by="env_steps"), "count_steps_by='agent_steps'"),
        (make_plan(report=False), "StandardMetricsReporting"),
    ],
)
def test_traffic_plan_mistakes_are_named(wrong, hint):
    with pytest.raises(CheckFailed, match=re.escape(hint)):
        checks.check_traffic_plan(wrong)
