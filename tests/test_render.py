"""course_lib.render: episode frames, animations and flow diagrams (lessons 03, 06, 08, 13)."""

from __future__ import annotations

import gymnasium as gym
import matplotlib.pyplot as plt
import numpy as np
import pytest

from course_lib.render import animate, episode_frames, flow_diagram


@pytest.fixture
def cartpole():
    env = gym.make("CartPole-v1", render_mode="rgb_array")
    yield env
    env.close()


def push_right(obs):
    return 1


def summed_rewards(seed: int, act, max_steps: int) -> tuple[float, int]:
    """The same episode played without rendering: its return and its number of steps."""
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=seed)
    total, steps = 0.0, 0
    while steps < max_steps:
        obs, reward, terminated, truncated, _ = env.step(act(obs))
        total, steps = total + reward, steps + 1
        if terminated or truncated:
            break
    return total, steps


def test_frames_are_shrunk_by_scale(cartpole):
    frames, _ = episode_frames(cartpole, push_right, max_steps=3, scale=4, seed=0)
    assert all(f.shape == (100, 150, 3) and f.dtype == np.uint8 for f in frames)
    full, _ = episode_frames(cartpole, push_right, max_steps=3, scale=1, seed=0)
    assert full[0].shape == (400, 600, 3)
    # Each shrunk pixel is the mean of a 4 x 4 block (rounded down by Pillow's reduce).
    block_mean = full[0][:4, :4].reshape(-1, 3).mean(axis=0)
    assert np.all(np.abs(frames[0][0, 0] - block_mean) <= 1)


def test_one_frame_every_few_steps_plus_the_first_and_the_last(cartpole):
    episode_return, steps = summed_rewards(0, push_right, 500)
    assert steps % 3 != 0  # so the last frame is an extra one
    frames, _ = episode_frames(cartpole, push_right, every=3, scale=8, seed=0)
    assert len(frames) == 1 + steps // 3 + 1
    frames, _ = episode_frames(cartpole, push_right, every=1, scale=8, seed=0)
    assert len(frames) == 1 + steps


def test_max_steps_stops_the_episode(cartpole):
    frames, episode_return = episode_frames(cartpole, push_right, max_steps=4, every=2, scale=8)
    assert len(frames) == 3  # after reset, after step 2, after step 4
    assert episode_return == 4.0


def test_the_return_is_the_sum_of_the_envs_rewards(cartpole):
    def balance(obs):
        return int(obs[2] + 0.5 * obs[3] > 0)

    for act, seed in ((push_right, 0), (balance, 1)):
        expected, _ = summed_rewards(seed, act, 500)
        _, episode_return = episode_frames(cartpole, act, every=50, scale=8, seed=seed)
        assert episode_return == expected
    assert expected == 500.0  # the balancing controller lasts the whole episode


def test_an_env_without_rgb_array_rendering_is_refused():
    with pytest.raises(ValueError, match="render_mode='rgb_array'"):
        episode_frames(gym.make("CartPole-v1"), push_right)


@pytest.mark.parametrize("name", ["every", "scale", "max_steps"])
@pytest.mark.parametrize("bad", [0, -2, 1.5, "4"])
def test_bad_every_scale_or_max_steps_are_refused(cartpole, name, bad):
    with pytest.raises(ValueError, match=f"{name} must be a whole number >= 1"):
        episode_frames(cartpole, push_right, **{name: bad})


def test_animate_returns_html_with_one_image_per_frame():
    frames = [np.full((20, 30, 3), value, dtype=np.uint8) for value in (0, 128, 255)]
    open_before = set(plt.get_fignums())  # other tests may leave figures open
    html = animate(frames, fps=5, title="three frames")
    assert html.data.count("data:image/png;base64") == 3
    assert set(plt.get_fignums()) == open_before  # closed: no still image is stored as well


def test_animate_refuses_no_frames_or_mixed_shapes():
    with pytest.raises(ValueError, match="at least one frame"):
        animate([])
    frames = [np.zeros((20, 30, 3), np.uint8), np.zeros((10, 30, 3), np.uint8)]
    with pytest.raises(ValueError, match="one shape"):
        animate(frames)


def test_flow_diagram_draws_every_box_and_arrow():
    fig = flow_diagram(
        {"env": (0, 0, "environment"), "model": (3, 0, "model")},
        [("env", "model", "obs"), ("model", "env", "action", -0.3)],
        title="loop",
    )
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {"environment", "model", "obs", "action"} <= texts
    assert len(fig.axes[0].patches) == 4  # two boxes, two arrows
    plt.close(fig)


def test_flow_diagram_names_an_unknown_box():
    with pytest.raises(ValueError, match="'learner', which is not a box"):
        flow_diagram({"env": (0, 0, "environment")}, [("env", "learner", "")])
