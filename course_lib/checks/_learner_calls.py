"""``call_learner``, the one way a grader runs your code.

It keeps a check cell from freezing or dying with a stack of Ray internals: code that never
returns is stopped after a stated time limit (and the Ray tasks and actors it left running are
stopped too), and a crash, in this process, in a Ray task or in an actor, comes back as a
``CheckFailed`` that names what broke in your code. Every grader that runs your code goes through
here; notebooks/00_welcome.ipynb ("How exercises work") introduces the graders.
"""

from __future__ import annotations

import linecache
import os
import re
import signal
import sys
import sysconfig
import threading
import time
import traceback
from dataclasses import dataclass, field

from ._common import CheckFailed, LearnerCrashed, LearnerHung

# --- running the learner's code -----------------------------------------------------------------

# Once the time limit has passed, the alarm repeats this often, in case your code caught the first
# interruption (a bare `except:`) and carried on; long enough for a short `finally` to finish.
_REPEAT_S = 2.0
# A timer may fire a little before time.monotonic() says it is due.
_TIMER_SLACK_S = 0.01


class _TimeLimitReached(KeyboardInterrupt):
    """Raised into your code when its time is up.

    A KeyboardInterrupt, for two reasons: ``except Exception`` in your code does not swallow it,
    and ray.get and ray.wait, which check for signals while they wait, turn only a
    KeyboardInterrupt into an exception (they raise a fresh one, so ``_Call.timed_out`` says
    whose it was).
    """


@dataclass
class _Call:
    """The state of one call_learner on the main thread, shared with its SIGALRM handler."""

    seconds: float
    outer_handler: object = None
    outer_delay: float = 0.0
    outer_interval: float = 0.0
    started: float = field(default_factory=time.monotonic)
    returned: bool = False
    timed_out: bool = False
    outer_fired: bool = False
    refs_before: frozenset = frozenset()
    actors_before: frozenset = frozenset()
    groups_before: frozenset = frozenset()
    refs_at_timeout: list = field(default_factory=list)

    def arm(self) -> None:
        """Start the timer for whichever limit comes first, ours or the enclosing one."""
        elapsed = time.monotonic() - self.started
        ends = [] if self.timed_out else [self.seconds]
        if self.outer_delay and not self.outer_fired:
            ends.append(self.outer_delay)
        delay = min(ends, default=elapsed + _REPEAT_S) - elapsed
        signal.setitimer(signal.ITIMER_REAL, max(delay, 1e-3), _REPEAT_S)

    def on_alarm(self, signum, frame) -> None:
        if self.returned:
            return
        elapsed = time.monotonic() - self.started + _TIMER_SLACK_S
        if self.outer_delay and not self.outer_fired and elapsed >= self.outer_delay:
            # The enclosing timer (pytest-timeout, an outer check) is due: its handler decides.
            self.outer_fired = True
            signal.signal(signal.SIGALRM, self.outer_handler)
            if callable(self.outer_handler):
                self.outer_handler(signum, frame)
            signal.signal(signal.SIGALRM, self.on_alarm)
            self.arm()
            return
        if elapsed < self.seconds:
            return
        if not self.timed_out:
            self.timed_out = True
            # Taken now, while your code's frames still hold the refs of the tasks it waits on.
            self.refs_at_timeout = _refs_started_since(self.refs_before)
        raise _TimeLimitReached()


def call_learner(exercise: str, what: str, fn, *args, seconds: float, hint: str):
    """Run your ``fn(*args)`` and return its result, or fail in your terms.

    - It does not return within ``seconds``: ``LearnerHung``, naming the limit and ``hint``, what
      probably hung ("a ray.get on a task that never finishes"). On the main thread (a notebook
      cell) a SIGALRM timer interrupts plain Python loops as well as ray.get and ray.wait; the
      Ray tasks your code waits for and the actors started during the call are then stopped,
      so Ray is free for the next cell. Off the main thread your code runs in a daemon thread
      that the check cannot stop.
    - It raises: ``LearnerCrashed``, naming the exception and the last line of your code it went
      through, also inside a Ray task or actor; a dead actor is explained. A ``CheckFailed``
      raised by the grader's own code, and an exercise stub's ``NotImplementedError``, come out
      as they are.

    ``what`` names the call as you wrote it ("parallel_map(remote_fn, items)").
    """
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
        return _call_with_alarm(exercise, what, fn, args, seconds, hint)
    return _call_in_thread(exercise, what, fn, args, seconds, hint)


