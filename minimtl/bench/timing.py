"""How a call is timed: samplers (host clock, CUDA events), ``measure`` (warm-up, then the
median of the samples), the devices a side runs on, and the timing of one kernel case."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .cases import Case

__all__ = ["Sampler", "cpu_sampler", "wall_sampler", "cupy_sampler", "measure", "Device",
           "host_device", "cupy_device", "torch_device", "first_calls", "bench_kernel",
           "bench_torch_kernel"]

Sampler = Callable[[Callable[[], Any]], float]     # one call of fn -> its ms


def cpu_sampler() -> Sampler:
    def sample(fn):
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1e3
    return sample


def wall_sampler(sync: Callable[[], Any]) -> Sampler:
    """Wall time of one call, the device drained before and after (training steps)."""
    def sample(fn):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        return (time.perf_counter() - t0) * 1e3
    return sample


def _event_sampler(start, end, drain: Callable[[], Any],
                   elapsed_ms: Callable[[Any, Any], float]) -> Sampler:
    """Device time of one call between two CUDA events, the stream drained first."""
    def sample(fn):
        drain()
        start.record()
        fn()
        end.record()
        end.synchronize()
        return elapsed_ms(start, end)
    return sample


def cupy_sampler(cp) -> Sampler:
    """CUDA events on cupy's current stream."""
    return _event_sampler(cp.cuda.Event(), cp.cuda.Event(),
                          lambda: cp.cuda.get_current_stream().synchronize(),
                          cp.cuda.get_elapsed_time)


def _torch_cuda_sampler(torch) -> Sampler:
    return _event_sampler(torch.cuda.Event(enable_timing=True),
                          torch.cuda.Event(enable_timing=True), torch.cuda.synchronize,
                          lambda start, end: start.elapsed_time(end))


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


@dataclass
class Device:
    """Where one side runs: how arrays get there, how a call is timed, how to drain."""

    name: str                              # "cpu" or "cuda"
    to: Callable[[np.ndarray], Any]
    sample: Sampler
    sync: Callable[[], Any]

    def put(self, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
        """Each of ``arrays`` moved to this device."""
        return {key: self.to(v) for key, v in arrays.items()}


def host_device() -> Device:
    return Device("cpu", lambda a: a, cpu_sampler(), lambda: None)


def cupy_device(cp) -> Device:
    return Device("cuda", cp.asarray, cupy_sampler(cp),
                  lambda: cp.cuda.get_current_stream().synchronize())


def torch_device(torch, name: str) -> Device:
    if name == "cpu":
        return Device("cpu", torch.from_numpy, cpu_sampler(), lambda: None)
    return Device("cuda", lambda a: torch.from_numpy(a).to("cuda"), _torch_cuda_sampler(torch),
                  torch.cuda.synchronize)


def _first_call(fn: Callable[[], Any], dev: Device) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    dev.sync()
    return out, (time.perf_counter() - t0) * 1e3


def first_calls(case: Case, k, a: dict, dev: Device) -> tuple[float, float]:
    """ms of one forward and one backward call, each drained (the first: compiles)."""
    out, first_fwd = _first_call(lambda: case.fwd(k, a), dev)
    _, first_bwd = _first_call(lambda: case.bwd(k, a, out), dev)
    return first_fwd, first_bwd


def _measure_case(fwd: Callable[[], Any], fwdbwd: Callable[[], Any], dev: Device,
                  cfg: argparse.Namespace) -> dict[str, dict[str, float]]:
    kw = dict(warmup=cfg.warmup, repeats=cfg.repeats, budget_s=cfg.budget)
    return {"fwd": measure(fwd, dev.sample, **kw), "fwdbwd": measure(fwdbwd, dev.sample, **kw)}


def bench_kernel(case: Case, k, dev: Device, cfg: argparse.Namespace) -> dict[str, Any]:
    """Time ``case`` on kernel module ``k``: first calls, forward, forward + backward."""
    a = dev.put(case.arrays)
    first_fwd, first_bwd = first_calls(case, k, a, dev)
    return {"first_fwd_ms": first_fwd, "first_bwd_ms": first_bwd,
            **_measure_case(lambda: case.fwd(k, a),
                            lambda: case.bwd(k, a, case.fwd(k, a)), dev, cfg)}


def bench_torch_kernel(case: Case, torch, dev: Device,
                       cfg: argparse.Namespace) -> dict[str, Any]:
    """The same call in PyTorch: forward (graph recorded), forward + autograd.grad."""
    t = dev.put(case.arrays if case.torch_arrays is None else case.torch_arrays)
    for key in case.grad_keys:
        t[key].requires_grad_(True)
    f, leaves = case.torch(torch, t, dev.name)

    def fwdbwd():
        torch.autograd.grad(f(), leaves, t["gy"])

    fwdbwd()
    return _measure_case(f, fwdbwd, dev, cfg)
