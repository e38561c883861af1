"""A grid of traffic lights as a multi-agent env, and the controllers it is compared with.

Introduced in notebooks/21_custom_multi_agent_trainer.ipynb.

Every intersection of a ``rows x cols`` grid is an agent, ``"i_<row>_<col>"``, that picks each step
which pair of approaches gets green: ``0`` = north-south, ``1`` = east-west. Each intersection has
four incoming queues, indexed ``N, S, E, W`` by where their vehicles come from: vehicles queued at
the N approach drive south, straight through, into the N queue of the intersection below, or leave
the grid after the last row. Vehicles enter only on the grid's boundary, e.g. at the N approaches
of row 0. Everything is integer counts in numpy arrays, so the env steps fast.

One ``step(action_dict)``, in order:

1. Phase: an intersection whose requested phase differs from its current one switches if its
   current phase has been green for ``min_green`` steps; otherwise the request is ignored.
   A switch starts ``yellow`` all-red steps during which no approach moves.
2. Discharge: each green approach sends ``min(queue, saturation_flow)`` vehicles on, to the next
   intersection's matching queue or out of the grid. The vehicles still queued at an approach
   after this are *waiting*: they were there at the start of the step and could not cross.
3. Arrivals: each boundary entry lane receives one new vehicle with probability ``arrival_rate``
   (its own random draw; arrivals never depend on the actions, so with the same seed every
   controller faces exactly the same traffic).
4. Clocks advance; the episode is truncated (``"__all__"``) after ``episode_length`` steps.

Reward of an agent: minus the number of vehicles waiting at its four approaches this step. Summed
over agents and steps it is minus the total vehicle-steps spent waiting, the quantity behind
``mean_waiting_time`` (see :meth:`TrafficGridEnv.metrics`).

Baselines to compare a learned policy with are callables ``controller(obs, env) -> action_dict``:
:class:`FixedTimeController`, :class:`MaxPressureController` and :class:`LongestQueueController`;
:func:`run_controller` runs one episode with any of them and :func:`plot_queues` draws it.
"""

import numpy as np
from gymnasium import spaces

from course_lib.envs.examples import _positive_int, _with_defaults
from course_lib.envs.multi_agent import ALL_AGENTS, MultiAgentEnv
from course_lib.envs.registry import register_env
from course_lib.validation import did_you_mean, is_real_number, is_whole_number

N, S, E, W = 0, 1, 2, 3  # approaches, named for the side their vehicles come from
NS, EW = 0, 1  # phases: which pair of approaches has green
QUEUE_SCALE = 20  # queues are observed as min(queue, 20) / 20
CLOCK_SCALE = 10  # steps since the last switch are observed as min(steps, 10) / 10
OBS_DIM = 11
GROUP_SCHEMES = ("rows", "cols", "all", "each")


