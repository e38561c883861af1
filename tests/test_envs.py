"""Specification of course_lib.envs: registry, example envs, wrappers and the env checker."""

import pickle
import sys
import time

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces

from course_lib.envs import (
    ClipReward,
    Corridor,
    EnvCheckError,
    EnvContext,
    MyEnv,
    OneHotObservation,
    SlowEnv,
    check_env,
    get_env_creator,
    make_env,
    register_env,
    registered_envs,
    registry,
)


@pytest.fixture(autouse=True)
def isolated_registry(monkeypatch):
    """Let each test register names without leaking them into the next test.

    A name registered while Ray Tune is loaded also reaches Tune's registry, which RLlib consults
    before gymnasium: a test that shadows "CartPole-v1" would hand every later RLlib test in this
    process the Corridor. Those names leave Tune's registry with the test too.
    """
    before = dict(registry._REGISTRY)
    monkeypatch.setattr(registry, "_REGISTRY", dict(before))
    yield
    if "ray.tune.registry" in sys.modules:
        from ray.tune.registry import ENV_CREATOR, _global_registry

        for name in set(registry._REGISTRY) - set(before):
            _global_registry.unregister(ENV_CREATOR, name)
        for name, creator in before.items():
            if registry._REGISTRY.get(name) is not creator:
                sys.modules["ray.tune.registry"].register_env(name, creator)


def run_episode(env, actions):
    """Play ``actions`` from a fresh reset; return (return, last terminated, last truncated)."""
    env.reset(seed=0)
    total, terminated, truncated = 0.0, False, False
    for action in actions:
        _, reward, terminated, truncated, _ = env.step(action)
        total += reward
    return total, terminated, truncated


# --- registry -----------------------------------------------------------------------------------


def test_course_envs_are_registered_at_import():
    assert {"Corridor", "MyEnv", "SlowCartPole"} <= set(registered_envs())


def test_make_env_passes_env_config_to_registered_creator():
    received = {}

    def creator(env_config):
        received["config"] = env_config
        return Corridor({"corridor_length": env_config["length"]})

    register_env("short_corridor", creator)
    env = make_env("short_corridor", {"length": 3})
    assert env.corridor_length == 3
    assert received["config"] == {"length": 3}
    assert isinstance(received["config"], EnvContext)


def test_make_env_wraps_env_config_in_env_context_with_indices():
    seen = []
    register_env("spy", lambda ctx: seen.append(ctx) or Corridor())
    make_env("spy")
    make_env("spy", {"a": 1}, worker_index=3, vector_index=2)
    assert (seen[0].worker_index, seen[0].vector_index) == (0, 0)
    assert (seen[1].worker_index, seen[1].vector_index, dict(seen[1])) == (3, 2, {"a": 1})


def test_make_env_keeps_indices_of_an_env_context_unless_overridden():
    seen = []
    register_env("spy", lambda ctx: seen.append(ctx) or Corridor())
    context = EnvContext({}, worker_index=4, vector_index=1)
    make_env("spy", context)
    make_env("spy", context, worker_index=5)
    assert (seen[0].worker_index, seen[0].vector_index) == (4, 1)
    assert (seen[1].worker_index, seen[1].vector_index) == (5, 1)


def test_env_context_survives_pickling_with_its_indices():
    context = pickle.loads(pickle.dumps(EnvContext({"x": 1}, worker_index=2, vector_index=1)))
    assert dict(context) == {"x": 1}
    assert (context.worker_index, context.vector_index) == (2, 1)


def test_env_context_rejects_negative_index():
    with pytest.raises(TypeError, match="worker_index must be an int >= 0"):
        EnvContext({}, worker_index=-1)


def test_make_env_builds_gymnasium_id_with_env_config_as_kwargs():
    env = make_env("CartPole-v1", {"max_episode_steps": 7})
    env.reset(seed=0)
    steps, truncated = 0, False
    while not truncated:
        _, _, terminated, truncated, _ = env.step(0 if steps % 2 else 1)
        steps += 1
        assert not terminated
    assert steps == 7


def test_make_env_calls_env_class_or_creator_function_with_env_config():
    assert make_env(Corridor, {"corridor_length": 8}).corridor_length == 8
    env = make_env(lambda config: Corridor({"max_episode_steps": config["steps"]}), {"steps": 9})
    assert env.max_episode_steps == 9


def test_myenv_name_and_alias_build_the_corridor():
    assert MyEnv is Corridor
    assert isinstance(make_env("MyEnv"), Corridor)


