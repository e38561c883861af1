"""course_lib against RLlib 2.60 in one run: PPO learning CartPole-v1, and sampling throughput.

1. **Learning race.** course_lib's PPO with ``tuned_examples/ppo-cartpole.yaml`` and RLlib's PPO
   with the config of RLlib's own CartPole example (``rllib/examples/algorithms/ppo/
   cartpole_ppo.py`` in the Ray repository; the wheel does not ship it), taking turns seed by
   seed. Each run is timed from building the trainer (or Algorithm) to the first ``train()``
   result whose 20-episode mean return is >= 475, or to a cap on env steps and seconds.
2. **Sampling throughput.** One process, 8 CartPole envs, the same [64, 64] tanh policy net:
   course_lib's local ``RolloutWorker`` against RLlib's ``SingleAgentEnvRunner`` built in this
   process (no Ray actors), with gymnasium's own vector env stepping random actions as the
   ceiling. Rounds alternate the three samplers; then cProfile shows where each spends a step.

Usage: ``python benchmarks/bench_vs_rllib.py [--quick] [--seeds 0 1 2] [--rounds 5]``.
``--quick`` is a smoke test (under a minute): one seed, tiny caps, few steps.
Figures and what they mean: BENCHMARKS.md, section "course_lib vs RLlib 2.60"; lesson 19
(notebooks/19_rllib_today.ipynb) quotes them.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import os
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import ray
import torch
from bench_algorithms import load_tuned

from course_lib.agents import get_trainer_class
from course_lib.agents.ppo import PPOTorchPolicy
from course_lib.cluster import init_ray
from course_lib.evaluation import RolloutWorker

TARGET = 475.0
SMOOTHING_EPISODES = 20
NUM_ENVS = 8
NET = {"fcnet_hiddens": [64, 64], "fcnet_activation": "tanh", "vf_share_layers": False}


@dataclass
class Caps:
    """When a learning run gives up, and how much the throughput part samples."""

    env_steps: int
    seconds: float
    sample_steps: int  # per sample() call, in every round and in the profile


FULL = Caps(env_steps=1_000_000, seconds=360.0, sample_steps=8_000)
QUICK = Caps(env_steps=8_000, seconds=60.0, sample_steps=2_000)


@dataclass
class Race:
    """One learning run: seconds and env steps to the target, or to the cap that stopped it."""

    contender: str
    seed: int
    build_s: float
    seconds: float
    env_steps: int
    final_mean: float
    reached: bool


def rllib_ppo_config(seed: int):
    """RLlib's CartPole PPO example, sized for 2 cores, with a 20-episode mean like course_lib's.

    From the example: lr 3e-4, 6 epochs, vf_loss_coeff 0.01, one [32] linear layer shared by the
    policy and value heads; PPO's defaults for the rest (train batch 4,000, minibatch 128,
    lambda 1.0, KL loss on). Changed: the example's 4 EnvRunners x 16 envs and 1 remote Learner
    become 64 envs sampled and learned on in the driver (measured alternatives in BENCHMARKS.md),
    which keeps its 64 envs and rollout fragment length; its 100-episode mean becomes 20.
    """
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    return (
        PPOConfig()
        .environment("CartPole-v1")
        .env_runners(num_env_runners=0, num_envs_per_env_runner=64)
        .learners(num_learners=0)
        .training(lr=0.0003, num_epochs=6, vf_loss_coeff=0.01)
        .rl_module(
            model_config=DefaultModelConfig(
                fcnet_hiddens=[32], fcnet_activation="linear", vf_share_layers=True
            )
        )
        .reporting(metrics_num_episodes_for_smoothing=SMOOTHING_EPISODES)
        .debugging(seed=seed)
    )


def rllib_ppo_config_with_course_net(seed: int):
    """The same, with course_lib's network: [64, 64] tanh, and a separate value network."""
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    return rllib_ppo_config(seed).rl_module(model_config=DefaultModelConfig(**NET))


def rllib_ppo_config_with_course_settings(seed: int):
    """course_lib's tuned example (tuned_examples/ppo-cartpole.yaml) translated to a PPOConfig:
    the same network, batch, minibatch, epochs, lr, lambda and gamma, and 8 envs in the driver.

    The translation is the one lesson 19 teaches (exercise 19.1). RLlib's own defaults stay for
    what the YAML does not set (clip 0.3, vf_loss_coeff 1.0, KL loss with coefficient 0.2).
    """
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    config, _ = load_tuned("PPO")
    return (
        PPOConfig()
        .environment("CartPole-v1")
        .env_runners(
            num_env_runners=config["num_workers"],
            num_envs_per_env_runner=config["num_envs_per_worker"],
            rollout_fragment_length=config["rollout_fragment_length"],
        )
        .learners(num_learners=0)
        .training(
            lr=config["lr"],
            gamma=config["gamma"],
            lambda_=config["lambda"],
            train_batch_size_per_learner=config["train_batch_size"],
            minibatch_size=config["sgd_minibatch_size"],
            num_epochs=config["num_sgd_iter"],
        )
        .rl_module(model_config=DefaultModelConfig(**NET))
        .reporting(metrics_num_episodes_for_smoothing=SMOOTHING_EPISODES)
        .debugging(seed=seed)
    )


