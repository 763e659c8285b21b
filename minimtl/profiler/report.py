"""A profile's events as rows and as a table: per op, direction (and input shapes) the
calls, the time a step, the share inside kernels, GFLOP/s, GB/s and the roofline
(% of the bound max(flops/peak, bytes/bandwidth), the peaks measured by
``opcost.measure_peaks``), plus two rows of their own: "autograd walk" and "python between
ops" (minimtl/profiler/__init__.py says what they are)."""

from __future__ import annotations

import bisect
from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .recording import Profile

__all__ = ["rows", "table"]


def rows(prof: Profile, *, group_by_shape: bool = False, roofline: bool = True) -> list[dict]:
    """The table's rows as dicts, largest time first: op, direction, backend, calls,
    ms (total over the steps), ms_step, kernel_ms, flops, bytes, shapes; gflops, gbps
    and roofline (% of the bound max(flops/peak, bytes/bandwidth)) where counted;
    launches and launches_step: the kernel launches ``kernels.launches`` saw inside the
    row's events (ours always; cupy's own only where its arrays are counted, as on the
    host emulator of the tests)."""
    steps = prof.steps()
    events = _in_steps(prof)
    by_key: dict[tuple, dict] = {}
    pending: list[tuple] = []
    special = {"optimizer": 0, "walk": 0, "backward_in_walk": 0}
    launched = {"walk": 0, "backward_in_walk": 0}
    top_end, top_total = -1, 0
    for _, (kind, t0, t1, _info) in sorted(events, key=lambda e: (e[1][1], -e[1][2])):
        if kind in ("forward", "walk", "optimizer") and t0 >= top_end:
            top_total += t1 - t0
            top_end = t1
    walks = sorted((t0, t1) for _, (k, t0, t1, _i) in events if k == "walk")
    for _, event in events:
        kind, t0, t1, info = event
        n_launched = prof.launched.get(id(event), 0)
        if kind == "kernel":
            pending.append((t0, t1))
            continue
        inside = sum(b - a for a, b in pending if a >= t0 and b <= t1)
        pending = [(a, b) for a, b in pending if not (a >= t0 and b <= t1)]
        if kind == "walk":
            special["walk"] += t1 - t0
            launched["walk"] += n_launched
            continue
        if kind == "optimizer":
            key = (info, "step", "", "")
            name, direction, backend, shapes = info, "step", "", ""
        else:
            direction = kind
            name, backend = info.name, info.backend
            shapes = info.shape_text()
            key = (name, direction, backend, shapes if group_by_shape else "")
            if direction == "backward" and _containing(walks, t0, t1) is not None:
                special["backward_in_walk"] += t1 - t0
                launched["backward_in_walk"] += n_launched
        row = by_key.setdefault(key, {"op": name, "direction": direction,
                                      "backend": backend, "calls": 0, "ns": 0,
                                      "kernel_ns": 0, "has_kernel": False, "flops": 0,
                                      "counted": True, "bytes": 0, "shapes": Counter(),
                                      "dtype": None, "launches": 0})
        row["calls"] += 1
        row["launches"] += n_launched
        row["ns"] += t1 - t0
        row["kernel_ns"] += inside
        row["has_kernel"] |= inside > 0
        if kind in ("forward", "backward") and info.dtype is not None:
            fl = info.flops(kind)
            if fl is None:
                row["counted"] = False
            else:
                row["flops"] += fl
                row["bytes"] += info.bytes(kind)
            row["shapes"][shapes] += 1
            row["dtype"] = str(info.dtype)
        else:
            row["counted"] = False
    wall = sum(s1 - s0 for s0, s1 in steps)
    out = list(by_key.values())
    out.append(_special("autograd walk", special["walk"] - special["backward_in_walk"],
                        launched["walk"] - launched["backward_in_walk"]))
    out.append(_special("python between ops", wall - top_total))
    # what ran outside every op, walk and optimizer step (the walk's seed gradient, ...)
    out[-1]["launches"] = prof.launches_in_steps() - sum(r["launches"] for r in out)
    for row in out:
        row["launches_step"] = row["launches"] / len(steps)
        row["ms"] = row.pop("ns") / 1e6
        row["ms_step"] = row["ms"] / len(steps)
        row["kernel_ms"] = row.pop("kernel_ns") / 1e6
        shapes = row["shapes"]
        row["shapes"] = [s for s, _ in shapes.most_common()]
        time_s = (row["kernel_ms"] if row.pop("has_kernel") else row["ms"]) / 1e3
        if row.pop("counted") and row["dtype"] in ("float32", "float64") and time_s > 0:
            row["gflops"] = row["flops"] / time_s / 1e9
            row["gbps"] = row["bytes"] / time_s / 1e9
            if roofline:
                peak = prof.peaks("cuda" if row["backend"] == "cupy" else "cpu",
                                  row["dtype"])
                bound = max(row["flops"] / peak["gflops"], row["bytes"] / peak["gbps"])
                row["roofline"] = 100 * bound / 1e9 / time_s
        else:
            row["flops"] = row["bytes"] = None
    out.sort(key=lambda r: -r["ms"])
    return out


