"""Shared launcher for the CUDA kernels: module cache, dtype dispatch, grid sizes, and the
one place every launch of our kernels goes through (``launch_grid``, counted by
``kernels.launches``).

Every ``kernels/<op>/cupy_cuda.py`` has its CUDA C as one module-level string ``SOURCE`` of
``template <typename T> __global__`` kernels and their names in ``KERNELS``; code that
several sources share is a string they start with (``kernels/_gemm_cuda.py``,
``kernels/_splitk_cuda.py``, ``kernels/_pool_cuda.py``, ``kernels/_rows_cuda.py``). This
file compiles a source once per process (NVRTC through ``cupy.RawModule``, both the float
and the double instantiation in one module) and hands out the kernel for a dtype.

cupy is imported on first use only, so the sources can be imported and compiled with nvcc
(``nvcc_unit``) on machines without a GPU.
"""

from __future__ import annotations

import numpy as np

from kernels import launches

__all__ = ["cupy", "kernel", "launch", "launch_grid", "blocks", "nvcc_unit", "CTYPES"]

#: NumPy dtype -> C type used to instantiate the templates.
CTYPES: dict[np.dtype, str] = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}

_modules: dict[tuple[str, tuple[str, ...]], object] = {}


def cupy():
    """Import and return cupy (kept lazy so that importing a kernel file never needs it)."""
    import cupy as cp

    return cp


def _name_expressions(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(f"{n}<{c}>" for n in names for c in CTYPES.values())


def kernel(source: str, names: tuple[str, ...], name: str, dtype) -> object:
    """The compiled ``name<T>`` of ``source`` for the C type of ``dtype`` (cached)."""
    key = (source, names)
    module = _modules.get(key)
    if module is None:
        cp = cupy()
        module = cp.RawModule(
            code=source,
            options=("--std=c++14",),
            name_expressions=_name_expressions(names),
        )
        _modules[key] = module
    ctype = CTYPES.get(np.dtype(dtype))
    if ctype is None:
        raise TypeError(f"CUDA kernel {name}: dtype {np.dtype(dtype)} is not float32/float64")
    return module.get_function(f"{name}<{ctype}>")


def blocks(n: int, threads: int = 256) -> int:
    """Number of blocks so that ``blocks * threads >= n`` (at least one)."""
    return max(1, (int(n) + threads - 1) // threads)


def launch_grid(fn, grid: tuple, block: tuple, args: tuple, shared_mem: int = 0) -> None:
    """Launch ``fn`` on ``grid`` x ``block``: every launch of our kernels goes through here,
    so that ``kernels.launches`` counts them (by kernel name, when a count is open)."""
    fn(grid, block, args, shared_mem=shared_mem)
    if launches.current is not None:
        launches.current.add(launches.kernel_name(fn))


def launch(fn, n: int, args: tuple, threads: int = 256, shared_mem: int = 0) -> None:
    """Launch ``fn`` with one thread per item of ``n`` items (1-D grid)."""
    if n <= 0:
        return
    launch_grid(fn, (blocks(n, threads),), (threads,), args, shared_mem=shared_mem)


def nvcc_unit(source: str, names: tuple[str, ...]) -> str:
    """A translation unit for ``nvcc`` that forces the float and double instantiation of
    every kernel in ``names`` (taking their addresses), so that type errors surface without
    a GPU, exactly as NVRTC would see them."""
    refs = ", ".join(f"(const void*)&{e}" for e in _name_expressions(names))
    return f"{source}\n\nconst void* minimtl_force_instantiation[] = {{{refs}}};\n"
