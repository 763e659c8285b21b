"""The launch counter (kernels/launches.py): counts, nesting, tags and its absence; the
launches of known kernel sequences on the host emulator (tests/cuda_host.py), our kernels
through ``_cuda.launch_grid`` and cupy's own through the counting device arrays
(tests/cuda_host_launches.py); and that counting changes no number.

The expected counts come from the kernels' documented launch plans (conv1d: one forward
kernel; backward: the gather for gx, the weight-gradient slices, their fixed-order sum; the
recurrences: one persistent walk kernel; cupy: one kernel per element-wise op or
reduction), not from running the counter."""

from __future__ import annotations

import numpy as np
import pytest

import kernels
import minimtl as mt
from kernels import _cuda, launches
from tests.conftest import HOST_CUDA
from tests.cuda_host import default_cache, patch_cupy_backend, patch_kernels

needs_host = pytest.mark.skipif(not HOST_CUDA, reason="needs g++ and no CUDA GPU")


class _Kernel:
    """Stands for a compiled kernel: records its launches."""

    def __init__(self, name):
        self.name, self.calls = name, []

    def __call__(self, grid, block, args, shared_mem=0):
        self.calls.append((grid, block, args, shared_mem))


# --- the counter itself ---------------------------------------------------------------
def test_no_count_is_open_outside_a_block_and_record_does_nothing():
    assert launches.current is None
    launches.record("k")                          # nothing to add to: no error, no state
    with launches.count() as c:
        pass
    assert launches.current is None and c.total == 0


def test_a_count_counts_each_record_per_kernel_and_keeps_its_numbers_after():
    with launches.count() as c:
        launches.record("a")
        launches.record("b", 3)
        launches.record("a")
    launches.record("a")                          # after the block: not counted
    assert c.total == 5 and c.by_kernel == {"a": 2, "b": 3}
    assert c.by_op == {launches.UNTAGGED: 5}


def test_nested_counts_both_see_inner_launches_and_only_the_outer_sees_outer_ones():
    with launches.count() as outer:
        launches.record("x")
        with launches.count() as inner:
            launches.record("y", 2)
        launches.record("z")
    assert (outer.total, inner.total) == (4, 2)
    assert outer.by_kernel == {"x": 1, "y": 2, "z": 1} and inner.by_kernel == {"y": 2}


def test_tags_name_the_op_innermost_first_and_are_restored():
    with launches.count() as c:
        with launches.tag("step"):
            launches.record("k")
            with launches.tag("conv1d.forward"):
                launches.record("k", 2)
            launches.record("j")
        launches.record("k")
    assert c.by_op == {"step": 2, "conv1d.forward": 2, launches.UNTAGGED: 1}
    assert c.by_op_kernel[("step", "k")] == 1 and c.by_op_kernel[("step", "j")] == 1
    assert c.as_dict()["by_op_kernel"]["conv1d.forward"] == {"k": 2}


def test_a_count_closes_when_its_block_raises():
    with pytest.raises(ValueError), launches.count():
        raise ValueError
    assert launches.current is None


@pytest.mark.parametrize("name, plain", [
    ("_Z10conv1d_fwdIfEvPKT_S2_S2_PS0_iiiiiiiiiiiii", "conv1d_fwd"),   # cupy's lowered name
    ("_Z19conv1d_sum_partialsIdEvPKT_PS0_S3_iii", "conv1d_sum_partials"),
    ("maxpool1d_fwd<double>", "maxpool1d_fwd"),                          # the emulator's
    ("adam_update", "adam_update"),
])
def test_kernel_names_lose_their_mangling_and_template_arguments(name, plain):
    assert launches.kernel_name(_Kernel(name)) == plain


