"""A profile's events as a Chrome trace: Trace Event Format JSON for
https://ui.perfetto.dev or chrome://tracing (benchmarks/check_trace.py checks one)."""

from __future__ import annotations

import json
import os
import threading
from typing import TYPE_CHECKING

from ..checkpoint import atomic_write

if TYPE_CHECKING:
    from .recording import Profile

__all__ = ["chrome_trace"]


def chrome_trace(prof: Profile, path: str | os.PathLike) -> str:
    """Write the profile as Trace Event Format JSON: complete ("X") events, nested
    step → op (forward / backward, the walk, the optimizer) → kernel, times in µs."""
    pid, tid = os.getpid(), threading.get_native_id()
    t_zero = prof.t_start

    def x(name, cat, t0, t1, args):
        return {"name": name, "cat": cat, "ph": "X", "ts": (t0 - t_zero) / 1e3,
                "dur": (t1 - t0) / 1e3, "pid": pid, "tid": tid, "args": args}

    out = [{"name": "process_name", "ph": "M", "pid": pid, "tid": tid,
            "args": {"name": "minimtl"}},
           {"name": "thread_name", "ph": "M", "pid": pid, "tid": tid,
            "args": {"name": "training step"}}]
    out += [x(f"step {i + 1}", "step", s0, s1, {}) for i, (s0, s1) in
            enumerate(prof.steps())]
    for kind, t0, t1, info in prof.events:
        if kind == "kernel":
            out.append(x(info[0], "kernel", t0, t1, {"backend": info[1],
                                                     "module": info[2]}))
        elif kind == "walk":
            out.append(x("backward", "autograd", t0, t1, {}))
        elif kind == "optimizer":
            out.append(x(info, "optimizer", t0, t1, {}))
        else:
            fl = info.flops(kind) if info.dtype else None
            args = {"backend": info.backend, "shapes": info.shape_text(),
                    "dtype": str(info.dtype)}
            if fl is not None:
                args.update(flops=fl, bytes=info.bytes(kind))
            name = info.name if kind == "forward" else f"{info.name} backward"
            out.append(x(name, kind, t0, t1, args))
    out.sort(key=lambda e: (e["ph"] != "M", e.get("ts", 0), -e.get("dur", 0)))
    doc = {"traceEvents": out, "displayTimeUnit": "ms",
           "otherData": {"producer": "minimtl.profile", "steps": len(prof.steps())}}
    atomic_write(path, lambda f: json.dump(doc, f), binary=False)
    return os.fspath(path)
