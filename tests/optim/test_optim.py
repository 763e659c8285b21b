"""Optimizers against torch.optim on the same parameters and gradients, gradient clipping
against torch's, checkpoints of optimizer state, and a small end-to-end fit."""

from __future__ import annotations

import io

import numpy as np
import pytest

from minimtl import nn, optim
from minimtl.tensor import Tensor

SHAPES = [(3, 4), (5,), (2, 1, 3)]
STEPS = 6


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _params(seed: int = 0) -> list[nn.Parameter]:
    rng = np.random.default_rng(seed)
    return [nn.Parameter(rng.standard_normal(s), backend="numpy") for s in SHAPES]


def _grads(seed: int = 1) -> list[list[np.ndarray | None]]:
    """STEPS lists of gradients; parameter 1 has none at step 2 (it must be skipped)."""
    rng = np.random.default_rng(seed)
    out = [[rng.standard_normal(s) for s in SHAPES] for _ in range(STEPS)]
    out[2][1] = None
    return out


def _run_ours(make, params, grads):
    opt = make(params)
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = None if g is None else g.copy()
        opt.step()
    return opt


CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True)),
    ("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
    ("SGD", dict(lr=0.1, weight_decay=0.1)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.03, betas=(0.5, 0.9), weight_decay=0.2)),
]


@pytest.mark.parametrize("name, kwargs", CASES, ids=[f"{n}-{kw}" for n, kw in CASES])
def test_steps_match_torch_optim(torch, name, kwargs):
    params, grads = _params(), _grads()
    ours = _run_ours(lambda ps: getattr(optim, name)(ps, **kwargs), params, grads)
    assert ours.step_count == STEPS

    ref = [torch.tensor(p, dtype=torch.float64, requires_grad=True)
           for p in (q.numpy() for q in _params())]
    ref_opt = getattr(torch.optim, name)(ref, **kwargs)
    for gs in grads:
        for p, g in zip(ref, gs):
            p.grad = None if g is None else torch.from_numpy(g.copy())
        ref_opt.step()
    for i, (p, r) in enumerate(zip(params, ref)):
        assert p.dtype == np.float64
        np.testing.assert_allclose(p.numpy(), r.detach().numpy(), rtol=0, atol=1e-10,
                                   err_msg=f"parameter {i}")


def test_updates_are_in_place_and_leave_gradients_alone():
    for make in (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.1),
                 lambda ps: optim.Adam(ps, weight_decay=0.1), optim.AdamW):
        params = _params()
        arrays = [p.data for p in params]
        grads = [np.ones(s) for s in SHAPES]
        opt = make(params)
        for p, g in zip(params, grads):
            p.grad = g
        opt.step()
        opt.step()
        assert all(p.data is a for p, a in zip(params, arrays))
        assert all((p.grad == 1).all() for p in params)


def test_adam_first_step_moves_each_entry_by_about_lr():
    # m̂ = g and v̂ = g² after one step, so the step is lr·g/(|g| + eps) ≈ lr·sign(g)
    p = nn.Parameter(np.array([1.0, 1.0, 1.0]), backend="numpy")
    p.grad = np.array([3.0, -0.01, 250.0])
    optim.Adam([p], lr=0.1).step()
    np.testing.assert_allclose(p.numpy(), [0.9, 1.1, 0.9], rtol=0, atol=1e-6)


def test_float32_parameters_stay_float32():
    p = nn.Parameter(np.ones(3, dtype=np.float32), backend="numpy")
    for opt in (optim.SGD([p], lr=0.1, momentum=0.9), optim.Adam([p]), optim.AdamW([p])):
        p.grad = np.full(3, 0.5, dtype=np.float32)
        opt.step()
        opt.step()
        assert p.dtype == np.float32
        assert all(v.dtype == np.float32 for s in opt.state for v in s.values()
                   if hasattr(v, "dtype"))


def test_zero_grad_sets_gradients_to_none():
    params = _params()
    opt = optim.SGD(params, lr=0.1)
    for p in params:
        p.grad = np.ones(p.shape)
    opt.zero_grad()
    assert all(p.grad is None for p in params)


@pytest.mark.parametrize("kwargs, match", [
    (dict(params=[]), "empty"),
    (dict(params=[Tensor(np.ones(2))]), "requires grad"),
    (dict(lr=-1.0), "lr"),
    (dict(momentum=0.0, nesterov=True), "nesterov"),
])
def test_sgd_rejects_bad_arguments(kwargs, match):
    kwargs.setdefault("params", _params())
    kwargs.setdefault("lr", 0.1)
    with pytest.raises((ValueError, TypeError), match=match):
        optim.SGD(**kwargs)


def test_duplicate_parameters_and_bad_betas_are_rejected():
    p = _params()[0]
    with pytest.raises(ValueError, match="more than once"):
        optim.Adam([p, p])
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([p], betas=(0.9, 1.0))


