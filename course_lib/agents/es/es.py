"""Evolution strategies (OpenAI-ES, Salimans et al. 2017) on plain Ray tasks.

ES treats the return of a policy with parameters theta as a black box F and climbs it without
backpropagation: perturb theta with Gaussian noise, play an episode with each perturbed policy,
and move theta towards the perturbations that did well. With ``n`` noise vectors ``eps_i ~ N(0, I)``
and noise scale ``sigma``, the gradient of the smoothed return is estimated by::

    grad E[F(theta + sigma * eps)]  ~  1 / (2 n sigma) * sum_i (F(theta + sigma eps_i)
                                                                - F(theta - sigma eps_i)) * eps_i

Three tricks from the paper make this work, each one function below:

- antithetic pairs: every ``eps`` is played as ``theta + sigma eps`` and ``theta - sigma eps``,
  from the same env seed, so what both episodes share cancels (``play_antithetic_pairs``);
- centered ranks: the returns are replaced by their ranks scaled to [-0.5, 0.5], so one lucky
  episode cannot dominate and the step does not depend on the reward's scale
  (``centered_ranks``);
- a shared noise table: one big float32 array of N(0, 1) noise, made once from a seed and put
  in the object store once. A perturbation is an offset into it: tasks send back offsets,
  returns and lengths (a few bytes per episode), never noise, and the driver rebuilds each
  ``eps`` from its own zero-copy view of the same table (``create_noise_table``,
  ``estimate_gradient``).

Why tasks and not actors (lesson 01 paying off): an ES evaluation needs no state between calls.
Theta, the observation statistics and a seed go in; offsets, returns and lengths come out. So
each iteration launches ``num_tasks`` plain ``@ray.remote`` tasks, Ray runs them on whatever
CPUs are free, and retries one whose worker died. The other trainers' rollout workers are actors
because they keep envs and unfinished episodes between calls.

How it fits the ``Trainer``: the local worker holds the ``ESPolicy`` (theta and its Adam moments)
and the observation filter, so ``compute_single_action``, ``save``/``restore`` and evaluation
(``evaluation_interval``: theta itself, unperturbed) work as for every trainer. There are no
rollout workers (``num_workers`` must be 0). The execution plan is a ``LocalIterator`` over ES
iterations under ``StandardMetricsReporting``: ``episode_reward_mean`` and friends average the
perturbed episodes the tasks played; ``evaluation/episode_reward_mean`` is theta's own return.
RLlib's ES mixed a few unperturbed episodes into the tasks instead (``eval_prob``); the course
uses the evaluation every trainer has. Callbacks' episode hooks do not fire inside the tasks.
Introduced in notebooks/15_scaling_out.ipynb.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import ray

from course_lib.agents.config import COMMON_CONFIG, merge_dicts
from course_lib.agents.es.es_policy import ESPolicy
from course_lib.agents.trainer_template import build_trainer
from course_lib.envs import EnvContext
from course_lib.envs.multi_agent import MultiAgentEnv
from course_lib.envs.registry import env_from_creator
from course_lib.evaluation.env_actions import policy_action_space, to_env_actions
from course_lib.evaluation.episode import DEFAULT_AGENT_ID
from course_lib.evaluation.metrics import RolloutMetrics
from course_lib.evaluation.observation_filter import MeanStdFilter, RunningStat, make_filter
from course_lib.execution import StandardMetricsReporting
from course_lib.execution.local_iterator import LocalIterator, get_shared_metrics
from course_lib.execution.metric_ops import (
    AGENT_STEPS_SAMPLED_COUNTER,
    LEARN_ON_BATCH_TIMER,
    LEARNER_INFO,
    SAMPLE_TIMER,
    STEPS_SAMPLED_COUNTER,
)
from course_lib.sample_batch import DEFAULT_POLICY_ID
from course_lib.validation import require_whole_number

DEFAULT_CONFIG = {
    **COMMON_CONFIG,
    # ES plays its episodes in Ray tasks, so the trainer has no rollout workers: keep 0.
    "num_workers": 0,
    # Observations normalised with running statistics that the tasks gather.
    "observation_filter": "MeanStdFilter",
    "model": {"fcnet_hiddens": [32, 32], "fcnet_activation": "tanh"},
    # sigma: the standard deviation of each parameter's perturbation.
    "noise_stdev": 0.02,
    # Adam's step size.
    "stepsize": 0.01,
    # Weight decay: every step also pulls theta towards 0 by l2_coeff * theta.
    "l2_coeff": 0.005,
    # Episodes per iteration (a pair theta +- sigma eps is two), split evenly over the tasks.
    "episodes_per_batch": 64,
    # Ray tasks per iteration; each plays episodes_per_batch / (2 * num_tasks) antithetic pairs
    # and asks for num_cpus_per_worker CPUs.
    "num_tasks": 2,
    # Floats in the shared noise table (float32, so 40 MB by default).
    "noise_size": 10_000_000,
}

# The noise table's seed when the config has none: every run then shares one table.
DEFAULT_NOISE_SEED = 123


# --- the noise table, the ranks and the update (pure numpy, tested without an env) ---------------


def create_noise_table(size: int, seed: int) -> np.ndarray:
    """``size`` float32 draws from N(0, 1), the same for the same seed: shape (size,).

    Made once per trainer and put in the object store once; ``noise[offset : offset + N]`` is
    one perturbation of an N-parameter policy. Introduced in notebooks/15_scaling_out.ipynb.
    """
    return np.random.default_rng(seed).standard_normal(size, dtype=np.float32)


def sample_offsets(rng: np.random.Generator, noise_size: int, num_params: int, count: int):
    """``count`` offsets (count,) such that every slice ``[offset, offset + num_params)`` fits."""
    return rng.integers(0, noise_size - num_params + 1, size=count)


def centered_ranks(returns: np.ndarray) -> np.ndarray:
    """Each return replaced by its rank among all of them, scaled to [-0.5, 0.5]; same shape.

    ``returns`` (n, 2) holds the returns of theta + sigma eps_i and theta - sigma eps_i. The
    lowest becomes -0.5, the highest 0.5; equal returns share their average rank, so a pair
    that scored the same (CartPole's 500 and 500) gets no weight instead of a random one.
    Introduced in notebooks/15_scaling_out.ipynb.
    """
    flat = np.asarray(returns, np.float64).ravel()
    if flat.size < 2:
        raise ValueError(f"centered_ranks needs at least two returns, got {flat.size}.")
    order = np.argsort(flat, kind="stable")
    _, first, counts = np.unique(flat[order], return_index=True, return_counts=True)
    ranks = np.empty(flat.size)
    ranks[order] = np.repeat(first + (counts - 1) / 2.0, counts)
    return (ranks / (flat.size - 1) - 0.5).reshape(np.shape(returns))


def estimate_gradient(
    noise: np.ndarray,
    offsets: np.ndarray,
    weights: np.ndarray,
    num_params: int,
    noise_stdev: float,
) -> np.ndarray:
    """The antithetic estimate ``1 / (2 n sigma) * sum_i (w_i+ - w_i-) * eps_i``: shape (N,).

    ``eps_i = noise[offsets[i] : offsets[i] + N]`` with ``N = num_params``; ``weights`` (n, 2)
    are the (ranked) returns of ``theta + sigma eps_i`` and ``theta - sigma eps_i``.
    Introduced in notebooks/15_scaling_out.ipynb.
    """
    weights = np.asarray(weights, np.float64)
    differences = weights[:, 0] - weights[:, 1]
    # One (n, N) matrix of views' copies is fine for ES's few hundred perturbations per step.
    eps = np.stack([noise[offset : offset + num_params] for offset in offsets])
    return (differences @ eps / (2 * len(offsets) * noise_stdev)).astype(np.float32)


def es_step(
    theta: np.ndarray,
    optimizer,
    noise: np.ndarray,
    offsets: np.ndarray,
    returns: np.ndarray,
    *,
    noise_stdev: float,
    l2_coeff: float,
) -> tuple[np.ndarray, dict]:
    """One ES update: centered ranks -> gradient estimate -> Adam step with weight decay.

    ``theta`` (N,); ``offsets`` (n,) into ``noise``; ``returns`` (n, 2) of the pairs
    ``theta +- sigma eps_i``. Returns the new theta (N,) and learner statistics.
    Introduced in notebooks/15_scaling_out.ipynb.
    """
    weights = centered_ranks(returns)
    gradient = estimate_gradient(noise, offsets, weights, theta.size, noise_stdev)
    # Weight decay as part of the ascent direction: large parameters cost return.
    new_theta = optimizer.update(theta, gradient - l2_coeff * theta)
    stats = {
        "grad_norm": float(np.linalg.norm(gradient)),
        "weights_norm": float(np.linalg.norm(new_theta)),
        # How far this step moved theta, relative to its size (NaN while theta is all zeros).
        "update_ratio": float(np.linalg.norm(new_theta - theta) / np.linalg.norm(theta))
        if np.any(theta)
        else float("nan"),
    }
    return new_theta, stats


# --- the task: play antithetic pairs --------------------------------------------------------------


@dataclass
class TaskSetup:
    """What every task of a trainer needs besides theta, the statistics and its seed.

    ``config`` is the trainer's config (the policy reads ``model``; the rollout reads
    ``env_config``, ``observation_filter``, ``normalize_actions``, ``clip_actions``).
    Introduced in notebooks/15_scaling_out.ipynb.
    """

    env_creator: object
    env: object
    config: dict
    pairs_per_task: int


@dataclass
class PerturbationResults:
    """What one task sends back: no noise, only where to find it and how it did.

    ``offsets`` (n,) into the noise table; ``returns`` and ``lengths`` (n, 2), column 0 for
    ``theta + sigma eps``, column 1 for ``theta - sigma eps``; ``obs_stats`` the running
    statistics of the raw observations it saw (None without a MeanStdFilter).
    Introduced in notebooks/15_scaling_out.ipynb.
    """

    offsets: np.ndarray
    returns: np.ndarray
    lengths: np.ndarray
    obs_stats: RunningStat | None


def play_episode(policy: ESPolicy, env, obs_filter, seed: int, config: dict):
    """One episode from ``env.reset(seed=seed)`` with the policy's current theta.

    Returns ``(return, length, raw observations)``. The filter normalises without updating: both
    episodes of a pair see the observations on the same scale.
    Introduced in notebooks/15_scaling_out.ipynb.
    """
    obs, _ = env.reset(seed=seed)
    seen, total, length = [obs], 0.0, 0
    while True:
        actions, _, _ = policy.compute_actions(obs_filter(np.asarray(obs)[None], update=False))
        obs, reward, terminated, truncated, _ = env.step(to_env_actions(actions, policy, config)[0])
        total += float(reward)
        length += 1
        if terminated or truncated:
            return total, length, seen
        seen.append(obs)


def play_antithetic_pairs(
    noise: np.ndarray, theta: np.ndarray, filter_state: dict, setup: TaskSetup, seed: int
) -> PerturbationResults:
    """The body of an ES task: play ``setup.pairs_per_task`` antithetic pairs around ``theta``.

    ``theta`` (N,); ``noise`` the shared table (n_noise,). Each pair draws an offset and an env
    seed from ``seed``, so a task's results depend only on its arguments.
    Introduced in notebooks/15_scaling_out.ipynb.
    """
    rng = np.random.default_rng(seed)
    config = setup.config
    env = env_from_creator(setup.env_creator, EnvContext(config["env_config"]), setup.env)
    policy = ESPolicy(env.observation_space, policy_action_space(env.action_space, config), config)
    policy.env_action_space = env.action_space  # as build_policy_map does for every policy
    obs_filter = make_filter(config["observation_filter"], env.observation_space)
    obs_filter.set_state(filter_state)
    offsets = sample_offsets(rng, len(noise), policy.num_params, setup.pairs_per_task)
    returns = np.zeros((len(offsets), 2))
    lengths = np.zeros((len(offsets), 2), np.int64)
    seen = []
    for row, offset in enumerate(offsets):
        perturbation = config["noise_stdev"] * noise[offset : offset + policy.num_params]
        episode_seed = int(rng.integers(2**31))  # one start for both: the pair differs by eps only
        for column, sign in enumerate((1.0, -1.0)):
            policy.set_flat_weights(theta + sign * perturbation)
            returns[row, column], lengths[row, column], observations = play_episode(
                policy, env, obs_filter, episode_seed, config
            )
            seen.extend(observations)
    env.close()
    obs_stats = None
    if isinstance(obs_filter, MeanStdFilter):
        obs_stats = RunningStat(obs_filter.shape)
        obs_stats.push_batch(np.stack(seen))
    return PerturbationResults(offsets, returns, lengths, obs_stats)


# The task itself. Given the table's ObjectRef, Ray hands play_antithetic_pairs a read-only numpy
# view of the object store: no copy, however many tasks read it (lesson 01).
evaluate_perturbations = ray.remote(play_antithetic_pairs)


# --- the execution plan ---------------------------------------------------------------------------


def es_iterations(workers, config: dict):
    """One item per ES iteration: launch the tasks, gather, rank, step, count.

    The noise table is made and put in the object store once, when the first iteration starts
    (so a trainer built only to act, as ``course-rl rollout`` does, needs no Ray). Every task
    gets the same ``noise_ref``; the driver reads the table through one zero-copy view of it.
    Task seeds come from numpy's global generator, which a seeded trainer seeds and
    checkpoints, so a restored run continues exactly. Yields the learner statistics.
    Introduced in notebooks/15_scaling_out.ipynb.
    """
    local = workers.local_worker()
    policy = local.get_policy()
    obs_filter = local.filters[DEFAULT_POLICY_ID]
    seed = DEFAULT_NOISE_SEED if config["seed"] is None else config["seed"]
    noise_ref = ray.put(create_noise_table(config["noise_size"], seed))
    noise = ray.get(noise_ref)
    setup = TaskSetup(
        local.env_creator,
        config["env"],
        config,
        config["episodes_per_batch"] // (2 * config["num_tasks"]),
    )
    task = evaluate_perturbations.options(
        num_cpus=config["num_cpus_per_worker"], resources=task_custom_resources(config) or None
    )
    while True:
        metrics = get_shared_metrics()
        theta = policy.get_flat_weights()
        # Stored once per iteration for all tasks, like the weights lesson 08 broadcasts.
        theta_ref = ray.put(theta)
        filter_state = obs_filter.get_state()
        seeds = np.random.randint(2**31 - 1, size=config["num_tasks"])
        with metrics.timers[SAMPLE_TIMER]:
            # All tasks submitted first, one ray.get for all: lesson 01's rule.
            results = ray.get(
                [
                    task.remote(noise_ref, theta_ref, filter_state, setup, int(seed))
                    for seed in seeds
                ]
            )
        offsets = np.concatenate([result.offsets for result in results])
        returns = np.concatenate([result.returns for result in results])
        lengths = np.concatenate([result.lengths for result in results])
        with metrics.timers[LEARN_ON_BATCH_TIMER]:
            new_theta, stats = es_step(
                theta,
                policy.optimizer,
                noise,
                offsets,
                returns,
                noise_stdev=config["noise_stdev"],
                l2_coeff=config["l2_coeff"],
            )
            policy.set_flat_weights(new_theta)
        for result in results:
            if result.obs_stats is not None:
                obs_filter.apply_delta(result.obs_stats)
        metrics.counters[STEPS_SAMPLED_COUNTER] += int(lengths.sum())
        metrics.counters[AGENT_STEPS_SAMPLED_COUNTER] += int(lengths.sum())
        policy.global_timestep = metrics.counters[STEPS_SAMPLED_COUNTER]
        metrics.info[LEARNER_INFO] = {DEFAULT_POLICY_ID: stats}
        _report_episodes(local, returns, lengths)
        yield stats


def _report_episodes(local_worker, returns: np.ndarray, lengths: np.ndarray) -> None:
    """Queue the tasks' episodes where StandardMetricsReporting collects finished episodes:
    the local worker's list, which ``local_worker.get_metrics()`` empties each iteration."""
    local_worker.sampler.metrics.extend(
        RolloutMetrics(int(length), float(ret), {(DEFAULT_AGENT_ID, DEFAULT_POLICY_ID): float(ret)})
        for ret, length in zip(returns.ravel(), lengths.ravel(), strict=True)
    )


