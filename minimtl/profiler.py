"""Where a training step's time goes: a per-op profiler with a table, a Chrome trace and a
picture.

    with minimtl.profile() as prof:
        for x, y in batches:
            step(x, y)                 # forward, losses, backward, optimizer.step()
    print(prof.table())                # ms a step per op and direction, GFLOP/s, roofline
    prof.chrome_trace("trace.json")    # open in https://ui.perfetto.dev or chrome://tracing
    prof.plot("profile.png")

What is recorded, per op (``Function.op_name``) and direction: wall time, calls, backend,
input shapes; the kernel calls inside (``kernels/<op>`` ``fwd``/``bwd``/``update``); the
backward walk; each ``Optimizer.step``. FLOPs and bytes per call come from
minimtl/opcost.py, the machine's matmul peak and copy bandwidth from a short measurement in
the same process (``opcost.measure_peaks``, run by ``table``, not while profiling).

Steps: each ``prof.step()`` ends a step (the first began when the profile did); a profile
without any ``prof.step()`` ends a step after every optimizer step, so a profiled
``minimtl.train.fit`` or a plain training loop gets its steps with no marks; a profile
with neither is one step. "python between ops" is a step's wall time minus its ops, its
backward walk and its optimizer step: the Python around the ops (model code, losses,
data); "autograd walk" is the walk's own bookkeeping (sorting the graph, accumulating).

Zero cost when off: nothing in the engine checks for a profiler. While a profile is open,
instrumented versions replace ``Function.apply``, each Function's ``backward``, the walk
(``autograd._walk``), the kernel lookup (``kernel_module`` as function.py and optim.py
hold it) and ``Optimizer.step``; leaving the block, normally or by an exception, puts the
originals back (the same objects). One profile at a time in a process (opening a second
raises ``RuntimeError``); it records the thread that opened it: other threads' ops run
uninstrumented and are not recorded. On the cupy backend every op and kernel is
synchronized so that its time is the device's (``sync=False`` times launches only).
"""

from __future__ import annotations

import bisect
import json
import os
import threading
from collections import Counter
from time import perf_counter_ns

from . import autograd, function, optim
from .backend import kernel_module as _kernel_module
from .checkpoint import atomic_write
from .function import Function
from .opcost import call_cost, measure_peaks
from .tensor import Tensor

__all__ = ["profile", "Profile"]

_active: Profile | None = None


def profile(*, sync: bool = True) -> Profile:
    """A profile to open with ``with``; see the module docstring."""
    return Profile(sync=sync)


class _Call:
    """One op's forward call: what the table, the costs and the trace need."""

    __slots__ = ("name", "backend", "shapes", "out_shapes", "params", "in_bytes",
                 "out_bytes", "needs_grad", "dtype")

    def __init__(self, name, backend, shapes, out_shapes, params, in_bytes, out_bytes,
                 needs_grad, dtype):
        self.name, self.backend, self.shapes, self.out_shapes = name, backend, shapes, \
            out_shapes
        self.params, self.in_bytes, self.out_bytes = params, in_bytes, out_bytes
        self.needs_grad, self.dtype = needs_grad, dtype

    def bytes(self, direction: str) -> int:
        if direction == "forward":
            return sum(self.in_bytes) + sum(self.out_bytes)
        grads = sum(b for b, need in zip(self.in_bytes, self.needs_grad) if need)
        return sum(self.out_bytes) + sum(self.in_bytes) + grads


class _TimedKernels:
    """A kernel module whose ``fwd``/``bwd``/``update`` record their calls."""

    def __init__(self, module, family: str, backend: str, prof: Profile):
        self._module = module
        for fname in ("fwd", "bwd", "update"):
            fn = getattr(module, fname, None)
            if fn is not None:
                setattr(self, fname, prof._timed_kernel(fn, f"{family}.{fname}", backend))

    def __getattr__(self, name):
        return getattr(self._module, name)


