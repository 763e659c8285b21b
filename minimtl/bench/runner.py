"""The run: the phases in their order (torch before Numba's thread pool starts, the probe
before the timings it protects), each adding to one results dict that is saved as it grows.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from kernels import launches

from ..malloc import tune_malloc
from .cases import Case, kernel_cases, randn
from .machine import REPO, cores, cupy_or_none, gpu_info, import_torch, machine, rss_mib, slug
from .probe import probe
from .progress import error_text, log
from .results import join, kernel_record, write
from .steps import minimtl_step, torch_step
from .timing import (
    Device,
    bench_kernel,
    bench_torch_kernel,
    cpu_sampler,
    cupy_device,
    cupy_sampler,
    host_device,
    measure,
    torch_device,
    wall_sampler,
)

__all__ = ["Run", "run"]


def _times(res: dict[str, Any]) -> str:
    return (f"fwd {res['fwd']['median_ms']:.4f} ms, "
            f"fwd+bwd {res['fwdbwd']['median_ms']:.4f} ms")


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
        join(r, self.cfg)
        r["machine"] = machine(r, self.torch)
        r["complete"] = complete
        r["wall_s"] = time.perf_counter() - t0
        out = Path(self.cfg.out)
        out.mkdir(parents=True, exist_ok=True)
        write(r, out / f"{r['name']}.json")

    def probe(self, backend: str, batches: list[int]) -> None:
        """Probe ``backend`` in child processes (``probe.py``) where the options ask for it,
        and keep what it found: the items that crashed, the first-call times."""
        cfg = self.cfg
        if backend == "numba":     # before the child writes cache files
            self.cache_before = {op: self._numba_cache(op) for op in cfg.ops}
        if cfg.probe is False or (cfg.probe is None and backend == "numpy"):
            return
        found = probe(cfg, backend, batches)
        self.crashed.update({(backend, item): why for item, why in found.crashed.items()})
        self.first_calls.update({(backend, op): t for op, t in found.first_calls.items()})
        if found.failure is not None:
            self.error("probe", RuntimeError(found.failure), backend=backend)

    def skip_crashed(self, backend: str, item: str, **about: Any) -> bool:
        why = self.crashed.get((backend, item))
        if why is not None:
            self.error(item.split(":")[0], RuntimeError(why), backend=backend, **about)
        return why is not None

    def error(self, where: str, e: BaseException, **about: Any) -> None:
        rec = {"where": where, **about, "error": error_text(e)}
        self.r["errors"].append(rec)
        log(f"  ! {where} {' '.join(f'{k}={v}' for k, v in about.items())}: {rec['error']}")

    def cases(self, op: str, batches: list[int]) -> Iterator[Case]:
        """The kernel cases of ``op`` at each of ``batches``, in that order."""
        for batch in batches:
            yield from kernel_cases(op, batch, self.cfg.seq_len, self.cfg.features)

    # phases ---------------------------------------------------------------------------
    def matmul_peak(self, device: str) -> None:
        n = self.cfg.matmul_n if device == "cpu" else 2 * self.cfg.matmul_n
        rng = np.random.default_rng(0)
        a, b = randn(rng, n, n), randn(rng, n, n)
        if device == "cpu":
            fn, sample = (lambda: np.matmul(a, b)), cpu_sampler()
        else:
            cp = self.cp
            a, b = cp.asarray(a), cp.asarray(b)
            fn, sample = (lambda: cp.matmul(a, b)), cupy_sampler(cp)
        t = measure(fn, sample, warmup=2, repeats=max(3, min(self.cfg.repeats, 10)))
        gflops = 2.0 * n**3 / t["median_ms"] / 1e6
        self.r["matmul"].append({"device": device, "n": n, "dtype": "float32", **t,
                                 "gflops": gflops})
        log(f"matmul {device} float32 {n}x{n}: {t['median_ms']:.2f} ms, {gflops:.0f} GFLOP/s")

    def torch_side(self, dev: Device, batches: list[int]) -> None:
        """PyTorch's kernels and training step on ``dev``, as the options ask."""
        if self.cfg.kernels:
            self.torch_kernels(dev, batches)
        if self.cfg.step:
            self.steps("torch", "torch", dev, batches)

    def torch_kernels(self, dev: Device, batches: list[int]) -> None:
        for op in self.cfg.ops:
            for case in self.cases(op, batches):
                try:
                    res = bench_torch_kernel(case, self.torch, dev, self.cfg)
                except Exception as e:
                    self.error("torch kernel", e, op=op, shape=case.shape, batch=case.batch,
                               device=dev.name)
                    continue
                self.r["torch_kernels"].append(kernel_record(case, dev, res))
                log(f"torch {dev.name:4} {op:18} {case.shape:18} {_times(res)}")

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
            for case in self.cases(op, batches):
                try:
                    self._cpu_threads(backend, case.batch)
                    res = bench_kernel(case, k, dev, self.cfg)
                except Exception as e:
                    self.error("kernel", e, op=op, backend=backend, shape=case.shape,
                               batch=case.batch)
                    continue
                self.r["kernels"].append(kernel_record(case, dev, res, backend=backend))
                note = ""
                if first:
                    note = self._first_calls_record(case, backend, res, cache)
                    first = False
                log(f"{backend:6} {op:18} {case.shape:18} {_times(res)}{note}")

    def _first_calls_record(self, case: Case, backend: str, res: dict[str, Any],
                            cache: str | None) -> str:
        """Record the first calls of ``case.op`` on ``backend`` (the probe's, or this
        process's own in ``res``) next to its steady times; return the progress note."""
        fc = self.first_calls.get((backend, case.op), res)
        self.r["compile"].append(
            {"op": case.op, "backend": backend, "shape": case.shape, "batch": case.batch,
             "first_fwd_ms": fc["first_fwd_ms"], "first_bwd_ms": fc["first_bwd_ms"],
             "where": "probe process" if fc is not res else "this process",
             "steady_fwd_ms": res["fwd"]["median_ms"],
             "steady_fwdbwd_ms": res["fwdbwd"]["median_ms"], "cache": cache})
        return f", first calls {fc['first_fwd_ms']:.0f} + {fc['first_bwd_ms']:.0f} ms"

    def _numba_cache(self, op: str) -> str:
        if self.cfg.numba_cold:
            return "cold (fresh cache folder)"
        folder = REPO / "kernels" / op / "__pycache__"
        found = folder.is_dir() and any(folder.glob("numba_cpu.*.nbi"))
        return "cache files found" if found else "no cache files"

    def _cpu_threads(self, backend: str, batch: int) -> None:
        """On numba, the threads as ``minimtl train`` sets them for ``batch`` (the conv
        chunks on threads from ``CHUNKED_FROM_BATCH`` on, else BLAS's threads)."""
        if backend == "numba":
            from ..threads import chunked_for, set_num_threads

            got = set_num_threads(self.r["threads"].get("numba") or 1,
                                  chunks=chunked_for(batch))
            self.r["threads"].setdefault("per_batch", {})[str(batch)] = got

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
                    self._cpu_threads(backend, batch)
                    step, params = minimtl_step(backend, batch, cfg.seq_len, cfg.features)
                step()
                launched = {}
                if system == "minimtl" and backend == "cupy":
                    with launches.count() as c:     # our kernels (cupy's own: launch_count.py)
                        step()
                    launched = {"our_kernel_launches": c.total}
                t = measure(step, wall_sampler(dev.sync), warmup=warmup, repeats=repeats)
            except Exception as e:
                self.error("step", e, system=system, backend=backend, batch=batch)
                continue
            self.r["steps"].append({"system": system, "backend": backend, "device": dev.name,
                                    "batch": batch, "params": params, **t, **launched,
                                    "samples_per_s": batch / t["median_ms"] * 1e3})
            log(f"step {system} {backend:6} batch {batch:5}: {t['median_ms']:.2f} ms "
                f"(min {t['min_ms']:.2f}), {batch / t['median_ms'] * 1e3:,.0f} samples/s"
                + (f", {launched['our_kernel_launches']} of our kernels launched"
                   if launched else ""))

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
        log(f"memory {backend} {cfg.memory_steps} steps: {values[0]:.1f} -> "
            f"{values[-1]:.1f} MiB (max {max(values):.1f})")

    def copy_bandwidth(self) -> None:
        cp = self.cp
        n = self.cfg.copy_mib * 2**20 // 4
        pair = [cp.ones(n, dtype=cp.float32), cp.empty(n, dtype=cp.float32)]
        t = measure(lambda: cp.copyto(pair[1], pair[0]), cupy_sampler(cp), warmup=3,
                    repeats=max(3, min(self.cfg.repeats, 20)))
        pair.clear()
        cp.get_default_memory_pool().free_all_blocks()
        gbps = 2 * n * 4 / t["median_ms"] / 1e6
        self.r["gpu"]["copy"] = {"mib": self.cfg.copy_mib, **t, "gbps": gbps}
        log(f"device copy {self.cfg.copy_mib} MiB: {gbps:,.0f} GB/s (read + written)")


