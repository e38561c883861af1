"""`make site` builds the course site with warnings as errors: a broken link, a missing page or a
docstring that does not render fails here, in `make test`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPHINX = Path(sys.executable).with_name("sphinx-build")


@pytest.mark.slow
def test_the_site_builds_without_warnings(tmp_path):
    if not SPHINX.exists():
        pytest.fail(f"sphinx-build is not installed next to {sys.executable}; run `make setup`")
    out = tmp_path / "site"
    done = subprocess.run(
        [str(SPHINX), "-W", "--keep-going", "-q", "-E", "-b", "html", "-c", "docs", ".", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"the site has warnings or errors:\n{done.stderr[-6000:]}"
    lessons = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    for stem in lessons:
        page = out / "notebooks" / f"{stem}.html"
        assert page.is_file(), f"no page for lesson {stem}"
    index = (out / "docs" / "index.html").read_text(encoding="utf-8")
    # The lessons in course order in the navigation.
    positions = [index.find(f"notebooks/{stem}.html") for stem in lessons]
    assert -1 not in positions and positions == sorted(positions)
    for page in ("docs/api.html", "docs/snippets.html", "docs/instructor.html", "search.html"):
        assert (out / page).is_file(), page
    api = (out / "docs" / "api.html").read_text(encoding="utf-8")
    assert 'id="course_lib.sample_batch.SampleBatch"' in api
    assert "copybutton" in (out / "docs" / "snippets.html").read_text(encoding="utf-8")
    assert "SampleBatch" in (out / "searchindex.js").read_text(encoding="utf-8")
