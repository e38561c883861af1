"""Every lesson runs clean from a fresh kernel; a lesson that starts Ray survives "Run All" twice in
one kernel, and a second run after a learner's error.

This is where ``make test`` executes the lessons (notebooks/ is not collected by nbval; solutions/
is). The first full run is nbval's check: every cell runs without an error, and each cell marked
``# NBVAL_CHECK_OUTPUT`` prints what the notebook stores, compared the way nbval compares in lax
mode. Running each lesson once under nbval and twice here cost about 12 minutes of the suite.

Learners run a notebook again all the time: after an error, after editing a cell, or by habit. The
second run must not trip over what the first one left behind: Ray already running, an env or model
name already registered, actors still alive, a results folder that already exists. This test runs
each lesson that starts Ray twice in the same kernel (without writing the notebook back) and checks
that the second run ends with the same Ray actors alive as the first.

Lessons that never start Ray (03, 04, 06, 07, 09, 10, 13, 16, 17, 20, 21 today) run once: what a
second run could trip over is Ray's state (a running instance, its actors, Tune's registry that
``ray.shutdown()`` forgets, Serve applications), and the second runs of those lessons cost about
five minutes of the suite on 2 cores. Their kernel-level state (env, model and trainer
registrations) is covered by the unit tests of each registry and by the Ray lessons' second runs.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import nbformat
import psutil
import pytest
from conftest import ray_processes
from jupyter_core.utils import run_sync
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbval.plugin import coalesce_streams, transform_streams_for_comparison

ROOT = Path(__file__).resolve().parent.parent
LESSONS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT = 240  # seconds per cell, as nbval's --nbval-cell-timeout
# Each kernel (and so each Ray it starts) carries its own marker, so the leak check below looks
# only at this notebook's Ray processes, not at the unit tests' Ray that may share this run.
KERNEL_MARKER = "COURSE_LIB_RERUN_KERNEL"
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
CHECK_OUTPUT = "# NBVAL_CHECK_OUTPUT"
# What nbval leaves out of a comparison (nbval.plugin.IPyNbFile.skip_compare without --nbdime):
# bookkeeping, random widget ids, and images, which differ in their bytes from one run to the next.
SKIP_COMPARE = {
    "metadata",
    "traceback",
    "prompt_number",
    "output_type",
    "name",
    "execution_count",
    "application/vnd.jupyter.widget-view+json",
    "image/png",
    "image/jpeg",
}

# In these two lessons the first run stops at a learner's error halfway: cells up to the one that
# holds this text, then a cell that raises. Rollout workers (Ray actors) are alive at that point;
# the next "Run All" must finish and must not pile new workers on top of them.
INTERRUPT_AFTER = {
    "08_rollout_workers.ipynb": "NUM_ITERATIONS = 25",
    "12_trainers.ipynb": "checkpoints = []",
}
LEARNERS_MISTAKE = 'raise RuntimeError("learner\'s mistake")'
# What makes a lesson start Ray (directly, or through Tune, Serve or an RLlib algorithm).
STARTS_RAY = re.compile(
    r"\binit_ray\(|\bray\.init\(|\btune\.run\(|\bTuner\(|\bserve\.run\(|\bbuild_algo\("
)

# Run in the lesson's kernel just before its ray.shutdown() (or after its last cell): the class
# names of the live Ray actors. Ray ends an actor shortly after its last handle is dropped, so the
# list is read until it stays the same for a second. Defined and deleted in one cell, unnumbered,
# so the learner's namespace and history are as the lesson left them.
ALIVE_ACTORS = """
def _course_lib_alive_actors():
    import json, time
    import ray
    from ray._private import state

    names, settled_at, deadline = None, time.monotonic(), time.monotonic() + 15
    while ray.is_initialized() and time.monotonic() < deadline:
        now = sorted(a["ActorClassName"] for a in state.actors(actor_state_name="ALIVE").values())
        if now != names:
            names, settled_at = now, time.monotonic()
        elif time.monotonic() - settled_at > 1:
            break
        time.sleep(0.2)
    print("ALIVE_ACTORS", json.dumps(names))


