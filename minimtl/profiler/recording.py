"""What a profile records, and how: while the ``with`` block is open, instrumented
versions of the engine's entry points (``Function.apply``, each ``backward``, the walk, the
kernel lookup, ``Optimizer.step``) append one event each time they end, and leaving the
block puts the originals back (minimtl/profiler/__init__.py has the whole story). An event
is ``(kind, t0_ns, t1_ns, info)``: kind "forward" or "backward" (info: the op's ``_Call``),
"kernel" (info: (label, backend, module)), "walk" (None) or "optimizer" (its name). The
rows, the table (report.py) and the Chrome trace (trace.py) are read from these events.
"""

from __future__ import annotations

import os
import threading
from time import perf_counter_ns

import kernels.launches as launches

from .. import autograd, function, gradients, optim
from ..backend import kernel_module as _kernel_module
from ..function import Function
from ..opcost import call_cost, measure_peaks
from ..tensor import Tensor
from . import report, trace

__all__ = ["Profile"]

_active: Profile | None = None


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

    def flops(self, direction: str) -> int | None:
        """The FLOPs of one call in ``direction`` (minimtl/opcost.py; None: not counted)."""
        return call_cost(self.name, self.shapes, self.out_shapes, self.params,
                         self.needs_grad)[direction == "backward"]

    def shape_text(self) -> str:
        """The input shapes as text, ``(2,3) (3,4)`` (inputs that are not tensors left out)."""
        return " ".join("(" + ",".join(map(str, s)) + ")" for s in self.shapes if s is not None)


class _TimedKernels:
    """A kernel module whose ``fwd``/``bwd``/``update`` record their calls."""

    def __init__(self, module, family: str, backend: str, prof: Profile):
        self._module = module
        for fname in ("fwd", "bwd", "update", "update_many"):
            fn = getattr(module, fname, None)
            if fn is not None:
                setattr(self, fname, prof._timed_kernel(fn, f"{family}.{fname}", backend))

    def __getattr__(self, name):
        return getattr(self._module, name)


