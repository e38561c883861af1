"""Graders of lesson 11 accept the reference plans and name the mistake in typical wrong ones."""

from __future__ import annotations

import pytest

from course_lib import checks
from course_lib.execution import (
    ConcatBatches,
    Concurrently,
    ParallelRollouts,
    Replay,
    ReplayBuffer,
    StandardizeFields,
    StandardMetricsReporting,
    StoreToReplayBuffer,
    TrainOneStep,
)

# --- 10.1 PPO's plan without the KL update --------------------------------------------------------


def ppo_plan(
    workers,
    config,
    *,
    concat=True,
    min_batch_size=None,
    standardize="after_concat",
    sgd=("iter", "minibatch"),
    report=True,
):
    """The reference plan, with switches that reproduce the typical mistakes."""
    train_op = ParallelRollouts(workers, mode="bulk_sync")
    if standardize == "before_concat":
        train_op = train_op.for_each(StandardizeFields(["advantages"]))
    if concat:
        train_op = train_op.combine(
            ConcatBatches(min_batch_size=min_batch_size or config["train_batch_size"])
        )
    if standardize == "after_concat":
        train_op = train_op.for_each(StandardizeFields(["advantages"]))
    sgd_args = {}
    if "iter" in sgd:
        sgd_args["num_sgd_iter"] = config["num_sgd_iter"]
    if "minibatch" in sgd:
        sgd_args["sgd_minibatch_size"] = config["sgd_minibatch_size"]
    train_op = train_op.for_each(TrainOneStep(workers, **sgd_args))
    if standardize == "after_train":
        train_op = train_op.for_each(StandardizeFields(["advantages"]))
    return StandardMetricsReporting(train_op, workers, config) if report else train_op


def test_execution_plan_accepts_the_reference(capsys):
    checks.check_execution_plan(ppo_plan)
    assert "Exercise 11.1 passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("mistake", "message"),
    [
        ({"report": False}, r"\(batch, info\) pairs.*End the plan with StandardMetricsReporting"),
        (
            {"concat": False},
            r"trained on single samples of 100 "
            r"rows.*ConcatBatches\(min_batch_size=config\['train_batch_size'\]\)",
        ),
        ({"min_batch_size": 1000}, r"sampled 1000 steps.*not a fixed number"),
        ({"sgd": ()}, r"one learn_on_batch call on the whole batch"),
        ({"sgd": ("iter",)}, r"without minibatches: pass sgd_minibatch_size"),
        ({"sgd": ("minibatch",)}, r"one epoch of minibatches: pass num_sgd_iter"),
        ({"standardize": None}, r"raw advantages.*StandardizeFields\(\['advantages'\]\)"),
        ({"standardize": "before_concat"}, r"standardized each sample before concatenating"),
        ({"standardize": "after_train"}, r"raised .*TrainOneStep returns \(batch, info\)"),
    ],
)
def test_execution_plan_names_the_mistake(mistake, message):
    with pytest.raises(checks.CheckFailed, match=message):
        checks.check_execution_plan(lambda workers, config: ppo_plan(workers, config, **mistake))


def test_execution_plan_explains_a_missing_return():
    def no_return(workers, config):
        ppo_plan(workers, config)

    with pytest.raises(checks.CheckFailed, match="returned None"):
        checks.check_execution_plan(no_return)


# --- 10.2 the round-robin replay plan -------------------------------------------------------------


def replay_plan(
    workers,
    config,
    *,
    store=True,
    same_buffer=True,
    learning_starts=True,
    replay_batch_size=None,
    mode="round_robin",
    output_indexes=(1,),
    sample=True,
):
    buffer = ReplayBuffer(config["buffer_size"], seed=config["seed"])
    store_op = ParallelRollouts(workers, mode="bulk_sync")
    if store:
        store_op = store_op.for_each(
            StoreToReplayBuffer(
                local_buffer=buffer if same_buffer else ReplayBuffer(config["buffer_size"])
            )
        )
    replay_args = {"learning_starts": config["learning_starts"]} if learning_starts else {}
    replay_op = Replay(
        local_buffer=buffer,
        replay_batch_size=replay_batch_size or config["train_batch_size"],
        **replay_args,
    )
    replay_op = replay_op.for_each(TrainOneStep(workers))
    ops = [store_op, replay_op] if sample else [replay_op]
    train_op = Concurrently(
        ops,
        mode=mode,
        output_indexes=None if output_indexes is None else list(output_indexes) if sample else [0],
    )
    return StandardMetricsReporting(train_op, workers, config)


def test_replay_plan_accepts_the_reference(capsys):
    checks.check_replay_plan(replay_plan)
    assert "Exercise 11.2 passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("mistake", "message"),
    [
        ({"sample": False}, r"never samples"),
        ({"store": False}, r"has not learned once.*StoreToReplayBuffer"),
        ({"same_buffer": False}, r"has not learned once.*one buffer for both ops"),
        (
            {"learning_starts": False},
            r"before learning_starts=100.*learning_starts=config\['learning_starts'\]",
        ),
        (
            {"replay_batch_size": 64},
            r"batches of \[64\] rows.*replay_batch_size=config\['train_batch_size'\]",
        ),
        ({"output_indexes": None}, r"trained nothing.*output_indexes=\[1\]"),
        ({"mode": "async"}, r"round_robin"),
    ],
)
def test_replay_plan_names_the_mistake(mistake, message):
    with pytest.raises(checks.CheckFailed, match=message):
        checks.check_replay_plan(lambda workers, config: replay_plan(workers, config, **mistake))
