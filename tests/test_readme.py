"""The README's library example runs and prints what the README says it prints."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def _section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start:end]


def test_the_five_minute_example_runs_and_prints_what_the_readme_says():
    section = _section("The library in five minutes")
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    promised = re.search(r"It prints `(.*?)`", section).group(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), {"__name__": "readme"})
    assert out.getvalue().splitlines()[0] == promised
