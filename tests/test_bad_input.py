"""Bad input, everywhere a learner or a user types: each mistake ends in one clear message that
says what was wrong, what was expected and the fix, never in a traceback from deep inside.

Two tables: ``course-rl`` command lines (exit status 2, one line on stderr, no traceback) and
Python calls (the exception type and the key words of its message). Then the saves that fail
halfway: they leave the previous checkpoint and the results folder whole. No Ray and no training
here: trainers are built with ``num_workers=0`` and never trained.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import gymnasium
import numpy as np
import pytest
import torch

from course_lib import init_ray
from course_lib.agents import checkpoint
from course_lib.agents.pg import PGTrainer
from course_lib.agents.ppo import PPOTrainer
from course_lib.agents.result_logger import ResultLogger
from course_lib.cli import main
from course_lib.envs import make_env, register_env, registry
from course_lib.models import ModelCatalog
from course_lib.sample_batch import SampleBatch

TINY = {
    "num_workers": 0,
    "num_envs_per_worker": 1,
    "rollout_fragment_length": 10,
    "train_batch_size": 10,
    "model": {"fcnet_hiddens": [8]},
}


def tiny_config(folder: Path, **overrides) -> dict:
    return {**TINY, "logger_config": {"logdir": str(folder / "results")}, **overrides}


BUILT = []  # trainers the table's calls build, stopped after each test


def build(trainer_cls, folder: Path, **overrides):
    trainer = trainer_cls(config=tiny_config(folder, **overrides), env="CartPole-v1")
    BUILT.append(trainer)
    return trainer


@pytest.fixture(autouse=True)
def stop_built_trainers():
    yield
    while BUILT:
        BUILT.pop().stop()


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A PG trainer on CartPole (never trained) and a checkpoint it saved."""
    folder = tmp_path_factory.mktemp("saved")
    trainer = PGTrainer(config=tiny_config(folder), env="CartPole-v1")
    path = Path(trainer.save(str(folder / "checkpoint_000000")))
    yield trainer, path
    trainer.stop()


@pytest.fixture(autouse=True)
def isolated_env_registry(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


# --- damaged and foreign checkpoint folders ------------------------------------------------------


def cut_state(folder: Path) -> None:
    """trainer_state.pt cut off halfway, as by a copy that stopped."""
    state = folder / checkpoint.STATE_FILE
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])


def drop_state(folder: Path) -> None:
    (folder / checkpoint.STATE_FILE).unlink()


def cut_metadata(folder: Path) -> None:
    metadata = folder / checkpoint.METADATA_FILE
    metadata.write_text(metadata.read_text()[:40])


def forget_trainer_name(folder: Path) -> None:
    metadata = folder / checkpoint.METADATA_FILE
    metadata.write_text(json.dumps({"iteration": 3}))


def pickle_objects_into_state(folder: Path) -> None:
    torch.save({"worker": Path("not plain data")}, folder / checkpoint.STATE_FILE)


def make_rllib_checkpoint(folder: Path) -> None:
    """The files RLlib 2.60's Algorithm.save_to_path() writes at the top of its folder."""
    folder.mkdir(parents=True)
    (folder / "rllib_checkpoint.json").write_text('{"type": "Algorithm", "format": "cloudpickle"}')
    (folder / "algorithm_state.pkl").write_bytes(pickle.dumps({"iteration": 1}))
    (folder / "class_and_ctor_args.pkl").write_bytes(b"")
    (folder / "learner_group").mkdir()


def make_rllib_component(folder: Path) -> None:
    """An RLlib component folder (e.g. learner_group/): its metadata.json is RLlib's."""
    folder.mkdir(parents=True)
    (folder / "metadata.json").write_text(
        json.dumps({"class_and_ctor_args_file": "class_and_ctor_args.pkl", "ray_version": "2.60.0"})
    )


def damaged_copy(saved_path: Path, tmp_path: Path, damage) -> Path:
    folder = tmp_path / "checkpoint_000000"
    if damage in (make_rllib_checkpoint, make_rllib_component):
        damage(folder)
    else:
        shutil.copytree(saved_path, folder)
        if damage is not None:
            damage(folder)
    return folder


