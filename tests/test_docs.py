"""The documentation's code runs as written: README's library snippet."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_library_snippet_runs_as_written():
    text = README.read_text()
    snippet = re.search(r"As a library:\n\n```python\n(.*?)```", text, re.S).group(1)
    scope: dict = {}
    exec(compile(snippet, str(README), "exec"), scope)
    assert scope["logits"].shape == (1, 8, 259)
    assert scope["logits_t"].shape == (1, 259)
