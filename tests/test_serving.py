"""course_lib.serving (lesson 18) and its grader, exercise 17.1.

The unit tests parse request bodies, restore a tiny PPO checkpoint as a ``ServedPolicy`` and drive
``PolicyDeployment``'s class directly, without Ray. The slow tests start real Ray Serve on
127.0.0.1 (on a free port, never 8000, so that a lesson running beside the suite keeps its own) and
talk to it over HTTP with ``requests``: answers, bad bodies, batching, a hot swap under load and
the grader. Serve is shut down after the module.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import math
import socket
import time
from collections import Counter

import gymnasium as gym
import numpy as np
import pytest
import requests
from starlette.requests import Request

from course_lib import checks, serving
from course_lib.checks import serving as serving_check

PPO_CONFIG = {
    "env": "CartPole-v1",
    "seed": 0,
    "num_workers": 0,
    "train_batch_size": 256,
    "sgd_minibatch_size": 64,
    "model": {"fcnet_hiddens": [16]},
}
N_OBSERVATIONS = 64

BOX = gym.spaces.Box(-np.inf, np.inf, shape=(4,), dtype=np.float32)
BOUNDED_BOX = gym.spaces.Box(-1.0, 1.0, shape=(4,), dtype=np.float32)
DISCRETE = gym.spaces.Discrete(3)


def body(observation) -> str:
    return json.dumps({"observation": observation})


def close(a: float, b: float) -> bool:
    """One forward pass over a batch and one over a single row may differ in the last bits."""
    return math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-5)


def same_answer(answer: dict, expected: dict) -> bool:
    return (
        answer["action"] == expected["action"]
        and close(answer["action_logp"], expected["action_logp"])
        and close(answer["value"], expected["value"])
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Checkpoints A (iteration 1) and B (iteration 2) of one tiny PPO run, with the trainer's own
    greedy actions at each for the same observations (within CartPole's observation space)."""
    from course_lib.agents.ppo import PPOTrainer

    logdir = str(tmp_path_factory.mktemp("ppo"))
    trainer = PPOTrainer(config={**PPO_CONFIG, "logger_config": {"logdir": logdir}})
    try:
        space = trainer.get_policy().observation_space
        rng = np.random.default_rng(0)
        low, high = np.maximum(space.low, -1.0), np.minimum(space.high, 1.0)
        observations = rng.uniform(low, high, size=(N_OBSERVATIONS, 4)).astype(np.float32)

        def greedy_actions():
            return [int(trainer.compute_single_action(o, explore=False)) for o in observations]

        trainer.train()
        checkpoint_a = trainer.save()
        actions_a = greedy_actions()
        trainer.train()
        checkpoint_b = trainer.save()
        actions_b = greedy_actions()
    finally:
        trainer.stop()
    # Otherwise "the actions match" would say little.
    assert set(actions_a) == {0, 1}, f"all {N_OBSERVATIONS} greedy actions are {actions_a[0]}"
    return {
        "A": checkpoint_a,
        "B": checkpoint_b,
        "observations": observations,
        "actions": {"A": actions_a, "B": actions_b},
    }


@pytest.fixture(scope="module")
def served_a(trained):
    return serving.ServedPolicy(trained["A"])


# --- parse_observation ----------------------------------------------------------------------


def bad_request(text, space) -> serving.BadRequest:
    with pytest.raises(serving.BadRequest) as caught:
        print("accepted as", serving.parse_observation(text, space))
    return caught.value


def test_parse_observation_returns_a_float32_array():
    observation = serving.parse_observation(body([0.5, -1, 2.25, 1e6]), BOX)
    assert observation.dtype == np.float32
    np.testing.assert_array_equal(observation, np.array([0.5, -1, 2.25, 1e6], dtype=np.float32))
    # bytes, as Starlette's request.body() gives them
    np.testing.assert_array_equal(
        serving.parse_observation(body([0, 0, 0, 1]).encode(), BOX), [0, 0, 0, 1]
    )