def test_reregistering_a_name_replaces_the_creator():
    register_env("mine", lambda config: Corridor({"corridor_length": 3}))
    register_env("mine", lambda config: Corridor({"corridor_length": 4}))
    assert make_env("mine").corridor_length == 4


def test_registering_a_gymnasium_id_warns_that_it_shadows_it():
    with pytest.warns(UserWarning, match="shadows the gymnasium env"):
        register_env("CartPole-v1", Corridor)
    assert isinstance(make_env("CartPole-v1"), Corridor)


def test_make_env_unknown_name_suggests_close_match():
    with pytest.raises(ValueError) as error:
        make_env("CartPol-v1")
    message = str(error.value)
    assert message.startswith("Unknown environment 'CartPol-v1'. Did you mean 'CartPole-v1'")
    assert (
        "Registered course envs: ['Corridor', 'MyEnv', 'SlowCartPole', 'SlowSimulator', "
        "'TrafficGrid']" in message
    )
    assert "Any gymnasium id also works" in message


def test_make_env_unknown_name_suggests_registered_course_env():
    with pytest.raises(ValueError, match="Did you mean 'Corridor'"):
        make_env("Coridor")


def test_make_env_unknown_name_without_close_match_only_lists_names():
    with pytest.raises(ValueError) as error:
        make_env("zzzz")
    assert "Did you mean" not in str(error.value)


def test_get_env_creator_returns_picklable_creator_for_gymnasium_id():
    creator = pickle.loads(pickle.dumps(get_env_creator("CartPole-v1")))
    assert creator({}).spec.id == "CartPole-v1"


@pytest.mark.parametrize(
    ("name", "creator", "message"),
    [
        ("", Corridor, "non-empty string name"),
        (42, Corridor, "non-empty string name"),
        ("bad", "not callable", "creator must be callable"),
    ],
)
def test_register_env_rejects_bad_inputs(name, creator, message):
    with pytest.raises(TypeError, match=message):
        register_env(name, creator)


def test_make_env_rejects_env_config_that_is_not_a_dict():
    with pytest.raises(TypeError, match="env_config must be a dict"):
        make_env("Corridor", [("corridor_length", 3)])


def test_make_env_rejects_a_spec_that_is_neither_name_nor_callable():
    with pytest.raises(TypeError, match="got 3 of type int"):
        make_env(3)


def test_make_env_explains_env_class_without_env_config_argument():
    class NoConfigEnv(Corridor):
        def __init__(self):
            super().__init__({})

    with pytest.raises(TypeError) as error:
        make_env(NoConfigEnv)
    assert "cannot be called with one argument, env_config" in str(error.value)
    assert "`__init__(self, env_config)`" in str(error.value)


def test_make_env_says_when_a_creator_returns_no_env():
    register_env("forgot_return", lambda config: None)
    with pytest.raises(TypeError, match="returned an object of type NoneType, not an environment"):
        make_env("forgot_return")


# --- Corridor and SlowEnv -------------------------------------------------------------------------


def test_corridor_reaches_goal_in_length_minus_one_right_moves():
    env = Corridor({"corridor_length": 5})
    obs, info = env.reset(seed=0)
    assert obs.tolist() == [0.0] and obs.dtype == np.float32 and info == {}
    total, terminated, truncated = run_episode(env, [1, 1, 1, 1])
    assert total == pytest.approx(3 * -0.1 + 1.0)
    assert (terminated, truncated) == (True, False)
    assert env.position == 4


def test_corridor_wall_stops_left_moves_at_zero():
    env = Corridor()
    env.reset()
    obs, reward, terminated, _, _ = env.step(0)
    assert obs.tolist() == [0.0] and reward == pytest.approx(-0.1) and not terminated


def test_corridor_truncates_at_max_episode_steps_without_terminating():
    env = Corridor({"corridor_length": 5, "max_episode_steps": 6})
    total, terminated, truncated = run_episode(env, [0] * 6)
    assert (terminated, truncated) == (False, True)
    assert total == pytest.approx(-0.6)


def test_corridor_goal_on_last_allowed_step_is_termination():
    env = Corridor({"corridor_length": 3, "max_episode_steps": 2})
    _, terminated, truncated = run_episode(env, [1, 1])
    assert (terminated, truncated) == (True, False)


@pytest.mark.parametrize(
    ("env_config", "message"),
    [
        ({"corridor_len": 3}, "key 'corridor_len' for Corridor. Did you mean 'corridor_length'"),
        ({"corridor_length": 1}, "'corridor_length'] must be an int >= 2"),
        ({"max_episode_steps": 0.5}, "'max_episode_steps'] must be an int >= 1"),
    ],
)
def test_corridor_rejects_bad_env_config(env_config, message):
    with pytest.raises(ValueError, match=message):
        Corridor(env_config)


