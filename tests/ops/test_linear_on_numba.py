"""Linear on the numba backend runs its three products in blocks on minimtl's CPU threads
(kernels/_threads.py): forward and gradients equal the numpy backend's plain products, on
shapes that take the row blocks (many rows) and the column blocks (few rows)."""

from __future__ import annotations

import numpy as np
import pytest

import minimtl as mt
import minimtl.functional as F

pytest.importorskip("numba")


@pytest.mark.parametrize("n", [3, 200])          # column blocks / row blocks
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_on_numba_equals_the_numpy_backend(n, dtype):
    rng = np.random.default_rng(7)
    arrays = [rng.standard_normal(s).astype(dtype) for s in ((n, 1100), (30, 1100), (30,))]
    gy = rng.standard_normal((n, 30)).astype(dtype)
    out = {}
    for backend in ("numpy", "numba"):
        x, w, b = (mt.tensor(a, backend=backend, requires_grad=True) for a in arrays)
        y = F.linear(x, w, b)
        y.backward(gy)
        out[backend] = (y.numpy(), x.grad, w.grad, b.grad)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for got, want in zip(out["numba"], out["numpy"]):
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * 40)
