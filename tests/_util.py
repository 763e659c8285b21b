"""Small helpers shared by the tests: moving arrays to a backend's device and back,
normwise relative error, and the agreement bounds of TESTING.md."""

from __future__ import annotations

import math

import numpy as np

import kernels


def kernel_backend(backend: str) -> str:
    """The kernels' backend of a test backend name: ``cuda_host`` runs the ``cupy`` modules
    (patched to run on the host by the ``backend`` fixture, tests/conftest.py)."""
    return "cupy" if backend == "cuda_host" else backend


def to_device(a, backend: str):
    """A NumPy array (or None/int) as the array type the backend's kernels take."""
    if backend == "cupy" and isinstance(a, np.ndarray):
        import cupy

        return cupy.asarray(a)
    return a


def to_host(a):
    """Any kernel output (NumPy or CuPy array, tuple, None) as NumPy."""
    if isinstance(a, tuple):
        return tuple(to_host(v) for v in a)
    if a is None or isinstance(a, np.ndarray):
        return a
    get = getattr(a, "get", None)
    return get() if get is not None else np.asarray(a)


def kernel(op: str, backend: str):
    """``kernels.get`` for a test backend name (``cuda_host`` included)."""
    return kernels.get(op, kernel_backend(backend))


def tensor_backend(backend: str, monkeypatch) -> str:
    """The minimtl backend for tensors of a test backend name: for ``cuda_host`` the whole
    ``cupy`` backend is put on the host for this test (tests/cuda_host.py)."""
    if backend != "cuda_host":
        return backend
    from tests.cuda_host import default_cache, lower_thresholds, patch_cupy_backend

    patch_cupy_backend(monkeypatch, default_cache())
    lower_thresholds(monkeypatch)
    return "cupy"


def call(op: str, backend: str, fn: str, *args, **params):
    """Run ``kernels.<op>.<backend>.<fn>`` on host arrays; return host arrays."""
    mod = kernel(op, backend)
    out = getattr(mod, fn)(*(to_device(a, backend) for a in args), **params)
    return to_host(out)


def rel_err(out, ref) -> float:
    """Normwise relative error ‖out − ref‖ / max(‖ref‖, tiny), computed in float64."""
    out = np.asarray(out, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert out.shape == ref.shape, f"shape {out.shape} != reference shape {ref.shape}"
    return float(np.linalg.norm(out - ref) / max(np.linalg.norm(ref), 1e-300))


def bound(dtype, kind: str = "elementwise", terms: int = 1) -> float:
    """TESTING.md's agreement bound for a dtype and a kind of computation.

    kind: "elementwise" (also softmax, activations), "sum" (sums over ``terms`` terms),
    "rnn" (recurrences over T <= 10).
    """
    if np.dtype(dtype) == np.float64:
        return 1e-12
    if kind == "elementwise":
        return 1e-6
    if kind == "sum":
        return min(1e-4, 10 * math.sqrt(max(terms, 1)) * 2.0**-24)
    if kind == "rnn":
        return 1e-5
    raise ValueError(kind)


def agreement_err(out, ref, mag) -> float:
    """TESTING.md's normwise error ‖out − ref‖ / ‖ref‖, except that the denominator is at
    least ‖mag‖, the same output computed on the magnitudes |v| of every value (entrywise
    ≥ |ref|). The rounding error of a sum is bounded by the sum of the magnitudes of its
    terms, not by the sum: when terms cancel (Hypothesis finds upstream gradients whose
    gb = Σ ga nearly vanishes), no float32 computation, the reference's included, has a
    small error relative to the near-zero result, while one relative to ‖mag‖ still is."""
    out = np.asarray(out, dtype=np.float64)
    scale = max(np.linalg.norm(ref), np.linalg.norm(mag), 1e-300)
    return float(np.linalg.norm(out - ref) / scale)


def moderate_arrays(shape, dtype, limit):
    """Arrays in [−limit, limit] whose magnitudes below 2⁻²⁰ are drawn as 0: products of
    several tiny float32 values underflow where a float64 reference does not."""
    from minimtl.testing import arrays

    return arrays(shape, dtype, -limit, limit, min_magnitude=2.0**-20)


def far_below_max_rows(rng, M, K):
    """float32 logits (M, K) whose row maximum has all its mantissa bits (in [1, 2)) and
    whose other logits lie 20 to 80 below it: x − m is then rarely a float32 value, and
    exp(x − m) is a small but normal float32 (≥ e⁻⁸¹). For entry-by-entry accuracy checks
    of the exponentials of the row kernels."""
    m = rng.uniform(1, 2, (M, 1))
    x = m - rng.uniform(20, 80, (M, K))
    x[np.arange(M), rng.integers(0, K, M)] = m[:, 0]
    return x.astype(np.float32)


def ulps(out, want) -> np.ndarray:
    """|out − want| in units of the float32 spacing at want (computed in float64): the
    error of a float32 result against a float64 value, entry by entry."""
    want = np.asarray(want, dtype=np.float64)
    err = np.abs(np.asarray(out, dtype=np.float64) - want)
    return err / np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