def build_rllib_ppo(seed: int):
    return rllib_ppo_config(seed).build_algo()


def build_rllib_ppo_with_course_net(seed: int):
    return rllib_ppo_config_with_course_net(seed).build_algo()


def build_rllib_ppo_with_course_settings(seed: int):
    return rllib_ppo_config_with_course_settings(seed).build_algo()


def build_course_lib(algo: str, seed: int):
    """course_lib's trainer for ``algo`` with its tuned example, and a 20-episode mean."""
    config, _ = load_tuned(algo)
    config.update(seed=seed, metrics_smoothing_episodes=SMOOTHING_EPISODES)
    return get_trainer_class(algo)(config=config)


def build_course_lib_ppo(seed: int):
    return build_course_lib("PPO", seed)


def read_course_lib(result: dict) -> tuple[int, float]:
    return result["timesteps_total"], result["episode_reward_mean"]


def read_rllib(result: dict) -> tuple[int, float]:
    # Before the first episode ends RLlib reports no mean at all; NaN never reaches the target.
    mean = float(result["env_runners"].get("episode_return_mean", float("nan")))
    return int(result["num_env_steps_sampled_lifetime"]), mean


@dataclass(frozen=True)
class Contender:
    """A PPO setup in the race: how to build it and how to read its train() results."""

    name: str
    network: str
    build: Callable[[int], object]
    read: Callable[[dict], tuple[int, float]]


COURSE_LIB = Contender(
    "course_lib",
    "[64, 64] tanh, separate value net (tuned example)",
    build_course_lib_ppo,
    read_course_lib,
)
CONTENDERS = [
    COURSE_LIB,
    Contender(
        "RLlib 2.60",
        "[32] linear, shared (tuned example)",
        build_rllib_ppo,
        read_rllib,
    ),
    # RLlib's hyperparameters with course_lib's network: separates the net from the rest.
    Contender(
        "RLlib 2.60, course_lib's net",
        "[64, 64] tanh, separate value net",
        build_rllib_ppo_with_course_net,
        read_rllib,
    ),
    # course_lib's tuned example itself, run by RLlib: same settings, so what differs is the code.
    Contender(
        "RLlib 2.60, course_lib's settings",
        "[64, 64] tanh, separate value net (course_lib's tuned example)",
        build_rllib_ppo_with_course_settings,
        read_rllib,
    ),
]


def race(contender: Contender, seed: int, caps: Caps) -> Race:
    """Train until the 20-episode mean reaches TARGET or a cap is hit; time includes the build."""
    start = time.perf_counter()
    algo = contender.build(seed)
    build_s = time.perf_counter() - start
    try:
        while True:
            env_steps, mean = contender.read(algo.train())
            seconds = time.perf_counter() - start
            if mean >= TARGET or env_steps >= caps.env_steps or seconds >= caps.seconds:
                break
    finally:
        algo.stop()
    return Race(contender.name, seed, build_s, seconds, env_steps, mean, bool(mean >= TARGET))


def median_cell(values: list[float], all_reached: bool, fmt: str) -> str:
    # A median over runs that hit a cap is only a lower bound on the time to the target.
    return ("" if all_reached else ">= ") + format(statistics.median(values), fmt)


@dataclass
class Medians:
    """A contender's median seconds and env steps over its runs, and whether every run reached."""

    seconds: float
    env_steps: float
    all_reached: bool


def print_race_table(races: list[Race], contenders: list, algorithm: str) -> dict[str, Medians]:
    """A row per run and a median row per contender (anything with a name and a network)."""
    print(
        f"\n### {algorithm} on CartPole-v1 to a {SMOOTHING_EPISODES}-episode mean of "
        f"{TARGET:.0f}\n\n"
        "| library | network | seed | build (s) | seconds | env steps | final mean | reached |\n"
        "|---|---|---:|---:|---:|---:|---:|---|"
    )
    networks = {contender.name: contender.network for contender in contenders}
    for r in races:
        print(
            f"| {r.contender} | {networks[r.contender]} | {r.seed} | {r.build_s:.2f} | "
            f"{r.seconds:.1f} | {r.env_steps:,} | {r.final_mean:.0f} | "
            f"{'yes' if r.reached else 'not reached'} |"
        )
    medians = {}
    for contender in contenders:
        runs = [r for r in races if r.contender == contender.name]
        done = all(r.reached for r in runs)
        medians[contender.name] = Medians(
            statistics.median(r.seconds for r in runs),
            statistics.median(r.env_steps for r in runs),
            done,
        )
        print(
            f"| {contender.name} | median | {', '.join(str(r.seed) for r in runs)} | "
            f"{statistics.median(r.build_s for r in runs):.2f} | "
            f"{median_cell([r.seconds for r in runs], done, '.1f')} | "
            f"{median_cell([r.env_steps for r in runs], done, ',.0f')} | "
            f"{statistics.median(r.final_mean for r in runs):.0f} | "
            f"{sum(r.reached for r in runs)}/{len(runs)} |"
        )
    return medians


