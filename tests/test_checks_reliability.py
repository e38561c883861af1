"""Graders survive the learner's code: a hang, a crash and a wrong type each end in a message in the
learner's terms within the stated time limit, and the same grader then accepts the right answer.

The time limits are module constants (``TIME_LIMIT_S``) that the hang tests shrink to a few
seconds; every right answer runs under the real limit.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time

import pytest
import ray
import torch

# The reference answers the other grader tests already hold (tests/ is on sys.path under pytest).
from test_checks import CartPoleActorRight, parallel_map_right
from test_checks_rollouts import training_step_right
from test_checks_trainers import evaluate_right, resume_right

from course_lib import checks
from course_lib.checks import policies, ray_actors, ray_tasks, rollouts, trainers
from course_lib.checks import tune as tune_check
from course_lib.checks._common import LearnerCrashed, LearnerHung
from course_lib.checks._learner_calls import call_learner
from course_lib.sample_batch import SampleBatch

# Every test here waits, on purpose, for a hang to hit a grader's time limit or for killed
# workers to come back (about 60 s in all): `make test` runs them, `make test-fast` does not.
pytestmark = pytest.mark.slow

# The message must come within the limit plus the time it takes to stop what the code started
# (cancel tasks, kill actors) on a busy 2-core machine. Without the check it would never come.
STOP_MARGIN_S = 30.0


def fails_within(limit_s, match, grader, answer):
    """Run ``grader(answer)``: it must raise CheckFailed matching ``match`` within the limit."""
    started = time.monotonic()
    with pytest.raises(checks.CheckFailed, match=match) as raised:
        grader(answer)
    assert time.monotonic() - started < limit_s + STOP_MARGIN_S
    return raised.value


# --- call_learner itself, without Ray -------------------------------------------------------------


def spin():
    while True:
        pass


def spin_after_swallowing_the_interruption():
    try:
        spin()
    except BaseException:  # noqa: B036 - what a learner might write; the check stops it anyway
        pass
    spin()


def divide_by_zero(x):
    return x / 0


def test_a_loop_that_never_ends_is_stopped_at_the_limit():
    started = time.monotonic()
    with pytest.raises(LearnerHung, match=r"spin\(\) did not return within 0.5 s.*a loop"):
        call_learner("0.0", "spin()", spin, seconds=0.5, hint="a loop that never ends")
    assert time.monotonic() - started < 0.5 + STOP_MARGIN_S


def test_a_loop_that_swallows_the_interruption_is_still_stopped():
    with pytest.raises(LearnerHung, match="within 0.3 s"):
        call_learner("0.0", "f()", spin_after_swallowing_the_interruption, seconds=0.3, hint="-")


def test_a_crash_names_the_exception_and_the_learners_line():
    with pytest.raises(LearnerCrashed) as raised:
        call_learner("0.0", "divide_by_zero(1)", divide_by_zero, 1, seconds=5, hint="-")
    message = str(raised.value)
    assert "Exercise 0.0: divide_by_zero(1) raised ZeroDivisionError: division by zero" in message
    assert "in divide_by_zero(): `return x / 0`" in message
    assert isinstance(raised.value.error, ZeroDivisionError)
    assert raised.value.__cause__ is raised.value.error  # the learner's traceback stays visible


def test_the_graders_own_failures_and_a_stub_pass_through_unchanged():
    def grader_says_no():
        raise checks.CheckFailed("0.0", "wrong")

    def stub():
        raise NotImplementedError("Exercise 0.0: replace this line")

    with pytest.raises(checks.CheckFailed) as raised:
        call_learner("0.0", "f()", grader_says_no, seconds=5, hint="-")
    assert type(raised.value) is checks.CheckFailed and str(raised.value) == "Exercise 0.0: wrong"
    with pytest.raises(NotImplementedError, match="replace this line") as stubbed:
        call_learner("0.0", "f()", stub, seconds=5, hint="-")
    assert type(stubbed.value) is NotImplementedError


def test_jupyters_interrupt_button_still_interrupts():
    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as raised:
        call_learner("0.0", "f()", interrupted, seconds=5, hint="-")
    assert type(raised.value) is KeyboardInterrupt


def test_an_enclosing_timer_keeps_its_handler_and_the_rest_of_its_time():
    """pytest-timeout (and a check inside a check) arm SIGALRM too: nesting must restore them."""
    fired = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: fired.append(signum))
    outer_delay, outer_interval = signal.setitimer(signal.ITIMER_REAL, 50.0)
    try:
        with pytest.raises(LearnerHung):
            call_learner("0.0", "spin()", spin, seconds=0.3, hint="-")
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 45.0 < left <= 49.7
        assert signal.getsignal(signal.SIGALRM) is not previous and not fired

        # An enclosing timer that runs out first fires its own handler, and ours still stops the
        # loop at our limit.
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(LearnerHung):
            call_learner("0.0", "spin()", spin, seconds=0.6, hint="-")
        assert fired == [signal.SIGALRM]
        assert signal.getitimer(signal.ITIMER_REAL)[0] == 0.0
    finally:
        signal.signal(signal.SIGALRM, previous)
        signal.setitimer(signal.ITIMER_REAL, outer_delay, outer_interval)


def test_a_sigint_handler_the_learners_code_installs_is_removed():
    """Tune installs one and keeps it; Jupyter's interrupt button would stop working."""
    before = signal.getsignal(signal.SIGINT)

    def installs_a_handler():
        signal.signal(signal.SIGINT, lambda signum, frame: None)
        return 1

    assert call_learner("0.0", "f()", installs_a_handler, seconds=5, hint="-") == 1
    assert signal.getsignal(signal.SIGINT) is before