@pytest.mark.parametrize("text", ["not json", "{'observation': [0, 0, 0, 0]}", b"\xff\xfe", ""])
def test_parse_observation_400_for_a_body_that_is_not_json(text):
    error = bad_request(text, BOX)
    assert error.status == 400
    assert "not JSON" in str(error)
    assert '{"observation": [0.0, 0.0, 0.0, 0.0]}' in str(error), "the message shows an example"


@pytest.mark.parametrize(
    "text", ['{"obs": [0, 0, 0, 0]}', "[0, 0, 0, 0]", '"observation"', "null", "{}"]
)
def test_parse_observation_422_without_the_observation_key(text):
    error = bad_request(text, BOX)
    assert error.status == 422
    assert 'the key "observation"' in str(error)


@pytest.mark.parametrize(
    "observation",
    [["a", "b", "c", "d"], [0, 0, 0, "1"], "0 0 0 0", {"x": 1}, [0, 0, None, 0], None],
)
def test_parse_observation_422_for_text_or_other_non_numbers(observation):
    error = bad_request(body(observation), BOX)
    assert error.status == 422
    assert "only numbers" in str(error)


@pytest.mark.parametrize("observation", [[True, 0, 0, 0], [0, 0, 0, False]])
def test_parse_observation_refuses_booleans(observation):
    error = bad_request(body(observation), BOX)
    assert error.status == 422
    assert "only numbers" in str(error)


@pytest.mark.parametrize(
    ("observation", "found"),
    [([1.0, 2.0], "(2,)"), ([], "(0,)"), ([[0, 0], [0, 0]], "(2, 2)"), (1.0, "()")],
)
def test_parse_observation_422_for_the_wrong_shape_names_the_expected_one(observation, found):
    error = bad_request(body(observation), BOX)
    assert error.status == 422
    assert f"has shape {found}" in str(error)
    assert "expects shape (4,)" in str(error)


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_parse_observation_422_for_nan_and_infinity(value):
    error = bad_request(f'{{"observation": [0, {value}, 0, 0]}}', BOX)
    assert error.status == 422
    assert "NaN or infinity" in str(error)


def test_parse_observation_422_outside_a_bounded_box():
    np.testing.assert_array_equal(
        serving.parse_observation(body([1, -1, 0.5, 0]), BOUNDED_BOX), [1, -1, 0.5, 0]
    )
    error = bad_request(body([0, 1.5, 0, 0]), BOUNDED_BOX)
    assert error.status == 422
    assert "outside the observation space" in str(error)


def test_parse_observation_discrete_takes_a_whole_number_within_the_space():
    for n in range(3):
        observation = serving.parse_observation(body(n), DISCRETE)
        assert observation == n
        assert DISCRETE.contains(observation)
    for wrong in [1.5, True, "a", [1], None, 2.0]:
        error = bad_request(body(wrong), DISCRETE)
        assert error.status == 422
        assert "whole number from 0 to 2" in str(error), wrong
    for outside in [5, -1, 3]:
        error = bad_request(body(outside), DISCRETE)
        assert error.status == 422
        assert "outside the observation space" in str(error)


@pytest.mark.parametrize(
    ("text", "space"),
    [
        ('{"observation": [[1, 2], [3]]}', BOX),  # ragged: numpy's ValueError
        ('{"observation": [%d, 0, 0, 0]}' % 10**400, BOX),  # OverflowError: int too large
        ('{"observation": %d}' % 10**30, DISCRETE),  # OverflowError: np.int64
        ('{"observation": [0, 1e39, 0, 0]}', BOX),  # finite float64, inf once cast to float32
    ],
    ids=["ragged", "huge-int-box", "huge-int-discrete", "float32-overflow"],
)
def test_parse_observation_422_for_what_numpy_cannot_hold(text, space):
    """Ragged lists and integers beyond a float or an int64 once raised ValueError/OverflowError
    (HTTP 500), and 1e39 became float32 infinity and was answered."""
    error = bad_request(text, space)
    assert error.status == 422