class TrafficGridEnv(MultiAgentEnv):
    """Traffic-signal control on a ``rows x cols`` grid; one agent per intersection.

    Introduced in notebooks/21_custom_multi_agent_trainer.ipynb.

    * observation of an agent, ``Box(0, 1, shape=(11,), float32)``: its 4 incoming queues
      ``[N, S, E, W]``, then the 4 queues those approaches feed into (0 where vehicles leave the
      grid), all scaled by 1/20 and clipped at 1; its phase one-hot ``[NS, EW]``; the steps since
      its last switch, scaled by 1/10 and clipped at 1.
    * action of an agent: ``Discrete(2)``, the phase it asks for (0 = NS green, 1 = EW green).
      Every agent acts every step.
    * reward of an agent: minus the vehicles waiting at its approaches this step.
    * infos of an agent: ``waiting`` (its waiting vehicles), ``queued`` (its queued vehicles after
      arrivals), ``network_waiting`` and ``in_network`` (the same for the whole grid).

    State: integer arrays ``queues`` ``(rows, cols, 4)``, ``phase`` and ``since_switch``
    ``(rows, cols)``; counters ``time_step``, ``arrivals``, ``departures`` (vehicles that left the
    grid) and ``total_waiting`` (vehicle-steps). The grid starts empty, so at every step
    ``queues.sum() == arrivals - departures``: no vehicle is created or lost.

    env_config keys: ``rows``, ``cols`` (default 2 x 2); ``arrival_rate``, the probability of a
    new vehicle per boundary entry lane per step, one number or ``{"ns": p, "ew": q}`` (default
    0.2); ``episode_length`` (200); ``saturation_flow``, vehicles per green approach per step (1);
    ``min_green`` (2); ``yellow`` (1); ``seed`` (None), used by the first ``reset()`` without one.
    """

    config_defaults = {
        "rows": 2,
        "cols": 2,
        "arrival_rate": 0.2,
        "episode_length": 200,
        "saturation_flow": 1,
        "min_green": 2,
        "yellow": 1,
        "seed": None,
    }

    def __init__(self, env_config: dict | None = None):
        config = _with_defaults(env_config, self.config_defaults, type(self).__name__)
        self.rows = _positive_int(config["rows"], "rows")
        self.cols = _positive_int(config["cols"], "cols")
        self.episode_length = _positive_int(config["episode_length"], "episode_length")
        self.saturation_flow = _positive_int(config["saturation_flow"], "saturation_flow")
        self.min_green = _positive_int(config["min_green"], "min_green")
        self.yellow = _positive_int(config["yellow"], "yellow", minimum=0)
        self.arrival_rate = _arrival_rates(config["arrival_rate"])
        self.seed = config["seed"]
        self.possible_agents = [agent_id(r, c) for r in range(self.rows) for c in range(self.cols)]
        self.observation_space = spaces.Box(0.0, 1.0, shape=(OBS_DIM,), dtype=np.float32)
        self.action_space = spaces.Discrete(2)
        self._sources, self._targets, self._exits, self._entry_rates = self._lane_links()
        self._rng = np.random.default_rng(self.seed)
        self.queues = None

    def _lane_links(self):
        """Flat lane indices: straight-through links ``sources[k] -> targets[k]``, exit lanes, and
        the arrival probability of every lane, ``(rows * cols * 4,)`` (0 off the boundary)."""
        lane = np.arange(self.rows * self.cols * 4).reshape(self.rows, self.cols, 4)
        links = [  # N approach of row r drives south into the N approach of row r + 1, etc.
            (lane[:-1, :, N], lane[1:, :, N]),
            (lane[1:, :, S], lane[:-1, :, S]),
            (lane[:, 1:, E], lane[:, :-1, E]),
            (lane[:, :-1, W], lane[:, 1:, W]),
        ]
        sources = np.concatenate([source.ravel() for source, _ in links])
        targets = np.concatenate([target.ravel() for _, target in links])
        exits = np.concatenate([lane[-1, :, N], lane[0, :, S], lane[:, 0, E], lane[:, -1, W]])
        entry_rates = np.zeros(lane.size)
        entry_rates[np.concatenate([lane[0, :, N], lane[-1, :, S]])] = self.arrival_rate["ns"]
        entry_rates[np.concatenate([lane[:, -1, E], lane[:, 0, W]])] = self.arrival_rate["ew"]
        return sources, targets, exits, entry_rates

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Empty the grid, set every light to NS green; return ``(obs, infos)`` keyed by agent."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.queues = np.zeros((self.rows, self.cols, 4), dtype=np.int64)
        self.phase = np.full((self.rows, self.cols), NS, dtype=np.int64)
        # Start as if the phase had been green long enough that the first switch is allowed.
        self.since_switch = np.full((self.rows, self.cols), self.yellow + self.min_green)
        self.time_step = self.arrivals = self.departures = self.total_waiting = 0
        return self._observations(), {agent: {} for agent in self.possible_agents}

    def step(self, action_dict: dict):
        """Advance one step (see the module docstring); return ``(obs, rewards, terminateds,
        truncateds, infos)``, dicts keyed by agent id, plus ``"__all__"`` in the two flags."""
        if self.queues is None or self.time_step >= self.episode_length:
            raise RuntimeError(
                "step() was called before reset() or after the episode ended "
                "(truncateds['__all__'] was True); call env.reset() first."
            )
        self.check_action_dict(action_dict, self.possible_agents)
        requested = np.array([action_dict[agent] for agent in self.possible_agents])
        requested = requested.reshape(self.rows, self.cols)
        switch = (requested != self.phase) & (self.since_switch >= self.yellow + self.min_green)
        self.phase = np.where(switch, requested, self.phase)
        self.since_switch[switch] = 0
        # Green: the phase's approaches, once the yellow steps since the last switch are over.
        green = np.zeros(self.queues.shape, dtype=bool)
        not_yellow = self.since_switch >= self.yellow
        green[..., [N, S]] = ((self.phase == NS) & not_yellow)[..., None]
        green[..., [E, W]] = ((self.phase == EW) & not_yellow)[..., None]
        moved = np.where(green, np.minimum(self.queues, self.saturation_flow), 0).ravel()
        lanes = self.queues.reshape(-1)  # a view: writing to it updates self.queues
        lanes -= moved
        waiting = self.queues.sum(axis=2).ravel()  # (n_agents,)
        lanes[self._targets] += moved[self._sources]  # each target has exactly one source
        departed = int(moved[self._exits].sum())
        arrived = self._rng.random(lanes.size) < self._entry_rates
        lanes += arrived
        self.since_switch += 1
        self.time_step += 1
        self.arrivals += int(arrived.sum())
        self.departures += departed
        network_waiting = int(waiting.sum())
        self.total_waiting += network_waiting
        queued = self.queues.sum(axis=2).ravel()
        truncated = self.time_step >= self.episode_length
        network = {"network_waiting": network_waiting, "in_network": int(queued.sum())}
        rewards, infos = {}, {}
        for index, agent in enumerate(self.possible_agents):
            rewards[agent] = -float(waiting[index])
            infos[agent] = {"waiting": int(waiting[index]), "queued": int(queued[index]), **network}
        terminateds = dict.fromkeys(self.possible_agents, False) | {ALL_AGENTS: False}
        truncateds = dict.fromkeys(self.possible_agents, truncated) | {ALL_AGENTS: truncated}
        return self._observations(), rewards, terminateds, truncateds, infos

    def downstream_queues(self) -> np.ndarray:
        """``(rows, cols, 4)``: the queue each approach feeds into; 0 where vehicles leave."""
        downstream = np.zeros(self.queues.size, dtype=np.int64)
        downstream[self._sources] = self.queues.reshape(-1)[self._targets]
        return downstream.reshape(self.queues.shape)

    def _observations(self) -> dict:
        queues = np.concatenate([self.queues, self.downstream_queues()], axis=-1)
        phase = np.stack([self.phase == NS, self.phase == EW], axis=-1)
        clock = np.minimum(self.since_switch, CLOCK_SCALE)[..., None] / CLOCK_SCALE
        parts = [np.minimum(queues, QUEUE_SCALE) / QUEUE_SCALE, phase, clock]
        obs = np.concatenate(parts, axis=-1).astype(np.float32).reshape(-1, OBS_DIM)
        return dict(zip(self.possible_agents, obs, strict=True))

    def metrics(self) -> dict:
        """Totals of the episode so far, the numbers controllers are compared on.

        ``mean_waiting_time``: vehicle-steps spent waiting (see the module docstring) divided by
        the vehicles that entered the grid, in steps per vehicle; vehicles still inside count with
        the waiting done so far. Arrivals do not depend on the controller, so for one seed this is
        proportional to the total waiting. ``throughput``: vehicles that left the grid.
        """
        return {
            "mean_waiting_time": self.total_waiting / max(self.arrivals, 1),
            "throughput": self.departures,
            "arrivals": self.arrivals,
            "in_network": int(self.queues.sum()),
            "total_waiting": self.total_waiting,
            "steps": self.time_step,
        }