def execution_plan(workers, config: dict):
    """ES's dataflow: ES iterations (tasks -> centered ranks -> Adam step), reported like every
    trainer's results. Introduced in notebooks/15_scaling_out.ipynb."""
    num_params = workers.local_worker().get_policy().num_params
    if config["noise_size"] < num_params:
        raise ValueError(
            f"noise_size={config['noise_size']} is smaller than the policy's {num_params} "
            "parameters, and each perturbation is a slice of the noise table that long. Use a "
            f"noise_size far above it (default {DEFAULT_CONFIG['noise_size']:,})."
        )
    train_op = LocalIterator(functools.partial(es_iterations, workers, config), name="ESIterations")
    return StandardMetricsReporting(train_op, workers, config)


# --- the trainer ----------------------------------------------------------------------------------


def validate_es_config(config: dict) -> None:
    """Refuse what ES cannot do, with the fix. Introduced in notebooks/15_scaling_out.ipynb."""
    if config["num_workers"] != 0:
        raise ValueError(
            f"ES plays its episodes in Ray tasks, not in rollout workers, so num_workers must "
            f"be 0 (got {config['num_workers']}). Set num_tasks (tasks per iteration) instead."
        )
    for key, minimum in (("num_tasks", 1), ("episodes_per_batch", 2), ("noise_size", 1)):
        require_whole_number(config[key], repr(key), minimum=minimum)
    pair_slots = 2 * config["num_tasks"]
    if config["episodes_per_batch"] % pair_slots:
        lower = config["episodes_per_batch"] // pair_slots * pair_slots or pair_slots
        raise ValueError(
            f"episodes_per_batch={config['episodes_per_batch']} cannot be split into "
            f"{config['num_tasks']} tasks of whole antithetic pairs (two episodes each): use a "
            f"multiple of 2 * num_tasks = {pair_slots}, such as {lower} or {lower + pair_slots}."
        )
    for key in ("noise_stdev", "stepsize"):
        if not config[key] > 0:
            raise ValueError(f"{key!r} must be > 0, got {config[key]!r}.")
    if not config["l2_coeff"] >= 0:
        raise ValueError(
            f"'l2_coeff' must be >= 0 (0: no weight decay), got {config['l2_coeff']!r}."
        )
    if config["multiagent"]["policies"]:
        raise ValueError(
            "ES trains one policy in a single-agent env; remove config['multiagent']['policies']."
        )
    if config["input"] != "sampler" or config["output"] is not None:
        raise ValueError(
            "ES learns from the returns of episodes it plays itself: it reads no recorded "
            'batches ("input" must be "sampler") and writes none ("output" must be None).'
        )


