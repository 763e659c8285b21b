"""NaN propagation through every max-like kernel: a NaN inside a window (a pool window,
a ReLU input, a softmax row) gives NaN in that output; a `>` comparison that silently
passes over it is a bug.

The contract, from the SPECs and references:
- maxpool1d (SPEC, "Edge cases"): NaN counts as larger than every number, so a window
  holding NaN gives y = NaN and argmax = its first NaN (NumPy's argmax, PyTorch);
- conv1d_relu: y = max(z, 0) with NaN passed through, as the reference's np.maximum does;
- conv1d_relu_maxpool (SPEC): exactly maxpool1d(conv1d_relu(·)), NaN rules included;
  checked also on the Numba channels-last "pair path" (pool K = S = 2, the network's)
  at the network's shapes (minimtl.bench.kernel_cases);
- softmax / log_softmax (SPECs: non-finite inputs give non-finite rows): the row
  maximum is NaN, so every entry of a row holding a NaN is NaN (what the references and
  PyTorch give); the cross-entropies share log_softmax's row maximum and give NaN loss.

Every backend of the ``backend`` fixture, both layouts where the kernel has them, NaN at
every window position (first, last, the only real element of a padded window, a dropped
tail), next to +inf on either side, next to −inf, and whole rows of NaN. Expected values
come from naive loops here (not from the references, which are under test too).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests._util import call

DTYPES = ("float32", "float64")
NAN, INF = math.nan, math.inf
#: The references' log1p(below + ties − 1) is log1p(−1) on a NaN row (no entry is < or =
#: the NaN maximum): a divide-by-zero warning on the way to the NaN result.
LOG1P_OF_A_NAN_ROW = pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")

def swap(a):
    """(N, C, L) ↔ (N, L, C), contiguous."""
    return np.ascontiguousarray(np.swapaxes(a, 1, 2))


# --- naive oracles ------------------------------------------------------------------------
def naive_pool(r, k, s, p):
    """Max-pool of (N, C, L) in float64 loops with maxpool1d's rules: padding never wins,
    a NaN in the window wins (the first NaN), else the first maximum."""
    N, C, L = r.shape
    lo = (L + 2 * p - k) // s + 1
    y = np.empty((N, C, lo))
    arg = np.empty((N, C, lo), dtype=np.int64)
    for n in range(N):
        for c in range(C):
            for t in range(lo):
                real = [j for j in range(t * s - p, t * s - p + k) if 0 <= j < L]
                nans = [j for j in real if math.isnan(r[n, c, j])]
                if nans:
                    y[n, c, t], arg[n, c, t] = NAN, nans[0]
                    continue
                best = max(float(r[n, c, j]) for j in real)
                arg[n, c, t] = next(j for j in real if r[n, c, j] == best)
                y[n, c, t] = best
    return y, arg


def naive_relu(z):
    """max(z, 0) that keeps NaN, written without np.maximum."""
    return np.where(np.isnan(z), NAN, np.where(z > 0, z, 0.0))


def naive_conv(x, w, b, pl=0, pr=0):
    """Stride 1, dilation 1, float64: y[n,o,t] = b[o] + Σ_c Σ_k w[o,c,k]·xp[n,c,t+k]."""
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pl, pr)))
    K = w.shape[2]
    lo = xp.shape[2] - K + 1
    windows = np.stack([xp[:, :, k:k + lo] for k in range(K)], axis=-1)   # (N, C, Lo, K)
    with np.errstate(invalid="ignore"):
        return np.einsum("nctk,ock->not", windows, w.astype(np.float64)) + b[None, :, None]


# --- maxpool1d ----------------------------------------------------------------------------
POOLS = [
    dict(kernel_size=2, stride=2, padding=0),   # the network's pool (Numba's pair loops)
    dict(kernel_size=3, stride=1, padding=1),   # overlapping windows, padded edges
    dict(kernel_size=3, stride=2, padding=0),
    dict(kernel_size=2, stride=2, padding=1),   # edge windows with one real element
    dict(kernel_size=1, stride=1, padding=0),   # every window a single element
    dict(kernel_size=4, stride=3, padding=2),
]
L_POOL = 9   # odd: the pair loops leave the last position out


def _base(shape, seed=0):
    n = int(np.prod(shape))
    return (np.random.default_rng(seed).permutation(n) * 0.25 - n / 8).reshape(shape)


def pool_patterns(length):
    """(label, x) with NaN placed at every position: alone, before/after +inf, among
    −inf, and whole rows of NaN; always in sample 0 / channel 1, other rows finite."""
    out = []
    for j in range(length):
        x = _base((2, 3, length))
        x[0, 1, j] = NAN
        out.append((f"nan@{j}", x))
        if j + 1 < length:
            x = _base((2, 3, length))
            x[0, 1, j], x[0, 1, j + 1] = NAN, INF
            out.append((f"nan,inf@{j}", x))
            x = _base((2, 3, length))
            x[0, 1, j], x[0, 1, j + 1] = INF, NAN
            out.append((f"inf,nan@{j}", x))
        x = _base((2, 3, length))
        x[0, 1, :] = -INF
        x[0, 1, j] = NAN
        out.append((f"-inf row, nan@{j}", x))
    x = _base((2, 3, length))
    x[1, 0, :] = NAN
    out.append(("nan row", x))
    return out


@pytest.mark.parametrize("cl", [False, True], ids=["first", "last"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pool", POOLS, ids=lambda p: "K{kernel_size}S{stride}P{padding}"
                         .format(**p))
def test_maxpool1d_nan_in_a_window_gives_nan_at_its_first_position(backend, pool, dtype, cl):
    for label, x in pool_patterns(L_POOL):
        want_y, want_arg = naive_pool(x, pool["kernel_size"], pool["stride"], pool["padding"])
        xin = x.astype(dtype)
        y, arg = call("maxpool1d", backend, "fwd", swap(xin) if cl else xin, **pool,
                      channels_last=cl)
        if cl:
            y, arg = swap(y), swap(arg)
        assert y.dtype == np.dtype(dtype), label
        np.testing.assert_array_equal(y, want_y.astype(dtype), err_msg=label)
        np.testing.assert_array_equal(arg, want_arg, err_msg=label)


@pytest.mark.parametrize("cl", [False, True], ids=["first", "last"])
@pytest.mark.parametrize("pool", POOLS[:2], ids=["K2S2P0", "K3S1P1"])
def test_maxpool1d_gradient_of_a_nan_window_goes_to_its_first_nan(backend, pool, cl):
    x = _base((1, 2, L_POOL))
    x[0, 0, 2], x[0, 0, 3] = NAN, NAN            # window (2, 3) of the pair pool: both NaN
    x[0, 1, 5] = NAN
    _, want_arg = naive_pool(x, pool["kernel_size"], pool["stride"], pool["padding"])
    y, arg = call("maxpool1d", backend, "fwd", swap(x) if cl else x, **pool, channels_last=cl)
    gy = np.ones_like(y)
    (gx,) = call("maxpool1d", backend, "bwd", gy, arg, length=L_POOL, **pool,
                 channels_last=cl)
    gx = swap(gx) if cl else gx
    want = np.zeros_like(x)
    for c in range(2):
        np.add.at(want[0, c], want_arg[0, c], 1.0)
    np.testing.assert_array_equal(gx, want)
    if pool["stride"] == 2:
        assert gx[0, 0, 3] == 0.0 and gx[0, 0, 2] == 1.0    # the pair's first NaN only


# --- conv1d_relu --------------------------------------------------------------------------
#: A 1×1 convolution with exact float32 arithmetic: x multiples of 1/4, w = 1 and 1/2,
#: b = 1/4 and −1: z[n,o,t] = w[o]·x[n,0,t] + b[o], so a NaN (or +inf) at x[n,0,t] lands on
#: z[n,:,t] exactly and the expected output needs no rounding argument.
W1 = np.array([[[1.0]], [[0.5]]])
B1 = np.array([0.25, -1.0])


def relu_patterns(length):
    out = []
    for j in range(length):
        x = _base((2, 1, length))
        x[0, 0, j] = NAN
        out.append((f"nan@{j}", x, W1, B1))
        if j + 1 < length:
            x = _base((2, 1, length))
            x[0, 0, j], x[0, 0, j + 1] = INF, NAN
            out.append((f"inf,nan@{j}", x, W1, B1))
            x = _base((2, 1, length))
            x[0, 0, j], x[0, 0, j + 1] = NAN, INF
            out.append((f"nan,inf@{j}", x, W1, B1))
    b = B1.copy()
    b[1] = NAN
    out.append(("nan bias", _base((2, 1, length)), W1, b))
    w = W1.copy()
    w[0, 0, 0] = NAN
    out.append(("nan weight", _base((2, 1, length)), w, B1))
    return out


CONV = dict(stride=1, padding_left=0, padding_right=0, dilation=1)


@pytest.mark.parametrize("cl", [False, True], ids=["first", "last"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_conv1d_relu_passes_nan_through_the_relu(backend, dtype, cl, request):
    for label, x, w, b in relu_patterns(7):
        want = naive_relu(naive_conv(x, w, b))
        xin = x.astype(dtype)
        y = call("conv1d_relu", backend, "fwd", swap(xin) if cl else xin, w.astype(dtype),
                 b.astype(dtype), **CONV, channels_last=cl)
        y = swap(y) if cl else y
        assert y.dtype == np.dtype(dtype), label
        np.testing.assert_array_equal(y, want.astype(dtype), err_msg=label)


@pytest.mark.parametrize("cl", [False, True], ids=["first", "last"])
def test_conv1d_relu_nan_reaches_every_output_whose_window_holds_it(backend, cl, request):
    """K = 3 with padding (1, 1): a NaN at x[0, c, j] makes y[0, :, t] NaN for the three t
    whose window covers j, edges included, and nothing else."""
    rng = np.random.default_rng(5)
    w = rng.standard_normal((4, 3, 3))
    b = rng.standard_normal(4)
    for j in range(6):
        x = rng.standard_normal((2, 3, 6))
        x[0, 2, j] = NAN
        want = naive_relu(naive_conv(x, w, b, 1, 1))
        y = call("conv1d_relu", backend, "fwd", swap(x) if cl else x, w, b,
                 **dict(CONV, padding_left=1, padding_right=1), channels_last=cl)
        y = swap(y) if cl else y
        expected_nan = np.zeros(y.shape, dtype=bool)
        expected_nan[0, :, max(j - 1, 0):j + 2] = True
        np.testing.assert_array_equal(np.isnan(y), expected_nan, err_msg=f"nan@{j}")
        np.testing.assert_allclose(y, want, rtol=1e-12, atol=1e-12)


# --- conv1d_relu_maxpool ------------------------------------------------------------------
FUSED_POOLS = [
    dict(pool_size=2, pool_stride=2, pool_padding=0),    # the network's: the pair path
    dict(pool_size=3, pool_stride=2, pool_padding=1),    # the general path, padded
    dict(pool_size=2, pool_stride=1, pool_padding=1),
]


def _pool_args(p):
    return p["pool_size"], p["pool_stride"], p["pool_padding"]


@pytest.mark.parametrize("cl", [False, True], ids=["first", "last"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pool", FUSED_POOLS, ids=["K2S2P0", "K3S2P1", "K2S1P1"])
def test_conv1d_relu_maxpool_nan_in_a_window_gives_nan(backend, pool, dtype, cl, request):
    for label, x, w, b in relu_patterns(9):
        want_y, want_arg = naive_pool(naive_relu(naive_conv(x, w, b)), *_pool_args(pool))
        xin = x.astype(dtype)
        y, arg = call("conv1d_relu_maxpool", backend, "fwd", swap(xin) if cl else xin,
                      w.astype(dtype), b.astype(dtype), **CONV, **pool, channels_last=cl)
        if cl:
            y, arg = swap(y), swap(arg)
        assert y.dtype == np.dtype(dtype), label
        np.testing.assert_array_equal(y, want_y.astype(dtype), err_msg=label)
        np.testing.assert_array_equal(arg, want_arg, err_msg=label)


#: The network's two conv blocks (minimtl.bench.kernel_cases("conv1d_relu_maxpool")):
#: (C, O, L) with K = 3, pool 2; N = 34 crosses the Numba kernel's row chunk (2048 rows
#: of the convolution's output, 33 samples of L = 64).
NETWORK_BLOCKS = [(32, 64, 64), (64, 128, 31)]


@pytest.mark.parametrize("cl", [False, True], ids=["first", "last"])
@pytest.mark.parametrize("block", NETWORK_BLOCKS, ids=["32-64-L64", "64-128-L31"])
def test_conv1d_relu_maxpool_pair_path_at_the_network_shapes(backend, block, cl, request):
    """float32, the network's pool (K = S = 2): NaN at x positions of both parities (the
    NaN conv outputs start in the first or the second element of a pool pair), at the
    last position (whose conv outputs fall in the dropped odd tail when Lc is odd), and in
    one bias entry; every other window equals the NaN-free run bitwise."""
    C, O, L = block
    n = 34
    rng = np.random.default_rng([C, O, L])
    x = rng.standard_normal((n, C, L)).astype(np.float32)
    w = (rng.standard_normal((O, C, 3)) * (3 * C) ** -0.5).astype(np.float32)
    b = (rng.standard_normal(O) * 0.1).astype(np.float32)
    kw = dict(CONV, pool_size=2, pool_stride=2, pool_padding=0, channels_last=cl)
    lc = L - 2
    lp = lc // 2

    def run(xa, ba):
        y, arg = call("conv1d_relu_maxpool", backend, "fwd", swap(xa) if cl else xa, w, ba,
                      **kw)
        return (swap(y), swap(arg)) if cl else (y, arg)

    clean_y, clean_arg = run(x, b)
    assert np.isfinite(clean_y).all()
    xn = x.copy()
    marks = [(0, 0, 10), (1, C - 1, 13), (33, 5, L - 1), (2, 3, 0)]   # (n, c, j)
    for nn_, c, j in marks:
        xn[nn_, c, j] = NAN
    bn = b.copy()
    bn[O // 2] = NAN
    y, arg = run(xn, bn)
    want_nan = np.zeros((n, O, lp), dtype=bool)
    first_nan = np.full((n, O, lp), -1)
    for nn_, _, j in marks:
        for t in range(max(j - 2, 0), min(j, lc - 1) + 1):     # conv outputs covering j
            if t // 2 < lp:
                p = t // 2
                want_nan[nn_, :, p] = True
                first = first_nan[nn_, :, p]
                first_nan[nn_, :, p] = np.where((first < 0) | (first > t), t, first)
    want_nan[:, O // 2, :] = True
    first_nan[:, O // 2, :] = 2 * np.arange(lp)               # both NaN: the first wins
    np.testing.assert_array_equal(np.isnan(y), want_nan)
    np.testing.assert_array_equal(arg[want_nan], first_nan[want_nan])
    np.testing.assert_array_equal(y[~want_nan], clean_y[~want_nan])
    np.testing.assert_array_equal(arg[~want_nan], clean_arg[~want_nan])


# --- softmax, log_softmax, cross-entropies ------------------------------------------------
def row_patterns(k):
    """(label, x (4, k), index of the row that holds NaN) with rows 1..3 finite."""
    out = []
    for j in range(k):
        x = _base((4, k))
        x[0, j] = NAN
        out.append((f"nan@{j}", x))
        if j + 1 < k:
            x = _base((4, k))
            x[0, j], x[0, j + 1] = NAN, INF
            out.append((f"nan,inf@{j}", x))
            x = _base((4, k))
            x[0, j], x[0, j + 1] = INF, NAN
            out.append((f"inf,nan@{j}", x))
            x = _base((4, k))
            x[0, :] = -INF
            x[0, j] = NAN
            out.append((f"-inf row, nan@{j}", x))
    x = _base((4, k))
    x[0, :] = NAN
    out.append(("nan row", x))
    return out


def naive_log_softmax(x):
    x = x.astype(np.float64)
    out = np.empty_like(x)
    for i, row in enumerate(x):
        if np.isnan(row).any():
            out[i] = NAN
            continue
        m = max(row)
        out[i] = row - m - math.log(sum(math.exp(v - m) for v in row))
    return out


@LOG1P_OF_A_NAN_ROW
@pytest.mark.parametrize("k", [1, 5])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_row_with_a_nan_is_nan_and_other_rows_are_untouched(backend, op, dtype, k, request):
    # a row of one NaN is NaN whatever the max does (x − max is NaN): CUDA passes at k = 1
    for label, x in row_patterns(k):
        want = naive_log_softmax(x)
        if op == "softmax":
            want = np.exp(want)
        y = call(op, backend, "fwd", x.astype(dtype))
        assert y.dtype == np.dtype(dtype), label
        assert np.isnan(y[0]).all(), f"{label}: {y[0]}"
        np.testing.assert_allclose(y[1:], want[1:], rtol=1e-6 if dtype == "float32" else 1e-14,
                                   atol=1e-7 if dtype == "float32" else 1e-15, err_msg=label)


@LOG1P_OF_A_NAN_ROW
@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_of_a_row_with_a_nan_is_nan(backend, dtype, request):
    """The NaN sits in a class other than the label: the loss must still be NaN."""
    for label, x in row_patterns(5):
        labels = np.array([4 if label.startswith("nan@0") else 0, 1, 2, 3], dtype=np.int64)
        loss, _ = call("cross_entropy", backend, "fwd", x.astype(dtype), labels)
        assert math.isnan(loss[0]), f"{label}: loss {loss[0]}"
        want = -naive_log_softmax(x)[np.arange(4), labels]
        np.testing.assert_allclose(loss[1:], want[1:], rtol=1e-5)


@LOG1P_OF_A_NAN_ROW
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
@pytest.mark.parametrize("dtype", DTYPES)
def test_soft_cross_entropy_of_a_row_with_a_nan_is_nan(backend, dtype):
    """Every class has weight p > 0 (and 0·NaN is NaN too), so the loss is NaN even where
    the row maximum dropped the NaN: this guards the loss's own sum."""
    p = np.full((4, 5), 0.2)
    for label, x in row_patterns(5):
        loss, _ = call("soft_cross_entropy", backend, "fwd", x.astype(dtype), p.astype(dtype))
        assert math.isnan(loss[0]), f"{label}: loss {loss[0]}"
        assert np.isfinite(loss[1:]).all(), label