def agent_id(row: int, col: int) -> str:
    """The id of the intersection at ``(row, col)``: ``"i_<row>_<col>"``.

    Introduced in notebooks/21_custom_multi_agent_trainer.ipynb.
    """
    return f"i_{row}_{col}"


def _arrival_rates(value) -> dict:
    """``arrival_rate`` as ``{"ns": p, "ew": q}``, checking each is a probability."""
    rates = dict(value) if isinstance(value, dict) else {"ns": value, "ew": value}
    if set(rates) != {"ns", "ew"}:
        raise ValueError(
            f"env_config['arrival_rate'] is one probability or a dict with keys 'ns' "
            f"and 'ew', e.g. {{'ns': 0.3, 'ew': 0.1}}; got {value!r}."
        )
    for direction, rate in rates.items():
        if not is_real_number(rate) or not 0 <= rate <= 1:
            raise ValueError(
                f"Arrival rate {direction!r} must be a probability in [0, 1] (new "
                f"vehicles per entry lane per step); got {rate!r}."
            )
    return {direction: float(rate) for direction, rate in rates.items()}


class FixedTimeController:
    """Switch the lights on a clock: NS green for ``ns_share`` of each ``cycle`` steps, then EW.

    Introduced in notebooks/21_custom_multi_agent_trainer.ipynb.

    Like every controller here, ``controller(obs, env) -> {agent_id: phase}``. All intersections
    switch together; the demand does not matter.
    """

    def __init__(self, cycle: int = 20, ns_share: float = 0.5):
        if not is_whole_number(cycle) or cycle < 2:
            raise ValueError(
                f"FixedTimeController(cycle=...) is the cycle length in steps, an "
                f"int >= 2; got {cycle!r}."
            )
        self.cycle = cycle
        self.ns_steps = round(cycle * ns_share)
        if not 0 < self.ns_steps < cycle:
            raise ValueError(
                f"ns_share must leave both phases at least one step of the {cycle}-"
                f"step cycle; got ns_share={ns_share!r}."
            )

    def __call__(self, obs: dict, env: TrafficGridEnv) -> dict:
        phase = NS if env.time_step % self.cycle < self.ns_steps else EW
        return dict.fromkeys(env.possible_agents, phase)


