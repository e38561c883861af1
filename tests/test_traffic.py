"""TrafficGridEnv: vehicles are conserved, lights move exactly the vehicles they should, the dict
API holds, and the baseline controllers rank as the capstone expects."""

import matplotlib
import numpy as np
import pytest

from course_lib.envs import make_env
from course_lib.envs.traffic import (
    EW,
    NS,
    OBS_DIM,
    E,
    FixedTimeController,
    LongestQueueController,
    MaxPressureController,
    N,
    S,
    TrafficGridEnv,
    W,
    intersection_groups,
    plot_queues,
    run_controller,
)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

UNBALANCED = {"ns": 0.45, "ew": 0.15}  # north-south demand three times east-west


def random_controller(seed: int):
    rng = np.random.default_rng(seed)
    return lambda obs, env: {agent: int(rng.integers(2)) for agent in env.possible_agents}


def always(phase: int):
    return lambda obs, env: dict.fromkeys(env.possible_agents, phase)


def run_checking_conservation(env, controller, seed):
    """Run one episode; after every step check that vehicles were only added by arrivals and only
    removed by departures, and that no queue went negative."""
    obs, _ = env.reset(seed=seed)
    assert env.queues.sum() == 0 and env.arrivals == env.departures == 0
    done = False
    while not done:
        before = (int(env.queues.sum()), env.arrivals, env.departures)
        obs, _, terminateds, truncateds, infos = env.step(controller(obs, env))
        arrived, departed = env.arrivals - before[1], env.departures - before[2]
        assert env.queues.sum() == before[0] + arrived - departed
        assert env.queues.sum() == env.arrivals - env.departures == env.metrics()["in_network"]
        assert (env.queues >= 0).all()
        assert all(info["in_network"] == env.queues.sum() for info in infos.values())
        done = truncateds["__all__"]
    return env.metrics()


@pytest.mark.parametrize("rows, cols", [(1, 1), (2, 2), (2, 3)])
def test_vehicles_are_conserved_at_every_step_under_random_actions(rows, cols):
    env = TrafficGridEnv(
        {"rows": rows, "cols": cols, "arrival_rate": UNBALANCED, "episode_length": 150}
    )
    metrics = run_checking_conservation(env, random_controller(0), seed=1)
    assert metrics["arrivals"] > 50 and metrics["throughput"] > 0


def test_vehicles_are_conserved_under_fixed_time_control():
    env = TrafficGridEnv(
        {"rows": 3, "cols": 2, "arrival_rate": 0.3, "yellow": 2, "saturation_flow": 2}
    )
    metrics = run_checking_conservation(env, FixedTimeController(cycle=12), seed=2)
    assert metrics["arrivals"] - metrics["throughput"] == metrics["in_network"] > 0


def test_every_entry_lane_gets_one_vehicle_per_step_at_rate_one_and_none_at_rate_zero():
    env = TrafficGridEnv({"rows": 2, "cols": 3, "arrival_rate": 1.0})
    env.reset(seed=0)
    for step in range(1, 4):
        env.step(always(NS)(None, env))
        assert env.arrivals == step * (2 * 2 + 2 * 3)
    env = TrafficGridEnv({"arrival_rate": 0.0})
    run_checking_conservation(env, random_controller(0), seed=0)
    assert env.arrivals == env.departures == env.total_waiting == 0


def test_arrivals_enter_only_at_the_boundary_in_their_direction():
    env = TrafficGridEnv(
        {"rows": 2, "cols": 2, "arrival_rate": {"ns": 1.0, "ew": 0.0}, "yellow": 0}
    )
    env.reset(seed=0)
    env.step(always(EW)(None, env))  # NS red: the first arrivals stay where they entered
    assert env.queues[0, :, N].tolist() == [1, 1] and env.queues[1, :, N].tolist() == [0, 0]
    assert env.queues[1, :, S].tolist() == [1, 1] and env.queues[0, :, S].tolist() == [0, 0]
    assert env.queues[..., [E, W]].sum() == 0