def test_parse_observation_400_for_json_nested_too_deep():
    error = bad_request("[" * 100_000, BOX)
    assert error.status == 400 and "not JSON" in str(error)


# --- ServedPolicy -----------------------------------------------------------------------------


def test_served_policy_refuses_a_folder_that_is_not_a_checkpoint(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises((FileNotFoundError, ValueError), match="checkpoint"):
        serving.ServedPolicy(tmp_path)
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        serving.ServedPolicy(tmp_path / "missing")


def test_served_policy_acts_as_the_trainer_did(trained, served_a):
    assert served_a.iteration == 1
    assert served_a.name == "checkpoint_000001"
    assert served_a.trainer_name == "PPO"
    assert "iteration 1" in repr(served_a)
    answers = served_a.act(trained["observations"])
    assert [a["action"] for a in answers] == trained["actions"]["A"]
    for answer in answers:
        assert set(answer) == {"action", "action_logp", "value"}
        assert type(answer["action"]) is int
        json.dumps(answer)  # plain JSON numbers

    served_b = serving.ServedPolicy(trained["B"])
    assert served_b.iteration == 2
    assert [a["action"] for a in served_b.act(trained["observations"])] == trained["actions"]["B"]


def test_served_policy_batching_does_not_change_the_answers(trained, served_a):
    observations = trained["observations"]
    batched = served_a.act(observations)
    one_by_one = [served_a.act(o[None])[0] for o in observations]
    assert len(batched) == len(observations)
    for together, alone in zip(batched, one_by_one, strict=True):
        assert same_answer(together, alone), (together, alone)


def test_action_logp_is_the_greedy_actions_log_probability(trained, served_a):
    logps = np.array([a["action_logp"] for a in served_a.act(trained["observations"])])
    assert np.all(logps <= 0)
    assert not np.all(logps == 0), "the greedy sampler's own log-probability is always 0"
    # Greedy = the most likely of CartPole's 2 actions, so its probability is at least 1/2.
    assert np.all(logps >= math.log(0.5) - 1e-6), logps.min()


@pytest.mark.parametrize("clip", [False, True])
def test_served_sac_answers_box_actions_in_the_envs_units(tmp_path, clip):
    """Pendulum's torque is in [-2, 2]; SAC acts in [-1, 1] (normalize_actions), so the served
    action is the policy's greedy action mapped onto the bounds, as trainer.compute_single_action
    and the rollout workers send it to env.step. With normalize_actions off and clip_actions on,
    the answer is the policy's own action clipped into the bounds."""
    from course_lib.agents.sac import SACTrainer

    config = {
        "env": "Pendulum-v1",
        "seed": 0,
        "actor_hiddens": [16],
        "critic_hiddens": [16],
        "logger_config": {"logdir": str(tmp_path / "logs")},
    }
    if clip:
        config.update(normalize_actions=False, clip_actions=True)
    trainer = SACTrainer(config=config)
    try:
        policy = trainer.get_policy()
        # Observations with large velocities push the tiny untrained actor's mean away from 0.
        rng = np.random.default_rng(1)
        observations = rng.uniform([-1, -1, -8], [1, 1, 8], size=(16, 3)).astype(np.float32)
        expected = [trainer.compute_single_action(o, explore=False) for o in observations]
        raw, _, _ = policy.compute_actions(observations, explore=False)
        checkpoint = trainer.save()
    finally:
        trainer.stop()
    served = serving.ServedPolicy(checkpoint)
    actions = np.array([answer["action"] for answer in served.act(observations)])
    assert actions.shape == (16, 1)
    np.testing.assert_allclose(actions, np.array(expected), rtol=1e-5, atol=1e-6)
    if clip:
        np.testing.assert_allclose(actions, np.clip(raw, -2.0, 2.0), rtol=1e-5, atol=1e-6)
    else:
        assert np.all(np.abs(raw) <= 1.0)
        np.testing.assert_allclose(actions, 2.0 * np.asarray(raw), rtol=1e-5, atol=1e-6)
    assert np.all(np.abs(actions) <= 2.0)
    assert np.ptp(actions) > 0.01, "every served action is the same: the test would say little"


def test_parse_request_uses_the_policys_space(served_a):
    np.testing.assert_array_equal(served_a.parse_request(body([0, 0, 0, 0])), [0, 0, 0, 0])
    with pytest.raises(serving.BadRequest, match=r"shape \(4,\)"):
        served_a.parse_request(body([0, 0]))
    with pytest.raises(serving.BadRequest, match="outside the observation space"):
        served_a.parse_request(body([10.0, 0, 0, 0]))  # CartPole: |x| <= 4.8


# --- PolicyDeployment's class, without Serve ----------------------------------------------


def post(deployment, data: bytes):
    """Call the deployment's __call__ as Serve would, with a Starlette request."""

    async def receive():
        return {"type": "http.request", "body": data, "more_body": False}

    request = Request({"type": "http", "method": "POST", "path": "/", "headers": []}, receive)
    response = asyncio.run(deployment(request))
    return response.status_code, json.loads(response.body)


def test_policy_deployment_reconfigure(trained):
    deployment = serving.PolicyDeployment.func_or_class(trained["A"])
    assert deployment.served.iteration == 1
    assert deployment.batching is True

    with pytest.raises(ValueError, match="Unknown setting") as caught:
        deployment.reconfigure({"checkpoint": trained["B"], "max_batch": 4})
    assert "'max_batch'" in str(caught.value)
    for key in serving.RECONFIGURE_KEYS:
        assert f"'{key}'" in str(caught.value)
    assert deployment.served.iteration == 1, "a refused config changes nothing"

    with pytest.raises(TypeError, match="must be a dict"):
        deployment.reconfigure([("checkpoint", trained["B"])])
    with pytest.raises(TypeError, match="must be a dict"):
        deployment.reconfigure(trained["B"])

    deployment.reconfigure({"checkpoint": trained["B"]})
    assert deployment.served.iteration == 2
    assert deployment.served.checkpoint_dir == trained["B"]
    served_b = deployment.served
    deployment.reconfigure({"checkpoint": trained["B"], "batching": False})
    assert deployment.served is served_b, "the same checkpoint again is not reloaded"
    assert deployment.batching is False
    deployment.reconfigure({"max_batch_size": 4, "batch_wait_timeout_s": 0.01})
    assert deployment.batching is False, "settings left out keep their value"


def test_policy_deployment_answers_http_requests_unbatched(trained):
    deployment = serving.PolicyDeployment.func_or_class(trained["A"])
    deployment.reconfigure({"batching": False})  # @serve.batch needs a replica
    observation = trained["observations"][3]
    status, answer = post(deployment, body(observation.tolist()).encode())
    assert status == 200
    expected = serving.ServedPolicy(trained["A"]).act(observation[None])[0]
    assert same_answer(answer, expected)
    assert answer["action"] == trained["actions"]["A"][3]
    assert answer["checkpoint"] == "checkpoint_000001"
    assert answer["iteration"] == 1
    assert answer["batch_size"] == 1

    status, answer = post(deployment, b"not json")
    assert status == 400
    assert "not JSON" in answer["error"]
    status, answer = post(deployment, body([1.0, 2.0]).encode())
    assert status == 422
    assert "(4,)" in answer["error"]


def test_policy_deployment_without_a_checkpoint_answers_503():
    deployment = serving.PolicyDeployment.func_or_class()
    assert deployment.served is None
    status, answer = post(deployment, body([0, 0, 0, 0]).encode())
    assert status == 503
    assert "No checkpoint loaded" in answer["error"]


# --- serve_policy's checks before Serve, ports, load generation -----------------------------


def test_serve_policy_checks_its_arguments_before_starting_serve(trained, tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        serving.serve_policy(tmp_path, port=serving.free_port())
    with pytest.raises(ValueError, match="route_prefix must start with '/'"):
        serving.serve_policy(trained["A"], port=serving.free_port(), route_prefix="policy")
    with pytest.raises(ValueError, match="max_batch_size must be at least 1"):
        serving.serve_policy(trained["A"], port=serving.free_port(), max_batch_size=0)


def test_free_port_and_port_is_free():
    port = serving.free_port()
    assert port != serving.DEFAULT_PORT
    assert serving.port_is_free(port)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        assert not serving.port_is_free(port)


def test_load_result_row():
    result = serving.LoadResult(
        clients=2,
        seconds=2.0,
        latencies_ms=[10.0, 20.0, 30.0, 40.0],
        statuses=Counter({200: 3, 422: 1}),
        answers=[(0.1, 10.0, {"batch_size": 2}), (0.2, 20.0, {"batch_size": 4}), (0.3, 30.0, {})],
    )
    assert result.requests == 4
    assert result.failures == 1
    assert result.requests_per_s == 2.0
    assert result.row() == {
        "clients": 2,
        "requests": 4,
        "failed": 1,
        "requests/s": 2.0,
        "p50 ms": 25.0,
        "p99 ms": 39.7,
        "mean batch": 2.3,  # (2 + 4 + 1) / 3: an answer without batch_size counts as 1
    }
    empty = serving.LoadResult(clients=1, seconds=0.0)
    row = empty.row()
    assert row["requests"] == 0 and row["failed"] == 0
    assert math.isnan(row["requests/s"]) and math.isnan(row["p50 ms"])
    assert math.isnan(row["mean batch"])


def test_background_load_checks_its_arguments():
    url = "http://127.0.0.1:1/policy"
    with pytest.raises(ValueError, match="clients must be at least 1"):
        serving.BackgroundLoad(url, [[0, 0, 0, 0]], clients=0)
    with pytest.raises(ValueError, match="observations is empty"):
        serving.BackgroundLoad(url, [], clients=2)
    with pytest.raises(ValueError, match="requests_per_client must be at least 1"):
        serving.BackgroundLoad(url, [[0, 0, 0, 0]], clients=2, requests_per_client=0)


def test_load_test_counts_refused_connections_as_failures():
    url = f"http://127.0.0.1:{serving.free_port()}/policy"  # nobody listens
    result = serving.load_test(url, [[0, 0, 0, 0]], clients=2, requests_per_client=3)
    assert result.requests == 6
    assert result.statuses == Counter({0: 6})
    assert result.failures == 6
    assert result.answers == []
    assert len(result.errors) == 6 and "ConnectionError" in result.errors[0]
    assert result.row()["failed"] == 6


def test_grader_refuses_a_plain_class(ray_session):
    class BatchedPolicy:
        def __init__(self, checkpoint):
            pass

    with pytest.raises(checks.CheckFailed, match=r"plain Python class.*@serve\.deployment"):
        checks.check_batched_deployment(BatchedPolicy, "unused")


# --- real Ray Serve over HTTP (slow: each deployment starts a replica process) --------------


@pytest.fixture(scope="module")
def serve_port(ray_session):
    """Serve's HTTP proxy on 127.0.0.1 on a free port, shut down after the module."""
    from ray import serve

    port = serving.free_port()
    assert serving.start_serve(port) == f"http://127.0.0.1:{port}"
    try:
        yield port
    finally:
        serve.shutdown()


@pytest.fixture(scope="module")
def policy_url(serve_port, trained):
    """Checkpoint A deployed with batching (the defaults) under /policy."""
    return serving.serve_policy(trained["A"], port=serve_port)


def expected_a(trained) -> list[dict]:
    return serving.ServedPolicy(trained["A"]).act(trained["observations"])


@pytest.mark.slow
def test_serve_answers_good_and_bad_requests(trained, serve_port, policy_url):
    assert policy_url == f"http://127.0.0.1:{serve_port}/policy"
    expected = expected_a(trained)
    observation = trained["observations"][5].tolist()

    good = requests.post(policy_url, json={"observation": observation}, timeout=30)
    assert good.status_code == 200, good.text
    answer = good.json()
    assert same_answer(answer, expected[5])
    assert answer["action"] == trained["actions"]["A"][5]
    assert answer["checkpoint"] == "checkpoint_000001"
    assert answer["iteration"] == 1
    assert answer["batch_size"] >= 1

    bad_bodies = [
        (b"not json", 400, "not JSON"),
        (body([1.0, 2.0]).encode(), 422, "(4,)"),
        (body(["a", "b", "c", "d"]).encode(), 422, "only numbers"),
        (body([0, float("nan"), 0, 0]).encode(), 422, "NaN"),
        (body([10.0, 0, 0, 0]).encode(), 422, "outside the observation space"),
    ]
    for data, status, words in bad_bodies:
        response = requests.post(policy_url, data=data, timeout=30)
        assert response.status_code == status, (data, response.text)
        assert words in response.json()["error"], data

    after = requests.post(policy_url, json={"observation": observation}, timeout=30)
    assert after.status_code == 200
    assert after.json()["action"] == answer["action"]


@pytest.mark.slow
def test_serve_batches_concurrent_requests(trained, serve_port, policy_url):
    expected = expected_a(trained)
    observations = trained["observations"]

    # Each client knows what it sent, so a batch that mixed up its answers would show here.
    def client(start):
        session = requests.Session()
        got = []
        for k in range(8):
            i = (start + 16 * k) % len(observations)
            response = session.post(
                policy_url, json={"observation": observations[i].tolist()}, timeout=30
            )
            got.append((i, response.status_code, response.json()))
        session.close()
        return got

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        results = [r for rs in pool.map(client, range(16)) for r in rs]
    assert len(results) == 128
    for i, status, answer in results:
        assert status == 200, answer
        assert same_answer(answer, expected[i]), (i, answer, expected[i])
    assert max(answer["batch_size"] for _, _, answer in results) > 1

    result = serving.load_test(policy_url, observations[:8], clients=16, requests_per_client=8)
    assert result.requests == 128
    assert result.failures == 0, result.errors[:3]
    assert result.statuses == Counter({200: 128})
    assert result.row()["failed"] == 0
    assert result.row()["mean batch"] > 1
    # Answers carry no observation: each must be the answer to one of the 8 that were sent.
    values = np.array([e["value"] for e in expected[:8]])
    assert np.min(np.abs(values[:, None] - values[None, :]) + np.eye(8)) > 1e-3
    answered = set()
    for _, _, answer in result.answers:
        j = int(np.argmin(np.abs(values - answer["value"])))
        assert same_answer(answer, expected[j]), (answer, expected[j])
        answered.add(j)
    assert answered == set(range(8))


@pytest.mark.slow
def test_serve_without_batching_answers_one_by_one(trained, serve_port):
    from ray import serve

    url = serving.serve_policy(
        trained["A"], port=serve_port, name="unbatched", route_prefix="/unbatched", batching=False
    )
    try:
        assert url.endswith("/unbatched")
        observation = trained["observations"][7]
        result = serving.load_test(url, [observation], clients=16, requests_per_client=4)
        assert result.failures == 0, result.errors[:3]
        assert result.statuses == Counter({200: 64})
        assert [a["batch_size"] for _, _, a in result.answers] == [1] * 64
        assert result.row()["mean batch"] == 1.0
        assert {a["action"] for _, _, a in result.answers} == {trained["actions"]["A"][7]}
    finally:
        serve.delete("unbatched")


@pytest.mark.slow
def test_serve_hot_swaps_the_checkpoint_under_load(trained, serve_port):
    from ray import serve

    url = serving.serve_policy(trained["A"], port=serve_port, name="swap", route_prefix="/swap")
    try:
        with serving.BackgroundLoad(url, trained["observations"][:8], clients=4) as load:
            time.sleep(0.5)
            swap_started = load.elapsed()
            assert (
                serving.serve_policy(
                    trained["B"], port=serve_port, name="swap", route_prefix="/swap"
                )
                == url
            )
            swap_done = load.elapsed()
            time.sleep(1.0)
        result = load.result
        assert result.failures == 0, result.errors[:3]
        assert result.statuses == Counter({200: result.requests})
        iterations = [a["iteration"] for _, _, a in result.answers]
        assert iterations[0] == 1
        assert iterations[-1] == 2
        assert set(iterations) == {1, 2}
        assert any(swap_started < t < swap_done for t, _, _ in result.answers), (
            "requests were answered while the new replica started"
        )
        checkpoints = {a["iteration"]: a["checkpoint"] for _, _, a in result.answers}
        assert checkpoints == {1: "checkpoint_000001", 2: "checkpoint_000002"}
    finally:
        serve.delete("swap")


@pytest.mark.slow
def test_start_serve_keeps_its_port(serve_port):
    assert not serving.port_is_free(serve_port)
    url = f"http://127.0.0.1:{serve_port}"
    assert serving.start_serve(serve_port) == url
    assert serving.ensure_serve() == url
    other = serving.free_port()
    with pytest.raises(RuntimeError, match=rf"already listens on 127\.0\.0\.1:{serve_port}"):
        serving.start_serve(other)
    assert serving.port_is_free(other), "no second proxy was started"


def batched_policy_class():
    """The solution of exercise 18.1 (solutions/18_serving.ipynb)."""
    from ray import serve
    from starlette.responses import JSONResponse

    from course_lib.serving import BadRequest, ServedPolicy

    @serve.deployment(max_ongoing_requests=64, ray_actor_options={"num_cpus": 0.5})
    class BatchedPolicy:
        def __init__(self, checkpoint):
            self.served = ServedPolicy(checkpoint)

        @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.005)
        async def predict(self, observations):
            answers = self.served.act(np.stack(observations))
            return [{**answer, "batch_size": len(observations)} for answer in answers]

        async def __call__(self, request: Request):
            try:
                observation = self.served.parse_request(await request.body())
            except BadRequest as error:
                return JSONResponse({"error": str(error)}, status_code=error.status)
            return JSONResponse(await self.predict(observation))

    return BatchedPolicy


def one_by_one_policy_class():
    """Right answers, but each call is its own forward pass: no @serve.batch."""
    from ray import serve
    from starlette.responses import JSONResponse

    from course_lib.serving import BadRequest, ServedPolicy

    @serve.deployment(max_ongoing_requests=64, ray_actor_options={"num_cpus": 0.5})
    class BatchedPolicy:
        def __init__(self, checkpoint):
            self.served = ServedPolicy(checkpoint)

        async def predict(self, observation):
            return {**self.served.act(np.asarray(observation)[None])[0], "batch_size": 1}

        async def __call__(self, request: Request):
            try:
                observation = self.served.parse_request(await request.body())
            except BadRequest as error:
                return JSONResponse({"error": str(error)}, status_code=error.status)
            return JSONResponse(await self.predict(observation))

    return BatchedPolicy


def grader_app_is_gone():
    from ray import serve

    return serving_check.APP_NAME not in serve.status().applications


@pytest.mark.slow
def test_grader_accepts_the_solution(trained, serve_port, capsys):
    checks.check_batched_deployment(batched_policy_class(), trained["A"])
    out = capsys.readouterr().out
    assert "✔ Exercise 18.1 passed" in out
    assert "every action matches" in out
    assert grader_app_is_gone()
    assert not serving.port_is_free(serve_port), "the grader used the running Serve"


@pytest.mark.slow
def test_grader_detects_batches_of_one(trained, serve_port):
    with pytest.raises(checks.CheckFailed, match=r"answered in batches of 1.*@serve\.batch"):
        checks.check_batched_deployment(one_by_one_policy_class(), trained["A"])
    assert grader_app_is_gone()
