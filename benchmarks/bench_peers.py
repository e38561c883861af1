"""course_lib against its peers in one run: stable-baselines3 (SB3) and RLlib 2.60 on CartPole-v1.

Three sections; within each, the contenders take turns, so that a change in the machine's load
falls on all of them alike:

1. **Sampling** (``--only sampling``). Env steps/s in one process with the same policy and value
   networks ([64, 64] tanh), with 8 and with 64 envs, the same number of env steps per sample:
   course_lib's ``RolloutWorker``, RLlib's ``SingleAgentEnvRunner`` and SB3's
   ``PPO.collect_rollouts`` (its rollout buffer, the envs in a ``DummyVecEnv``). The reference is
   one plain gymnasium env stepping random actions; each rate is also given as a share of it.
2. **PPO to 475** (``--only ppo``). Seconds from construction, and env steps, to a 20-episode mean
   return >= 475: course_lib with ``tuned_examples/ppo-cartpole.yaml``, RLlib with its own tuned
   CartPole example (as in bench_vs_rllib.py), SB3 with RL-Zoo's CartPole-v1 settings.
3. **DQN to 475** (``--only dqn``). course_lib with ``tuned_examples/dqn-cartpole.yaml`` against SB3
   with RL-Zoo's CartPole-v1 settings.

Seeds alternate too: seed 0 for every contender, then seed 1, and so on. A run stops at the target
or at a cap on env steps and seconds ("not reached"). An SB3 run also ends at RL-Zoo's budget
(``n_timesteps``), because its linear schedules and its exploration are defined over that budget.
Each contender is read at its own pace: course_lib and RLlib after every ``train()``, SB3 after
every env step (a callback over its ``Monitor`` returns).

Usage: ``python benchmarks/bench_peers.py [--quick] [--only sampling ppo dqn] [--seeds 0 1 2]``.
``make bench-peers`` installs SB3 (the ``sb3`` extra, pinned in requirements-sb3.lock) and runs
it. ``--quick`` is a smoke test: one seed, tiny caps, few steps. Figures: BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

# First, so that without SB3 the script says what to do before it spends seconds on imports.
from sb3_missing import SB3_MISSING

try:
    import stable_baselines3
    from stable_baselines3 import DQN, PPO
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
except ModuleNotFoundError as error:
    if error.name != "stable_baselines3":
        raise
    raise SystemExit(SB3_MISSING) from error

import gymnasium as gym
import ray
import torch
from bench_vs_rllib import (
    CONTENDERS,
    COURSE_LIB,
    SMOOTHING_EPISODES,
    TARGET,
    Caps,
    Contender,
    CourseLibFastSampler,
    CourseLibSampler,
    Medians,
    Race,
    RLlibSampler,
    add_run_options,
    alternate_rates,
    build_course_lib,
    one_thread_everywhere,
    print_race_table,
    race,
    read_course_lib,
    require_rllib,
    run_options,
)

from course_lib.cluster import init_ray

FULL = Caps(env_steps=1_000_000, seconds=360.0, sample_steps=8_000)
QUICK = Caps(env_steps=4_000, seconds=60.0, sample_steps=2_048)
ENV_COUNTS = (8, 64)
SECTIONS = ("sampling", "ppo", "dqn")
SB3_NAME = f"SB3 {stable_baselines3.__version__}"
RLLIB = CONTENDERS[1]  # RLlib's own tuned CartPole PPO example


def linear_schedule(initial: float) -> Callable[[float], float]:
    """RL-Zoo's ``lin_<initial>``: falls linearly from ``initial`` to 0 over learn()'s budget."""

    def schedule(progress_remaining: float) -> float:
        return progress_remaining * initial

    return schedule


def build_sb3_ppo(seed: int) -> BaseAlgorithm:
    """RL-Zoo's tuned CartPole-v1 PPO (rl-baselines3-zoo, hyperparams/ppo.yml), 100k env steps.

    SB3's defaults for the rest, among them its [64, 64] tanh policy and value networks. As in
    RL-Zoo, ``make_vec_env`` puts each env in a ``Monitor``, which reports episode returns.
    """
    return PPO(
        "MlpPolicy",
        make_vec_env("CartPole-v1", n_envs=8, seed=seed),
        n_steps=32,
        batch_size=256,
        gae_lambda=0.8,
        gamma=0.98,
        n_epochs=20,
        ent_coef=0.0,
        learning_rate=linear_schedule(0.001),
        clip_range=linear_schedule(0.2),
        seed=seed,
        device="cpu",
    )


def build_sb3_dqn(seed: int) -> BaseAlgorithm:
    """RL-Zoo's CartPole-v1 DQN (rl-baselines3-zoo, hyperparams/dqn.yml), 50k env steps, 1 env."""
    return DQN(
        "MlpPolicy",
        make_vec_env("CartPole-v1", n_envs=1, seed=seed),
        learning_rate=2.3e-3,
        batch_size=64,
        buffer_size=100_000,
        learning_starts=1000,
        gamma=0.99,
        target_update_interval=10,
        train_freq=256,
        gradient_steps=128,
        exploration_fraction=0.16,
        exploration_final_eps=0.04,
        policy_kwargs={"net_arch": [256, 256]},
        seed=seed,
        device="cpu",
    )