# --- clipping -----------------------------------------------------------------------
@pytest.mark.parametrize("max_norm", [0.5, 3.0, 100.0])
def test_clip_grad_norm_matches_torch(torch, max_norm):
    rng = np.random.default_rng(2)
    grads = [rng.standard_normal(s) for s in SHAPES] + [None]
    ours = _params() + [nn.Parameter(np.ones(2), backend="numpy")]
    ref = [torch.zeros(p.shape, dtype=torch.float64, requires_grad=True) for p in ours]
    for p, r, g in zip(ours, ref, grads):
        p.grad = None if g is None else g.copy()
        r.grad = None if g is None else torch.from_numpy(g.copy())
    total = optim.clip_grad_norm_(ours, max_norm)
    total_ref = torch.nn.utils.clip_grad_norm_(ref, max_norm)
    assert total == pytest.approx(float(total_ref), rel=1e-12)
    assert total == pytest.approx(np.sqrt(sum((g**2).sum() for g in grads[:-1])), rel=1e-12)
    for p, r in zip(ours[:-1], ref[:-1]):
        np.testing.assert_allclose(p.grad, r.grad.numpy(), rtol=0, atol=1e-12)
    assert ours[-1].grad is None
    clipped = np.sqrt(sum((p.grad**2).sum() for p in ours[:-1]))
    assert clipped <= max_norm * (1 + 1e-9)


def test_clip_grad_norm_scales_a_gradient_shared_by_two_leaves_once():
    a = nn.Parameter(np.zeros(3), backend="numpy")
    b = nn.Parameter(np.zeros(3), backend="numpy")
    (a + b).backward(np.array([3.0, 0.0, 4.0]))
    total = optim.clip_grad_norm_([a, b], 1.0)
    assert total == pytest.approx(np.sqrt(50), rel=1e-12)
    expected = np.array([3.0, 0.0, 4.0]) / (np.sqrt(50) + 1e-6)  # PyTorch's coefficient
    np.testing.assert_allclose(a.grad, expected, rtol=1e-12)
    np.testing.assert_allclose(b.grad, expected, rtol=1e-12)


# --- checkpoints --------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
    lambda ps: optim.Adam(ps, lr=0.01),
    lambda ps: optim.AdamW(ps, lr=0.01),
], ids=["sgd", "adam", "adamw"])
def test_state_dict_round_trip_through_npz_gives_identical_steps(make):
    grads = _grads()
    params = _params()
    opt = _run_ours(make, params, grads[:3])

    buffer = io.BytesIO()
    np.savez(buffer, **opt.state_dict())
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as f:
        saved = {k: f[k] for k in f.files}

    resumed_params = [nn.Parameter(p.numpy().copy(), backend="numpy") for p in params]
    resumed = make(resumed_params)
    resumed.load_state_dict(saved)
    assert resumed.step_count == 3
    for gs in grads[3:]:
        for ps in (params, resumed_params):
            for p, g in zip(ps, gs):
                p.grad = g.copy()
        opt.step()
        resumed.step()
    for p, q in zip(params, resumed_params):
        np.testing.assert_array_equal(p.numpy(), q.numpy())


def test_state_dict_is_a_copy_and_loading_copies_too():
    params = _params()
    opt = _run_ours(lambda ps: optim.Adam(ps), params, _grads()[:2])
    sd = opt.state_dict()
    assert set(sd) == {"step", "lr", "beta1", "beta2", "eps", "weight_decay"} | {
        f"{k}.{i}" for k in ("m", "v", "step") for i in range(len(SHAPES))}
    assert sd["step.1"] == 2 and sd["step"] == 2
    sd["m.0"][...] = 123.0
    assert not (opt.state[0]["m"] == 123.0).any()
    opt.load_state_dict(sd)
    opt.step()  # no gradients changed, but the buffers are updated in place
    assert (sd["m.0"] == 123.0).all()


def test_adam_counts_steps_per_parameter_like_torch():
    params = _params()
    opt = _run_ours(lambda ps: optim.Adam(ps), params, _grads())
    assert [s["step"] for s in opt.state] == [STEPS, STEPS - 1, STEPS]


def test_load_state_dict_lists_problems_and_changes_nothing():
    params = _params()
    opt = _run_ours(lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), params, _grads()[:2])
    before = opt.state_dict()
    bad = dict(before)
    del bad["lr"]
    bad["momentum_buffer.0"] = np.zeros((4, 3))
    bad["momentum_buffer.7"] = np.zeros(2)
    bad["velocity.1"] = np.zeros(5)
    bad["step"] = 99
    with pytest.raises(ValueError) as err:
        opt.load_state_dict(bad)
    for needle in ("'lr'", "momentum_buffer.0", "(4, 3)", "momentum_buffer.7", "velocity.1"):
        assert needle in str(err.value), needle
    after = opt.state_dict()
    assert after.keys() == before.keys() and after["step"] == 2
    for k in before:
        np.testing.assert_array_equal(after[k], before[k], err_msg=k)


