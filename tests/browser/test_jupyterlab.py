"""Lessons 00 and 09 in a real browser, as a learner meets them: JupyterLab in Chromium, the Run
menu's "Run All Cells", and the exploration lesson's slider panel.

The other notebook tests run the lessons through a kernel client (nbclient, nbval). This one goes
through what learners actually use: JupyterLab's page, its menus, and the ipywidgets front end that
draws the sliders and redraws the plot. It catches what no kernel-side test can: a panel that does
not render, a slider label cut off by its width, a readout in another format than the plot's
legend, a slider that does not redraw the plot.

Needs Debian's chromium (`make test` installs it) and the playwright package (`make setup`).
Screenshots go to $COURSE_BROWSER_ARTIFACTS, or to build/browser/ under the repository root.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from conftest import ray_processes

ROOT = Path(__file__).resolve().parents[2]
JUPYTER = Path(sys.executable).with_name("jupyter")
WAIT_S = 240  # for a lesson's "Run All"; lesson 00 takes ~20 s on a quiet machine
# Without the background-networking flags, Chromium's own connections (updates, sync, field
# trials) get refused here many at a time. headless=True adds --headless.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The server, its kernels and the Ray they start carry this variable, so the test finds its own
# Ray processes among those of other programs (as tests/test_notebook_rerun.py does per kernel).
SERVER_MARKER = "COURSE_LIB_BROWSER_SERVER"
# What a learner's first JupyterLab would otherwise do on its own: autosave (which would write the
# outputs of this run into the lessons), ask about Jupyter news, check for updates.
SETTING_OVERRIDES = {
    "@jupyterlab/docmanager-extension:plugin": {"autosave": False},
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
}
PAGE_CONFIG = {"buildCheck": False, "buildAvailable": False}  # no "build recommended" dialog
TEMPERATURE_STEPS = 3  # ArrowRight presses on lesson 09's temperature slider

pytestmark = [pytest.mark.slow, pytest.mark.notebooks]

# The state of one open notebook, read from JupyterLab's own models (window.jupyterapp, exposed by
# --LabApp.expose_app_in_browser): its kernel's status and the cells as nbformat JSON.
NOTEBOOK_STATE = """path => {
    const panel = [...window.jupyterapp.shell.widgets("main")].find(
        widget => widget.context && widget.context.path === path
    );
    const kernel = panel && panel.sessionContext.session && panel.sessionContext.session.kernel;
    if (!kernel || !panel.content.model) return null;
    const cells = panel.content.model.cells;
    let running = 0;
    for (let i = 0; i < cells.length; i++) running += cells.get(i).executionState === "running";
    return {kernel: kernel.status, running, cells: panel.content.model.toJSON().cells};
}"""


@dataclass
class Lab:
    """A running ``jupyter lab``: where it answers, its token, and the marker its kernels carry."""

    url: str
    token: str
    marker: str

    def api(self, method: str, path: str) -> object:
        request = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None


@pytest.fixture(scope="module")
def artifacts() -> Path:
    folder = Path(os.environ.get("COURSE_BROWSER_ARTIFACTS") or ROOT / "build" / "browser")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(
            "Debian's chromium is not installed: `make test` installs it with "
            "`apt-get install -y chromium`; run that (as root) or install chromium another way",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="module")
def lab(artifacts: Path):
    """``jupyter lab`` on a free local port with its own config, settings and workspace folders,
    so that no saved layout, setting or prompt of this machine's JupyterLab gets in the way."""
    home = Path(tempfile.mkdtemp(prefix="course_lib_lab_"))
    labconfig = home / "config" / "labconfig"
    labconfig.mkdir(parents=True)
    (labconfig / "default_setting_overrides.json").write_text(json.dumps(SETTING_OVERRIDES))
    (labconfig / "page_config.json").write_text(json.dumps(PAGE_CONFIG))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    lab = Lab(f"http://127.0.0.1:{port}", secrets.token_hex(16), secrets.token_hex(8))
    command = [
        str(JUPYTER),
        "lab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",  # fail on a taken port instead of serving on another
        f"--IdentityProvider.token={lab.token}",
        f"--ServerApp.root_dir={ROOT}",
        f"--LabApp.workspaces_dir={home / 'workspaces'}",
        f"--LabApp.user_settings_dir={home / 'user-settings'}",
        "--LabApp.expose_app_in_browser=True",
        *(["--allow-root"] if os.geteuid() == 0 else []),
    ]
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        SERVER_MARKER: lab.marker,
    }
    log_path = artifacts / "jupyter_lab.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                lab.api("GET", "/api/status")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
                if server.poll() is not None or time.monotonic() > deadline:
                    log_tail = log_path.read_text()[-3000:]
                    pytest.fail(f"jupyter lab did not answer on {lab.url} ({err}):\n{log_tail}")
                time.sleep(0.5)
        yield lab
    finally:
        stop_lab(lab, server)
        shutil.rmtree(home, ignore_errors=True)