@dataclass(frozen=True)
class SB3Contender:
    """An SB3 setup in a race: how to build its model for a seed, and RL-Zoo's env-step budget."""

    name: str
    network: str
    build: Callable[[int], BaseAlgorithm]
    budget: int


class StopAtTarget(BaseCallback):
    """Stops SB3's learn() when the last 20 episodes' mean return is >= 475, or at a cap.

    The returns come from the ``Monitor`` around each env: on the step an episode ends, its env's
    info dict holds ``{"episode": {"r": return, ...}}``. Like course_lib and RLlib, the mean is
    over the episodes finished so far until there are 20, and NaN before the first.
    """

    def __init__(self, start: float, caps: Caps):
        super().__init__()
        self.start = start
        self.caps = caps
        self.returns = deque(maxlen=SMOOTHING_EPISODES)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.returns) if self.returns else float("nan")

    def _on_step(self) -> bool:
        infos = self.locals["infos"]
        self.returns.extend(info["episode"]["r"] for info in infos if "episode" in info)
        seconds = time.perf_counter() - self.start
        capped = self.num_timesteps >= self.caps.env_steps or seconds >= self.caps.seconds
        return not (self.mean >= TARGET or capped)  # False stops learn()


def race_sb3(contender: SB3Contender, seed: int, caps: Caps) -> Race:
    """bench_vs_rllib's race() for SB3, whose learn() runs to the end: the callback stops it."""
    start = time.perf_counter()
    model = contender.build(seed)
    build_s = time.perf_counter() - start
    stop = StopAtTarget(start, caps)
    model.learn(total_timesteps=contender.budget, callback=stop)
    seconds = time.perf_counter() - start
    model.env.close()
    return Race(
        contender.name, seed, build_s, seconds, model.num_timesteps, stop.mean, stop.mean >= TARGET
    )


def run_race(contender: Contender | SB3Contender, seed: int, caps: Caps) -> Race:
    if isinstance(contender, SB3Contender):
        return race_sb3(contender, seed, caps)
    return race(contender, seed, caps)


PPO_CONTENDERS = [
    COURSE_LIB,
    RLLIB,
    SB3Contender(SB3_NAME, "[64, 64] tanh, separate value net (RL-Zoo)", build_sb3_ppo, 100_000),
]
DQN_CONTENDERS = [
    Contender(
        "course_lib",
        "as in tuned_examples/dqn-cartpole.yaml",
        partial(build_course_lib, "DQN"),
        read_course_lib,
    ),
    SB3Contender(SB3_NAME, "[256, 256] relu (RL-Zoo)", build_sb3_dqn, 50_000),
]


