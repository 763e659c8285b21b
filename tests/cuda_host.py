"""Run simple CUDA kernels on the CPU: the ``SOURCE`` of a ``kernels/<op>/cupy_cuda.py`` is
compiled as host C++ with one-line stand-ins for the CUDA built-ins, each thread of a
launch runs in turn, and ``cupy`` is replaced by NumPy in the module under test. So the
module's own Python wrappers (shapes, layouts, argument order) and its kernels' index
arithmetic run without a GPU.

Only kernels in which each thread works alone can run this way: no ``__shared__`` memory,
no ``__syncthreads``, no warp operations (``supports`` says which sources qualify).
Floating point: the host compiler runs without FMA contraction; the ``__f*_rn`` intrinsics
map to the plain operations.
"""

from __future__ import annotations

import ctypes
import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np

__all__ = ["supports", "HostModule", "patch_module"]

PRELUDE = r"""
#include <cmath>
#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__
struct minimtl_dim { unsigned x, y, z; };
static minimtl_dim blockIdx, blockDim, threadIdx, gridDim;
static float __fmul_rn(float a, float b) { return a * b; }
static double __dmul_rn(double a, double b) { return a * b; }
static float __fadd_rn(float a, float b) { return a + b; }
static double __dadd_rn(double a, double b) { return a + b; }
static float __fsub_rn(float a, float b) { return a - b; }
static double __dsub_rn(double a, double b) { return a - b; }
static float __fdiv_rn(float a, float b) { return a / b; }
static double __ddiv_rn(double a, double b) { return a / b; }
static float __fsqrt_rn(float a) { return std::sqrt(a); }
static double __dsqrt_rn(double a) { return std::sqrt(a); }
using std::exp; using std::log; using std::log1p; using std::fabs; using std::fmax;
"""

_CTYPES = {"float": "float", "double": "double"}
_KERNEL = re.compile(r"template\s*<typename T>\s*__global__\s+void\s+(\w+)\s*\((.*?)\)\s*\{",
                     re.S)


def supports(source: str) -> bool:
    """True when every kernel of ``source`` can run one thread at a time."""
    return not re.search(r"__shared__|__syncthreads|__shfl|atomic|__launch_bounds__", source)


def _params(text: str) -> list[tuple[str, str]]:
    """[(C type, name)] of a kernel's parameter list."""
    out = []
    for part in text.split(","):
        part = " ".join(part.replace("__restrict__", "").split())
        ctype, name = part.rsplit(" ", 1)
        while name.startswith("*"):
            ctype, name = ctype + "*", name[1:]
        out.append((ctype.replace(" *", "*"), name))
    return out


def _ctype(ctype: str, t: str):
    if ctype.endswith("*"):
        return ctypes.c_void_p
    base = ctype.replace("const ", "").strip()
    return {"int": ctypes.c_int, "long long": ctypes.c_longlong, "float": ctypes.c_float,
            "double": ctypes.c_double, "T": ctypes.c_float if t == "float" else
            ctypes.c_double, "unsigned": ctypes.c_uint}[base]


class HostModule:
    """The kernels of ``source`` compiled for the host (cached per source in ``cache``)."""

    def __init__(self, source: str, cache: Path) -> None:
        if shutil.which("g++") is None:
            raise RuntimeError("g++ is needed to run CUDA sources on the host")
        self.kernels = {name: _params(params) for name, params in _KERNEL.findall(source)}
        runners = []
        for name, params in self.kernels.items():
            for t in _CTYPES:
                decl = ", ".join(re.sub(r"\bT\b", t, c) + " " + n for c, n in params)
                args = ", ".join(n for _, n in params)
                runners.append(
                    f'extern "C" void run_{name}_{t}(unsigned minimtl_grid, '
                    f"unsigned minimtl_block, {decl}) {{\n"
                    f"    blockDim.x = minimtl_block; gridDim.x = minimtl_grid;\n"
                    f"    for (unsigned mb = 0; mb < minimtl_grid; ++mb)\n"
                    f"        for (unsigned mt = 0; mt < minimtl_block; ++mt) {{\n"
                    f"            blockIdx.x = mb; threadIdx.x = mt;\n"
                    f"            {name}<{t}>({args});\n"
                    f"        }}\n}}\n")
        text = PRELUDE + source + "\n" + "\n".join(runners)
        digest = hashlib.sha1(text.encode()).hexdigest()[:16]
        lib = cache / f"host_{digest}.so"
        if not lib.exists():
            src = cache / f"host_{digest}.cpp"
            src.write_text(text)
            res = subprocess.run(["g++", "-std=c++14", "-O1", "-ffp-contract=off", "-shared",
                                  "-fPIC", str(src), "-o", str(lib)], capture_output=True,
                                 text=True, timeout=300)
            if res.returncode != 0:
                raise RuntimeError(res.stderr[-3000:])
        self.lib = ctypes.CDLL(str(lib))

    def function(self, name: str, dtype) -> HostKernel:
        t = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}[np.dtype(dtype)]
        fn = getattr(self.lib, f"run_{name}_{t}")
        fn.argtypes = [ctypes.c_uint, ctypes.c_uint] + [_ctype(c, t) for c, _ in
                                                         self.kernels[name]]
        fn.restype = None
        return HostKernel(fn, self.kernels[name])


class HostKernel:
    """Called like a ``cupy.RawKernel``: ``fn(grid, block, args, shared_mem=0)``."""

    def __init__(self, fn, params) -> None:
        self.fn, self.params = fn, params

    def __call__(self, grid, block, args, shared_mem: int = 0) -> None:
        if len(args) != len(self.params):
            raise TypeError(f"kernel takes {len(self.params)} arguments, got {len(args)}")
        conv = []
        for (ctype, name), a in zip(self.params, args):
            if ctype.endswith("*"):
                if not (isinstance(a, np.ndarray) and a.flags.c_contiguous):
                    raise TypeError(f"argument {name}: a C-contiguous array is needed")
                conv.append(a.ctypes.data)
            else:
                conv.append(a.item() if hasattr(a, "item") else a)
        self.fn(int(grid[0]), int(block[0]), *conv)


def patch_module(monkeypatch, module, cache: Path) -> None:
    """Make ``module`` (a ``kernels/<op>/cupy_cuda.py`` or similar) run on the host: its
    ``cupy()`` returns NumPy and its ``kernel(...)`` returns host-compiled kernels."""
    built: dict[str, HostModule] = {}

    def kernel(source, names, name, dtype):
        if source not in built:
            built[source] = HostModule(source, cache)
        return built[source].function(name, dtype)

    monkeypatch.setattr(module, "cupy", lambda: np)
    monkeypatch.setattr(module, "kernel", kernel)