# --- course-rl command lines --------------------------------------------------------------------

TRAIN_PG = ["train", "--run", "PG", "--env", "CartPole-v1"]
EXPERIMENT = "cartpole-pg:\n  run: PG\n  env: CartPole-v1\n"

CLI_CASES = [
    # (argv, files written first, damage to a copy of the saved checkpoint, key words)
    pytest.param(
        [*TRAIN_PG, "--config", "{'lr': 0.01}"],
        {},
        None,
        ["--config is not valid JSON", "line 1, column 2", "double quotes", "Example: --config"],
        id="config-python-quotes",
    ),
    pytest.param(
        [*TRAIN_PG, "--config", '{"lr": 0.01,\n "gamma": }'],
        {},
        None,
        ["not valid JSON: expecting value at line 2, column 11", '"gamma": <HERE>}'],
        id="config-value-missing-on-line-2",
    ),
    pytest.param(
        [*TRAIN_PG, "--config", '{"explore": True}'],
        {},
        None,
        ["not valid JSON", "true, false and null in lower case"],
        id="config-python-true",
    ),
    pytest.param(
        [*TRAIN_PG, "--config", '{"lr": 0.01,}'],
        {},
        None,
        ["not valid JSON", "no comma before a closing"],
        id="config-trailing-comma",
    ),
    pytest.param(
        [*TRAIN_PG, "--config", "{lr: 0.01}"],
        {},
        None,
        ["not valid JSON", "shell removed the double quotes", "single quotes"],
        id="config-quotes-eaten-by-the-shell",
    ),
    pytest.param(
        [*TRAIN_PG, "--config", ""],
        {},
        None,
        ["--config is not valid JSON: it is empty", "'{}'"],
        id="config-empty",
    ),
    pytest.param(
        [*TRAIN_PG, "--config", "[1, 2]"],
        {},
        None,
        ["--config should be a JSON object", '{"lr": 0.001}'],
        id="config-not-an-object",
    ),
    pytest.param(
        ["train", "--run", "PPX", "--env", "CartPole-v1"],
        {},
        None,
        [
            "Unknown algorithm 'PPX'",
            "Did you mean 'PPO'?",
            "Available: PG, A2C, A3C, IMPALA, PPO, DQN, APEX",
        ],
        id="unknown-algorithm",
    ),
    pytest.param(
        ["train", "--run", "dqn", "--env", "CartPole-v1"],
        {},
        None,
        ["Unknown algorithm 'dqn'", "Did you mean 'DQN'?"],
        id="algorithm-in-lower-case",
    ),
    pytest.param(
        [*TRAIN_PG, "--checkpoint-freq", "-1"],
        {},
        None,
        ["--checkpoint-freq must be at least 0, got -1"],
        id="negative-checkpoint-freq",
    ),
    pytest.param(
        ["train", "-f", "no-such.yaml"],
        {},
        None,
        ["No such file: 'no-such.yaml'", "'course-rl list' shows the tuned examples"],
        id="yaml-file-missing",
    ),
    pytest.param(
        ["train", "-f", "ppo-cartpol.yaml"],
        {},
        None,
        ["No such file", "Did you mean 'ppo-cartpole.yaml'?"],
        id="tuned-example-name-misspelt",
    ),
    pytest.param(
        ["train", "-f", "experiments"],
        {"experiments/a.yaml": EXPERIMENT},
        None,
        ["'experiments' is a folder; -f takes one YAML file"],
        id="yaml-path-is-a-folder",
    ),
    pytest.param(
        ["train", "-f", "bad.yaml"],
        {"bad.yaml": EXPERIMENT + "  stopp: {training_iteration: 1}\n"},
        None,
        ["unknown key 'stopp' in experiment 'cartpole-pg'", "Did you mean 'stop'?"],
        id="yaml-key-misspelt",
    ),
    pytest.param(
        ["train", "-f", "bad.yaml"],
        {"bad.yaml": "run: PG\nenv: CartPole-v1\n"},
        None,
        ["'run', 'env' at the top level", "under the experiment's name, indented"],
        id="yaml-settings-at-the-top-level",
    ),
    pytest.param(
        ["train", "-f", "bad.yaml"],
        {"bad.yaml": EXPERIMENT + "cartpole-ppo:\n  run: PPO\n"},
        None,
        ["holds 2 experiments ('cartpole-pg', 'cartpole-ppo')", "one per file"],
        id="yaml-two-experiments",
    ),
    pytest.param(
        ["train", "-f", "bad.yaml"],
        {"bad.yaml": "- run: PG\n  env: CartPole-v1\n"},
        None,
        ["should map an experiment name to its settings", "YAML list"],
        id="yaml-not-a-mapping",
    ),
    pytest.param(
        ["train", "-f", "bad.yaml"],
        {"bad.yaml": "# nothing yet\n"},
        None,
        ["bad.yaml is empty. It should hold one experiment"],
        id="yaml-empty",
    ),
    pytest.param(
        ["train", "-f", "bad.yaml"],
        {"bad.yaml": "cartpole-pg: PG\n"},
        None,
        ["experiment 'cartpole-pg' should be a mapping of its settings", "got 'PG'"],
        id="yaml-experiment-not-a-mapping",
    ),
    pytest.param(
        ["train", "-f", "bad.yaml"],
        {"bad.yaml": "cartpole-pg:\n  run: [PG]\n  env: CartPole-v1\n"},
        None,
        ["'run' of experiment 'cartpole-pg' should be a name such as PPO, got ['PG']"],
        id="yaml-run-not-a-name",
    ),
    pytest.param(
        ["train", "-f", "bad.yaml"],
        {"bad.yaml": EXPERIMENT + "  checkpoint_freq: often\n"},
        None,
        ["'checkpoint_freq'", "whole number of iterations >= 0", "got 'often'"],
        id="yaml-checkpoint-freq-not-a-number",
    ),
    pytest.param(
        ["train", "-f", "bad.yaml"],
        {"bad.yaml": EXPERIMENT + "  config: {lr: 0.01\n"},
        None,
        ["bad.yaml is not valid YAML", "line 4", "Check the indentation and the brackets"],
        id="yaml-syntax",
    ),
    pytest.param(
        ["train", "-f", "bad.yaml"],
        {"bad.yaml": EXPERIMENT + "  config: {num_worker: 1}\n"},
        None,
        ["Unknown config key 'num_worker'. Did you mean 'num_workers'?"],
        id="yaml-config-key-misspelt",
    ),
    pytest.param(
        ["train", "-f", "bad.yaml"],
        {"bad.yaml": b"\xff\xfe\x00binary"},
        None,
        ["is not a text file, so not a YAML experiment"],
        id="yaml-binary-file",
    ),
    pytest.param(
        ["rollout", "no_such_checkpoint"],
        {},
        None,
        ["No such folder: 'no_such_checkpoint'", "Pass a checkpoint folder"],
        id="rollout-checkpoint-missing",
    ),
    pytest.param(
        ["rollout", "empty"],
        {"empty/.keep": ""},
        None,
        ["'empty' is not a course_lib checkpoint", ".../checkpoint_000010"],
        id="rollout-empty-folder",
    ),
    pytest.param(
        ["rollout", "checkpoint_000000"],
        {},
        make_rllib_component,
        ["is an RLlib checkpoint", "Algorithm.from_checkpoint(path)"],
        id="rollout-rllib-component-folder",
    ),
    pytest.param(
        ["rollout", "checkpoint_000000"],
        {},
        make_rllib_checkpoint,
        ["is an RLlib checkpoint", "not a course_lib one"],
        id="rollout-rllib-algorithm-checkpoint",
    ),
    pytest.param(
        ["rollout", "checkpoint_000000"],
        {},
        cut_metadata,
        ["metadata.json' is not valid JSON", "Restore an earlier checkpoint"],
        id="rollout-metadata-cut-off",
    ),
    pytest.param(
        ["rollout", "checkpoint_000000"],
        {},
        drop_state,
        ["has no trainer_state.pt: the checkpoint is incomplete", "copy the folder again"],
        id="rollout-state-missing",
    ),
    pytest.param(
        ["rollout", "checkpoint_000000"],
        {},
        cut_state,
        ["trainer_state.pt' is not a complete torch file", "Restore an earlier checkpoint"],
        id="rollout-state-cut-off",
    ),
]


