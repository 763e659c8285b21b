"""Kernel-level tests of the GRU family (kernels/gru): reference vs naive loops, every backend
vs the reference, finite differences, the SPEC's properties, PyTorch as an oracle,
signature parity and an nvcc compile of the CUDA source."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import kernels
from kernels.gru import reference
from minimtl.testing import arrays
from tests._util import bound, call, moderate_arrays, rel_err

OP = "gru"
NAMES = ("x", "h0", "w_ih", "w_hh", "b_ih", "b_hh")
GRAD_NAMES = ("gx", "gh0", "gw_ih", "gw_hh", "gb_ih", "gb_hh")


def shapes(N, T, D, H):
    """Shapes of (x, h0, w_ih, w_hh, b_ih, b_hh)."""
    return ((N, T, D), (N, H), (3 * H, D), (3 * H, H), (3 * H,), (3 * H,))


def random_inputs(rng, N, T, D, H, dtype=np.float64, scale=0.5):
    """Inputs in [-1, 1] and weights in [-scale, scale]."""
    sizes = shapes(N, T, D, H)
    out = [rng.uniform(-1, 1, sizes[0]), rng.uniform(-1, 1, sizes[1])]
    out += [rng.uniform(-scale, scale, s) for s in sizes[2:]]
    return [a.astype(dtype) for a in out]


# Agreement tests draw x, h0 in [-1, 1] and weights, biases in [-0.375, 0.375] (about the
# scale of PyTorch's init, 1/√H): pre-activations stay within ±3.75. Where every gate
# saturates, the gradients are products like z·(1 − z) with z rounded to the working
# precision, so their normwise *relative* error says nothing about the kernel; the extreme
# fixed cases below check the forward pass there. Magnitudes below 2⁻²⁰ are drawn as 0:
# products of several tiny float32 values underflow where the float64 reference does not.
@st.composite
def gru_case(draw, dtype, max_n=3, max_t=6, max_d=4, max_h=4, w=0.375):
    N = draw(st.integers(1, max_n))
    T = draw(st.integers(1, max_t))
    D = draw(st.integers(1, max_d))
    H = draw(st.integers(1, max_h))
    sizes = shapes(N, T, D, H)
    inputs = [draw(moderate_arrays(sizes[0], dtype, 1)), draw(moderate_arrays(sizes[1], dtype, 1))]
    inputs += [draw(moderate_arrays(s, dtype, w)) for s in sizes[2:]]
    ghs = draw(moderate_arrays((N, T, H), dtype, 1))
    return inputs, ghs


# ----------------------------------------------------------------------------------------
# (a) the reference against naive scalar loops


def _sig(a):
    return 1.0 / (1.0 + math.exp(-a))


def naive_fwd(x, h0, w_ih, w_hh, b_ih, b_hh):
    """Scalar loops straight from PyTorch's GRU equations; also returns the gates."""
    N, T, D = x.shape
    H = h0.shape[1]
    hs = np.zeros((N, T, H))
    gates = np.zeros((N, T, 4 * H))
    for n in range(N):
        h = [float(v) for v in h0[n]]
        for t in range(T):
            new = []
            for j in range(H):
                pi = [
                    b_ih[g * H + j] + sum(w_ih[g * H + j, d] * x[n, t, d] for d in range(D))
                    for g in range(3)
                ]
                qh = [
                    b_hh[g * H + j] + sum(w_hh[g * H + j, k] * h[k] for k in range(H))
                    for g in range(3)
                ]
                r = _sig(pi[0] + qh[0])
                z = _sig(pi[1] + qh[1])
                c = math.tanh(pi[2] + r * qh[2])
                new.append((1 - z) * c + z * h[j])
                gates[n, t, [j, H + j, 2 * H + j, 3 * H + j]] = r, z, c, qh[2]
            h = new
            hs[n, t] = h
    return hs, gates