def test_corridor_step_before_reset_says_to_reset():
    with pytest.raises(RuntimeError, match="call env.reset"):
        Corridor().step(1)


def test_slow_env_sleeps_delay_seconds_each_step(monkeypatch):
    naps = []
    monkeypatch.setattr(time, "sleep", naps.append)
    env = SlowEnv(Corridor(), delay=0.25, mode="sleep")
    env.reset()
    for _ in range(3):
        env.step(1)
    assert naps == [0.25, 0.25, 0.25]


def test_slow_env_busy_mode_polls_the_clock_until_the_delay_has_passed(monkeypatch):
    clock = {"now": 0.0, "reads": 0}

    def fake_perf_counter():
        clock["reads"] += 1
        clock["now"] += 0.001
        return clock["now"]

    monkeypatch.setattr(time, "perf_counter", fake_perf_counter)
    monkeypatch.setattr(time, "sleep", lambda seconds: pytest.fail("busy mode must not sleep"))
    env = SlowEnv(Corridor(), delay=0.01, mode="busy")
    env.reset()
    clock["reads"] = 0
    env.step(1)
    # One read to set the deadline, then one per busy iteration until 10 ms of fake time passed.
    assert clock["reads"] == 11


def test_slow_cartpole_reads_delay_and_mode_from_env_config():
    env = make_env("SlowCartPole", {"delay": 0.5, "mode": "busy"})
    assert (env.delay, env.mode) == (0.5, "busy")
    assert env.unwrapped.spec.id == "CartPole-v1"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"delay": -1}, "delay is a number of seconds >= 0"), ({"mode": "nap"}, "mode must be one")],
)
def test_slow_env_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SlowEnv(Corridor(), **kwargs)


# --- wrappers -------------------------------------------------------------------------------------


def test_one_hot_observation_encodes_discrete_states():
    env = OneHotObservation(gymnasium.make("FrozenLake-v1"))
    obs, _ = env.reset(seed=0)
    assert env.observation_space == spaces.Box(0.0, 1.0, shape=(16,), dtype=np.float32)
    assert obs.dtype == np.float32 and obs.tolist() == [1.0] + [0.0] * 15
    assert env.observation(5).tolist() == [0.0] * 5 + [1.0] + [0.0] * 10


class _DiscreteObsEnv(gymnasium.Env):
    """An env that only declares its spaces: enough to build a wrapper on."""

    def __init__(self, observation_space):
        self.observation_space = observation_space
        self.action_space = spaces.Discrete(2)


def test_one_hot_observation_respects_discrete_start():
    env = OneHotObservation(_DiscreteObsEnv(spaces.Discrete(3, start=-1)))
    assert env.observation(-1).tolist() == [1.0, 0.0, 0.0]
    assert env.observation(1).tolist() == [0.0, 0.0, 1.0]


def test_one_hot_observation_rejects_box_observation_space():
    with pytest.raises(TypeError, match="needs a Discrete observation space, but this env has Box"):
        OneHotObservation(Corridor())


def test_clip_reward_clips_into_low_high():
    env = ClipReward(Corridor(), low=-0.05, high=0.5)
    total, _, _ = run_episode(env, [0, 1, 1, 1, 1])
    assert total == pytest.approx(4 * -0.05 + 0.5)
    assert env.reward(-3) == -0.05 and env.reward(0.2) == 0.2 and isinstance(env.reward(7), float)


def test_clip_reward_rejects_low_not_below_high():
    with pytest.raises(ValueError, match="needs low < high, got low=1, high=-1. Did you swap them"):
        ClipReward(Corridor(), low=1, high=-1)


def test_clip_reward_rejects_non_numbers():
    with pytest.raises(TypeError, match="high must be a number"):
        ClipReward(Corridor(), high="1")


# --- check_env ------------------------------------------------------------------------------------