def warm_up(contender: Contender | SB3Contender) -> None:
    """One untimed build, so that the first timed run does not pay for first-time imports."""
    if isinstance(contender, SB3Contender):
        contender.build(0).env.close()
    else:
        contender.build(0).stop()


def learning(algorithm: str, contenders: list, seeds: list[int], caps: Caps) -> dict[str, Medians]:
    """Every contender on seed 0, then on seed 1, ...; a row per run and the medians."""
    for contender in contenders:
        warm_up(contender)
    races = []
    for seed in seeds:
        for contender in contenders:
            races.append(run_race(contender, seed, caps))
            # Progress on stderr, so a run of minutes shows life and stdout stays the tables.
            print(races[-1], file=sys.stderr, flush=True)
    medians = print_race_table(races, contenders, algorithm)
    budgets = ", ".join(f"{c.budget:,}" for c in contenders if isinstance(c, SB3Contender))
    print(
        f"\nSB3 runs end at RL-Zoo's budget of env steps ({budgets}) if not before. Each "
        "contender was built once, untimed, before the first run (first-time imports)."
    )
    return medians


class RawSingleEnv:
    """One gymnasium CartPole env stepping random actions: the reference rate."""

    def __init__(self, num_steps: int):
        self.num_steps = num_steps
        self.env = gym.make("CartPole-v1")
        self.env.reset(seed=0)
        self.env.action_space.seed(0)

    def sample(self) -> int:
        for _ in range(self.num_steps):
            _, _, terminated, truncated, _ = self.env.step(self.env.action_space.sample())
            if terminated or truncated:
                self.env.reset()
        return self.num_steps


class SB3Sampler:
    """SB3's PPO.collect_rollouts: its policy and value nets, rollout buffer and GAE, no learning.

    ``_setup_learn`` is the set-up that learn() does before its first rollout (first reset, a
    callback); collect_rollouts then fills the buffer with ``n_steps`` steps of every env.
    """

    def __init__(self, num_steps: int, num_envs: int):
        self.model = PPO(
            "MlpPolicy",
            make_vec_env("CartPole-v1", n_envs=num_envs, seed=0),
            n_steps=num_steps // num_envs,
            batch_size=num_steps,  # unused here; a divisor of the rollout keeps SB3 from warning
            seed=0,
            device="cpu",
        )
        _, self.callback = self.model._setup_learn(total_timesteps=num_steps)

    def sample(self) -> int:
        model = self.model
        model.collect_rollouts(model.env, self.callback, model.rollout_buffer, model.n_steps)
        return model.n_steps * model.n_envs


RAW = "raw gymnasium env (random actions)"
FAST = "course_lib RolloutWorker, vectorize_envs"
SAMPLERS = {
    "course_lib RolloutWorker": CourseLibSampler,
    FAST: CourseLibFastSampler,
    "RLlib SingleAgentEnvRunner": RLlibSampler,
    f"{SB3_NAME} collect_rollouts": SB3Sampler,
}


def sampling(caps: Caps, rounds: int) -> dict[int, dict[str, float]]:
    """Steps/s of every sampler at every env count, alternated; returns the medians by env count."""
    samplers = {(RAW, 1): RawSingleEnv(caps.sample_steps)}
    for num_envs in ENV_COUNTS:
        for name, sampler_class in SAMPLERS.items():
            samplers[(name, num_envs)] = sampler_class(caps.sample_steps, num_envs)
    rates = alternate_rates(samplers, rounds)
    medians = {key: statistics.median(values) for key, values in rates.items()}
    raw = medians[(RAW, 1)]
    print(
        f"\n### Sampling CartPole-v1: one process, [64, 64] tanh policy and value nets, "
        f"{caps.sample_steps:,} env steps a sample\n\n"
        f"| sampler | envs | env steps/s (median of {rounds}) | min | max | share of raw |\n"
        "|---|---:|---:|---:|---:|---:|"
    )
    for (name, num_envs), values in rates.items():
        print(
            f"| {name} | {num_envs} | {medians[(name, num_envs)]:,.0f} | {min(values):,.0f} | "
            f"{max(values):,.0f} | {medians[(name, num_envs)] / raw:.1%} |"
        )
    return {n: {name: medians[(name, n)] for name in SAMPLERS} for n in ENV_COUNTS}