def test_green_moves_at_most_saturation_flow_and_red_moves_nothing():
    env = TrafficGridEnv({"rows": 1, "cols": 1, "arrival_rate": 0.0, "saturation_flow": 2})
    env.reset(seed=0)
    env.queues[0, 0] = [5, 1, 4, 3]
    _, rewards, _, _, infos = env.step(always(NS)(None, env))
    assert env.queues[0, 0].tolist() == [
        3,
        0,
        4,
        3,
    ]  # N sends 2 (the flow), S its only 1; E, W wait
    assert env.departures == 3
    assert rewards["i_0_0"] == -infos["i_0_0"]["waiting"] == -(3 + 0 + 4 + 3)


def test_vehicles_drive_straight_on_to_the_next_intersection_or_leave():
    env = TrafficGridEnv({"rows": 2, "cols": 2, "arrival_rate": 0.0})
    env.reset(seed=0)
    env.queues[0, 0, N] = 2  # heading south, towards (1, 0)
    env.queues[0, 1, E] = 2  # heading west, towards (0, 0)
    actions = {"i_0_0": NS, "i_0_1": EW, "i_1_0": NS, "i_1_1": NS}
    env.step(actions)
    assert env.queues[0, 0, N] == 1 and env.queues[1, 0, N] == 1
    assert env.queues[0, 1, E] == 2 and env.departures == 0  # i_0_1 switched: one yellow step
    env.step(actions)
    assert env.queues[0, 0, N] == 0 and env.queues[1, 0, N] == 1 and env.departures == 1
    assert env.queues[0, 1, E] == 1 and env.queues[0, 0, E] == 1
    env.step(actions)
    assert env.queues[0, 0, E] == 2 and env.departures == 2  # (0, 0) is red for westbound traffic


def test_switching_costs_yellow_steps_and_waits_for_min_green():
    env = TrafficGridEnv({"rows": 1, "cols": 1, "arrival_rate": 0.0, "yellow": 2, "min_green": 3})
    env.reset(seed=0)
    env.queues[0, 0] = [0, 0, 10, 10]
    expected_ew_queue = [10, 10, 9, 8, 7, 6]  # 2 all-red steps, then one vehicle per step
    for queue in expected_ew_queue:
        env.step(always(EW)(None, env))
        assert env.phase[0, 0] == EW and env.queues[0, 0, E] == queue
    env.step(always(NS)(None, env))  # green for 4 >= min_green steps: the switch is allowed
    assert env.phase[0, 0] == NS
    env.step(always(EW)(None, env))  # too early to switch back: ignored, phase stays NS
    assert env.phase[0, 0] == NS


def test_same_seed_same_episode_and_arrivals_do_not_depend_on_the_controller():
    env = TrafficGridEnv({"arrival_rate": UNBALANCED})
    first = run_controller(env, random_controller(3), seed=7)
    again = run_controller(env, random_controller(3), seed=7)
    np.testing.assert_array_equal(first["queues"], again["queues"])
    assert first["mean_waiting_time"] == again["mean_waiting_time"]
    assert run_controller(env, random_controller(3), seed=8)["arrivals"] != first["arrivals"]
    assert run_controller(env, MaxPressureController(), seed=7)["arrivals"] == first["arrivals"]
    seeded = TrafficGridEnv({"arrival_rate": UNBALANCED, "seed": 7})
    assert run_controller(seeded, random_controller(3), seed=None)["arrivals"] == first["arrivals"]


def test_dict_api_every_agent_acts_every_step_until_truncation():
    env = make_env("TrafficGrid", {"rows": 2, "cols": 3, "episode_length": 5})
    agents = [f"i_{r}_{c}" for r in range(2) for c in range(3)]
    assert env.possible_agents == agents
    assert env.observation_spaces[agents[0]].shape == (OBS_DIM,)
    assert env.action_spaces[agents[-1]].n == 2
    obs, infos = env.reset(seed=0)
    assert list(obs) == list(infos) == agents
    for step in range(1, 6):
        assert all(env.observation_space.contains(o) for o in obs.values())
        obs, rewards, terminateds, truncateds, infos = env.step(dict.fromkeys(obs, NS))
        assert list(obs) == list(rewards) == list(infos) == agents
        assert set(terminateds) == set(truncateds) == {*agents, "__all__"}
        assert not any(terminateds.values())
        assert truncateds["__all__"] == all(truncateds[a] for a in agents) == (step == 5)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(dict.fromkeys(agents, NS))


