"""Benchmark runner: every kernel, the whole training step, PyTorch in the same process.

    python -m minimtl.bench                         # CPU: kernels and training step
    python -m minimtl.bench --ops conv1d,lstm --batches 256 --no-step
    python -m minimtl.bench --gpu-only              # CuPy kernels and step, torch on CUDA
    python -m minimtl.bench --summary benchmarks/results/cpu-2core.json

What is measured (how to read the tables: ``benchmarks/README.md``):

1. Kernels: each operator's kernel module called directly (``kernels.get(op, backend)``)
   at the article's shapes, float32: forward, and forward then backward with a fixed
   random upstream gradient. Medians after warm-up; the first call (Numba compile or cache
   load, CUDA compile) is reported on its own; GFLOP/s for conv and the RNNs next to a
   float32 matmul timed in the same run.
2. The training step of ``MultiTaskNet`` (forward, three losses, backward, Adam step) on
   one fixed random batch: 10 warm-up steps, median of 60.
3. PyTorch's equivalents, timed in the same process and before minimtl (Numba's thread
   pool can change torch's thread count); ratio = torch ms / minimtl ms (> 1: minimtl
   faster). Keras numbers measured elsewhere can be passed in; memory over many steps.
4. GPU (cupy backend): CUDA-event timings, device copy bandwidth and the bandwidth the
   memory-bound kernels reach, torch on CUDA (cuDNN) beside them.

An operator whose kernel fails to import or to run is recorded under ``errors`` and
skipped; the run goes on. Results: ``<out>/<name>.json`` (every number, the machine) and
``<out>/<name>.md`` (tables, also printed on stdout); progress lines go to stderr.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .malloc import tune_malloc

__all__ = ["main", "build_parser", "run", "to_markdown", "summary", "kernel_cases",
           "tune_malloc", "measure"]

HIDDEN = 64                   # RNN hidden size of the benchmarks (the article's towers: 64)
CLASSES = 10                  # units of each head
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
MEMORY_BOUND = ("maxpool1d", "avgpool1d", "softmax", "log_softmax", "cross_entropy",
                "soft_cross_entropy", "bce_with_logits", "bce", "mse")
TASKS = ("user", "goods", "ads")
_REPO = Path(__file__).resolve().parents[1]


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _error_text(e: BaseException) -> str:
    """One line naming the exception, with local paths shortened (results get committed)."""
    text = f"{type(e).__name__}: {e}".splitlines()[0] if str(e) else type(e).__name__
    for path, short in ((str(_REPO), "."), (os.path.expanduser("~"), "~")):
        if len(path) > 1:
            text = text.replace(path, short)
    return text[:300]


# --- the machine --------------------------------------------------------------------------
def rss_mib() -> tuple[float, str]:
    """Resident memory of this process in MiB, and where the number came from."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024, "VmRSS"
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 1024), "ru_maxrss (peak)"


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _blas() -> dict[str, str]:
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return {"name": str(blas.get("name")), "version": str(blas.get("version"))}
    except Exception:  # older NumPy: no dict mode; the BLAS is then simply not recorded
        return {}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


# --- timing -------------------------------------------------------------------------------
Sampler = Callable[[Callable[[], Any]], float]


def _cpu_sampler() -> Sampler:
    def sample(fn):
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1e3
    return sample


def _wall_sampler(sync: Callable[[], Any]) -> Sampler:
    """Wall time of one call, the device drained before and after (training steps)."""
    def sample(fn):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        return (time.perf_counter() - t0) * 1e3
    return sample


def _cupy_sampler(cp) -> Sampler:
    """Device time of one call between two CUDA events on cupy's current stream."""
    start, end = cp.cuda.Event(), cp.cuda.Event()

    def sample(fn):
        cp.cuda.get_current_stream().synchronize()
        start.record()
        fn()
        end.record()
        end.synchronize()
        return cp.cuda.get_elapsed_time(start, end)
    return sample


def _torch_cuda_sampler(torch) -> Sampler:
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)

    def sample(fn):
        torch.cuda.synchronize()
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end)
    return sample


def measure(fn: Callable[[], Any], sample: Sampler, *, warmup: int, repeats: int,
            budget_s: float = 0.0) -> dict[str, float]:
    """Median, min and max ms of ``repeats`` calls after ``warmup`` calls.

    With ``budget_s`` > 0, warm-up stops once it took that long, and sampling stops once the
    samples add up to that many seconds (after at least 3), so a slow reference kernel
    cannot stall the run.
    """
    t0 = time.perf_counter()
    for _ in range(warmup):
        fn()
        if budget_s and time.perf_counter() - t0 > budget_s:
            break
    times: list[float] = []
    for _ in range(max(repeats, 1)):
        times.append(sample(fn))
        if budget_s and len(times) >= 3 and sum(times) > budget_s * 1e3:
            break
    return {"median_ms": statistics.median(times), "min_ms": min(times),
            "max_ms": max(times), "repeats": len(times)}


# --- kernel cases -------------------------------------------------------------------------
@dataclass
class Case:
    """One kernel call to time: arrays (forward inputs, then the fixed upstream gradients,
    whose keys start with ``g``) and how to call ``fwd`` and ``bwd`` of a kernel module."""

    op: str
    shape: str
    batch: int
    arrays: dict[str, np.ndarray]
    fwd: Callable[[Any, dict], Any]                  # (kernel module, arrays) -> outputs
    bwd: Callable[[Any, dict, Any], Any]             # (module, arrays, outputs) -> grads
    torch: Callable[[Any, dict, str], tuple]         # (torch, tensors, device) -> (f, leaves)
    grad_keys: tuple[str, ...]                       # inputs that get a gradient
    out_bytes: int                                   # the forward's results (no saved extras)
    flops: int = 0                                   # forward matmul flops; 0: not counted
    torch_arrays: dict[str, np.ndarray] | None = None  # torch's own layout; None: ``arrays``
    bytes_fwd: int = field(init=False)
    bytes_fwdbwd: int = field(init=False)

    def __post_init__(self) -> None:
        a = self.arrays
        inputs = sum(v.nbytes for k, v in a.items() if not k.startswith("g"))
        upstream = sum(v.nbytes for k, v in a.items() if k.startswith("g"))
        # every input read once and every result written once: a lower bound on traffic
        self.bytes_fwd = inputs + self.out_bytes
        self.bytes_fwdbwd = self.bytes_fwd + upstream + sum(a[k].nbytes for k in self.grad_keys)


def _randn(rng: np.random.Generator, *shape: int, scale: float = 1.0) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(np.float32)


CONV = dict(stride=1, padding_left=0, padding_right=0, dilation=1)
POOL = dict(kernel_size=2, stride=2, padding=0)


