"""Every code block of the site's snippets page (docs/snippets.md) runs as pasted.

Each block runs in a fresh Python process from a temporary folder, as a learner pasting it into a
script would run it; a block that fails shows its own traceback. Every block trains or starts Tune
(about 10 s each here), so they are slow tests: `make test` runs them, `make test-fast` does not.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "snippets.md"
BLOCK = re.compile(
    r"^\(snippet-([a-z-]+)\)=\n## .*?\n```python\n(.*?)^```", re.DOTALL | re.MULTILINE
)
SNIPPETS = dict(BLOCK.findall(PAGE.read_text(encoding="utf-8")))


def test_the_page_has_the_recipes_the_course_promises():
    assert set(SNIPPETS) >= {
        "custom-env", "custom-model", "custom-loss", "callbacks", "exploration", "tune",
        "multi-agent", "custom-trainer",
    }  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SNIPPETS))
def test_snippet_runs_as_pasted(name, tmp_path):
    script = tmp_path / f"{name}.py"
    script.write_text(SNIPPETS[name], encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=280,
        env={**os.environ, "OMP_NUM_THREADS": "1", "RAY_ADDRESS": ""},
    )
    output = f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    assert done.returncode == 0, f"snippet {name!r} failed:\n{output}"