def test_off_the_main_thread_a_hang_is_reported_and_left_running():
    release = threading.Event()
    outcome = {}

    def check_from_a_thread():
        try:
            call_learner("0.0", "wait()", release.wait, seconds=0.5, hint="a wait")
        except LearnerHung as error:
            outcome["error"] = error

    checker = threading.Thread(target=check_from_a_thread)
    checker.start()
    checker.join(0.5 + STOP_MARGIN_S)
    release.set()  # let the learner's thread end, as a kernel restart would
    assert "keeps running in the background" in str(outcome["error"])
    assert "Restart the kernel" in str(outcome["error"])


def test_off_the_main_thread_crashes_are_explained_too():
    outcome = {}

    def check_from_a_thread():
        try:
            call_learner("0.0", "divide_by_zero(1)", divide_by_zero, 1, seconds=5, hint="-")
        except LearnerCrashed as error:
            outcome["error"] = error

    checker = threading.Thread(target=check_from_a_thread)
    checker.start()
    checker.join(10)
    assert "raised ZeroDivisionError" in str(outcome["error"])


def test_a_line_from_a_notebook_cell_is_read_from_this_kernels_cell_cache(monkeypatch):
    """A Ray worker cannot read a notebook cell, so its traceback has no source line there."""
    import linecache

    from course_lib.checks._learner_calls import _remote_line

    cell = "/tmp/ipykernel_1/123.py"
    monkeypatch.setitem(
        linecache.cache, cell, (30, None, ["def f(x):\n", "    return x / 0\n"], cell)
    )
    traceback_text = (
        "ray::task() (pid=1, ip=127.0.0.1)\n"
        f'  File "{cell}", line 2, in f\n'
        "ZeroDivisionError: division by zero"
    )
    assert _remote_line(traceback_text) == ", at line 2 of your code, in f(): `return x / 0`"


# --- tasks (lesson 01) ----------------------------------------------------------------------------

STARTED_REFS = []


@ray.remote
def sleep_forever():
    time.sleep(10**6)


def parallel_map_waiting_forever(remote_fn, items):
    ref = sleep_forever.remote()
    STARTED_REFS.append(ref)
    return ray.get(ref)


def square_badly(x):
    return x * x / 0


@ray.remote
def square_task(x):
    return square_badly(x)


def parallel_map_crashing_in_a_task(remote_fn, items):
    return ray.get([square_task.remote(item) for item in items])


