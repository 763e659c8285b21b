"""Check a Chrome trace (Trace Event Format JSON, as ``Profile.chrome_trace`` writes it)
before opening it in Perfetto or chrome://tracing: exit 0 if it is well formed, 1 with one
line per problem otherwise.

    python benchmarks/check_trace.py trace.json

Checked: the top level is an object with a ``traceEvents`` list (or a bare list); every
event is an object with ``name`` (str), ``ph`` (one of the phases below), ``pid`` and
``tid`` (int); complete events ("X") have numeric ``ts`` and ``dur`` >= 0, ``cat`` (str) and
``args`` (object) where present; and on each (pid, tid) the complete events nest: two
slices either are disjoint or one lies inside the other (1 ns of rounding allowed).
"""

from __future__ import annotations

import json
import sys

#: phases of the Trace Event Format this checker accepts
PHASES = {"X", "B", "E", "i", "I", "M", "C", "b", "e", "n", "s", "t", "f", "P", "O", "N", "D"}
_SLACK = 1e-3          # µs: the writer's ns -> µs floats


def problems(doc) -> list[str]:
    """Every problem found in a loaded trace document (empty: well formed)."""
    events = doc.get("traceEvents") if isinstance(doc, dict) else doc
    if not isinstance(events, list):
        return ["no traceEvents list at the top level"]
    out: list[str] = []
    slices: dict[tuple, list[tuple[float, float, str]]] = {}
    for i, ev in enumerate(events):
        where = f"event {i}"
        if not isinstance(ev, dict):
            out.append(f"{where}: not an object")
            continue
        where = f"event {i} ({ev.get('name')!r})"
        if not isinstance(ev.get("name"), str):
            out.append(f"{where}: name missing or not a string")
        ph = ev.get("ph")
        if ph not in PHASES:
            out.append(f"{where}: ph {ph!r} is not a Trace Event Format phase")
        for key in ("pid", "tid"):
            if not isinstance(ev.get(key), int) or isinstance(ev.get(key), bool):
                out.append(f"{where}: {key} missing or not an integer")
        if "cat" in ev and not isinstance(ev["cat"], str):
            out.append(f"{where}: cat is not a string")
        if "args" in ev and not isinstance(ev["args"], dict):
            out.append(f"{where}: args is not an object")
        if ph != "X":
            continue
        ts, dur = ev.get("ts"), ev.get("dur")
        if not _number(ts):
            out.append(f"{where}: ts missing or not a number")
            continue
        if not _number(dur) or dur < 0:
            out.append(f"{where}: dur missing, not a number or negative ({dur!r})")
            continue
        slices.setdefault((ev.get("pid"), ev.get("tid")), []).append(
            (float(ts), float(ts) + float(dur), ev["name"]))
    for (pid, tid), spans in slices.items():
        spans.sort(key=lambda s: (s[0], -s[1]))
        stack: list[tuple[float, float, str]] = []
        for start, end, name in spans:
            while stack and start >= stack[-1][1] - _SLACK:
                stack.pop()
            if stack and end > stack[-1][1] + _SLACK:
                out.append(f"pid {pid} tid {tid}: {name!r} [{start}, {end}] overlaps "
                           f"{stack[-1][2]!r} [{stack[-1][0]}, {stack[-1][1]}] without "
                           f"nesting inside it")
                continue
            stack.append((start, end, name))
    return out


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python benchmarks/check_trace.py TRACE.json", file=sys.stderr)
        return 2
    try:
        with open(argv[0]) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        print(f"{argv[0]}: cannot read it as JSON: {e}")
        return 1
    found = problems(doc)
    for line in found:
        print(f"{argv[0]}: {line}")
    if not found:
        n = len(doc["traceEvents"] if isinstance(doc, dict) else doc)
        print(f"{argv[0]}: ok ({n} events)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
