"""Serve a trained policy over HTTP with Ray Serve: observation in, action out.

Three layers, each usable on its own:

- ``ServedPolicy``: a policy restored from a course_lib checkpoint, with the observation filter
  it was trained with; ``parse_request`` turns a request body into an observation or a
  ``BadRequest`` (HTTP 400/422 with a message that says what was expected), and ``act`` answers
  a whole batch of observations with one forward pass.
- ``PolicyDeployment``: the Ray Serve deployment around it. Concurrent requests are gathered by
  ``@serve.batch`` into one forward pass (or answered one by one with ``batching=False``); its
  settings, the checkpoint included, arrive in Serve's ``user_config`` through ``reconfigure``.
- ``serve_policy`` starts Serve on 127.0.0.1 and deploys a checkpoint; ``load_test`` and
  ``BackgroundLoad`` send it concurrent requests from threads and measure requests per second
  and latency percentiles.

Introduced in notebooks/18_serving.ipynb.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import socket
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch
from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse

from course_lib.evaluation.env_actions import to_env_actions
from course_lib.sample_batch import SampleBatch

DEFAULT_PORT = 8000
DEFAULT_ROUTE = "/policy"
DEFAULT_APP = "policy"
# Batching: a batch is answered when it holds this many requests, or when the first request in
# it has waited this long. 2 ms is short next to the ~5-10 ms an HTTP request takes here.
DEFAULT_MAX_BATCH_SIZE = 32
DEFAULT_BATCH_WAIT_S = 0.002
# Half a CPU per replica leaves room on a 2-core laptop for the proxy, the controller and the
# notebook's own clients.
DEFAULT_REPLICA_CPUS = 0.5
# Replicas log warnings and errors, not one line per request (Serve's access log).
QUIET_LOGS = {"log_level": "WARNING", "enable_access_log": False}
# During a rolling update, start the new replicas before stopping the old ones (up to 100 % more
# replicas for a moment). Serve 2.60's default, 0, stops the old replicas first: with a single
# replica, requests then wait unanswered until the new one is up (~5 s here).
DEFAULT_MAX_SURGE_PERCENT = 100
# How many requests one replica holds at once (Serve's default, 5, would cap a batch at 5).
MAX_ONGOING_REQUESTS = 64

# The settings reconfigure() accepts (Serve's user_config).
RECONFIGURE_KEYS = ("checkpoint", "batching", "max_batch_size", "batch_wait_timeout_s")

# Trainer settings for restoring a policy to serve: act in this process, no evaluation workers.
_SERVING_OVERRIDES = {
    "num_workers": 0,
    "evaluation_interval": None,
    "evaluation_num_workers": 0,
}


class BadRequest(ValueError):
    """A request the policy cannot answer; ``status`` is the HTTP status to send back (4xx)."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


