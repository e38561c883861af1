"""course_lib/kernel_check.py: every lesson's first cell stops "Run All" with one sentence when the
kernel is not the course's Python (no course_lib, another course_lib, other Ray/torch versions)."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from course_lib import kernel_check

ROOT = Path(__file__).resolve().parent.parent
RUN_LINE = 'runpy.run_path("../course_lib/kernel_check.py", run_name="__main__")'


def test_the_course_environment_passes():
    assert kernel_check.problems() == []
    kernel_check.check_kernel()


def test_read_pins_normalizes_names_and_skips_comments(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("# comment\nRay==2.60.0\nzope.interface==7.0 ; python_version>'3'\n-e .\n")
    assert kernel_check.read_pins(lock) == {"ray": "2.60.0", "zope-interface": "7.0"}


def test_a_python_without_course_lib_is_told_how_to_fix_it():
    with pytest.raises(kernel_check.WrongKernel) as error:
        kernel_check.check_kernel(find_spec=lambda name: None)
    message = str(error.value)
    assert "has no course_lib" in message and sys.executable in message
    assert "make lab" in message and "'Python (course_lib)' kernel" in message


def test_other_versions_are_named_with_the_pins(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("ray==2.60.0\ntorch==2.13.0\nnumpy==2.0.0\n")
    versions = {"ray": "2.40.0", "torch": "2.13.0+cpu", "numpy": "2.0.0"}

    def installed(name):
        if name not in versions:
            raise metadata.PackageNotFoundError(name)
        return versions[name]

    found = kernel_check.problems(lock_file=lock, installed_version=installed)
    # torch's local "+cpu" tag is the same release; gymnasium has no pin in this lock.
    assert found == ["ray 2.40.0 is installed, the course pins 2.60.0"]
    del versions["numpy"]
    found = kernel_check.problems(lock_file=lock, installed_version=installed)
    assert "numpy is not installed (the course pins 2.0.0)" in found


def test_without_the_lock_file_only_course_lib_is_checked(tmp_path):
    def no_versions(name):
        raise AssertionError("versions are not checked without a lock file")

    missing = tmp_path / "nowhere.lock"
    assert kernel_check.problems(lock_file=missing, installed_version=no_versions) == []


def test_a_plain_python_running_the_file_stops_with_one_sentence():
    # -I -S: no PYTHONPATH, no user or site packages, so no course_lib: a kernel from another
    # Python install.
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(ROOT / "course_lib" / "kernel_check.py")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "WrongKernel: This is not the course's Python" in done.stderr
    assert "has no course_lib" in done.stderr and "make lab" in done.stderr


def test_ipython_shows_only_the_sentence(tmp_path):
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    lock = tmp_path / "requirements.lock"
    lock.write_text("ray==0.0.1\n")
    shell = InteractiveShell.instance()
    try:
        with capture_output() as captured:
            shell.run_cell(
                "from course_lib.kernel_check import check_kernel\n"
                f"check_kernel(lock_file={str(lock)!r})"
            )
    finally:
        InteractiveShell.clear_instance()
    shown = captured.stdout + captured.stderr
    assert f"WrongKernel: This is not the course's Python: ray {metadata.version('ray')}" in shown
    assert "Traceback" not in shown and "File " not in shown


@pytest.mark.parametrize(
    "path",
    sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "solutions").glob("*.ipynb")),
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_every_lesson_and_solution_checks_its_kernel_first(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    first = "".join(next(c for c in cells if c["cell_type"] == "code")["source"])
    assert RUN_LINE in first, (
        f"{path.name}'s first code cell should start with\nimport runpy\n\n{RUN_LINE}"
    )
    assert first.startswith("import runpy"), "the check runs before any import that could fail"
