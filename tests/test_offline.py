"""Specification of offline datasets (course_lib/offline/), off-policy estimation, BC and MARWIL.

The learning tests record CartPole data from a PPO run into tmp_path (nothing is committed) and
assert what notebooks/17_offline_rl.ipynb teaches: BC from an expert's data balances the pole, and
on half-random data MARWIL's advantage weighting beats plain imitation.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from course_lib.agents.marwil import BCTrainer, MARWILTrainer
from course_lib.agents.pg import PGTrainer
from course_lib.agents.ppo import PPOTorchPolicy, PPOTrainer
from course_lib.agents.registry import ALGORITHMS
from course_lib.envs import get_env_creator
from course_lib.evaluation import RolloutWorker
from course_lib.offline import (
    ImportanceSampling,
    JsonReader,
    JsonWriter,
    MixedInput,
    OfflineDataError,
    WeightedImportanceSampling,
    batch_from_json,
    batch_to_json,
    summarize_estimates,
)
from course_lib.offline.input_reader import InputReader
from course_lib.sample_batch import MultiAgentBatch, SampleBatch

SMALL_MODEL = {"fcnet_hiddens": [16]}


def assert_batches_equal(read, written):
    assert read.columns == written.columns
    for name in written.columns:
        assert read[name].dtype == written[name].dtype, name
        assert read[name].shape == written[name].shape, name
        if written[name].dtype == object:
            assert list(read[name]) == list(written[name]), name
        else:
            np.testing.assert_array_equal(read[name], written[name], err_msg=name)


def mixed_dtype_batch(n: int = 5) -> SampleBatch:
    rng = np.random.default_rng(0)
    infos = np.empty(n, dtype=object)
    infos[:] = [{"step": i, "note": "ok", "xy": [0.5, i]} for i in range(n)]
    return SampleBatch(
        {
            SampleBatch.OBS: rng.normal(size=(n, 4)).astype(np.float32),
            SampleBatch.NEXT_OBS: rng.normal(size=(n, 4)).astype(np.float32),
            "image": rng.integers(0, 256, size=(n, 3, 3, 2), dtype=np.uint8),
            SampleBatch.ACTIONS: rng.integers(0, 2, size=n),
            SampleBatch.REWARDS: rng.normal(size=n),  # float64
            "small_ints": rng.integers(-5, 5, size=(n, 2, 3)).astype(np.int8),
            SampleBatch.TERMINATEDS: np.arange(n) == n - 1,
            "label": np.array([f"s{i}" for i in range(n)]),
            "special": np.array([np.nan, np.inf, -0.0, 1e-30, 3.0][:n], dtype=np.float32),
            SampleBatch.INFOS: infos,
        }
    )


# --- writing and reading ---------------------------------------------------------------------


@pytest.mark.parametrize("compressed", [[], ["obs", "new_obs", "image"]])
def test_written_batches_read_back_equal_with_dtypes_and_shapes(tmp_path, compressed):
    batches = [mixed_dtype_batch(5), mixed_dtype_batch(3)]
    writer = JsonWriter(tmp_path, compress_columns=compressed)
    for batch in batches:
        writer.write(batch)
    writer.close()
    (file,) = tmp_path.glob("*.json")
    lines = file.read_text().splitlines()
    assert len(lines) == 2
    image = json.loads(lines[0])["columns"]["image"]
    assert ("zlib_base64" in image) == ("image" in compressed)
    assert image["dtype"] == "|u1" and image["shape"] == [5, 3, 3, 2]
    # One pass over the file, in order (a single file has one order).
    reader = JsonReader(str(tmp_path), seed=0)
    for written in batches:
        assert_batches_equal(reader.next(), written)


def test_a_multi_agent_batch_reads_back_equal():
    batch = MultiAgentBatch({"a": mixed_dtype_batch(4), "b": mixed_dtype_batch(2)}, env_steps=4)
    read = batch_from_json(batch_to_json(batch, ["obs"]))
    assert isinstance(read, MultiAgentBatch) and read.env_steps() == 4
    for pid in ("a", "b"):
        assert_batches_equal(read.policy_batches[pid], batch.policy_batches[pid])


def test_writer_starts_a_new_file_when_the_current_one_is_full(tmp_path):
    writer = JsonWriter(tmp_path, max_file_size=1)  # every line fills a file
    for _ in range(3):
        writer.write(mixed_dtype_batch(2))
    writer.close()
    files = sorted(tmp_path.glob("*.json"))
    assert [f.name.rsplit("_", 1)[1] for f in files] == ["0.json", "1.json", "2.json"]
    assert all(len(f.read_text().splitlines()) == 1 for f in files)


def test_reader_takes_a_glob_and_a_list_and_cycles_forever(tmp_path):
    for name in ("a", "b"):
        writer = JsonWriter(tmp_path / name)
        writer.write(SampleBatch(obs=np.zeros((2, 1)), rewards=[1.0, 1.0]))
        writer.close()
    files = sorted(str(p) for p in tmp_path.glob("*/*.json"))
    assert JsonReader(str(tmp_path / "*" / "*.json")).files == files
    reader = JsonReader(files, seed=3)
    assert sum(reader.next().count for _ in range(7)) == 14


@pytest.mark.parametrize(
    "line, problem",
    [
        ('{"type": "SampleBatch", "columns": ', "not valid JSON"),
        ("[1, 2, 3]", 'expected a JSON object with "type": "SampleBatch"'),
        ('{"type": "SampleBatch"}', "needs a 'columns' object"),
        (
            '{"type": "SampleBatch", "columns": {"obs": {"dtype": "<f4", "shape": [2, 2], '
            '"data": [[1, 2], [3, 4], [5, 6]]}}}',
            "column 'obs' holds data of shape [3, 2], not [2, 2]",
        ),
        (
            '{"type": "SampleBatch", "columns": {"obs": {"dtype": "<f4", "shape": [2], '
            '"zlib_base64": "not base64!"}}}',
            "column 'obs': its zlib_base64 text does not decode",
        ),
        (
            '{"type": "SampleBatch", "columns": {"obs": {"dtype": "float99", "shape": [1], '
            '"data": [1]}}}',
            "column 'obs' has an unknown dtype 'float99'",
        ),
        (
            '{"type": "SampleBatch", "columns": {"a": {"dtype": "<i8", "shape": [2], '
            '"data": [1, 2]}, "b": {"dtype": "<i8", "shape": [1], "data": [1]}}}',
            "Column 'b' has 1 rows but 'a' has 2",
        ),
    ],
)
def test_a_malformed_line_names_the_file_the_line_and_the_problem(tmp_path, line, problem):
    path = tmp_path / "data.json"
    good = batch_to_json(SampleBatch(obs=np.zeros((2, 2), np.float32)))
    path.write_text(f"{good}\n\n{line}\n")
    reader = JsonReader(str(path))
    reader.next()
    with pytest.raises(OfflineDataError) as error:
        reader.next()
    assert str(error.value).startswith(f"{path}, line 3: ")
    assert problem in str(error.value)


def test_an_input_that_is_not_sampler_nor_a_path_says_what_input_accepts(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        PGTrainer(
            config={"input": str(tmp_path / "no-such-dir"), "num_workers": 0}, env="CartPole-v1"
        )
    message = str(error.value)
    assert "no-such-dir" in message and "matches no file" in message
    assert '"input" accepts "sampler"' in message and "a glob such as" in message
    with pytest.raises(FileNotFoundError, match="holds no .json files"):
        JsonReader(str(tmp_path))


def test_mixing_weights_that_do_not_sum_to_one_are_refused(tmp_path):
    config = {"input": {"sampler": 0.5, str(tmp_path): 0.6}, "num_workers": 0}
    with pytest.raises(
        ValueError, match=r"must sum to 1; .* sums to 1\.1\. E\.g\. 'sampler': 0\.455"
    ):
        PGTrainer(config=config, env="CartPole-v1")
    with pytest.raises(ValueError, match="a probability >= 0; 'sampler' has -0.5"):
        PGTrainer(config={"input": {"sampler": -0.5, "x": 1.5}}, env="CartPole-v1")


class _Constant(InputReader):
    def __init__(self, value):
        self.value = value

    def next(self):
        return self.value


def test_mixed_input_draws_each_source_with_its_weight_reproducibly():
    def draws(seed):
        mix = MixedInput(
            [_Constant("a"), _Constant("b")], [0.25, 0.75], np.random.default_rng(seed)
        )
        return [mix.next() for _ in range(4000)]

    assert draws(1) == draws(1) != draws(2)
    assert draws(1).count("a") / 4000 == pytest.approx(0.25, abs=0.03)


def test_a_trainer_with_output_writes_every_sampled_batch(tmp_path):
    trainer = PGTrainer(
        config={"output": str(tmp_path), "num_workers": 0, "seed": 0, "model": SMALL_MODEL},
        env="CartPole-v1",
    )
    result = trainer.train()
    trainer.stop()
    batches = [batch_from_json(line) for f in tmp_path.glob("*.json") for line in f.open()]
    assert sum(b.count for b in batches) == result["timesteps_total"] == 2000
    assert {"action_prob", "action_logp", "obs", "new_obs"} <= set(batches[0].columns)
    line = json.loads(next(tmp_path.glob("*.json")).open().readline())
    assert "zlib_base64" in line["columns"]["obs"] and "data" in line["columns"]["actions"]


# --- off-policy estimation -------------------------------------------------------------------


class _TablePolicy:
    """Returns new_probs[obs] for each row: the target policy of the hand computations."""

    config = {"gamma": 0.9}

    def __init__(self, new_probs):
        self.new_probs = np.asarray(new_probs)

    def compute_log_likelihoods(self, actions, obs_batch):
        return np.log(self.new_probs[np.asarray(obs_batch, dtype=int)])


def tiny_batch(old_probs, rewards, eps_ids):
    n = len(rewards)
    return SampleBatch(
        obs=np.arange(n),
        actions=np.zeros(n, dtype=int),
        rewards=np.asarray(rewards, dtype=np.float32),
        eps_id=eps_ids,
        action_prob=np.asarray(old_probs, dtype=np.float32),
    )


def test_is_and_wis_match_a_hand_computation():
    # Episode A: 2 steps, ratios 2 and 0.5 -> p = [2, 1]; episode B: 1 step, ratio 0.5 -> p = [0.5].
    batch = tiny_batch([0.5, 0.5, 0.8], [1.0, 2.0, 1.0], [7, 7, 9])
    policy = _TablePolicy([1.0, 0.25, 0.4])
    is_a, is_b = ImportanceSampling(policy).estimate(batch)
    assert is_a.metrics == pytest.approx({"V_prev": 1 + 0.9 * 2, "V_target": 1 * 2 + 0.9 * 2 * 1})
    assert is_b.metrics == pytest.approx({"V_prev": 1.0, "V_target": 0.5})
    # WIS: w_t = mean over both episodes, B holding its last ratio: w = [(2 + .5)/2, (1 + .5)/2].
    wis_a, wis_b = WeightedImportanceSampling(policy).estimate(batch)
    assert wis_a.metrics["V_target"] == pytest.approx(1 * 2 / 1.25 + 0.9 * 2 * 1 / 0.75)
    assert wis_b.metrics["V_target"] == pytest.approx(0.5 / 1.25)
    summary = summarize_estimates([is_a, is_b, wis_a, wis_b])
    assert summary["is"] == pytest.approx(
        {"V_prev": 1.9, "V_target": 2.15, "V_gain_est": 2.15 / 1.9, "num_episodes": 2}
    )
    assert summary["wis"]["V_target"] == pytest.approx((4.0 + 0.4) / 2)


def test_wis_is_self_normalised_where_is_is_not():
    # Both episodes have the same ratios (2 at every step): WIS divides them out, IS does not.
    batch = tiny_batch([0.25] * 4, [1.0, 1.0, 3.0, 1.0], [1, 1, 2, 2])
    policy = _TablePolicy([0.5] * 4)
    for wis, is_ in zip(
        WeightedImportanceSampling(policy).estimate(batch),
        ImportanceSampling(policy).estimate(batch),
        strict=True,
    ):
        assert wis.metrics["V_target"] == pytest.approx(wis.metrics["V_prev"])
        assert is_.metrics["V_target"] > 1.9 * is_.metrics["V_prev"]


def _record(path, *, policy_weights=None, steps=400, seed=0, **config):
    worker = RolloutWorker(
        env_creator=get_env_creator("CartPole-v1"),
        policy_class=PPOTorchPolicy,
        config={
            "model": SMALL_MODEL,
            "batch_mode": "complete_episodes",
            "rollout_fragment_length": 100,
            "output": str(path),
            "seed": seed,
            **config,
        },
    )
    if policy_weights is not None:
        worker.set_weights({"default_policy": policy_weights})
    recorded = 0
    while recorded < steps:
        recorded += worker.sample().count
    weights = worker.get_policy().get_weights()
    episodes = worker.get_metrics()
    worker.stop()
    return weights, episodes


def test_estimating_the_behaviour_policy_itself_gives_a_gain_of_one(tmp_path):
    weights, _ = _record(tmp_path)
    reader = RolloutWorker(
        env_creator=get_env_creator("CartPole-v1"),
        policy_class=PPOTorchPolicy,
        config={"model": SMALL_MODEL, "input": str(tmp_path), "input_evaluation": ["is", "wis"]},
        create_env=False,
    )
    reader.set_weights({"default_policy": weights})
    reader.sample()
    summary = summarize_estimates(reader.get_off_policy_estimates())
    for name in ("is", "wis"):
        assert summary[name]["V_gain_est"] == pytest.approx(1.0, abs=1e-5)
        assert summary[name]["V_target"] == pytest.approx(summary[name]["V_prev"], rel=1e-5)
    assert reader.get_off_policy_estimates() == []  # collected once


def test_input_evaluation_without_action_prob_names_the_column_and_how_to_record_it(tmp_path):
    _record(tmp_path, steps=50)
    (file,) = tmp_path.glob("*.json")
    batches = [batch_from_json(line) for line in file.open()]
    file.write_text(
        "".join(
            batch_to_json(SampleBatch({k: v for k, v in b.items() if "action_" not in k})) + "\n"
            for b in batches
        )
    )
    config = {"input": str(tmp_path), "evaluation_interval": None, "model": SMALL_MODEL}
    trainer = BCTrainer(config=config, env="CartPole-v1")
    with pytest.raises(ValueError) as error:
        trainer.train()
    trainer.stop()
    message = str(error.value)
    assert "'action_prob' (or 'action_logp')" in message and '"output"' in message
    assert '"input_evaluation": []' in message
    trainer = BCTrainer(config={**config, "input_evaluation": []}, env="CartPole-v1")
    assert "off_policy_estimator" not in trainer.train()
    trainer.stop()


def test_an_offline_trainer_reports_estimates_and_evaluates_in_the_real_env(tmp_path):
    _record(tmp_path)
    trainer = MARWILTrainer(
        config={"input": str(tmp_path), "model": SMALL_MODEL, "evaluation_num_episodes": 2},
        env="CartPole-v1",
    )
    result = trainer.train()
    trainer.stop()
    assert set(result["off_policy_estimator"]) == {"is", "wis"}
    for estimate in result["off_policy_estimator"].values():
        assert set(estimate) == {"V_prev", "V_target", "V_gain_est", "num_episodes"}
        assert estimate["num_episodes"] > 0 and math.isfinite(estimate["V_gain_est"])
    assert math.isnan(result["episode_reward_mean"])  # training never stepped an env
    assert result["evaluation"]["episodes_this_iter"] == 2  # the evaluation did
    learner = result["info"]["learner"]["default_policy"]
    assert {"policy_loss", "vf_loss", "moving_average_sqd_adv_norm"} <= set(learner)


def test_remote_workers_read_the_input_and_send_their_estimates(ray_session, tmp_path):
    _record(tmp_path)
    trainer = BCTrainer(
        config={"input": str(tmp_path), "num_workers": 1, "evaluation_interval": None},
        env="CartPole-v1",
    )
    result = trainer.train()
    trainer.stop()
    assert result["timesteps_total"] >= 2000
    assert result["off_policy_estimator"]["is"]["num_episodes"] > 0


def test_marwil_and_bc_configs_explain_their_mistakes(tmp_path):
    with pytest.raises(ValueError, match='learn from recorded experience: set "input"'):
        MARWILTrainer(env="CartPole-v1")
    with pytest.raises(ValueError, match='BC is MARWIL with "beta": 0'):
        BCTrainer(config={"input": "sampler", "beta": 1.0}, env="CartPole-v1")
    with pytest.raises(ValueError, match="negative beta"):
        MARWILTrainer(config={"input": "sampler", "beta": -1.0}, env="CartPole-v1")
    assert {"MARWIL", "BC"} <= set(ALGORITHMS)


# --- learning from recorded CartPole data (slow) ---------------------------------------------


# PPO with tuned_examples/ppo-cartpole.yaml's settings, stopped once its 100-episode mean return
# reaches 300 (~160 iterations, ~40k steps; the policy at that point returns ~500).
EXPERT_PPO = {
    "num_workers": 0,
    "num_envs_per_worker": 8,
    "vectorize_envs": True,
    "rollout_fragment_length": 32,
    "train_batch_size": 256,
    "sgd_minibatch_size": 256,
    "num_sgd_iter": 20,
    "lr": 0.001,
    "gamma": 0.98,
    "lambda": 0.8,
    "kl_coeff": 0.0,
    "vf_clip_param": 50.0,
    "vf_loss_coeff": 0.5,
    "grad_clip": 0.5,
    "model": {"fcnet_hiddens": [64, 64]},
    "seed": 1,
}


@pytest.fixture(scope="module")
def cartpole_data(tmp_path_factory):
    """Folders of CartPole data: the PPO expert's own (stochastic) actions, and the expert mixed
    half and half with uniform random actions (EpsilonGreedy with epsilon 0.5, which logs the
    mixture's probability of each action), with the behaviours' mean returns."""
    trainer = PPOTrainer(config=EXPERT_PPO, env="CartPole-v1")
    while trainer.train()["episode_reward_mean"] < 300:
        pass
    weights = trainer.get_weights()["default_policy"]
    trainer.stop()
    folders, returns = {}, {}
    for name, exploration in (
        ("expert", {"type": "StochasticSampling"}),
        ("half_random", {"type": "EpsilonGreedy", "epsilon_schedule": 0.5}),
    ):
        folders[name] = tmp_path_factory.mktemp(name)
        _, episodes = _record(
            folders[name],
            policy_weights=weights,
            steps=10_000,
            model=EXPERT_PPO["model"],
            num_envs_per_worker=8,
            rollout_fragment_length=50,
            exploration_config=exploration,
        )
        returns[name] = float(np.mean([e.episode_reward for e in episodes]))
    return folders, returns


def learn_offline(trainer_class, folder, seed, iterations, evaluation_config=None):
    """Train on ``folder`` for ``iterations`` steps; the last result, evaluated at the end."""
    trainer = trainer_class(
        config={
            "input": str(folder),
            "seed": seed,
            "evaluation_interval": iterations,
            "evaluation_num_episodes": 20,
            "evaluation_config": evaluation_config or {},
        },
        env="CartPole-v1",
    )
    for _ in range(iterations):
        result = trainer.train()
    trainer.stop()
    return result


@pytest.mark.slow
def test_bc_from_expert_data_balances_the_pole(cartpole_data):
    folders, returns = cartpole_data
    assert returns["expert"] >= 450
    result = learn_offline(BCTrainer, folders["expert"], seed=0, iterations=75)
    print(f"\nBC from expert data: {result['evaluation']['episode_reward_mean']}, data {returns}")
    assert result["evaluation"]["episode_reward_mean"] >= 400


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_marwil_beats_bc_on_half_random_data(cartpole_data, seed):
    # The learned policies act stochastically in the evaluation: imitation learns a distribution,
    # and BC's copy of a 75/25 mixture has the expert's action as its argmax, so a greedy
    # evaluation would hide the noise that BC copied and MARWIL learned to leave out.
    folders, returns = cartpole_data
    assert returns["half_random"] < 150
    stochastic = {"explore": True}
    bc = learn_offline(BCTrainer, folders["half_random"], seed, 50, stochastic)
    marwil = learn_offline(MARWILTrainer, folders["half_random"], seed, 50, stochastic)
    bc_return = bc["evaluation"]["episode_reward_mean"]
    marwil_return = marwil["evaluation"]["episode_reward_mean"]
    print(
        f"\nseed {seed}: BC {bc_return:.1f}, MARWIL {marwil_return:.1f}, WIS gain "
        f"{bc['off_policy_estimator']['wis']['V_gain_est']:.2f} / "
        f"{marwil['off_policy_estimator']['wis']['V_gain_est']:.2f}, data {returns}"
    )
    # Measured: MARWIL 223/204 against BC 61/40 (seeds 0/1) on this session's AMD EPYC; MARWIL
    # above 250 on the machine before. The data and the runs follow the CPU's float results.
    assert marwil_return >= 2 * bc_return and marwil_return >= 150
