"""Facts about the machine a run measures (cores, CPU, BLAS, GPU, resident memory), which
optional libraries it has (cupy with a device, torch), and the checkout's folder."""

from __future__ import annotations

import datetime
import platform
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..threads import cores

__all__ = ["REPO", "rss_mib", "cores", "slug", "cupy_or_none", "import_torch", "gpu_info",
           "machine"]

REPO = Path(__file__).resolve().parents[2]   # the checkout: kernels/ and minimtl/ below it


def _proc_line(path: str, prefix: str) -> str | None:
    """The first line of ``path`` (a Linux /proc file) that starts with ``prefix``."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(prefix):
                    return line
    except OSError:
        pass
    return None


def rss_mib() -> tuple[float, str]:
    """Resident memory of this process in MiB, and where the number came from."""
    line = _proc_line("/proc/self/status", "VmRSS:")
    if line is not None:
        return int(line.split()[1]) / 1024, "VmRSS"
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 1024), "ru_maxrss (peak)"


def _cpu_model() -> str:
    line = _proc_line("/proc/cpuinfo", "model name")
    if line is not None:
        return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _blas() -> dict[str, str]:
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return {"name": str(blas.get("name")), "version": str(blas.get("version"))}
    except Exception:  # older NumPy: no dict mode; the BLAS is then simply not recorded
        return {}


def slug(text: str) -> str:
    """``text`` as a file-name stem: lower case, runs of other characters as one ``-``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def cupy_or_none():
    """The cupy module when it imports and sees a CUDA device, else None."""
    try:
        import cupy as cp

        return cp if cp.is_available() else None
    except Exception:  # no cupy, no driver, no device: all mean "no GPU here"
        return None


def import_torch(threads: int):
    """The torch module set to ``threads`` CPU threads, or None where it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def gpu_info(cp) -> dict[str, Any]:
    """GPU 0's name and memory, cupy's version and the CUDA runtime's."""
    props = cp.cuda.runtime.getDeviceProperties(0)
    name = props["name"]
    name = name.decode() if isinstance(name, bytes) else str(name)
    return {"name": name, "memory_gib": round(props["totalGlobalMem"] / 2**30, 1),
            "multiprocessors": props.get("multiProcessorCount"),
            "cupy": cp.__version__, "cuda_runtime": cp.cuda.runtime.runtimeGetVersion()}


def machine(r: dict[str, Any], torch) -> dict[str, Any]:
    """The results' ``machine`` record: date, CPU, versions, and the GPU's name if used."""
    m: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": _cpu_model(), "arch": platform.machine(), "cores": cores(),
        "os": platform.system(), "python": platform.python_version(),
        "numpy": np.__version__, "blas": _blas()}
    if "numba" in sys.modules:
        m["numba"] = sys.modules["numba"].__version__
    if torch is not None:
        m["torch"] = torch.__version__
    if "gpu" in r:
        m["gpu"] = r["gpu"]["name"]
    return m