def _call_with_alarm(exercise, what, fn, args, seconds, hint):
    call = _Call(seconds=float(seconds))
    ray = _running_ray()
    if ray is not None:
        call.refs_before = frozenset(_owned_refs())
        call.actors_before = frozenset(_live_actors())
        call.groups_before = frozenset(_live_placement_groups())
    # Tune installs a SIGINT handler and keeps it: put back the one that makes Jupyter's
    # interrupt button work.
    sigint_handler = signal.getsignal(signal.SIGINT)
    call.outer_handler = signal.getsignal(signal.SIGALRM)
    call.outer_delay, call.outer_interval = signal.setitimer(signal.ITIMER_REAL, 0)
    call.started = time.monotonic()
    signal.signal(signal.SIGALRM, call.on_alarm)
    call.arm()
    try:
        try:
            return fn(*args)
        finally:
            call.returned = True
    except KeyboardInterrupt:
        if not call.timed_out:
            raise  # the learner pressed Jupyter's interrupt button
        stopped = _stop_started_work(call)
        raise LearnerHung(
            exercise,
            f"{what} did not return within {seconds:g} s, so the check stopped it. Probably "
            f"{hint}.{stopped} A right answer finishes well within that limit.",
        ) from None
    except BaseException as error:
        _raise_in_learner_terms(exercise, what, error)
        raise
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, call.outer_handler)
        if call.outer_delay and not call.outer_fired:
            left = call.outer_delay - (time.monotonic() - call.started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3), call.outer_interval)
        if signal.getsignal(signal.SIGINT) is not sigint_handler:
            signal.signal(signal.SIGINT, sigint_handler)