def validate_es_env(env, env_context) -> None:
    if isinstance(env, MultiAgentEnv):
        raise ValueError(
            f"ES trains one policy in a single-agent gymnasium env; {type(env).__name__} is a "
            "MultiAgentEnv. Use PPO, PG or DQN with config['multiagent'] (lesson 20)."
        )


def task_custom_resources(config: dict) -> dict:
    """What each task asks for besides CPUs: a rollout worker's ``custom_resources_per_worker``
    (a simulator licence, say), since the tasks are what play the episodes."""
    return dict(config.get("custom_resources_per_worker") or {})


class ESTaskResources:
    """Mixin: under Tune, reserve a CPU bundle per task next to the trainer's own.

    Tune runs a trial's tasks inside the trial's placement group, and the trainer holds its
    bundle while it waits for them, so without these bundles no task could ever start.
    """

    @classmethod
    def default_resource_request(cls, config: dict):
        from ray.tune.execution.placement_groups import PlacementGroupFactory

        trainer_bundles = super().default_resource_request(config).bundles
        merged = merge_dicts(
            cls._default_config,
            {k: v for k, v in (config or {}).items() if k in cls._default_config},
        )
        task_bundle = {"CPU": merged["num_cpus_per_worker"], **task_custom_resources(merged)}
        return PlacementGroupFactory(
            trainer_bundles + [task_bundle] * merged["num_tasks"], strategy="PACK"
        )


ESTrainer = build_trainer(
    "ES",
    default_config=DEFAULT_CONFIG,
    validate_config=validate_es_config,
    validate_env=validate_es_env,
    default_policy=ESPolicy,
    mixins=[ESTaskResources],
    execution_plan=execution_plan,
)
