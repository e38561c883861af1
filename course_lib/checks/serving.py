"""Grader for notebooks/18_serving.ipynb: a Ray Serve deployment that batches requests and
answers bad input with a 4xx.

The grader deploys your class on the running Ray Serve under its own route, calls its batched
method through a DeploymentHandle (one call, then many at once), then sends it real HTTP
requests, good and bad, and compares every action with the checkpoint's own policy. The
application is deleted afterwards, whatever happened.
"""

from __future__ import annotations

import concurrent.futures

import numpy as np

from ._common import CheckFailed, passed, require_ray
from ._learner_calls import call_learner

APP_NAME = "exercise-14-1"
ROUTE = "/exercise-14-1"
CONCURRENT_CALLS = 32
# Deploying starts a replica process that imports torch and restores the checkpoint: 5-15 s here.
DEPLOY_LIMIT_S = 180.0
CALL_LIMIT_S = 60.0
HINT = "an await on something that never finishes, or a replica that cannot start"


def _observations(space, n: int, seed: int = 0) -> np.ndarray:
    """``n`` observations inside ``space``, with unbounded dimensions kept to [-1, 1]."""
    rng = np.random.default_rng(seed)
    low = np.maximum(space.low, -1.0)
    high = np.minimum(space.high, 1.0)
    return rng.uniform(low, high, size=(n, *space.shape)).astype(space.dtype)


def _require_deployment(BatchedPolicy) -> None:
    from ray.serve.deployment import Deployment

    if isinstance(BatchedPolicy, Deployment):
        return
    if isinstance(BatchedPolicy, type):
        raise CheckFailed(
            "18.1",
            f"{BatchedPolicy.__name__} is a plain Python class. Put @serve.deployment(...) on "
            f"the line above `class {BatchedPolicy.__name__}` so that Serve can run it.",
        )
    raise TypeError(
        "check_batched_deployment() expects your deployment class (decorated with "
        f"@serve.deployment), e.g. checks.check_batched_deployment(BatchedPolicy, checkpoint); "
        f"got {type(BatchedPolicy).__name__} {BatchedPolicy!r:.60}."
    )


def _deploy(BatchedPolicy, checkpoint):
    from ray import serve

    from course_lib.serving import QUIET_LOGS

    return serve.run(
        BatchedPolicy.bind(checkpoint), name=APP_NAME, route_prefix=ROUTE, logging_config=QUIET_LOGS
    )


def _off_the_event_loop(fn):
    """``fn()`` run in a thread of its own: a DeploymentResponse's ``result()`` refuses to block
    a thread that runs an asyncio event loop, and a notebook's main thread runs one."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn).result()


def _same_action(answer, expected: dict) -> bool:
    return isinstance(answer, dict) and answer.get("action") == expected["action"]


def check_batched_deployment(BatchedPolicy, checkpoint) -> None:
    """Exercise 18.1: ``BatchedPolicy`` answers concurrent requests in shared forward passes,
    with the checkpoint's greedy actions, and bad input with a 4xx and ``{"error": ...}``."""

    from course_lib.serving import ServedPolicy, ensure_serve, quiet_logger

    require_ray("check_batched_deployment")
    _require_deployment(BatchedPolicy)
    reference = ServedPolicy(checkpoint)
    observations = _observations(reference.observation_space, CONCURRENT_CALLS)
    expected = reference.act(observations)
    url = ensure_serve() + ROUTE
    # The Serve client logs each handle's start and each deployment step at INFO.
    with quiet_logger("ray.serve"):
        sizes = _check_deployed(BatchedPolicy, checkpoint, observations, expected, url)
    passed(
        "18.1",
        f"{CONCURRENT_CALLS} concurrent calls shared forward passes (largest batch "
        f"{max(sizes)}), every action matches the checkpoint's policy, and bad input gets "
        "400/422 with a message",
    )


