"""Lesson 15's scaling figures: env steps/s against the number of rollout workers, per kind of cost.

Usage: ``python benchmarks/bench_scaling.py [--rounds 3] [--quick] [--only cpu latency]``.

Each table samples ``SlowSimulator`` with course_lib's ``WorkerSet`` on real Ray, with 0 (the
driver samples itself), 1, 2 and 4 rollout workers, and prints env steps/s and the speedup over
0 workers as Markdown for BENCHMARKS.md:

* ``cpu``: a CPU-bound step, about 1 ms of computation (``cpu_substeps`` calibrated on this
  machine with ``calibrate_cpu_substeps``). Expected: the speedup stops near the core count.
* ``latency``: a latency-bound step, 2 ms of waiting (``latency_s=0.002``). Expected: the speedup
  keeps growing past the core count, since a waiting worker leaves its core to the others.

One round times one ``workers.sample()`` of ``rollout_fragment_length`` steps per worker (one
env each; PG's policy, a 256x256 network, chooses the actions) for every worker count in turn,
after one warm-up call each; every figure is the median over ``--rounds`` rounds. Alternating
the worker counts within a round spreads a change in the machine's load over all of them alike.
All four worker sets stay up for the whole table, 7 remote workers: ``num_cpus_per_worker=0.25``
lets Ray start them all on 2 CPUs (with the default of 1 CPU, Ray would keep the 3rd worker
waiting for a free CPU, forever). The number is Ray's bookkeeping, not a limit: a sampling
worker uses a whole core if it can get one.

* ``score``: synchronous PPO against IMPALA on the latency-bound simulator, from trainer
  construction to a 20-episode mean return of 475 (``--quick``: 150): wall time, env steps and
  env steps/s. Both use the same 2 rollout workers with 8 envs each and their CartPole tuned
  examples' learning settings (PPO's fragment shortened to 16 so that its batch stays 256), so
  what differs is the dataflow: PPO's workers wait for each other and for the learner; IMPALA's
  never wait.

To add a table, write a function ``table(rounds, quick) -> str`` returning its Markdown and add
it to ``TABLES``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import ray
import torch
import yaml

import course_lib
from course_lib.agents import get_trainer_class
from course_lib.envs import SlowSimulator, calibrate_cpu_substeps
from course_lib.evaluation import WorkerSet
from course_lib.policy import PGTorchPolicy

WORKER_COUNTS = (0, 1, 2, 4)
CPU_SECONDS_PER_STEP = 0.001
LATENCY_S = 0.002


def sampling_rates(env_config: dict, rounds: int, fragment: int) -> dict[int, float]:
    """Median env steps/s of ``WorkerSet.sample()`` for each worker count in WORKER_COUNTS."""
    config = {
        "env_config": env_config,
        "rollout_fragment_length": fragment,
        "num_cpus_per_worker": 0.25,
        "seed": 0,
    }
    worker_sets = {
        count: WorkerSet(
            env_creator=SlowSimulator,
            policy_class=PGTorchPolicy,
            trainer_config=config,
            num_workers=count,
        )
        for count in WORKER_COUNTS
    }
    try:
        for workers in worker_sets.values():
            workers.sample()  # warm-up: actors started, torch's first forward pass done
        rates: dict[int, list[float]] = {count: [] for count in WORKER_COUNTS}
        for _ in range(rounds):
            for count, workers in worker_sets.items():
                start = time.perf_counter()
                batch = workers.sample()
                rates[count].append(batch.count / (time.perf_counter() - start))
    finally:
        for workers in worker_sets.values():
            workers.stop()
    return {count: statistics.median(values) for count, values in rates.items()}


def cpu_seconds_per_step(env_config: dict, steps: int = 200) -> float:
    """CPU time of one env step alone (no policy), measured in this process."""
    env = SlowSimulator(env_config)
    env.reset(seed=0)
    start = time.thread_time()
    for step in range(steps):
        _, _, terminated, truncated, _ = env.step(step % 2)
        if terminated or truncated:
            env.reset()
    return (time.thread_time() - start) / steps


def markdown(title: str, rates: dict[int, float], rounds: int) -> str:
    lines = [
        f"### {title}\n",
        f"| rollout workers | env steps/s (median of {rounds}) | speedup vs 0 workers |",
        "|---:|---:|---:|",
    ]
    for count, rate in rates.items():
        label = "0 (the driver samples)" if count == 0 else str(count)
        lines.append(f"| {label} | {rate:,.0f} | {rate / rates[0]:.2f}x |")
    return "\n".join(lines)


def cpu_bound_table(rounds: int, quick: bool) -> str:
    substeps = calibrate_cpu_substeps(CPU_SECONDS_PER_STEP)
    env_config = {"cpu_substeps": substeps}
    per_step = cpu_seconds_per_step(env_config)
    rates = sampling_rates(env_config, rounds, fragment=50 if quick else 250)
    title = (
        f"CPU-bound SlowSimulator: cpu_substeps={substeps}, "
        f"{per_step * 1e3:.2f} ms of CPU per env step"
    )
    return markdown(title, rates, rounds)


def latency_bound_table(rounds: int, quick: bool) -> str:
    env_config = {"latency_s": LATENCY_S}
    per_step = cpu_seconds_per_step(env_config, steps=50)
    rates = sampling_rates(env_config, rounds, fragment=25 if quick else 125)
    title = (
        f"Latency-bound SlowSimulator: latency_s={LATENCY_S} "
        f"({per_step * 1e3:.3f} ms of CPU per env step)"
    )
    return markdown(title, rates, rounds)


TUNED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tuned_examples")
SAMPLERS = {"num_workers": 2, "num_envs_per_worker": 8, "num_cpus_per_worker": 0.5}


def tuned_config(file_name: str) -> dict:
    """The ``config`` of a tuned example in tuned_examples/."""
    with open(os.path.join(TUNED, file_name)) as file:
        (experiment,) = yaml.safe_load(file).values()
    return experiment["config"]


def time_to_score(run: str, config: dict, score: float, max_steps: int) -> tuple[float, int]:
    """Seconds from trainer construction to a 20-episode mean >= score, and env steps then
    (``inf`` seconds if ``max_steps`` came first)."""
    start = time.perf_counter()
    trainer = get_trainer_class(run)(config=config)
    try:
        while True:
            result = trainer.train()
            if result["episode_reward_mean"] >= score:
                return time.perf_counter() - start, result["timesteps_total"]
            if result["timesteps_total"] >= max_steps:
                return float("inf"), result["timesteps_total"]
    finally:
        trainer.stop()


def score_table(rounds: int, quick: bool) -> str:
    score = 150 if quick else 475
    env = {"env": "SlowSimulator", "env_config": {"latency_s": LATENCY_S}}
    settings = {"metrics_smoothing_episodes": 20, **env, **SAMPLERS}
    runs = {
        "PPO (synchronous)": (
            "PPO",
            {
                **tuned_config("ppo-cartpole.yaml"),
                **settings,
                "vectorize_envs": False,
                "rollout_fragment_length": 16,
            },
        ),
        "IMPALA (asynchronous)": ("IMPALA", {**tuned_config("impala-cartpole.yaml"), **settings}),
    }
    lines = [
        f"### Time to a 20-episode mean of {score} on SlowSimulator (latency_s={LATENCY_S}), "
        f"2 workers x 8 envs\n",
        f"| trainer | seconds (median of {rounds}) | env steps (median) | env steps/s | runs |",
        "|---|---:|---:|---:|---|",
    ]
    for label, (run, config) in runs.items():
        times, steps = [], []
        for seed in range(rounds):
            seconds, count = time_to_score(run, {**config, "seed": seed}, score, 200_000)
            times.append(seconds)
            steps.append(count)
        each = ", ".join(f"{t:.0f} s / {s / 1000:.0f}k" for t, s in zip(times, steps, strict=True))
        seconds, count = statistics.median(times), statistics.median(steps)
        lines.append(
            f"| {label} | {seconds:.1f} | {count:,.0f} | {count / seconds:,.0f} | {each} |"
        )
    return "\n".join(lines)


TABLES = {"cpu": cpu_bound_table, "latency": latency_bound_table, "score": score_table}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed samples per cell (median)")
    parser.add_argument("--quick", action="store_true", help="smoke test: 1 round, short samples")
    parser.add_argument("--only", nargs="+", choices=sorted(TABLES), default=list(TABLES))
    args = parser.parse_args()
    rounds = 1 if args.quick else args.rounds
    torch.set_num_threads(1)
    course_lib.init_ray()
    print(
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, Ray "
        f"{ray.__version__}, Ray CPUs {ray.cluster_resources()['CPU']:g}; load average before: "
        f"{', '.join(f'{load:.2f}' for load in os.getloadavg())}\n"
    )
    try:
        for name in args.only:
            print(TABLES[name](rounds, args.quick), end="\n\n", flush=True)
    finally:
        ray.shutdown()
    print(f"load average after: {', '.join(f'{load:.2f}' for load in os.getloadavg())}")


if __name__ == "__main__":
    main()
