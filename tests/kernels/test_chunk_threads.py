"""minimtl's CPU threads (kernels/_threads.py, ``run_chunks``): every chunk runs exactly
once, errors come back, and conv1d, conv1d_relu and conv1d_relu_maxpool (channels-last)
and the blocked matrix product under Linear give bitwise the same results on 1, 2 or 3
threads (each chunk's partial gradients are added in chunk order, whichever thread made
them; the chunks and blocks never depend on the thread count)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

pytest.importorskip("numba")

import kernels  # noqa: E402
from kernels import _im2col, _threads  # noqa: E402


@pytest.fixture
def chunk_threads():
    """set(n): run the chunks on n threads for this test; restored afterwards."""
    before = _threads.threads()
    yield _threads.set_threads
    _threads.set_threads(before)


def test_every_chunk_runs_once_on_at_most_t_threads(chunk_threads):
    chunk_threads(3)
    chunks = [(i, i + 1) for i in range(40)]
    seen, lock = [], threading.Lock()

    def work(slot, i, n0, n1):
        assert chunks[i] == (n0, n1) and 0 <= slot < 3
        with lock:
            seen.append((i, slot, threading.get_ident()))

    assert _threads.run_chunks(work, chunks) == 3
    assert sorted(i for i, _, _ in seen) == list(range(40))
    assert {s for _, s, _ in seen if s == 0} <= {0}
    idents = {}
    for _, slot, ident in seen:                  # one thread per slot
        assert idents.setdefault(slot, ident) == ident
    assert idents.get(0, threading.get_ident()) == threading.get_ident()
    assert _threads.run_chunks(work, chunks[:1]) == 1    # one chunk: the caller alone


def test_changing_the_thread_count_reuses_the_parked_helpers(chunk_threads):
    """``minimtl bench`` and ``train`` switch the chunk threads per batch (on, off, on): the
    helpers made once are parked and reused, never started again."""
    def helpers():
        return sum(t.name.startswith("minimtl-chunks-") for t in threading.enumerate())

    chunks = [(i, i + 1) for i in range(8)]
    chunk_threads(3)
    _threads.run_chunks(lambda *a: None, chunks)
    started = helpers()
    assert started >= 2
    for n in (1, 2, 3, 1, 3):
        chunk_threads(n)
        assert _threads.run_chunks(lambda *a: None, chunks) == n
    assert helpers() == started


def test_an_error_in_a_helper_comes_back_after_every_chunk_stopped(chunk_threads):
    chunk_threads(2)
    done, lock = [], threading.Lock()

    def work(slot, i, n0, n1):
        if i == 5:
            raise RuntimeError("chunk 5 failed")
        with lock:
            done.append(i)

    with pytest.raises(RuntimeError, match="chunk 5 failed"):
        _threads.run_chunks(work, [(i, i + 1) for i in range(12)])
    assert sorted(done) == [i for i in range(12) if i != 5]


def test_two_callers_at_once_each_get_every_chunk_done(chunk_threads):
    """Two Python threads (two trainings in one process under a threading layer that lets
    both into the kernels): the one that finds the helpers busy runs its chunks itself."""
    chunk_threads(2)
    chunks = [(i, i + 1) for i in range(200)]
    done = {0: [], 1: []}
    barrier = threading.Barrier(2)

    def caller(k):
        def work(slot, i, n0, n1):
            done[k].append(i)
            sum(range(2000))                     # hold the chunk a little
        barrier.wait()
        for _ in range(5):
            _threads.run_chunks(work, chunks)

    ts = [threading.Thread(target=caller, args=(k,)) for k in (0, 1)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for k in (0, 1):
        assert sorted(done[k]) == sorted(list(range(200)) * 5)


def test_row_chunks_never_depend_on_threads(chunk_threads):
    for N, Lo in [(1, 5), (2, 64), (7, 3), (16, 64), (32, 64), (1024, 62), (3, 5000)]:
        chunk_threads(1)
        nb, chunks = _im2col.row_chunks(N, Lo)
        assert chunks[0][0] == 0 and chunks[-1][1] == N
        assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:]))
        assert nb * Lo <= max(_im2col.ROWS, Lo)
        for t in (2, 3):
            chunk_threads(t)
            assert _im2col.row_chunks(N, Lo) == (nb, chunks)


def _inputs(op, dtype, rng):
    x = rng.standard_normal((9, 21, 5)).astype(dtype)             # (N, L, C)
    w = rng.standard_normal((6, 5, 3)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    kw = dict(stride=1, padding_left=1, padding_right=1, dilation=1, channels_last=True)
    if op == "conv1d_relu_maxpool":
        kw.update(pool_size=2, pool_stride=2, pool_padding=0)
    return x, w, b, kw


def _run(op, x, w, b, kw, gy):
    mod = kernels.get(op, "numba")
    out = mod.fwd(x, w, b, **kw)
    outs = out if isinstance(out, tuple) else (out,)
    saved = {"conv1d": (), "conv1d_relu": outs, "conv1d_relu_maxpool": outs}[op]
    g = mod.bwd(gy if gy is not None else np.ones_like(outs[0]), x, w, *saved, **kw)
    return outs, g


@pytest.mark.parametrize("op", ["conv1d", "conv1d_relu", "conv1d_relu_maxpool"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows", [21, 40, 2048])
def test_threads_give_bitwise_the_one_thread_result(monkeypatch, chunk_threads, op, dtype,
                                                    rows):
    monkeypatch.setattr(_im2col, "ROWS", rows)   # 21: one sample a chunk, 9 chunks
    rng = np.random.default_rng(3)
    x, w, b, kw = _inputs(op, dtype, rng)
    chunk_threads(1)
    outs, _ = _run(op, x, w, b, kw, None)
    gy = rng.standard_normal(outs[0].shape).astype(dtype)
    want_out, want_g = _run(op, x, w, b, kw, gy)
    for t in (2, 3):
        chunk_threads(t)
        for _ in range(3):                       # the chunks go to threads in any order
            got_out, got_g = _run(op, x, w, b, kw, gy)
            for got, want in zip(got_out + tuple(got_g), want_out + tuple(want_g)):
                np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("shape", [(256, 300, 30), (30, 256, 1100), (5, 7, 3), (130, 1, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blocked_matmul_is_the_product_and_the_same_on_any_thread_count(chunk_threads, shape,
                                                                      dtype):
    M, K, N = shape
    rng = np.random.default_rng(4)
    a = rng.standard_normal((K, M)).astype(dtype).T           # a transposed view, as gy.T
    b = rng.standard_normal((K, N)).astype(dtype)
    chunk_threads(1)
    one = _threads.matmul(a, b)
    assert one.shape == (M, N) and one.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(one, a @ b, rtol=tol, atol=tol * K)
    for t in (2, 3):
        chunk_threads(t)
        np.testing.assert_array_equal(_threads.matmul(a, b), one)


def test_the_dense_layers_products_on_numba_go_through_the_blocks(chunk_threads, monkeypatch):
    """Linear on numba: the same numbers with its products in blocks on 2 threads as on 1,
    and each of its three products is one blocked call."""
    import minimtl as mt
    import minimtl.functional as F

    calls = []
    real = _threads.matmul
    monkeypatch.setattr(_threads, "matmul", lambda a, b: calls.append(a.shape) or real(a, b))
    rng = np.random.default_rng(5)
    x0, w0, b0 = (rng.standard_normal(s).astype(np.float32) for s in ((200, 600), (30, 600),
                                                                      (30,)))
    results = []
    for t in (1, 2):
        chunk_threads(t)
        x, w, b = (mt.tensor(v, backend="numba", requires_grad=True) for v in (x0, w0, b0))
        y = F.linear(x, w, b)
        (y * y).sum().backward()
        results.append([y.numpy(), x.grad, w.grad, b.grad])
    assert calls == [(200, 600), (200, 30), (30, 200)] * 2
    for got, want in zip(*results):
        np.testing.assert_array_equal(got, want)
