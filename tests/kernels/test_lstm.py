"""Kernel-level tests of the LSTM family (kernels/lstm): reference vs naive loops, every
backend vs the reference, finite differences, the SPEC's properties, PyTorch as an oracle,
signature parity and an nvcc compile of the CUDA source."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import kernels
from kernels.lstm import reference
from minimtl.testing import arrays
from tests._util import agreement_err, bound, call, moderate_arrays, rel_err

OP = "lstm"
NAMES = ("x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh")
GRAD_NAMES = ("gx", "gh0", "gc0", "gw_ih", "gw_hh", "gb_ih", "gb_hh")


def shapes(N, T, D, H):
    """Shapes of (x, h0, c0, w_ih, w_hh, b_ih, b_hh)."""
    return ((N, T, D), (N, H), (N, H), (4 * H, D), (4 * H, H), (4 * H,), (4 * H,))


def random_inputs(rng, N, T, D, H, dtype=np.float64, scale=None):
    """x ~ N(0, 1), h0 and c0 in [-1, 1], weights and biases in [-scale, scale]
    (PyTorch's 1/√H by default)."""
    scale = 1 / math.sqrt(H) if scale is None else scale
    sizes = shapes(N, T, D, H)
    out = [rng.standard_normal(sizes[0])] + [rng.uniform(-1, 1, s) for s in sizes[1:3]]
    out += [rng.uniform(-scale, scale, s) for s in sizes[3:]]
    return [a.astype(dtype) for a in out]


# Agreement tests draw x, h0, c0 in [-1, 1] and weights, biases in [-0.25, 0.25]: with
# D, H ≤ 4 every pre-activation stays within ±2.5. Where the gates saturate, σ(1 − σ) and
# 1 − tanh² are computed from values rounded to the working precision, so a gradient whose
# every entry went through saturated gates has no meaningful *relative* error; the
# wide-range fixed case below checks the forward pass there. Magnitudes below 2⁻²⁰ are
# drawn as 0: products of several tiny float32 values underflow where the float64
# reference does not.
@st.composite
def lstm_case(draw, dtype, max_n=3, max_t=6, max_d=4, max_h=4, w=0.25):
    """((x, h0, c0, w_ih, w_hh, b_ih, b_hh), ghs, gcs) of small random shapes."""
    N, T, D, H = (draw(st.integers(1, m)) for m in (max_n, max_t, max_d, max_h))
    sizes = shapes(N, T, D, H)
    inputs = [draw(moderate_arrays(s, dtype, 1)) for s in sizes[:3]]
    inputs += [draw(moderate_arrays(s, dtype, w)) for s in sizes[3:]]
    ghs = draw(moderate_arrays((N, T, H), dtype, 1))
    gcs = draw(moderate_arrays((N, T, H), dtype, 1))
    return inputs, ghs, gcs


# ----------------------------------------------------------------------------------------
# (a) the reference against naive scalar loops


def _sig(a):
    return 1.0 / (1.0 + math.exp(-a))


def naive_fwd(x, h0, c0, w_ih, w_hh, b_ih, b_hh):
    """Scalar loops straight from PyTorch's LSTM equations: (hs, cs, gates)."""
    N, T, D = x.shape
    H = h0.shape[1]
    hs, cs, gates = np.zeros((N, T, H)), np.zeros((N, T, H)), np.zeros((N, T, 4 * H))
    for n in range(N):
        h = [float(v) for v in h0[n]]
        c = [float(v) for v in c0[n]]
        for t in range(T):
            new_h, new_c = [], []
            for j in range(H):
                z = [
                    b_ih[q * H + j]
                    + b_hh[q * H + j]
                    + sum(w_ih[q * H + j, d] * x[n, t, d] for d in range(D))
                    + sum(w_hh[q * H + j, k] * h[k] for k in range(H))
                    for q in range(4)
                ]
                i, f, g, o = _sig(z[0]), _sig(z[1]), math.tanh(z[2]), _sig(z[3])
                new_c.append(f * c[j] + i * g)
                new_h.append(o * math.tanh(new_c[-1]))
                gates[n, t, [j, H + j, 2 * H + j, 3 * H + j]] = i, f, g, o
            h, c = new_h, new_c
            hs[n, t], cs[n, t] = h, c
    return hs, cs, gates


def naive_grads(ghs, gcs, x, h0, c0, w_ih, w_hh, b_ih, b_hh):
    """Every gradient by backpropagation through time, one scalar at a time."""
    N, T, D = x.shape
    H = h0.shape[1]
    hs, cs, gates = naive_fwd(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
    gx, gh0, gc0 = np.zeros_like(x), np.zeros_like(h0), np.zeros_like(c0)
    gw_ih, gw_hh = np.zeros_like(w_ih), np.zeros_like(w_hh)
    gb_ih, gb_hh = np.zeros_like(b_ih), np.zeros_like(b_hh)
    for n in range(N):
        gh_next = [0.0] * H  # dℓ/dh_t arriving from step t+1
        gc_next = [0.0] * H  # dℓ/dc_t arriving from step t+1
        for t in reversed(range(T)):
            hprev = h0[n] if t == 0 else hs[n, t - 1]
            cprev = c0[n] if t == 0 else cs[n, t - 1]
            gh_prev, gc_prev = [0.0] * H, [0.0] * H
            for j in range(H):
                i, f, g, o = (gates[n, t, q * H + j] for q in range(4))
                tc = math.tanh(cs[n, t, j])
                gh = ghs[n, t, j] + gh_next[j]
                # h = o·tanh(c); c = f·cprev + i·g
                gc = gcs[n, t, j] + gc_next[j] + gh * o * (1 - tc * tc)
                gc_prev[j] = gc * f
                dz = (
                    gc * g * i * (1 - i),
                    gc * cprev[j] * f * (1 - f),
                    gc * i * (1 - g * g),
                    gh * tc * o * (1 - o),
                )
                # z_q = W_ih[q] x + b_ih[q] + W_hh[q] hprev + b_hh[q]
                for q in range(4):
                    row = q * H + j
                    gb_ih[row] += dz[q]
                    gb_hh[row] += dz[q]
                    for d in range(D):
                        gw_ih[row, d] += dz[q] * x[n, t, d]
                        gx[n, t, d] += dz[q] * w_ih[row, d]
                    for k in range(H):
                        gw_hh[row, k] += dz[q] * hprev[k]
                        gh_prev[k] += dz[q] * w_hh[row, k]
            gh_next, gc_next = gh_prev, gc_prev
        gh0[n], gc0[n] = gh_next, gc_next
    return gx, gh0, gc0, gw_ih, gw_hh, gb_ih, gb_hh


@pytest.mark.parametrize("N,T,D,H", [(2, 3, 3, 2), (1, 1, 1, 1), (3, 4, 2, 3)])
def test_reference_forward_equals_naive_loops(N, T, D, H):
    rng = np.random.default_rng(N * 100 + T * 10 + H)
    inputs = random_inputs(rng, N, T, D, H, scale=1.0)
    for name, got, want in zip(("hs", "cs", "gates"), reference.fwd(*inputs), naive_fwd(*inputs)):
        assert rel_err(got, want) < 1e-12, name


@pytest.mark.parametrize("N,T,D,H", [(2, 3, 3, 2), (1, 1, 1, 1), (3, 4, 2, 3)])
def test_reference_backward_equals_naive_loops(N, T, D, H):
    rng = np.random.default_rng(7 + N * 100 + T * 10 + H)
    inputs = random_inputs(rng, N, T, D, H, scale=1.0)
    ghs, gcs = rng.standard_normal((2, N, T, H))
    outs = reference.fwd(*inputs)
    got = reference.bwd(ghs, gcs, *inputs[:5], *outs)
    want = naive_grads(ghs, gcs, *inputs)
    assert isinstance(got, tuple) and len(got) == 7
    for name, a, b in zip(GRAD_NAMES, got, want):
        assert rel_err(a, b) < 1e-12, name


def test_reference_rejects_inconsistent_shapes():
    rng = np.random.default_rng(0)
    x, h0, c0, w_ih, w_hh, b_ih, b_hh = random_inputs(rng, 2, 3, 4, 5)
    with pytest.raises(ValueError, match="lstm"):
        reference.fwd(x, h0, c0, w_ih[:, :3], w_hh, b_ih, b_hh)
    with pytest.raises(ValueError, match="lstm"):
        reference.fwd(x, h0, c0[:1], w_ih, w_hh, b_ih, b_hh)
    with pytest.raises(ValueError, match="lstm"):
        reference.fwd(x, h0, c0, w_ih[:15], w_hh, b_ih, b_hh)
    with pytest.raises(ValueError, match="lstm"):
        reference.fwd(x, h0, c0, w_ih, w_hh, b_ih, b_hh[:5])


# ----------------------------------------------------------------------------------------
# (b) every backend against the reference computed in float64 on the same values


def _check_against_reference(backend, inputs, ghs, gcs, check_backward=True):
    """Forward and backward of ``backend`` against the reference in float64 on the same
    values (``agreement_err`` against TESTING.md's bound), dtypes, nothing written."""
    dtype = inputs[0].dtype
    copies = [a.copy() for a in inputs]
    outs = call(OP, backend, "fwd", *inputs)
    inputs64 = [a.astype(np.float64) for a in inputs]
    abs64 = [np.abs(a) for a in inputs64]
    ref_outs = reference.fwd(*inputs64)
    mag_outs = reference.fwd(*abs64)
    tol = bound(dtype, "rnn")
    assert isinstance(outs, tuple) and len(outs) == 3
    for name, got, want, mag in zip(("hs", "cs", "gates"), outs, ref_outs, mag_outs):
        assert got.dtype == dtype, name
        assert got.shape == want.shape, name
        assert agreement_err(got, want, mag) <= tol, name
    if check_backward:
        saved = [a.copy() for a in (ghs, gcs, *outs)]
        grads = call(OP, backend, "bwd", ghs, gcs, *inputs[:5], *outs)
        for a, b in zip((ghs, gcs, *outs), saved):
            np.testing.assert_array_equal(a, b)  # the saved arrays are not written either
        up64 = [ghs.astype(np.float64), gcs.astype(np.float64)]
        ref_grads = reference.bwd(*up64, *inputs64[:5], *ref_outs)
        mags = reference.bwd(*(np.abs(a) for a in (*up64, *inputs64[:5], *ref_outs)))
        assert isinstance(grads, tuple) and len(grads) == 7
        for name, got, want, mag in zip(GRAD_NAMES, grads, ref_grads, mags):
            assert got.dtype == dtype, name
            assert got.shape == want.shape, name
            assert agreement_err(got, want, mag) <= tol, name
    for a, b in zip(inputs, copies):
        np.testing.assert_array_equal(a, b)  # inputs never written


@given(st.data())
def test_backend_matches_reference(backend, data):
    dtype = data.draw(st.sampled_from(["float32", "float64"]))
    inputs, ghs, gcs = data.draw(lstm_case(dtype))
    _check_against_reference(backend, inputs, ghs, gcs)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "N,T,D,H",
    [
        (1, 1, 1, 1),  # one step, one unit
        (5, 10, 7, 9),  # T = 10; N not a multiple of the row blocks
        (3, 4, 2, 80),  # 4H > threads per block
        (2, 3, 4, 130),  # W_hh too big for shared memory
        (1100, 2, 3, 5),  # several batch rows per CUDA block
    ],
)
def test_backend_matches_reference_fixed_shapes(backend, dtype, N, T, D, H):
    rng = np.random.default_rng(N + 10 * T + 100 * D + 1000 * H)
    inputs = random_inputs(rng, N, T, D, H, dtype)
    ghs, gcs = rng.uniform(-1, 1, (2, N, T, H)).astype(dtype)
    _check_against_reference(backend, inputs, ghs, gcs)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_backend_forward_matches_reference_when_gates_saturate(backend, dtype):
    rng = np.random.default_rng(3)
    inputs = [rng.uniform(-10, 10, s).astype(dtype) for s in shapes(3, 5, 4, 4)]
    _check_against_reference(backend, inputs, None, None, check_backward=False)
    for out in call(OP, backend, "fwd", *inputs):
        assert np.all(np.isfinite(out))


def test_backend_handles_empty_batch(backend):
    rng = np.random.default_rng(0)
    inputs = random_inputs(rng, 0, 3, 2, 4)
    hs, cs, gates = call(OP, backend, "fwd", *inputs)
    assert hs.shape == cs.shape == (0, 3, 4) and gates.shape == (0, 3, 16)
    up = np.zeros((0, 3, 4))
    grads = call(OP, backend, "bwd", up, up, *inputs[:5], hs, cs, gates)
    for g, a in zip(grads, inputs):
        assert g.shape == a.shape
    for g in grads[3:]:
        np.testing.assert_array_equal(g, 0)


# ----------------------------------------------------------------------------------------
# (c) finite differences, float64: <gy, (f(v + εu) − f(v − εu)) / 2ε> vs <bwd(gy), u>,
# with ℓ = <ghs, hs> + <gcs, cs>


@pytest.mark.parametrize("backend_name", ["numpy", "numba"])
@pytest.mark.parametrize("N,T,D,H", [(2, 4, 3, 3), (1, 1, 2, 1)])
def test_backward_matches_finite_differences(backend_name, N, T, D, H):
    rng = np.random.default_rng(11 + T)
    k = kernels.get(OP, backend_name)
    inputs = random_inputs(rng, N, T, D, H, scale=1.0)
    ghs, gcs = rng.standard_normal((2, N, T, H))
    grads = k.bwd(ghs, gcs, *inputs[:5], *k.fwd(*inputs))

    def loss(args):
        hs, cs, _ = k.fwd(*args)
        return np.sum(ghs * hs) + np.sum(gcs * cs)

    eps = 1e-6
    for i, name in enumerate(NAMES):
        u = rng.standard_normal(inputs[i].shape)
        plus, minus = list(inputs), list(inputs)
        plus[i] = inputs[i] + eps * u
        minus[i] = inputs[i] - eps * u
        numeric = (loss(plus) - loss(minus)) / (2 * eps)
        analytic = np.sum(grads[i] * u)
        assert abs(numeric - analytic) <= 1e-7 * max(abs(analytic), 1.0), name


# ----------------------------------------------------------------------------------------
# (d) properties, on every backend


@given(st.data())
def test_zero_weights_halve_the_cell_each_step(backend, data):
    """w = b = 0 ⇒ i = f = o = ½, g = 0 ⇒ c_t = 0.5ᵗ·c0 and h_t = 0.5·tanh(c_t), whatever
    x and h0."""
    dtype = data.draw(st.sampled_from(["float32", "float64"]))
    N, T, D, H = (data.draw(st.integers(1, m)) for m in (3, 8, 3, 4))
    x = data.draw(arrays((N, T, D), dtype))
    h0 = data.draw(arrays((N, H), dtype))
    c0 = data.draw(moderate_arrays((N, H), dtype, 10))  # 0.5ᵗ·c0 stays a normal number
    zeros = [np.zeros(s, dtype) for s in shapes(N, T, D, H)[3:]]
    hs, cs, gates = call(OP, backend, "fwd", x, h0, c0, *zeros)
    want_cs = np.stack([c0 * 0.5 ** (t + 1) for t in range(T)], axis=1)
    np.testing.assert_array_equal(cs, want_cs.astype(dtype))
    want_hs = 0.5 * np.tanh(want_cs.astype(np.float64))
    assert rel_err(hs, want_hs) <= bound(dtype)
    want_gates = np.concatenate([np.full((N, T, H), v) for v in (0.5, 0.5, 0, 0.5)], axis=2)
    np.testing.assert_array_equal(gates, want_gates.astype(dtype))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_one_step_equals_one_lstm_cell(backend, dtype):
    rng = np.random.default_rng(5)
    N, D, H = 3, 4, 5
    inputs = random_inputs(rng, N, 1, D, H, dtype, scale=1.0)
    hs, cs, _ = call(OP, backend, "fwd", *inputs)
    x, h0, c0, w_ih, w_hh, b_ih, b_hh = (a.astype(np.float64) for a in inputs)
    z = x[:, 0] @ w_ih.T + b_ih + h0 @ w_hh.T + b_hh
    zi, zf, zg, zo = np.split(z, 4, axis=1)
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    c1 = sig(zf) * c0 + sig(zi) * np.tanh(zg)
    h1 = sig(zo) * np.tanh(c1)
    assert hs.shape == cs.shape == (N, 1, H)
    assert rel_err(cs[:, 0], c1) <= bound(dtype, "rnn")
    assert rel_err(hs[:, 0], h1) <= bound(dtype, "rnn")


@given(st.data())
def test_future_inputs_do_not_change_past_states(backend, data):
    inputs, _, _ = data.draw(lstm_case("float64"))
    x = inputs[0]
    t = data.draw(st.integers(0, x.shape[1] - 1))
    x2 = x.copy()
    x2[:, t + 1 :] = data.draw(arrays(x[:, t + 1 :].shape, "float64", -1, 1))
    hs, cs, _ = call(OP, backend, "fwd", *inputs)
    hs2, cs2, _ = call(OP, backend, "fwd", x2, *inputs[1:])
    np.testing.assert_allclose(hs2[:, : t + 1], hs[:, : t + 1], rtol=0, atol=1e-14)
    np.testing.assert_allclose(cs2[:, : t + 1], cs[:, : t + 1], rtol=0, atol=1e-14)


@given(st.data())
def test_batch_rows_are_independent(backend, data):
    inputs, ghs, gcs = data.draw(lstm_case("float64", max_n=5))
    x, h0, c0 = inputs[:3]
    weights = inputs[3:]
    outs = call(OP, backend, "fwd", *inputs)
    gx, gh0, gc0, *_ = call(OP, backend, "bwd", ghs, gcs, *inputs[:5], *outs)
    for n in range(x.shape[0]):
        row = slice(n, n + 1)
        one = (x[row], h0[row], c0[row], *weights)
        outs_n = call(OP, backend, "fwd", *one)
        for a, b in zip(outs_n, outs):
            np.testing.assert_allclose(a[0], b[n], rtol=1e-12, atol=1e-14)
        grads_n = call(OP, backend, "bwd", ghs[row], gcs[row], *one[:5], *outs_n)
        for a, b in zip(grads_n[:3], (gx, gh0, gc0)):
            np.testing.assert_allclose(a[0], b[n], rtol=1e-12, atol=1e-14)


@given(st.data())
def test_hidden_states_stay_inside_unit_interval(backend, data):
    """h = o·tanh(c) with o ∈ (0, 1): |h| < 1, strict while the cell is moderate (tanh
    rounds to ±1 beyond about 9 in float32 and 19 in float64); |h| ≤ 1 for any input."""
    inputs, _, _ = data.draw(lstm_case("float64", w=1.0))
    hs, _, _ = call(OP, backend, "fwd", *inputs)
    assert np.all(np.abs(hs) < 1)
    dtype = data.draw(st.sampled_from(["float32", "float64"]))
    sizes = shapes(*inputs[0].shape, inputs[1].shape[1])
    wide = [data.draw(arrays(s, dtype, -10, 10)) for s in sizes]
    hs, _, gates = call(OP, backend, "fwd", *wide)
    assert np.all(np.abs(hs) <= 1)
    assert np.all(np.abs(gates) <= 1)


# ----------------------------------------------------------------------------------------
# (e) PyTorch as an oracle, weight for weight


@pytest.mark.parametrize("N,T,D,H", [(3, 5, 4, 6), (1, 1, 3, 2), (4, 7, 1, 3), (2, 3, 5, 5)])
def test_matches_torch_lstm(backend, N, T, D, H):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(N + 7 * T + 31 * H)
    torch.manual_seed(N + T)
    lstm = torch.nn.LSTM(D, H, batch_first=True).double()
    params = (lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0)
    weights = [p.detach().numpy().copy() for p in params]
    x = rng.standard_normal((N, T, D))
    h0, c0 = rng.uniform(-1, 1, (2, N, H))
    ghs = rng.standard_normal((N, T, H))
    gh_final, gc_final = rng.standard_normal((2, N, H))

    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0[None], requires_grad=True)
    c0t = torch.tensor(c0[None], requires_grad=True)
    out, (hn, cn) = lstm(xt, (h0t, c0t))
    loss = torch.sum(out * torch.tensor(ghs)) + torch.sum(hn[0] * torch.tensor(gh_final))
    (loss + torch.sum(cn[0] * torch.tensor(gc_final))).backward()

    hs, cs, gates = call(OP, backend, "fwd", x, h0, c0, *weights)
    assert rel_err(hs, out.detach().numpy()) < 1e-10
    assert rel_err(hs[:, -1], hn.detach().numpy()[0]) < 1e-10
    assert rel_err(cs[:, -1], cn.detach().numpy()[0]) < 1e-10
    g_hs = ghs.copy()
    g_hs[:, -1] += gh_final  # the final state is hs[:, -1]
    g_cs = np.zeros((N, T, H))
    g_cs[:, -1] = gc_final  # the final cell is cs[:, -1]
    grads = call(OP, backend, "bwd", g_hs, g_cs, x, h0, c0, *weights[:2], hs, cs, gates)
    want = [xt.grad.numpy(), h0t.grad.numpy()[0], c0t.grad.numpy()[0]]
    want += [p.grad.numpy() for p in params]
    for name, got, w in zip(GRAD_NAMES, grads, want):
        assert rel_err(got, w) < 1e-10, name


# ----------------------------------------------------------------------------------------
# (f) signature parity and (g) the CUDA source compiles




