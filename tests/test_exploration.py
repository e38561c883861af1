"""Exploration strategies and schedules, alone and inside a policy (lesson 09)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from course_lib.exploration import (
    ConstantSchedule,
    EpsilonGreedy,
    Exploration,
    ExponentialSchedule,
    GaussianNoise,
    LinearSchedule,
    OrnsteinUhlenbeckNoise,
    PerWorkerEpsilonGreedy,
    PiecewiseSchedule,
    Random,
    SoftQ,
    StochasticSampling,
    from_config,
    make_schedule,
)
from course_lib.models import TorchCategorical, TorchDeterministic, TorchDiagGaussian
from course_lib.policy import PGTorchPolicy

DISCRETE = gym.spaces.Discrete(4)
BOX = gym.spaces.Box(np.array([-1.0, 0.0], np.float32), np.array([1.0, 2.0], np.float32))
OBS_SPACE = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
Q_VALUES = torch.tensor([[0.0, 2.0, 1.0, -1.0], [3.0, 0.0, 0.5, 0.1]])


def make(cls, action_space=DISCRETE, num_workers=0, worker_index=0, **kwargs):
    return cls(
        action_space,
        policy_config={},
        model=None,
        num_workers=num_workers,
        worker_index=worker_index,
        **kwargs,
    )


def act(exploration, dist, timestep, explore=True):
    return exploration.get_exploration_action(
        action_distribution=dist, timestep=timestep, explore=explore
    )


def repeated(rows: torch.Tensor, times: int) -> torch.Tensor:
    return rows.repeat(times, 1)


# --- schedules ------------------------------------------------------------------------------------


def test_linear_schedule_interpolates_then_stays_flat():
    schedule = LinearSchedule(100, final_p=0.1, initial_p=1.0)
    assert [schedule(t) for t in (0, 50, 100, 1000)] == pytest.approx([1.0, 0.55, 0.1, 0.1])
    assert schedule.value(25) == schedule(25)


def test_piecewise_schedule_interpolates_between_endpoints_and_uses_outside_value():
    schedule = PiecewiseSchedule([(0, 1.0), (10, 0.5), (30, 0.0)], outside_value=-1.0)
    assert [schedule(t) for t in (0, 5, 10, 20, 30, 31)] == pytest.approx(
        [1.0, 0.75, 0.5, 0.25, 0.0, -1.0]
    )
    with pytest.raises(ValueError, match="outside the endpoints.*outside_value"):
        PiecewiseSchedule([(0, 1.0), (10, 0.5)])(11)
    with pytest.raises(ValueError, match="must increase"):
        PiecewiseSchedule([(10, 1.0), (5, 0.5)])


def test_exponential_and_constant_schedules():
    schedule = ExponentialSchedule(100, initial_p=2.0, decay_rate=0.1)
    assert [schedule(t) for t in (0, 100, 200, 50)] == pytest.approx(
        [2.0, 0.2, 0.02, 2.0 * 0.1**0.5]
    )
    assert ConstantSchedule(0.3)(12345) == 0.3


def test_schedules_reject_bad_arguments_with_clear_messages():
    with pytest.raises(ValueError, match="schedule_timesteps must be > 0"):
        LinearSchedule(0, final_p=0.1)
    with pytest.raises(TypeError, match="final_p must be a finite number"):
        LinearSchedule(10, final_p="low")
    with pytest.raises(ValueError, match="decay_rate must be > 0"):
        ExponentialSchedule(10, decay_rate=0)


def test_make_schedule_accepts_a_number_a_schedule_or_a_dict():
    assert make_schedule(0.2)(99) == 0.2
    linear = LinearSchedule(10, final_p=0.0)
    assert make_schedule(linear) is linear
    assert (
        make_schedule({"type": "LinearSchedule", "schedule_timesteps": 10, "final_p": 0.0})(5)
        == 0.5
    )
    with pytest.raises(ValueError, match="Did you mean 'LinearSchedule'"):
        make_schedule({"type": "LinearSchedul"})
    with pytest.raises(TypeError, match="LinearSchedule takes"):
        make_schedule({"type": "LinearSchedule", "schedule_timesteps": 10, "final": 0.0})


# --- epsilon-greedy -------------------------------------------------------------------------------


def test_epsilon_follows_its_linear_schedule():
    exploration = make(
        EpsilonGreedy, initial_epsilon=1.0, final_epsilon=0.1, epsilon_timesteps=1000
    )
    dist = TorchCategorical(Q_VALUES)
    for timestep, epsilon in [(0, 1.0), (250, 0.775), (500, 0.55), (1000, 0.1), (5000, 0.1)]:
        act(exploration, dist, timestep)
        assert exploration.get_info() == {"cur_epsilon": pytest.approx(epsilon)}


def test_epsilon_schedule_argument_replaces_the_linear_default():
    exploration = make(
        EpsilonGreedy,
        epsilon_schedule={
            "type": "PiecewiseSchedule",
            "endpoints": [(0, 0.5), (100, 0.0)],
            "outside_value": 0.0,
        },
    )
    assert [exploration.epsilon(t) for t in (0, 50, 200)] == pytest.approx([0.5, 0.25, 0.0])


def test_fraction_of_non_greedy_actions_matches_epsilon():
    torch.manual_seed(0)
    epsilon, n_rows = 0.3, 20000
    exploration = make(EpsilonGreedy, epsilon_schedule=epsilon)
    actions, logp = act(exploration, TorchCategorical(repeated(Q_VALUES[:1], n_rows)), timestep=0)
    # A random action is the greedy one 1 time in 4, so a fraction epsilon * 3/4 differs from it.
    assert (actions != 1).float().mean().item() == pytest.approx(epsilon * 3 / 4, abs=0.01)
    expected_prob = torch.where(
        actions == 1, torch.tensor(1 - epsilon + epsilon / 4), torch.tensor(epsilon / 4)
    )
    torch.testing.assert_close(logp.exp(), expected_prob)


def test_epsilon_greedy_needs_a_discrete_action_space():
    with pytest.raises(TypeError, match="needs a Discrete action space.*GaussianNoise"):
        make(EpsilonGreedy, action_space=BOX)


def test_per_worker_epsilons_follow_apex():
    epsilons = [
        make(PerWorkerEpsilonGreedy, num_workers=8, worker_index=i).epsilon(10**6) for i in range(9)
    ]
    assert epsilons[0] == 0.0  # the local worker evaluates greedily
    assert epsilons[1:] == pytest.approx([0.4 ** (1 + 7 * i / 7) for i in range(8)])
    assert epsilons[1] == pytest.approx(0.4) and epsilons[8] == pytest.approx(0.4**8)
    assert make(PerWorkerEpsilonGreedy, num_workers=1, worker_index=1).epsilon(0) == pytest.approx(
        0.4
    )


def test_per_worker_epsilon_greedy_without_remote_workers_anneals_like_epsilon_greedy():
    exploration = make(
        PerWorkerEpsilonGreedy,
        num_workers=0,
        worker_index=0,
        final_epsilon=0.0,
        epsilon_timesteps=100,
    )
    assert [exploration.epsilon(t) for t in (0, 50, 100)] == pytest.approx([1.0, 0.5, 0.0])


# --- soft-Q and stochastic sampling ---------------------------------------------------------------


def test_softq_frequencies_match_the_boltzmann_distribution():
    torch.manual_seed(0)
    temperature, n_rows = 2.0, 20000
    exploration = make(SoftQ, temperature=temperature)
    actions, logp = act(exploration, TorchCategorical(repeated(Q_VALUES[:1], n_rows)), timestep=0)
    expected = torch.softmax(Q_VALUES[0] / temperature, dim=0)
    frequencies = torch.bincount(actions, minlength=4).float() / n_rows
    torch.testing.assert_close(frequencies, expected, atol=0.02, rtol=0)
    torch.testing.assert_close(logp.exp(), expected[actions])


def test_softq_rejects_a_non_positive_temperature():
    with pytest.raises(ValueError, match="temperature must be > 0"):
        make(SoftQ, temperature=0.0)


def test_stochastic_sampling_acts_randomly_for_random_timesteps_then_samples():
    torch.manual_seed(0)
    exploration = make(StochasticSampling, random_timesteps=100)
    confident = TorchCategorical(torch.tensor([[0.0, 50.0, 0.0, 0.0]]).repeat(4000, 1))
    early_actions, early_logp = act(exploration, confident, timestep=99)
    assert exploration.get_info() == {"random_phase": 1.0}
    assert sorted(torch.unique(early_actions).tolist()) == [0, 1, 2, 3]
    torch.testing.assert_close(early_logp, torch.full((4000,), -np.log(4), dtype=torch.float32))
    late_actions, late_logp = act(exploration, confident, timestep=100)
    assert (late_actions == 1).all() and exploration.get_info() == {"random_phase": 0.0}
    torch.testing.assert_close(late_logp, confident.logp(late_actions))


def test_stochastic_sampling_logp_is_the_distribution_logp_of_the_sample():
    dist = TorchDiagGaussian(torch.tensor([[0.0, 1.0, -1.0, 0.0]] * 5))
    actions, logp = act(make(StochasticSampling, action_space=BOX), dist, timestep=0)
    assert actions.shape == (5, 2)
    torch.testing.assert_close(logp, dist.logp(actions))


# --- explore=False --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls", [StochasticSampling, EpsilonGreedy, PerWorkerEpsilonGreedy, SoftQ, Random]
)
def test_explore_false_takes_the_argmax_for_discrete_strategies(cls):
    exploration = make(cls, epsilon_schedule=1.0) if cls is EpsilonGreedy else make(cls)
    actions, logp = act(exploration, TorchCategorical(Q_VALUES), timestep=0, explore=False)
    assert actions.tolist() == [1, 0] and logp.tolist() == [0.0, 0.0]


@pytest.mark.parametrize("cls", [StochasticSampling, GaussianNoise, OrnsteinUhlenbeckNoise, Random])
def test_explore_false_takes_the_deterministic_action_for_box_strategies(cls):
    exploration = make(
        cls,
        action_space=BOX,
        **({} if cls in (StochasticSampling, Random) else {"random_timesteps": 0}),
    )
    means = torch.tensor([[0.5, 1.5, -2.0, -2.0], [0.0, 0.2, -2.0, -2.0]])
    actions, _ = act(exploration, TorchDiagGaussian(means), timestep=0, explore=False)
    torch.testing.assert_close(actions, means[:, :2])


def test_random_ignores_the_model_and_stays_in_the_box():
    torch.manual_seed(0)
    actions, logp = act(
        make(Random, action_space=BOX), TorchDeterministic(torch.zeros(1000, 2)), timestep=0
    )
    assert actions.shape == (1000, 2) and (actions[:, 0] >= -1).all() and (actions[:, 1] <= 2).all()
    assert actions[:, 1].mean().item() == pytest.approx(1.0, abs=0.05)
    torch.testing.assert_close(
        logp, torch.full((1000,), -np.log(4.0), dtype=torch.float32)
    )  # box volume 2 * 2


# --- continuous noise -----------------------------------------------------------------------------


def test_gaussian_noise_clips_to_the_box_bounds():
    torch.manual_seed(0)
    exploration = make(
        GaussianNoise, action_space=BOX, random_timesteps=0, stddev=10.0, scale_schedule=1.0
    )
    actions, logp = act(
        exploration, TorchDeterministic(torch.tensor([[0.9, 1.9]] * 500)), timestep=0
    )
    assert actions[:, 0].min() == -1.0 and actions[:, 0].max() == 1.0
    assert actions[:, 1].min() == 0.0 and actions[:, 1].max() == 2.0
    assert (logp == 0).all()


def test_gaussian_noise_scale_follows_its_schedule_and_sets_the_spread():
    torch.manual_seed(0)
    exploration = make(
        GaussianNoise,
        action_space=gym.spaces.Box(-100.0, 100.0, (1,)),
        random_timesteps=0,
        stddev=0.5,
        initial_scale=1.0,
        final_scale=0.2,
        scale_timesteps=100,
    )
    center = TorchDeterministic(torch.zeros(20000, 1))
    for timestep, scale in [(0, 1.0), (50, 0.6), (100, 0.2), (400, 0.2)]:
        actions, _ = act(exploration, center, timestep)
        assert exploration.get_info() == {"cur_scale": pytest.approx(scale)}
        assert actions.std().item() == pytest.approx(0.5 * scale, rel=0.03)


def test_gaussian_noise_starts_with_uniform_random_actions():
    torch.manual_seed(0)
    exploration = make(GaussianNoise, action_space=BOX, random_timesteps=10)
    actions, _ = act(exploration, TorchDeterministic(torch.zeros(2000, 2)), timestep=9)
    assert actions[:, 0].min() < -0.9 and actions[:, 1].max() > 1.9  # far beyond 1.0 * 0.1 noise


def test_noise_strategies_need_a_box_with_finite_bounds_for_random_actions():
    with pytest.raises(TypeError, match="needs a Box action space.*EpsilonGreedy"):
        make(GaussianNoise, action_space=DISCRETE)
    with pytest.raises(ValueError, match="finite Box bounds"):
        make(GaussianNoise, action_space=gym.spaces.Box(-np.inf, np.inf, (2,)))


def ou_noises(exploration, steps):
    zero = TorchDeterministic(torch.zeros(1, 1))
    return np.array([act(exploration, zero, timestep=t)[0].item() for t in range(steps)])


def test_ou_noise_is_correlated_from_step_to_step():
    torch.manual_seed(0)
    space = gym.spaces.Box(-1e6, 1e6, (1,))
    noises = ou_noises(
        make(
            OrnsteinUhlenbeckNoise,
            action_space=space,
            random_timesteps=0,
            scale_schedule=1.0,
            ou_base_scale=1e-6,
        ),
        5000,
    )
    lag_one = np.corrcoef(noises[:-1], noises[1:])[0, 1]
    assert lag_one == pytest.approx(
        1 - 0.15, abs=0.03
    )  # an AR(1) process with coefficient 1 - theta
    gaussian = ou_noises(
        make(GaussianNoise, action_space=space, random_timesteps=0, scale_schedule=1.0), 5000
    )
    assert abs(np.corrcoef(gaussian[:-1], gaussian[1:])[0, 1]) < 0.05


def test_ou_state_round_trips_so_the_noise_continues_identically():
    original = make(OrnsteinUhlenbeckNoise, action_space=BOX, random_timesteps=0)
    dist = TorchDeterministic(torch.tensor([[0.0, 1.0]]))
    for t in range(20):
        act(original, dist, t)
    state = original.get_state()
    assert (
        state["last_timestep"] == 19
        and state["ou_state"].shape == (2,)
        and np.abs(state["ou_state"]).sum() > 0
    )
    restored = make(OrnsteinUhlenbeckNoise, action_space=BOX, random_timesteps=0)
    restored.set_state(state)
    np.testing.assert_array_equal(restored.get_state()["ou_state"], state["ou_state"])
    torch.manual_seed(7)
    expected = act(original, dist, 20)[0]
    torch.manual_seed(7)
    torch.testing.assert_close(act(restored, dist, 20)[0], expected, rtol=0, atol=0)


# --- from_config ----------------------------------------------------------------------------------


def build(config, action_space=DISCRETE, **where):
    return from_config(
        config,
        action_space=action_space,
        policy_config={},
        model=None,
        **{"num_workers": 0, "worker_index": 0, **where},
    )


class MySoftQ(SoftQ):
    """A user-defined subclass, found by class or by dotted path."""


def test_from_config_by_name_class_and_dotted_path():
    by_name = build({"type": "EpsilonGreedy", "final_epsilon": 0.2, "epsilon_timesteps": 10})
    assert isinstance(by_name, EpsilonGreedy) and by_name.epsilon(10) == pytest.approx(0.2)
    assert type(build({"type": MySoftQ, "temperature": 3.0})) is MySoftQ
    assert type(build({"type": f"{__name__}.MySoftQ"})) is MySoftQ
    assert type(build({"type": "course_lib.exploration.random.Random"})) is Random
    assert build({"type": "PerWorkerEpsilonGreedy"}, num_workers=2, worker_index=2).epsilon(
        0
    ) == pytest.approx(0.4**8)


def test_from_config_names_close_matches_for_an_unknown_type():
    with pytest.raises(
        ValueError, match="Unknown exploration type 'epsilongreedy'. Did you mean 'EpsilonGreedy'"
    ):
        build({"type": "epsilongreedy"})
    with pytest.raises(ValueError, match="Did you mean 'SoftQ'"):
        build({"type": "SoftQQ"})
    with pytest.raises(ImportError, match="no attribute 'Nope'"):
        build({"type": "course_lib.exploration.Nope"})


def test_from_config_rejects_a_class_that_is_not_an_exploration():
    with pytest.raises(TypeError, match="subclass of course_lib.exploration.Exploration"):
        build({"type": dict})
    with pytest.raises(TypeError, match="subclass of course_lib.exploration.Exploration"):
        build({"type": "collections.OrderedDict"})


def test_from_config_lists_the_valid_keys_for_an_unknown_kwarg():
    with pytest.raises(
        TypeError,
        match=(
            "unknown exploration_config key 'epsilon_timestep'. Did you "
            "mean 'epsilon_timesteps'.*initial_epsilon, final_epsilon"
        ),
    ):
        build({"type": "EpsilonGreedy", "epsilon_timestep": 5})
    with pytest.raises(
        TypeError, match="unknown exploration_config key 'stddev'.*ou_theta.*random_timesteps"
    ):
        build({"type": "OrnsteinUhlenbeckNoise", "stddev": 0.1}, action_space=BOX)
    with pytest.raises(TypeError, match="the policy passes that itself"):
        build({"type": "Random", "worker_index": 3})
    with pytest.raises(ValueError, match="'type' key"):
        build({"temperature": 1.0})


def test_a_custom_exploration_only_needs_get_exploration_action():
    class AlwaysZero(Exploration):
        def get_exploration_action(self, *, action_distribution, timestep, explore=True):
            self._update_timestep(timestep)
            return torch.zeros(len(action_distribution.inputs), dtype=torch.int64), torch.zeros(
                len(action_distribution.inputs)
            )

    exploration = build({"type": AlwaysZero})
    assert act(exploration, TorchCategorical(Q_VALUES), 5)[0].tolist() == [0, 0]
    assert exploration.get_state() == {"last_timestep": 5} and exploration.get_info() == {}


# --- inside a policy ------------------------------------------------------------------------------

EPSILON_CONFIG = {
    "model": {"fcnet_hiddens": [8]},
    "seed": 0,
    "exploration_config": {
        "type": "EpsilonGreedy",
        "initial_epsilon": 1.0,
        "final_epsilon": 0.0,
        "epsilon_timesteps": 100,
    },
}


def test_policies_sample_stochastically_by_default():
    policy = PGTorchPolicy(OBS_SPACE, DISCRETE, {"model": {"fcnet_hiddens": [8]}})
    assert type(policy.exploration) is StochasticSampling and policy.get_exploration_info() == {
        "random_phase": 0.0
    }


def test_epsilon_greedy_policy_acts_and_explore_false_is_the_argmax():
    policy = PGTorchPolicy(OBS_SPACE, DISCRETE, EPSILON_CONFIG)
    obs = np.random.default_rng(0).uniform(-1, 1, (64, 3)).astype(np.float32)
    actions, _, extra = policy.compute_actions(obs)
    assert actions.shape == (64,) and set(actions.tolist()) <= {0, 1, 2, 3}
    np.testing.assert_allclose(extra["action_prob"], np.exp(extra["action_logp"]), rtol=1e-6)
    greedy, _, extra = policy.compute_actions(obs, explore=False)
    np.testing.assert_array_equal(greedy, extra["action_dist_inputs"].argmax(axis=1))


def test_policy_state_round_trips_the_exploration_state():
    policy = PGTorchPolicy(OBS_SPACE, DISCRETE, EPSILON_CONFIG)
    for _ in range(4):
        policy.compute_actions(np.zeros((10, 3), np.float32))
    assert policy.get_exploration_info() == {
        "cur_epsilon": pytest.approx(0.7)
    }  # last batch started at t=30
    state = policy.get_state()
    assert state["exploration"] == {"last_timestep": 30} and state["global_timestep"] == 40
    fresh = PGTorchPolicy(OBS_SPACE, DISCRETE, EPSILON_CONFIG)
    fresh.set_state(state)
    assert (
        fresh.get_exploration_info() == policy.get_exploration_info()
        and fresh.global_timestep == 40
    )
    fresh.compute_actions(np.zeros((10, 3), np.float32))
    assert fresh.get_exploration_info() == {"cur_epsilon": pytest.approx(0.6)}


def test_policy_passes_its_worker_index_to_the_exploration():
    config = {
        **EPSILON_CONFIG,
        "exploration_config": {"type": "PerWorkerEpsilonGreedy"},
        "num_workers": 4,
        "worker_index": 4,
    }
    assert PGTorchPolicy(OBS_SPACE, DISCRETE, config).get_exploration_info() == {
        "cur_epsilon": pytest.approx(0.4**8)
    }


def test_policy_with_gaussian_noise_keeps_actions_in_the_box():
    config = {
        "model": {"fcnet_hiddens": [8]},
        "seed": 0,
        "exploration_config": {"type": "GaussianNoise", "random_timesteps": 0, "stddev": 5.0},
    }
    policy = PGTorchPolicy(OBS_SPACE, BOX, config)
    actions, _, _ = policy.compute_actions(np.zeros((200, 3), np.float32))
    assert actions.shape == (200, 2)
    assert (
        actions[:, 0].min() >= -1
        and actions[:, 0].max() <= 1
        and actions[:, 1].min() >= 0
        and actions[:, 1].max() <= 2
    )
