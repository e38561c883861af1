"""show(): the library's own source, ready for a notebook."""

from __future__ import annotations

import pytest

from course_lib import parallel, show
from course_lib.checks import CheckFailed


def test_show_a_function_names_its_file_and_lines():
    view = show(parallel.chunked)
    assert view.qualname == "course_lib.parallel.chunked"
    assert view.path == "course_lib/parallel.py"
    assert view.code.startswith("def chunked(")
    source_lines = open(parallel.__file__).read().splitlines()
    assert source_lines[view.first_line - 1].startswith("def chunked(")
    assert source_lines[view.last_line - 1].strip() == view.code.rstrip().splitlines()[-1].strip()


def test_show_renders_markdown_for_jupyter_and_text_for_a_terminal():
    view = show(parallel.Timing)
    assert "```python\n@dataclass\nclass Timing" in view._repr_markdown_()
    assert repr(view).startswith("# course_lib.parallel.Timing  (course_lib/parallel.py, lines ")


def test_show_a_method_and_a_nested_package_path():
    assert show(CheckFailed.__init__).path == "course_lib/checks/_common.py"
    assert show(parallel.Timing(seconds=[1.0]).__str__).code.lstrip().startswith("def __str__")


def test_show_sees_through_ray_remote():
    import ray

    assert show(ray.remote(parallel.busy_work)).code.startswith("def busy_work(")


@pytest.mark.parametrize("obj, message", [(3, "not an instance"), (len, "no Python source")])
def test_show_explains_what_it_cannot_show(obj, message):
    with pytest.raises(TypeError, match=message):
        show(obj)


def test_show_writes_file_paths_into_markdown_as_they_are():
    """A path with underscores (course_lib/__init__.py) renders as written, not as bold "init"."""
    import mistune

    import course_lib

    view = show(course_lib)
    assert view.path == "course_lib/__init__.py"
    rendered = mistune.html(view._repr_markdown_())
    assert "course_lib/__init__.py, lines 1-" in rendered
    assert "<strong>init</strong>" not in rendered
