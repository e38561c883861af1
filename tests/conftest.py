"""Shared fixtures: one Ray instance for the whole unit-test session, and a guard that no Ray
process outlives the suite (notebook kernels start and stop their own Ray)."""

from __future__ import annotations

import os
import sys
import time
import uuid

import psutil
import pytest

RAY_PROCESS_NAMES = (
    "raylet",
    "gcs_server",
    "plasma_store",
    "ray::",
    "default_worker.py",
    "dashboard",
    "log_monitor.py",
)


# Every process this test run starts (notebook kernels, Ray's processes) inherits this variable,
# so the leak check below ignores Ray instances that other programs on the machine are running.
RUN_MARKER = "COURSE_LIB_TEST_RUN"


def ray_processes(only_with: dict[str, str] | None = None) -> set[int]:
    """PIDs of Ray's processes (raylet, GCS, workers, monitors) started by this test run.

    ``only_with`` narrows them to those whose environment also holds these variables, such as the
    marker a notebook kernel was started with (tests/test_notebook_rerun.py).
    """
    wanted = {RUN_MARKER: os.environ[RUN_MARKER], **(only_with or {})}
    found = set()
    for proc in psutil.process_iter(["pid", "name", "cmdline"]):
        try:
            text = " ".join([proc.info["name"] or "", *(proc.info["cmdline"] or [])])
            if any(name in text for name in RAY_PROCESS_NAMES) and all(
                proc.environ().get(key) == value for key, value in wanted.items()
            ):
                found.add(proc.info["pid"])
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def pytest_sessionstart(session):
    os.environ[RUN_MARKER] = uuid.uuid4().hex


def pytest_runtest_setup(item):
    """Run torch on one thread in this process, as the lessons do (torch.set_num_threads(1)).

    With two threads on two cores, any other busy process (a Ray worker, a second test run) makes
    torch's threads wait on each other: on the busy 2-core machine the seven learning tests took
    80-146 s with two threads and 21-34 s with one. The networks are small, so one thread costs
    nothing on an idle machine (DQN's learning test: 6.8 s idle with two, 6.7 s busy with one).
    """
    torch = sys.modules.get("torch")  # only once a test module has imported it; importing costs 1 s
    if torch is not None and torch.get_num_threads() != 1:
        torch.set_num_threads(1)


def pytest_sessionfinish(session, exitstatus):
    """Fail the run if Ray processes started during it are still alive after a grace period."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
    deadline = time.monotonic() + 30
    while (left := ray_processes()) and time.monotonic() < deadline:
        time.sleep(0.5)
    if left:
        names = sorted(
            {" ".join(psutil.Process(p).cmdline()[:2]) for p in left if psutil.pid_exists(p)}
        )
        session.config.pluginmanager.get_plugin("terminalreporter").write_line(
            f"FAILED: {len(left)} Ray processes outlived the test suite: {names[:5]}", red=True
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def ray_session():
    """A Ray instance shared by every unit test that needs one (starting Ray costs ~8 s here)."""
    import os

    import ray

    import course_lib

    # Workers unpickle classes defined in test modules by importing them, so they need tests/ too.
    tests_dir = os.path.dirname(__file__)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [tests_dir, os.environ.get("PYTHONPATH")])
    )
    # The graders' probe tasks ask for 0.25 CPU, so up to 8 run at once on 2 CPUs. Ray keeps only
    # num_cpus idle workers and kills the rest after a second, so each grader test started up to six
    # fresh worker processes again (~1 s of CPU each). Keeping 8 cut tests/test_checks.py from 160 s
    # to 91 s on the busy 2-core machine. Lessons keep Ray's default: learners see a cold pool, and
    # so do the notebook runs of the same graders.
    course_lib.init_ray(num_cpus=2, _system_config={"num_workers_soft_limit": 8})
    yield ray
    ray.shutdown()
