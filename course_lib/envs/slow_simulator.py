"""A slow simulator: CartPole whose steps cost CPU work, waiting, or both, as you configure.

Introduced in notebooks/15_scaling_out.ipynb.

CartPole steps in microseconds; the simulators RL is used with in practice take milliseconds or
more, and *why* a step is slow decides how sampling scales out:

* **CPU-bound**: the simulator computes (a physics engine, a traffic model written in Python).
  Each step keeps one core busy, so N rollout workers sample at most ``min(N, cores)`` times
  faster, and workers beyond the core count only take turns.
* **latency-bound**: the simulator runs somewhere else (SUMO or SALT behind a socket, a robot) and
  the env waits for its answer. A waiting worker uses almost no CPU, so workers beyond the core
  count still add throughput, until the CPU they do use (policy, sampler) fills the cores.

:class:`SlowSimulator` has one knob for each kind, ``cpu_substeps`` and ``latency_s``, and is
registered as ``"SlowSimulator"``. ``calibrate_cpu_substeps`` says how many substeps cost a given
CPU time on this machine.
"""

from __future__ import annotations

import math
import time

import gymnasium
import numpy as np
from gymnasium import spaces

from course_lib.envs.examples import _positive_int, _with_defaults
from course_lib.envs.registry import register_env
from course_lib.validation import is_real_number

# CartPole-v1's physical constants (gymnasium's classic_control/cartpole.py), in SI units.
GRAVITY = 9.8
CART_MASS = 1.0
POLE_MASS = 0.1
TOTAL_MASS = CART_MASS + POLE_MASS
POLE_HALF_LENGTH = 0.5
POLE_MASS_LENGTH = POLE_MASS * POLE_HALF_LENGTH
FORCE = 10.0
CONTROL_INTERVAL_S = 0.02  # simulated seconds between two actions
X_LIMIT = 2.4
THETA_LIMIT = 12 * 2 * math.pi / 360  # 12 degrees, in radians
CALIBRATION_SUBSTEPS = 20_000


