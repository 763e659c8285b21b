"""The mutation run: plant each catalogued bug, run the tests named for it, restore the file.

    python -m tests.mutation.run                      # every mutant; writes the results
    python -m tests.mutation.run --group cuda_host    # one group (or --file SUBSTRING)
    python -m tests.mutation.run --list               # the catalogue, without running it
    python -m tests.mutation.run --merge A/results.json B/results.json  # parts into one

For each mutant the file is rewritten with the one edit, the mutant's tests run in a fresh
``pytest -x`` process (CI's Hypothesis profile: derandomized, so a rerun gives the same
verdict), and the original bytes and modification time are put back. A mutant is
*killed* when the tests fail (or time out), *survived* when they pass, *equivalent* when it
survives and the catalogue argues why no test could tell it from the original.

Nothing is left mutated: the original is journalled in ``build/mutation/journal.json``
before each write and restored in a ``finally`` (Ctrl-C and SIGTERM included); a run
that finds a journal (a killed driver) restores it before anything else.

Before the mutants, every distinct test selection runs once on the unmodified tree: a
selection that fails there would "kill" every mutant, so the run stops.

Isolation: the tests run with ``PYTHONPATH`` at the tree (``--root``), without writing
bytecode, Numba's cache in ``build/mutation/numba`` (a throwaway copy of it for mutants
under ``kernels/``, so a mutant kernel's compiled code never reaches a later run, without
the cache of the mutated family and of the families importing it, which Numba would not
know to recompile) and the
host builds of the CUDA sources in ``build/mutation/cuda_host`` (named by source hash).

Results: ``tests/mutation/results.md`` (per group: killed / survived / equivalent, the kill
rate of the non-equivalent mutants, every survivor and every argued equivalent) and
``results.json`` (one record per mutant), unless ``--out`` says elsewhere.
"""

from __future__ import annotations

import argparse
import base64
import importlib
import json
import os
import pkgutil
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from tests.mutation.mutant import GROUPS, CatalogueError, Mutant

HERE = Path(__file__).resolve().parent


def catalogue() -> list[Mutant]:
    """Every ``MUTANTS`` list of the ``catalogue_*`` modules next to this file."""
    out: list[Mutant] = []
    for info in sorted(pkgutil.iter_modules([str(HERE)]), key=lambda i: i.name):
        if info.name.startswith("catalogue_"):
            out.extend(importlib.import_module(f"tests.mutation.{info.name}").MUTANTS)
    return out


# --- restoring -------------------------------------------------------------------------
class Journal:
    """The original of the file being mutated, on disk while the mutant is in place."""

    def __init__(self, root: Path) -> None:
        self.path = root / "build" / "mutation" / "journal.json"

    def record(self, file: Path, data: bytes, stat: os.stat_result) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        entry = {"file": str(file), "data": base64.b64encode(data).decode(),
                 "atime_ns": stat.st_atime_ns, "mtime_ns": stat.st_mtime_ns}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(entry))
        os.replace(tmp, self.path)

    def restore(self) -> str | None:
        """Put the journalled original back; the file's path, or None if none was open."""
        if not self.path.exists():
            return None
        entry = json.loads(self.path.read_text())
        file = Path(entry["file"])
        file.write_bytes(base64.b64decode(entry["data"]))
        os.utime(file, ns=(entry["atime_ns"], entry["mtime_ns"]))  # Numba's cache stamp
        self.path.unlink()
        return str(file)


class _Stop(Exception):
    pass


def _on_signal(signum, frame):
    raise _Stop(signal.Signals(signum).name)


