"""``update_many`` of the adam family (one CUDA launch for all the parameters of a step)
and its device step counter, against ``update`` one parameter at a time, bit for bit; the
device pointer table's cache (counted uploads); and ``Adam.step`` through it.

The CUDA module runs on the host (tests/cuda_host.py; ``cuda_host``), its uploads and
launches counted by the emulator's device arrays (tests/cuda_host_launches.py); the same
checks run on a GPU where there is one (``gpu``), with a captured CUDA graph besides.
"""

from __future__ import annotations

import importlib
import math
import shutil
from collections import OrderedDict

import numpy as np
import pytest

from kernels import launches
from kernels.adam import cupy_cuda
from minimtl import nn, optim

B1, B2, EPS, LR = 0.9, 0.999, 1e-8, 1e-3
#: sizes around the block of 256 threads, a single element, an empty parameter
SIZES = (1, 255, 256, 257, 1000, 3, 0, 513)
STEPS = 4

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")


def _host_scalars(t: int, b1: float = B1, b2: float = B2, lr: float = LR) -> dict:
    """The optimizer's host formula (minimtl.optim.Adam._scalars)."""
    return dict(c2=math.sqrt(1 - b2**t), step=lr / (1 - b1**t))


def _arrays(dtype, sizes=SIZES, seed=0):
    """p, m, v per size (m and v from a few earlier steps: not zero) and STEPS gradients."""
    rng = np.random.default_rng(seed)
    ps = [rng.standard_normal(n).astype(dtype) for n in sizes]
    ms = [(0.1 * rng.standard_normal(n)).astype(dtype) for n in sizes]
    vs = [(0.01 * rng.random(n)).astype(dtype) for n in sizes]
    grads = [[(rng.standard_normal(n) * 10.0 ** rng.uniform(-8, 2, n)).astype(dtype)
              for n in sizes] for _ in range(STEPS)]
    return ps, ms, vs, grads


@pytest.fixture
def host_cuda(monkeypatch):
    """kernels.adam.cupy_cuda on the host, with counting device arrays and empty caches."""
    if shutil.which("g++") is None:
        pytest.skip("g++ not installed")
    from tests.cuda_host import FakeCupy, default_cache, patch_module
    from tests.cuda_host_launches import CountingFakeCupy

    fake = CountingFakeCupy(FakeCupy())
    patch_module(monkeypatch, cupy_cuda, default_cache(), fake)
    monkeypatch.setattr(cupy_cuda, "_tables", OrderedDict())
    monkeypatch.setattr(cupy_cuda, "_bias", {})
    monkeypatch.setattr(cupy_cuda, "_scalar_buffers", {})
    return fake


def _module(backend: str, request):
    if backend == "cuda_host":
        request.getfixturevalue("host_cuda")
        return cupy_cuda
    return importlib.import_module(f"kernels.adam.{backend}")


def _host(a) -> np.ndarray:
    """A host copy of a device array (cupy's, or the emulator's)."""
    return a.get() if hasattr(a, "get") else np.array(a)


def _device(fake, arrays):
    """The arrays as the emulator's device arrays (``fake`` None: as they are)."""
    return arrays if fake is None else [fake.asarray(a) for a in arrays]


BACKENDS = ["reference", "numba_cpu", pytest.param("cuda_host", marks=needs_gxx)]


def test_every_backend_has_the_reference_update_many_signature():
    import inspect

    from kernels.adam import numba_cpu, reference

    want = inspect.signature(reference.update_many)
    assert inspect.signature(numba_cpu.update_many) == want
    assert inspect.signature(cupy_cuda.update_many) == want