def test_launch_grid_launches_once_and_counts_once_by_name():
    fn = _Kernel("_Z6squareIfEvPT_x")
    with launches.count() as c:
        _cuda.launch_grid(fn, (2, 1), (32,), ("a",), shared_mem=8)
        _cuda.launch(fn, 100, ("b",), threads=64)
        _cuda.launch(fn, 0, ("c",))                # nothing to do: no launch
    assert [call[:2] for call in fn.calls] == [((2, 1), (32,)), ((2,), (64,))]
    assert fn.calls[0][3] == 8
    assert c.total == 2 and c.by_kernel == {"square": 2}


def test_without_a_count_a_launch_only_checks_for_one(monkeypatch):
    def no_name(fn):
        raise AssertionError("looked up a kernel's name with no count open")

    monkeypatch.setattr(launches, "kernel_name", no_name)
    fn = _Kernel("k")
    _cuda.launch(fn, 10, ())
    assert len(fn.calls) == 1


def test_counting_xp_counts_module_calls_and_not_views_or_free_conversions():
    xp = launches.CountingXp(np)
    a = np.ones((2, 3), dtype=np.float32)
    with launches.count() as c:
        xp.exp(a)
        xp.maximum(a, 0)
        xp.zeros(3)
        xp.reshape(a, (3, 2))                      # a view
        xp.empty(4)                                # an allocation
        xp.asarray(a)                              # already there: nothing
        xp.asarray(a.T)                            # a strided view stays as it is
        xp.asarray(a, dtype=np.float64)            # a conversion kernel
        xp.ascontiguousarray(a.T)                  # a copy kernel
        assert xp.float32 is np.float32 and xp.pi == np.pi
    assert c.by_kernel == {"cupy.exp": 1, "cupy.maximum": 1, "cupy.zeros": 1,
                           "cupy.asarray": 1, "cupy.ascontiguousarray": 1}
    xp.exp(a)                                      # no count open: nothing recorded


# --- our kernels on the host emulator ------------------------------------------------
@needs_host
@pytest.mark.parametrize("need_gx, backward", [(True, 2), (False, 1)])
def test_conv1d_launches_one_kernel_forward_and_two_or_one_backward(monkeypatch, need_gx,
                                                                    backward):
    patch_kernels(monkeypatch)
    k = kernels.get("conv1d", "cupy")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 9)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3)).astype(np.float32)
    p = dict(stride=1, padding_left=1, padding_right=0, dilation=1)
    with launches.count() as fwd:
        y = k.fwd(x, w, np.zeros(4, np.float32), **p)
    with launches.count() as bwd:
        k.bwd(np.ones_like(y), x, w, need_gx=need_gx, **p)
    assert fwd.by_kernel == {"conv1d_fwd": 1}
    want = {"conv1d_bwd_weight": 1}
    if need_gx:
        want["conv1d_bwd_data"] = 1
    assert bwd.by_kernel == want and bwd.total == backward


@needs_host
def test_a_recurrence_is_one_launch_each_way_and_rows_one_launch(monkeypatch):
    patch_kernels(monkeypatch)
    rng = np.random.default_rng(1)
    N, T, D, H = 3, 4, 2, 5
    x = rng.standard_normal((N, T, D)).astype(np.float32)
    h0 = np.zeros((N, H), np.float32)
    w_ih = rng.standard_normal((4 * H, D)).astype(np.float32)
    w_hh = rng.standard_normal((4 * H, H)).astype(np.float32)
    b = np.zeros(4 * H, np.float32)
    lstm = kernels.get("lstm", "cupy")
    with launches.count() as c:
        hs, cs, gates = lstm.fwd(x, h0, h0, w_ih, w_hh, b, b)
    assert c.by_kernel == {"lstm_fwd": 1}
    with launches.count() as c:
        lstm.bwd(np.ones_like(hs), np.zeros_like(cs), x, h0, h0, w_ih, w_hh, hs, cs, gates)
    assert c.by_kernel == {"lstm_bwd": 1}
    with launches.count() as c:
        kernels.get("softmax", "cupy").fwd(rng.standard_normal((6, 10)).astype(np.float32))
    assert c.by_kernel == {"softmax_fwd": 1}