_course_lib_alive_actors()
del _course_lib_alive_actors
"""


class LessonKernel:
    """One lesson's cells, run as often as asked in one kernel, plus the test's own two cells."""

    def __init__(self, path: Path):
        self.name = path.name
        self.notebook = nbformat.read(path, as_version=4)
        self.lesson = [
            index
            for index, cell in enumerate(self.notebook.cells)
            if cell.cell_type == "code" and cell.source.strip()
        ]
        # The actor census goes before the last cell that shuts Ray down, or after the last cell.
        shutdowns = [i for i in self.lesson if "ray.shutdown()" in self.notebook.cells[i].source]
        self.census_before = shutdowns[-1] if shutdowns else None
        # The stored outputs of the cells nbval would compare; nbclient overwrites them as it runs.
        self.stored = {
            index: copy.deepcopy(self.notebook.cells[index].outputs)
            for index in self.lesson
            if CHECK_OUTPUT in self.notebook.cells[index].source
            and self.notebook.cells[index].execution_count is not None
        }
        # nbclient stores each executed cell back at its index, so the test's cells get their own.
        self.notebook.cells += [
            nbformat.v4.new_code_cell(ALIVE_ACTORS),
            nbformat.v4.new_code_cell(LEARNERS_MISTAKE),
        ]
        self.census_index, self.mistake_index = (
            len(self.notebook.cells) - 2,
            len(self.notebook.cells) - 1,
        )
        self.starts_ray = any(
            STARTS_RAY.search(self.notebook.cells[index].source) for index in self.lesson
        )
        self.client = NotebookClient(
            self.notebook,
            timeout=CELL_TIMEOUT,
            kernel_name="python3",  # the kernel tools/run_notebooks.py runs the lessons in
            resources={"metadata": {"path": str(path.parent)}},
        )

    def cell(self, index: int, run: str, store_history: bool = True):
        try:
            return self.client.execute_cell(
                self.notebook.cells[index], index, store_history=store_history
            )
        except CellExecutionError as error:
            failure = (
                f"{self.name}, {run}: cell {index} raised {error.ename}: {error.evalue}\n"
                f"{ANSI_ESCAPE.sub('', str(error))}"
            )
        except (CellTimeoutError, DeadKernelError) as error:
            failure = f"{self.name}, {run}: cell {index} did not finish: {error}"
        # Outside the except blocks, so the report shows the cell's error once, not nbclient's too.
        pytest.fail(failure, pytrace=False)

    def run_all(self, run: str, check_outputs: bool = False) -> list[str] | None:
        """Every lesson cell in order; returns the live actors' class names before ray.shutdown()
        (None when Ray is not running there). With ``check_outputs``, each ``# NBVAL_CHECK_OUTPUT``
        cell must print what the notebook stores."""
        actors = None
        for index in self.lesson:
            if index == self.census_before:
                actors = self.census(run)
            cell = self.cell(index, run)
            if check_outputs and index in self.stored:
                self.compare(index, cell.outputs, run)
        return actors if self.census_before is not None else self.census(run)

    def compare(self, index: int, outputs, run: str) -> None:
        """nbval's lax-mode check of one cell: the same outputs of each kind, in order."""
        got, want = (
            flatten_outputs(coalesce_streams(copy.deepcopy(outputs_of_one_cell)))
            for outputs_of_one_cell in (outputs, self.stored[index])
        )
        if got != want:
            pytest.fail(
                f"{self.name}, {run}: cell {index} ({CHECK_OUTPUT}) printed other outputs than "
                f"the notebook stores.\nstored:  {want}\nnow:     {got}\nIf the change is "
                "intended, re-execute the lesson with tools/run_notebooks.py.",
                pytrace=False,
            )

    def census(self, run: str) -> list[str] | None:
        cell = self.cell(self.census_index, run, store_history=False)
        text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        return json.loads(re.search(r"ALIVE_ACTORS (.*)", text)[1])

    def run_until_a_mistake(self, marker: str) -> None:
        """The lesson's cells up to the one containing ``marker``, then a cell that raises."""
        stop = next(i for i in self.lesson if marker in self.notebook.cells[i].source)
        for index in self.lesson[: self.lesson.index(stop) + 1]:
            self.cell(index, "the run a learner's error interrupts")
        with pytest.raises(CellExecutionError, match="learner's mistake"):
            self.client.execute_cell(self.notebook.cells[self.mistake_index], self.mistake_index)