class Profile:
    """The record of one ``with`` block (see the module docstring). After the block:
    ``table()``, ``rows()``, ``chrome_trace(path)``, ``plot(path)``."""

    def __init__(self, *, sync: bool = True) -> None:
        self.sync = sync
        self.events: list[tuple] = []  # (kind, t0_ns, t1_ns, info), appended at each end
        self._marks: list[int] = []     # prof.step() times
        self._auto: list[int] = []      # optimizer step ends
        self._fwd: dict[int, _Call] = {}  # id(ctx) -> its forward call, for backward
        self._patches: list[tuple] = []
        self._proxies: dict = {}
        self._peaks: dict = {}
        self.t_start = self.t_end = None

    # --- recording ---------------------------------------------------------------------
    def __enter__(self) -> Profile:
        global _active
        if _active is not None:
            raise RuntimeError("profile: another profile is open in this process (profiles "
                               "do not nest)")
        if self.t_start is not None:
            raise RuntimeError("profile: this profile was already used; open a new one")
        _active = self
        self._tid = threading.get_ident()
        try:
            self._install()
        except BaseException:
            self._restore()
            _active = None
            raise
        self.t_start = perf_counter_ns()
        return self

    def __exit__(self, *exc) -> None:
        global _active
        self.t_end = perf_counter_ns()
        self._restore()
        self._fwd.clear()
        _active = None

    def step(self) -> None:
        """End the step in progress here (the next one begins)."""
        self._marks.append(perf_counter_ns())

    def _patch(self, owner, attr: str, new) -> None:
        self._patches.append((owner, attr, owner.__dict__[attr] if isinstance(owner, type)
                              else getattr(owner, attr)))
        setattr(owner, attr, new)

    def _restore(self) -> None:
        while self._patches:
            owner, attr, original = self._patches.pop()
            setattr(owner, attr, original)

    def _install(self) -> None:
        self._patch(Function, "apply", classmethod(self._timed_apply()))
        self._patched: set = set()
        stack = list(Function.__subclasses__())
        while stack:
            cls = stack.pop()
            stack.extend(cls.__subclasses__())
            self._patch_backward(cls)
        self._patch(autograd, "_walk", self._timed("walk", autograd._walk))
        lookup = self._timed_lookup()
        self._patch(function, "kernel_module", lookup)
        self._patch(optim, "kernel_module", lookup)
        self._patch(optim.Optimizer, "step", self._timed_step(optim.Optimizer.step))

    def _patch_backward(self, cls) -> None:
        if cls in self._patched:
            return
        self._patched.add(cls)
        if "backward" not in cls.__dict__:
            return
        original = cls.__dict__["backward"]
        fn = original.__func__ if isinstance(original, staticmethod) else original
        fallback = _Call(cls.op_name(), "?", (), (), {}, (), (), (), None)
        events, fwd, tid, ns = self.events, self._fwd, self._tid, perf_counter_ns

        def backward(ctx, *gys):
            if threading.get_ident() != tid:
                return fn(ctx, *gys)
            t0 = ns()
            gxs = fn(ctx, *gys)
            if ctx.backend == "cupy" and self.sync:
                _sync()
            call = fwd.get(id(ctx))         # None, or a dead ctx's whose id was reused
            events.append(("backward", t0, ns(), call if call is not None and
                           call.name == fallback.name else fallback))
            return gxs

        self._patch(cls, "backward", staticmethod(backward))

    def _timed_apply(self):
        original = Function.__dict__["apply"].__func__
        events, fwd, tid, ns = self.events, self._fwd, self._tid, perf_counter_ns

        def apply(cls, *inputs, **params):
            if threading.get_ident() != tid:
                return original(cls, *inputs, **params)
            if cls not in self._patched:
                self._patch_backward(cls)
            t0 = ns()
            out = original(cls, *inputs, **params)
            outs = out if isinstance(out, tuple) else (out,)
            if outs[0].backend == "cupy" and self.sync:
                _sync()
            t1 = ns()
            tensors = [t for t in inputs if isinstance(t, Tensor)]
            node = outs[0]._node
            call = _Call(cls.op_name(), outs[0].backend,
                         tuple(t.data.shape if isinstance(t, Tensor) else None
                               for t in inputs),
                         tuple(o.data.shape for o in outs), params,
                         tuple(t.data.nbytes for t in tensors),
                         tuple(o.data.nbytes for o in outs),
                         node.ctx.needs_grad if node is not None else (),
                         tensors[0].data.dtype)
            events.append(("forward", t0, t1, call))
            if node is not None:
                fwd[id(node.ctx)] = call
            return out

        return apply

    def _timed(self, kind: str, fn):
        events, tid, ns = self.events, self._tid, perf_counter_ns

        def timed(*args, **kwargs):
            if threading.get_ident() != tid:
                return fn(*args, **kwargs)
            t0 = ns()
            out = fn(*args, **kwargs)
            events.append((kind, t0, ns(), None))
            return out
        return timed

    def _timed_kernel(self, fn, label: str, backend: str):
        events, tid, ns = self.events, self._tid, perf_counter_ns
        sync = backend == "cupy" and self.sync

        def kernel(*args, **kwargs):       # (a ctx made in the profile may outlive it)
            if threading.get_ident() != tid or self.t_end is not None:
                return fn(*args, **kwargs)
            t0 = ns()
            out = fn(*args, **kwargs)
            if sync:
                _sync()
            events.append(("kernel", t0, ns(), (label, backend, fn.__module__)))
            return out
        return kernel

    def _timed_lookup(self):
        proxies = self._proxies

        def lookup(op: str, backend: str):
            module = _kernel_module(op, backend)
            proxy = proxies.get((op, backend))
            if proxy is None or proxy._module is not module:
                proxy = proxies[(op, backend)] = _TimedKernels(module, op, backend, self)
            return proxy
        return lookup

    def _timed_step(self, original):
        events, tid, ns, auto = self.events, self._tid, perf_counter_ns, self._auto

        def step(opt) -> None:
            if threading.get_ident() != tid:
                return original(opt)
            t0 = ns()
            original(opt)
            t1 = ns()
            events.append(("optimizer", t0, t1, f"{type(opt).__name__}.step"))
            auto.append(t1)
        return step

    # --- analysis ----------------------------------------------------------------------
    def steps(self) -> list[tuple[int, int]]:
        """(start, end) in perf_counter ns of each step (see the module docstring)."""
        if self.t_start is None or self.t_end is None:
            raise RuntimeError("profile: use the results after the with block")
        ends = self._marks or self._auto
        if not ends:
            return [(self.t_start, self.t_end)]
        starts = [self.t_start] + ends[:-1]
        return list(zip(starts, ends))

    def peaks(self, device: str = "cpu", dtype: str = "float32") -> dict[str, float]:
        """The matmul peak and copy bandwidth the roofline uses (measured once)."""
        key = (device, dtype)
        if key not in self._peaks:
            self._peaks[key] = measure_peaks(device, dtype)
        return self._peaks[key]

    def _in_steps(self) -> list[tuple]:
        """The events inside steps, each with its step index, in the order recorded."""
        steps = self.steps()
        return [(i, ev) for ev in self.events
                if (i := _containing(steps, ev[1], ev[2])) is not None]

    def rows(self, *, group_by_shape: bool = False, roofline: bool = True) -> list[dict]:
        """The table's rows as dicts, largest time first: op, direction, backend, calls,
        ms (total over the steps), ms_step, kernel_ms, flops, bytes, shapes; gflops, gbps
        and roofline (% of the bound max(flops/peak, bytes/bandwidth)) where counted."""
        steps = self.steps()
        events = self._in_steps()
        rows: dict[tuple, dict] = {}
        pending: list[tuple] = []
        special = {"optimizer": 0, "walk": 0, "backward_in_walk": 0}
        top_end, top_total = -1, 0
        for _, (kind, t0, t1, _info) in sorted(events, key=lambda e: (e[1][1], -e[1][2])):
            if kind in ("forward", "walk", "optimizer") and t0 >= top_end:
                top_total += t1 - t0
                top_end = t1
        walks = sorted((t0, t1) for _, (k, t0, t1, _i) in events if k == "walk")
        for _, (kind, t0, t1, info) in events:
            if kind == "kernel":
                pending.append((t0, t1))
                continue
            inside = sum(b - a for a, b in pending if a >= t0 and b <= t1)
            pending = [(a, b) for a, b in pending if not (a >= t0 and b <= t1)]
            if kind == "walk":
                special["walk"] += t1 - t0
                continue
            if kind == "optimizer":
                key = (info, "step", "", "")
                name, direction, backend, shapes = info, "step", "", ""
            else:
                direction = kind
                name, backend = info.name, info.backend
                shapes = _shapes(info.shapes)
                key = (name, direction, backend, shapes if group_by_shape else "")
                if direction == "backward" and _containing(walks, t0, t1) is not None:
                    special["backward_in_walk"] += t1 - t0
            row = rows.setdefault(key, {"op": name, "direction": direction,
                                        "backend": backend, "calls": 0, "ns": 0,
                                        "kernel_ns": 0, "has_kernel": False, "flops": 0,
                                        "counted": True, "bytes": 0, "shapes": Counter(),
                                        "dtype": None})
            row["calls"] += 1
            row["ns"] += t1 - t0
            row["kernel_ns"] += inside
            row["has_kernel"] |= inside > 0
            if kind in ("forward", "backward") and info.dtype is not None:
                fl = call_cost(info.name, info.shapes, info.out_shapes, info.params,
                               info.needs_grad)[kind == "backward"]
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
        out = list(rows.values())
        out.append(_special("autograd walk", special["walk"] - special["backward_in_walk"]))
        out.append(_special("python between ops", wall - top_total))
        for row in out:
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
                    peak = self.peaks("cuda" if row["backend"] == "cupy" else "cpu",
                                      row["dtype"])
                    bound = max(row["flops"] / peak["gflops"], row["bytes"] / peak["gbps"])
                    row["roofline"] = 100 * bound / 1e9 / time_s
            else:
                row["flops"] = row["bytes"] = None
        out.sort(key=lambda r: -r["ms"])
        return out

    def table(self, *, group_by_shape: bool = True, top: int | None = None) -> str:
        """The rows as a terminal table, largest time first, one row per op, direction and
        input shapes (``group_by_shape=False``: per op and direction; ``top``: only the
        first rows)."""
        rows = self.rows(group_by_shape=group_by_shape)
        steps = self.steps()
        wall = sum(s1 - s0 for s0, s1 in steps) / 1e6 / len(steps)
        dtypes = sorted({(r["backend"] == "cupy", r["dtype"]) for r in rows
                         if r.get("roofline") is not None})
        peaks = "; ".join(
            f"{'GPU' if gpu else 'CPU'} {dt}: matmul peak "
            f"{self.peaks('cuda' if gpu else 'cpu', dt)['gflops']:.0f} GFLOP/s, copy "
            f"{self.peaks('cuda' if gpu else 'cpu', dt)['gbps']:.1f} GB/s" for gpu, dt in dtypes)
        lines = [f"{len(steps)} step(s), {wall:.2f} ms a step" + (f"; {peaks} (measured now)"
                                                                  if peaks else ""),
                 f"{'op':<22} {'dir':<4} {'backend':<7} {'calls':>6} {'ms/step':>8} "
                 f"{'%':>5} {'kernel':>6} {'GFLOP/s':>8} {'GB/s':>6} {'roof':>5}  shapes"]
        for r in rows[:top]:
            kernel = f"{100 * r['kernel_ms'] / r['ms']:.0f}%" if r["kernel_ms"] else "-"
            shapes = " ".join(r["shapes"][:1]) + (f" +{len(r['shapes']) - 1}"
                                                   if len(r["shapes"]) > 1 else "")
            lines.append(
                f"{r['op'][:22]:<22} {_DIR.get(r['direction'], ''):<4} {r['backend']:<7} "
                f"{r['calls'] or '':>6} {r['ms_step']:8.3f} {100 * r['ms_step'] / wall:5.1f} "
                f"{kernel:>6} {_num(r.get('gflops'), 1):>8} {_num(r.get('gbps'), 2):>6} "
                f"{_num(r.get('roofline'), 0, '%'):>5}  {shapes}")
        lines.append(f"{'total':<22} {'':<4} {'':<7} {'':>6} {wall:8.3f} {100.0:5.1f}")
        return "\n".join(lines)

    def chrome_trace(self, path: str | os.PathLike) -> str:
        """Write the profile as Trace Event Format JSON: complete ("X") events, nested
        step → op (forward / backward, the walk, the optimizer) → kernel, times in µs."""
        pid, tid = os.getpid(), threading.get_native_id()
        t_zero = self.t_start

        def x(name, cat, t0, t1, args):
            return {"name": name, "cat": cat, "ph": "X", "ts": (t0 - t_zero) / 1e3,
                    "dur": (t1 - t0) / 1e3, "pid": pid, "tid": tid, "args": args}

        out = [{"name": "process_name", "ph": "M", "pid": pid, "tid": tid,
                "args": {"name": "minimtl"}},
               {"name": "thread_name", "ph": "M", "pid": pid, "tid": tid,
                "args": {"name": "training step"}}]
        out += [x(f"step {i + 1}", "step", s0, s1, {}) for i, (s0, s1) in
                enumerate(self.steps())]
        for kind, t0, t1, info in self.events:
            if kind == "kernel":
                out.append(x(info[0], "kernel", t0, t1, {"backend": info[1],
                                                         "module": info[2]}))
            elif kind == "walk":
                out.append(x("backward", "autograd", t0, t1, {}))
            elif kind == "optimizer":
                out.append(x(info, "optimizer", t0, t1, {}))
            else:
                fl = call_cost(info.name, info.shapes, info.out_shapes, info.params,
                               info.needs_grad)[kind == "backward"] if info.dtype else None
                args = {"backend": info.backend, "shapes": _shapes(info.shapes),
                        "dtype": str(info.dtype)}
                if fl is not None:
                    args.update(flops=fl, bytes=info.bytes(kind))
                name = info.name if kind == "forward" else f"{info.name} backward"
                out.append(x(name, kind, t0, t1, args))
        out.sort(key=lambda e: (e["ph"] != "M", e.get("ts", 0), -e.get("dur", 0)))
        doc = {"traceEvents": out, "displayTimeUnit": "ms",
               "otherData": {"producer": "minimtl.profile", "steps": len(self.steps())}}
        atomic_write(path, lambda f: json.dump(doc, f), binary=False)
        return os.fspath(path)

    def plot(self, path: str | os.PathLike, *, top: int = 16) -> bool:
        """A PNG of a step's time by op and direction (the ``top`` largest rows, the rest
        summed; minimtl/plot.py draws it). False without matplotlib."""
        from .plot import plot_profile

        return plot_profile(self.rows(roofline=False), len(self.steps()), path, top=top)


_DIR = {"forward": "fwd", "backward": "bwd", "step": "step"}


def _containing(spans: list[tuple[int, int]], t0: int, t1: int) -> int | None:
    """The index of the span of ``spans`` (sorted, not overlapping) holding [t0, t1]."""
    i = bisect.bisect_right(spans, (t0, float("inf"))) - 1
    return i if i >= 0 and spans[i][0] <= t0 and t1 <= spans[i][1] else None


def _special(name: str, ns: int) -> dict:
    return {"op": name, "direction": "", "backend": "", "calls": 0, "ns": ns,
            "kernel_ns": 0, "has_kernel": False, "flops": None, "counted": False,
            "bytes": None, "shapes": Counter(), "dtype": None}


def _shapes(shapes) -> str:
    return " ".join("(" + ",".join(map(str, s)) + ")" for s in shapes if s is not None)


def _num(v, digits: int, unit: str = "") -> str:
    return "-" if v is None else f"{v:.{digits}f}{unit}"


def _sync() -> None:
    import cupy

    cupy.cuda.get_current_stream().synchronize()
