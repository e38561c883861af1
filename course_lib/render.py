"""Pictures for the lessons: an episode as a small animation, and box-and-arrow diagrams.

``episode_frames`` plays one episode with an action function and keeps every ``every``-th frame,
shrunk by ``scale``; ``animate`` turns the frames into an HTML animation that a notebook stores
(each frame is one small PNG inside the HTML, so fewer and smaller frames keep the file small).
``flow_diagram`` draws the data-flow figures of the 2021 RLlib tutorial as boxes and arrows.

Introduced in notebooks/03_environments.ipynb (a random policy's CartPole episode); lesson 13 shows
a trained PPO policy, lessons 06 and 08 draw their data flows with ``flow_diagram``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

import numpy as np

# gymnasium draws CartPole with pygame. Without these, importing it greets the reader, and
# initialising it looks for a sound card and a display and prints errors where there is none
# (a server, CI). An image is drawn off-screen either way.
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1; got {value!r}.")
    return int(value)


def _shrink(frame: np.ndarray, scale: int) -> np.ndarray:
    """Average ``scale`` x ``scale`` pixel blocks: (H, W, 3) -> (H // scale, W // scale, 3)."""
    if scale == 1:
        return frame
    from PIL import Image  # Pillow comes with matplotlib

    return np.asarray(Image.fromarray(frame).reduce(scale))


def episode_frames(
    env,
    act: Callable,
    *,
    max_steps: int = 500,
    every: int = 1,
    scale: int = 1,
    seed: int | None = None,
) -> tuple[list[np.ndarray], float]:
    """Play one episode with ``act(obs) -> action`` and keep a frame every ``every`` steps.

    Frames are taken after ``reset`` (step 0), after steps ``every``, ``2 * every``, ..., and after
    the last step, so the end of the episode is always shown. Each frame is the env's
    ``render()`` image ``(H, W, 3)`` shrunk to ``(H // scale, W // scale, 3)`` uint8 by averaging
    ``scale`` x ``scale`` blocks. The episode stops when it terminates, is truncated, or after
    ``max_steps`` steps. Returns ``(frames, episode_return)``, the return summed over every step
    played (not only the ones shown).

    ``env`` must be made with ``render_mode="rgb_array"``, e.g.
    ``gym.make("CartPole-v1", render_mode="rgb_array")``.
    Introduced in notebooks/03_environments.ipynb.
    """
    render_mode = getattr(env, "render_mode", None)
    if render_mode != "rgb_array":
        raise ValueError(
            "episode_frames needs an env that renders images: make it with "
            f"render_mode='rgb_array' (got render_mode={render_mode!r}), e.g. "
            "gym.make('CartPole-v1', render_mode='rgb_array')."
        )
    if not callable(act):
        raise ValueError(f"act must be a function obs -> action; got {act!r:.60}.")
    max_steps = _positive_int("max_steps", max_steps)
    every = _positive_int("every", every)
    scale = _positive_int("scale", scale)

    def frame() -> np.ndarray:
        image = np.asarray(env.render())
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"env.render() returned an array of shape {image.shape} and dtype {image.dtype}; "
                "expected an RGB image (H, W, 3) of uint8."
            )
        return _shrink(image, scale)

    obs, _ = env.reset(seed=seed)
    frames, episode_return = [frame()], 0.0
    for step in range(1, max_steps + 1):
        obs, reward, terminated, truncated, _ = env.step(act(obs))
        episode_return += float(reward)
        done = terminated or truncated or step == max_steps
        if step % every == 0 or done:
            frames.append(frame())
        if done:
            break
    return frames, episode_return