def _swapped(a: dict[str, np.ndarray], keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """``a`` with the arrays under ``keys`` in the other layout: (N, C, L) ↔ (N, L, C)."""
    return {k: np.ascontiguousarray(v.swapaxes(1, 2)) if k in keys else v
            for k, v in a.items()}


def _conv_cases(op: str, n: int, seq_len: int, features: int, rng) -> list[Case]:
    """conv1d, conv1d_relu and the fused block conv1d_relu_maxpool (with the towers' pool
    of 2) at the article's two conv shapes, channels-first and channels-last (torch times
    its own channels-first layers on the same values in both rows)."""
    pooled = op == "conv1d_relu_maxpool"
    out = []
    for c, o, length, cl in ((features, 64, seq_len, False), (64, 128, (seq_len - 2) // 2, False),
                             (features, 64, seq_len, True), (64, 128, (seq_len - 2) // 2, True)):
        lo = length - 2
        ly = lo // 2 if pooled else lo                       # the op's output length
        a = {"x": _randn(rng, n, c, length), "w": _randn(rng, o, c, 3, scale=(3 * c) ** -0.5),
             "b": _randn(rng, o, scale=0.1), "gy": _randn(rng, n, o, ly)}
        ta = None
        if cl:
            ta, a = a, _swapped(a, ("x", "gy"))
        kw = dict(CONV, channels_last=cl)
        if pooled:
            kw.update(pool_size=2, pool_stride=2, pool_padding=0)

        def bwd(k, a, y, kw=kw):
            saved = {"conv1d": (), "conv1d_relu": (y,), "conv1d_relu_maxpool": y}[op]
            return k.bwd(a["gy"], a["x"], a["w"], *saved, **kw)   # y: (y, argmax) if pooled

        def tf(torch, t, dev):
            F = torch.nn.functional
            if op == "conv1d":
                f = lambda: F.conv1d(t["x"], t["w"], t["b"])  # noqa: E731
            elif op == "conv1d_relu":
                f = lambda: torch.relu(F.conv1d(t["x"], t["w"], t["b"]))  # noqa: E731
            else:
                f = lambda: F.max_pool1d(torch.relu(F.conv1d(t["x"], t["w"], t["b"])), 2)  # noqa: E731
            return f, [t["x"], t["w"], t["b"]]
        label = f"{c}->{o} L={length}" + (" pool 2" if pooled else "") + (" NLC" if cl else "")
        out.append(Case(op, label, n, a,
                        lambda k, a, kw=kw: k.fwd(a["x"], a["w"], a["b"], **kw), bwd, tf,
                        ("x", "w", "b"), n * o * ly * 4 * (2 if pooled else 1),
                        2 * n * o * c * 3 * lo, torch_arrays=ta))
    return out


def _pool_cases(op: str, n: int, seq_len: int, features: int, rng) -> list[Case]:
    """pools at the article's two shapes, channels-first and channels-last (torch: its own
    channels-first pool in both rows)."""
    out = []
    for c, length, cl in ((64, seq_len - 2, False), (128, (seq_len - 2) // 2 - 2, False),
                          (64, seq_len - 2, True), (128, (seq_len - 2) // 2 - 2, True)):
        lo = length // 2
        a = {"x": _randn(rng, n, c, length), "gy": _randn(rng, n, c, lo)}
        ta = None
        if cl:
            ta, a = a, _swapped(a, ("x", "gy"))
        kw = dict(POOL, channels_last=cl)
        if op == "maxpool1d":
            def bwd(k, a, out, length=length, kw=kw):
                return k.bwd(a["gy"], out[1], length=length, **kw)

            def tf(torch, t, dev):
                f = torch.nn.functional.max_pool1d
                return lambda: f(t["x"], 2, 2, return_indices=True)[0], [t["x"]]
        else:
            def bwd(k, a, out, length=length, kw=kw):
                return k.bwd(a["gy"], length=length, **kw)

            def tf(torch, t, dev):
                return lambda: torch.nn.functional.avg_pool1d(t["x"], 2, 2), [t["x"]]
        shape = f"({n},{length},{c}) K=2 NLC" if cl else f"({n},{c},{length}) K=2"
        out.append(Case(op, shape, n, a, lambda k, a, kw=kw: k.fwd(a["x"], **kw), bwd, tf,
                        ("x",), n * c * lo * 4, torch_arrays=ta))
    return out


def _rnn_cases(op: str, n: int, seq_len: int, features: int, rng) -> list[Case]:
    g, h, d, t_len = GATES[op], HIDDEN, features, seq_len
    s = h ** -0.5
    a = {"x": _randn(rng, n, t_len, d), "h0": _randn(rng, n, h, scale=0.5)}
    if op == "lstm":
        a["c0"] = _randn(rng, n, h, scale=0.5)
    for name, shape in (("w_ih", (g * h, d)), ("w_hh", (g * h, h)), ("b_ih", (g * h,)),
                        ("b_hh", (g * h,))):
        a[name] = rng.uniform(-s, s, shape).astype(np.float32)
    a["gy"] = _randn(rng, n, t_len, h)
    weights = ("w_ih", "w_hh", "b_ih", "b_hh")
    if op == "lstm":
        a["gc"] = np.zeros((n, t_len, h), np.float32)   # cs unused downstream, as in a tower

        def fwd(k, a):
            return k.fwd(a["x"], a["h0"], a["c0"], *(a[w] for w in weights))

        def bwd(k, a, out):
            hs, cs, gates = out
            return k.bwd(a["gy"], a["gc"], a["x"], a["h0"], a["c0"], a["w_ih"], a["w_hh"],
                         hs, cs, gates)
    else:
        def fwd(k, a):
            return k.fwd(a["x"], a["h0"], *(a[w] for w in weights))

        def bwd(k, a, out):
            extra = (out,) if op == "rnn" else out          # rnn: hs; gru: (hs, gates)
            return k.bwd(a["gy"], a["x"], a["h0"], a["w_ih"], a["w_hh"], *extra)

    def tf(torch, t, dev):
        cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[op]
        mod = cls(d, h, batch_first=True).to(dev)
        with torch.no_grad():
            for w, name in zip(weights, ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0",
                                         "bias_hh_l0")):
                getattr(mod, name).copy_(t[w])
        states = [t["h0"], t["c0"]] if op == "lstm" else [t["h0"]]

        def f():
            if op == "lstm":
                return mod(t["x"], (t["h0"][None], t["c0"][None]))[0]
            return mod(t["x"], t["h0"][None])[0]
        return f, [t["x"], *states, *mod.parameters()]

    keys = ("x", "h0", "c0", *weights) if op == "lstm" else ("x", "h0", *weights)
    outs = (2 if op == "lstm" else 1) * n * t_len * h * 4   # hs (and cs)
    flops = 2 * n * t_len * g * h * (d + h)
    return [Case(op, f"{d}->{h} T={t_len}", n, a, fwd, bwd, tf, keys, outs, flops)]


def _row_cases(op: str, n: int, seq_len: int, features: int, rng) -> list[Case]:
    """softmax, log_softmax and the losses on (M, K) = (N, 10) rows."""
    x = _randn(rng, n, CLASSES, scale=2.0)
    shape = f"M={n} K={CLASSES}"
    if op in ("softmax", "log_softmax"):
        a = {"x": x, "gy": _randn(rng, n, CLASSES)}
        name = op

        def tf(torch, t, dev):
            return lambda: getattr(torch, name)(t["x"], -1), [t["x"]]
        return [Case(op, shape, n, a, lambda k, a: k.fwd(a["x"]),
                     lambda k, a, y: k.bwd(a["gy"], y), tf, ("x",), x.nbytes)]
    if op in ("cross_entropy", "soft_cross_entropy"):
        if op == "cross_entropy":
            target = rng.integers(0, CLASSES, n).astype(np.int64)
            keys = ("x",)
        else:
            e = np.exp(_randn(rng, n, CLASSES))
            target = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
            keys = ("x", "p")
        a = {"x": x, "p": target, "gy": _randn(rng, n)}

        def tf(torch, t, dev):
            f = torch.nn.functional.cross_entropy
            return lambda: f(t["x"], t["p"], reduction="none"), [t[k] for k in keys]

        def bwd(k, a, out):
            return k.bwd(a["gy"], a["x"], a["p"], out[1])
        return [Case(op, shape, n, a, lambda k, a: k.fwd(a["x"], a["p"]), bwd, tf, keys,
                     n * 4)]
    # elementwise losses: bce_with_logits (z, y), bce (p, y), mse (a, b)
    first, fname = {"bce_with_logits": (x, "binary_cross_entropy_with_logits"),
                    "bce": (rng.uniform(0.05, 0.95, (n, CLASSES)).astype(np.float32),
                            "binary_cross_entropy"),
                    "mse": (x, "mse_loss")}[op]
    second = (rng.random((n, CLASSES)) > 0.5).astype(np.float32)
    a = {"x": first, "y": second, "gy": _randn(rng, n, CLASSES)}
    keys = ("x", "y") if op == "mse" else ("x",)

    def tf(torch, t, dev):
        f = getattr(torch.nn.functional, fname)
        return lambda: f(t["x"], t["y"], reduction="none"), [t[k] for k in keys]
    return [Case(op, shape, n, a, lambda k, a: k.fwd(a["x"], a["y"]),
                 lambda k, a, out: k.bwd(a["gy"], a["x"], a["y"]), tf, keys, first.nbytes)]


_BUILDERS = {"conv1d": _conv_cases, "conv1d_relu": _conv_cases,
             "conv1d_relu_maxpool": _conv_cases, "maxpool1d": _pool_cases,
             "avgpool1d": _pool_cases, "rnn": _rnn_cases, "lstm": _rnn_cases,
             "gru": _rnn_cases}


def kernel_cases(op: str, batch: int, seq_len: int = 64, features: int = 32,
                 seed: int = 0) -> list[Case]:
    """The benchmark calls of ``op`` at batch ``batch``: the shapes it has in the article's
    network (conv and pool: both tower blocks; RNNs: features -> 64 over seq_len steps;
    softmax and losses: N rows of 10 classes). Same seed, same values."""
    rng = np.random.default_rng([seed, batch, sum(map(ord, op))])
    return _BUILDERS.get(op, _row_cases)(op, batch, seq_len, features, rng)


# --- minimtl and torch sides --------------------------------------------------------------
@dataclass
class Device:
    """Where one side runs: how arrays get there, how a call is timed, how to drain."""

    name: str                              # "cpu" or "cuda"
    to: Callable[[np.ndarray], Any]
    sample: Sampler
    sync: Callable[[], Any]


def _host_device() -> Device:
    return Device("cpu", lambda a: a, _cpu_sampler(), lambda: None)


def _cupy_device(cp) -> Device:
    return Device("cuda", cp.asarray, _cupy_sampler(cp),
                  lambda: cp.cuda.get_current_stream().synchronize())


def _torch_device(torch, name: str) -> Device:
    if name == "cpu":
        return Device("cpu", torch.from_numpy, _cpu_sampler(), lambda: None)
    return Device("cuda", lambda a: torch.from_numpy(a).to("cuda"), _torch_cuda_sampler(torch),
                  torch.cuda.synchronize)


def _first_call(fn: Callable[[], Any], dev: Device) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    dev.sync()
    return out, (time.perf_counter() - t0) * 1e3


def _first_calls(case: Case, k, a: dict, dev: Device) -> tuple[float, float]:
    """ms of one forward and one backward call, each drained (the first: compiles)."""
    out, first_fwd = _first_call(lambda: case.fwd(k, a), dev)
    _, first_bwd = _first_call(lambda: case.bwd(k, a, out), dev)
    return first_fwd, first_bwd


def bench_kernel(case: Case, k, dev: Device, cfg: argparse.Namespace) -> dict[str, Any]:
    """Time ``case`` on kernel module ``k``: first calls, forward, forward + backward."""
    a = {key: dev.to(v) for key, v in case.arrays.items()}
    first_fwd, first_bwd = _first_calls(case, k, a, dev)
    kw = dict(warmup=cfg.warmup, repeats=cfg.repeats, budget_s=cfg.budget)
    fwd = measure(lambda: case.fwd(k, a), dev.sample, **kw)
    fwdbwd = measure(lambda: case.bwd(k, a, case.fwd(k, a)), dev.sample, **kw)
    return {"first_fwd_ms": first_fwd, "first_bwd_ms": first_bwd, "fwd": fwd,
            "fwdbwd": fwdbwd}


def bench_torch_kernel(case: Case, torch, dev: Device,
                       cfg: argparse.Namespace) -> dict[str, Any]:
    """The same call in PyTorch: forward (graph recorded), forward + autograd.grad."""
    src = case.arrays if case.torch_arrays is None else case.torch_arrays
    t = {key: dev.to(v) for key, v in src.items()}
    for key in case.grad_keys:
        t[key].requires_grad_(True)
    f, leaves = case.torch(torch, t, dev.name)

    def fwdbwd():
        torch.autograd.grad(f(), leaves, t["gy"])

    fwdbwd()
    kw = dict(warmup=cfg.warmup, repeats=cfg.repeats, budget_s=cfg.budget)
    return {"fwd": measure(f, dev.sample, **kw), "fwdbwd": measure(fwdbwd, dev.sample, **kw)}


def _fixed_batch(batch: int, seq_len: int, features: int, seed: int = 0):
    rng = np.random.default_rng([seed, batch])
    inputs = {t: rng.standard_normal((batch, seq_len, features)).astype(np.float32)
              for t in TASKS}
    targets = {"user": rng.integers(0, CLASSES, batch),
               "goods": (rng.random((batch, CLASSES)) > 0.5).astype(np.float32),
               "ads": rng.integers(0, CLASSES, batch)}
    return inputs, targets


def minimtl_step(backend: str, batch: int, seq_len: int, features: int
                 ) -> tuple[Callable[[], None], int]:
    """One training step of the default ``MultiTaskNet`` on a fixed random batch: forward,
    the three losses, backward, Adam step. Returns (step, parameter count)."""
    from .models import MultiTaskNet
    from .optim import Adam
    from .train import to_tensors

    model = MultiTaskNet(seq_len, features, backend=backend, dtype=np.float32)
    opt = Adam(list(model.parameters()), lr=1e-3)
    x, y = to_tensors(model, *_fixed_batch(batch, seq_len, features))

    def step() -> None:
        opt.zero_grad()
        total = model.total_loss(model.losses(model(x), y))
        total.backward()
        opt.step()
    return step, model.num_parameters()


def torch_step(torch, device: str, batch: int, seq_len: int, features: int
               ) -> tuple[Callable[[], None], int]:
    """The same network and step in PyTorch (written to mirror MultiTaskNet's default
    configuration: three conv towers, concatenation, three Linear(…, 10) heads)."""
    nn, F = torch.nn, torch.nn.functional
    torch.manual_seed(0)
    flat = 128 * (((seq_len - 2) // 2 - 2) // 2)

    def tower():
        return nn.Sequential(nn.Conv1d(features, 64, 3), nn.ReLU(), nn.MaxPool1d(2),
                             nn.Conv1d(64, 128, 3), nn.ReLU(), nn.MaxPool1d(2), nn.Flatten())

    towers = nn.ModuleList([tower() for _ in TASKS]).to(device)
    heads = nn.ModuleList([nn.Linear(3 * flat, CLASSES) for _ in TASKS]).to(device)
    params = [*towers.parameters(), *heads.parameters()]
    opt = torch.optim.Adam(params, lr=1e-3)
    inputs, targets = _fixed_batch(batch, seq_len, features)
    xs = [torch.from_numpy(inputs[t]).to(device).permute(0, 2, 1) for t in TASKS]
    y = {t: torch.from_numpy(np.asarray(targets[t])).to(device) for t in TASKS}

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        z = torch.cat([tw(x) for tw, x in zip(towers, xs)], dim=1)
        user, goods, ads = (hd(z) for hd in heads)
        loss = (F.cross_entropy(user, y["user"])
                + F.binary_cross_entropy_with_logits(goods, y["goods"])
                + F.cross_entropy(ads, y["ads"]))
        loss.backward()
        opt.step()
    return step, sum(p.numel() for p in params)


# --- the run ------------------------------------------------------------------------------
class Run:
    """Holds the options and collects results; each phase below adds to ``self.r``."""

    def __init__(self, cfg: argparse.Namespace) -> None:
        self.cfg = cfg
        self.r: dict[str, Any] = {"kernels": [], "torch_kernels": [], "compile": [],
                                  "steps": [], "matmul": [], "errors": []}
        self.torch = None
        self.cp = None
        self.crashed: dict[tuple[str, str], str] = {}   # (backend, probe item) -> why
        self.first_calls: dict[tuple[str, str], dict] = {}  # (backend, op) -> probe's times
        self.cache_before: dict[str, str] = {}              # op -> Numba cache state at start

    def save(self, t0: float, complete: bool = False) -> None:
        """Write ``<out>/<name>.json`` and ``.md`` with what has been measured so far."""
        r = self.r
        _join(r, self.cfg)
        r["machine"] = _machine(r, self.torch)
        r["complete"] = complete
        r["wall_s"] = time.perf_counter() - t0
        out = Path(self.cfg.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{r['name']}.json").write_text(json.dumps(_clean(r), indent=1) + "\n")
        (out / f"{r['name']}.md").write_text(to_markdown(r))

    def probe(self, backend: str, batches: list[int]) -> None:
        """Call each kernel (and one training step per batch) once in a child process, so
        that a kernel that kills its process (a segfault, an illegal address, a hang) is
        found, recorded and skipped instead of ending the whole run. The child's calls are
        the first ones, so their times are kept as the first-call (compile) times."""
        cfg = self.cfg
        if backend == "numba":     # before the child writes cache files
            self.cache_before = {op: self._numba_cache(op) for op in cfg.ops}
        if cfg.probe is False or (cfg.probe is None and backend == "numpy"):
            return
        items = [f"kernel:{op}" for op in cfg.ops if cfg.kernels]
        items += [f"step:{b}" for b in batches if cfg.step]
        items += ["step:32"] if backend != "cupy" and cfg.memory_steps > 0 else []
        items = list(dict.fromkeys(items))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in (str(_REPO), os.environ.get("PYTHONPATH", "")) if p))
        while items:
            _log(f"probe {backend}: {len(items)} item(s) in a child process")
            cmd = [sys.executable, "-m", "minimtl.bench", "--probe-child", backend,
                   "--probe-items", ",".join(items), "--batches", ",".join(map(str, batches)),
                   "--seq-len", str(cfg.seq_len), "--features", str(cfg.features)]
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, env=env,
                                      timeout=cfg.probe_timeout)
                rc, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
            except subprocess.TimeoutExpired as e:
                rc = None
                stdout = e.stdout.decode() if isinstance(e.stdout, bytes) else e.stdout or ""
                stderr = ""
            started = None
            for line in stdout.splitlines():
                if line.startswith("start "):
                    started = line[6:]
                elif line.startswith("done "):
                    item, _, info = line[5:].partition(" ")
                    started = None
                    info = json.loads(info or "{}")
                    if item.startswith("kernel:") and "first_fwd_ms" in info:
                        self.first_calls[(backend, item[7:])] = info
            if rc == 0:
                return
            if rc is None:
                why = f"no answer within {cfg.probe_timeout:.0f} s"
            elif rc < 0:
                why = f"killed by signal {-rc} ({signal.Signals(-rc).name})"
            else:
                why = f"exit status {rc}"
            if started is None:          # died outside any item: give up probing
                tail = (stderr.strip().splitlines() or [""])[-1][:200]
                self.error("probe", RuntimeError(f"child process failed ({why}): {tail}"),
                           backend=backend)
                return
            self.crashed[(backend, started)] = f"crashed its process in the probe ({why})"
            _log(f"  ! probe {backend} {started}: {why}")
            items = items[items.index(started) + 1:]

    def skip_crashed(self, backend: str, item: str, **about: Any) -> bool:
        why = self.crashed.get((backend, item))
        if why is not None:
            self.error(item.split(":")[0], RuntimeError(why), backend=backend, **about)
        return why is not None

    def error(self, where: str, e: BaseException, **about: Any) -> None:
        rec = {"where": where, **about, "error": _error_text(e)}
        self.r["errors"].append(rec)
        _log(f"  ! {where} {' '.join(f'{k}={v}' for k, v in about.items())}: {rec['error']}")

    def cases(self, op: str, batch: int) -> list[Case]:
        return kernel_cases(op, batch, self.cfg.seq_len, self.cfg.features)

    # phases ---------------------------------------------------------------------------
    def matmul_peak(self, device: str) -> None:
        n = self.cfg.matmul_n if device == "cpu" else 2 * self.cfg.matmul_n
        rng = np.random.default_rng(0)
        a, b = _randn(rng, n, n), _randn(rng, n, n)
        if device == "cpu":
            fn, sample = (lambda: np.matmul(a, b)), _cpu_sampler()
        else:
            cp = self.cp
            a, b = cp.asarray(a), cp.asarray(b)
            fn, sample = (lambda: cp.matmul(a, b)), _cupy_sampler(cp)
        t = measure(fn, sample, warmup=2, repeats=max(3, min(self.cfg.repeats, 10)))
        gflops = 2.0 * n**3 / t["median_ms"] / 1e6
        self.r["matmul"].append({"device": device, "n": n, "dtype": "float32", **t,
                                 "gflops": gflops})
        _log(f"matmul {device} float32 {n}x{n}: {t['median_ms']:.2f} ms, {gflops:.0f} GFLOP/s")

    def torch_kernels(self, dev: Device, batches: list[int]) -> None:
        for op in self.cfg.ops:
            for batch in batches:
                for case in self.cases(op, batch):
                    try:
                        res = bench_torch_kernel(case, self.torch, dev, self.cfg)
                    except Exception as e:
                        self.error("torch kernel", e, op=op, shape=case.shape, batch=batch,
                                   device=dev.name)
                        continue
                    self.r["torch_kernels"].append(self._kernel_record(case, dev, res))
                    _log(f"torch {dev.name:4} {op:18} {case.shape:18} "
                         f"fwd {res['fwd']['median_ms']:.4f} ms, "
                         f"fwd+bwd {res['fwdbwd']['median_ms']:.4f} ms")

    def kernels(self, backend: str, dev: Device, batches: list[int]) -> None:
        import kernels

        for op in self.cfg.ops:
            if self.skip_crashed(backend, f"kernel:{op}", op=op):
                continue
            try:
                k = kernels.get(op, backend)
            except Exception as e:
                self.error("kernel import", e, op=op, backend=backend)
                continue
            cache = (self.cache_before.get(op) or self._numba_cache(op)
                     if backend == "numba" else None)
            first = True
            for batch in batches:
                for case in self.cases(op, batch):
                    try:
                        res = bench_kernel(case, k, dev, self.cfg)
                    except Exception as e:
                        self.error("kernel", e, op=op, backend=backend, shape=case.shape,
                                   batch=batch)
                        continue
                    self.r["kernels"].append(
                        self._kernel_record(case, dev, res, backend=backend))
                    note = ""
                    if first:
                        fc = self.first_calls.get((backend, op), res)
                        self.r["compile"].append(
                            {"op": op, "backend": backend, "shape": case.shape, "batch": batch,
                             "first_fwd_ms": fc["first_fwd_ms"],
                             "first_bwd_ms": fc["first_bwd_ms"],
                             "where": "probe process" if fc is not res else "this process",
                             "steady_fwd_ms": res["fwd"]["median_ms"],
                             "steady_fwdbwd_ms": res["fwdbwd"]["median_ms"], "cache": cache})
                        note = (f", first calls {fc['first_fwd_ms']:.0f} + "
                                f"{fc['first_bwd_ms']:.0f} ms")
                        first = False
                    _log(f"{backend:6} {op:18} {case.shape:18} "
                         f"fwd {res['fwd']['median_ms']:.4f} ms, "
                         f"fwd+bwd {res['fwdbwd']['median_ms']:.4f} ms{note}")

    def _numba_cache(self, op: str) -> str:
        if self.cfg.numba_cold:
            return "cold (fresh cache folder)"
        folder = _REPO / "kernels" / op / "__pycache__"
        found = folder.is_dir() and any(folder.glob("numba_cpu.*.nbi"))
        return "cache files found" if found else "no cache files"

    @staticmethod
    def _kernel_record(case: Case, dev: Device, res: dict, backend: str | None = None
                       ) -> dict[str, Any]:
        rec: dict[str, Any] = {"op": case.op, "shape": case.shape, "batch": case.batch}
        if backend:
            rec["backend"] = backend
        rec["device"] = dev.name
        rec.update(res)
        fwd_ms, fb_ms = res["fwd"]["median_ms"], res["fwdbwd"]["median_ms"]
        rec.update(flops_fwd=case.flops, bytes_fwd=case.bytes_fwd,
                   bytes_fwdbwd=case.bytes_fwdbwd,
                   gbps_fwd=case.bytes_fwd / fwd_ms / 1e6,
                   gbps_fwdbwd=case.bytes_fwdbwd / fb_ms / 1e6)
        if case.flops:
            rec.update(gflops_fwd=case.flops / fwd_ms / 1e6,
                       gflops_fwdbwd=3 * case.flops / fb_ms / 1e6)
        return rec

    def steps(self, system: str, backend: str, dev: Device, batches: list[int]) -> None:
        cfg = self.cfg
        warmup, repeats = cfg.step_warmup, cfg.step_repeats
        if backend == "numpy":
            warmup, repeats = min(warmup, 2), cfg.reference_repeats
        for batch in batches:
            if system == "minimtl" and self.skip_crashed(backend, f"step:{batch}", batch=batch):
                continue
            try:
                if system == "torch":
                    step, params = torch_step(self.torch, dev.name, batch, cfg.seq_len,
                                              cfg.features)
                else:
                    step, params = minimtl_step(backend, batch, cfg.seq_len, cfg.features)
                step()
                t = measure(step, _wall_sampler(dev.sync), warmup=warmup, repeats=repeats)
            except Exception as e:
                self.error("step", e, system=system, backend=backend, batch=batch)
                continue
            self.r["steps"].append({"system": system, "backend": backend, "device": dev.name,
                                    "batch": batch, "params": params, **t,
                                    "samples_per_s": batch / t["median_ms"] * 1e3})
            _log(f"step {system} {backend:6} batch {batch:5}: {t['median_ms']:.2f} ms "
                 f"(min {t['min_ms']:.2f}), {batch / t['median_ms'] * 1e3:,.0f} samples/s")

    def memory(self, backend: str) -> None:
        cfg = self.cfg
        batch = 32
        if self.crashed.get((backend, "step:32")):
            self.error("memory", RuntimeError("the training step crashed in the probe"),
                       backend=backend, batch=batch)
            return
        try:
            step, _ = minimtl_step(backend, batch, cfg.seq_len, cfg.features)
            for _ in range(10):
                step()
            value, source = rss_mib()
            samples = [(0, value)]
            for i in range(1, cfg.memory_steps + 1):
                step()
                if i % cfg.memory_every == 0 or i == cfg.memory_steps:
                    samples.append((i, rss_mib()[0]))
        except Exception as e:
            self.error("memory", e, backend=backend, batch=batch)
            return
        values = [v for _, v in samples]
        self.r["memory"] = {"backend": backend, "batch": batch, "steps": cfg.memory_steps,
                            "source": source, "samples": samples, "first_mib": values[0],
                            "last_mib": values[-1], "max_mib": max(values),
                            "growth_mib": values[-1] - values[0]}
        _log(f"memory {backend} {cfg.memory_steps} steps: {values[0]:.1f} -> "
             f"{values[-1]:.1f} MiB (max {max(values):.1f})")

    def copy_bandwidth(self) -> None:
        cp = self.cp
        n = self.cfg.copy_mib * 2**20 // 4
        pair = [cp.ones(n, dtype=cp.float32), cp.empty(n, dtype=cp.float32)]
        t = measure(lambda: cp.copyto(pair[1], pair[0]), _cupy_sampler(cp), warmup=3,
                    repeats=max(3, min(self.cfg.repeats, 20)))
        pair.clear()
        cp.get_default_memory_pool().free_all_blocks()
        gbps = 2 * n * 4 / t["median_ms"] / 1e6
        self.r["gpu"]["copy"] = {"mib": self.cfg.copy_mib, **t, "gbps": gbps}
        _log(f"device copy {self.cfg.copy_mib} MiB: {gbps:,.0f} GB/s (read + written)")


def _probe_child(cfg: argparse.Namespace) -> int:
    """The child side of ``Run.probe``: each item once, a ``start``/``done`` line apiece."""
    import kernels

    backend = cfg.probe_child
    dev = _cupy_device(_cupy_or_none()) if backend == "cupy" else _host_device()
    for item in cfg.probe_items.split(","):
        kind, _, what = item.partition(":")
        print(f"start {item}", flush=True)
        info: dict[str, Any] = {}
        try:
            if kind == "kernel":
                k = kernels.get(what, backend)
                for batch in cfg.batches:
                    for case in kernel_cases(what, batch, cfg.seq_len, cfg.features):
                        a = {key: dev.to(v) for key, v in case.arrays.items()}
                        t_fwd, t_bwd = _first_calls(case, k, a, dev)
                        info = info or {"first_fwd_ms": t_fwd, "first_bwd_ms": t_bwd}
            else:
                step, _ = minimtl_step(backend, int(what), cfg.seq_len, cfg.features)
                step()
                dev.sync()
        except Exception as e:   # not a crash: the main process meets and records it
            info = {"error": _error_text(e)}
        print(f"done {item} {json.dumps(info)}", flush=True)
    return 0


def _import_torch(threads: int):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def _gpu_info(cp) -> dict[str, Any]:
    props = cp.cuda.runtime.getDeviceProperties(0)
    name = props["name"]
    name = name.decode() if isinstance(name, bytes) else str(name)
    return {"name": name, "memory_gib": round(props["totalGlobalMem"] / 2**30, 1),
            "multiprocessors": props.get("multiProcessorCount"),
            "cupy": cp.__version__, "cuda_runtime": cp.cuda.runtime.runtimeGetVersion()}


def _cupy_or_none():
    try:
        import cupy as cp

        return cp if cp.is_available() else None
    except Exception:  # no cupy, no driver, no device: all mean "no GPU here"
        return None


def run(cfg: argparse.Namespace) -> dict[str, Any]:
    """Run every phase ``cfg`` asks for and return the results (see ``main`` for options).

    The results files are rewritten after each phase (``"complete": false`` until the end),
    so a run that is killed still leaves what it measured.
    """
    if cfg.numba_cold:
        if "numba" in sys.modules:
            _log("--numba-cold: numba is already imported; its cache folder stays as it is")
        else:
            os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="minimtl-numba-")
    t0 = time.perf_counter()
    run_ = Run(cfg)
    r = run_.r
    r["allocator"] = tune_malloc(cfg.malloc_tuned)
    cp = _cupy_or_none() if "cupy" in cfg.backends else None
    if "cupy" in cfg.backends and cp is None:
        run_.error("backend", RuntimeError("cupy or a CUDA device is missing"), backend="cupy")
    if cp is not None:
        r["gpu"] = _gpu_info(cp)
        _log(f"GPU: {r['gpu']['name']}")
    run_.cp = cp
    r["name"] = cfg.name or _default_name(r, cfg)
    r["settings"] = {k: v for k, v in vars(cfg).items() if k not in ("summary", "out", "name")}
    cpu_backends = [b for b in cfg.backends if b != "cupy"]
    torch = None if cfg.no_torch else _import_torch(cfg.threads)
    run_.torch = torch
    threads: dict[str, Any] = {"requested": cfg.threads}
    if torch is not None:
        threads["torch_before"] = torch.get_num_threads()
    r["threads"] = threads

    if cpu_backends:
        run_.matmul_peak("cpu")
        if torch is not None:                       # torch first, before Numba's pool starts
            host = _torch_device(torch, "cpu")
            if cfg.kernels:
                run_.torch_kernels(host, cfg.batches)
            if cfg.step:
                run_.steps("torch", "torch", host, cfg.batches)
            run_.save(t0)
        for backend in cpu_backends:
            run_.probe(backend, cfg.batches)
        if "numba" in cpu_backends:
            try:
                import numba

                import kernels

                kernels.configure_numba()  # before set_num_threads starts the thread pool
                numba.set_num_threads(min(cfg.threads, numba.config.NUMBA_NUM_THREADS))
                threads["numba"] = numba.get_num_threads()
            except Exception as e:
                run_.error("numba threads", e)
        for backend in cpu_backends:
            if cfg.kernels:
                run_.kernels(backend, _host_device(), cfg.batches)
                run_.save(t0)
        for backend in sorted(cpu_backends, key=lambda b: b != "numba"):   # numba first
            if cfg.step:
                run_.steps("minimtl", backend, _host_device(), cfg.batches)
        if cfg.memory_steps > 0:
            run_.memory("numba" if "numba" in cpu_backends else cpu_backends[0])
        if torch is not None:
            threads["torch_after"] = torch.get_num_threads()
        run_.save(t0)

    if cp is not None:
        run_.copy_bandwidth()
        run_.matmul_peak("cuda")
        if torch is not None and torch.cuda.is_available():
            r["gpu"]["torch_cudnn"] = torch.backends.cudnn.version()
            cuda = _torch_device(torch, "cuda")
            if cfg.kernels:
                run_.torch_kernels(cuda, cfg.gpu_batches)
            if cfg.step:
                run_.steps("torch", "torch", cuda, cfg.gpu_batches)
        elif torch is not None:
            run_.error("torch cuda", RuntimeError("torch.cuda.is_available() is False"))
        run_.save(t0)
        run_.probe("cupy", cfg.gpu_batches)
        if cfg.kernels:
            run_.kernels("cupy", _cupy_device(cp), cfg.gpu_batches)
            run_.save(t0)
        if cfg.step:
            run_.steps("minimtl", "cupy", _cupy_device(cp), cfg.gpu_batches)
    run_.save(t0, complete=True)
    return r


def _join(r: dict[str, Any], cfg: argparse.Namespace) -> None:
    """Put torch's numbers and the ratios next to minimtl's; Keras's external ones too."""
    torch_k = {(t["op"], t["shape"], t["batch"], t["device"]): t for t in r["torch_kernels"]}
    for rec in r["kernels"]:
        t = torch_k.get((rec["op"], rec["shape"], rec["batch"], rec["device"]))
        if t is not None:
            for part in ("fwd", "fwdbwd"):
                rec[f"torch_{part}_ms"] = t[part]["median_ms"]
                rec[f"ratio_{part}"] = t[part]["median_ms"] / rec[part]["median_ms"]
    torch_s = {(s["batch"], s["device"]): s for s in r["steps"] if s["system"] == "torch"}
    keras = {32: cfg.keras_ms_32, 256: cfg.keras_ms_256}
    r["keras"] = {str(b): ms for b, ms in keras.items() if ms is not None}
    for s in r["steps"]:
        if s["system"] != "minimtl":
            continue
        t = torch_s.get((s["batch"], s["device"]))
        if t is not None:
            s["torch_ms"] = t["median_ms"]
            s["ratio_torch"] = t["median_ms"] / s["median_ms"]
        if s["device"] == "cpu" and keras.get(s["batch"]) is not None:
            s["keras_ms"] = keras[s["batch"]]
            s["ratio_keras"] = keras[s["batch"]] / s["median_ms"]


def _machine(r: dict[str, Any], torch) -> dict[str, Any]:
    m: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": _cpu_model(), "arch": platform.machine(), "cores": _cores(),
        "os": platform.system(), "python": platform.python_version(),
        "numpy": np.__version__, "blas": _blas()}
    if "numba" in sys.modules:
        m["numba"] = sys.modules["numba"].__version__
    if torch is not None:
        m["torch"] = torch.__version__
    if "gpu" in r:
        m["gpu"] = r["gpu"]["name"]
    return m


# --- reports ------------------------------------------------------------------------------
def _ms(x: float | None) -> str:
    if x is None:
        return "–"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    if x >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}" if x >= 0.1 else f"{x:.4f}"


def _num(x: float | None, fmt: str = ",.0f") -> str:
    return "–" if x is None else format(x, fmt)


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(" --- " for _ in head) + "|"]
    return out + ["| " + " | ".join(row) + " |" for row in rows]


def to_markdown(r: dict[str, Any]) -> str:
    """The readable report of a results dict (``run``'s, or a JSON file read back)."""
    m, th, s = r["machine"], r.get("threads", {}), r.get("settings", {})
    alloc = r.get("allocator", {})
    out = [f"# minimtl benchmarks: {r.get('name', '')}", "",
           f"- date {m['date']}; CPU {m['cpu']}, {m['cores']} cores, {m['arch']}",
           f"- threads: requested {th.get('requested')}, torch {th.get('torch_before', '–')}"
           f" (after the Numba phase: {th.get('torch_after', '–')}), numba "
           f"{th.get('numba', '–')}",
           f"- numpy {m['numpy']} (BLAS {m['blas'].get('name', '?')} "
           f"{m['blas'].get('version', '')}), numba {m.get('numba', '–')}, "
           f"torch {m.get('torch', '–')}",
           "- allocator: " + ("glibc mmap_threshold 256 MiB, trim_threshold 1 GiB (mallopt)"
                              if alloc.get("malloc_tuned") else
                              f"default ({alloc.get('reason', 'mallopt refused')})")]
    if s:
        out.append(f"- shapes: seq_len {s.get('seq_len')}, features {s.get('features')}; "
                   f"kernel repeats {s.get('repeats')} after {s.get('warmup')} warm-up "
                   f"(at most {s.get('budget')} s each); step: median of "
                   f"{s.get('step_repeats')} after {s.get('step_warmup')} warm-up "
                   f"(numpy reference: {s.get('reference_repeats')}); batches "
                   f"{s.get('batches')} on the CPU, {s.get('gpu_batches')} on the GPU")
    if "gpu" in r:
        g = r["gpu"]
        out.append(f"- GPU {g['name']}, {g.get('memory_gib')} GiB, cupy {g.get('cupy')}, "
                   f"CUDA runtime {g.get('cuda_runtime')}, cuDNN {g.get('torch_cudnn', '–')}")
    for mm in r.get("matmul", []):
        out.append(f"- float32 matmul peak ({mm['device']}, {mm['n']}x{mm['n']}): "
                   f"{mm['gflops']:,.0f} GFLOP/s")
    if th.get("torch_after") not in (None, th.get("torch_before")):
        out.append("- WARNING: torch's thread count changed during the run")

    steps = [x for x in r.get("steps", []) if x["system"] == "minimtl"]
    torch_only = [x for x in r.get("steps", []) if x["system"] == "torch"]
    if steps or torch_only:
        out += ["", "## Training step (MultiTaskNet: forward, 3 losses, backward, Adam)", "",
                "ratio = other ms / minimtl ms (> 1: minimtl faster). Keras: measured by "
                "the user with the Keras reference script (external, same machine).", ""]
        rows = [[x["backend"], str(x["batch"]), _ms(x["median_ms"]),
                 f"{_ms(x['min_ms'])}–{_ms(x['max_ms'])}", _num(x["samples_per_s"]),
                 _ms(x.get("torch_ms")), _num(x.get("ratio_torch"), ".2f"),
                 _ms(x.get("keras_ms")), _num(x.get("ratio_keras"), ".2f")] for x in steps]
        rows += [[f"torch ({x['device']})", str(x["batch"]), _ms(x["median_ms"]),
                  f"{_ms(x['min_ms'])}–{_ms(x['max_ms'])}", _num(x["samples_per_s"]),
                  "", "", "", ""] for x in torch_only]
        out += _table(["backend", "batch", "ms/step", "min–max", "samples/s",
                       "torch ms/step", "torch/minimtl", "keras ms (external)",
                       "keras/minimtl"], rows)
        params = {x["params"] for x in r["steps"]}
        out += ["", f"Parameters: {', '.join(f'{p:,}' for p in sorted(params))}"
                + (" (minimtl and torch differ!)" if len(params) > 1 else "")]

    if r.get("kernels") or r.get("torch_kernels"):
        out += ["", "## Kernels (float32, median ms)", "",
                "GFLOP/s: forward + backward (3x the forward's matmul flops) over the "
                "fwd+bwd time. ratio = torch fwd+bwd ms / minimtl fwd+bwd ms "
                "(> 1: minimtl faster); torch on the same device.", ""]
        rows = []
        have = {(k["op"], k["shape"], k["batch"], k["device"]) for k in r["kernels"]}
        recs = list(r["kernels"]) + [dict(t, backend="(torch only)")
                                     for t in r["torch_kernels"]
                                     if (t["op"], t["shape"], t["batch"], t["device"])
                                     not in have]
        order = {op: i for i, op in enumerate(r.get("settings", {}).get("ops", []))}
        shapes: dict[str, int] = {}                  # the order the shapes were run in
        for k in recs:
            shapes.setdefault(k["shape"].replace(f"({k['batch']},", "(N,"), len(shapes))
        recs.sort(key=lambda k: (order.get(k["op"], 99), k["device"], k["batch"],
                                 shapes[k["shape"].replace(f"({k['batch']},", "(N,")],
                                 k["backend"]))
        for k in recs:
            only = k["backend"] == "(torch only)"
            rows.append([k["op"], k["shape"], k["backend"], str(k["batch"]),
                         "–" if only else _ms(k["fwd"]["median_ms"]),
                         "–" if only else _ms(k["fwdbwd"]["median_ms"]),
                         "–" if only else _num(k.get("gflops_fwdbwd"), ".1f"),
                         _ms(k["fwdbwd"]["median_ms"] if only else k.get("torch_fwdbwd_ms")),
                         _num(k.get("ratio_fwdbwd"), ".2f")])
        out += _table(["kernel", "shape", "backend", "batch", "fwd ms", "fwd+bwd ms",
                       "GFLOP/s", "torch fwd+bwd ms", "ratio"], rows)

    comp = [c for c in r.get("compile", []) if c["backend"] != "numpy"]
    if comp:
        out += ["", "## First calls (Numba: compile or cache load; CUDA: NVRTC compile or "
                "CuPy's kernel cache)", ""]
        out += _table(["kernel", "backend", "first fwd ms", "first bwd ms", "steady fwd ms",
                       "steady fwd+bwd ms", "Numba cache at start", "first calls in"],
                      [[c["op"], c["backend"], _ms(c["first_fwd_ms"]), _ms(c["first_bwd_ms"]),
                        _ms(c["steady_fwd_ms"]), _ms(c["steady_fwdbwd_ms"]),
                        c.get("cache") or "–", c.get("where", "–")] for c in comp])

    if "gpu" in r and "copy" in r["gpu"]:
        copy = r["gpu"]["copy"]["gbps"]
        cuda = [k for k in r["kernels"] + r["torch_kernels"] if k["device"] == "cuda"]
        top = max((k["batch"] for k in cuda), default=None)
        rows = []
        torch_k = {(t["op"], t["shape"], t["batch"]): t for t in r["torch_kernels"]
                   if t["device"] == "cuda"}
        for k in r["kernels"]:
            if k["device"] == "cuda" and k["batch"] == top and k["op"] in MEMORY_BOUND:
                t = torch_k.get((k["op"], k["shape"], k["batch"]))
                rows.append([k["op"], k["shape"], _ms(k["fwd"]["median_ms"]),
                             _num(k["gbps_fwd"]), f"{100 * k['gbps_fwd'] / copy:.1f}%",
                             _num(k["gbps_fwdbwd"]), f"{100 * k['gbps_fwdbwd'] / copy:.1f}%",
                             _num(t["gbps_fwd"] if t else None),
                             f"{100 * t['gbps_fwd'] / copy:.1f}%" if t else "–"])
        out += ["", "## GPU bandwidth", "",
                f"Device-to-device copy: {copy:,.0f} GB/s (bytes read + written)."]
        if rows:
            out += [f"Memory-bound kernels at batch {top}: bytes = every input read once and "
                    "every result written once (a lower bound), over the median time.", ""]
            out += _table(["kernel", "shape", "fwd ms", "fwd GB/s", "of copy",
                           "fwd+bwd GB/s", "of copy", "torch fwd GB/s", "of copy"], rows)

    mem = r.get("memory")
    if mem:
        out += ["", f"## Memory ({mem['steps']} training steps, batch {mem['batch']}, "
                f"{mem['backend']}, {mem['source']})", ""]
        out += _table(["first MiB", "last MiB", "max MiB", "growth MiB"],
                      [[f"{mem['first_mib']:.1f}", f"{mem['last_mib']:.1f}",
                        f"{mem['max_mib']:.1f}", f"{mem['growth_mib']:+.1f}"]])

    if r.get("errors"):
        out += ["", "## Skipped or failed", ""]
        for e in r["errors"]:
            about = ", ".join(f"{k} {v}" for k, v in e.items() if k not in ("where", "error"))
            out.append(f"- {e['where']}" + (f" ({about})" if about else "") + f": {e['error']}")
    return "\n".join(out) + "\n"


def summary(r: dict[str, Any]) -> str:
    """A short table of a results dict: training steps, copy bandwidth, failures."""
    lines = [f"{r.get('name', '')}: {r['machine'].get('gpu') or r['machine']['cpu']}"]
    lines.append(f"{'system':<16} {'batch':>6} {'ms/step':>9} {'samples/s':>11} {'vs torch':>9}")
    for s in r.get("steps", []):
        who = f"{s['system']} {s['backend']}" if s["system"] == "minimtl" else \
            f"torch {s['device']}"
        ratio = _num(s.get("ratio_torch"), ".2f")
        lines.append(f"{who:<16} {s['batch']:>6} {_ms(s['median_ms']):>9} "
                     f"{s['samples_per_s']:>11,.0f} {ratio:>9}")
    if "gpu" in r and "copy" in r["gpu"]:
        lines.append(f"device copy: {r['gpu']['copy']['gbps']:,.0f} GB/s")
    timed = {(k["op"], k.get("backend")) for k in r.get("kernels", [])}
    lines.append(f"kernels timed: {len(r.get('kernels', []))} records over {len(timed)} "
                 f"op/backend pairs; torch: {len(r.get('torch_kernels', []))}; "
                 f"errors: {len(r.get('errors', []))}")
    return "\n".join(lines)


# --- command line -------------------------------------------------------------------------
def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="minimtl bench", description=__doc__.split("\n")[0])
    a = p.add_argument
    a("--out", default=str(Path("benchmarks") / "results"), help="output folder")
    a("--name", default=None, help="file name stem (default: cpu-<cores>core, or the "
      "GPU's name with --gpu-only)")
    a("--batches", type=_ints, default=[32, 256], help="CPU batch sizes (32,256)")
    a("--gpu-batches", type=_ints, default=[32, 256, 4096],
      help="GPU batch sizes (32,256,4096)")
    a("--seq-len", type=int, default=64, help="sequence length (64)")
    a("--features", type=int, default=32, help="features per step (32)")
    a("--ops", default=None, help="comma-separated operators (default: all of kernels.OPS)")
    a("--backends", default=None,
      help="comma-separated minimtl backends (default: every available one)")
    a("--threads", type=int, default=None,
      help="threads for Numba and torch (default: the CPU cores this process may use)")
    a("--repeats", type=int, default=None, help="timed kernel calls (20)")
    a("--warmup", type=int, default=None, help="warm-up kernel calls (3)")
    a("--budget", type=float, default=None,
      help="stop a kernel measurement after this many seconds of samples (2)")
    a("--step-repeats", type=int, default=None, help="timed training steps (60)")
    a("--step-warmup", type=int, default=None, help="warm-up training steps (10)")
    a("--reference-repeats", type=int, default=None,
      help="timed steps on the slow numpy reference backend (10)")
    a("--no-kernels", dest="kernels", action="store_false", help="skip the kernels")
    a("--no-step", dest="step", action="store_false", help="skip the training step")
    a("--no-torch", action="store_true", help="do not time PyTorch")
    a("--gpu-only", action="store_true", help="only the cupy backend and torch on CUDA")
    a("--quick", action="store_true", help="one repeat, no warm-up, small matmul (smoke)")
    a("--keras-ms-32", type=float, default=None,
      help="Keras ms/step at batch 32, measured with the Keras reference script")
    a("--keras-ms-256", type=float, default=None, help="the same at batch 256")
    a("--memory-steps", type=int, default=0,
      help="run this many steps at batch 32 and record resident memory (0: off)")
    a("--memory-every", type=int, default=100, help="record memory every this many steps")
    a("--malloc-tuned", action=argparse.BooleanOptionalAction, default=True,
      help="raise glibc's mmap/trim thresholds for the whole process (default on)")
    a("--numba-cold", action="store_true",
      help="compile Numba kernels into a fresh cache folder, so first calls are compiles")
    a("--matmul-n", type=int, default=None, help="matmul peak size on the CPU (2048)")
    a("--copy-mib", type=int, default=None, help="GPU copy size in MiB (1024)")
    a("--probe", action=argparse.BooleanOptionalAction, default=None,
      help="call each kernel and step once in a child process first, so one that crashes "
      "its process is skipped (default: numba and cupy; --probe: numpy too)")
    a("--probe-timeout", type=float, default=600.0, help="seconds a probe child may take")
    a("--probe-child", default=None, help=argparse.SUPPRESS)
    a("--probe-items", default="", help=argparse.SUPPRESS)
    a("--summary", metavar="JSON", default=None,
      help="print the short summary of an earlier results file and exit")
    a("--add-keras", metavar="JSON", default=None,
      help="put the Keras times given by --keras-ms-32/--keras-ms-256 (measured by the "
      "reference script in the same sitting) next to an earlier results file's steps, "
      "rewrite its .json and .md, and exit")
    return p


def add_keras(path: str, cfg: argparse.Namespace) -> dict[str, Any]:
    """Rewrite the results file ``path`` (and its .md) with Keras's step times and ratios."""
    src = Path(path)
    r = json.loads(src.read_text())
    _join(r, cfg)
    src.write_text(json.dumps(_clean(r), indent=1) + "\n")
    src.with_suffix(".md").write_text(to_markdown(r))
    return r


def _resolve(cfg: argparse.Namespace) -> argparse.Namespace:
    """Fill defaults that depend on --quick and on the machine; validate names."""
    import kernels

    quick = cfg.quick
    for name, normal, fast in (("repeats", 20, 1), ("warmup", 3, 0), ("budget", 2.0, 2.0),
                               ("step_repeats", 60, 1), ("step_warmup", 10, 0),
                               ("reference_repeats", 10, 1), ("matmul_n", 2048, 256),
                               ("copy_mib", 1024, 64)):
        if getattr(cfg, name) is None:
            setattr(cfg, name, fast if quick else normal)
    cfg.threads = cfg.threads or _cores()
    ops = cfg.ops.split(",") if cfg.ops else list(kernels.OPS)
    unknown = [o for o in ops if o not in kernels.OPS]
    if unknown:
        raise ValueError(f"unknown operator(s) {', '.join(unknown)}; known: "
                         f"{', '.join(kernels.OPS)}")
    cfg.ops = ops
    if cfg.gpu_only:
        cfg.backends = ["cupy"]
    elif cfg.backends:
        cfg.backends = cfg.backends.split(",")
        bad = [b for b in cfg.backends if b not in ("numpy", "numba", "cupy")]
        if bad:
            raise ValueError(f"unknown backend(s) {', '.join(bad)}")
    else:
        from .backend import available_backends

        cfg.backends = available_backends()
    if cfg.seq_len < 10 or cfg.features < 1:
        raise ValueError("--seq-len must be >= 10 (two conv(3)+pool(2) blocks) and "
                         "--features >= 1")
    return cfg


def _default_name(r: dict[str, Any], cfg: argparse.Namespace) -> str:
    gpu = _slug(r["gpu"]["name"]) if "gpu" in r else ""
    if cfg.gpu_only:
        return gpu or "gpu"
    return f"cpu-{_cores()}core" + (f"-{gpu}" if gpu else "")


def main(argv: list[str] | None = None) -> int:
    """``minimtl bench ARGS``: run the benchmarks, write ``<out>/<name>.json`` and ``.md``,
    print the tables. Returns the exit status (0, or 2 for bad arguments)."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--"]:          # ``minimtl bench -- --quick``: the CLI passes "--" on
        argv = argv[1:]
    cfg = parser.parse_args(argv)
    if cfg.summary:
        with open(cfg.summary) as f:
            print(summary(json.load(f)))
        return 0
    if cfg.add_keras:
        print(summary(add_keras(cfg.add_keras, cfg)))
        return 0
    if cfg.probe_child:
        return _probe_child(cfg)
    try:
        cfg = _resolve(cfg)
    except ValueError as e:
        parser.print_usage(sys.stderr)
        print(f"minimtl bench: error: {e}", file=sys.stderr)
        return 2
    r = run(cfg)
    print(to_markdown(r))
    _log(f"wrote {Path(cfg.out) / r['name']}.json and .md in {r['wall_s']:.0f} s")
    if cfg.gpu_only and "gpu" not in r:
        _log("--gpu-only: no usable GPU (cupy and a CUDA device are needed)")
        return 1
    return 0


def _clean(x: Any) -> Any:
    """JSON-ready: floats rounded to 6 significant digits, NaN/inf as null, tuples as lists."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return float(f"{x:.6g}") if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