def naive_grads(ghs, x, h0, w_ih, w_hh, b_ih, b_hh):
    """Every gradient by scalar loops: backpropagation through time element by element."""
    N, T, D = x.shape
    H = h0.shape[1]
    hs, gates = naive_fwd(x, h0, w_ih, w_hh, b_ih, b_hh)
    gx = np.zeros_like(x)
    gh0 = np.zeros_like(h0)
    gw_ih = np.zeros_like(w_ih)
    gw_hh = np.zeros_like(w_hh)
    gb_ih = np.zeros_like(b_ih)
    gb_hh = np.zeros_like(b_hh)
    for n in range(N):
        g = [0.0] * H  # dℓ/dh_t arriving from later steps
        for t in reversed(range(T)):
            hprev = h0[n] if t == 0 else hs[n, t - 1]
            gprev = [0.0] * H
            for j in range(H):
                r, z, c, m = (gates[n, t, i * H + j] for i in range(4))
                gh = g[j] + ghs[n, t, j]
                # h = (1 − z) c + z hprev
                dc = gh * (1 - z)
                dz = gh * (hprev[j] - c)
                gprev[j] += gh * z
                # c = tanh(a_n), a_n = p_n + r m
                da_n = dc * (1 - c * c)
                dr = da_n * m
                dm = da_n * r
                da_r = dr * r * (1 - r)
                da_z = dz * z * (1 - z)
                # p_g = W_ig x + b_ig; q_g = W_hg hprev + b_hg, with q_n = m
                for gate, dp, dq in ((0, da_r, da_r), (1, da_z, da_z), (2, da_n, dm)):
                    row = gate * H + j
                    gb_ih[row] += dp
                    gb_hh[row] += dq
                    for d in range(D):
                        gw_ih[row, d] += dp * x[n, t, d]
                        gx[n, t, d] += dp * w_ih[row, d]
                    for k in range(H):
                        gw_hh[row, k] += dq * hprev[k]
                        gprev[k] += dq * w_hh[row, k]
            g = gprev
        gh0[n] = g
    return gx, gh0, gw_ih, gw_hh, gb_ih, gb_hh


@pytest.mark.parametrize("N,T,D,H", [(2, 3, 3, 2), (1, 1, 1, 1), (3, 4, 2, 3)])
def test_reference_forward_equals_naive_loops(N, T, D, H):
    rng = np.random.default_rng(N * 100 + T * 10 + H)
    inputs = random_inputs(rng, N, T, D, H, scale=1.0)
    hs, gates = reference.fwd(*inputs)
    want_hs, want_gates = naive_fwd(*inputs)
    assert rel_err(hs, want_hs) < 1e-12
    assert rel_err(gates, want_gates) < 1e-12


@pytest.mark.parametrize("N,T,D,H", [(2, 3, 3, 2), (1, 1, 1, 1), (3, 4, 2, 3)])
def test_reference_backward_equals_naive_loops(N, T, D, H):
    rng = np.random.default_rng(7 + N * 100 + T * 10 + H)
    inputs = random_inputs(rng, N, T, D, H, scale=1.0)
    ghs = rng.standard_normal((N, T, H))
    hs, gates = reference.fwd(*inputs)
    got = reference.bwd(ghs, *inputs[:4], hs, gates)
    want = naive_grads(ghs, *inputs)
    for name, a, b in zip(GRAD_NAMES, got, want):
        assert rel_err(a, b) < 1e-12, name


def test_reference_rejects_inconsistent_shapes():
    rng = np.random.default_rng(0)
    x, h0, w_ih, w_hh, b_ih, b_hh = random_inputs(rng, 2, 3, 4, 5)
    with pytest.raises(ValueError, match="gru"):
        reference.fwd(x, h0, w_ih[:, :3], w_hh, b_ih, b_hh)
    with pytest.raises(ValueError, match="gru"):
        reference.fwd(x, h0[:1], w_ih, w_hh, b_ih, b_hh)
    with pytest.raises(ValueError, match="gru"):
        reference.fwd(x, h0, w_ih, w_hh, b_ih[:5], b_hh)


# ----------------------------------------------------------------------------------------
# (b) every backend against the reference computed in float64 on the same values


