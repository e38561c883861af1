"""Start (or join) Ray with settings that suit a laptop.

Introduced in notebooks/00_welcome.ipynb and used by every lesson that touches Ray.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager

from course_lib.validation import is_whole_number

DEFAULT_OBJECT_STORE_MB = 512
# Ray refuses an object store below 75 MiB; ask for a little more so its own bookkeeping fits.
MIN_OBJECT_STORE_MB = 80

# The dashboard listens here when init_ray(dashboard=True); Ray picks the next free port if taken.
DASHBOARD_HOST = "127.0.0.1"

# Variables the Ray worker processes inherit. One thread per worker: two cores shared by several
# torch processes each spawning a thread pool of its own made RLlib's PPO 7x slower here.
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def init_ray(
    num_cpus: int | None = None,
    *,
    object_store_mb: int = DEFAULT_OBJECT_STORE_MB,
    threads_per_worker: int = 1,
    address: str | None = None,
    quiet: bool = True,
    dashboard: bool = False,
    **ray_init_kwargs,
):
    """Start a local Ray sized for a laptop, or join a running cluster; safe to call twice.

    - ``num_cpus``: logical CPUs Ray may schedule on (default: the cores of this machine).
    - ``object_store_mb``: shared-memory object store size; small, so a lesson stays under 3 GB.
    - ``threads_per_worker``: OMP/MKL threads of each worker process (torch reads them at import).
    - ``address``: join this cluster; ``RAY_ADDRESS`` in the environment does the same. Sizing
      arguments are then the cluster's business and must be left out.
    - ``quiet``: keep Ray's start-up log lines (and the token-authentication notice) out of
      the notebook; ``print`` output of tasks and actors is still shown.
    - ``dashboard``: also start Ray's web dashboard, on this machine only (host 127.0.0.1; pass
      ``dashboard_host=`` to change that), and print its URL, usually http://127.0.0.1:8265. Off by
      default: it adds a couple of seconds and about 200 MB to every start. It needs the packages of
      ``ray[default]``, which the course's environment leaves out. Introduced in
      notebooks/02_ray_actors.ipynb.

    Returns Ray's context object (``.address_info`` holds the addresses, ``.dashboard_url`` the
    dashboard's ``host:port``, empty without one). If Ray is already running in this process the
    call returns its context and changes nothing.
    """
    import ray

    address = address or os.environ.get("RAY_ADDRESS") or None
    _validate(num_cpus, object_store_mb, threads_per_worker, address)
    _validate_dashboard(dashboard, address, ray_init_kwargs)
    # Usage statistics would try to reach the internet; courses run offline as often as not.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    level = logging.ERROR if quiet else logging.INFO
    if ray.is_initialized():
        _warn_if_resized(ray, num_cpus)
        # ray.init(ignore_reinit_error=True) returns the running context, and logs that it did.
        saved_disable = logging.root.manager.disable
        if quiet:
            logging.disable(logging.INFO)
        try:
            context = ray.init(ignore_reinit_error=True)
        finally:
            logging.disable(saved_disable)
        if dashboard:
            _announce_dashboard(context, already_running=True)
        return context

    if address:
        return ray.init(address=address, logging_level=level, **ray_init_kwargs)

    _warn_if_ray_runs_elsewhere()
    if dashboard:
        ray_init_kwargs.setdefault("dashboard_host", DASHBOARD_HOST)
    with _worker_environment(threads_per_worker):
        context = ray.init(
            # "local": always a fresh instance, never a cluster some other program left running.
            address="local",
            num_cpus=num_cpus or os.cpu_count(),
            object_store_memory=object_store_mb * 1024**2,
            include_dashboard=dashboard,
            logging_level=level,
            **ray_init_kwargs,
        )
    if dashboard:
        _announce_dashboard(context, already_running=False)
    return context


def _validate(num_cpus, object_store_mb, threads_per_worker, address) -> None:
    if num_cpus is not None and (not is_whole_number(num_cpus) or num_cpus < 1):
        raise ValueError(
            f"init_ray(num_cpus={num_cpus!r}): expected a whole number of CPUs >= 1, such as "
            f"num_cpus=2, or leave it out to use this machine's {os.cpu_count()} cores."
        )
    if not is_whole_number(object_store_mb) or object_store_mb < MIN_OBJECT_STORE_MB:
        raise ValueError(
            f"init_ray(object_store_mb={object_store_mb!r}): expected a size in MB of at least "
            f"{MIN_OBJECT_STORE_MB} (Ray's minimum); the default is {DEFAULT_OBJECT_STORE_MB}."
        )
    if not is_whole_number(threads_per_worker) or threads_per_worker < 1:
        raise ValueError(
            f"init_ray(threads_per_worker={threads_per_worker!r}): expected a whole number >= 1; "
            "1 is right for a laptop where many worker processes share few cores."
        )
    if address is not None and not isinstance(address, str):
        raise TypeError(
            f"init_ray(address={address!r}): expected a "
            "string such as 'auto' or 'ray://host:10001'."
        )
    if address and num_cpus is not None:
        raise ValueError(
            f"init_ray(num_cpus={num_cpus}) cannot resize the cluster at {address!r}: "
            "a cluster you join decides its own CPUs. Drop num_cpus=, or unset RAY_ADDRESS "
            "to start a local Ray instead."
        )


def _validate_dashboard(dashboard, address, ray_init_kwargs) -> None:
    if "include_dashboard" in ray_init_kwargs:
        wanted = bool(ray_init_kwargs["include_dashboard"])
        raise TypeError(
            f"init_ray() takes dashboard={wanted} instead of "
            f"include_dashboard={ray_init_kwargs['include_dashboard']!r}: it also keeps the "
            "dashboard on this machine (127.0.0.1) and prints its URL."
        )
    if not isinstance(dashboard, bool):
        raise TypeError(f"init_ray(dashboard={dashboard!r}): expected True or False.")
    if not dashboard:
        return
    if address:
        raise ValueError(
            f"init_ray(dashboard=True) cannot add a dashboard to the cluster at {address!r}: the "
            "cluster's head node starts it or not (ray start --head --include-dashboard=true). "
            "Drop dashboard=True, or unset RAY_ADDRESS to start a local Ray with a dashboard."
        )
    try:
        import ray.dashboard.optional_deps  # noqa: F401  (what Ray itself imports to check)
    except ImportError as missing:
        raise ImportError(
            "init_ray(dashboard=True): the Ray dashboard needs the extra packages of "
            f"ray[default], and this environment lacks them ({missing}). Install them with "
            "pip install 'ray[default]' (same version as the ray you have), restart the kernel, "
            "and call init_ray(dashboard=True) again; or leave the dashboard off."
        ) from missing


def _announce_dashboard(context, *, already_running: bool) -> None:
    """Print the dashboard's URL, or say why there is none: Ray's own line is hidden by quiet."""
    if context.dashboard_url:
        print(f"Ray dashboard: http://{context.dashboard_url}")
    elif already_running:
        import warnings

        warnings.warn(
            "Ray is already running without a dashboard, so init_ray(dashboard=True) changed "
            "nothing. Call ray.shutdown() first, then init_ray(dashboard=True).",
            stacklevel=3,
        )


def running_ray_instances() -> list[dict]:
    """The Ray instances running on this machine, one dict per instance (its GCS server process).

    Each dict has ``session`` (the session name, also the folder under /tmp/ray), ``gcs_pid`` and
    ``driver_pid``/``driver`` (the process that started it, often another notebook's kernel) when
    that process is still alive. Introduced in notebooks/00_welcome.ipynb (init_ray).
    """
    import psutil

    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            command = process.info["cmdline"] or []
            if not command or not os.path.basename(command[0]).startswith("gcs_server"):
                continue
            args = dict(
                arg.split("=", 1) for arg in command[1:] if arg.startswith("--") and "=" in arg
            )
            session = args.get("--session-name", "")
            # Ray names a session after the pid of the process that called ray.init().
            tail = session.rsplit("_", 1)[-1]
            driver_pid = int(tail) if tail.isdigit() else None
            driver = None
            if driver_pid is not None and psutil.pid_exists(driver_pid):
                driver = " ".join(psutil.Process(driver_pid).cmdline())[:120]
            found.append(
                {
                    "session": session,
                    "gcs_pid": process.pid,
                    "driver_pid": driver_pid,
                    "driver": driver,
                }
            )
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def _warn_if_ray_runs_elsewhere() -> None:
    """Before starting a second local instance, say so and how to share the running one."""
    import warnings

    others = running_ray_instances()
    if not others:
        return

    def describe(instance: dict) -> str:
        if instance["driver"]:
            started_by = f"started by process {instance['driver_pid']} ({instance['driver']})"
            return f"{instance['session']}, {started_by}"
        return f"{instance['session']}, whose starting process has exited"

    listed = "; ".join(describe(instance) for instance in others[:3])
    warnings.warn(
        f"Ray is already running on this machine ({len(others)} instance(s): {listed}), probably "
        "in another notebook. init_ray() now starts "
        "a second, separate instance, which takes about 1.5 GB more memory. To share the running "
        "one instead, call init_ray(address='auto') (or start Jupyter with RAY_ADDRESS=auto); it "
        "stops when the notebook that started it calls ray.shutdown(). Close notebooks you no "
        "longer use (Kernel > Shut Down Kernel) to free their Ray.",
        stacklevel=3,
    )


def _warn_if_resized(ray, num_cpus) -> None:
    have = int(ray.cluster_resources().get("CPU", 0))
    if num_cpus is not None and num_cpus != have:
        import warnings

        warnings.warn(
            f"Ray is already running with {have} CPUs, so init_ray(num_cpus={num_cpus}) changed "
            "nothing. Call ray.shutdown() first to restart it with a different size.",
            stacklevel=3,
        )


@contextmanager
def _worker_environment(threads_per_worker: int):
    """Set the thread variables while Ray's processes start, so workers inherit them.

    The driver keeps its own settings: it is restored afterwards, so a learner process that
    trains a network in the notebook may still use every core.
    """
    saved = {name: os.environ.get(name) for name in _THREAD_VARS}
    os.environ.update({name: str(threads_per_worker) for name in _THREAD_VARS})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