class SlowSimulator(gymnasium.Env):
    """CartPole dynamics integrated in ``cpu_substeps`` small steps, after ``latency_s`` of waiting.

    Introduced in notebooks/15_scaling_out.ipynb.

    The task is CartPole-v1's, so the course's CartPole settings learn it:

    * observation ``Box((4,), float32)``: cart position, cart velocity, pole angle, pole angular
      velocity (same bounds as CartPole-v1)
    * actions ``Discrete(2)``: push the cart left (0) or right (1) with 10 N
    * reward 1 for every step; terminated when the pole leans past 12 degrees or the cart leaves
      [-2.4, 2.4]; truncated after ``max_episode_steps`` steps
    * ``reset(seed=s)`` draws the first state uniformly from [-0.05, 0.05]^4, like CartPole-v1.

    What a ``step`` costs, on top of the physics itself:

    * ``cpu_substeps`` (int >= 1, default 1): each 0.02 s between two actions is integrated in
      that many explicit-Euler steps of ``0.02 / cpu_substeps`` s, in plain Python floats, so the
      CPU time of a step grows in proportion to it (and holds Python's GIL, as simulator code
      would). This is real work on the dynamics, not a busy loop whose result is thrown away: a
      physics engine spends its time the same way, trading time for accuracy. The price of that
      honesty is that the substep count is part of the model. With ``cpu_substeps=1`` the
      trajectory is exactly CartPole-v1's; more substeps give a slightly different, more accurate
      trajectory that converges as the count grows (the integration error shrinks like
      ``1 / cpu_substeps``). The same seed, substep count and actions always give the same
      trajectory.
    * ``latency_s`` (seconds >= 0, default 0): ``time.sleep(latency_s)`` before each step, as if
      the step were a round trip to a simulator in another process or on another machine. It
      changes nothing in the trajectory and costs (almost) no CPU.

    ``reset`` costs nothing extra. env_config keys: ``cpu_substeps``, ``latency_s``,
    ``max_episode_steps`` (int >= 1, default 500).
    """

    config_defaults = {"cpu_substeps": 1, "latency_s": 0.0, "max_episode_steps": 500}

    def __init__(self, env_config: dict | None = None):
        config = _with_defaults(env_config, self.config_defaults, type(self).__name__)
        self.cpu_substeps = _positive_int(config["cpu_substeps"], "cpu_substeps")
        self.latency_s = _latency(config["latency_s"])
        self.max_episode_steps = _positive_int(config["max_episode_steps"], "max_episode_steps")
        # Bounds twice the failure limits, as in CartPole-v1, so the last observation still fits.
        high = np.array([2 * X_LIMIT, np.inf, 2 * THETA_LIMIT, np.inf], dtype=np.float32)
        self.observation_space = spaces.Box(-high, high, dtype=np.float32)
        self.action_space = spaces.Discrete(2)
        self.state: tuple[float, float, float, float] | None = None
        self.steps = 0
        self.episode_over = False

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start a new episode near the upright position; return ``(obs, info)``."""
        super().reset(seed=seed)
        # The same draw as CartPole-v1's reset, so one seed gives both envs the same first state.
        self.state = tuple(float(v) for v in self.np_random.uniform(-0.05, 0.05, size=(4,)))
        self.steps = 0
        self.episode_over = False
        return self._observation(), {}

    def step(self, action):
        """Wait ``latency_s``, integrate 0.02 s of dynamics; return the gymnasium 5-tuple."""
        if self.state is None:
            raise RuntimeError("step() was called before reset(); call env.reset() first.")
        if self.episode_over:
            raise RuntimeError(
                "step() was called after the episode ended (terminated or truncated); "
                "call env.reset() to start the next one."
            )
        if not self.action_space.contains(action):
            raise ValueError(f"Actions are 0 (push left) or 1 (push right), got {action!r}.")
        if self.latency_s:
            time.sleep(self.latency_s)
        force = FORCE if int(action) == 1 else -FORCE
        self.state = integrate(self.state, force, self.cpu_substeps)
        self.steps += 1
        x, _, theta, _ = self.state
        terminated = abs(x) > X_LIMIT or abs(theta) > THETA_LIMIT
        # Falling on the last allowed step is a termination: the episode really ended.
        truncated = not terminated and self.steps >= self.max_episode_steps
        self.episode_over = terminated or truncated
        return self._observation(), 1.0, terminated, truncated, {}

    def _observation(self) -> np.ndarray:
        return np.array(self.state, dtype=np.float32)


def integrate(
    state: tuple[float, float, float, float], force: float, substeps: int
) -> tuple[float, float, float, float]:
    """Advance ``(x, x_dot, theta, theta_dot)`` by 0.02 s under ``force``, in ``substeps`` steps.

    Introduced in notebooks/15_scaling_out.ipynb.

    The cart-pole equations of motion (Barto, Sutton and Anderson 1983, as in CartPole-v1) with
    explicit Euler: each substep moves every variable along the derivatives taken at its start.
    A Python loop over floats on purpose: it is the CPU cost of :class:`SlowSimulator`, and with
    ``substeps=1`` it does exactly CartPole-v1's arithmetic.
    """
    x, x_dot, theta, theta_dot = state
    dt = CONTROL_INTERVAL_S / substeps
    for _ in range(substeps):
        cos_theta, sin_theta = math.cos(theta), math.sin(theta)
        temp = (force + POLE_MASS_LENGTH * (theta_dot * theta_dot) * sin_theta) / TOTAL_MASS
        theta_acc = (GRAVITY * sin_theta - cos_theta * temp) / (
            POLE_HALF_LENGTH * (4.0 / 3.0 - POLE_MASS * (cos_theta * cos_theta) / TOTAL_MASS)
        )
        x_acc = temp - POLE_MASS_LENGTH * theta_acc * cos_theta / TOTAL_MASS
        x, x_dot = x + dt * x_dot, x_dot + dt * x_acc
        theta, theta_dot = theta + dt * theta_dot, theta_dot + dt * theta_acc
    return x, x_dot, theta, theta_dot


def calibrate_cpu_substeps(cpu_seconds_per_step: float) -> int:
    """How many ``cpu_substeps`` make a step cost about ``cpu_seconds_per_step`` of CPU here.

    Introduced in notebooks/15_scaling_out.ipynb.

    Times 20,000 substeps (about 10 ms) with ``time.thread_time`` and scales; at least 1. CPU time
    of this thread, not wall time, so programs busy on other cores or waiting for this one do not
    inflate it, nor do helper threads of this process (numpy's BLAS pool, for one).
    """
    if not is_real_number(cpu_seconds_per_step) or not cpu_seconds_per_step > 0:
        raise ValueError(
            f"calibrate_cpu_substeps needs a CPU time per step in seconds > 0, such as 0.001 for "
            f"1 ms, got {cpu_seconds_per_step!r}."
        )
    start = time.thread_time()
    integrate((0.0, 0.0, 0.01, 0.0), FORCE, CALIBRATION_SUBSTEPS)
    per_substep = (time.thread_time() - start) / CALIBRATION_SUBSTEPS
    return max(1, round(cpu_seconds_per_step / per_substep))


def _latency(value) -> float:
    """Check ``env_config["latency_s"]``: a finite number of seconds >= 0."""
    if not is_real_number(value) or not (0 <= value < math.inf):
        raise ValueError(
            f"env_config['latency_s'] must be a number of seconds >= 0 (0.002 for 2 ms, 0 for "
            f"none), got {value!r}."
        )
    return float(value)


register_env("SlowSimulator", SlowSimulator)
