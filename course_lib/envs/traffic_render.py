"""Pictures of a TrafficGrid: the queue at every approach and the light of every intersection.

Introduced in notebooks/21_custom_multi_agent_trainer.ipynb.

:func:`snapshot` copies what a picture needs from the env after a step; :func:`record_snapshots`
runs one episode with a controller and keeps the snapshots at chosen steps; :func:`draw_grid`
draws one snapshot; :func:`plot_episode_frames` draws a strip of frames per controller, the same
traffic for each (arrivals never depend on the actions).

In a picture, row 0 is at the top and column 0 on the left, as in ``env.queues[row, col]``. The
queue of an approach is a bar on the side its vehicles come from (N above the intersection, W to
its left), with its length in vehicles written at the bar's end. A bar is green while its approach
has green, red otherwise; during the all-red (yellow) steps after a switch the intersection is
drawn orange and every bar red.
"""

import numpy as np

from course_lib.envs.traffic import EW, NS, E, N, S, TrafficGridEnv, W

GREEN, RED, AMBER = "#2ca02c", "#d62728", "#ff7f0e"
SPACING = 3.0  # distance between neighbouring intersections, in drawing units
BAR_LENGTH = 1.6  # the bar of a queue of ``max_queue`` vehicles or more
# Where each approach's bar starts (offset from the intersection's centre) and which way it grows.
APPROACH_GEOMETRY = {N: ((0, 0.35), (0, 1)), S: ((0, -0.35), (0, -1)),
                     E: ((0.35, 0), (1, 0)), W: ((-0.35, 0), (-1, 0))}  # fmt: skip


def snapshot(env: TrafficGridEnv) -> dict:
    """What the grid looks like after the last step: copies, so later steps do not change it.

    Returns ``queues`` ``(rows, cols, 4)``, ``phase`` ``(rows, cols)`` (0 = NS, 1 = EW),
    ``yellow`` ``(rows, cols)`` bool (the last step was an all-red step after a switch),
    ``time_step`` and ``total_waiting`` (vehicle-steps so far).
    """
    if env.queues is None:
        raise RuntimeError("snapshot(env) needs an env that was reset: call env.reset() first.")
    # since_switch counts the step of the switch itself, so the last step was all-red while it is
    # at most `yellow` (at reset it starts above `yellow + min_green`: no yellow).
    return {
        "queues": env.queues.copy(),
        "phase": env.phase.copy(),
        "yellow": env.since_switch <= env.yellow,
        "time_step": env.time_step,
        "total_waiting": env.total_waiting,
    }


def record_snapshots(env: TrafficGridEnv, controller, steps, seed: int | None = 0) -> list:
    """Run one episode with ``controller(obs, env) -> action_dict`` and return the
    :func:`snapshot` taken after each step in ``steps`` (step numbers from 1 to the episode
    length; 0 is the empty grid after reset), in the order given."""
    wanted = sorted(set(steps))
    if wanted and (wanted[0] < 0 or wanted[-1] > env.episode_length):
        raise ValueError(
            f"steps must lie in 0..{env.episode_length} (the episode length); got {list(steps)}."
        )
    obs, _ = env.reset(seed=seed)
    taken = {0: snapshot(env)} if 0 in wanted else {}
    while env.time_step < wanted[-1]:
        obs, *_ = env.step(controller(obs, env))
        if env.time_step in wanted:
            taken[env.time_step] = snapshot(env)
    return [taken[step] for step in steps]


def draw_grid(state: dict, *, ax=None, title: str | None = None, max_queue: int = 8):
    """Draw one :func:`snapshot`: a box per intersection labelled with its phase, a bar per
    approach as long as its queue (clipped at ``max_queue`` vehicles; the number is exact).

    Returns the matplotlib axes.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    queues, phase, yellow = state["queues"], state["phase"], state["yellow"]
    rows, cols = phase.shape
    for row in range(rows):
        for col in range(cols):
            x, y = col * SPACING, -row * SPACING
            amber = bool(yellow[row, col])
            green_pair = (N, S) if phase[row, col] == NS else (E, W)
            label = "all\nred" if amber else {NS: "NS", EW: "EW"}[int(phase[row, col])]
            ax.add_patch(Rectangle((x - 0.3, y - 0.3), 0.6, 0.6, color=AMBER if amber else "0.85"))
            ax.text(x, y, label, ha="center", va="center", fontsize=6)
            for approach, ((dx, dy), (ux, uy)) in APPROACH_GEOMETRY.items():
                queue = int(queues[row, col, approach])
                length = BAR_LENGTH * min(queue, max_queue) / max_queue
                colour = GREEN if approach in green_pair and not amber else RED
                x0, y0 = x + dx, y + dy
                ax.plot([x0, x0 + ux * length], [y0, y0 + uy * length], color=colour, lw=5,
                        solid_capstyle="butt")  # fmt: skip
                tip = (x0 + ux * (length + 0.3) + 0.3 * uy, y0 + uy * (length + 0.3) + 0.3 * ux)
                ax.text(*tip, str(queue), ha="center", va="center", fontsize=7, color=colour)
    pad = 0.35 + BAR_LENGTH + 0.5
    ax.set_xlim(-pad, (cols - 1) * SPACING + pad)
    ax.set_ylim(-(rows - 1) * SPACING - pad, pad)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or f"step {state['time_step']}", fontsize=9)
    return ax


def plot_episode_frames(env: TrafficGridEnv, controllers: dict, steps, seed: int | None = 0):
    """A strip of :func:`draw_grid` frames per controller (one row each, one column per step),
    every controller on the same traffic (episode ``seed``). Returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(controllers), len(steps), figsize=(2.3 * len(steps), 2.5 * len(controllers))
    )
    axes = np.asarray(axes).reshape(len(controllers), len(steps))
    for axes_row, (name, controller) in zip(axes, controllers.items(), strict=True):
        for ax, state in zip(axes_row, record_snapshots(env, controller, steps, seed), strict=True):
            queued = int(state["queues"].sum())
            draw_grid(state, ax=ax, title=f"{name}\nstep {state['time_step']}: {queued} queued")
    fig.tight_layout()
    return fig