@pytest.mark.parametrize("argv, files, damage, words", CLI_CASES)
def test_course_rl_mistake_exits_2_with_one_line_that_names_the_fix(
    argv, files, damage, words, saved, tmp_path, monkeypatch, capsys
):
    import ray

    monkeypatch.chdir(tmp_path)
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        write = Path.write_bytes if isinstance(content, bytes) else Path.write_text
        write(tmp_path / name, content)
    if damage is not None:
        damaged_copy(saved[1], tmp_path, damage)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"course-rl {argv[0]}: error: ")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    for word in words:
        assert word in err
    assert not ray.is_initialized()  # every mistake is caught before Ray starts


# --- Python calls -------------------------------------------------------------------------------


def forgot_return(env_config):
    gymnasium.make("CartPole-v1")


def returns_the_class(env_config):
    return gymnasium.Env


API_CASES = [
    # (call(trainer, checkpoint_path, tmp_path), exception type, key words)
    pytest.param(
        lambda trainer, path, tmp: register_env("cartpole", "CartPole-v1"),
        TypeError,
        ["creator must be callable", "is a gymnasium id: use it directly"],
        id="register-env-with-a-gymnasium-id",
    ),
    pytest.param(
        lambda trainer, path, tmp: register_env("cartpole", gymnasium.make("CartPole-v1")),
        TypeError,
        ["creator must be callable", "an env already built", "e.g. its class"],
        id="register-env-with-an-env-object",
    ),
    pytest.param(
        lambda trainer, path, tmp: (
            register_env("forgot", forgot_return),
            make_env("forgot"),
        ),
        TypeError,
        ["creator for 'forgot' (forgot_return) returned an object of type NoneType", "return env"],
        id="creator-returns-none",
    ),
    pytest.param(
        lambda trainer, path, tmp: (
            register_env("the_class", returns_the_class),
            make_env("the_class"),
        ),
        TypeError,
        ["returned an object of type type", "returned the class Env itself: call it"],
        id="creator-returns-a-class",
    ),
    pytest.param(
        lambda trainer, path, tmp: (
            register_env("forgot", forgot_return),
            PGTrainer(config=tiny_config(tmp, env="forgot")),
        ),
        TypeError,
        ["creator for 'forgot' (forgot_return) returned", "NoneType"],
        id="trainer-with-a-creator-returning-none",
    ),
    pytest.param(
        lambda trainer, path, tmp: make_env("CartPole-v1", {"max_episode_step": 10}),
        TypeError,
        ["'max_episode_step' is not a setting of 'CartPole-v1'", "'max_episode_steps'?"],
        id="gymnasium-env-config-misspelt",
    ),
    pytest.param(
        lambda trainer, path, tmp: trainer.compute_single_action([0.1, 0.2, 0.3]),
        ValueError,
        ["Box(shape=(4,), dtype=float32)", "got shape (3,)", "env.reset()"],
        id="observation-of-the-wrong-length",
    ),
    pytest.param(
        lambda trainer, path, tmp: trainer.compute_single_action(np.zeros((2, 4))),
        ValueError,
        ["got shape (2, 4)", "a batch of 2 observations", "compute_actions(batch)"],
        id="batch-of-observations",
    ),
    pytest.param(
        lambda trainer, path, tmp: trainer.compute_single_action("0.1 0.2 0.3 0.4"),
        TypeError,
        ["an array of shape (4,)", "got str", "not an array of numbers"],
        id="observation-is-a-string",
    ),
    pytest.param(
        lambda trainer, path, tmp: trainer.compute_single_action(
            gymnasium.make("CartPole-v1").reset(seed=0)
        ),
        TypeError,
        ["got a pair (obs, info)", "Unpack it first"],
        id="observation-with-its-info",
    ),
    pytest.param(
        lambda trainer, path, tmp: trainer.restore(tmp / "nowhere"),
        FileNotFoundError,
        ["not a course_lib checkpoint", "the folder does not exist", "trainer.save() returned"],
        id="restore-missing-folder",
    ),
    pytest.param(
        lambda trainer, path, tmp: trainer.restore(tmp),
        FileNotFoundError,
        ["not a course_lib checkpoint: it has no metadata.json", "trainer.save() returned"],
        id="restore-empty-folder",
    ),
    pytest.param(
        lambda trainer, path, tmp: trainer.restore(path / checkpoint.STATE_FILE),
        FileNotFoundError,
        ["is a file; a checkpoint is a folder", "Pass the folder that holds it"],
        id="restore-the-state-file",
    ),
    pytest.param(
        lambda trainer, path, tmp: trainer.restore(damaged_copy(path, tmp, cut_state)),
        ValueError,
        ["not a complete torch file", "cut it off", "Restore an earlier checkpoint"],
        id="restore-state-cut-off",
    ),
    pytest.param(
        lambda trainer, path, tmp: trainer.restore(damaged_copy(path, tmp, drop_state)),
        FileNotFoundError,
        ["has no trainer_state.pt", "incomplete", "copy the folder again"],
        id="restore-state-missing",
    ),
    pytest.param(
        lambda trainer, path, tmp: trainer.restore(damaged_copy(path, tmp, cut_metadata)),
        ValueError,
        ["metadata.json' is not valid JSON", "damaged", "Restore an earlier checkpoint"],
        id="restore-metadata-cut-off",
    ),
    pytest.param(
        lambda trainer, path, tmp: trainer.restore(damaged_copy(path, tmp, forget_trainer_name)),
        ValueError,
        ["not a course_lib checkpoint", "no 'trainer' key", "trainer.save() returned"],
        id="restore-metadata-of-another-program",
    ),
    pytest.param(
        lambda trainer, path, tmp: trainer.restore(
            damaged_copy(path, tmp, pickle_objects_into_state)
        ),
        ValueError,
        ["holds Python objects", "could run code", "trainer.save() returned"],
        id="restore-state-with-pickled-objects",
    ),
    pytest.param(
        lambda trainer, path, tmp: trainer.restore(damaged_copy(path, tmp, make_rllib_checkpoint)),
        FileNotFoundError,
        ["is an RLlib checkpoint", "Algorithm.from_checkpoint(path)"],
        id="restore-rllib-checkpoint",
    ),
    pytest.param(
        lambda trainer, path, tmp: trainer.restore(damaged_copy(path, tmp, make_rllib_component)),
        ValueError,
        ["is an RLlib checkpoint", "notebooks/19_rllib_today.ipynb"],
        id="restore-rllib-component-folder",
    ),
    pytest.param(
        lambda trainer, path, tmp: build(PPOTrainer, tmp, sgd_minibatch_size=10).restore(path),
        ValueError,
        ["written by a 'PG' trainer", "Build a PG trainer"],
        id="restore-another-algorithms-checkpoint",
    ),
    pytest.param(
        lambda trainer, path, tmp: build(PGTrainer, tmp, model={"fcnet_hiddens": [16]}).restore(
            path
        ),
        ValueError,
        ["does not fit this PG trainer", "config it was trained with", "params.json"],
        id="restore-into-another-model-size",
    ),
    pytest.param(
        lambda trainer, path, tmp: SampleBatch([[0.1, 0.2], [0.3, 0.4]]),
        TypeError,
        ["SampleBatch takes a dict of equal-length columns", "got list"],
        id="sample-batch-from-a-list",
    ),
    pytest.param(
        lambda trainer, path, tmp: ModelCatalog.register_custom_model(PPOTrainer, "my_model"),
        TypeError,
        ["takes a non-empty string name first, then the class", "register_custom_model('my_"],
        id="register-custom-model-arguments-swapped",
    ),
    pytest.param(
        lambda trainer, path, tmp: init_ray(num_cpus=0),
        ValueError,
        ["init_ray(num_cpus=0)", "whole number of CPUs"],
        id="init-ray-zero-cpus",
    ),
]