def _check_against_reference(backend, inputs, ghs, check_backward=True):
    dtype = inputs[0].dtype
    copies = [a.copy() for a in inputs]
    hs, gates = call(OP, backend, "fwd", *inputs)
    inputs64 = [a.astype(np.float64) for a in inputs]
    ref_hs, ref_gates = reference.fwd(*inputs64)
    tol = bound(dtype, "rnn")
    assert hs.dtype == dtype and gates.dtype == dtype
    assert hs.shape == ref_hs.shape and gates.shape == ref_gates.shape
    assert rel_err(hs, ref_hs) <= tol
    assert rel_err(gates, ref_gates) <= tol
    if check_backward:
        saved = [ghs.copy(), hs.copy(), gates.copy()]
        grads = call(OP, backend, "bwd", ghs, *inputs[:4], hs, gates)
        for a, b in zip((ghs, hs, gates), saved):
            np.testing.assert_array_equal(a, b)  # nor are the saved arrays
        ref_grads = reference.bwd(ghs.astype(np.float64), *inputs64[:4], ref_hs, ref_gates)
        assert isinstance(grads, tuple) and len(grads) == 6
        for name, got, want in zip(GRAD_NAMES, grads, ref_grads):
            assert got.dtype == dtype, name
            assert rel_err(got, want) <= tol, name
    for a, b in zip(inputs, copies):
        np.testing.assert_array_equal(a, b)  # inputs never written


@given(st.data())
def test_backend_matches_reference(backend, data):
    dtype = data.draw(st.sampled_from(["float32", "float64"]))
    inputs, ghs = data.draw(gru_case(dtype))
    _check_against_reference(backend, inputs, ghs)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "N,T,D,H",
    [(1, 1, 1, 1), (3, 10, 2, 5), (5, 2, 6, 1), (7, 3, 3, 33), (1, 10, 1, 2), (6, 2, 3, 100)],
)
def test_backend_matches_reference_fixed_shapes(backend, dtype, N, T, D, H):
    """Single steps, T = 10, H = 1, odd H across warps/blocks, N not a multiple of 4; H = 100
    puts W_hh over 48 KiB (float32) and over the GPU's shared memory (float64)."""
    rng = np.random.default_rng(N + 10 * T + 100 * D + 1000 * H)
    inputs = random_inputs(rng, N, T, D, H, dtype, scale=1 / math.sqrt(H))
    ghs = rng.uniform(-1, 1, (N, T, H)).astype(dtype)
    _check_against_reference(backend, inputs, ghs)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_backend_forward_matches_reference_when_gates_saturate(backend, dtype):
    rng = np.random.default_rng(3)
    N, T, D, H = 3, 5, 4, 4
    inputs = [rng.uniform(-10, 10, s).astype(dtype) for s in shapes(N, T, D, H)]
    _check_against_reference(backend, inputs, None, check_backward=False)
    hs, _ = call(OP, backend, "fwd", *inputs)
    assert np.all(np.isfinite(hs))


def test_noncontiguous_inputs_give_the_same_result(backend):
    rng = np.random.default_rng(8)
    inputs = random_inputs(rng, 3, 4, 5, 6)
    ghs = rng.standard_normal((3, 4, 6))
    # every array as a strided view: every other element of a twice-as-long last axis
    views = [np.repeat(a, 2, axis=-1)[..., ::2] for a in inputs]
    assert not any(v.flags.c_contiguous for v in views)
    hs, gates = call(OP, backend, "fwd", *inputs)
    hs_v, gates_v = call(OP, backend, "fwd", *views)
    np.testing.assert_allclose(hs_v, hs, rtol=1e-12, atol=1e-14)
    grads = call(OP, backend, "bwd", ghs, *inputs[:4], hs, gates)
    strided = [np.repeat(a, 2, axis=-1)[..., ::2] for a in (ghs, hs, gates)]
    grads_v = call(OP, backend, "bwd", strided[0], *views[:4], *strided[1:])
    for name, a, b in zip(GRAD_NAMES, grads_v, grads):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14, err_msg=name)


def test_backend_handles_empty_batch(backend):
    rng = np.random.default_rng(0)
    x, h0, w_ih, w_hh, b_ih, b_hh = random_inputs(rng, 0, 3, 2, 4)
    hs, gates = call(OP, backend, "fwd", x, h0, w_ih, w_hh, b_ih, b_hh)
    assert hs.shape == (0, 3, 4) and gates.shape == (0, 3, 16)
    grads = call(OP, backend, "bwd", np.zeros((0, 3, 4)), x, h0, w_ih, w_hh, hs, gates)
    for g, a in zip(grads, (x, h0, w_ih, w_hh, b_ih, b_hh)):
        assert g.shape == a.shape
    for g in grads[2:]:
        np.testing.assert_array_equal(g, 0)


