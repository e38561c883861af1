"""How fast are the SampleBatch operations a trainer runs every iteration?

Collects 1,000 real CartPole-v1 steps (random actions, seeded) once, makes 100 batches from them
(each with its own episode ids, as if from 100 rollout fragments), then times
``SampleBatch.concat_samples`` on the 100 batches; ``split_by_episode`` and ``shuffle`` on the
100,000-row result; and GAE over all its episodes (``compute_advantages_by_episode``, the
postprocessing a trainer runs). Prints a markdown table; run with
``python benchmarks/bench_sample_batch.py``.
"""

from __future__ import annotations

import statistics
import time

import gymnasium as gym
import numpy as np

from course_lib.postprocessing import compute_advantages_by_episode
from course_lib.sample_batch import SampleBatch

ROWS_PER_BATCH = 1_000
NUM_BATCHES = 100
REPETITIONS = 20
SEED = 0


def collect_cartpole_steps(num_steps: int, seed: int) -> SampleBatch:
    """Steps CartPole-v1 with random actions, resetting at episode ends; one row per step."""
    env = gym.make("CartPole-v1")
    env.action_space.seed(seed)
    columns = {
        name: []
        for name in (
            "obs",
            "new_obs",
            "actions",
            "rewards",
            "terminateds",
            "truncateds",
            "eps_id",
            "t",
            "infos",
        )
    }
    obs, _ = env.reset(seed=seed)
    episode, t = 0, 0
    for _ in range(num_steps):
        action = env.action_space.sample()
        new_obs, reward, terminated, truncated, info = env.step(action)
        for name, value in (
            ("obs", obs),
            ("new_obs", new_obs),
            ("actions", action),
            ("rewards", reward),
            ("terminateds", terminated),
            ("truncateds", truncated),
            ("eps_id", episode),
            ("t", t),
            ("infos", info),
        ):
            columns[name].append(value)
        obs, t = new_obs, t + 1
        if terminated or truncated:
            obs, _ = env.reset()
            episode, t = episode + 1, 0
    env.close()
    return SampleBatch(
        {
            SampleBatch.OBS: np.asarray(columns["obs"], dtype=np.float32),
            SampleBatch.NEXT_OBS: np.asarray(columns["new_obs"], dtype=np.float32),
            SampleBatch.ACTIONS: np.asarray(columns["actions"], dtype=np.int64),
            SampleBatch.REWARDS: np.asarray(columns["rewards"], dtype=np.float32),
            SampleBatch.TERMINATEDS: np.asarray(columns["terminateds"], dtype=bool),
            SampleBatch.TRUNCATEDS: np.asarray(columns["truncateds"], dtype=bool),
            SampleBatch.EPS_ID: np.asarray(columns["eps_id"], dtype=np.int64),
            SampleBatch.T: np.asarray(columns["t"], dtype=np.int64),
            SampleBatch.INFOS: columns["infos"],
        }
    )


def make_batches(template: SampleBatch, count: int) -> list[SampleBatch]:
    """Copies of ``template`` whose episode ids do not collide, like fragments from different
    workers."""
    episodes_per_batch = int(template[SampleBatch.EPS_ID].max()) + 1
    batches = []
    for index in range(count):
        batch = template.copy()
        batch[SampleBatch.EPS_ID] = batch[SampleBatch.EPS_ID] + index * episodes_per_batch
        batches.append(batch)
    return batches


def time_ms(function, repetitions: int) -> list[float]:
    function()  # warm-up: first-touch page faults are not what we want to measure
    timings = []
    for _ in range(repetitions):
        start = time.perf_counter()
        function()
        timings.append((time.perf_counter() - start) * 1e3)
    return timings


def main() -> None:
    template = collect_cartpole_steps(ROWS_PER_BATCH, SEED)
    batches = make_batches(template, NUM_BATCHES)
    merged = SampleBatch.concat_samples(batches)
    rows = merged.count
    episodes = len(merged.split_by_episode())
    print(
        f"{NUM_BATCHES} batches x {ROWS_PER_BATCH} CartPole-v1 steps = {rows:,} rows, {episodes:,} "
        f"episodes, {merged.size_bytes() / 2**20:.1f} MiB; {REPETITIONS} repetitions each\n"
    )

    with_values = merged.copy(deep=False)
    with_values[SampleBatch.VF_PREDS] = np.zeros(rows, dtype=np.float32)

    def zero_values(obs):
        return np.zeros(len(obs), dtype=np.float32)

    cases = {
        f"concat_samples({NUM_BATCHES} batches)": lambda: SampleBatch.concat_samples(batches),
        "split_by_episode()": merged.split_by_episode,
        "shuffle(seed=0)": lambda: merged.shuffle(seed=0),
        "compute_advantages_by_episode()": lambda: compute_advantages_by_episode(
            with_values, value_fn=zero_values
        ),
    }
    print("| operation | median ms | min ms | max ms | rows/s (median) |")
    print("|---|---:|---:|---:|---:|")
    for name, function in cases.items():
        timings = time_ms(function, REPETITIONS)
        median = statistics.median(timings)
        print(
            f"| {name} | {median:.2f} | {min(timings):.2f} | "
            f"{max(timings):.2f} | {rows / median * 1e3:,.0f} |"
        )


if __name__ == "__main__":
    main()