class _GoodEnv(gymnasium.Env):
    """A correct little env; each broken env below overrides one thing."""

    def __init__(self, env_config=None):
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.action_space = spaces.Discrete(2)
        self.t = 0

    def _obs(self):
        return self.np_random.uniform(-1, 1, size=2).astype(np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        return self._obs(), 1.0, False, self.t >= 10, {}


class _OldStepEnv(_GoodEnv):
    def step(self, action):
        return self._obs(), 1.0, False, {}


class _ResetWithoutInfoEnv(_GoodEnv):
    def reset(self, *, seed=None, options=None):
        return super().reset(seed=seed)[0]


class _ResetWithoutOptionsEnv(_GoodEnv):
    def reset(self, seed=None):
        return super().reset(seed=seed)


class _Float64ObsEnv(_GoodEnv):
    def _obs(self):
        return np.array([0.5, 0.5])


class _ListObsEnv(_GoodEnv):
    def _obs(self):
        return [0.5, 0.5]


class _OutOfBoundsObsEnv(_GoodEnv):
    def step(self, action):
        return np.array([0.0, 3.0], dtype=np.float32), 1.0, False, False, {}


class _IntTerminatedEnv(_GoodEnv):
    def step(self, action):
        obs, reward, _, truncated, info = super().step(action)
        return obs, reward, 0, truncated, info


class _UnseededResetEnv(_GoodEnv):
    def _obs(self):
        return np.random.uniform(-1, 1, size=2).astype(np.float32)


class _ArrayRewardEnv(_GoodEnv):
    def step(self, action):
        obs, _, terminated, truncated, info = super().step(action)
        return obs, np.array([1.0]), terminated, truncated, info


class _NoSpacesEnv(gymnasium.Env):
    def __init__(self, env_config=None):
        pass

    def reset(self, *, seed=None, options=None):
        return np.zeros(2, dtype=np.float32), {}


@pytest.mark.parametrize("spec", ["CartPole-v1", "Corridor", Corridor, _GoodEnv])
def test_check_env_passes_correct_envs(spec):
    report = check_env(spec, n_steps=60)
    assert report.steps == 60
    assert report.episodes_finished >= 1
    assert "Environment check passed" in str(report)


def test_check_env_report_counts_match_corridor_dynamics():
    report = check_env(Corridor({"corridor_length": 2}), n_steps=20, seed=3)
    # In a 2-cell corridor each right move ends an episode with +1 and each left move costs 0.1.
    rights = report.episodes_finished
    assert 0 < rights < 20
    assert report.mean_reward_per_step == pytest.approx((rights * 1.0 - (20 - rights) * 0.1) / 20)
    assert report.observation_space == spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)


@pytest.mark.parametrize(
    ("env_class", "expected"),
    [
        (_OldStepEnv, "step() returned 4 values (obs, reward, done, info): that is the old gym"),
        (_ResetWithoutInfoEnv, "reset() returned only an observation"),
        (_ResetWithoutOptionsEnv, "reset() does not accept the keyword argument(s) ['options']"),
        (
            _Float64ObsEnv,
            "reset() returned an observation of dtype float64 but observation_space has dtype "
            "float32; cast it with np.asarray(obs, dtype=np.float32)",
        ),
        (_ListObsEnv, "reset() returned an observation of type list ([0.5, 0.5]), but observation"),
        (
            _OutOfBoundsObsEnv,
            "step() returned an observation outside observation_space's bounds: at index (1,) "
            "the value is 3.0, but the space allows [-1.0, 1.0]",
        ),
        (_IntTerminatedEnv, "step() returned terminated=0 of type int; it must be a bool"),
        (_UnseededResetEnv, "reset(seed=0) returned different first observations on two calls"),
        (_ArrayRewardEnv, "step() returned the reward as a numpy array of shape (1,)"),
        (_NoSpacesEnv, "The env has no observation_space"),
    ],
)
def test_check_env_names_the_first_problem(env_class, expected):
    with pytest.raises(EnvCheckError) as error:
        check_env(env_class)
    assert expected in str(error.value)


def test_check_env_old_api_message_explains_terminated_and_truncated():
    with pytest.raises(ValueError) as error:  # EnvCheckError is a ValueError
        check_env(_OldStepEnv())
    message = str(error.value)
    assert "terminated: the episode reached a terminal state" in message
    assert "truncated: the episode was cut short from outside" in message


def test_check_env_rejects_bad_n_steps():
    with pytest.raises(TypeError, match="n_steps must be an int >= 1"):
        check_env("Corridor", n_steps=0)


def test_registered_envs_reach_tunes_registry_for_trial_processes(monkeypatch):
    from ray.tune.registry import ENV_CREATOR, _global_registry

    monkeypatch.setattr(
        registry, "_REGISTRY", dict(registry._REGISTRY)
    )  # the new name leaves with the test

    import course_lib.agents  # noqa: F401  (loads Tune and shares the envs registered so far)

    assert _global_registry.contains(ENV_CREATOR, "MyEnv")
    register_env("corridor_for_tune", lambda env_config: Corridor(env_config))
    assert _global_registry.contains(ENV_CREATOR, "corridor_for_tune")