@pytest.mark.parametrize("counter", [False, True], ids=["host-step", "device-step"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("backend", BACKENDS)
def test_update_many_is_bitwise_update_per_parameter(backend, dtype, counter, request):
    """Mixed sizes (1, 255/256/257, 0, ...), several steps, p, m and v all compared; with a
    counter the scalars of each step come from it (advanced by update_many)."""
    mod = _module(backend, request)
    fake = request.getfixturevalue("host_cuda") if backend == "cuda_host" else None
    ps, ms, vs, grads = _arrays(dtype)
    want = [[a.copy() for a in arrays] for arrays in (ps, ms, vs)]
    got = [_device(fake, [a.copy() for a in arrays]) for arrays in (ps, ms, vs)]
    c = _device(fake, [np.zeros(1, np.int64)])[0]
    for t, gs in enumerate(grads, start=1):
        for p, g, m, v in zip(*want[:1], gs, *want[1:]):
            mod.update(p, g, m, v, b1=B1, b2=B2, eps=EPS, **_host_scalars(t))
        scalars = dict(counter=c, lr=LR) if counter else _host_scalars(t)
        mod.update_many(*got[:1], _device(fake, gs), *got[1:], b1=B1, b2=B2, eps=EPS,
                        **scalars)
    for exp, res in zip(want, got):
        for a, b in zip(exp, res):
            assert b.dtype == np.dtype(dtype)
            np.testing.assert_array_equal(np.asarray(b), a)
    assert int(c[0]) == (STEPS if counter else 0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_update_many_without_step_scalars_or_lr_raises(backend, request):
    mod = _module(backend, request)
    ps, ms, vs, grads = _arrays(np.float32, sizes=(3,))
    with pytest.raises(TypeError, match="c2 and step"):
        mod.update_many(ps, grads[0], ms, vs, b1=B1, b2=B2, eps=EPS)
    with pytest.raises(TypeError, match="needs lr"):
        mod.update_many(ps, grads[0], ms, vs, b1=B1, b2=B2, eps=EPS,
                        counter=np.zeros(1, np.int64))


def _counted(fn) -> launches.Count:
    with launches.count() as c:
        fn()
    return c


def test_one_launch_for_all_parameters_and_the_table_uploaded_only_when_addresses_change(
        host_cuda):
    ps, ms, vs, grads = _arrays(np.float32)
    ps, ms, vs = (_device(host_cuda, a) for a in (ps, ms, vs))
    gs = _device(host_cuda, grads[0])

    def step():
        cupy_cuda.update_many(ps, gs, ms, vs, b1=B1, b2=B2, eps=EPS, **_host_scalars(1))

    first = _counted(step)
    assert dict(first.by_kernel) == {"cupy.h2d": 1, "adam_update_many": 1}
    for _ in range(3):                   # the same addresses: the cached table, no upload
        assert dict(_counted(step).by_kernel) == {"adam_update_many": 1}
    old = gs[4]
    gs[4] = host_cuda.asarray(np.asarray(old).copy())     # one new address (old kept alive)
    assert dict(_counted(step).by_kernel) == {"cupy.h2d": 1, "adam_update_many": 1}
    assert dict(_counted(step).by_kernel) == {"adam_update_many": 1}
    gs[4] = old                          # the first set again: still cached
    assert dict(_counted(step).by_kernel) == {"adam_update_many": 1}
    assert len(cupy_cuda._tables) == 2


def test_a_new_size_at_the_same_addresses_is_a_new_table(host_cuda):
    """The key holds the sizes too: a shorter view of the same arrays gets a table of its
    own (the old one would update the elements past the view)."""
    ps, ms, vs, grads = _arrays(np.float64, sizes=(300,))
    p, m, v, g = (host_cuda.asarray(a[0]) for a in (ps, ms, vs, grads[0]))
    cupy_cuda.update_many([p], [g], [m], [v], b1=B1, b2=B2, eps=EPS, **_host_scalars(1))
    before = np.asarray(p).copy()
    c = _counted(lambda: cupy_cuda.update_many(
        [p[:100]], [g[:100]], [m[:100]], [v[:100]], b1=B1, b2=B2, eps=EPS,
        **_host_scalars(2)))
    assert dict(c.by_kernel) == {"cupy.h2d": 1, "adam_update_many": 1}
    np.testing.assert_array_equal(np.asarray(p)[100:], before[100:])
    assert (np.asarray(p)[:100] != before[:100]).all()


def test_the_table_cache_keeps_the_last_used_sets_only(host_cuda):
    """TABLES_KEPT sets; a set used again is kept over one used earlier (least recently
    used out)."""
    ps, ms, vs, grads = _arrays(np.float32, sizes=(5,))
    ps, ms, vs = (_device(host_cuda, a) for a in (ps, ms, vs))
    sets = [_device(host_cuda, grads[0]) for _ in range(cupy_cuda.TABLES_KEPT + 1)]

    def uploads(gs) -> int:
        c = _counted(lambda: cupy_cuda.update_many(ps, gs, ms, vs, b1=B1, b2=B2, eps=EPS,
                                                   **_host_scalars(1)))
        assert c.by_kernel["adam_update_many"] == 1
        return c.by_kernel["cupy.h2d"]

    assert [uploads(gs) for gs in sets[:-1]] == [1] * cupy_cuda.TABLES_KEPT
    assert uploads(sets[0]) == 0                 # used again: now the most recent
    assert uploads(sets[-1]) == 1                # a new set: sets[1] goes
    assert len(cupy_cuda._tables) == cupy_cuda.TABLES_KEPT
    assert uploads(sets[0]) == 0
    assert uploads(sets[1]) == 1


@pytest.mark.parametrize("case", ["strided", "mixed-dtypes"])
def test_non_contiguous_or_mixed_dtypes_take_update_per_parameter(host_cuda, case):
    """A strided p (every other element of a bigger array) or a float64 parameter among
    float32 ones: ``update`` per parameter (the reference's passes for the strided one, one
    ``adam_update`` for each other), the same bits, nothing between the strided elements
    written."""
    ps, ms, vs, grads = _arrays(np.float32, sizes=(40, 7))
    if case == "mixed-dtypes":
        ps[1], ms[1], vs[1], grads[0][1] = (a[1].astype(np.float64)
                                             for a in (ps, ms, vs, grads[0]))
    want = [[a.copy() for a in arrays] for arrays in (ps, ms, vs)]
    for p, g, m, v in zip(want[0], grads[0], want[1], want[2]):
        cupy_cuda.update(p, g, m, v, b1=B1, b2=B2, eps=EPS, **_host_scalars(1))
    got = [_device(host_cuda, [a.copy() for a in arrays]) for arrays in (ps, ms, vs)]
    wide = host_cuda.asarray(np.zeros(80, np.float32))
    if case == "strided":
        wide[::2] = ps[0]
        got[0][0] = wide[::2]
    c = _counted(lambda: cupy_cuda.update_many(
        got[0], _device(host_cuda, grads[0]), got[1], got[2], b1=B1, b2=B2, eps=EPS,
        **_host_scalars(1)))
    assert "adam_update_many" not in c.by_kernel
    assert c.by_kernel["adam_update"] == (1 if case == "strided" else 2)
    for exp, res in zip(want, got):
        for a, b in zip(exp, res):
            assert b.dtype == a.dtype
            np.testing.assert_array_equal(np.asarray(b), a)
    assert not np.asarray(wide)[1::2].any()


def test_device_step_is_two_launches_and_the_bias_table_is_uploaded_once(host_cuda):
    ps, ms, vs, grads = _arrays(np.float32)
    ps, ms, vs, gs = (_device(host_cuda, a) for a in (ps, ms, vs, grads[0]))
    counter = host_cuda.asarray(np.zeros(1, np.int64))

    def step():
        cupy_cuda.update_many(ps, gs, ms, vs, b1=B1, b2=B2, eps=EPS, counter=counter, lr=LR)

    assert dict(_counted(step).by_kernel) == {
        "cupy.h2d": 2, "adam_step_scalars": 1, "adam_update_many_dev": 1}  # table, bias
    for _ in range(3):
        assert dict(_counted(step).by_kernel) == {"adam_step_scalars": 1,
                                                  "adam_update_many_dev": 1}
    assert int(np.asarray(counter)[0]) == 4


def _device_scalars(fake, dtype, ts, b1=B1, b2=B2, lr=LR) -> np.ndarray:
    """(c2, step) that the device step kernel computes at each t of ``ts``, read from its
    buffer (an empty parameter: the update itself launches nothing)."""
    e = fake.asarray(np.zeros(0, dtype))
    counter = fake.asarray(np.zeros(1, np.int64))
    out = []
    for t in ts:
        counter[0] = t - 1
        cupy_cuda.update_many([e], [e], [e], [e], b1=b1, b2=b2, eps=EPS, counter=counter,
                              lr=lr)
        assert int(_host(counter)[0]) == t
        out.append(_host(cupy_cuda._scalar_buffers[cupy_cuda._address(counter),
                                                   np.dtype(dtype)]))
    return np.array(out)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("b1, b2, ts", [
    (B1, B2, range(1, 2001)),                         # the table
    (B1, B2, range(37_400, 37_420)),                  # its exact tail: both terms are 1
    (B1, B2, (65_536, 65_537, 100_000, 10**9)),
    (0.9, 0.9999, (65_535, 65_536, 65_537, 70_000)),  # past the table: pow
    (0.0, 0.0, (1, 2, 50)),
])
def test_device_step_scalars_are_the_host_formula_cast_to_the_dtype(host_cuda, dtype, b1,
                                                                     b2, ts):
    """On the host the device's pow is the host's own, so past the table this checks the
    indexing only; on a GPU (test below) the table covers the default betas exactly."""
    got = _device_scalars(host_cuda, dtype, ts, b1, b2)
    t_ = np.dtype(dtype).type
    want = np.array([[t_(s["c2"]), t_(s["step"])] for s in
                     (_host_scalars(t, b1, b2) for t in ts)])
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("exact", [True, False])
def test_device_step_reads_the_bias_table_and_past_it_its_last_entry_or_pow(host_cuda,
                                                                           monkeypatch,
                                                                           exact):
    """A planted table of three steps (values no formula gives): t = 1..3 read it; later t
    its last entry when the table says the terms stay exact, else the device's pow (on the
    host the host's own, so the host formula)."""
    planted = np.array([0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625])
    monkeypatch.setattr(cupy_cuda, "bias_table", lambda b1, b2: (planted, exact))
    ts = (1, 2, 3, 4, 100)
    got = _device_scalars(host_cuda, np.float64, ts)
    want = [[math.sqrt(planted[2 * t - 1]), LR / planted[2 * t - 2]] for t in (1, 2, 3)]
    tail = [[math.sqrt(planted[5]), LR / planted[4]]] * 2 if exact else [
        [s["c2"], s["step"]] for s in (_host_scalars(t) for t in ts[3:])]
    np.testing.assert_array_equal(got, np.array(want + tail))


def test_bias_table_stops_where_both_corrections_are_exactly_one():
    table, exact = cupy_cuda.bias_table(B1, B2)
    n = len(table) // 2
    assert exact and n < cupy_cuda.BIAS_STEPS
    assert tuple(table[-2:]) == (1.0, 1.0) and tuple(table[-4:-2]) != (1.0, 1.0)
    assert all(1 - B1**t == 1.0 and 1 - B2**t == 1.0 for t in range(n, 3 * n, 7))
    assert [table[2 * (t - 1)] for t in (1, 2, 100)] == [1 - B1**t for t in (1, 2, 100)]
    assert [table[2 * t - 1] for t in (1, 2, 100)] == [1 - B2**t for t in (1, 2, 100)]
    table, exact = cupy_cuda.bias_table(0.9, 0.9999)
    assert not exact and len(table) == 2 * cupy_cuda.BIAS_STEPS


# --- the optimizer ---------------------------------------------------------------------
SHAPES = [(3, 4), (5,), (2, 1, 3), (300,)]


def _params(backend, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [nn.Parameter(rng.standard_normal(s).astype(dtype), backend=backend)
            for s in SHAPES]


def _grads(dtype, steps=6, skip=None, seed=1):
    rng = np.random.default_rng(seed)
    out = [[rng.standard_normal(s).astype(dtype) for s in SHAPES] for _ in range(steps)]
    if skip is not None:
        out[skip[0]][skip[1]] = None
    return out


def _run(backend, dtype, make, grads, fake=None):
    params = _params(backend, dtype)
    if fake is not None:
        for p in params:
            p.data = fake.asarray(p.data)
    opt = make(params)
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = None if g is None else (g.copy() if fake is None else fake.asarray(g))
        opt.step()
    return [np.asarray(p.data) for p in params], opt


OPTIMIZERS = [
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05)),
    ("AdamW", dict(lr=0.03, betas=(0.5, 0.9), weight_decay=0.2)),
]


@pytest.fixture
def cupy_on_host(monkeypatch):
    """The whole cupy backend on the host with counting device arrays; its fake module."""
    if shutil.which("g++") is None:
        pytest.skip("g++ not installed")
    from minimtl import backend as mb
    from tests.cuda_host import default_cache, patch_cupy_backend

    patch_cupy_backend(monkeypatch, default_cache(), count_launches=True)
    monkeypatch.setattr(cupy_cuda, "_tables", OrderedDict())
    return mb.xp_of("cupy")


@pytest.mark.parametrize("skip", [None, (2, 1)], ids=["all-grads", "one-skipped"])
@pytest.mark.parametrize("device_step", [False, True], ids=["host-step", "device-step"])
@pytest.mark.parametrize("name, kwargs", OPTIMIZERS, ids=[f"{n}-{k}" for n, k in OPTIMIZERS])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("backend", ["numpy", "numba", pytest.param("cupy", marks=needs_gxx)])
def test_adam_step_through_update_many_is_bitwise_the_per_parameter_loop(
        backend, dtype, name, kwargs, device_step, skip, request, monkeypatch):
    """The optimizer with its fused step (and the device counter) against the same optimizer
    forced onto ``update`` per parameter on the numpy backend: parameters and the whole
    state dict (per-parameter steps included; a skipped parameter lags by one)."""
    grads = _grads(dtype, skip=skip)
    make = getattr(optim, name)
    with monkeypatch.context() as mp:
        mp.setattr(optim.Adam, "_fusable", lambda self: False)
        want, ref = _run("numpy", dtype, lambda ps: make(ps, **kwargs), grads)
    fake = request.getfixturevalue("cupy_on_host") if backend == "cupy" else None
    got, opt = _run(backend, dtype, lambda ps: make(ps, device_step=device_step, **kwargs),
                    grads, fake)
    for a, b in zip(want, got):
        assert b.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(b, a)
    sd, sd_ref = opt.state_dict(), ref.state_dict()
    assert sd.keys() == sd_ref.keys()
    for key in sd_ref:
        np.testing.assert_array_equal(sd[key], sd_ref[key], err_msg=key)
    if skip is not None:
        assert sd["step.1"] == len(grads) - 1 and sd["step.0"] == len(grads)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_device_step_survives_a_state_dict_round_trip(backend):
    dtype = np.float64
    grads = _grads(dtype, steps=6)
    want, _ = _run(backend, dtype, lambda ps: optim.Adam(ps, lr=0.01), grads)
    params = _params(backend, dtype)
    opt = optim.Adam(params, lr=0.01, device_step=True)
    for i, gs in enumerate(grads):
        if i == 3:
            sd = opt.state_dict()
            assert sd["step"] == 3 and all(sd[f"step.{j}"] == 3 for j in range(len(SHAPES)))
            params = [nn.Parameter(p.numpy().copy(), backend=backend) for p in params]
            opt = optim.Adam(params, lr=0.01, device_step=True)
            opt.load_state_dict(sd)
        for p, g in zip(params, gs):
            p.grad = g.copy()
        opt.step()
    for a, p in zip(want, params):
        np.testing.assert_array_equal(p.numpy(), a)
    assert opt.state_dict()["step.2"] == 6


def _model_step_counts(fake, device_step: bool, weight_decay: float = 0.0, name="Adam"):
    """Launches of Adam.step of the default MultiTaskNet on the host cupy backend, at steps
    1, 2, 3 (fixed gradient arrays, so their addresses repeat)."""
    from minimtl.models import MultiTaskNet

    model = MultiTaskNet(64, 32, backend="cupy", dtype=np.float32)
    params = list(model.parameters())
    rng = np.random.default_rng(0)
    grads = [fake.asarray(rng.standard_normal(p.shape).astype(np.float32)) for p in params]
    opt = getattr(optim, name)(params, lr=1e-3, weight_decay=weight_decay,
                               device_step=device_step)
    counts = []
    for _ in range(3):
        for p, g in zip(params, grads):
            p.grad = g
        counts.append(_counted(opt.step))
    return len(params), counts


def test_adam_step_of_the_default_model_is_one_launch_on_cupy(cupy_on_host):
    n, (first, second, third) = _model_step_counts(cupy_on_host, device_step=False)
    assert n == 18
    assert first.by_kernel["adam_update_many"] == 1 and first.by_kernel["cupy.h2d"] == 1
    assert "adam_update" not in first.by_kernel
    assert dict(second.by_kernel) == dict(third.by_kernel) == {"adam_update_many": 1}


def test_adam_step_with_device_step_is_two_launches_on_cupy(cupy_on_host):
    _, (first, second, third) = _model_step_counts(cupy_on_host, device_step=True)
    assert first.by_kernel["adam_step_scalars"] == 1
    assert dict(second.by_kernel) == dict(third.by_kernel) == {
        "adam_step_scalars": 1, "adam_update_many_dev": 1}


def test_adamw_adds_one_launch_per_parameter_for_the_decay(cupy_on_host):
    n, (_, _, third) = _model_step_counts(cupy_on_host, False, weight_decay=0.01,
                                          name="AdamW")
    assert dict(third.by_kernel) == {"adam_update_many": 1, "cupy.multiply": n}


# --- on a GPU --------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_update_many_on_the_gpu_is_bitwise_the_numpy_update(dtype):
    import cupy

    from kernels.adam import reference

    ps, ms, vs, grads = _arrays(dtype)
    dev = [[cupy.asarray(a) for a in arrays] for arrays in (ps, ms, vs)]
    counter = cupy.zeros(1, np.int64)
    dev2 = [[cupy.asarray(a) for a in arrays] for arrays in (ps, ms, vs)]
    for t, gs in enumerate(grads, start=1):
        reference.update_many(ps, gs, ms, vs, b1=B1, b2=B2, eps=EPS, **_host_scalars(t))
        g = [cupy.asarray(a) for a in gs]
        cupy_cuda.update_many(dev[0], g, dev[1], dev[2], b1=B1, b2=B2, eps=EPS,
                              **_host_scalars(t))
        cupy_cuda.update_many(dev2[0], g, dev2[1], dev2[2], b1=B1, b2=B2, eps=EPS,
                              counter=counter, lr=LR)
    for arrays, d, d2 in zip((ps, ms, vs), dev, dev2):
        for a, b, b2 in zip(arrays, d, d2):
            np.testing.assert_array_equal(cupy.asnumpy(b), a)
            np.testing.assert_array_equal(cupy.asnumpy(b2), a)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_device_step_scalars_on_the_gpu(dtype):
    """The default betas: bitwise the host formula for t = 1..2000 and in the exact tail
    (the table). β2 = 0.9999 past the table (the device's pow): within 4 ulp of the host."""
    import cupy

    class Fake:
        asarray = staticmethod(cupy.asarray)

    ts = list(range(1, 2001)) + [37_411, 37_412, 37_413, 10**6]
    got = _device_scalars(Fake, dtype, ts)
    t_ = np.dtype(dtype).type
    want = np.array([[t_(s["c2"]), t_(s["step"])] for s in map(_host_scalars, ts)])
    np.testing.assert_array_equal(got, want)
    ts = range(65_537, 67_537)
    got = _device_scalars(Fake, dtype, ts, 0.9, 0.9999)
    want = np.array([[t_(s["c2"]), t_(s["step"])] for s in
                     (_host_scalars(t, 0.9, 0.9999) for t in ts)])
    assert np.all(np.abs(got - want) <= 4 * np.spacing(want))


@pytest.mark.gpu
def test_a_captured_graph_of_the_device_step_advances_t_on_every_replay():
    import cupy

    from kernels.adam import reference

    dtype = np.float32
    ps, ms, vs, grads = _arrays(dtype, sizes=(257, 1, 1000))
    dev = [[cupy.asarray(a) for a in arrays] for arrays in (ps, ms, vs)]
    g = [cupy.asarray(a) for a in grads[0]]
    counter = cupy.zeros(1, np.int64)

    def step():
        cupy_cuda.update_many(dev[0], g, dev[1], dev[2], b1=B1, b2=B2, eps=EPS,
                              counter=counter, lr=LR)

    step()                               # uploads the tables and compiles, outside capture
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        stream.begin_capture()
        step()
        graph = stream.end_capture()
    for _ in range(5):
        graph.launch(stream)
    stream.synchronize()
    for t in range(1, 7):
        reference.update_many(ps, grads[0], ms, vs, b1=B1, b2=B2, eps=EPS,
                              **_host_scalars(t))
    assert int(counter.get()[0]) == 6
    for arrays, d in zip((ps, ms, vs), dev):
        for a, b in zip(arrays, d):
            np.testing.assert_array_equal(cupy.asnumpy(b), a)
