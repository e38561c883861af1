"""course_lib's SAC against stable-baselines3's SAC on Pendulum-v1, in one run, taking turns.

Both get the same budget (20k env steps), the same networks (actor and twin critics [256, 256],
ReLU), and the same key settings: learning rate 1e-3 for actor, critics and alpha, batch 256,
gamma 0.99, tau 0.005, alpha learned towards -|A| from 1.0, one learning step per env step,
1000 uniformly random steps first, one env, one torch thread. course_lib reads them from
``tuned_examples/sac-pendulum.yaml``; SB3 gets them as arguments (RL-Zoo's Pendulum-v1 SAC is
SB3's defaults with learning rate 1e-3). Runs alternate: course_lib seed 0, SB3 seed 0,
course_lib seed 1, ... so that a change in the machine's load falls on both alike.

Measured per run: the mean return of the last 20 episodes at the end of the budget, and the wall
time from construction to the end. Reported: the medians over runs, and the ratio
course_lib / SB3 of the median times.

Usage: ``python benchmarks/bench_continuous.py [--quick] [--rounds 2]``. ``--quick`` is a smoke
test: 2000 env steps, [64, 64] networks, one round. Figures: BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import deque
from pathlib import Path

from sb3_missing import SB3_MISSING

try:
    import stable_baselines3
    from stable_baselines3 import SAC
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
except ModuleNotFoundError as error:
    if error.name != "stable_baselines3":
        raise
    raise SystemExit(SB3_MISSING) from error

import torch
import yaml

from course_lib.agents.sac import SACTrainer

TUNED = Path(__file__).resolve().parents[1] / "tuned_examples" / "sac-pendulum.yaml"
LAST_EPISODES = 20


def course_lib_config(budget: int, hiddens: list[int], seed: int, logdir: str) -> dict:
    """The tuned example's config with this run's seed, networks and results folder."""
    (experiment,) = yaml.safe_load(TUNED.read_text()).values()
    return {
        **experiment["config"],
        "env": experiment["env"],
        "seed": seed,
        "actor_hiddens": hiddens,
        "critic_hiddens": hiddens,
        "metrics_smoothing_episodes": LAST_EPISODES,
        "timesteps_per_iteration": min(1000, budget),
        "logger_config": {"logdir": logdir},
    }


def run_course_lib(budget: int, hiddens: list[int], seed: int, logdir: str) -> dict:
    start = time.perf_counter()
    trainer = SACTrainer(config=course_lib_config(budget, hiddens, seed, logdir))
    try:
        while True:
            result = trainer.train()
            if result["timesteps_total"] >= budget:
                break
    finally:
        trainer.stop()
    return {
        "final_return": result["episode_reward_mean"],
        "seconds": time.perf_counter() - start,
        "env_steps": result["timesteps_total"],
    }


class LastReturns(BaseCallback):
    """Keeps the returns of the last 20 episodes, from the ``Monitor`` around the env."""

    def __init__(self):
        super().__init__()
        self.returns = deque(maxlen=LAST_EPISODES)

    def _on_step(self) -> bool:
        self.returns.extend(i["episode"]["r"] for i in self.locals["infos"] if "episode" in i)
        return True


def run_sb3(budget: int, hiddens: list[int], seed: int) -> dict:
    start = time.perf_counter()
    model = SAC(
        "MlpPolicy",
        make_vec_env("Pendulum-v1", n_envs=1, seed=seed),
        learning_rate=1e-3,
        buffer_size=100_000,
        learning_starts=1000,
        batch_size=256,
        tau=0.005,
        gamma=0.99,
        train_freq=1,
        gradient_steps=1,
        ent_coef="auto",
        policy_kwargs={"net_arch": hiddens},
        seed=seed,
        device="cpu",
    )
    returns = LastReturns()
    model.learn(total_timesteps=budget, callback=returns)
    seconds = time.perf_counter() - start
    model.env.close()
    return {
        "final_return": statistics.fmean(returns.returns),
        "seconds": seconds,
        "env_steps": model.num_timesteps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2000 steps, [64, 64], one round")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each, alternating")
    args = parser.parse_args()
    budget, hiddens, rounds = (
        (2000, [64, 64], 1) if args.quick else (20_000, [256, 256], args.rounds)
    )
    # One thread each: on 2 shared cores a second torch thread mostly waits (tests/conftest.py).
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    logdir = os.path.join(os.environ.get("TMPDIR", "/tmp"), "bench_continuous")
    print(
        f"SAC on Pendulum-v1: {budget} env steps, networks {hiddens}, {rounds} round(s); "
        f"SB3 {stable_baselines3.__version__}, torch {torch.__version__}, "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    runs = {"course_lib": [], "SB3": []}
    for seed in range(rounds):
        for name in runs:
            if name == "course_lib":
                run = run_course_lib(budget, hiddens, seed, logdir)
            else:
                run = run_sb3(budget, hiddens, seed)
            runs[name].append(run)
            print(
                f"  {name:<10} seed {seed}: final 20-episode mean {run['final_return']:8.1f}, "
                f"{run['seconds']:6.1f} s, {run['env_steps']} env steps",
                flush=True,
            )
    medians = {
        name: (
            statistics.median(r["final_return"] for r in rs),
            statistics.median(r["seconds"] for r in rs),
        )
        for name, rs in runs.items()
    }
    print("\n| contender | runs | median final return | median wall time (s) |")
    print("|---|---|---|---|")
    for name, (final_return, seconds) in medians.items():
        print(f"| {name} | {len(runs[name])} | {final_return:.1f} | {seconds:.1f} |")
    ratio = medians["course_lib"][1] / medians["SB3"][1]
    print(f"\ncourse_lib / SB3 wall time: {ratio:.2f}x; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