class MaxPressureController:
    """Give green to the phase with the larger pressure, per intersection.

    Introduced in notebooks/21_custom_multi_agent_trainer.ipynb.

    The pressure of a phase sums, over its two green approaches, the queue minus the queue it
    feeds into (0 for vehicles leaving the grid); ties keep the current phase. It reads the env's
    exact queues, not the clipped observation. Max-pressure keeps queues bounded whenever any
    controller can, so it pulls ahead of fixed time as demand nears capacity; on this grid,
    where roads never fill up, holding vehicles back for a long downstream queue costs it against
    the plain longest-queue rule.
    """

    def __call__(self, obs: dict, env: TrafficGridEnv) -> dict:
        return _heavier_phase(env.queues - env.downstream_queues(), env)


class LongestQueueController:
    """Give green to the pair of approaches with more vehicles queued (a greedy rule of thumb).

    Introduced in notebooks/21_custom_multi_agent_trainer.ipynb.
    """

    def __call__(self, obs: dict, env: TrafficGridEnv) -> dict:
        return _heavier_phase(env.queues, env)


def _heavier_phase(weights: np.ndarray, env: TrafficGridEnv) -> dict:
    """Per intersection, the phase whose two approaches weigh more in ``(rows, cols, 4)``."""
    ns, ew = weights[..., N] + weights[..., S], weights[..., E] + weights[..., W]
    phases = np.where(ns > ew, NS, np.where(ew > ns, EW, env.phase)).ravel()
    return {agent: int(phase) for agent, phase in zip(env.possible_agents, phases, strict=True)}


def run_controller(env: TrafficGridEnv, controller, seed: int | None = 0) -> dict:
    """Run one episode with ``controller(obs, env) -> action_dict``; return its metrics.

    Introduced in notebooks/21_custom_multi_agent_trainer.ipynb.

    Returns :meth:`TrafficGridEnv.metrics` plus ``queues``, ``(steps, n_agents)``, the vehicles
    queued at each intersection after every step, and ``agent_ids``, the column order.
    """
    obs, _ = env.reset(seed=seed)
    queues, done = [], False
    while not done:
        obs, _, terminateds, truncateds, _ = env.step(controller(obs, env))
        queues.append(env.queues.sum(axis=2).ravel())
        done = terminateds[ALL_AGENTS] or truncateds[ALL_AGENTS]
    return {**env.metrics(), "queues": np.array(queues), "agent_ids": list(env.possible_agents)}


def plot_queues(
    history: dict,
    *,
    total: bool = False,
    label: str | None = None,
    ax=None,
    title: str | None = None,
):
    """Plot a :func:`run_controller` result: one line per intersection, or their ``total``.

    Introduced in notebooks/21_custom_multi_agent_trainer.ipynb.

    To compare controllers, draw each with ``total=True, label=name`` on the same ``ax``.
    Returns the matplotlib axes.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4))
    queues = np.asarray(history["queues"])
    if total:
        ax.plot(queues.sum(axis=1), label=label or "all intersections")
    else:
        for column, agent in enumerate(history["agent_ids"]):
            ax.plot(queues[:, column], label=agent)
    default_title = "Vehicles queued in the grid" if total else "Vehicles queued per intersection"
    ax.set_title(title or default_title)
    ax.set_xlabel("step")
    ax.set_ylabel("vehicles queued")
    ax.legend()
    return ax


def intersection_groups(rows: int, cols: int, scheme: str = "rows") -> dict:
    """Map each intersection's agent id to a group id, e.g. for one policy per group.

    Introduced in notebooks/21_custom_multi_agent_trainer.ipynb.

    ``scheme``: ``"rows"`` (``"row_0"``, ...), ``"cols"`` (``"col_0"``, ...), ``"all"`` (one group,
    ``"all"``) or ``"each"`` (every intersection its own group, named by its agent id). Use it as
    ``policy_mapping_fn=lambda agent_id, episode, **kw: groups[agent_id]``.
    """
    if scheme not in GROUP_SCHEMES:
        hint = did_you_mean(scheme, GROUP_SCHEMES)
        raise ValueError(f"Unknown grouping scheme {scheme!r}.{hint} Schemes: {GROUP_SCHEMES}.")
    if any(not is_whole_number(n) or n < 1 for n in (rows, cols)):
        raise ValueError(
            f"intersection_groups needs the grid size as ints >= 1 (the env's rows "
            f"and cols); got rows={rows!r}, cols={cols!r}."
        )
    name = {
        "rows": lambda r, c: f"row_{r}",
        "cols": lambda r, c: f"col_{c}",
        "all": lambda r, c: "all",
        "each": agent_id,
    }[scheme]
    return {agent_id(r, c): name(r, c) for r in range(rows) for c in range(cols)}


register_env("TrafficGrid", TrafficGridEnv)