def flatten_outputs(outputs) -> dict[str, list]:
    """Outputs as nbval compares them: by stream name or MIME type, each with its values in order,
    leaving out the keys in SKIP_COMPARE."""
    flat: dict[str, list] = {}
    for output in transform_streams_for_comparison(outputs):
        for key, value in output.items():
            if key in SKIP_COMPARE:
                continue
            items = value.items() if key == "data" else [(key, value)]
            for name, text in items:
                if name not in SKIP_COMPARE:
                    flat.setdefault(name, []).append(text)
    return flat


def wait_for_ray_to_exit(marker: dict[str, str], seconds: float = 30) -> list[str]:
    """Wait until no Ray process of this kernel is left; kill and name any that outlive the wait."""
    deadline = time.monotonic() + seconds
    while (left := ray_processes(marker)) and time.monotonic() < deadline:
        time.sleep(0.5)
    names = []
    for pid in left:
        try:
            process = psutil.Process(pid)
            names.append(" ".join(process.cmdline()[:2]))
            process.kill()  # started by this test's kernel; the rest of the suite needs the cores
        except psutil.NoSuchProcess:
            continue
    return names


@pytest.mark.slow
@pytest.mark.notebooks
@pytest.mark.timeout(900)  # two full runs of a lesson (each at most 90 s here) plus kernel starts
@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_lesson_runs_and_reruns_in_one_kernel(path):
    kernel = LessonKernel(path)
    marker = {KERNEL_MARKER: uuid.uuid4().hex}
    runs = ["run 1", "run 2"] if kernel.starts_ray else ["run 1"]
    seconds = {}
    try:
        with kernel.client.setup_kernel(env={**os.environ, **marker}):
            if path.name in INTERRUPT_AFTER:
                start = time.perf_counter()
                kernel.run_until_a_mistake(INTERRUPT_AFTER[path.name])
                seconds["interrupted run"] = time.perf_counter() - start
                runs = ["run 1 (after the learner's error)", "run 2"]
            actors = {}
            for run in runs:
                start = time.perf_counter()
                actors[run] = kernel.run_all(run, check_outputs=run == runs[0])
                seconds[run] = time.perf_counter() - start
    finally:
        # pytest-timeout's SIGALRM can stop a run before nbclient shuts its kernel down.
        if kernel.client.km is not None and kernel.client.km.has_kernel:
            run_sync(kernel.client.km.shutdown_kernel)(now=True)
        left = wait_for_ray_to_exit(marker)
    print(f"{path.name}: " + ", ".join(f"{run} {s:.1f} s" for run, s in seconds.items()))

    first, second = actors[runs[0]], actors[runs[-1]]
    assert first == second, (
        f"{path.name}: the Ray actors alive at the end of the lesson differ between runs "
        f"({runs[0]}: {first}; {runs[1]}: {second}). Something keeps actors from an earlier run "
        "alive (a handle in a list, in Out[] or in a registry), so every run adds more."
    )
    assert not left, (
        f"{path.name}: Ray processes outlived the kernel's shutdown: {left}. The lesson should "
        "end with ray.shutdown()."
    )