def test_tasks_a_ray_get_that_waits_forever_is_stopped_and_its_task_cancelled(
    ray_session, monkeypatch, capsys
):
    monkeypatch.setattr(ray_tasks, "RENDEZVOUS_TIMEOUT_S", 1.0)
    monkeypatch.setattr(ray_tasks, "TIME_LIMIT_S", 1.0)
    STARTED_REFS.clear()
    error = fails_within(
        2.0,
        r"parallel_map\(remote_fn, items\) did not return within 2 s.*a ray.get on a task that "
        r"never finishes.*cancelled the Ray tasks your code was waiting for",
        checks.check_parallel_map,
        parallel_map_waiting_forever,
    )
    assert isinstance(error, LearnerHung)
    with pytest.raises((ray.exceptions.TaskCancelledError, ray.exceptions.WorkerCrashedError)):
        ray.get(STARTED_REFS.pop(), timeout=30)
    monkeypatch.undo()
    checks.check_parallel_map(parallel_map_right)
    assert "Exercise 1.1 passed" in capsys.readouterr().out


def test_tasks_an_error_deep_inside_a_task_names_the_task_and_the_line(ray_session):
    fails_within(
        ray_tasks.RENDEZVOUS_TIMEOUT_S + ray_tasks.TIME_LIMIT_S,
        r"failed inside a Ray task: .*square_task.* raised ZeroDivisionError: division by zero, "
        r"at line \d+ of your code, in square_badly\(\): `return x \* x / 0`",
        checks.check_parallel_map,
        parallel_map_crashing_in_a_task,
    )


@pytest.mark.parametrize(
    "answer, message",
    [
        (lambda remote_fn, items: 42, r"parallel_map should return a list .*; got int 42"),
        (lambda remote_fn, items: remote_fn.remote(items[0]), "returned an ObjectRef"),
        (lambda remote_fn, items: None, r"returned None. Did you forget `return`\?"),
    ],
    ids=["int", "object-ref", "none"],
)
def test_tasks_a_wrong_type_is_named(ray_session, answer, message):
    with pytest.raises(checks.CheckFailed, match=message):
        checks.check_parallel_map(answer)


# --- actors (lesson 02) ---------------------------------------------------------------------------


class CartPoleActorBlocking(CartPoleActorRight):
    def rollout(self, num_steps):
        threading.Event().wait()  # waits for a signal that never comes


class CartPoleActorExiting(CartPoleActorRight):
    def rollout(self, num_steps):
        finished = super().rollout(num_steps)
        ray.actor.exit_actor()  # "done": but the actor is gone for good
        return finished


class CartPoleActorCounting(CartPoleActorRight):
    def rollout(self, num_steps):
        return len(super().rollout(num_steps))


def test_actors_a_method_that_blocks_is_stopped(ray_session, monkeypatch, capsys):
    monkeypatch.setattr(ray_actors, "TIME_LIMIT_S", 3.0)
    fails_within(
        3.0,
        r"CartPoleActor.rollout\(\) did not return within 3 s.*the method never returns",
        checks.check_cartpole_actor,
        ray.remote(CartPoleActorBlocking),
    )
    monkeypatch.undo()
    checks.check_cartpole_actor(ray.remote(CartPoleActorRight))
    assert "Exercise 2.2 passed" in capsys.readouterr().out


def test_actors_an_actor_that_exits_is_explained(ray_session):
    fails_within(
        ray_actors.TIME_LIMIT_S,
        r"the CartPoleActorExiting actor died while CartPoleActor.rollout\(\) ran: .*"
        r"exit_actor\(\) is called. An actor that calls ray.actor.exit_actor\(\)",
        checks.check_cartpole_actor,
        ray.remote(CartPoleActorExiting),
    )


def test_actors_a_wrong_type_is_named(ray_session):
    with pytest.raises(
        checks.CheckFailed,
        match=r"CartPoleActor.rollout\(150\) should return a list of the returns .*; got int",
    ):
        checks.check_cartpole_actor(ray.remote(CartPoleActorCounting))


# --- policies (lesson 07) -------------------------------------------------------------------------


def reinforce_loss_right(policy, model, dist_class, train_batch):
    logits, _ = model.from_batch(train_batch)
    logp = dist_class(logits, model).logp(train_batch[SampleBatch.ACTIONS])
    return -torch.mean(logp * train_batch[SampleBatch.ADVANTAGES])


def reinforce_loss_looping(policy, model, dist_class, train_batch):
    total, step = 0.0, 0
    while step < len(train_batch["actions"]):
        total += float(train_batch["advantages"][step])  # forgot step += 1
    return total


