"""The results dict and its files: one record per timed kernel, torch's numbers and the
ratios put next to minimtl's, JSON-ready values, ``<name>.json`` beside ``<name>.md``."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .cases import Case
from .report import to_markdown
from .timing import Device

__all__ = ["kernel_record", "join", "clean", "write", "add_keras"]


def kernel_record(case: Case, dev: Device, res: dict, backend: str | None = None
                  ) -> dict[str, Any]:
    """The record of one timed case: its timings, bytes and flops, GB/s and GFLOP/s."""
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


def join(r: dict[str, Any], cfg: argparse.Namespace) -> None:
    """Put torch's numbers and the ratios next to minimtl's; Keras's external ones too."""
    torch_k = {(t["op"], t["shape"], t["batch"], t["device"]): t for t in r["torch_kernels"]}
    for rec in r["kernels"]:
        t = torch_k.get((rec["op"], rec["shape"], rec["batch"], rec["device"]))
        if t is not None:
            for part in ("fwd", "fwdbwd"):
                rec[f"torch_{part}_ms"] = t[part]["median_ms"]
                rec[f"ratio_{part}"] = t[part]["median_ms"] / rec[part]["median_ms"]
    torch_s = {(s["batch"], s["device"]): s for s in r["steps"] if s["system"] == "torch"}
    keras = {32: cfg.keras_ms_32, 256: cfg.keras_ms_256, 1024: cfg.keras_ms_1024}
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


def clean(x: Any) -> Any:
    """JSON-ready: floats rounded to 6 significant digits, NaN/inf as null, tuples as lists."""
    if isinstance(x, dict):
        return {str(k): clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [clean(v) for v in x]
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return float(f"{x:.6g}") if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def write(r: dict[str, Any], path: Path) -> None:
    """Write ``r`` to ``path`` (``<name>.json``) and its report beside it (``<name>.md``)."""
    path.write_text(json.dumps(clean(r), indent=1) + "\n")
    path.with_suffix(".md").write_text(to_markdown(r))


def add_keras(path: str, cfg: argparse.Namespace) -> dict[str, Any]:
    """Rewrite the results file ``path`` (and its .md) with Keras's step times and ratios."""
    src = Path(path)
    r = json.loads(src.read_text())
    join(r, cfg)
    write(r, src)
    return r