def race_ratio(medians: dict[str, Medians], peer: str, field: str) -> str:
    """course_lib's median ``field`` over the peer's, or a bound on it when runs hit a cap.

    A median over runs that include a capped one is only a lower bound on the median to the target:
    a capped course_lib makes the ratio a lower bound, a capped peer an upper bound, both nothing.
    """
    lib, other = medians[COURSE_LIB.name], medians[peer]
    ratio = getattr(lib, field) / getattr(other, field)
    if not (lib.all_reached or other.all_reached):
        return "n/a (both capped)"
    if not lib.all_reached:
        return f">= {ratio:.2f}"
    if not other.all_reached:
        return f"<= {ratio:.2f}"
    return f"{ratio:.2f}"


def print_peers_table(rates: dict | None, ppo: dict | None, dqn: dict | None) -> None:
    rllib, sb3 = RLLIB.name, SB3_NAME
    print(
        "\n### course_lib against the peers: ratios of medians, from this run\n\n"
        f"| measure | course_lib / {rllib} | course_lib / {sb3} | course_lib is better if |\n"
        "|---|---:|---:|---|"
    )
    for num_envs, by_name in (rates or {}).items():
        for name, label in (("course_lib RolloutWorker", ""), (FAST, ", vectorize_envs")):
            lib = by_name[name]
            print(
                f"| sampling env steps/s, {num_envs} envs{label} | "
                f"{lib / by_name['RLlib SingleAgentEnvRunner']:.2f} | "
                f"{lib / by_name[f'{SB3_NAME} collect_rollouts']:.2f} | above 1 |"
            )
    for algorithm, medians in (("PPO", ppo), ("DQN", dqn)):
        if medians is None:
            continue
        for field, label in (("seconds", "seconds"), ("env_steps", "env steps")):
            vs_rllib = race_ratio(medians, rllib, field) if rllib in medians else "not run"
            print(
                f"| {algorithm} {label} to {TARGET:.0f} | {vs_rllib} | "
                f"{race_ratio(medians, sb3, field)} | below 1 |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_options(parser)
    parser.add_argument(
        "--only", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="sections to run"
    )
    args = parser.parse_args()
    caps, seeds, rounds = run_options(args, QUICK, FULL)
    one_thread_everywhere()  # every contender but RLlib's Ray actors runs in this process
    load_before = os.getloadavg()[0]
    uses_rllib = "sampling" in args.only or "ppo" in args.only
    if uses_rllib:
        require_rllib()
        init_ray(threads_per_worker=1)
    try:
        rates = sampling(caps, rounds) if "sampling" in args.only else None
        ppo = learning("PPO", PPO_CONTENDERS, seeds, caps) if "ppo" in args.only else None
        dqn = learning("DQN", DQN_CONTENDERS, seeds, caps) if "dqn" in args.only else None
    finally:
        if uses_rllib:
            ray.shutdown()
    print_peers_table(rates, ppo, dqn)
    print(
        f"\nThreads: torch.set_num_threads(1) in this process (torch reports "
        f"{torch.get_num_threads()} at the end) and OMP_NUM_THREADS=1 for Ray's processes. "
        f"Versions: torch {torch.__version__}, gymnasium {gym.__version__}, ray {ray.__version__}, "
        f"stable-baselines3 {stable_baselines3.__version__}. Seeds {seeds}; caps: "
        f"{caps.env_steps:,} env steps or {caps.seconds:.0f} s a run. Load average (1 min): "
        f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after; {os.cpu_count()} cores."
    )


if __name__ == "__main__":
    main()