def test_observation_holds_scaled_queues_downstream_phase_and_clock():
    env = TrafficGridEnv({"rows": 2, "cols": 1, "arrival_rate": 0.0})
    env.reset(seed=0)
    env.queues[0, 0] = [4, 30, 0, 2]
    env.queues[1, 0, N] = 10
    obs = env.step({"i_0_0": NS, "i_1_0": EW})[0]["i_0_0"]
    # After the step: (0, 0) sent one N vehicle to (1, 0) (11 there now) and one S vehicle out.
    np.testing.assert_allclose(obs[:4], [3 / 20, 1.0, 0.0, 2 / 20])  # 29 clips at 1
    np.testing.assert_allclose(obs[4:8], [11 / 20, 0.0, 0.0, 0.0])  # N feeds (1, 0); others leave
    np.testing.assert_allclose(obs[8:], [1.0, 0.0, 0.4])  # NS green, 3 + 1 steps since "switch"


def test_rewards_add_up_to_minus_the_total_waiting_behind_mean_waiting_time():
    env = TrafficGridEnv({"arrival_rate": UNBALANCED, "episode_length": 100})
    obs, _ = env.reset(seed=4)
    controller, total_reward, done = FixedTimeController(cycle=10), 0.0, False
    while not done:
        obs, rewards, _, truncateds, _ = env.step(controller(obs, env))
        total_reward += sum(rewards.values())
        done = truncateds["__all__"]
    metrics = env.metrics()
    assert total_reward == -metrics["total_waiting"] < 0
    assert metrics["mean_waiting_time"] == pytest.approx(
        metrics["total_waiting"] / metrics["arrivals"]
    )


def test_adaptive_controllers_beat_fixed_time_on_unbalanced_demand():
    env = TrafficGridEnv({"arrival_rate": UNBALANCED})
    waiting = {
        name: np.mean(
            [run_controller(env, controller, seed)["mean_waiting_time"] for seed in range(3)]
        )
        for name, controller in [
            ("fixed", FixedTimeController(cycle=20)),
            ("max_pressure", MaxPressureController()),
            ("longest_queue", LongestQueueController()),
        ]
    }
    assert waiting["max_pressure"] < 0.9 * waiting["fixed"]
    assert waiting["longest_queue"] < 0.7 * waiting["fixed"]


def test_run_controller_records_queues_and_plot_queues_labels_its_axes():
    env = TrafficGridEnv({"episode_length": 30})
    result = run_controller(env, FixedTimeController(cycle=6), seed=0)
    assert result["queues"].shape == (30, 4) and result["steps"] == 30
    assert result["queues"][-1].sum() == result["in_network"]
    ax = plot_queues(result)
    assert len(ax.lines) == 4 and ax.get_xlabel() == "step" and ax.get_ylabel() and ax.get_title()
    ax = plot_queues(result, total=True, label="fixed time", ax=ax)
    assert ax.lines[-1].get_label() == "fixed time"
    np.testing.assert_array_equal(ax.lines[-1].get_ydata(), result["queues"].sum(axis=1))
    plt.close(ax.figure)


def test_intersection_groups_map_every_agent_to_its_group():
    by_row = {"i_0_0": "row_0", "i_0_1": "row_0", "i_1_0": "row_1", "i_1_1": "row_1"}
    assert intersection_groups(2, 2, "rows") == by_row
    assert set(intersection_groups(2, 3, "cols").values()) == {"col_0", "col_1", "col_2"}
    assert set(intersection_groups(3, 3, "all").values()) == {"all"}
    assert intersection_groups(1, 2, "each") == {"i_0_0": "i_0_0", "i_0_1": "i_0_1"}
    with pytest.raises(ValueError, match="Did you mean 'rows'"):
        intersection_groups(2, 2, "row")