def print_ratios_to_course_lib(medians: dict[str, Medians], ray_start_s: float) -> None:
    print()
    lib = medians[COURSE_LIB.name]
    for contender in CONTENDERS[1:]:
        other = medians[contender.name]
        print(
            f"{contender.name} / course_lib, median seconds: {other.seconds / lib.seconds:.1f}x; "
            f"median env steps: {other.env_steps / lib.env_steps:.1f}x."
        )
    print(
        f"Starting Ray, which RLlib needs and course_lib's tuned example (num_workers: 0) does "
        f"not, took {ray_start_s:.1f} s once, before the first build and outside these times."
    )


def make_cartpole(env_config) -> gym.Env:
    return gym.make("CartPole-v1")


class RawVectorEnv:
    """gymnasium's own vector env with random actions: the most a sampler could reach."""

    def __init__(self, num_steps: int, num_envs: int = NUM_ENVS):
        self.num_steps = num_steps
        self.num_envs = num_envs
        self.env = gym.make_vec("CartPole-v1", num_envs=num_envs, vectorization_mode="sync")
        self.env.reset(seed=0)
        self.env.action_space.seed(0)
        self.just_reset = np.zeros(num_envs, dtype=bool)

    def sample(self) -> int:
        steps = 0
        while steps < self.num_steps:
            _, _, terminated, truncated, _ = self.env.step(self.env.action_space.sample())
            # With next-step autoreset, a step after an episode ends is a reset, not a transition.
            steps += self.num_envs - int(self.just_reset.sum())
            self.just_reset = terminated | truncated
        return steps


class CourseLibSampler:
    """A local RolloutWorker: one batched forward pass (policy and value) for its envs a step."""

    vectorize = False

    def __init__(self, num_steps: int, num_envs: int = NUM_ENVS):
        self.worker = RolloutWorker(
            env_creator=make_cartpole,
            policy_class=PPOTorchPolicy,
            config={
                "env": "CartPole-v1",
                "num_envs_per_worker": num_envs,
                "rollout_fragment_length": num_steps // num_envs,
                "model": NET,
                "seed": 0,
                "vectorize_envs": self.vectorize,
            },
        )

    def sample(self) -> int:
        return self.worker.sample().count


class CourseLibFastSampler(CourseLibSampler):
    """The same worker on its fast path: CartPole's vector env and column buffers (lesson 08)."""

    vectorize = True


class RLlibSampler:
    """RLlib's SingleAgentEnvRunner built in this process, as an Algorithm's local runner is."""

    def __init__(self, num_steps: int, num_envs: int = NUM_ENVS):
        from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

        config = rllib_ppo_config_with_course_net(seed=0).env_runners(
            num_envs_per_env_runner=num_envs
        )
        self.runner = SingleAgentEnvRunner(config=config)
        self.num_steps = num_steps

    def sample(self) -> int:
        episodes = self.runner.sample(num_timesteps=self.num_steps)
        # An Algorithm collects metrics after every sample; doing it here keeps memory flat.
        self.runner.get_metrics()
        return sum(len(episode) for episode in episodes)


SAMPLERS = {
    "raw gymnasium vector env (random actions)": RawVectorEnv,
    "course_lib RolloutWorker": CourseLibSampler,
    "RLlib SingleAgentEnvRunner": RLlibSampler,
}


def alternate_rates(samplers: dict, rounds: int) -> dict:
    """Steps/s of each sampler (a list per key of ``samplers``), alternating within every round
    after one warm-up sample each."""
    for sampler in samplers.values():
        sampler.sample()
    rates = {name: [] for name in samplers}
    for _ in range(rounds):
        for name, sampler in samplers.items():
            start = time.perf_counter()
            steps = sampler.sample()
            rates[name].append(steps / (time.perf_counter() - start))
    return rates