def _check_deployed(BatchedPolicy, checkpoint, observations, expected, url) -> list[int]:
    import requests
    from ray import serve

    handle = call_learner(
        "18.1",
        "serve.run(BatchedPolicy.bind(checkpoint))",
        lambda: _deploy(BatchedPolicy, checkpoint),
        seconds=DEPLOY_LIMIT_S,
        hint="an __init__ that does not return, or one that fails (the replica's log above)",
    )
    try:
        first = call_learner(
            "18.1",
            "BatchedPolicy.predict(observation)",
            lambda: _off_the_event_loop(lambda: handle.predict.remote(observations[0]).result()),
            seconds=CALL_LIMIT_S,
            hint=HINT,
        )
        if not _same_action(first, expected[0]):
            raise CheckFailed(
                "18.1",
                f"predict() answered {first!r:.200} for one observation; expected a dict with "
                f'the policy\'s action {expected[0]["action"]!r} under "action". Return one '
                "answer per observation: self.served.act(np.stack(observations)) gives them "
                "in order.",
            )
        if "batch_size" not in first:
            raise CheckFailed(
                "18.1",
                "each answer should say how many requests shared its forward pass, under "
                '"batch_size": {**answer, "batch_size": len(observations)}.',
            )

        def many_at_once():
            responses = [handle.predict.remote(obs) for obs in observations]
            return _off_the_event_loop(lambda: [response.result() for response in responses])

        answers = call_learner(
            "18.1",
            f"{CONCURRENT_CALLS} concurrent BatchedPolicy.predict calls",
            many_at_once,
            seconds=CALL_LIMIT_S,
            hint=HINT,
        )
        wrong = [
            i
            for i, (a, e) in enumerate(zip(answers, expected, strict=True))
            if not _same_action(a, e)
        ]
        if wrong:
            i = wrong[0]
            raise CheckFailed(
                "18.1",
                f"{len(wrong)} of {CONCURRENT_CALLS} concurrent calls got another observation's "
                f"or a wrong action (call {i}: {answers[i]!r:.120}, expected action "
                f"{expected[i]['action']!r}). Answer the observations in the order they came: "
                "the i-th answer goes back to the i-th caller.",
            )
        sizes = [a.get("batch_size", 1) for a in answers]
        if max(sizes) <= 1:
            raise CheckFailed(
                "18.1",
                f"all {CONCURRENT_CALLS} concurrent calls were answered in batches of 1. Keep "
                "@serve.batch on predict (async def, taking a list), and leave the deployment's "
                "max_ongoing_requests above 1 so that a replica holds several requests at once.",
            )

        good = requests.post(url, json={"observation": observations[0].tolist()}, timeout=30)
        if good.status_code != 200:
            raise CheckFailed(
                "18.1",
                f"POST {ROUTE} with a good observation answered {good.status_code} "
                f"({good.text[:200]!r}); expected 200 with the answer as JSON. __call__ should "
                "parse the body with self.served.parse_request(await request.body()) and "
                "return await self.predict(observation).",
            )
        if not _same_action(good.json(), expected[0]):
            raise CheckFailed(
                "18.1",
                f"POST {ROUTE} answered {good.json()!r:.200}; expected the action "
                f'{expected[0]["action"]!r} under "action".',
            )
        bad_bodies = {
            "a body that is not JSON": (b"not json", 400),
            "an observation of the wrong shape": (b'{"observation": [1.0, 2.0]}', 422),
        }
        for what, (body, status) in bad_bodies.items():
            answer = requests.post(url, data=body, timeout=30)
            if answer.status_code != status:
                raise CheckFailed(
                    "18.1",
                    f"{what} got status {answer.status_code} ({answer.text[:160]!r}); expected "
                    f"{status}. Catch BadRequest around parse_request and return "
                    'JSONResponse({"error": str(error)}, status_code=error.status).',
                )
            try:
                message = answer.json().get("error")
            except (ValueError, AttributeError):
                message = None
            if not message:
                raise CheckFailed(
                    "18.1",
                    f'{what} got {status} but no JSON {{"error": ...}} that says what was '
                    f"wrong (got {answer.text[:160]!r}). Send str(error) back to the client.",
                )
        after = requests.post(url, json={"observation": observations[1].tolist()}, timeout=30)
        if after.status_code != 200:
            raise CheckFailed(
                "18.1",
                f"after the bad requests a good one got {after.status_code}: the deployment "
                "should keep serving after refusing bad input.",
            )
    finally:
        serve.delete(APP_NAME)
    return sizes