@pytest.mark.parametrize(
    "config, message",
    [
        ({"arrival_rates": 0.3}, "Did you mean 'arrival_rate'"),
        ({"rows": 0}, "'rows'.*int >= 1"),
        ({"cols": 2.5}, "'cols'.*int >= 1"),
        ({"arrival_rate": 1.5}, r"probability in \[0, 1\]"),
        ({"arrival_rate": {"ns": 0.3, "ew": -0.1}}, r"'ew' must be a probability"),
        ({"arrival_rate": {"ns": 0.3}}, "keys 'ns' and 'ew'"),
        ({"yellow": -1}, "'yellow'.*int >= 0"),
    ],
)
def test_bad_env_config_says_what_to_fix(config, message):
    with pytest.raises(ValueError, match=message):
        TrafficGridEnv(config)


def test_bad_action_dicts_say_what_to_fix():
    env = TrafficGridEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="no action for"):
        env.step({"i_0_0": NS})
    with pytest.raises(ValueError, match="not in its action space"):
        env.step({"i_0_0": 2, "i_0_1": NS, "i_1_0": NS, "i_1_1": NS})


def test_record_snapshots_copies_the_grid_and_marks_the_all_red_step_after_a_switch():
    from course_lib.envs.traffic_render import record_snapshots

    env = TrafficGridEnv({"rows": 1, "cols": 2, "arrival_rate": 0.5, "yellow": 1})

    def switch_at_step_5(obs, env):
        return dict.fromkeys(env.possible_agents, EW if env.time_step >= 4 else NS)

    states = record_snapshots(env, switch_at_step_5, steps=[0, 4, 5, 6, 30], seed=3)
    assert [s["time_step"] for s in states] == [0, 4, 5, 6, 30]
    assert states[0]["queues"].sum() == 0
    assert [s["phase"][0, 0] for s in states] == [NS, NS, EW, EW, EW]
    assert [bool(s["yellow"][0, 0]) for s in states] == [False, False, True, False, False]
    # Snapshots are copies: replaying to step 6 gives the picture taken then, not the step-30 grid.
    replay = record_snapshots(env, switch_at_step_5, steps=[6], seed=3)[0]
    assert np.array_equal(states[3]["queues"], replay["queues"])
    assert not np.array_equal(states[3]["queues"], states[4]["queues"])
    with pytest.raises(ValueError, match="0..200"):
        record_snapshots(env, switch_at_step_5, steps=[201])


def test_draw_grid_draws_a_bar_per_approach_coloured_by_its_light_and_labelled_with_its_queue():
    from course_lib.envs.traffic_render import BAR_LENGTH, GREEN, RED, draw_grid

    state = {
        "queues": np.array([[[3, 0, 12, 1], [0, 0, 0, 0]]]),
        "phase": np.array([[NS, EW]]),
        "yellow": np.array([[False, True]]),
        "time_step": 7,
        "total_waiting": 0,
    }
    ax = draw_grid(state, max_queue=8)
    bars = ax.get_lines()
    assert len(bars) == 2 * 4
    colours = [matplotlib.colors.to_hex(bar.get_color()) for bar in bars]
    # i_0_0 has NS green: N and S bars green, E and W red; i_0_1 is all red (yellow).
    assert colours[:4] == [GREEN, GREEN, RED, RED] and colours[4:] == [RED] * 4
    lengths = [np.hypot(*np.ptp(bar.get_xydata(), axis=0)) for bar in bars[:4]]
    # Queues [3, 0, 12, 1], clipped at max_queue=8 vehicles for the bar (the label stays exact).
    assert lengths == pytest.approx([BAR_LENGTH * q / 8 for q in (3, 0, 8, 1)])
    texts = [t.get_text() for t in ax.texts]
    assert {"NS", "all\nred", "3", "12", "1"} <= set(texts)
    assert ax.get_title() == "step 7"
    plt.close("all")


def test_plot_episode_frames_draws_one_row_per_controller_on_the_same_traffic():
    from course_lib.envs.traffic_render import plot_episode_frames

    env = TrafficGridEnv({"rows": 2, "cols": 2, "arrival_rate": 0.3, "episode_length": 40})
    controllers = {"fixed": FixedTimeController(cycle=10), "longest": LongestQueueController()}
    fig = plot_episode_frames(env, controllers, steps=[10, 40], seed=5)
    assert len(fig.axes) == 4
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].startswith("fixed\nstep 10") and titles[3].startswith("longest\nstep 40")
    plt.close(fig)