def test_load_state_dict_restores_hyperparameters():
    opt = optim.SGD(_params(), lr=0.5, momentum=0.9, nesterov=True)
    other = optim.SGD(_params(), lr=0.1)
    other.load_state_dict(opt.state_dict())
    assert (other.lr, other.momentum, other.nesterov) == (0.5, 0.9, True)
    assert type(other.nesterov) is bool


# --- end to end ---------------------------------------------------------------------
def test_linear_regression_with_adam_reduces_the_mse():
    rng = np.random.default_rng(3)
    x_np = rng.standard_normal((64, 3))
    y_np = x_np @ np.array([[1.5], [-2.0], [0.5]]) + 0.3
    x, y = Tensor(x_np, backend="numpy"), Tensor(y_np, backend="numpy")
    model = nn.Linear(3, 1, rng=rng, dtype=np.float64, backend="numpy")
    opt = optim.Adam(model.parameters(), lr=0.05)

    losses = []
    for _ in range(200):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 1e-3 * losses[0]
    np.testing.assert_allclose(model.weight.numpy(), [[1.5, -2.0, 0.5]], atol=0.02)
    np.testing.assert_allclose(model.bias.numpy(), [0.3], atol=0.02)


@pytest.mark.gpu
@pytest.mark.parametrize("name, kwargs", CASES, ids=[f"{n}-{kw}" for n, kw in CASES])
def test_steps_on_cupy_match_numpy(name, kwargs):
    import cupy

    host, grads = _params(), _grads()
    _run_ours(lambda ps: getattr(optim, name)(ps, **kwargs), host, grads)
    dev = [nn.Parameter(cupy.asarray(p.numpy()), backend="cupy") for p in _params()]
    opt = getattr(optim, name)(dev, **kwargs)
    for gs in grads:
        for p, g in zip(dev, gs):
            p.grad = None if g is None else cupy.asarray(g)
        opt.step()
    for p, q in zip(host, dev):
        assert isinstance(q.data, cupy.ndarray)
        np.testing.assert_allclose(q.numpy(), p.numpy(), rtol=0, atol=1e-12)
    sd = opt.state_dict()
    assert all(type(v) is np.ndarray for k, v in sd.items() if "." in k and
               not k.startswith("step."))
    opt.load_state_dict(sd)


@pytest.mark.gpu
def test_clip_grad_norm_on_cupy_matches_numpy():
    import cupy

    rng = np.random.default_rng(4)
    grads = [rng.standard_normal(s) for s in SHAPES]
    host, dev = _params(), [nn.Parameter(cupy.zeros(s), backend="cupy") for s in SHAPES]
    for p, q, g in zip(host, dev, grads):
        p.grad, q.grad = g.copy(), cupy.asarray(g)
    assert optim.clip_grad_norm_(dev, 1.0) == pytest.approx(
        optim.clip_grad_norm_(host, 1.0), rel=1e-12)
    for p, q in zip(host, dev):
        np.testing.assert_allclose(cupy.asnumpy(q.grad), p.grad, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, kwargs", [c for c in CASES if c[0] != "SGD"],
                         ids=[f"{n}-{kw}" for n, kw in CASES if n != "SGD"])
def test_adam_on_numba_is_bitwise_the_numpy_update(name, kwargs, dtype):
    """The numba backend runs Adam's update as one fused loop (kernels/adam/numba_cpu.py):
    the same operations in the same order and dtype, so the same bits, including a
    skipped parameter, gradients spanning 1e-8..1e2 and a strided gradient (which the
    loop reads from a C-ordered copy)."""
    rng = np.random.default_rng(9)
    start = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = _grads()
    for gs in grads:
        for i, g in enumerate(gs):
            if g is not None:
                gs[i] = (g * 10.0 ** rng.uniform(-8, 2, g.shape)).astype(dtype)
    grads[3][0] = np.asfortranarray(grads[3][0])              # not C-contiguous
    results = []
    for backend in ("numpy", "numba"):
        params = [nn.Parameter(a.copy(), backend=backend) for a in start]
        opt = _run_ours(lambda ps: getattr(optim, name)(ps, **kwargs), params, grads)
        results.append(([p.numpy() for p in params], opt.state_dict()))
    (p_np, sd_np), (p_nb, sd_nb) = results
    for a, b in zip(p_np, p_nb):
        assert a.dtype == b.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(b, a)
    assert sd_np.keys() == sd_nb.keys()
    for key in sd_np:
        np.testing.assert_array_equal(sd_nb[key], sd_np[key], err_msg=key)
