"""The cupy backend's own paths through the model, run on the CPU (tests/cuda_host.py):
the towers channels-first with the transpose before Flatten, every CUDA kernel of the
step, and Adam's CUDA kernel, against the numba backend. The GPU test of the same (the
seed network's losses on the GPU equal the CPU's) needs a GPU; this one runs anywhere
with g++."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import minimtl as mt
from minimtl.data import TASKS
from minimtl.models import MultiTaskNet
from minimtl.optim import Adam
from tests.cuda_host import patch_cupy_backend

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")


@pytest.mark.parametrize("kw", [{}, {"extractor": "cnn+rnn", "rnn": "gru"}])
def test_training_steps_on_the_host_cupy_backend_match_numba(monkeypatch, tmp_path, kw):
    patch_cupy_backend(monkeypatch, tmp_path)
    rng = np.random.default_rng(0)
    x = {t: rng.standard_normal((6, 24, 5)).astype(np.float32) for t in TASKS}
    y = {"user": rng.integers(0, 10, 6), "goods": (rng.random((6, 10)) > 0.5) * 1.0,
         "ads": rng.integers(0, 10, 6)}
    runs = {}
    for backend in ("numba", "cupy"):
        model = MultiTaskNet(24, 5, backend=backend, **kw)
        assert model.towers[0].channels_last is (backend != "cupy")
        opt = Adam(list(model.parameters()), lr=1e-2)
        inputs = {t: mt.tensor(v, backend=backend) for t, v in x.items()}
        losses, first_grads = [], None
        for _ in range(3):
            opt.zero_grad()
            total = model.total_loss(model.losses(model(inputs), y))
            total.backward()
            if first_grads is None:
                first_grads = {n: p.grad.copy() for n, p in model.named_parameters()}
            opt.step()
            losses.append(total.item())
        runs[backend] = (losses, first_grads,
                         {n: p.numpy().copy() for n, p in model.named_parameters()})
    (l_nb, g_nb, p_nb), (l_cu, g_cu, p_cu) = runs["numba"], runs["cupy"]
    np.testing.assert_allclose(l_cu, l_nb, rtol=1e-5)
    for name in g_nb:       # float32 sums in other orders: relative to the largest entry
        scale = float(np.abs(g_nb[name]).max())
        np.testing.assert_allclose(g_cu[name], g_nb[name], rtol=1e-4, atol=1e-5 * scale,
                                   err_msg=name)
    # Adam makes every step about lr long whatever the gradient's size, so an entry whose
    # gradient is near 0 turns rounding into a visible move: allow 1 % of the 3 steps
    for name in p_nb:
        np.testing.assert_allclose(p_cu[name], p_nb[name], rtol=0, atol=0.01 * 3 * 1e-2,
                                   err_msg=name)


def _fit_on(backend, n, *, epochs=1, batch=2):
    from minimtl.data import Dataset
    from minimtl.train import fit

    rng = np.random.default_rng(1)
    x = {t: rng.standard_normal((n, 12, 4)).astype(np.float32) for t in TASKS}
    y = {"user": rng.integers(0, 10, n), "goods": (rng.random((n, 10)) > 0.5) * 1.0,
         "ads": rng.integers(0, 10, n)}
    model = MultiTaskNet(12, 4, backend=backend)
    return fit(model, Dataset(x, y), epochs=epochs, batch_size=batch, stream=None)


def test_fit_reads_the_device_once_per_read_interval_not_per_step(monkeypatch):
    """On the GPU the loop adds each step's loss and hit values where they are and reads
    them once (one stacked copy) per ``READ_EVERY`` steps and at the epoch's end: 10 steps
    read the device exactly as often as 5 do (the epoch's end checks are the same)."""
    from kernels import launches
    from tests.cuda_host import default_cache

    patch_cupy_backend(monkeypatch, default_cache(), count_launches=True)
    d2h = {}
    for n in (10, 20):
        with launches.count() as c:
            _fit_on("cupy", n)
        d2h[n] = c.by_kernel["cupy.d2h"]
    assert d2h[10] == d2h[20]


def test_fit_on_the_host_cupy_backend_logs_what_numba_logs(monkeypatch, tmp_path):
    """The running sums read off the device at intervals give the numbers a host backend
    gets by reading every step."""
    from minimtl.train import loop

    patch_cupy_backend(monkeypatch, tmp_path)
    monkeypatch.setattr(loop, "READ_EVERY", 3)          # several reads in the epoch
    cupy_logs = _fit_on("cupy", 14).epochs[0]
    numba_logs = _fit_on("numba", 14).epochs[0]
    for key in ("user_loss", "goods_loss", "ads_loss", "user_accuracy", "goods_accuracy"):
        np.testing.assert_allclose(cupy_logs[key], numba_logs[key], rtol=1e-5, err_msg=key)
