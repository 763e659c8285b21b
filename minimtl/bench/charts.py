"""Pictures of a benchmark results file (``minimtl bench --plot``): where each kernel
stands against PyTorch, what the training step costs per batch size and system, and a
roofline of the kernels.

- ``<name>-kernels.png``: per operator, shape, layout and batch, PyTorch's forward +
  backward time divided by minimtl's (bars right of 1: minimtl is faster), one panel per
  minimtl backend that has a PyTorch time next to it.
- ``<name>-step.png``: training-step time (ms) and samples/s per batch size, one bar per
  system (minimtl's backends, PyTorch, Keras where measured).
- ``<name>-roofline.png``: each kernel's GFLOP/s (forward + backward) against its
  arithmetic intensity (FLOPs per byte moved), under the matrix-product peak measured in
  the same run and, where measured (GPU), the copy bandwidth's slope.

matplotlib is optional (the ``plot`` extra): without it ``plot`` returns [] and says so.
"""

from __future__ import annotations

import os

__all__ = ["plot"]


def _label(k: dict) -> str:
    return f"{k['op']} {k['shape']} N={k['batch']}"


def kernel_ratios(results: dict) -> dict[str, list[tuple[str, float]]]:
    """{backend: [(label, torch time / minimtl time), ...]} for forward + backward."""
    out: dict[str, list[tuple[str, float]]] = {}
    for k in results.get("kernels", []):
        if k.get("ratio_fwdbwd"):
            out.setdefault(k["backend"], []).append((_label(k), float(k["ratio_fwdbwd"])))
    return out


def step_table(results: dict) -> dict[str, dict[int, float]]:
    """{system: {batch: median ms}} of the training step, Keras included when measured."""
    out: dict[str, dict[int, float]] = {}
    for s in results.get("steps", []):
        name = f"PyTorch ({s['device']})" if s["system"] == "torch" else \
            f"minimtl {s['backend']}"
        out.setdefault(name, {})[int(s["batch"])] = float(s["median_ms"])
    for batch, ms in (results.get("keras") or {}).items():
        out.setdefault("Keras", {})[int(batch)] = float(ms)
    return out


def roofline_points(results: dict) -> list[tuple[str, str, float, float]]:
    """(backend, label, FLOPs per byte, GFLOP/s) for forward + backward of every kernel
    that reports its FLOPs and bytes."""
    pts = []
    for k in results.get("kernels", []):
        g, b, ms = k.get("gflops_fwdbwd"), k.get("bytes_fwdbwd"), k["fwdbwd"]["median_ms"]
        if g and b and ms:
            flops = g * 1e9 * ms * 1e-3
            pts.append((k["backend"], _label(k), flops / b, float(g)))
    return pts


def plot(results: dict, out: str) -> list[str]:
    """Write the three charts of ``results`` into the folder ``out``; returns the paths
    written ([] without matplotlib)."""
    from ..plot import pyplot, save_png

    plt = pyplot()
    if plt is None:
        return []
    os.makedirs(out, exist_ok=True)
    name = results.get("name", "bench")
    written = []

    ratios = kernel_ratios(results)
    if ratios:
        rows = max(len(v) for v in ratios.values())
        fig, axes = plt.subplots(1, len(ratios), figsize=(7 * len(ratios), 0.22 * rows + 1.5),
                                 squeeze=False)
        for ax, (backend, items) in zip(axes[0], sorted(ratios.items())):
            items = sorted(items)
            ys = range(len(items))
            ax.barh(list(ys), [r for _, r in items],
                    color=["tab:green" if r >= 1 else "tab:red" for _, r in items])
            ax.axvline(1.0, color="black", lw=0.8)
            ax.set_yticks(list(ys), [lab for lab, _ in items], fontsize=6)
            ax.set_xscale("log")
            ax.set(title=f"{backend}: PyTorch time / minimtl time (fwd + bwd)",
                   xlabel="ratio (> 1: minimtl faster)")
        path = os.path.join(out, f"{name}-kernels.png")
        save_png(fig, path)
        written.append(path)

    steps = step_table(results)
    if steps:
        batches = sorted({b for v in steps.values() for b in v})
        fig, axes = plt.subplots(1, 2, figsize=(12, 4))
        width = 0.8 / len(steps)
        for i, (system, by_batch) in enumerate(sorted(steps.items())):
            xs = [j + i * width for j, b in enumerate(batches) if b in by_batch]
            ms = [by_batch[b] for b in batches if b in by_batch]
            axes[0].bar(xs, ms, width, label=system)
            axes[1].bar(xs, [b * 1e3 / m for b, m in zip(
                [b for b in batches if b in by_batch], ms)], width, label=system)
        for ax, what in zip(axes, ("step time (ms)", "samples / s")):
            ax.set_xticks([j + 0.4 - width / 2 for j in range(len(batches))],
                          [f"batch {b}" for b in batches])
            ax.set(ylabel=what, title=f"training step: {what}")
        axes[0].set_yscale("log")              # the NumPy reference is ~50x slower
        axes[0].legend(fontsize=8)
        path = os.path.join(out, f"{name}-step.png")
        save_png(fig, path)
        written.append(path)

    pts = roofline_points(results)
    if pts:
        fig, ax = plt.subplots(figsize=(7, 5))
        for backend in sorted({p[0] for p in pts}):
            mine = [p for p in pts if p[0] == backend]
            ax.scatter([p[2] for p in mine], [p[3] for p in mine], s=12, label=backend)
        peak = max((m["gflops"] for m in results.get("matmul", [])), default=None)
        xs = [min(p[2] for p in pts) / 2, max(p[2] for p in pts) * 2]
        if peak:
            ax.axhline(peak, color="black", lw=0.8, ls="--",
                       label=f"matmul peak {peak:,.0f} GFLOP/s")
        copy = (results.get("gpu") or {}).get("copy", {}).get("gbps")
        if copy:
            top = peak or max(p[3] for p in pts)
            ax.plot([xs[0], top / copy], [copy * xs[0], top], color="grey", lw=0.8,
                    label=f"copy {copy:,.0f} GB/s")
        ax.set(xscale="log", yscale="log", xlabel="FLOPs per byte (fwd + bwd)",
               ylabel="GFLOP/s", title="kernels against the machine's measured limits")
        ax.legend(fontsize=8)
        path = os.path.join(out, f"{name}-roofline.png")
        save_png(fig, path)
        written.append(path)
    return written