class ServedPolicy:
    """A course_lib checkpoint's policy, ready to answer observations.

    ``ServedPolicy(checkpoint_dir)`` rebuilds the trainer the checkpoint was written by (its
    config from the params.json beside the checkpoint), restores it, and keeps its policy and
    observation filter; the trainer itself is stopped. Actions are greedy (``explore=False``), so
    the same observation always gets the same action.
    """

    def __init__(self, checkpoint_dir, policy_id: str = "default_policy"):
        from course_lib.agents import get_trainer_class
        from course_lib.agents.checkpoint import load_metadata, training_config

        checkpoint_dir = os.path.abspath(os.path.expanduser(os.fspath(checkpoint_dir)))
        metadata = load_metadata(checkpoint_dir)  # a clear error for a folder that is not one
        trainer_cls = get_trainer_class(metadata["trainer"])
        config = {**training_config(checkpoint_dir, trainer_cls), **_SERVING_OVERRIDES}
        config["env"] = config.get("env") or metadata.get("env")
        # The trainer writes a results folder; a served policy has no use for it.
        logdir = tempfile.mkdtemp(prefix="course-lib-serve-")
        config["logger_config"] = {"logdir": logdir}
        try:
            trainer = trainer_cls(config=config)
            try:
                with quiet_logger("ray.tune.trainable"):
                    trainer.restore(checkpoint_dir)
                self.policy = trainer.get_policy(policy_id)
                self._filter = trainer.workers.local_worker().filters[policy_id]
                self._filtered = trainer.config["observation_filter"] != "NoFilter"
                # Box actions: answered in the env's units, as rollout workers send them to
                # env.step (normalize_actions / clip_actions, lesson 16).
                self._action_config = {
                    key: trainer.config.get(key) for key in ("normalize_actions", "clip_actions")
                }
            finally:
                trainer.stop()
        finally:
            shutil.rmtree(logdir, ignore_errors=True)
        self.checkpoint_dir = checkpoint_dir
        self.trainer_name = metadata["trainer"]
        self.iteration = int(metadata.get("iteration", 0))
        self.observation_space = self.policy.observation_space
        self.action_space = self.policy.action_space
        if not isinstance(self.observation_space, (gym.spaces.Box, gym.spaces.Discrete)):
            raise ValueError(
                f"course_lib.serving answers Box or Discrete observations as JSON; this policy "
                f"observes {self.observation_space}. Flatten the observation in a wrapper "
                "(gymnasium.wrappers.FlattenObservation) and train on that."
            )

    def __repr__(self) -> str:
        return (
            f"ServedPolicy({self.trainer_name}, iteration {self.iteration}, "
            f"{os.path.basename(self.checkpoint_dir)})"
        )

    @property
    def name(self) -> str:
        """The checkpoint's folder name, e.g. ``checkpoint_000004``: answers carry it."""
        return os.path.basename(self.checkpoint_dir)

    def parse_request(self, body: bytes | str) -> np.ndarray:
        """The observation in a request body ``{"observation": [...]}``, checked against the
        policy's observation space; anything else raises ``BadRequest`` with the HTTP status."""
        return parse_observation(body, self.observation_space)

    def act(self, observations) -> list[dict]:
        """Answer a batch of observations (first axis: one per request) with one forward pass.

        Each answer is ``{"action", "action_logp"}``, plus ``"value"`` when the policy has a value
        function, all as plain JSON numbers. ``action_logp`` is the log-probability of the chosen
        (greedy) action under the policy's action distribution: how sure the policy is (for a
        discrete action 0 means certain; for a Box action it is a log-density). The greedy
        sampler's own log-probability would always be 0. A Box action is answered ready for
        ``env.step``: mapped from the policy's [-1, 1] onto the env's bounds when the checkpoint's
        config says ``normalize_actions`` (clipped with ``clip_actions``), as rollout workers do.
        """
        obs = np.asarray(observations, dtype=self.observation_space.dtype)
        if self._filtered:
            obs = self._filter(obs, update=False)
        actions, _, fetches = self.policy.compute_actions(obs, explore=False)
        logps = self._logps(actions, fetches)
        values = fetches.get(SampleBatch.VF_PREDS)
        env_actions = to_env_actions(actions, self.policy, self._action_config)
        answers = []
        for i, action in enumerate(env_actions):
            answer = {"action": np.asarray(action).tolist()}
            if logps is not None:
                answer["action_logp"] = float(logps[i])
            if values is not None:
                answer["value"] = float(values[i])
            answers.append(answer)
        return answers

    def _logps(self, actions, fetches):
        dist_inputs = fetches.get(SampleBatch.ACTION_DIST_INPUTS)
        if dist_inputs is None or getattr(self.policy, "dist_class", None) is None:
            return fetches.get(SampleBatch.ACTION_LOGP)
        with torch.no_grad():
            dist = self.policy.dist_class(torch.as_tensor(dist_inputs), self.policy.model)
            return dist.logp(torch.as_tensor(actions)).numpy()