def stop_lab(lab: Lab, server: subprocess.Popen) -> None:
    """Shut down every kernel through the server's API, then the server; end any Ray left over."""
    if server.poll() is None:
        try:
            for kernel in lab.api("GET", "/api/kernels"):
                lab.api("DELETE", f"/api/kernels/{kernel['id']}")
            lab.api("POST", "/api/shutdown")
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass  # the server is already on its way out; terminate() below makes sure
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            children = psutil.Process(server.pid).children(recursive=True)
            server.terminate()
            _, alive = psutil.wait_procs([psutil.Process(server.pid), *children], timeout=15)
            for process in alive:
                process.kill()
    # A kernel shut down mid-lesson (after a failure) can leave its Ray behind for a moment.
    leftovers = wait_for_no_ray(lab, timeout_s=30)
    for pid in leftovers:
        try:
            psutil.Process(pid).kill()
        except psutil.NoSuchProcess:
            pass


def wait_for_no_ray(lab: Lab, timeout_s: float) -> set[int]:
    """PIDs of the Ray processes this server's kernels started that are alive after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while (left := ray_processes({SERVER_MARKER: lab.marker})) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left


@pytest.fixture(scope="module")
def page(chromium: str):
    """A fresh headless Chromium page (empty profile), closed after the module's tests."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("The playwright package is not installed: run `make setup`", pytrace=False)
    profile = tempfile.mkdtemp(prefix="course_lib_chromium_")
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=chromium,
                headless=True,
                args=CHROMIUM_FLAGS,
                viewport={"width": 1280, "height": 900},
            )
            try:
                context.set_default_timeout(60_000)  # a click on the loaded 2-core machine
                yield context.pages[0] if context.pages else context.new_page()
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def open_notebook(page, lab: Lab, path: str) -> None:
    """Open a lesson by its URL and wait until its kernel is ready, as a learner does."""
    page.goto(f"{lab.url}/lab/tree/{path}?token={lab.token}")
    page.wait_for_function(
        f"path => {{ const s = ({NOTEBOOK_STATE})(path); return s && s.kernel === 'idle'; }}",
        arg=path,
        timeout=WAIT_S * 1000,
        polling=500,
    )
    # A dialog (kernel choice, build, news) would sit in front of the menus: say which one it is.
    dialogs = page.locator(".jp-Dialog").all_inner_texts()
    assert not dialogs, f"JupyterLab opened {path} with a dialog in front: {dialogs}"


def click_menu(page, menu: str, item: str) -> None:
    """Click ``menu`` in JupyterLab's menu bar, then its item labelled ``item``."""
    page.locator(".lm-MenuBar-item", has=page.get_by_text(menu, exact=True)).click()
    page.locator(".lm-Menu-item", has=page.get_by_text(item, exact=True)).click()


def run_all_cells(page, path: str) -> list[dict]:
    """Clear the outputs, then Run > Run All Cells; returns the cells (nbformat) once it is done.

    Done means: the kernel is idle, no cell is queued or running, and every code cell has an
    execution count, or one of them shows an error (then "Run All" stops there).
    """
    click_menu(page, "Edit", "Clear Outputs of All Cells")
    # Cleared cells have no execution count, so the counts below can only come from this run.
    page.wait_for_function(
        f"""path => ({NOTEBOOK_STATE})(path).cells.every(cell => cell.execution_count === null
                                                           || cell.cell_type !== "code")""",
        arg=path,
    )
    click_menu(page, "Run", "Run All Cells")
    deadline, state, idle_polls = time.monotonic() + WAIT_S, None, 0
    while time.monotonic() < deadline:
        state = page.evaluate(NOTEBOOK_STATE, path)
        if state is None:  # the kernel is restarting: it died under the lesson
            time.sleep(0.5)
            continue
        code = [cell for cell in state["cells"] if cell["cell_type"] == "code"]
        finished = all(cell["execution_count"] for cell in code) or error_outputs(code)
        quiet = state["kernel"] == "idle" and state["running"] == 0
        # The kernel goes idle between two cells; two quiet polls in a row mean the run is over.
        idle_polls = idle_polls + 1 if quiet and finished else 0
        if idle_polls == 2:
            return state["cells"]
        time.sleep(0.5)
    summary = state and {key: state[key] for key in ("kernel", "running")}
    pytest.fail(f"{path}: Run All Cells did not finish within {WAIT_S} s; last state {summary}")


def error_outputs(cells: list[dict]) -> list[str]:
    """One line per output of type "error" (a raised exception): cell number, name and message.

    JupyterLab draws errors and stderr streams alike (mime type application/vnd.jupyter.stderr),
    so the page cannot tell them apart; the output's type in the notebook model can. A Ray log
    line on stderr is a "stream" output and passes; an exception is an "error" output and fails.
    """
    return [
        f"cell [{cell['execution_count']}]: {output['ename']}: {output['evalue']}"
        for cell in cells
        for output in cell.get("outputs", [])
        if output["output_type"] == "error"
    ]