def _default_name(r: dict[str, Any], cfg: argparse.Namespace) -> str:
    gpu = slug(r["gpu"]["name"]) if "gpu" in r else ""
    if cfg.gpu_only:
        return gpu or "gpu"
    return f"cpu-{cores()}core" + (f"-{gpu}" if gpu else "")


def run(cfg: argparse.Namespace) -> dict[str, Any]:
    """Run every phase ``cfg`` asks for and return the results (options: ``build_parser``).

    The results files are rewritten after each phase (``"complete": false`` until the end),
    so a run that is killed still leaves what it measured.
    """
    if cfg.numba_cold:
        if "numba" in sys.modules:
            log("--numba-cold: numba is already imported; its cache folder stays as it is")
        else:
            os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="minimtl-numba-")
    t0 = time.perf_counter()
    run_ = Run(cfg)
    r = run_.r
    r["allocator"] = tune_malloc(cfg.malloc_tuned)
    cp = cupy_or_none() if "cupy" in cfg.backends else None
    if "cupy" in cfg.backends and cp is None:
        run_.error("backend", RuntimeError("cupy or a CUDA device is missing"), backend="cupy")
    if cp is not None:
        r["gpu"] = gpu_info(cp)
        log(f"GPU: {r['gpu']['name']}")
    run_.cp = cp
    r["name"] = cfg.name or _default_name(r, cfg)
    r["settings"] = {k: v for k, v in vars(cfg).items() if k not in ("summary", "out", "name")}
    cpu_backends = [b for b in cfg.backends if b != "cupy"]
    torch = None if cfg.no_torch else import_torch(cfg.threads)
    run_.torch = torch
    threads: dict[str, Any] = {"requested": cfg.threads}
    if torch is not None:
        threads["torch_before"] = torch.get_num_threads()
    r["threads"] = threads

    if cpu_backends:
        _host_phases(run_, cpu_backends, t0)
    if cp is not None:
        _gpu_phases(run_, t0)
    run_.save(t0, complete=True)
    return r


