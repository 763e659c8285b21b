"""Data-parallel training on 1 and 2 ranks: step time and samples/s of ``fit``, the time of
the gradient all-reduce inside it, and the all-reduce alone against the bytes it moves.

    python benchmarks/data_parallel.py [--repeats 5] [--out FILE]
    python benchmarks/data_parallel.py --model RESULTS.json    # the scaling model's table

The driver launches ``mpiexec -n N python benchmarks/data_parallel.py --job ...`` again and
again, alternating the configurations, and reports medians. Configurations, on the
article's network and data (numba backend, 1,920 training rows, global batch B):

- ``1 process, 1 thread`` / ``2 threads``: ``fit`` without ``dist`` (the baseline);
- ``2 ranks x 1 thread``: ``fit(dist=ProcessGroup())``, each rank B/2 rows a step, the
  all-reduce overlapped with the backward (default buckets); its time is the packing
  during the walk plus ``finish`` (waiting for the slower rank included);
- ``... all-reduce after the backward``: ``ProcessGroup(overlap=False)``, the A/B of the
  overlap; ``... overlapped, 256 KiB buckets``: smaller buckets, so more of them start
  during the walk;
- ``... barrier first``: after the backward, with a barrier before each all-reduce, timed
  apart, so that the all-reduce time is packing, transfer and unpacking alone.

``--configs dist,after`` runs only those (keys: plain1, plain2, dist, after, small, split).
Each job trains one epoch to warm up (compilation, first-touch allocations), then times
a second one. The all-reduce job sums float32 buffers of 4 KiB to 64 MiB on 2 ranks
(``Iallreduce`` waited for with ``ProcessGroup.wait``), 20 times each, median.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def job_epoch(batch: int, threads: int, mode: str) -> list[dict]:
    from minimtl.backend import set_num_threads
    from minimtl.malloc import tune_malloc
    from minimtl.models import MultiTaskNet
    from minimtl.sources import load_source
    from minimtl.train import fit

    set_num_threads(threads)
    tune_malloc(True)
    group = None
    if mode != "plain":
        from minimtl.distributed import ProcessGroup
        from minimtl.distributed.overlap import GradientReduce

        group = ProcessGroup(overlap=mode not in ("after", "split"),
                             **({"bucket_bytes": 256 << 10} if mode == "small" else {}))
        group.barrier_s = 0.0
    if mode == "split":              # a barrier first: waiting for the slower rank, apart
        finish = GradientReduce.finish

        def timed(self, extra):
            t = time.perf_counter()
            group.barrier()
            group.barrier_s += time.perf_counter() - t
            return finish(self, extra)

        GradientReduce.finish = timed
    src = load_source("article", seed=0)
    (shape,) = set(map(tuple, src.shapes.values()))
    model = MultiTaskNet(shape[0], shape[1], seed=0, backend="numba")
    fit(model, src.train, None, epochs=1, batch_size=batch, stream=None, dist=group)
    if group is not None:
        group.barrier()
        group.allreduce_s = group.barrier_s = 0.0
    t0 = time.perf_counter()
    fit(model, src.train, None, epochs=1, batch_size=batch, stream=None, dist=group, seed=1)
    elapsed = time.perf_counter() - t0
    steps = -(-len(src.train) // batch)
    grad_bytes = sum(p.size * p.dtype.itemsize for p in model.parameters())
    mine = {"epoch_s": elapsed, "steps": steps, "step_ms": elapsed / steps * 1e3,
            "samples_per_s": len(src.train) / elapsed, "grad_bytes": grad_bytes,
            "allreduce_ms_per_step": (group.allreduce_s / steps * 1e3) if group else 0.0,
            "barrier_ms_per_step": (group.barrier_s / steps * 1e3) if group else 0.0}
    if group is None:
        return [mine]
    every = group.allgather_object(mine)
    return every if group.is_root else []


def job_allreduce() -> dict:
    import numpy as np

    from minimtl.distributed import ProcessGroup

    group = ProcessGroup()
    out = {}
    for exp in range(12, 27, 2):                      # 4 KiB .. 64 MiB
        x = np.ones((1 << exp) // 4, dtype=np.float32)
        times = []
        for _ in range(21):
            group.barrier()
            t0 = time.perf_counter()
            group.allreduce(x, "the benchmark")
            times.append(time.perf_counter() - t0)
        out[str(x.nbytes)] = statistics.median(times[1:])
    parts = _average_gradients(group)              # every rank takes part
    return [{"allreduce_s": out, "average_gradients_s": parts}] if group.is_root else []


def _average_gradients(group) -> dict:
    """``average_gradients`` on the article network's parameters, outside ``fit`` (both
    ranks enter together, caches warm): packing, the all-reduce, unpacking, and the whole."""
    import numpy as np

    from minimtl.distributed import GradientBuckets
    from minimtl.models import MultiTaskNet

    params = list(MultiTaskNet(64, 32, seed=0, backend="numba").parameters())
    b = GradientBuckets(params, group.bucket_bytes)
    parts = {"pack": [], "allreduce": [], "unpack": [], "average_gradients": []}

    def timed(name, fn):
        t0 = time.perf_counter()
        fn()
        parts[name].append(time.perf_counter() - t0)

    for _ in range(41):
        for p in params:
            p.grad = np.ones(p.shape, p.dtype)
        group.barrier()
        timed("pack", lambda: b.pack(np, 0, 0.5))
        timed("allreduce", lambda: group.allreduce(b.flat(np)))
        timed("unpack", lambda: b.unpack(np, np.ones(len(params))))
        group.barrier()
        timed("average_gradients", lambda: group.average_gradients(params, 16, 32,
                                                                   np.zeros(7)))
    return {k: statistics.median(v[1:]) for k, v in parts.items()} | {"bytes": b.nbytes}


def launch(n: int, args: list[str]) -> list[dict]:
    mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep
                           + os.environ.get("PATH", ""))
    env = dict(os.environ, PYTHONPATH=ROOT)
    cmd = ([mpiexec, "-n", str(n)] if n > 1 else []) + [sys.executable, __file__, "--job",
                                                        *args]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(run.stdout)


#: assumed networks (benchmarks/NOTES.md, item 31): bus bandwidth β (bytes/s) and the
#: latency α of one ring step (s)
NETWORKS = {"25 Gb/s Ethernet": (2.5e9, 30e-6), "NVLink 4": (360e9, 5e-6)}
#: the H200's cupy step (results/NVIDIA-H200-step.md: 7.48 ms at batch 256, 12.1 ms at
#: 4096) as t0 + ts·B, and an estimate of its packing: ~36 small kernel launches
H200 = {"t0": 7.17e-3, "ts": 1.2e-6, "pack": 0.36e-3}


def scaling_model(results: dict) -> list[str]:
    """T(N) = t0 + ts·B/N + 2(N−1)/N·M/β + 2(N−1)·α + pack (no overlap of the all-reduce
    with backward): the speedup T(1)/T(N) and the communication's share of T(N). CPU: t0
    and ts fitted to the 1-process, 1-thread steps at batch 32 and 256, pack and M measured.
    A model k times larger: M and ts times k (dense layers: work per sample ∝ parameters),
    t0 unchanged."""
    ep = results["epochs"]
    t32, t256 = (ep[b]["1 process, 1 thread"]["step_ms"] / 1e3 for b in ("32", "256"))
    ts = (t256 - t32) / 224
    ag = results["average_gradients_median_s"]
    cpu = {"t0": t32 - 32 * ts, "ts": ts, "pack": ag["pack"] + ag["unpack"]}
    m = ag["bytes"]
    lines = [f"CPU: t0 {cpu['t0'] * 1e3:.2f} ms, ts {ts * 1e3:.3f} ms/sample, M "
             f"{m / 1e6:.2f} MB, pack+unpack {cpu['pack'] * 1e3:.2f} ms"]
    cases = [("CPU ranks", cpu, "25 Gb/s Ethernet"), ("H200s", H200, "25 Gb/s Ethernet"),
             ("H200s", H200, "NVLink 4")]
    for who, c, net in cases:
        beta, alpha = NETWORKS[net]
        for k in (1, 100):
            for batch in (256, 4096):
                one = c["t0"] + c["ts"] * k * batch
                cells = []
                for n in (2, 8, 32, 128):
                    comm = 2 * (n - 1) / n * k * m / beta + 2 * (n - 1) * alpha + c["pack"]
                    step = c["t0"] + c["ts"] * k * batch / n + comm
                    cells.append(f"{n}: {one / step:4.1f}x {comm / step:4.0%}")
                lines.append(f"{who} on {net}, model x{k}, B={batch}: " + "; ".join(cells))
    return lines


CONFIGS = {"1 process, 1 thread": (1, 1, "plain"), "1 process, 2 threads": (1, 2, "plain"),
           "2 ranks x 1 thread": (2, 1, "dist"),
           "2 ranks, all-reduce after the backward": (2, 1, "after"),
           "2 ranks, overlapped, 256 KiB buckets": (2, 1, "small"),
           "2 ranks, after the backward, barrier first": (2, 1, "split")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batches", default="32,256")
    p.add_argument("--configs", default=None,
                   help="comma-separated modes to run (plain1, plain2, dist, after, small, "
                        "split; default: all)")
    p.add_argument("--out", default=None)
    p.add_argument("--model", default=None, help="print the scaling model from a results file")
    p.add_argument("--job", nargs="*", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.model:
        with open(a.model) as f:
            print("\n".join(scaling_model(json.load(f)["results"])))
        return
    if a.job is not None:
        kind, *rest = a.job
        result = job_allreduce() if kind == "allreduce" else \
            job_epoch(int(rest[0]), int(rest[1]), rest[2])
        if result:                                   # rank 0's, for every rank
            print(json.dumps(result), flush=True)
        return
    load_before = os.getloadavg()
    results: dict = {"epochs": {}, "allreduce": []}
    keys = {c: (f"plain{t}" if m == "plain" else m) for c, (_, t, m) in CONFIGS.items()}
    chosen = [c for c in CONFIGS if a.configs is None or keys[c] in a.configs.split(",")]
    for batch in map(int, a.batches.split(",")):
        runs = {c: [] for c in chosen}
        for r in range(a.repeats):
            for c in (chosen if r % 2 == 0 else chosen[::-1]):
                n, threads, mode = CONFIGS[c]
                runs[c].append(launch(n, ["epoch", str(batch), str(threads), mode]))
        summary = {}
        for c, reps in runs.items():
            step = statistics.median(max(x["step_ms"] for x in rep) for rep in reps)
            summary[c] = {"step_ms": step, "samples_per_s": batch / step * 1e3,
                          "allreduce_ms_per_step": statistics.median(
                              max(x["allreduce_ms_per_step"] for x in rep) for rep in reps),
                          "barrier_ms_per_step": statistics.median(
                              max(x["barrier_ms_per_step"] for x in rep) for rep in reps),
                          "step_ms_all": [max(x["step_ms"] for x in rep) for rep in reps],
                          "grad_bytes": reps[0][0]["grad_bytes"]}
            print(f"batch {batch:4d} {c:<34} {step:7.2f} ms/step "
                  f"{summary[c]['samples_per_s']:6.0f} samples/s  all-reduce "
                  f"{summary[c]['allreduce_ms_per_step']:.3f}, barrier "
                  f"{summary[c]['barrier_ms_per_step']:.3f} ms/step", flush=True)
        results["epochs"][str(batch)] = summary
    for _ in range(a.repeats):
        results["allreduce"].append(launch(2, ["allreduce"])[0])
    sizes = list(results["allreduce"][0]["allreduce_s"])
    med = {s: statistics.median(r["allreduce_s"][s] for r in results["allreduce"])
           for s in sizes}
    for s in sizes:
        print(f"all-reduce {int(s):>9} B: {med[s] * 1e6:9.1f} us  "
              f"{int(s) / med[s] / 1e9:6.2f} GB/s (bytes / time)", flush=True)
    results["allreduce_median_s"] = med
    results["average_gradients_median_s"] = {k: statistics.median(
        r["average_gradients_s"][k] for r in results["allreduce"]) for k in
        results["allreduce"][0]["average_gradients_s"]}
    print("average_gradients outside fit: " + ", ".join(
        f"{k} {v * 1e3:.3f} ms" for k, v in results["average_gradients_median_s"].items()
        if k != "bytes"), flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"what": __doc__.splitlines()[0], "repeats": a.repeats,
                       "results": results, "cores": os.cpu_count(),
                       "load_before": load_before, "load_after": os.getloadavg(),
                       "machine": {"python": platform.python_version(),
                                   "processor": platform.processor() or platform.machine()},
                       "date": time.strftime("%Y-%m-%d")}, f, indent=1)


if __name__ == "__main__":
    main()