# ----------------------------------------------------------------------------------------
# (c) finite differences, float64: <gy, (f(v + εu) − f(v − εu)) / 2ε> vs <bwd(gy), u>


@pytest.mark.parametrize("backend_name", ["numpy", "numba"])
@pytest.mark.parametrize("N,T,D,H", [(2, 4, 3, 3), (1, 1, 2, 1)])
def test_backward_matches_finite_differences(backend_name, N, T, D, H):
    rng = np.random.default_rng(11 + T)
    k = kernels.get(OP, backend_name)
    inputs = random_inputs(rng, N, T, D, H, scale=1.0)
    ghs = rng.standard_normal((N, T, H))
    hs, gates = k.fwd(*inputs)
    grads = k.bwd(ghs, *inputs[:4], hs, gates)
    eps = 1e-6
    for i, name in enumerate(NAMES):
        u = rng.standard_normal(inputs[i].shape)
        plus = list(inputs)
        minus = list(inputs)
        plus[i] = inputs[i] + eps * u
        minus[i] = inputs[i] - eps * u
        numeric = np.sum(ghs * (k.fwd(*plus)[0] - k.fwd(*minus)[0])) / (2 * eps)
        analytic = np.sum(grads[i] * u)
        assert abs(numeric - analytic) <= 1e-7 * max(abs(analytic), 1.0), name


# ----------------------------------------------------------------------------------------
# (d) properties, on every backend


@given(st.data())
def test_zero_weights_halve_the_state_each_step(backend, data):
    """w = b = 0 ⇒ r = z = ½, n = 0, so h_t = 0.5ᵗ·h0 whatever x."""
    dtype = data.draw(st.sampled_from(["float32", "float64"]))
    N, T, D, H = data.draw(st.tuples(*(st.integers(1, m) for m in (3, 8, 3, 4))))
    x = data.draw(arrays((N, T, D), dtype))
    h0 = data.draw(moderate_arrays((N, H), dtype, 10))  # 0.5ᵗ·h0 stays a normal number
    zeros = [np.zeros(s, dtype) for s in shapes(N, T, D, H)[2:]]
    hs, _ = call(OP, backend, "fwd", x, h0, *zeros)
    want = np.stack([h0 * 0.5 ** (t + 1) for t in range(T)], axis=1)
    np.testing.assert_array_equal(hs, want.astype(dtype))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_one_step_equals_one_gru_cell(backend, dtype):
    rng = np.random.default_rng(5)
    N, D, H = 3, 4, 5
    x, h0, w_ih, w_hh, b_ih, b_hh = random_inputs(rng, N, 1, D, H, dtype, scale=1.0)
    hs, _ = call(OP, backend, "fwd", x, h0, w_ih, w_hh, b_ih, b_hh)
    v = [a.astype(np.float64) for a in (x[:, 0], h0, w_ih, w_hh, b_ih, b_hh)]
    xt, h, (W_ir, W_iz, W_in), (W_hr, W_hz, W_hn) = v[0], v[1], np.split(v[2], 3), np.split(v[3], 3)
    (b_ir, b_iz, b_in), (b_hr, b_hz, b_hn) = np.split(v[4], 3), np.split(v[5], 3)
    r = 1 / (1 + np.exp(-(xt @ W_ir.T + b_ir + h @ W_hr.T + b_hr)))
    z = 1 / (1 + np.exp(-(xt @ W_iz.T + b_iz + h @ W_hz.T + b_hz)))
    n = np.tanh(xt @ W_in.T + b_in + r * (h @ W_hn.T + b_hn))
    h1 = (1 - z) * n + z * h
    assert hs.shape == (N, 1, H)
    assert rel_err(hs[:, 0], h1) <= bound(dtype, "rnn")


@given(st.data())
def test_future_inputs_do_not_change_past_states(backend, data):
    inputs, _ = data.draw(gru_case("float64", max_t=6))
    x = inputs[0]
    T = x.shape[1]
    t = data.draw(st.integers(0, T - 1))
    x2 = x.copy()
    x2[:, t + 1 :] = data.draw(arrays(x[:, t + 1 :].shape, "float64", -1, 1))
    hs, _ = call(OP, backend, "fwd", *inputs)
    hs2, _ = call(OP, backend, "fwd", x2, *inputs[1:])
    np.testing.assert_allclose(hs2[:, : t + 1], hs[:, : t + 1], rtol=0, atol=1e-14)


