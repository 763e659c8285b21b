"""The GPU training step eager and replayed from a CUDA graph, minimtl (cupy) against
PyTorch (eager, and its own whole-network capture with ``torch.cuda.graph``), one process,
one GPU, the sides alternated.

    python benchmarks/gpu_graph_step.py [--batches 32,256,4096] [--repeats 5] [--out FILE]

Each side's step is the default article network on one fixed batch (forward, three losses,
backward, Adam): ``minimtl.bench.steps.minimtl_step`` / ``torch_step`` with ``graph``
off and on. minimtl's replayed step includes copying the batch from the host into the
graph's static arrays (four copies, as ``fit`` pays); PyTorch's replays on inputs already
in its static tensors, so the graph ratio is if anything in PyTorch's favour. A timing is
``--steps`` calls then one device synchronisation, per step; the
table gives the median of ``--repeats`` timings of each side, taken in turn. Prints a table;
``--out`` writes JSON and the table next to it (``.md``). Needs cupy, a CUDA GPU and
torch with CUDA.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SEQ_LEN, FEATURES = 64, 32
SIDES = ("minimtl eager", "minimtl graph", "torch eager", "torch graph")


def _sides(batch: int) -> dict:
    import cupy
    import torch

    from minimtl.bench.steps import minimtl_step, torch_step

    out = {}
    for name, graph in (("minimtl eager", False), ("minimtl graph", True)):
        step, _ = minimtl_step("cupy", batch, SEQ_LEN, FEATURES, graph=graph)
        out[name] = (step, cupy.cuda.Device().synchronize)
    for name, graph in (("torch eager", False), ("torch graph", True)):
        step, _ = torch_step(torch, "cuda", batch, SEQ_LEN, FEATURES, graph=graph)
        out[name] = (step, torch.cuda.synchronize)
    return out


def _time(step, sync, n: int) -> float:
    sync()
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    sync()
    return (time.perf_counter() - t0) / n * 1e3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", default="32,256,4096")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args()
    import cupy

    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    gpu = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    results = []
    for batch in (int(b) for b in a.batches.split(",")):
        sides = _sides(batch)
        for step, sync in sides.values():           # warm-up: compile, allocate
            _time(step, sync, 3)
        ms = {name: [] for name in sides}
        for r in range(a.repeats):
            order = list(sides) if r % 2 == 0 else list(reversed(sides))
            for name in order:
                ms[name].append(_time(*sides[name], a.steps))
        med = {name: statistics.median(v) for name, v in ms.items()}
        results.append({"batch": batch, "ms": ms, "median_ms": med})
        print(f"batch {batch}: " + ", ".join(f"{n} {med[n]:.3f} ms" for n in SIDES)
              + f"; minimtl graph / torch graph {med['minimtl graph'] / med['torch graph']:.2f}"
              f", minimtl eager / torch eager {med['minimtl eager'] / med['torch eager']:.2f}",
              flush=True)
    if a.out is not None:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps({"gpu": gpu, "network": f"MultiTaskNet({SEQ_LEN}, "
                                     f"{FEATURES}) float32", "steps_per_timing": a.steps,
                                     "results": results}, indent=1) + "\n")
        rows = ["| batch | " + " | ".join(SIDES) + " | graph ratio | eager ratio |",
                "|---" * (len(SIDES) + 3) + "|"]
        for r in results:
            m = r["median_ms"]
            rows.append(f"| {r['batch']} | " + " | ".join(f"{m[n]:.3f}" for n in SIDES) +
                        f" | {m['minimtl graph'] / m['torch graph']:.2f} | "
                        f"{m['minimtl eager'] / m['torch eager']:.2f} |")
        a.out.with_suffix(".md").write_text(
            f"# Training step, eager and CUDA-graph replay, {gpu}\n\nms a step, median of "
            f"{a.repeats} timings of {a.steps} steps; ratio = minimtl / torch.\n\n"
            + "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