@pytest.mark.parametrize("call, error_type, words", API_CASES)
def test_python_mistake_raises_a_message_that_names_the_fix(
    call, error_type, words, saved, tmp_path
):
    trainer, path = saved
    with pytest.raises(error_type) as error:
        call(trainer, path, tmp_path)
    message = " ".join(str(error.value).split())
    for word in words:
        assert word in message


def test_a_refused_restore_leaves_the_trainer_as_it_was(saved, tmp_path):
    trainer, path = saved
    trainer._iteration, trainer._timesteps_total = 7, 70
    weights = trainer.get_weights()
    with pytest.raises(ValueError, match="not a complete torch file"):
        trainer.restore(damaged_copy(path, tmp_path, cut_state))
    assert (trainer.iteration, trainer._timesteps_total) == (7, 70)
    assert all(
        np.array_equal(weights[pid][k], v)
        for pid, w in trainer.get_weights().items()
        for k, v in w.items()
    )
    trainer._iteration, trainer._timesteps_total = 0, 0


# --- saves that fail halfway --------------------------------------------------------------------


def save_a_few_bytes_then_fail(obj, f, *args, **kwargs):
    """torch.save as it behaves when the disk fills up, or Ctrl-C arrives, mid-write."""
    f.write(b"PK\x03\x04 a few bytes")
    raise OSError(28, "No space left on device")


