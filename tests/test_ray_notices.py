"""shortened_ray_notices: a crashed actor's raylet notice becomes one short line after the cell's
own output."""

from __future__ import annotations

import os
import threading

import ray

from course_lib.ray_notices import shorten_notice, shortened_ray_notices

WORKER_DIED = (
    "(raylet) A worker died or was killed while executing a task by an unexpected system error. "
    "To troubleshoot the problem, check the logs for the dead worker. Lease ID: 0b00"
)
RETRIED = (
    "(raylet) Task RestartableCounter.crash_if_pid failed. There are 1 retries remaining, so the "
    "task will be retried. Error: The actor is temporarily unavailable: RpcError: Socket "
    "closed rpc_code: 14"
)


def test_a_notice_keeps_its_first_sentences_and_loses_ids_and_rpc_details():
    assert shorten_notice(WORKER_DIED) == (
        "A worker died or was killed while executing a task by an unexpected system error."
    )
    assert shorten_notice("\x1b[33m" + RETRIED + "\x1b[0m") == (
        "Task RestartableCounter.crash_if_pid failed. There are 1 retries remaining, so the task "
        "will be retried."
    )


def test_other_threads_are_held_back_and_the_cells_own_lines_pass_through(capsys):
    with shortened_ray_notices(settle_s=0.05):
        thread = threading.Thread(target=print, args=(WORKER_DIED,))
        thread.start()
        thread.join()
        print("the answer: 42")
        threading.Thread(target=print, args=("(f pid=7) a worker's own print",)).start()
    assert capsys.readouterr().out.splitlines() == [
        "the answer: 42",
        "Ray's notice, shortened: A worker died or was killed while executing a task by an "
        "unexpected system error.",
        "(f pid=7) a worker's own print",
    ]


@ray.remote(max_restarts=0)
class Fragile:
    def crash(self):
        os._exit(1)


def test_a_real_actor_crash_prints_one_short_notice(ray_session, capsys):
    with shortened_ray_notices():
        try:
            ray.get(Fragile.remote().crash.remote())
        except ray.exceptions.RayActorError as err:
            print(type(err).__name__)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "ActorDiedError"
    assert all(line.startswith("Ray's notice, shortened: ") for line in out[1:]), out
    assert all(len(line) < 160 for line in out)
