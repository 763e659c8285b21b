"""The probe: each kernel (and one training step per batch) called once in a child process
before it is timed, so that a kernel that kills its process (a segfault, an illegal
address, a hang) is found, recorded and skipped instead of ending the whole run. The
child's calls are the first ones, so their times are kept as the first-call (compile) times.

The child is ``python -m minimtl.bench --probe-child BACKEND --probe-items ITEMS``; it
prints ``start ITEM`` before and ``done ITEM {json}`` after each item, so the parent knows
which item a dead child was in, records it and starts a new child on the items after it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

from .cases import kernel_cases
from .machine import REPO, cupy_or_none
from .progress import error_text, log
from .steps import minimtl_step
from .timing import cupy_device, first_calls, host_device

__all__ = ["Probed", "probe", "probe_child"]


@dataclass
class Probed:
    """What the probe of one backend found."""

    crashed: dict[str, str] = field(default_factory=dict)   # item -> why its child died
    first_calls: dict[str, dict] = field(default_factory=dict)  # op -> the child's times
    failure: str | None = None        # a child died outside any item: probing stopped


def _items(cfg: argparse.Namespace, backend: str, batches: list[int]) -> list[str]:
    items = [f"kernel:{op}" for op in cfg.ops if cfg.kernels]
    items += [f"step:{b}" for b in batches if cfg.step]
    items += ["step:32"] if backend != "cupy" and cfg.memory_steps > 0 else []
    return list(dict.fromkeys(items))


def _call_child(cfg: argparse.Namespace, backend: str, items: list[str],
                batches: list[int]) -> tuple[int | None, str, str]:
    """Run one child on ``items``: (exit status or None on a timeout, stdout, stderr)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p))
    cmd = [sys.executable, "-m", "minimtl.bench", "--probe-child", backend,
           "--probe-items", ",".join(items), "--batches", ",".join(map(str, batches)),
           "--seq-len", str(cfg.seq_len), "--features", str(cfg.features)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env,
                              timeout=cfg.probe_timeout)
        return proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as e:
        stdout = e.stdout.decode() if isinstance(e.stdout, bytes) else e.stdout or ""
        return None, stdout, ""


def _why(rc: int | None, timeout: float) -> str:
    if rc is None:
        return f"no answer within {timeout:.0f} s"
    if rc < 0:
        return f"killed by signal {-rc} ({signal.Signals(-rc).name})"
    return f"exit status {rc}"


def probe(cfg: argparse.Namespace, backend: str, batches: list[int]) -> Probed:
    """Probe ``backend``'s kernels and steps in child processes, one after another until
    every item was called or skipped as crashed."""
    found = Probed()
    items = _items(cfg, backend, batches)
    while items:
        log(f"probe {backend}: {len(items)} item(s) in a child process")
        rc, stdout, stderr = _call_child(cfg, backend, items, batches)
        started = None                                 # the item the child is inside
        for line in stdout.splitlines():
            if line.startswith("start "):
                started = line[6:]
            elif line.startswith("done "):
                item, _, info = line[5:].partition(" ")
                started = None
                info = json.loads(info or "{}")
                if item.startswith("kernel:") and "first_fwd_ms" in info:
                    found.first_calls[item[7:]] = info
        if rc == 0:
            return found
        why = _why(rc, cfg.probe_timeout)
        if started is None:          # died outside any item: give up probing
            tail = (stderr.strip().splitlines() or [""])[-1][:200]
            found.failure = f"child process failed ({why}): {tail}"
            return found
        found.crashed[started] = f"crashed its process in the probe ({why})"
        log(f"  ! probe {backend} {started}: {why}")
        items = items[items.index(started) + 1:]
    return found


def probe_child(cfg: argparse.Namespace) -> int:
    """The child side of ``probe``: each item once, a ``start``/``done`` line apiece."""
    import kernels

    backend = cfg.probe_child
    dev = cupy_device(cupy_or_none()) if backend == "cupy" else host_device()
    for item in cfg.probe_items.split(","):
        kind, _, what = item.partition(":")
        print(f"start {item}", flush=True)
        info: dict[str, Any] = {}
        try:
            if kind == "kernel":
                k = kernels.get(what, backend)
                for batch in cfg.batches:
                    for case in kernel_cases(what, batch, cfg.seq_len, cfg.features):
                        t_fwd, t_bwd = first_calls(case, k, dev.put(case.arrays), dev)
                        info = info or {"first_fwd_ms": t_fwd, "first_bwd_ms": t_bwd}
            else:
                step, _ = minimtl_step(backend, int(what), cfg.seq_len, cfg.features)
                step()
                dev.sync()
        except Exception as e:   # not a crash: the main process meets and records it
            info = {"error": error_text(e)}
        print(f"done {item} {json.dumps(info)}", flush=True)
    return 0