# --- running ---------------------------------------------------------------------------
class Runner:
    def __init__(self, root: Path, timeout: float, allow_missing: bool = False) -> None:
        self.root, self.timeout, self.allow_missing = root, timeout, allow_missing
        self.build = root / "build" / "mutation"
        self.numba = self.build / "numba"
        self.cuda = self.build / "cuda_host"
        for d in (self.numba, self.cuda):
            d.mkdir(parents=True, exist_ok=True)

    def env(self, numba_dir: Path) -> dict[str, str]:
        env = dict(os.environ)
        env.update(CI="true", HYPOTHESIS_PROFILE="ci", PYTHONPATH=str(self.root),
                   PYTHONDONTWRITEBYTECODE="1", NUMBA_CACHE_DIR=str(numba_dir),
                   MINIMTL_CUDA_HOST_CACHE=str(self.cuda))
        return env

    def present(self, tests: tuple[str, ...]) -> tuple[tuple[str, ...], bool]:
        """``tests`` without the paths this tree lacks (``--allow-missing``), and whether
        any path is left."""
        out, paths, value = [], 0, False
        for a in tests:
            if value or a.startswith("-"):        # an option, or the value of -k / -m
                out.append(a)
                value = a in ("-k", "-m")
            elif not self.allow_missing or (self.root / a.split("::")[0]).exists():
                out.append(a)
                paths += 1
        return tuple(out), paths > 0

    def pytest(self, tests: tuple[str, ...], numba_dir: Path) -> tuple[str, float, str]:
        """('pass' | 'fail' | 'timeout' | 'error', seconds, first failing test or tail);
        'error' is pytest itself failing (usage, no test collected), never a verdict. With
        ``--allow-missing`` a selection with no test left passes: nothing can catch it."""
        tests, any_path = self.present(tests)
        if not any_path:
            return "pass", 0.0, "no test"
        cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
               "--timeout", str(int(self.timeout)), *tests]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=self.root, env=self.env(numba_dir),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=self.timeout * 2)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return "timeout", time.perf_counter() - t0, ""
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
        seconds = time.perf_counter() - t0
        failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", out, re.M)
        what = failed[0] if failed else out.strip().splitlines()[-1] if out.strip() else ""
        if proc.returncode == 0:
            return "pass", seconds, what
        if proc.returncode in (1, 2):    # failures; 2: a collection (import) error
            return "fail", seconds, what
        if proc.returncode == 5 and self.allow_missing:
            return "pass", seconds, "no test collected"
        if "Timeout" in out:
            return "timeout", seconds, what
        return "error", seconds, (what + "\n" + out[-2000:]).strip()

    def mutant(self, m: Mutant, journal: Journal) -> dict:
        path = self.root / m.file
        original = path.read_bytes()
        stat = path.stat()
        text, line = m.apply(original.decode())
        kernel_file = m.file.startswith("kernels/")
        numba_dir = Path(tempfile.mkdtemp(prefix="numba-", dir=self.build)) if kernel_file \
            else self.numba
        before = set(self.cuda.iterdir())
        try:
            if kernel_file:
                stale = _stale_caches(self.root, m.file)
                shutil.copytree(self.numba, numba_dir, dirs_exist_ok=True,
                                ignore=lambda d, names: [n for n in names if stale.match(n)])
            journal.record(path, original, stat)
            path.write_text(text)
            outcome, seconds, what = self.pytest(m.tests, numba_dir)
        finally:
            journal.restore()
            if kernel_file:
                shutil.rmtree(numba_dir, ignore_errors=True)
            for f in set(self.cuda.iterdir()) - before:   # the mutant source's host build
                f.unlink(missing_ok=True)
        status = {"fail": "killed", "timeout": "killed", "pass": "survived",
                  "error": "error"}[outcome]
        if status == "survived" and m.equivalent:
            status = "equivalent"
        return {"file": m.file, "line": line, "group": m.group, "mutant": m.label,
                "tests": list(m.tests), "status": status, "outcome": outcome,
                "seconds": round(seconds, 1), "caught_by": what if status == "killed" else "",
                "equivalent": m.equivalent or "", "detail": what if status == "error" else ""}


_IMPORT = re.compile(r"^from kernels\.(\w+)", re.M)