@contextlib.contextmanager
def quiet_logger(logger_name: str):
    """Raise one logger to warnings for the duration: Tune's Trainable logs every restore at
    INFO, and the Serve client logs each deployment step; the notebook says the same, readably."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def parse_observation(body: bytes | str, observation_space: gym.Space) -> np.ndarray:
    """The observation of a JSON request body ``{"observation": [...]}``, or ``BadRequest``.

    A body that is not JSON gets 400 (Bad Request); JSON that is not an observation of
    ``observation_space`` (missing key, text instead of numbers, wrong shape, NaN, outside the
    space's bounds) gets 422 (Unprocessable Content). The message says what was expected.
    """
    example = _example_body(observation_space)
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise BadRequest(
            f"The request body is not JSON ({error.__class__.__name__}: {error}). Send a JSON "
            f"object such as {example} with the header Content-Type: application/json.",
            status=400,
        ) from None
    if not isinstance(payload, dict) or "observation" not in payload:
        found = sorted(payload) if isinstance(payload, dict) else type(payload).__name__
        raise BadRequest(
            f'Expected a JSON object with the key "observation", such as {example}; got {found}.'
        )
    raw = payload["observation"]
    if isinstance(observation_space, gym.spaces.Discrete):
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise BadRequest(
                f'"observation" must be a whole number from {observation_space.start} to '
                f"{observation_space.start + observation_space.n - 1}; got {raw!r:.60}."
            )
        low, high = observation_space.start, observation_space.start + observation_space.n - 1
        if not low <= raw <= high:
            raise BadRequest(
                f'"observation" {raw!r:.40} is outside the observation space {observation_space}; '
                f"send a whole number from {low} to {high}."
            )
        observation = np.int64(raw)
    else:
        observation = _box_observation(raw, observation_space, example)
    if not observation_space.contains(observation):
        raise BadRequest(
            f'"observation" {np.asarray(raw).tolist()!r:.120} is outside the observation space '
            f"{observation_space}; send values within its bounds."
        )
    return observation


def _box_observation(raw, space: gym.spaces.Box, example: str) -> np.ndarray:
    shape_text = f"shape {tuple(space.shape)} ({math.prod(space.shape)} numbers)"
    if not _only_numbers(raw):
        raise BadRequest(
            f'"observation" must hold only numbers, {shape_text}, such as {example}; '
            f"got {raw!r:.80}."
        )
    try:
        observation = np.asarray(raw, dtype=np.float64)
    except (ValueError, OverflowError):
        # Ragged lists ([[1, 2], [3]]) and integers beyond any float.
        raise BadRequest(
            f'"observation" must be a regular array of numbers that fit in a float, {shape_text}, '
            f"such as {example}; got {raw!r:.80}."
        ) from None
    if observation.shape != space.shape:
        raise BadRequest(
            f'"observation" has shape {observation.shape}; this policy expects {shape_text}, '
            f"such as {example}."
        )
    # Checked after the cast: 1e39 is finite as a float64 but infinite as a float32.
    with np.errstate(over="ignore", invalid="ignore"):
        observation = observation.astype(space.dtype)
    if not np.all(np.isfinite(observation)):
        raise BadRequest(
            f'"observation" holds NaN or infinity, or a number too large for {space.dtype}; '
            "send finite numbers."
        )
    return observation


def _only_numbers(value) -> bool:
    """A number, or (nested) lists of numbers; booleans and text are not numbers here."""
    if isinstance(value, list):
        return all(_only_numbers(v) for v in value)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _example_body(space: gym.Space) -> str:
    if isinstance(space, gym.spaces.Discrete):
        return json.dumps({"observation": int(space.start)})
    example = np.zeros(space.shape).tolist() if isinstance(space, gym.spaces.Box) else 0
    return json.dumps({"observation": example})


# --- the Serve deployment -------------------------------------------------------------------


@serve.deployment(
    ray_actor_options={"num_cpus": DEFAULT_REPLICA_CPUS},
    max_ongoing_requests=MAX_ONGOING_REQUESTS,
    max_surge_percent=DEFAULT_MAX_SURGE_PERCENT,
)
class PolicyDeployment:
    """POST ``{"observation": [...]}`` → ``{"action", "action_logp", "value", "checkpoint",
    "iteration", "batch_size"}``; bad input gets 400/422 with ``{"error": message}``.

    The checkpoint comes as ``PolicyDeployment.bind(checkpoint)`` or in Serve's ``user_config``,
    whose settings ``reconfigure`` applies without restarting the replica: ``checkpoint`` (a new
    checkpoint to serve), ``batching``, ``max_batch_size``, ``batch_wait_timeout_s``.
    """

    def __init__(self, checkpoint: str | None = None):
        self.served = ServedPolicy(checkpoint) if checkpoint is not None else None
        self.batching = True

    def reconfigure(self, config: dict) -> None:
        """Apply new settings. A new checkpoint is loaded first and then swapped in with one
        assignment, so every request is answered whole by the old policy or by the new one."""
        if not isinstance(config, dict):
            raise TypeError(f"user_config must be a dict; got {type(config).__name__}.")
        unknown = sorted(set(config) - set(RECONFIGURE_KEYS))
        if unknown:
            raise ValueError(
                f"Unknown setting(s) {unknown} for PolicyDeployment; the settings are "
                f"{list(RECONFIGURE_KEYS)}."
            )
        checkpoint = config.get("checkpoint")
        if checkpoint is not None and (
            self.served is None
            or os.path.abspath(os.path.expanduser(checkpoint)) != self.served.checkpoint_dir
        ):
            self.served = ServedPolicy(checkpoint)
        self.batching = bool(config.get("batching", self.batching))
        if "max_batch_size" in config:
            self.act_batched.set_max_batch_size(int(config["max_batch_size"]))
        if "batch_wait_timeout_s" in config:
            self.act_batched.set_batch_wait_timeout_s(float(config["batch_wait_timeout_s"]))

    @serve.batch(max_batch_size=DEFAULT_MAX_BATCH_SIZE, batch_wait_timeout_s=DEFAULT_BATCH_WAIT_S)
    async def act_batched(self, observations: list[np.ndarray]) -> list[dict]:
        """Many requests' observations, one forward pass: ``@serve.batch`` gathers the
        observations of concurrent calls into the list and hands each caller its answer."""
        served = self.served  # one policy for the whole batch, even while a new one loads
        answers = served.act(np.stack(observations))
        return [_tagged(answer, served, len(observations)) for answer in answers]

    async def __call__(self, request: Request) -> JSONResponse:
        served = self.served
        if served is None:
            return JSONResponse(
                {
                    "error": "No checkpoint loaded: deploy with PolicyDeployment.bind(checkpoint) "
                    "or user_config={'checkpoint': ...}."
                },
                status_code=503,
            )
        try:
            observation = served.parse_request(await request.body())
        except BadRequest as error:
            return JSONResponse({"error": str(error)}, status_code=error.status)
        if self.batching:
            answer = await self.act_batched(observation)
        else:
            answer = _tagged(served.act(observation[None])[0], served, 1)
        return JSONResponse(answer)


def _tagged(answer: dict, served: ServedPolicy, batch_size: int) -> dict:
    """An answer with what served it: the checkpoint, its iteration and the batch's size."""
    return {
        **answer,
        "checkpoint": served.name,
        "iteration": served.iteration,
        "batch_size": batch_size,
    }


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on now (for tests, which must not collide with a lesson)."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def start_serve(port: int = DEFAULT_PORT, host: str = "127.0.0.1") -> str:
    """Start Ray Serve's HTTP proxy on ``host:port`` (once per Ray instance); returns its URL.

    Serve keeps the port it started with until ``serve.shutdown()``; asking for another one
    while it runs is an error that says so.
    """
    import ray

    if not ray.is_initialized():
        raise RuntimeError("Ray Serve runs on Ray: call course_lib.init_ray() first.")
    running = _running_http_options()
    if running is not None:
        if (running.host, running.port) != (host, port):
            raise RuntimeError(
                f"Ray Serve already listens on {running.host}:{running.port} in this Ray "
                f"instance. Use port={running.port}, or call ray.serve.shutdown() first to "
                f"start it on {host}:{port}."
            )
        return f"http://{host}:{port}"
    if not port_is_free(port, host):
        raise RuntimeError(
            f"Port {port} on {host} is in use by another program (or another notebook's Ray "
            "Serve). Stop it, or pass another port, e.g. port=course_lib.serving.free_port()."
        )
    with quiet_logger("ray.serve"):
        serve.start(http_options={"host": host, "port": port}, logging_config=QUIET_LOGS)
    return f"http://{host}:{port}"


def ensure_serve(port: int | None = None) -> str:
    """The URL of the Serve running in this Ray, started first if none runs: on ``port``, or on
    ``DEFAULT_PORT`` when that is free and another free port when not."""
    running = _running_http_options()
    if running is not None:
        return start_serve(running.port, running.host)
    if port is None:
        port = DEFAULT_PORT if port_is_free(DEFAULT_PORT) else free_port()
    return start_serve(port)


def _running_http_options():
    """The HTTP options of the Serve instance running in this Ray, or None when none runs."""
    from ray.serve._private.api import _get_global_client
    from ray.serve.exceptions import RayServeException

    try:
        client = _get_global_client(raise_if_no_controller_running=True)
    except RayServeException:
        return None
    return client.http_config


def serve_policy(
    checkpoint,
    *,
    port: int = DEFAULT_PORT,
    route_prefix: str = DEFAULT_ROUTE,
    name: str = DEFAULT_APP,
    batching: bool = True,
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
    batch_wait_timeout_s: float = DEFAULT_BATCH_WAIT_S,
    num_replicas: int = 1,
    max_surge_percent: int = DEFAULT_MAX_SURGE_PERCENT,
) -> str:
    """Deploy ``checkpoint`` (a folder ``trainer.save()`` returned) and return its URL.

    Starts Serve on 127.0.0.1:``port`` if needed. Calling it again with the same ``name`` and
    another checkpoint or settings is a rolling update: with ``max_surge_percent=100`` the new
    replica starts and takes traffic before the old one stops, so requests keep being answered
    during the switch; with Serve's default, 0, the old replica stops first and requests wait.
    """
    from course_lib.agents.checkpoint import load_metadata

    checkpoint = os.path.abspath(os.path.expanduser(os.fspath(checkpoint)))
    load_metadata(checkpoint)  # fail here, not inside a replica that Serve retries
    if not route_prefix.startswith("/"):
        raise ValueError(f"route_prefix must start with '/', e.g. '/policy'; got {route_prefix!r}.")
    if int(max_batch_size) < 1:
        raise ValueError(f"max_batch_size must be at least 1; got {max_batch_size}.")
    if not 0 <= int(max_surge_percent) <= 100:
        raise ValueError(f"max_surge_percent must be from 0 to 100; got {max_surge_percent}.")
    url = start_serve(port)
    user_config = {
        "checkpoint": checkpoint,
        "batching": bool(batching),
        "max_batch_size": int(max_batch_size),
        "batch_wait_timeout_s": float(batch_wait_timeout_s),
    }
    # serve.run gives the application a new version each time, so a second call is a rolling
    # update: with max_surge_percent > 0 Serve starts the new replicas, sends them traffic once
    # they are healthy, and only then drains and stops the old ones. (A config file deployed with
    # `serve deploy` that changes only user_config is applied in place instead, by calling
    # reconfigure() on each replica.)
    app = PolicyDeployment.options(
        num_replicas=num_replicas,
        user_config=user_config,
        max_surge_percent=int(max_surge_percent),
    )
    with quiet_logger("ray.serve"):
        serve.run(app.bind(), name=name, route_prefix=route_prefix, logging_config=QUIET_LOGS)
    return url + route_prefix


# --- load generation ------------------------------------------------------------------------


@dataclass
class LoadResult:
    """What ``load_test`` / ``BackgroundLoad`` measured."""

    clients: int
    seconds: float
    latencies_ms: list[float] = field(repr=False, default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    # (seconds since the start, latency in ms, answer) for every successful request, in the order
    # the answers arrived.
    answers: list[tuple[float, float, dict]] = field(repr=False, default_factory=list)
    errors: list[str] = field(repr=False, default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.latencies_ms)

    @property
    def failures(self) -> int:
        return self.requests - self.statuses.get(200, 0)

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else float("nan")

    def latency_ms(self, percentile: float) -> float:
        return (
            float(np.percentile(self.latencies_ms, percentile)) if self.latencies_ms else math.nan
        )

    def row(self) -> dict:
        """One row of a results table."""
        return {
            "clients": self.clients,
            "requests": self.requests,
            "failed": self.failures,
            "requests/s": round(self.requests_per_s, 1),
            "p50 ms": round(self.latency_ms(50), 1),
            "p99 ms": round(self.latency_ms(99), 1),
            "mean batch": round(
                float(np.mean([a.get("batch_size", 1) for _, _, a in self.answers])), 1
            )
            if self.answers
            else math.nan,
        }


class BackgroundLoad:
    """``clients`` threads, each sending POST requests back to back until ``stop()``.

    ``observations`` are sent in turn (a list of JSON-able observations). Every answer, status
    and latency is recorded; a connection error counts as a failure with status 0.

    With ``requests_per_client`` each client stops after that many requests.
    Use as a context manager: ``with BackgroundLoad(url, obs, clients=8) as load: ...`` then
    ``load.result``.
    """

    def __init__(
        self,
        url: str,
        observations,
        clients: int = 8,
        *,
        requests_per_client: int | None = None,
        timeout_s: float = 30.0,
    ):
        if int(clients) < 1:
            raise ValueError(f"clients must be at least 1; got {clients}.")
        self.url = url
        self.observations = [np.asarray(o).tolist() for o in observations]
        if not self.observations:
            raise ValueError("observations is empty: pass at least one observation to send.")
        self.clients = int(clients)
        self.timeout_s = timeout_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.result: LoadResult | None = None
        if requests_per_client is not None and int(requests_per_client) < 1:
            raise ValueError(f"requests_per_client must be at least 1; got {requests_per_client}.")
        self.requests_per_client = requests_per_client

    def start(self) -> BackgroundLoad:
        self._result = LoadResult(clients=self.clients, seconds=0.0)
        self._begin = time.perf_counter()
        barrier = threading.Barrier(self.clients)
        self._threads = [
            threading.Thread(target=self._client, args=(i, barrier), daemon=True)
            for i in range(self.clients)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> LoadResult:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self._result.seconds = time.perf_counter() - self._begin
        self.result = self._result
        return self.result

    def elapsed(self) -> float:
        """Seconds since the clients started (the clock of ``LoadResult.answers``)."""
        return time.perf_counter() - self._begin

    def __enter__(self) -> BackgroundLoad:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _client(self, index: int, barrier: threading.Barrier) -> None:
        import requests

        session = requests.Session()
        sent = 0
        barrier.wait()
        while not self._stop.is_set():
            if self.requests_per_client is not None and sent >= self.requests_per_client:
                break
            observation = self.observations[(index + sent * self.clients) % len(self.observations)]
            sent += 1
            started = time.perf_counter()
            try:
                response = session.post(
                    self.url, json={"observation": observation}, timeout=self.timeout_s
                )
                status, answer = response.status_code, response.json()
            except (requests.RequestException, ValueError) as error:
                status, answer = 0, {"error": f"{error.__class__.__name__}: {error}"}
            finished = time.perf_counter()
            with self._lock:
                self._result.latencies_ms.append((finished - started) * 1000)
                self._result.statuses[status] += 1
                if status == 200:
                    latency_ms = (finished - started) * 1000
                    self._result.answers.append((finished - self._begin, latency_ms, answer))
                else:
                    self._result.errors.append(str(answer.get("error", answer))[:300])
        session.close()


def load_test(url: str, observations, clients: int, requests_per_client: int) -> LoadResult:
    """Send ``requests_per_client`` requests from each of ``clients`` concurrent threads (each
    waits for its answer before sending the next) and measure the whole run."""
    load = BackgroundLoad(url, observations, clients, requests_per_client=requests_per_client)
    load.start()
    for thread in load._threads:
        thread.join()
    return load.stop()