def _host_phases(run_: Run, cpu_backends: list[str], t0: float) -> None:
    """The CPU: matmul peak, torch, the probes, Numba's threads, kernels, steps, memory."""
    cfg, torch, threads = run_.cfg, run_.torch, run_.r["threads"]
    run_.matmul_peak("cpu")
    if torch is not None:                       # torch first, before Numba's pool starts
        run_.torch_side(torch_device(torch, "cpu"), cfg.batches)
        run_.save(t0)
    for backend in cpu_backends:
        run_.probe(backend, cfg.batches)
    if "numba" in cpu_backends:
        try:
            import numba

            from ..backend import configure_numba

            configure_numba()          # before set_num_threads starts the thread pool
            numba.set_num_threads(min(cfg.threads, numba.config.NUMBA_NUM_THREADS))
            threads["numba"] = numba.get_num_threads()
        except Exception as e:
            run_.error("numba threads", e)
    for backend in cpu_backends:
        if cfg.kernels:
            run_.kernels(backend, host_device(), cfg.batches)
            run_.save(t0)
    for backend in sorted(cpu_backends, key=lambda b: b != "numba"):   # numba first
        if cfg.step:
            run_.steps("minimtl", backend, host_device(), cfg.batches)
    if cfg.memory_steps > 0:
        run_.memory("numba" if "numba" in cpu_backends else cpu_backends[0])
    if torch is not None:
        threads["torch_after"] = torch.get_num_threads()
    run_.save(t0)


def _gpu_phases(run_: Run, t0: float) -> None:
    """The GPU: copy bandwidth, matmul peak, torch on CUDA, the probe, kernels, steps."""
    cfg, torch, cp = run_.cfg, run_.torch, run_.cp
    run_.copy_bandwidth()
    run_.matmul_peak("cuda")
    if torch is not None and torch.cuda.is_available():
        run_.r["gpu"]["torch_cudnn"] = torch.backends.cudnn.version()
        run_.torch_side(torch_device(torch, "cuda"), cfg.gpu_batches)
    elif torch is not None:
        run_.error("torch cuda", RuntimeError("torch.cuda.is_available() is False"))
    run_.save(t0)
    run_.probe("cupy", cfg.gpu_batches)
    if cfg.kernels:
        run_.kernels("cupy", cupy_device(cp), cfg.gpu_batches)
        run_.save(t0)
    if cfg.step:
        run_.steps("minimtl", "cupy", cupy_device(cp), cfg.gpu_batches)