def _stale_caches(root: Path, file: str) -> re.Pattern:
    """The Numba cache folders (``<folder>_<40 hex>``) a mutant of ``file`` may make stale.

    Numba checks a cached function against its own source file only: an njit function of
    ``kernels/cross_entropy`` that calls one of ``kernels/log_softmax`` keeps the compiled
    original after a mutant of the latter. So the mutated family and every family whose
    modules import it, directly or through others, start without a cache. A module of its
    own under ``kernels/`` (``kernels/_rows_numba.py``) caches in the folder ``kernels``
    and is imported by its name."""
    parts = Path(file).parts
    # kernels/<family>/...: the family; kernels/_rows_numba.py: "kernels" and "_rows_numba"
    start = {parts[1]} if len(parts) > 2 else {"kernels", Path(file).stem}
    imports: dict[str, set[str]] = {}
    for py in (root / "kernels").rglob("*.py"):
        fam = py.parent.name if py.parent != root / "kernels" else "kernels"
        imports.setdefault(fam, set()).update(_IMPORT.findall(py.read_text()))
    stale, grew = set(start), True
    while grew:
        more = {f for f, deps in imports.items() if deps & stale} - stale
        stale |= more
        grew = bool(more)
    names = "|".join(sorted(map(re.escape, stale)))
    return re.compile(f"({names})_[0-9a-f]{{40}}$")


# --- report ----------------------------------------------------------------------------
def summary(records: list[dict]) -> list[dict]:
    rows = []
    for group in GROUPS + ("all",):
        rs = [r for r in records if group in ("all", r["group"])]
        if not rs:
            continue
        c = Counter(r["status"] for r in rs)
        live = len(rs) - c["equivalent"]
        rows.append({"group": group, "mutants": len(rs), "killed": c["killed"],
                     "survived": c["survived"], "equivalent": c["equivalent"],
                     "errors": c["error"],
                     "kill_rate": round(100.0 * c["killed"] / live, 1) if live else None})
    return rows


