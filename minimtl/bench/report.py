"""The readable report of a results dict: the markdown tables (``<name>.md``, also printed)
and the short summary of ``minimtl bench --summary``."""

from __future__ import annotations

from typing import Any

__all__ = ["MEMORY_BOUND", "to_markdown", "summary"]

#: kernels whose GPU bandwidth is set next to the device copy's
MEMORY_BOUND = ("maxpool1d", "avgpool1d", "softmax", "log_softmax", "cross_entropy",
                "soft_cross_entropy", "bce_with_logits", "bce", "mse")


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
    out = (_header(r) + _steps_table(r) + _kernels_table(r) + _first_calls_table(r)
           + _gpu_bandwidth(r) + _memory_table(r) + _errors_list(r))
    return "\n".join(out) + "\n"


def _header(r: dict[str, Any]) -> list[str]:
    """The title and the machine, versions, allocator and settings of the run."""
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
    return out


def _step_cells(x: dict[str, Any]) -> list[str]:
    """batch, ms/step, min–max and samples/s of one step record."""
    return [str(x["batch"]), _ms(x["median_ms"]), f"{_ms(x['min_ms'])}–{_ms(x['max_ms'])}",
            _num(x["samples_per_s"])]


def _steps_table(r: dict[str, Any]) -> list[str]:
    steps = [x for x in r.get("steps", []) if x["system"] == "minimtl"]
    torch_only = [x for x in r.get("steps", []) if x["system"] == "torch"]
    if not (steps or torch_only):
        return []
    out = ["", "## Training step (MultiTaskNet: forward, 3 losses, backward, Adam)", "",
           "ratio = other ms / minimtl ms (> 1: minimtl faster). Keras: measured by "
           "the user with the Keras reference script (external, same machine).", ""]
    rows = [[x["backend"], *_step_cells(x),
             _ms(x.get("torch_ms")), _num(x.get("ratio_torch"), ".2f"),
             _ms(x.get("keras_ms")), _num(x.get("ratio_keras"), ".2f")] for x in steps]
    rows += [[f"torch ({x['device']})", *_step_cells(x), "", "", "", ""] for x in torch_only]
    out += _table(["backend", "batch", "ms/step", "min–max", "samples/s",
                   "torch ms/step", "torch/minimtl", "keras ms (external)",
                   "keras/minimtl"], rows)
    params = {x["params"] for x in r["steps"]}
    return out + ["", f"Parameters: {', '.join(f'{p:,}' for p in sorted(params))}"
                  + (" (minimtl and torch differ!)" if len(params) > 1 else "")]


def _kernels_table(r: dict[str, Any]) -> list[str]:
    """minimtl's kernel records beside torch's, and torch's that minimtl has no record of
    (a kernel that failed), ordered by op, device, batch, then the order shapes ran in."""
    if not (r.get("kernels") or r.get("torch_kernels")):
        return []
    out = ["", "## Kernels (float32, median ms)", "",
           "GFLOP/s: forward + backward (3x the forward's matmul flops) over the "
           "fwd+bwd time. ratio = torch fwd+bwd ms / minimtl fwd+bwd ms "
           "(> 1: minimtl faster); torch on the same device.", ""]
    have = {(k["op"], k["shape"], k["batch"], k["device"]) for k in r["kernels"]}
    recs = list(r["kernels"]) + [dict(t, backend="(torch only)")
                                 for t in r["torch_kernels"]
                                 if (t["op"], t["shape"], t["batch"], t["device"])
                                 not in have]
    order = {op: i for i, op in enumerate(r.get("settings", {}).get("ops", []))}

    def shape(k):                                    # the shape with its batch as N
        return k["shape"].replace(f"({k['batch']},", "(N,")

    shapes: dict[str, int] = {}                      # the order the shapes were run in
    for k in recs:
        shapes.setdefault(shape(k), len(shapes))
    recs.sort(key=lambda k: (order.get(k["op"], 99), k["device"], k["batch"],
                             shapes[shape(k)], k["backend"]))
    rows = []
    for k in recs:
        only = k["backend"] == "(torch only)"
        rows.append([k["op"], k["shape"], k["backend"], str(k["batch"]),
                     "–" if only else _ms(k["fwd"]["median_ms"]),
                     "–" if only else _ms(k["fwdbwd"]["median_ms"]),
                     "–" if only else _num(k.get("gflops_fwdbwd"), ".1f"),
                     _ms(k["fwdbwd"]["median_ms"] if only else k.get("torch_fwdbwd_ms")),
                     _num(k.get("ratio_fwdbwd"), ".2f")])
    return out + _table(["kernel", "shape", "backend", "batch", "fwd ms", "fwd+bwd ms",
                         "GFLOP/s", "torch fwd+bwd ms", "ratio"], rows)


def _first_calls_table(r: dict[str, Any]) -> list[str]:
    comp = [c for c in r.get("compile", []) if c["backend"] != "numpy"]
    if not comp:
        return []
    out = ["", "## First calls (Numba: compile or cache load; CUDA: NVRTC compile or "
           "CuPy's kernel cache)", ""]
    return out + _table(["kernel", "backend", "first fwd ms", "first bwd ms", "steady fwd ms",
                         "steady fwd+bwd ms", "Numba cache at start", "first calls in"],
                        [[c["op"], c["backend"], _ms(c["first_fwd_ms"]),
                          _ms(c["first_bwd_ms"]), _ms(c["steady_fwd_ms"]),
                          _ms(c["steady_fwdbwd_ms"]), c.get("cache") or "–",
                          c.get("where", "–")] for c in comp])


def _gpu_bandwidth(r: dict[str, Any]) -> list[str]:
    """The device copy's bandwidth, and what the memory-bound kernels reach of it at the
    largest GPU batch."""
    if not ("gpu" in r and "copy" in r["gpu"]):
        return []
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
    out = ["", "## GPU bandwidth", "",
           f"Device-to-device copy: {copy:,.0f} GB/s (bytes read + written)."]
    if rows:
        out += [f"Memory-bound kernels at batch {top}: bytes = every input read once and "
                "every result written once (a lower bound), over the median time.", ""]
        out += _table(["kernel", "shape", "fwd ms", "fwd GB/s", "of copy",
                       "fwd+bwd GB/s", "of copy", "torch fwd GB/s", "of copy"], rows)
    return out


def _memory_table(r: dict[str, Any]) -> list[str]:
    mem = r.get("memory")
    if not mem:
        return []
    out = ["", f"## Memory ({mem['steps']} training steps, batch {mem['batch']}, "
           f"{mem['backend']}, {mem['source']})", ""]
    return out + _table(["first MiB", "last MiB", "max MiB", "growth MiB"],
                        [[f"{mem['first_mib']:.1f}", f"{mem['last_mib']:.1f}",
                          f"{mem['max_mib']:.1f}", f"{mem['growth_mib']:+.1f}"]])


def _errors_list(r: dict[str, Any]) -> list[str]:
    if not r.get("errors"):
        return []
    out = ["", "## Skipped or failed", ""]
    for e in r["errors"]:
        about = ", ".join(f"{k} {v}" for k, v in e.items() if k not in ("where", "error"))
        out.append(f"- {e['where']}" + (f" ({about})" if about else "") + f": {e['error']}")
    return out


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