def table(prof: Profile, *, group_by_shape: bool = True, top: int | None = None,
          roofline: bool = True) -> str:
    """The rows as a terminal table, largest time first, one row per op, direction and
    input shapes (``group_by_shape=False``: per op and direction; ``top``: only the
    first rows; ``roofline=False``: no peaks measured, no roofline column values)."""
    listed = rows(prof, group_by_shape=group_by_shape, roofline=roofline)
    steps = prof.steps()
    wall = sum(s1 - s0 for s0, s1 in steps) / 1e6 / len(steps)
    dtypes = sorted({(r["backend"] == "cupy", r["dtype"]) for r in listed
                     if roofline and r.get("roofline") is not None})
    peaks = "; ".join(
        f"{'GPU' if gpu else 'CPU'} {dt}: matmul peak "
        f"{prof.peaks('cuda' if gpu else 'cpu', dt)['gflops']:.0f} GFLOP/s, copy "
        f"{prof.peaks('cuda' if gpu else 'cpu', dt)['gbps']:.1f} GB/s" for gpu, dt in dtypes)
    launched = sum(r["launches_step"] for r in listed)
    head = f"{len(steps)} step(s), {wall:.2f} ms a step"
    if launched:
        head += f", {launched:.0f} kernel launches a step"
    lines = [head + (f"; {peaks} (measured now)" if peaks else ""),
             f"{'op':<22} {'dir':<4} {'backend':<7} {'calls':>6} {'ms/step':>8} "
             f"{'%':>5} {'kernel':>6} {'GFLOP/s':>8} {'GB/s':>6} {'roof':>5}"
             + (f" {'launch':>6}" if launched else "") + "  shapes"]
    for r in listed[:top]:
        kernel = f"{100 * r['kernel_ms'] / r['ms']:.0f}%" if r["kernel_ms"] else "-"
        shapes = " ".join(r["shapes"][:1]) + (f" +{len(r['shapes']) - 1}"
                                               if len(r["shapes"]) > 1 else "")
        lines.append(
            f"{r['op'][:22]:<22} {_DIR.get(r['direction'], ''):<4} {r['backend']:<7} "
            f"{r['calls'] or '':>6} {r['ms_step']:8.3f} {100 * r['ms_step'] / wall:5.1f} "
            f"{kernel:>6} {_num(r.get('gflops'), 1):>8} {_num(r.get('gbps'), 2):>6} "
            f"{_num(r.get('roofline'), 0, '%'):>5}"
            + (f" {r['launches_step']:6.0f}" if launched else "") + f"  {shapes}")
    lines.append(f"{'total':<22} {'':<4} {'':<7} {'':>6} {wall:8.3f} {100.0:5.1f}")
    return "\n".join(lines)


def _in_steps(prof: Profile) -> list[tuple]:
    """The events inside steps, each with its step index, in the order recorded."""
    steps = prof.steps()
    return [(i, ev) for ev in prof.events
            if (i := _containing(steps, ev[1], ev[2])) is not None]


_DIR = {"forward": "fwd", "backward": "bwd", "step": "step"}


def _containing(spans: list[tuple[int, int]], t0: int, t1: int) -> int | None:
    """The index of the span of ``spans`` (sorted, not overlapping) holding [t0, t1]."""
    i = bisect.bisect_right(spans, (t0, float("inf"))) - 1
    return i if i >= 0 and spans[i][0] <= t0 and t1 <= spans[i][1] else None


def _special(name: str, ns: int, launches: int = 0) -> dict:
    return {"op": name, "direction": "", "backend": "", "calls": 0, "ns": ns,
            "kernel_ns": 0, "has_kernel": False, "flops": None, "counted": False,
            "bytes": None, "shapes": Counter(), "dtype": None, "launches": launches}


def _num(v, digits: int, unit: str = "") -> str:
    return "-" if v is None else f"{v:.{digits}f}{unit}"