class Profile:
    """The record of one ``with`` block (minimtl/profiler/__init__.py). After the block:
    ``table()``, ``rows()``, ``chrome_trace(path)``, ``plot(path)``."""

    def __init__(self, *, sync: bool = True) -> None:
        self.sync = sync
        self.events: list[tuple] = []  # (kind, t0_ns, t1_ns, info), appended at each end
        self._marks: list[int] = []     # prof.step() times
        self._auto: list[int] = []      # optimizer step ends
        self._launches_at: dict[str, list[int]] = {"marks": [], "auto": [], "end": []}
        self._fwd: dict[int, _Call] = {}  # id(ctx) -> its forward call, for backward
        self._patches: list[tuple] = []
        self._proxies: dict = {}
        self._peaks: dict = {}
        self.launched: dict[int, int] = {}   # id(event) -> kernel launches inside it
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
        self._counting = launches.count()
        self._count = self._counting.__enter__()
        self.t_start = perf_counter_ns()
        return self

    def __exit__(self, *exc) -> None:
        global _active
        self.t_end = perf_counter_ns()
        self._launches_at["end"].append(self._count.total)
        self._counting.__exit__(None, None, None)
        self._restore()
        self._fwd.clear()
        _active = None

    def step(self) -> None:
        """End the step in progress here (the next one begins)."""
        self._marks.append(perf_counter_ns())
        self._launches_at["marks"].append(self._count.total)

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
        self._patch(gradients, "_walk", self._timed("walk", gradients._walk))
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
        fwd, tid, ns = self._fwd, self._tid, perf_counter_ns

        def backward(ctx, *gys):
            if threading.get_ident() != tid:
                return fn(ctx, *gys)
            t0, n0 = ns(), self._count.total
            gxs = fn(ctx, *gys)
            if ctx.backend == "cupy" and self.sync:
                _sync()
            call = fwd.get(id(ctx))         # None, or a dead ctx's whose id was reused
            self._event("backward", t0, ns(), call if call is not None and
                        call.name == fallback.name else fallback, n0)
            return gxs

        self._patch(cls, "backward", staticmethod(backward))

    def _timed_apply(self):
        original = Function.__dict__["apply"].__func__
        fwd, tid, ns = self._fwd, self._tid, perf_counter_ns

        def apply(cls, *inputs, **params):
            if threading.get_ident() != tid:
                return original(cls, *inputs, **params)
            if cls not in self._patched:
                self._patch_backward(cls)
            t0, n0 = ns(), self._count.total
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
            self._event("forward", t0, t1, call, n0)
            if node is not None:
                fwd[id(node.ctx)] = call
            return out

        return apply

    def _timed(self, kind: str, fn):
        tid, ns = self._tid, perf_counter_ns

        def timed(*args, **kwargs):
            if threading.get_ident() != tid:
                return fn(*args, **kwargs)
            t0, n0 = ns(), self._count.total
            out = fn(*args, **kwargs)
            self._event(kind, t0, ns(), None, n0)
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
        tid, ns, auto = self._tid, perf_counter_ns, self._auto

        def step(opt) -> None:
            if threading.get_ident() != tid:
                return original(opt)
            t0, n0 = ns(), self._count.total
            original(opt)
            t1 = ns()
            self._event("optimizer", t0, t1, f"{type(opt).__name__}.step", n0)
            auto.append(t1)
            self._launches_at["auto"].append(self._count.total)
        return step

    def _event(self, kind: str, t0: int, t1: int, info, launches_before: int) -> None:
        event = (kind, t0, t1, info)
        self.events.append(event)
        n = self._count.total - launches_before
        if n:
            self.launched[id(event)] = n

    # --- analysis ----------------------------------------------------------------------
    def steps(self) -> list[tuple[int, int]]:
        """(start, end) in perf_counter ns of each step (minimtl/profiler/__init__.py)."""
        if self.t_start is None or self.t_end is None:
            raise RuntimeError("profile: use the results after the with block")
        ends = self._marks or self._auto
        if not ends:
            return [(self.t_start, self.t_end)]
        starts = [self.t_start] + ends[:-1]
        return list(zip(starts, ends))

    def launches_in_steps(self) -> int:
        """The kernel launches counted from the start to the end of the last step."""
        at = self._launches_at
        return (at["marks"] or at["auto"] or at["end"])[-1]

    def peaks(self, device: str = "cpu", dtype: str = "float32") -> dict[str, float]:
        """The matmul peak and copy bandwidth the roofline uses (measured once)."""
        key = (device, dtype)
        if key not in self._peaks:
            self._peaks[key] = measure_peaks(device, dtype)
        return self._peaks[key]

    def rows(self, *, group_by_shape: bool = False, roofline: bool = True) -> list[dict]:
        """The table's rows as dicts, largest time first: op, direction, backend, calls,
        ms (total over the steps), ms_step, kernel_ms, flops, bytes, shapes; gflops, gbps
        and roofline (% of the bound max(flops/peak, bytes/bandwidth)) where counted."""
        return report.rows(self, group_by_shape=group_by_shape, roofline=roofline)

    def table(self, *, group_by_shape: bool = True, top: int | None = None,
              roofline: bool = True) -> str:
        """The rows as a terminal table, largest time first, one row per op, direction and
        input shapes (``group_by_shape=False``: per op and direction; ``top``: only the
        first rows; ``roofline=False``: no peaks measured)."""
        return report.table(self, group_by_shape=group_by_shape, top=top, roofline=roofline)

    def chrome_trace(self, path: str | os.PathLike) -> str:
        """Write the profile as Trace Event Format JSON: complete ("X") events, nested
        step → op (forward / backward, the walk, the optimizer) → kernel, times in µs."""
        return trace.chrome_trace(self, path)

    def plot(self, path: str | os.PathLike, *, top: int = 16) -> bool:
        """A PNG of a step's time by op and direction (the ``top`` largest rows, the rest
        summed; minimtl/plot.py draws it). False without matplotlib."""
        from ..plot import plot_profile

        return plot_profile(self.rows(roofline=False), len(self.steps()), path, top=top)


def _sync() -> None:
    import cupy

    cupy.cuda.get_current_stream().synchronize()