@given(st.data())
def test_batch_rows_are_independent(backend, data):
    inputs, ghs = data.draw(gru_case("float64", max_n=5))
    x, h0, w_ih, w_hh, b_ih, b_hh = inputs
    hs, gates = call(OP, backend, "fwd", *inputs)
    gx, gh0, *_ = call(OP, backend, "bwd", ghs, x, h0, w_ih, w_hh, hs, gates)
    for n in range(x.shape[0]):
        one = (x[n : n + 1], h0[n : n + 1], w_ih, w_hh, b_ih, b_hh)
        hs_n, gates_n = call(OP, backend, "fwd", *one)
        gx_n, gh0_n, *_ = call(OP, backend, "bwd", ghs[n : n + 1], *one[:4], hs_n, gates_n)
        np.testing.assert_allclose(hs_n[0], hs[n], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(gx_n[0], gx[n], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(gh0_n[0], gh0[n], rtol=1e-12, atol=1e-14)


@given(st.data())
def test_state_stays_inside_unit_interval(backend, data):
    """h_t is a convex combination of n_t ∈ (−1, 1) and h_{t−1}: |h0| < 1 ⇒ |h_t| < 1.
    Strict in float64 while |pre-activations| < 19 (tanh rounds to ±1 beyond); ≤ 1 always."""
    inputs, _ = data.draw(gru_case("float64", w=1.0))
    inputs[1] = inputs[1] * 0.999  # |h0| < 1
    hs, _ = call(OP, backend, "fwd", *inputs)
    assert np.all(np.abs(hs) < 1)
    dtype = data.draw(st.sampled_from(["float32", "float64"]))
    N, T, D, H = inputs[0].shape + (inputs[1].shape[1],)
    wide = [data.draw(arrays(s, dtype, -10, 10)) for s in shapes(N, T, D, H)]
    wide[1] = data.draw(arrays((N, H), dtype, -0.5, 0.5))
    hs, _ = call(OP, backend, "fwd", *wide)
    assert np.all(np.abs(hs) <= 1)


# ----------------------------------------------------------------------------------------
# (e) PyTorch as an oracle, weight for weight


@pytest.mark.parametrize("N,T,D,H", [(3, 5, 4, 6), (1, 1, 3, 2), (4, 7, 1, 3), (2, 3, 5, 5)])
def test_matches_torch_gru(backend, N, T, D, H):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(N + 7 * T + 31 * H)
    torch.manual_seed(N + T)
    gru = torch.nn.GRU(D, H, batch_first=True).double()
    weights = [
        p.detach().numpy().copy()
        for p in (gru.weight_ih_l0, gru.weight_hh_l0, gru.bias_ih_l0, gru.bias_hh_l0)
    ]
    x = rng.standard_normal((N, T, D))
    h0 = rng.uniform(-1, 1, (N, H))
    ghs = rng.standard_normal((N, T, H))
    gh_final = rng.standard_normal((N, H))

    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0[None], requires_grad=True)
    out, hn = gru(xt, h0t)
    (torch.sum(out * torch.tensor(ghs)) + torch.sum(hn[0] * torch.tensor(gh_final))).backward()

    hs, gates = call(OP, backend, "fwd", x, h0, *weights)
    assert rel_err(hs, out.detach().numpy()) < 1e-10
    assert rel_err(hs[:, -1], hn.detach().numpy()[0]) < 1e-10
    g_all = ghs.copy()
    g_all[:, -1] += gh_final  # the final state is hs[:, -1]
    grads = call(OP, backend, "bwd", g_all, x, h0, *weights[:2], hs, gates)
    want = [xt.grad.numpy(), h0t.grad.numpy()[0]] + [
        p.grad.numpy() for p in (gru.weight_ih_l0, gru.weight_hh_l0, gru.bias_ih_l0, gru.bias_hh_l0)
    ]
    for name, got, w in zip(GRAD_NAMES, grads, want):
        assert rel_err(got, w) < 1e-10, name


# ----------------------------------------------------------------------------------------
# (f) signature parity and (g) the CUDA source compiles