def test_an_interrupted_save_keeps_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    trainer = PGTrainer(config=tiny_config(tmp_path), env="CartPole-v1")
    folder = trainer.save(str(tmp_path / "checkpoint"))
    before = {name: (Path(folder) / name).read_bytes() for name in os.listdir(folder)}
    saved_weights = trainer.get_weights()
    trainer.set_weights({pid: {k: v + 1 for k, v in w.items()} for pid, w in saved_weights.items()})
    trainer._iteration = 5

    monkeypatch.setattr(torch, "save", save_a_few_bytes_then_fail)
    with pytest.raises(OSError, match="No space left"):
        trainer.save(folder)
    monkeypatch.undo()

    assert sorted(os.listdir(folder)) == ["metadata.json", "trainer_state.pt"]  # no temp file
    assert {name: (Path(folder) / name).read_bytes() for name in os.listdir(folder)} == before
    trainer.restore(folder)
    assert trainer.iteration == 0
    restored = trainer.get_weights()
    assert all(
        np.array_equal(saved_weights[pid][k], restored[pid][k])
        for pid in saved_weights
        for k in saved_weights[pid]
    )
    trainer.stop()


def test_an_interrupted_first_save_leaves_no_folder_that_looks_like_a_checkpoint(
    saved, tmp_path, monkeypatch
):
    trainer, _ = saved
    monkeypatch.setattr(torch, "save", save_a_few_bytes_then_fail)
    with pytest.raises(OSError):
        trainer.save(str(tmp_path / "checkpoint_000001"))
    assert os.listdir(tmp_path) == []


def test_a_results_folder_never_holds_a_half_written_params_json(tmp_path, monkeypatch):
    def fail_before_the_rename(descriptor):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", fail_before_the_rename)
    with pytest.raises(OSError, match="Input/output error"):
        ResultLogger(str(tmp_path / "results"), {"lr": 0.01})
    assert os.listdir(tmp_path / "results") == []


def test_results_files_grow_by_whole_records(tmp_path):
    logger = ResultLogger(str(tmp_path), {"lr": 0.01})
    for iteration in (1, 2):
        logger.on_result({"training_iteration": iteration, "info": {"learner": {"loss": 0.5}}})
    logger.close()
    assert json.loads((tmp_path / "params.json").read_text()) == {"lr": 0.01}
    lines = (tmp_path / "result.json").read_text().splitlines()
    assert [json.loads(line)["training_iteration"] for line in lines] == [1, 2]
    assert (tmp_path / "progress.csv").read_text().splitlines() == [
        "training_iteration,info/learner/loss",
        "1,0.5",
        "2,0.5",
    ]