def animate(frames: Sequence[np.ndarray], *, fps: int = 20, title: str = ""):
    """An ``IPython.display.HTML`` animation of ``frames`` (each ``(H, W, 3)`` uint8), with play
    controls, shown one image pixel per screen pixel.

    The figure is closed, so the notebook stores the animation only, not a still image as well.
    Introduced in notebooks/03_environments.ipynb.
    """
    import matplotlib.pyplot as plt
    from IPython.display import HTML
    from matplotlib.animation import FuncAnimation

    if len(frames) == 0:
        raise ValueError("animate needs at least one frame; got an empty sequence.")
    shapes = {np.shape(f) for f in frames}
    if len(shapes) != 1 or len(next(iter(shapes))) != 3 or next(iter(shapes))[2] != 3:
        raise ValueError(
            f"animate needs frames of one shape (H, W, 3); got shapes {sorted(shapes)[:3]}."
        )
    fps = _positive_int("fps", fps)
    height, width, _ = next(iter(shapes))
    dpi, title_px = 100, 22 if title else 0
    fig = plt.figure(figsize=(width / dpi, (height + title_px) / dpi), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, height / (height + title_px)))
    ax.set_axis_off()
    image = ax.imshow(frames[0], interpolation="nearest")
    if title:
        fig.suptitle(title, fontsize=8, y=1 - 0.15 * title_px / (height + title_px))

    def show_frame(index: int):
        image.set_data(frames[index])
        return (image,)

    animation = FuncAnimation(fig, show_frame, frames=len(frames), interval=1000 / fps, blit=True)
    html = animation.to_jshtml(fps=fps, default_mode="once")
    plt.close(fig)
    return HTML(html)


# A box: (x, y) of its centre and its text. An arrow: (from, to, label), or (from, to, label, bend)
# for a curve; bend is matplotlib's arc3 ``rad``: the curve's middle sits bend/2 of the distance
# between the two centres off the straight line, to the left of the direction of travel.
Box = tuple[float, float, str]
Arrow = tuple[str, str, str] | tuple[str, str, str, float]


def flow_diagram(
    boxes: Mapping[str, Box],
    arrows: Sequence[Arrow],
    *,
    title: str = "",
    box_size: tuple[float, float] = (1.9, 0.75),
    colors: Mapping[str, str] | None = None,
    figsize: tuple[float, float] = (9.0, 2.6),
    dpi: int = 90,
):
    """Draw a data-flow diagram: named boxes at ``(x, y)`` centres, joined by labelled arrows.

    ``box_size`` is (width, height) in the units of the centres; ``colors`` maps a box name to its
    fill colour. Arrows start and end at the box edges. Returns the matplotlib Figure.
    Introduced in notebooks/06_models.ipynb.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    for arrow in arrows:
        missing = [name for name in arrow[:2] if name not in boxes]
        if missing:
            raise ValueError(
                f"arrow {tuple(arrow[:2])} names {missing[0]!r}, which is not a box; "
                f"boxes: {list(boxes)}."
            )
    colors = colors or {}
    width, height = box_size
    fig, ax = plt.subplots(figsize=figsize, dpi=dpi)
    patches = {}
    for name, (x, y, text) in boxes.items():
        patch = FancyBboxPatch(
            (x - width / 2, y - height / 2),
            width,
            height,
            boxstyle="round,pad=0.02,rounding_size=0.08",
            facecolor=colors.get(name, "#dbe9f6"),
            edgecolor="#35608c",
            linewidth=1.2,
        )
        ax.add_patch(patch)
        ax.text(x, y, text, ha="center", va="center", fontsize=8.5)
        patches[name] = patch
    xs = [x for x, _, _ in boxes.values()]
    ys = [y for _, y, _ in boxes.values()]
    for source, target, label, *bend in arrows:
        rad = float(bend[0]) if bend else 0.0
        (x1, y1, _), (x2, y2, _) = boxes[source], boxes[target]
        ax.add_patch(
            FancyArrowPatch(
                (x1, y1),
                (x2, y2),
                patchA=patches[source],
                patchB=patches[target],
                connectionstyle=f"arc3,rad={rad}",
                arrowstyle="-|>",
                mutation_scale=12,
                linewidth=1.2,
                color="#444444",
            )
        )
        # The middle of arc3's quadratic curve (equal aspect, so data and screen units agree).
        mid_x, mid_y = (x1 + x2) / 2 + rad * (y2 - y1) / 2, (y1 + y2) / 2 - rad * (x2 - x1) / 2
        ys.append(mid_y)
        if label:
            # A straight arrow keeps its label just above it; a curve carries it at its middle.
            ax.text(
                mid_x,
                mid_y + (0.04 if rad == 0 else 0),
                label,
                ha="center",
                va="bottom" if rad == 0 else "center",
                fontsize=7.5,
                color="#333333",
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 1} if rad else None,
            )
    ax.set_xlim(min(xs) - width / 2 - 0.1, max(xs) + width / 2 + 0.1)
    ax.set_ylim(min(ys) - height / 2 - 0.1, max(ys) + height / 2 + 0.1)
    ax.set_aspect("equal")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


__all__ = ["animate", "episode_frames", "flow_diagram"]