RESTART_RAY_TWICE = """
import json

import gymnasium as gym
import ray
from ray.tune.registry import ENV_CREATOR, _global_registry, get_trainable_cls

import course_lib
import course_lib.agents
from course_lib.envs import register_env


def make_rerun_env(env_config):
    return gym.make("CartPole-v1")


register_env("rerun_env", make_rerun_env)
found = []
for _ in range(2):
    course_lib.init_ray(num_cpus=1)
    trainer_module = get_trainable_cls("PPO").__module__
    found.append([trainer_module, _global_registry.contains(ENV_CREATOR, "rerun_env")])
    ray.shutdown()
print("FOUND", json.dumps(found))
"""


@pytest.mark.slow
def test_tune_finds_course_trainers_and_envs_after_ray_restarts():
    """Tune's registry lives in the running Ray, so ray.shutdown() forgets it; course_lib
    registers again on every ray.init(). Without that, a lesson's second run in the same kernel
    got RLlib's own PPO from tune.run("PPO") (lesson 14)."""
    completed = subprocess.run(
        [sys.executable, "-c", RESTART_RAY_TWICE],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=240,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    found = json.loads(re.search(r"FOUND (.*)", completed.stdout)[1])
    assert found == [["course_lib.agents.ppo.ppo", True]] * 2, found


def _stream(text: str, name: str = "stdout"):
    return nbformat.v4.new_output("stream", name=name, text=text)


def _result(plain: str, png: str = "iVBORw0KGgo="):
    return nbformat.v4.new_output(
        "display_data", data={"text/plain": plain, "image/png": png}, metadata={}
    )


def _lesson_with_one_checked_cell(tmp_path: Path, outputs) -> LessonKernel:
    cell = nbformat.v4.new_code_cell(f"{CHECK_OUTPUT}\nprint(1)", execution_count=1)
    cell.outputs = outputs
    path = tmp_path / "lesson.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)
    return LessonKernel(path)


def test_output_check_compares_like_nbval(tmp_path):
    """Streams printed in pieces equal the stored whole, images are not compared; a changed value,
    a missing stream or a printout on another stream fails with both outputs in the message."""
    kernel = _lesson_with_one_checked_cell(tmp_path, [_stream("a\nb\n"), _result("<Figure>")])
    assert list(kernel.stored) == [0]
    kernel.compare(0, [_stream("a\n"), _stream("b\n"), _result("<Figure>", png="AAAA")], "run 1")
    for wrong in (
        [_stream("a\nc\n"), _result("<Figure>")],
        [_result("<Figure>")],
        [_stream("a\nb\n", name="stderr"), _result("<Figure>")],
        [_stream("a\nb\n"), _result("<Figure 2>")],
    ):
        with pytest.raises(pytest.fail.Exception, match="other outputs than the notebook stores"):
            kernel.compare(0, wrong, "run 1")


def test_unrun_and_unmarked_cells_are_not_compared(tmp_path):
    unmarked = nbformat.v4.new_code_cell("print(1)", execution_count=1)
    unmarked.outputs = [_stream("1\n")]
    unrun = nbformat.v4.new_code_cell(f"{CHECK_OUTPUT}\nprint(2)")
    path = tmp_path / "lesson.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[unmarked, unrun]), path)
    assert LessonKernel(path).stored == {}


def test_lessons_that_start_ray_are_the_ones_rerun(tmp_path):
    """A lesson is rerun in its kernel when it starts Ray, directly or through Tune or Serve."""
    with_ray = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("from course_lib import init_ray\n\ninit_ray()")]
    )
    without = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 'init_ray'")])
    for name, notebook, expected in (("a", with_ray, True), ("b", without, False)):
        nbformat.write(notebook, tmp_path / f"{name}.ipynb")
        assert LessonKernel(tmp_path / f"{name}.ipynb").starts_ray is expected
    lessons = {path.name: LessonKernel(path).starts_ray for path in LESSONS}
    assert lessons["14_tune.ipynb"] and lessons["18_serving.ipynb"] and lessons["00_welcome.ipynb"]
    assert all(lessons[name] for name in INTERRUPT_AFTER), "the interrupted lessons start Ray"