# --- cupy's own kernels on the counting emulator ---------------------------------------
@pytest.fixture
def counting(monkeypatch):
    patch_cupy_backend(monkeypatch, default_cache(), count_launches=True)


@needs_host
def test_an_elementwise_op_is_one_launch_and_a_reduction_one(counting):
    a = mt.tensor(np.arange(6, dtype=np.float32).reshape(2, 3), backend="cupy")
    b = mt.tensor(np.ones((2, 3), dtype=np.float32), backend="cupy")
    with launches.count() as c:
        s = a + b
    assert c.by_kernel == {"cupy.add": 1}
    with launches.count() as c:
        s.data.sum(axis=0)
        s.data.max()
        s.data.mean(axis=1)
    assert c.by_kernel == {"cupy.sum": 1, "cupy.max": 1, "cupy.mean": 1}
    np.testing.assert_array_equal(s.numpy(), np.arange(6).reshape(2, 3) + 1)


@needs_host
def test_views_launch_nothing_and_copies_transfers_and_reads_are_counted(counting):
    a = mt.tensor(np.arange(6, dtype=np.float32).reshape(2, 3), backend="cupy").data
    with launches.count() as views:
        a.reshape(3, 2)
        _ = a.T
        a[:, 1:]
        a.astype(np.float32, copy=False)
    assert views.total == 0
    xp = mt.backend.xp_of("cupy")
    with launches.count() as c:
        xp.ascontiguousarray(a.T)                  # a copy kernel
        xp.ascontiguousarray(a)                    # already contiguous: nothing
        a.astype(np.float64)                       # a conversion kernel
        xp.zeros((4,), dtype=np.float32)           # a memset
        xp.empty((4,), dtype=np.float32)           # an allocation
        xp.concatenate([a, a, a])                  # three arrays: three copies
        xp.asarray(np.ones(3))                     # host to device
        a[0, 0].item()                             # device to host
    assert c.by_kernel == {"cupy.copy": 1, "cupy.astype": 1, "cupy.zeros (memset)": 1,
                           "cupy.concatenate": 3, "cupy.h2d": 1, "cupy.d2h": 1}


@needs_host
def test_counting_changes_no_number_of_a_training_step(monkeypatch):
    from minimtl.models import MultiTaskNet
    from minimtl.optim import Adam

    rng = np.random.default_rng(0)
    x = {t: rng.standard_normal((4, 16, 3)).astype(np.float32) for t in ("user", "goods",
                                                                          "ads")}
    y = {"user": rng.integers(0, 10, 4), "goods": (rng.random((4, 10)) > 0.5) * 1.0,
         "ads": rng.integers(0, 10, 4)}
    runs = []
    for count in (False, True):
        with monkeypatch.context() as mp:
            patch_cupy_backend(mp, default_cache(), count_launches=count)
            model = MultiTaskNet(16, 3, backend="cupy")
            opt = Adam(list(model.parameters()), lr=1e-2)
            inputs = {t: mt.tensor(v, backend="cupy") for t, v in x.items()}
            losses = []
            with launches.count() as c:
                for _ in range(2):
                    opt.zero_grad()
                    total = model.total_loss(model.losses(model(inputs), y))
                    total.backward()
                    opt.step()
                    losses.append(total.item())
            runs.append((losses, [p.numpy().copy() for p in model.parameters()], c))
    (l_plain, p_plain, c_plain), (l_count, p_count, c_count) = runs
    assert l_count == l_plain
    for a, b in zip(p_count, p_plain):
        np.testing.assert_array_equal(a, b)
    # our kernels are counted either way; cupy's only with the counting arrays
    ours = {k: n for k, n in c_count.by_kernel.items() if not k.startswith("cupy.")}
    assert ours == dict(c_plain.by_kernel) and c_count.total > c_plain.total