def markdown(records: list[dict], command: str, seconds: float, quoted: bool = False) -> str:
    command = command if quoted else f"`{command}`"
    lines = ["# Mutation run", "",
             f"{command}: {len(records)} mutants in {seconds / 60:.1f} min. Kill rate = "
             "killed / (mutants − equivalent).", "",
             "| group | mutants | killed | survived | equivalent | errors | kill rate |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in summary(records):
        rate = "—" if r["kill_rate"] is None else f"{r['kill_rate']:.1f} %"
        name = f"**{r['group']}**" if r["group"] == "all" else r["group"]
        lines.append(f"| {name} | {r['mutants']} | {r['killed']} | {r['survived']} | "
                     f"{r['equivalent']} | {r['errors']} | {rate} |")
    for title, status, key in (("Survivors", "survived", None),
                               ("Equivalent mutants", "equivalent", "equivalent"),
                               ("Errors", "error", "detail")):
        rs = [r for r in records if r["status"] == status]
        if rs:
            lines += ["", f"## {title}", ""]
            for r in rs:
                why = f": {r[key].splitlines()[0]}" if key and r[key] else ""
                lines.append(f"- `{r['file']}:{r['line']}` {r['mutant']}{why}")
    lines += ["", "## Every mutant", "", "| file:line | mutant | status | caught by |",
              "| --- | --- | --- | --- |"]
    for r in records:
        mutant = r["mutant"].replace("|", "\\|")
        lines.append(f"| `{r['file']}:{r['line']}` | `{mutant}` | {r['status']} | "
                     f"{r['caught_by'].replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def merge(parts: list[Path], out: Path) -> int:
    """One report from the results of several partial runs, in catalogue order; each
    part's command is kept in ``commands``."""
    order = {(m.file, m.label): i for i, m in enumerate(catalogue())}
    records: dict[tuple[str, str], dict] = {}
    commands, seconds = [], 0.0
    for part in parts:
        data = json.loads(part.read_text())
        commands.append(data.get("command", str(part)))
        seconds += float(data.get("seconds", 0.0))
        for r in data["mutants"]:
            records[(r["file"], r["mutant"])] = r
    stale = [k for k in records if k not in order]
    for k in stale:                        # a moved or rewritten mutant: rerun it, not kept
        del records[k]
    if stale:
        print(f"dropped {len(stale)} record(s) no longer in the catalogue, e.g. {stale[0]}",
              file=sys.stderr)
    missing = len(order) - len(records)
    rs = sorted(records.values(), key=lambda r: order[(r["file"], r["mutant"])])
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(
        {"summary": summary(rs), "commands": commands, "seconds": seconds, "mutants": rs},
        indent=1) + "\n")
    (out / "results.md").write_text(markdown(rs, " + ".join(f"`{c}`" for c in commands),
                                             seconds, quoted=True))
    print(f"wrote {out / 'results.md'} and results.json ({len(rs)} mutants"
          + (f"; {missing} of the catalogue not in any part)" if missing else ")"))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.mutation.run",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--group", choices=GROUPS, action="append", help="only this group")
    ap.add_argument("--file", action="append", help="only mutants of files containing this")
    ap.add_argument("--list", action="store_true", help="print the catalogue and stop")
    ap.add_argument("--timeout", type=float, default=240, help="seconds per test (default 240)")
    ap.add_argument("--root", type=Path, default=HERE.parent.parent, help="the tree to mutate")
    ap.add_argument("--allow-missing", action="store_true",
                    help="for an older tree (a before/after comparison): drop named test files "
                         "it lacks; a mutant with no test left survives")
    ap.add_argument("--out", type=Path, default=None,
                    help="folder of results.md/json (default tests/mutation; with --group or "
                         "--file nothing is written unless --out is given)")
    ap.add_argument("--merge", type=Path, nargs="+", metavar="RESULTS_JSON",
                    help="combine the results.json of runs of parts (a later file's record of "
                         "a mutant replaces an earlier one) into --out (default tests/mutation) "
                         "instead of running anything")
    args = ap.parse_args(argv)
    if args.merge:
        return merge(args.merge, args.out or HERE)
    root = args.root.resolve()
    journal = Journal(root)
    if not args.list:          # --list beside a live run must not undo its current mutant
        left = journal.restore()
        if left:
            print(f"restored {left} from the journal of an interrupted run")
    mutants = [m for m in catalogue()
               if (not args.group or m.group in args.group)
               and (not args.file or any(s in m.file for s in args.file))]
    for m in mutants:                      # every entry fits the code before anything runs
        try:
            m.apply((root / m.file).read_text())
        except (CatalogueError, OSError) as e:
            print(f"catalogue error: {e}", file=sys.stderr)
            return 2
    if args.list:
        for m in mutants:
            print(f"{m.group:10} {m.file}  {m.label}")
        print(f"{len(mutants)} mutants")
        return 0
    out = args.out if args.out else (None if args.group or args.file else HERE)
    runner = Runner(root, args.timeout, args.allow_missing)
    signal.signal(signal.SIGTERM, _on_signal)
    t0 = time.perf_counter()
    records: list[dict] = []
    try:
        for tests in dict.fromkeys(m.tests for m in mutants):
            outcome, seconds, what = runner.pytest(tests, runner.numba)
            print(f"baseline {outcome:7} {seconds:6.1f}s  {' '.join(tests)}", flush=True)
            if outcome != "pass":
                print(f"the unmodified tree fails this selection ({what}); stopping",
                      file=sys.stderr)
                return 1
        for i, m in enumerate(mutants, 1):
            r = runner.mutant(m, journal)
            records.append(r)
            print(f"[{i}/{len(mutants)}] {r['status']:10} {r['seconds']:6.1f}s  "
                  f"{m.file}:{r['line']}  {m.label}", flush=True)
    except (KeyboardInterrupt, _Stop) as e:
        left = journal.restore()
        print(f"interrupted ({e or 'SIGINT'}); {left or 'no file'} restored", file=sys.stderr)
        return 130
    finally:
        journal.restore()
    seconds = time.perf_counter() - t0
    for r in summary(records):
        print(r)
    if out is not None:
        given = list(argv if argv is not None else sys.argv[1:])
        if "--out" in given:               # where it was written says nothing about the run
            i = given.index("--out")
            del given[i:i + 2]
        command = "python -m tests.mutation.run" + "".join(f" {a}" for a in given)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(
            {"summary": summary(records), "command": command, "seconds": round(seconds, 1),
             "mutants": records}, indent=1) + "\n")
        (out / "results.md").write_text(markdown(records, command, seconds))
        print(f"wrote {out / 'results.md'} and results.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
