"""task_timeline and plot_timeline: Ray's own record of when each task ran, as a Gantt chart."""

from __future__ import annotations

import time
from itertools import pairwise

import matplotlib
import pytest

from course_lib import parallel

matplotlib.use("Agg")


def _event(category, worker, start_us, dur_us, task_id=None, phase="X"):
    """One Chrome-trace event shaped like those ray.timeline() returns (Ray 2.60)."""
    args = {} if task_id is None else {"name": category.split("::")[-1], "task_id": task_id}
    return {
        "cat": category,
        "name": category,
        "pid": "127.0.0.1",
        "tid": worker,
        "ts": start_us,
        "dur": dur_us,
        "ph": phase,
        "args": args,
    }


RECORDED = [
    _event("submit_task", "driver:01", 900_000, 50),
    _event("task::nap", "worker:bb", 2_000_000, 300_000, task_id="t2"),
    _event("task:execute", "worker:bb", 2_000_100, 299_000),
    _event("task::nap", "worker:aa", 1_500_000, 250_000, task_id="t1"),
    _event("task::Counter.incr", "worker:cc", 1_600_000, 1_000, task_id="t3"),
]


def test_rows_keep_only_task_executions_in_seconds_from_the_first_start():
    rows = parallel.task_timeline(RECORDED)
    assert rows == [
        {"name": "nap", "worker": "worker:aa", "start_s": 0.0, "end_s": 0.25, "task_id": "t1"},
        {
            "name": "Counter.incr",
            "worker": "worker:cc",
            "start_s": pytest.approx(0.1),
            "end_s": pytest.approx(0.101),
            "task_id": "t3",
        },
        {
            "name": "nap",
            "worker": "worker:bb",
            "start_s": pytest.approx(0.5),
            "end_s": pytest.approx(0.8),
            "task_id": "t2",
        },
    ]


def test_an_empty_timeline_says_to_run_tasks_first():
    with pytest.raises(ValueError, match="run some tasks first"):
        parallel.task_timeline([_event("submit_task", "driver:01", 0, 10)])


def test_bad_arguments_are_explained():
    with pytest.raises(TypeError, match="the list that ray.timeline\\(\\) returns"):
        parallel.task_timeline({"cat": "task::nap"})
    with pytest.raises(TypeError, match="ObjectRefs that .remote\\(\\) returned"):
        parallel.task_timeline(RECORDED, refs=["t1"])
    with pytest.raises(ValueError, match="no refs given"):
        parallel.task_timeline(RECORDED, refs=[])


def test_reading_from_ray_needs_ray_running(monkeypatch):
    import ray

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    with pytest.raises(RuntimeError, match="Ray is not running. Start it with init_ray"):
        parallel.task_timeline()


def test_plot_draws_one_lane_per_worker_and_one_bar_per_task():
    rows = parallel.task_timeline(RECORDED)
    ax = parallel.plot_timeline(rows, title="three tasks")
    labels = [tick.get_text() for tick in ax.get_yticklabels()]
    assert labels == ["worker 1", "worker 2", "worker 3"]
    bars = sorted(
        (bar.get_x(), bar.get_width(), bar.get_y() + bar.get_height() / 2) for bar in ax.patches
    )
    # x = start, width = duration, centre = lane; worker:aa started first, so it is lane 0.
    assert bars == [
        (0.0, 0.25, 0.0),
        (pytest.approx(0.1), pytest.approx(0.001), 1.0),
        (pytest.approx(0.5), pytest.approx(0.3), 2.0),
    ]
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["nap", "Counter.incr"]
    assert ax.get_title() == "three tasks"


def test_plot_of_one_task_name_has_no_legend_and_no_rows_is_an_error():
    rows = [row for row in parallel.task_timeline(RECORDED) if row["name"] == "nap"]
    assert parallel.plot_timeline(rows).get_legend() is None
    with pytest.raises(ValueError, match="no rows to draw"):
        parallel.plot_timeline([])


def test_parallel_tasks_overlap_and_a_get_inside_the_loop_runs_them_one_by_one(ray_session):
    ray = ray_session

    @ray.remote
    def nap(seconds):
        time.sleep(seconds)
        return seconds

    # Warm-up: have both workers running (and the function loaded) before what we look at.
    ray.get([nap.remote(0.05) for _ in range(4)])

    at_once = [nap.remote(0.2) for _ in range(4)]
    ray.get(at_once)
    one_by_one = []
    for _ in range(4):
        one_by_one.append(nap.remote(0.2))
        ray.get(one_by_one[-1])  # the anti-pattern: wait before submitting the next

    parallel_rows = parallel.task_timeline(refs=at_once)
    serial_rows = parallel.task_timeline(refs=one_by_one)

    assert {row["task_id"] for row in parallel_rows} == {ref.task_id().hex() for ref in at_once}
    assert len(serial_rows) == 4 and {row["name"] for row in serial_rows} == {"nap"}
    assert parallel_rows[0]["start_s"] == serial_rows[0]["start_s"] == 0.0
    for rows in (parallel_rows, serial_rows):
        assert all(row["end_s"] - row["start_s"] >= 0.2 for row in rows), "each task slept 0.2 s"
    # Submitted together, some two tasks ran at the same time (2 CPUs)...
    assert any(
        later["start_s"] < earlier["end_s"]
        for i, earlier in enumerate(parallel_rows)
        for later in parallel_rows[i + 1 :]
    )
    # ...while with ray.get inside the loop each one started after the one before had ended.
    assert all(later["start_s"] >= earlier["end_s"] for earlier, later in pairwise(serial_rows))


def test_refs_of_unfinished_tasks_are_refused_with_the_fix(ray_session):
    ray = ray_session

    @ray.remote
    def nap(seconds):
        time.sleep(seconds)

    running = nap.remote(1.0)
    with pytest.raises(ValueError, match="not finished yet.*ray.get\\(refs\\)"):
        parallel.task_timeline(refs=[running])
    ray.get(running)


def test_a_ref_without_a_task_is_reported_after_the_timeout(ray_session):
    put_ref = ray_session.put(1)
    with pytest.raises(ValueError, match="0 of the 1 tasks.*after waiting 0 s.*ray.put"):
        parallel.task_timeline(refs=[put_ref], timeout_s=0)
