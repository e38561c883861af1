"""init_ray: sized for a laptop, idempotent, joins a cluster, explains bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types

import pytest

import course_lib
from course_lib.cluster import _worker_environment


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"num_cpus": 0}, "num_cpus=0"),
        ({"num_cpus": -2}, "whole number of CPUs >= 1"),
        ({"num_cpus": 2.5}, "whole number of CPUs"),
        ({"num_cpus": True}, "whole number of CPUs"),
        ({"num_cpus": "2"}, "such as num_cpus=2"),
        ({"object_store_mb": 10}, "at least 80"),
        ({"threads_per_worker": 0}, "threads_per_worker=0"),
    ],
)
def test_init_ray_rejects_bad_sizes_with_a_fix(kwargs, expected):
    with pytest.raises(ValueError, match=expected):
        course_lib.init_ray(**kwargs)


def test_init_ray_rejects_a_non_string_address():
    with pytest.raises(TypeError, match="ray://host:10001"):
        course_lib.init_ray(address=6379)


def test_worker_environment_is_restored_for_the_driver(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    with _worker_environment(1):
        assert os.environ["OMP_NUM_THREADS"] == os.environ["MKL_NUM_THREADS"] == "1"
    assert os.environ["OMP_NUM_THREADS"] == "7"
    assert "MKL_NUM_THREADS" not in os.environ


def test_ray_is_sized_for_a_laptop(ray_session):
    resources = ray_session.cluster_resources()
    assert resources["CPU"] == 2
    assert resources["object_store_memory"] == course_lib.cluster.DEFAULT_OBJECT_STORE_MB * 1024**2


def test_workers_use_one_thread_each(ray_session):
    @ray_session.remote(num_cpus=2)
    def threads():
        import torch

        return os.environ.get("OMP_NUM_THREADS"), torch.get_num_threads()

    assert ray_session.get(threads.remote()) == ("1", 1)


def test_second_call_returns_the_running_instance(ray_session):
    node = ray_session.get_runtime_context().get_node_id()
    context = course_lib.init_ray()
    assert context.address_info["node_id"] == node
    assert not context.dashboard_url


def test_second_call_with_another_size_warns(ray_session):
    with pytest.warns(UserWarning, match="already running with 2 CPUs"):
        course_lib.init_ray(num_cpus=1)
    assert ray_session.cluster_resources()["CPU"] == 2


JOIN_SCRIPT = """
import json, ray, course_lib
course_lib.init_ray()
node = ray.get_runtime_context().get_node_id()
print(json.dumps({"node": node, "cpus": ray.cluster_resources()["CPU"]}))
"""


@pytest.mark.slow
def test_ray_address_joins_the_running_cluster(ray_session):
    address = ray_session.get_runtime_context().gcs_address
    env = {**os.environ, "RAY_ADDRESS": address}
    done = subprocess.run(
        [sys.executable, "-c", JOIN_SCRIPT], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    joined = json.loads(done.stdout.strip().splitlines()[-1])
    assert joined == {"node": ray_session.get_runtime_context().get_node_id(), "cpus": 2.0}


def test_joining_a_cluster_refuses_to_resize_it(ray_session, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", ray_session.get_runtime_context().gcs_address)
    with pytest.raises(ValueError, match="cannot resize the cluster"):
        course_lib.init_ray(num_cpus=4)


SECOND_KERNEL_SCRIPT = """
import json, sys, warnings, ray, course_lib
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    if sys.argv[1]:
        course_lib.init_ray(address=sys.argv[1])
    else:
        course_lib.init_ray(num_cpus=1)
messages = [str(w.message) for w in caught if "already running" in str(w.message)]
node = ray.get_runtime_context().get_node_id()
ray.shutdown()
print(json.dumps({"node": node, "warnings": messages}))
"""


def _second_kernel(address: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run(
        [sys.executable, "-c", SECOND_KERNEL_SCRIPT, address],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_a_second_kernel_is_told_about_the_running_ray_and_how_to_share_it(ray_session):
    """Another notebook's Ray (here: this test session's) is named, with the way to join it."""
    from course_lib.cluster import running_ray_instances

    mine = ray_session.get_runtime_context().get_node_id()
    assert str(os.getpid()) in {str(i["driver_pid"]) for i in running_ray_instances()}

    separate = _second_kernel("")
    assert separate["node"] != mine, "without address='auto' the second kernel starts its own Ray"
    (message,) = separate["warnings"]
    assert f"started by process {os.getpid()}" in message
    assert "init_ray(address='auto')" in message and "1.5 GB" in message

    # 'auto' finds the instance started last; with other programs' Ray on the machine, name ours.
    alone = len(running_ray_instances()) == 1
    joined = _second_kernel("auto" if alone else ray_session.get_runtime_context().gcs_address)
    assert joined == {"node": mine, "warnings": []}, "joining shares the running instance"


def test_no_warning_when_no_other_ray_runs(monkeypatch):
    import warnings

    from course_lib import cluster

    monkeypatch.setattr(cluster, "running_ray_instances", lambda: [])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cluster._warn_if_ray_runs_elsewhere()


def test_include_dashboard_is_refused_with_the_keyword_to_use():
    with pytest.raises(TypeError, match="takes dashboard=True instead of include_dashboard=True"):
        course_lib.init_ray(include_dashboard=True)
    with pytest.raises(TypeError, match="expected True or False"):
        course_lib.init_ray(dashboard="yes")


def test_dashboard_without_its_packages_says_how_to_install_them(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray.dashboard.optional_deps", None)  # import fails
    with pytest.raises(ImportError, match=r"pip install 'ray\[default\]'.*restart the kernel"):
        course_lib.init_ray(dashboard=True)


def test_a_joined_cluster_keeps_its_own_dashboard(monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6379")
    with pytest.raises(ValueError, match="cannot add a dashboard to the cluster at '127.0.0.1"):
        course_lib.init_ray(dashboard=True)


def test_dashboard_on_a_running_ray_without_one_warns(ray_session, monkeypatch):
    installed = types.ModuleType("ray.dashboard.optional_deps")
    monkeypatch.setitem(sys.modules, installed.__name__, installed)  # as if ray[default] were here
    with pytest.warns(UserWarning, match="already running without a dashboard.*ray.shutdown"):
        context = course_lib.init_ray(dashboard=True)
    assert not context.dashboard_url


DASHBOARD_SCRIPT = """
import json, urllib.request, ray, course_lib
context = course_lib.init_ray(num_cpus=1, object_store_mb=100, dashboard=True)
with urllib.request.urlopen("http://" + context.dashboard_url, timeout=30) as page:
    status = page.status
ray.shutdown()
print(json.dumps({"url": context.dashboard_url, "status": status}))
"""


@pytest.mark.slow
def test_dashboard_starts_on_this_machine_and_prints_its_url():
    """A real Ray with its dashboard (about 5 s more than without), in a process of its own."""
    pytest.importorskip("ray.dashboard.optional_deps", reason="needs ray[default]'s packages")
    done = subprocess.run(
        [sys.executable, "-c", DASHBOARD_SCRIPT], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-2000:]
    *printed, last = done.stdout.strip().splitlines()
    started = json.loads(last)
    assert started["url"].startswith("127.0.0.1:") and started["status"] == 200
    assert f"Ray dashboard: http://{started['url']}" in printed
