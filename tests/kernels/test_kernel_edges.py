"""Kernel edge cases that the per-family tests left open, found by the mutation run
(tests/mutation/catalogue_kernels.py): a planted one-token bug survived every test until
one of these was written. Each test checks documented behaviour against an oracle of its
own (a closed form from the SPEC, naive loops), on every backend.

- bce: on the clip's boundary p = ε and p = 1 − ε the gradient passes (SPEC), one ulp
  outside it is 0;
- conv1d_relu_maxpool: with NaN inputs the fused kernel still equals conv1d_relu followed
  by maxpool1d, and where the ReLU passes NaN a pool window whose maximum is NaN passes no
  gradient (NaN > 0 is false), in the fused channels-last pair path (pool 2, stride 2) and
  the general one;
- log_softmax: a confident row keeps its tiny log-probability −log1p(e^−30) ≈ −9.4e-14 to
  a few ulps (the SPEC's L = log1p(Σ_{x<m} e^(x−m) + ties − 1): summing the maximum's 1
  into the tail instead loses all but three digits of it).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests._util import call

DTYPES = ("float32", "float64")
F64 = np.float64

# ---------------------------------------------------------------- bce: the clip's boundary

EPS_BCE = 1e-7  # Keras's epsilon, the SPEC's ε (kernels/bce/__init__.py)


def test_bce_gradient_passes_on_the_clip_boundary_and_stops_just_outside(backend):
    lo, hi = EPS_BCE, 1.0 - EPS_BCE                      # float64, as the kernels clip
    below, above = np.nextafter(lo, 0.0), np.nextafter(hi, 1.0)
    p = np.array([lo, hi, lo, hi, below, above, below, above])
    y = np.array([1.0, 0.0, 0.25, 0.75, 1.0, 0.0, 0.5, 0.5])
    g = np.array([1.0, -2.0, 0.5, 3.0, 1.0, 1.0, -1.0, 2.0])
    gp, none = call("bce", backend, "bwd", g, p, y)
    assert none is None and gp.dtype == np.float64
    # ∂/∂p of −(y·log p + (1 − y)·log(1 − p)) where the clip is the identity (ε ≤ p ≤ 1 − ε,
    # boundary included), 0 where it is constant
    inside = g[:4] * (-y[:4] / p[:4] + (1.0 - y[:4]) / (1.0 - p[:4]))
    np.testing.assert_allclose(gp[:4], inside, rtol=1e-12, atol=0)
    assert np.all(np.abs(gp[:4]) > 1e5)                   # the boundary really passes
    np.testing.assert_array_equal(gp[4:], np.zeros(4))


# ---------------------------------------------------------------- conv1d_relu_maxpool: NaN

def naive_pool_relu_grad(x, gy, kernel_size, stride, padding):
    """gx of maxpool1d(relu(x)) for one row x (L,) by loops: each window picks its first
    NaN, else its first maximum, and passes gy there only if that value is > 0."""
    L = len(x)
    r = [v if (v != v or v > 0) else 0.0 for v in x]      # relu, NaN kept
    Lo = (L + 2 * padding - kernel_size) // stride + 1
    gx = np.zeros(L)
    gb = 0.0
    for t in range(Lo):
        best, arg = -math.inf, -1
        for k in range(kernel_size):
            j = t * stride - padding + k
            if not 0 <= j < L:
                continue
            v = r[j]
            if v != v:
                if best == best:                           # the first NaN wins, once
                    best, arg = v, j
            elif v > best:
                best, arg = v, j
        if best > 0:                                       # False for NaN
            gx[arg] += gy[t]
            gb += gy[t]
    return gx, gb


@pytest.mark.parametrize("pool", [(2, 2, 0), (3, 2, 1)], ids=["pairs", "general"])
@pytest.mark.parametrize("cl", [False, True], ids=["first", "last"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_conv1d_relu_maxpool_equals_the_composition_on_a_nan_window(backend, dtype, cl,
                                                                      pool):
    """The SPEC's identity fused = maxpool1d(conv1d_relu(·)) holds with NaN inputs too (the
    backends' ReLU may pass NaN or give 0, SPEC: both sides use the same one), and where the
    ReLU passes NaN, a window whose maximum is NaN passes no gradient (naive loops)."""
    from tests.kernels.test_conv1d_relu_maxpool import composed

    kernel_size, stride, padding = pool
    # a 1x1 convolution with weight 1 and no bias: the pool sees relu(x) itself; NaN as the
    # second and as the first element of a pair, next to positive, negative and tied values
    x = np.array([0.5, np.nan, -1.0, 2.0, np.nan, 3.0, 1.5, -0.5, 0.0, -2.0], dtype=dtype)
    w = np.ones((1, 1, 1), dtype=dtype)
    conv_p = dict(stride=1, padding_left=0, padding_right=0, dilation=1)
    pool_p = dict(kernel_size=kernel_size, stride=stride, padding=padding)
    kw = dict(conv_p, pool_size=kernel_size, pool_stride=stride, pool_padding=padding,
              channels_last=cl)
    xin = x.reshape(1, -1, 1) if cl else x.reshape(1, 1, -1)
    y, argmax = call("conv1d_relu_maxpool", backend, "fwd", xin, w, None, **kw)
    gy = (np.arange(y.size, dtype=dtype) + 1.0).reshape(y.shape)
    gx, _, gb = call("conv1d_relu_maxpool", backend, "bwd", gy, xin, w, y, argmax, **kw)
    _, _, (gx_c, _, gb_c) = composed(backend, xin, w, None, gy, conv_p, pool_p, cl)
    np.testing.assert_array_equal(gx, gx_c)            # gw holds NaN·0: not compared
    np.testing.assert_array_equal(gb, gb_c)
    relu = call("conv1d_relu", backend, "fwd", xin, w, None, **conv_p, channels_last=cl)
    if np.isnan(relu).any():                            # this backend's ReLU passes NaN
        want_gx, want_gb = naive_pool_relu_grad(x.astype(F64), gy.ravel().astype(F64),
                                                kernel_size, stride, padding)
        np.testing.assert_array_equal(gx.ravel(), want_gx.astype(dtype))
        np.testing.assert_array_equal(gb, np.array([want_gb], dtype=dtype))


# ---------------------------------------------------------------- log_softmax: tiny entries

@pytest.mark.parametrize("dtype", DTYPES)
def test_log_softmax_of_a_confident_row_keeps_its_tiny_log_probability(backend, dtype):
    x = np.array([[0.0, -30.0, -35.0], [-30.0, 0.0, 0.0]], dtype=dtype)
    y = call("log_softmax", backend, "fwd", x).astype(F64)
    t1 = math.exp(-30.0) + math.exp(-35.0)                # Σ e^(x − max) below the max
    t2 = math.exp(-30.0) / 2.0                            # two tied maxima
    lse1 = math.log1p(t1)                                 # ≈ 9.4e-14
    lse2 = math.log(2.0) + math.log1p(t2)
    want = np.array([[-lse1, -30.0 - lse1, -35.0 - lse1], [-30.0 - lse2, -lse2, -lse2]])
    tol = 4 * float(np.finfo(dtype).eps)
    assert np.all(np.abs(y - want) <= tol * np.abs(want)), (y, want)