def _call_in_thread(exercise, what, fn, args, seconds, hint):
    outcome = {}

    def run():
        try:
            outcome["value"] = fn(*args)
        except BaseException as error:  # handed to the checking thread below
            outcome["error"] = error

    worker = threading.Thread(target=run, name=f"exercise {exercise}: {what}", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise LearnerHung(
            exercise,
            f"{what} did not return within {seconds:g} s. Probably {hint}. This check runs "
            "outside the main thread, where it cannot stop your code: it keeps running in the "
            "background. Restart the kernel (Kernel > Restart Kernel) to stop it, then fix it.",
        )
    if "error" not in outcome:
        return outcome["value"]
    _raise_in_learner_terms(exercise, what, outcome["error"])
    raise outcome["error"]


# --- what a crash means, in the learner's terms -------------------------------------------------


def _raise_in_learner_terms(exercise: str, what: str, error: BaseException) -> None:
    """Raise the CheckFailed that explains ``error``; return only for errors that pass through."""
    ray = sys.modules.get("ray")
    exceptions = ray.exceptions if ray is not None else None
    remote = None
    cause = error
    while exceptions is not None and isinstance(cause, exceptions.RayTaskError):
        remote = remote or cause
        cause = cause.cause
    if isinstance(cause, (NotImplementedError, CheckFailed)):
        if cause is error:
            return
        # An exercise stub (or a grader's probe) failed inside Ray: raise it as itself, so the
        # message is the stub's and the type is not Ray's wrapper.
        if isinstance(cause, NotImplementedError):
            raise NotImplementedError(*cause.args) from None
        raise cause from None
    if not isinstance(error, Exception):
        return  # SystemExit, a foreign KeyboardInterrupt: not ours to explain
    if exceptions is not None and isinstance(cause, exceptions.RayActorError):
        raise LearnerCrashed(exercise, _actor_died(what, cause), error) from None
    if exceptions is not None and isinstance(cause, exceptions.GetTimeoutError):
        raise LearnerCrashed(
            exercise,
            f"{what} gave up waiting: a ray.get(..., timeout=...) in your code ran out of time "
            f"({cause}){_at_your_line(error)}. The task was still running: wait without a "
            "timeout, or find out why the task is slow.",
            error,
        ) from None
    if exceptions is not None and isinstance(cause, exceptions.WorkerCrashedError):
        raise LearnerCrashed(
            exercise,
            f"the worker process running a Ray task of {what} died. A task that calls "
            "os._exit() or sys.exit(), crashes Python or runs out of memory ends its worker: "
            "let the task return its result instead.",
            error,
        ) from None
    if remote is not None:
        # str() of Ray's error is the task's traceback, headed "ray::name() (pid=..., ip=...)";
        # its attributes are not: the copy that reaches this process lacks most of them.
        text = _strip_ansi(str(remote))
        task = re.search(r"ray::([\w.<>]+)\(", text)
        raise LearnerCrashed(
            exercise,
            f"{what} failed inside a Ray task: {task.group(1) + ' ' if task else ''}raised "
            f"{_describe(cause)}{_remote_line(text)}.",
            error,
        ) from None
    if exceptions is not None and isinstance(cause, exceptions.RayError):
        first_line = _strip_ansi(str(cause)).strip().splitlines()[:1] or [""]
        raise LearnerCrashed(
            exercise,
            f"{what} failed in Ray with {type(cause).__name__}: {first_line[0]:.300}",
            error,
        ) from None
    raise LearnerCrashed(
        exercise,
        f"{what} raised {_describe(error)}{_at_your_line(error)}. The traceback above shows where.",
        error,
    ) from error


def _actor_died(what: str, error) -> str:
    text = _strip_ansi(str(error))
    if getattr(error, "actor_init_failed", False):
        last = text.strip().splitlines()[-1] if text.strip() else type(error).__name__
        return (
            f"an actor used by {what} failed in its __init__ with {last:.300}"
            f"{_remote_line(text)}. An actor whose __init__ raises is dead: every call on its "
            "handle raises this error. Fix __init__, then create the actor again."
        )
    class_name = re.search(r"class_name: (\S+)", text)
    reason = text.strip().splitlines()[-1] if text.strip() else ""
    reason = reason.split(" Some common causes")[0]
    return (
        f"the {class_name.group(1) + ' ' if class_name else ''}actor died while {what} ran: "
        f"{reason:.300} An actor that calls ray.actor.exit_actor() or os._exit(), or is "
        "killed (ray.kill, out of memory), is gone for good: every later call on its handle "
        "raises this error. Let methods return instead of ending the actor, and don't kill an "
        "actor you still call."
    )


def _describe(error: BaseException) -> str:
    message = str(error).strip()
    return f"{type(error).__name__}: {message:.300}" if message else type(error).__name__


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>.+)$', re.M)


def _strip_ansi(text) -> str:
    return _ANSI.sub("", str(text))


def _library_roots() -> tuple[str, ...]:
    import course_lib

    paths = sysconfig.get_paths()
    roots = [os.path.dirname(course_lib.__file__)]
    roots += [paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths]
    return tuple(os.path.realpath(root) + os.sep for root in roots)


def _is_your_file(filename: str) -> bool:
    """Is ``filename`` the learner's code: not course_lib, the standard library or a package?"""
    if filename.startswith("<"):
        return filename.startswith("<ipython-input")  # IPython in a terminal names cells so
    if not os.path.isabs(filename):
        return False  # Ray's compiled code ("python/ray/_raylet.pyx"); Jupyter's cells are absolute
    return not os.path.realpath(filename).startswith(_library_roots())


def _line_text(filename: str, lineno: int, shown: str | None) -> str:
    """The source of that line: from the traceback, or from this kernel's cell cache."""
    return (shown or linecache.getline(filename, lineno)).strip()


def _where(filename: str, lineno: int, func: str, line: str) -> str:
    code = f": `{line:.120}`" if line else ""
    return f", at line {lineno} of your code, in {func}(){code}"


def _at_your_line(error: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(error.__traceback__) if _is_your_file(f.filename)]
    if not frames:
        return ""
    last = frames[-1]
    return _where(
        last.filename, last.lineno, last.name, _line_text(last.filename, last.lineno, last.line)
    )