def reinforce_loss_with_a_typo(policy, model, dist_class, train_batch):
    logits, _ = model.from_batch(train_batch)
    return -torch.mean(dist_class(logits, model).logp(train_batch["actions"]) * train_batch["adv"])


def test_policies_a_loop_that_never_ends_is_stopped(monkeypatch, capsys):
    monkeypatch.setattr(policies, "TIME_LIMIT_S", 1.0)
    fails_within(
        1.0,
        r"reinforce_loss\(policy, model, dist_class, train_batch\) did not return within 1 s.*"
        "a loop that never ends",
        checks.check_reinforce_loss,
        reinforce_loss_looping,
    )
    monkeypatch.undo()
    checks.check_reinforce_loss(reinforce_loss_right)
    assert "Exercise 7.1 passed" in capsys.readouterr().out


def test_policies_a_crash_names_the_line():
    fails_within(
        policies.TIME_LIMIT_S,
        r"raised KeyError: .*'adv'.*, at line \d+ of your code, in reinforce_loss_with_a_typo\(\)",
        checks.check_reinforce_loss,
        reinforce_loss_with_a_typo,
    )


def test_policies_a_wrong_type_is_named():
    with pytest.raises(checks.CheckFailed, match="must be a scalar torch tensor.*got float"):
        checks.check_reinforce_loss(lambda *args: reinforce_loss_right(*args).item())


# --- rollout workers (lesson 08) ------------------------------------------------------------------


@ray.remote
def spin_forever():
    while True:
        pass


def training_step_waiting_for_a_spinning_task(workers):
    ray.get(spin_forever.remote())


def training_step_killing_a_worker(workers):
    ray.kill(workers.remote_workers()[0])  # "free a worker": it was still needed
    return training_step_right(workers)


def training_step_without_return(workers):
    training_step_right(workers)


def test_workers_a_ray_get_that_waits_forever_is_stopped(ray_session, monkeypatch, capsys):
    # The limit is the check's own plus the rendezvous wait its envs may spend at their first step.
    monkeypatch.setattr(rollouts, "TIME_LIMIT_S", 1.0)
    monkeypatch.setattr(ray_tasks, "RENDEZVOUS_TIMEOUT_S", 1.0)
    fails_within(
        2.0,
        r"parallel_training_step\(workers\) did not return within 2 s.*cancelled the Ray tasks",
        checks.check_parallel_training_step,
        training_step_waiting_for_a_spinning_task,
    )
    monkeypatch.undo()
    checks.check_parallel_training_step(training_step_right)
    assert "Exercise 8.1 passed" in capsys.readouterr().out


def test_workers_a_killed_worker_is_explained_and_the_next_check_works(ray_session, capsys):
    fails_within(
        rollouts.TIME_LIMIT_S,
        r"the RolloutWorker actor died while parallel_training_step\(workers\) ran: .*"
        r"or is killed \(ray.kill, out of memory\), is gone for good",
        checks.check_parallel_training_step,
        training_step_killing_a_worker,
    )
    checks.check_parallel_training_step(training_step_right)
    assert "Exercise 8.1 passed" in capsys.readouterr().out


def test_workers_a_missing_return_is_named(ray_session):
    with pytest.raises(checks.CheckFailed, match=r"parallel_training_step returned None"):
        checks.check_parallel_training_step(training_step_without_return)


# --- trainers (lesson 12) -------------------------------------------------------------------------


def evaluate_never_ending(trainer, env, seed):
    episode_reward, done = 0.0, False
    obs, info = env.reset(seed=seed)
    while not done:  # never set: the loop outlives the episode
        obs, reward, terminated, truncated, info = env.step(
            trainer.compute_single_action(obs, explore=False)
        )
        episode_reward += reward
    return episode_reward


def resume_from_a_wrong_folder(trainer_cls, config, checkpoint, iterations):
    trainer = trainer_cls(config=config)
    try:
        trainer.restore(os.path.join(checkpoint, "no-such-checkpoint"))
    finally:
        trainer.stop()


def resume_returning_the_last_result(trainer_cls, config, checkpoint, iterations):
    return resume_right(trainer_cls, config, checkpoint, iterations)[-1]


