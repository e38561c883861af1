"""A real two-node Ray cluster on this machine: rollout workers on both nodes, and training that
goes on when a node is lost, with ``recreate_failed_workers``.

The scenario (tests/multinode_scenario.py) runs once, in a process of its own with its own Ray
cluster, so that this session's Ray is untouched; the tests read what it saw.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from test_notebook_rerun import wait_for_ray_to_exit

pytestmark = pytest.mark.slow

SCENARIO = Path(__file__).with_name("multinode_scenario.py")
MARKER = "COURSE_LIB_MULTINODE_RUN"


@pytest.fixture(scope="module")
def seen():
    """What the scenario printed, once every Ray process it started has gone."""
    marker = {MARKER: uuid.uuid4().hex}
    env = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    # One thread per process: the nodes' worker processes inherit these (init_ray sets them only
    # for a Ray it starts itself, not for a cluster it joins).
    env.update(
        marker,
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        RAY_USAGE_STATS_ENABLED="0",
    )
    try:
        done = subprocess.run(
            [sys.executable, str(SCENARIO)], env=env, capture_output=True, text=True, timeout=300
        )
    finally:
        left_behind = wait_for_ray_to_exit(marker)
    assert done.returncode == 0, failure_report(done)
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "left_behind": left_behind}


def failure_report(done: subprocess.CompletedProcess) -> str:
    """The last phase the scenario reached and its Python traceback (Ray's own processes write
    their logs to the same stderr, which would bury it)."""
    phases = [line for line in done.stdout.splitlines() if line.startswith("phase: ")]
    traceback = done.stderr.rpartition("Traceback (most recent call last)")
    where = phases[-1] if phases else "before the first phase"
    return f"exit code {done.returncode}, {where}\n{(traceback[1] + traceback[2])[-4000:]}"


@pytest.mark.timeout(360)  # the scenario runs in the first test that asks for it
def test_rollout_workers_are_placed_on_both_nodes(seen):
    assert seen["placed"] == ["head", "head", "second", "second"]
    assert seen["placed_without_recreation"] == ["second", "second"]
    # custom_resources_per_worker={"simulator": 1}: 4 workers hold 4 of the 8 slots.
    assert seen["simulator_slots_free"] == 4


def test_training_goes_on_after_a_node_is_lost_and_no_iteration_is_lost(seen):
    assert seen["before"]["training_iteration"] == 1
    assert [r["training_iteration"] for r in seen["after"]] == [2, 3]
    assert [r["timesteps_total"] for r in seen["after"]] == [400, 600]
    assert all(r["timesteps_this_iter"] == 200 for r in seen["after"])
    assert seen["nodes_alive"] == 1


def test_workers_lost_with_the_node_are_recreated_on_the_remaining_one(seen):
    assert seen["replaced"] == ["head"] * 4
    assert [r["num_healthy_workers"] for r in seen["after"]] == [4, 4]


def test_without_recreation_the_error_names_the_dead_workers_and_the_setting(seen):
    assert "Rollout worker(s) [1, 2] died" in seen["error"]
    assert 'Set "recreate_failed_workers": True' in seen["error"]


def test_no_ray_process_is_left_behind(seen):
    assert seen["left_behind"] == []