def assert_ran_clean(cells: list[dict], path: str) -> None:
    code = [cell for cell in cells if cell["cell_type"] == "code"]
    errors = error_outputs(code)
    assert not errors, f"{path} shows errors in JupyterLab:\n" + "\n".join(errors)
    unrun = [index for index, cell in enumerate(code) if not cell["execution_count"]]
    assert not unrun, f"{path}: code cells {unrun} (counted from 0) have no execution count"


def screenshot(target, path: Path) -> None:
    target.screenshot(path=path)
    print(f"screenshot: {path}")


@pytest.mark.timeout(600)  # server and browser start, Ray's start, all on the loaded machine
def test_lesson_00_runs_all_cells_in_jupyterlab_without_an_error(page, lab, artifacts):
    path = "notebooks/00_welcome.ipynb"
    before = digest(ROOT / path)
    open_notebook(page, lab, path)
    cells = run_all_cells(page, path)
    # The first code cells: Ray's start and check_setup()'s report.
    page.locator(".jp-NotebookPanel:visible .jp-CodeCell").first.evaluate(
        "cell => cell.scrollIntoView({block: 'start'})"
    )
    screenshot(page, artifacts / "00_welcome_run_all.png")

    assert_ran_clean(cells, path)
    left = wait_for_no_ray(lab, timeout_s=30)
    assert not left, f"{path} ends with ray.shutdown(), yet Ray processes {sorted(left)} live on"
    assert digest(ROOT / path) == before, f"JupyterLab saved {path}; autosave should be off"


@pytest.mark.timeout(600)
def test_lesson_09_slider_panel_reads_in_full_and_redraws_the_plot(page, lab, artifacts):
    from playwright.sync_api import expect

    path = "notebooks/09_exploration.ipynb"
    before = digest(ROOT / path)
    open_notebook(page, lab, path)
    cells = run_all_cells(page, path)
    assert_ran_clean(cells, path)

    panel = page.locator(".jp-NotebookPanel:visible .widget-interact")
    expect(panel).to_have_count(1, timeout=30_000)
    panel.scroll_into_view_if_needed()
    sliders = panel.locator(".widget-slider")
    expect(sliders).to_have_count(3)
    labels = sliders.locator(".widget-label")
    # The views fill their labels and readouts a moment after they appear: wait for the text.
    expect(labels).to_have_text(["epsilon", "temperature", "noise scale"], timeout=30_000)
    for label in labels.all():
        width = label.evaluate("el => ({scroll: el.scrollWidth, client: el.clientWidth})")
        assert 0 < width["scroll"] <= width["client"], f"{label.inner_text()!r} is cut: {width}"
    readouts = sliders.locator(".widget-readout")
    expect(readouts).to_have_text(["0.30", "0.50", "0.50"], timeout=30_000)
    plot = panel.locator(".widget-output img")
    expect(plot).to_have_count(1, timeout=30_000)
    plot_before = plot.get_attribute("src")
    screenshot(panel, artifacts / "09_exploration_panel_before.png")

    temperature, temperature_readout = sliders.nth(1), readouts.nth(1)
    handle = temperature.locator(".noUi-handle")
    handle.focus()
    for _ in range(TEMPERATURE_STEPS):
        handle.press("ArrowRight")
    expect(temperature_readout).not_to_have_text("0.50")
    expect(plot).not_to_have_attribute("src", plot_before, timeout=WAIT_S * 1000)
    # Each key press asks the kernel for a new plot; the last one is drawn once the kernel is idle.
    readout = wait_until_settled(page, path, temperature_readout, plot)
    screenshot(panel, artifacts / "09_exploration_panel_after.png")

    # The slider moves log10(T) by its step, 0.05, per key press: T = 0.5 * 10 ** (3 * 0.05) = 0.71.
    # The readout shows T as the legend prints it, f"T={temperature:.2f}".
    temperature_now = 0.5 * 10 ** (TEMPERATURE_STEPS * 0.05)
    assert f"T={readout}" == f"T={temperature_now:.2f}", "readout and legend disagree"
    legend = re.search(r'f"SoftQ \(T=\{temperature(:[^}]*)\}\)"', "".join(cell_sources(cells)))
    assert legend and legend[1] == ":.2f", "the legend should print T with two decimals"
    assert digest(ROOT / path) == before, f"JupyterLab saved {path}; autosave should be off"


def wait_until_settled(page, path: str, readout, plot) -> str:
    """The readout once the kernel is idle and neither it nor the plot has changed for 1.5 s."""
    deadline, seen, same = time.monotonic() + WAIT_S, None, 0
    while time.monotonic() < deadline:
        now = (readout.inner_text(), plot.get_attribute("src"))
        kernel_idle = page.evaluate(NOTEBOOK_STATE, path)["kernel"] == "idle"
        same = same + 1 if now == seen and kernel_idle else 0
        if same == 3:
            return now[0]
        seen = now
        time.sleep(0.5)
    pytest.fail(f"{path}: the slider panel kept changing for {WAIT_S} s after the key presses")


def cell_sources(cells: list[dict]) -> list[str]:
    return [
        "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        for cell in cells
    ]