@pytest.mark.filterwarnings("ignore:.*calling 'step\\(\\)' even though:UserWarning")
def test_trainers_a_loop_over_an_env_that_never_ends_is_stopped(monkeypatch, capsys):
    monkeypatch.setattr(trainers, "TIME_LIMIT_S", 2.0)
    fails_within(
        2.0,
        r"evaluate_episode\(trainer, env, seed=0\) did not return within 2 s.*a while loop "
        "over the env that never ends: stop when terminated OR truncated",
        checks.check_evaluation_loop,
        evaluate_never_ending,
    )
    monkeypatch.undo()
    checks.check_evaluation_loop(evaluate_right)
    assert "Exercise 12.1 passed" in capsys.readouterr().out


def test_trainers_a_crash_names_the_learners_line(capsys):
    fails_within(
        trainers.TIME_LIMIT_S,
        r"resume\(trainer_cls, config, checkpoint, iterations\) raised \w+Error: .*no-such-"
        r"checkpoint.*, at line \d+ of your code, in resume_from_a_wrong_folder\(\)",
        checks.check_resume,
        resume_from_a_wrong_folder,
    )
    checks.check_resume(resume_right)
    assert "Exercise 12.2 passed" in capsys.readouterr().out


def test_trainers_a_wrong_type_is_named():
    with pytest.raises(checks.CheckFailed, match="return the list of the dicts .* got dict"):
        checks.check_resume(resume_returning_the_last_result)


# --- Tune (lesson 14) -----------------------------------------------------------------------------

PG_CONFIG = {
    "env": "CartPole-v1",
    "seed": 0,
    "num_envs_per_worker": 4,
    "rollout_fragment_length": 100,
    "train_batch_size": 400,
    "model": {"fcnet_hiddens": [32]},
}


def run_search(storage_path, lrs, stop, config=PG_CONFIG):
    from ray import tune

    from course_lib.agents.pg import PGTrainer

    analysis = tune.run(
        PGTrainer,
        config={**config, "lr": tune.grid_search(lrs)},
        stop=stop,
        checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=True),
        storage_path=storage_path,
        verbose=0,
    )
    best_trial = analysis.get_best_trial("episode_reward_mean", "max")
    checkpoint = analysis.get_best_checkpoint(best_trial, "episode_reward_mean", "max")
    return best_trial.config["lr"], checkpoint.path


def search_right(storage_path, lrs, iterations):
    return run_search(storage_path, lrs, {"training_iteration": iterations})


def search_never_stopping(storage_path, lrs, iterations):
    return run_search(storage_path, lrs, {"episode_reward_mean": 10**9})


def search_with_a_crashing_trial(storage_path, lrs, iterations):
    config = {**PG_CONFIG, "env": "CartPole-v99"}
    return run_search(storage_path, lrs, {"training_iteration": iterations}, config)


@pytest.mark.slow
def test_tune_a_search_that_never_stops_is_stopped_and_frees_ray(
    ray_session, monkeypatch, capsys, tmp_path
):
    monkeypatch.setattr(tune_check, "TIME_LIMIT_S", 10.0)
    fails_within(
        10.0,
        r"search_lr\(storage_path, lrs, iterations\) did not return within 10 s.*a stop condition "
        "that no trial reaches.*stopped \\d+ actor\\(s\\) started during the check",
        checks.check_tune_search,
        search_never_stopping,
    )
    monkeypatch.undo()
    recorded = tmp_path / "recorded"

    def search_and_keep_a_copy(storage_path, lrs, iterations):
        answer = search_right(storage_path, lrs, iterations)
        shutil.copytree(storage_path, recorded)
        return answer

    checks.check_tune_search(search_and_keep_a_copy)  # Ray's CPUs are free again
    assert "Exercise 14.1 passed" in capsys.readouterr().out

    def search_returning_the_lr_only(storage_path, lrs, iterations):
        shutil.copytree(recorded, storage_path, dirs_exist_ok=True)
        return 0.01

    with pytest.raises(checks.CheckFailed, match=r"return a pair \(best_lr, checkpoint_path\)"):
        checks.check_tune_search(search_returning_the_lr_only)


@pytest.mark.slow
def test_tune_a_trial_that_crashes_is_explained(ray_session):
    fails_within(
        tune_check.TIME_LIMIT_S,
        r"the trial with lr=\S+ ended as ERROR, not TERMINATED: .*CartPole-v99",
        checks.check_tune_search,
        search_with_a_crashing_trial,
    )