def throughput(caps: Caps, rounds: int) -> dict:
    """The three samplers, alternated; a table of their medians."""
    samplers = {name: cls(caps.sample_steps) for name, cls in SAMPLERS.items()}
    rates = alternate_rates(samplers, rounds)
    medians = {name: statistics.median(values) for name, values in rates.items()}
    raw = medians["raw gymnasium vector env (random actions)"]
    print(
        f"\n### Sampling CartPole-v1: one process, {NUM_ENVS} envs, [64, 64] tanh net\n\n"
        f"| sampler | env steps/s (median of {rounds}) | min | max | share of raw |\n"
        "|---|---:|---:|---:|---:|"
    )
    for name, values in rates.items():
        print(
            f"| {name} | {medians[name]:,.0f} | {min(values):,.0f} | {max(values):,.0f} | "
            f"{medians[name] / raw:.1%} |"
        )
    ratio = medians["course_lib RolloutWorker"] / medians["RLlib SingleAgentEnvRunner"]
    print(f"\ncourse_lib / RLlib, median steps/s: {ratio:.1f}x")
    return samplers


def short_name(func: tuple) -> str:
    filename, line, name = func
    if filename == "~":  # a built-in: pstats names it like "<method 'step' of ...>"
        return name
    parts = filename.replace(os.sep, "/").split("/")
    for root in ("ray", "course_lib", "gymnasium", "torch", "numpy"):
        if root in parts:
            parts = parts[len(parts) - parts[::-1].index(root) - 1 :]
            break
    return f"{'/'.join(parts[-3:])}:{line}({name})"


def profile(samplers: dict, top: int) -> None:
    """The top entries by cumulative time of one sample, in microseconds per env step."""
    for name in ("course_lib RolloutWorker", "RLlib SingleAgentEnvRunner"):
        profiler = cProfile.Profile()
        steps = profiler.runcall(samplers[name].sample)
        stats = pstats.Stats(profiler)
        total = max(entry[3] for entry in stats.stats.values())
        # This file's own wrapper is 100% by definition and says nothing about the sampler.
        rows = sorted(
            (item for item in stats.stats.items() if item[0][0] != __file__),
            key=lambda item: item[1][3],
            reverse=True,
        )
        print(
            f"\n#### Profile: {name}, {steps:,} steps under cProfile "
            f"({total / steps * 1e6:.0f} us per step)\n\n"
            "| function | calls | cumulative us per env step | share |\n|---|---:|---:|---:|"
        )
        for func, (_, ncalls, _, cumtime, _) in rows[:top]:
            print(
                f"| `{short_name(func)}` | {ncalls:,} | {cumtime / steps * 1e6:.1f} | "
                f"{cumtime / total:.0%} |"
            )


def require_rllib() -> None:
    if importlib.util.find_spec("ray.rllib") is None:
        raise SystemExit(
            "RLlib is not installed, and this benchmark runs it. Install the course's rllib "
            "extra: pip install -e '.[rllib]' (make setup does it)."
        )


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """--quick, --seeds and --rounds, shared with bench_peers.py."""
    parser.add_argument("--quick", action="store_true", help="smoke test: one seed, tiny caps")
    parser.add_argument("--seeds", type=int, nargs="+", help="default: 0 1 2 (--quick: 0)")
    parser.add_argument("--rounds", type=int, help="sampling rounds (default 5, --quick 2)")


def run_options(args, quick: Caps, full: Caps) -> tuple[Caps, list[int], int]:
    """``(caps, seeds, rounds)`` from add_run_options' flags and their --quick defaults."""
    caps = quick if args.quick else full
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    rounds = args.rounds or (2 if args.quick else 5)
    return caps, seeds, rounds


def one_thread_everywhere() -> None:
    """One thread for torch here and, through OMP_NUM_THREADS, in every process Ray starts later:
    with more threads than cores, RLlib's processes thrash and run ~7x slower on 2 cores."""
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_options(parser)
    parser.add_argument("--top", type=int, default=15, help="profile entries shown per sampler")
    args = parser.parse_args()
    caps, seeds, rounds = run_options(args, QUICK, FULL)
    one_thread_everywhere()
    load_before = os.getloadavg()[0]

    require_rllib()
    start = time.perf_counter()
    init_ray(threads_per_worker=1)
    ray_start_s = time.perf_counter() - start
    try:
        races = []
        for seed in seeds:
            for contender in CONTENDERS:
                races.append(race(contender, seed, caps))
                # Progress on stderr, so a run of minutes shows life and stdout stays the tables.
                print(races[-1], file=sys.stderr, flush=True)
        medians = print_race_table(races, CONTENDERS, "PPO")
        print_ratios_to_course_lib(medians, ray_start_s)
        samplers = throughput(caps, rounds)
        profile(samplers, args.top)
    finally:
        ray.shutdown()
    print(
        f"\nLoad average (1 min): {load_before:.2f} before, {os.getloadavg()[0]:.2f} after; "
        f"{os.cpu_count()} cores."
    )


if __name__ == "__main__":
    main()