def _remote_line(traceback_text: str) -> str:
    """The last frame of your code in a traceback that Ray sent back as text."""
    text = _strip_ansi(traceback_text)
    frames = [m for m in _FRAME.finditer(text) if _is_your_file(m["file"])]
    if not frames:
        return ""
    last = frames[-1]
    # A traceback shows the source line indented under its "File" line, when the worker could
    # read the file. A notebook cell is not a file there: this kernel's cell cache has it.
    frame_line = last.group(0).splitlines()[-1]
    indent = len(frame_line) - len(frame_line.lstrip())
    following = text[last.end() :].lstrip("\n").splitlines()[:1]
    shown = None
    if following and len(following[0]) - len(following[0].lstrip()) > indent:
        shown = None if set(following[0].strip()) <= set("^~ ") else following[0]
    lineno = int(last["line"])
    return _where(last["file"], lineno, last["func"], _line_text(last["file"], lineno, shown))


# --- what a stopped call leaves behind in Ray ---------------------------------------------------


def _running_ray():
    """The ray module if this process is connected to Ray, else None (without importing it)."""
    ray = sys.modules.get("ray")
    return ray if ray is not None and ray.is_initialized() else None


def _owned_refs() -> list[str]:
    """Hex ids of the objects this process holds references to (among them, pending tasks)."""
    ray = _running_ray()
    if ray is None:
        return []
    try:
        return list(ray._private.worker.global_worker.core_worker.get_all_reference_counts())
    except Exception:  # an internal API: without it, hung tasks are simply not cancelled
        return []


def _refs_started_since(before: frozenset) -> list:
    ray = _running_ray()
    if ray is None:
        return []
    refs = []
    for hex_id in _owned_refs():
        if hex_id in before:
            continue
        try:
            key = bytes.fromhex(hex_id.decode() if isinstance(hex_id, bytes) else hex_id)
            refs.append(ray.ObjectRef(key))  # holds the object until it is cancelled
        except Exception:
            continue
    return refs


def _live_actors() -> list[str]:
    """Hex ids of this job's actors that are alive or on their way."""
    ray = _running_ray()
    if ray is None:
        return []
    try:
        from ray._private import state

        table = state.actors(job_id=ray._private.worker.global_worker.current_job_id)
    except Exception:  # an internal API: without it, hung actors are simply not killed
        return []
    return [actor_id for actor_id, info in table.items() if info.get("State") != "DEAD"]


def _live_placement_groups() -> list[str]:
    """Hex ids of the placement groups (Tune reserves CPUs for its trials with them) not removed."""
    ray = _running_ray()
    if ray is None:
        return []
    try:
        from ray.util import placement_group_table

        table = placement_group_table()
    except Exception:
        return []
    return [group_id for group_id, info in table.items() if info.get("state") != "REMOVED"]


def _stop_started_work(call: _Call) -> str:
    """Cancel the tasks and kill the actors your hung code started; say what was stopped."""
    ray = _running_ray()
    if ray is None:
        return ""
    cancelled = False
    for ref in call.refs_at_timeout:
        try:
            ray.cancel(ref, force=True)
            cancelled = True
        except ValueError:  # an actor method cannot be force-cancelled; its actor is killed below
            try:
                ray.cancel(ref)
            except Exception:
                pass
        except Exception:  # a finished task: nothing to stop
            pass
    call.refs_at_timeout = []
    actors = 0
    core_worker = ray._private.worker.global_worker.core_worker
    for actor_id in set(_live_actors()) - call.actors_before:
        try:
            core_worker.kill_actor(ray.ActorID(bytes.fromhex(actor_id)), True)
            actors += 1
        except Exception:
            continue
    from ray.util.placement_group import PlacementGroup, remove_placement_group

    for group_id in set(_live_placement_groups()) - call.groups_before:
        try:
            remove_placement_group(PlacementGroup(ray.PlacementGroupID(bytes.fromhex(group_id))))
        except Exception:
            continue
    # Not "your actors": the grader's own actors, created just before your code ran, can still be
    # on their way to Ray's actor table when the check takes stock, so they may be among them.
    parts = ["cancelled the Ray tasks your code was waiting for"] if cancelled else []
    parts += [f"stopped {actors} actor(s) started during the check"] if actors else []
    if not parts:
        return ""
    return f" The check {' and '.join(parts)}, so Ray is free for the next cell."
