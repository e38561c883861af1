"""read_scalars and tensorboard_command: a real run's TensorBoard events read back with
TensorBoard's own reader, compared with the run's result.json."""

from __future__ import annotations

import json
import os
import shlex
import sys

import numpy as np
import pytest

from course_lib.agents import read_scalars, tensorboard_command
from course_lib.agents.pg import PGTrainer
from course_lib.agents.result_logger import flatten

ITERATIONS = 3
BATCH = 200
REWARD = "ray/tune/episode_reward_mean"
LOSS = "ray/tune/info/learner/default_policy/total_loss"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Three PG iterations on CartPole-v1; the trainer stays alive, as while watching a run."""
    root = tmp_path_factory.mktemp("results")
    config = {
        "logger_config": {"logdir": str(root)},
        "seed": 0,
        "num_workers": 0,
        "num_envs_per_worker": 2,
        "rollout_fragment_length": BATCH // 2,
        "train_batch_size": BATCH,
    }
    trainer = PGTrainer(config=config, env="CartPole-v1")
    points_after_each_train = []  # {tag: number of points} read right after each train()
    for _ in range(ITERATIONS):
        trainer.train()
        scalars = read_scalars(trainer.logdir)
        points_after_each_train.append({tag: len(points) for tag, points in scalars.items()})
    with open(os.path.join(trainer.logdir, "result.json")) as file:
        results = [json.loads(line) for line in file]
    yield {
        "root": str(root),
        "logdir": trainer.logdir,
        "results": results,
        "points_after_each_train": points_after_each_train,
    }
    trainer.stop()


def as_float32(value) -> float:
    """TensorBoard stores scalars as 32-bit floats."""
    return float(np.float32(value))


def test_every_number_of_a_train_is_readable_as_soon_as_it_returns(run):
    tags = set(read_scalars(run["logdir"]))
    assert len(tags) > 20
    for iteration, points in enumerate(run["points_after_each_train"], 1):
        assert points == dict.fromkeys(tags, iteration)


def test_the_tags_are_the_results_numbers_under_ray_tune(run):
    last = run["results"][-1]
    expected = {
        f"ray/tune/{key}"
        for key, value in flatten(last).items()
        if not key.startswith(("hist_stats/", "config/"))
        and isinstance(value, (int, float))
        and not isinstance(value, bool)
        and np.isfinite(value)
    }
    scalars = read_scalars(run["logdir"])
    assert set(scalars) == expected
    assert {REWARD, LOSS, "ray/tune/training_iteration"} <= set(scalars)
    assert "ray/tune/done" not in scalars  # a bool is not a number to plot


def test_values_and_steps_match_result_json(run):
    results = run["results"]
    scalars = read_scalars(run["logdir"], [REWARD, LOSS, "ray/tune/training_iteration"])
    assert [r["timesteps_total"] for r in results] == [BATCH, 2 * BATCH, 3 * BATCH]
    assert scalars[REWARD] == [
        (r["timesteps_total"], as_float32(r["episode_reward_mean"])) for r in results
    ]
    assert scalars[LOSS] == [
        (r["timesteps_total"], as_float32(r["info"]["learner"]["default_policy"]["total_loss"]))
        for r in results
    ]
    assert scalars["ray/tune/training_iteration"] == [
        (r["timesteps_total"], float(r["training_iteration"])) for r in results
    ]


def test_one_tag_may_be_given_as_a_string(run):
    assert list(read_scalars(run["logdir"], REWARD)) == [REWARD]


def test_a_missing_folder_is_explained(tmp_path):
    with pytest.raises(
        FileNotFoundError, match="no such folder .*expected a trial's results folder"
    ):
        read_scalars(tmp_path / "no_such_run")


def test_a_file_instead_of_its_folder_is_explained(run):
    events = next(n for n in os.listdir(run["logdir"]) if n.startswith("events.out.tfevents"))
    with pytest.raises(NotADirectoryError, match=f"is a file.*{run['logdir']}"):
        read_scalars(os.path.join(run["logdir"], events))


def test_a_folder_without_events_lists_what_it_holds(tmp_path):
    (tmp_path / "notes.txt").write_text("no events here")
    with pytest.raises(FileNotFoundError) as error:
        read_scalars(tmp_path)
    message = str(error.value)
    assert "no TensorBoard event file" in message
    assert "it holds notes.txt" in message
    assert "A trainer writes one into trainer.logdir when it is built" in message


def test_a_folder_of_runs_names_the_runs_inside(run):
    with pytest.raises(FileNotFoundError, match="Its subfolders .* hold event files") as error:
        read_scalars(run["root"])
    assert os.path.basename(run["logdir"]) in str(error.value)


def test_an_unknown_tag_gets_did_you_mean_and_the_list_of_tags(run):
    with pytest.raises(ValueError) as error:
        read_scalars(run["logdir"], ["episode_reward_mean"])
    message = str(error.value)
    assert f"Unknown tag 'episode_reward_mean'. Did you mean '{REWARD}'?" in message
    assert LOSS in message  # the available tags are listed


def test_tensorboard_command_names_this_environments_tensorboard_and_an_absolute_folder(tmp_path):
    folder = tmp_path / "a run"
    program, *arguments = shlex.split(tensorboard_command(folder))
    assert arguments == ["--logdir", str(folder)]
    assert os.path.dirname(program) == os.path.dirname(sys.executable)
    assert os.path.basename(program).startswith("tensorboard")


def test_tensorboard_command_expands_the_home_folder():
    *_, folder = shlex.split(tensorboard_command("~/ray_results"))
    assert folder == os.path.join(os.path.expanduser("~"), "ray_results")
