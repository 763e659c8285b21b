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


def test_the_own_data_example_writes_a_file_the_command_trains_on(tmp_path, monkeypatch):
    import json
    import shlex

    from minimtl.cli import main

    section = _section("Your own multi-task data")
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    command = re.search(r"Then `(minimtl train [^`]*)`", section).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(README), "exec"), {"__name__": "readme"})
    args = shlex.split(command)[1:]
    args[args.index("--epochs") + 1] = "1"
    assert main(args + ["--out", "run", "--quiet"]) == 0
    metrics = json.loads((tmp_path / "run" / "test_metrics.json").read_text())
    assert [t["name"] for t in metrics["tasks"]] == ["click", "genre", "spend"]
    assert [t["outputs"] for t in metrics["tasks"]] == [1, 4, 1]
    assert {"click_auc", "genre_accuracy", "spend_rmse"} <= set(metrics["test"])
    assert metrics["gates"]


def test_the_architecture_section_gives_the_cores_size_as_code_size_counts_it():
    from benchmarks.code_size import CORE, ROOT, count

    said = re.search(r"is (\d+) lines of code, (\d+) with its docstrings",
                     _section("Architecture"))
    lines = sum(count(ROOT / p)[0] for p in CORE)
    code = sum(count(ROOT / p)[1] for p in CORE)
    assert (int(said.group(1)), int(said.group(2))) == (code, lines)
