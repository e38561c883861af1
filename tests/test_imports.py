"""Every course_lib module imports on its own, and no two modules import each other.

A module that only works when something else was imported first, or two modules that import
each other at their top level, show up here. "On its own" means in a process where no course_lib
module was imported yet: one interpreter loads the third-party libraries (torch, Ray, ...) once,
then forks a child per module, which imports just that module. That is as fresh as a new
interpreter for course_lib, at a fraction of the cost.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "course_lib"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {
    module_name(path): path
    for path in sorted(PACKAGE.rglob("*.py"))
    if path.name != "__main__.py"  # runs a command when imported
}


def imports_of(module: str) -> set[str]:
    """Every module that ``module`` imports at its top level (course_lib's and others).

    ``from package import name`` counts as importing ``package`` itself, whether ``name`` is a
    submodule or not: either way the package's ``__init__`` must have run first.
    """
    imported = set()
    for node in ast.parse(MODULES[module].read_text()).body:
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module)
    return imported - {module}


IMPORT_EACH_IN_A_FORK = textwrap.dedent(
    """
    import importlib, json, os, sys, traceback

    third_party, modules = json.loads(sys.argv[1])
    for name in third_party:  # loaded once, before the forks, so that each child is cheap
        try:
            importlib.import_module(name)
        except Exception:
            pass  # an optional dependency; the child that needs it will report it
    assert not [name for name in sys.modules if name.startswith("course_lib")]
    errors = {}
    for module in modules:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            try:
                importlib.import_module(module)
                message = b""
            except BaseException:
                message = traceback.format_exc().encode()
            os.write(write_end, message)
            os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            message = pipe.read().decode()
        _, status = os.waitpid(pid, 0)
        if message or status:
            errors[module] = message or f"the child exited with status {status}"
    print(json.dumps(errors))
    """
)


@pytest.fixture(scope="module")
def import_errors() -> dict[str, str]:
    """``{module: traceback}`` for every course_lib module that fails to import on its own."""
    if not hasattr(os, "fork"):
        pytest.skip("needs os.fork (Linux or macOS)")
    third_party = sorted(
        {
            name
            for module in MODULES
            for name in imports_of(module)
            if name.split(".")[0] not in ("course_lib", "__future__")
        }
    )
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_EACH_IN_A_FORK, json.dumps([third_party, sorted(MODULES)])],
        cwd=PACKAGE.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_imports_on_its_own(module, import_errors):
    assert module not in import_errors, import_errors.get(module)


def test_no_import_cycles_between_course_lib_modules():
    graph = {module: imports_of(module) & set(MODULES) for module in MODULES}
    cycles, finished = [], set()

    def visit(module, path):
        for imported in sorted(graph[module]):
            if imported in path:
                cycles.append(" -> ".join([*path[path.index(imported) :], imported]))
            elif imported not in finished:
                visit(imported, [*path, imported])
        finished.add(module)

    for module in sorted(graph):
        if module not in finished:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_policies_do_not_import_the_example_envs():
    for module in MODULES:
        if module.startswith("course_lib.policy"):
            envs = {name for name in imports_of(module) if name.startswith("course_lib.envs")}
            assert not envs, f"{module} imports {envs}"
