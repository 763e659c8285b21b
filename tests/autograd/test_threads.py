"""Threads: grad mode belongs to the thread that set it, and two threads may train in one
process on the Numba backend (its ``workqueue`` layer aborts the process when two threads
enter a parallel region at once; the engine serialises its Numba kernel calls there)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np

import minimtl as mt
from minimtl import functional as F

ROOT = Path(__file__).resolve().parent.parent.parent


def _in_thread(fn):
    box = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as e:        # re-raised in the caller's thread
            box["error"] = e

    t = threading.Thread(target=run)
    t.start()
    t.join(timeout=60)
    assert not t.is_alive()
    if "error" in box:
        raise box["error"]
    return box["value"]


def test_no_grad_in_one_thread_leaves_recording_on_in_another():
    entered, done = threading.Event(), threading.Event()
    seen = {}

    def evaluate():
        with mt.no_grad():
            entered.set()
            seen["inside"] = mt.is_grad_enabled()
            done.wait(timeout=60)

    t = threading.Thread(target=evaluate)
    t.start()
    assert entered.wait(timeout=60)
    try:                                  # the other thread is inside no_grad right now
        w = mt.tensor(np.ones(3, np.float32), requires_grad=True)
        y = (w * w).sum()
        assert mt.is_grad_enabled() and y.requires_grad
        y.backward()
        np.testing.assert_array_equal(w.grad, [2.0, 2.0, 2.0])
    finally:
        done.set()
        t.join(timeout=60)
    assert seen["inside"] is False


def test_a_new_thread_records_even_when_its_starter_is_in_no_grad():
    w = mt.tensor(np.ones(3, np.float32), requires_grad=True)
    with mt.no_grad():
        assert not (w * 2.0).requires_grad
        assert _in_thread(lambda: (mt.is_grad_enabled(), (w * 2.0).requires_grad)) == \
            (True, True)
        assert not mt.is_grad_enabled()   # and the thread did not change this one's mode
    assert mt.is_grad_enabled()


def test_no_grad_in_a_thread_ends_with_the_thread():
    def inside():
        with mt.no_grad():
            return mt.is_grad_enabled(), F.relu(mt.tensor([1.0], requires_grad=True)).requires_grad

    assert _in_thread(inside) == (False, False)
    assert F.relu(mt.tensor([1.0], requires_grad=True)).requires_grad


_TRAIN = textwrap.dedent("""
    import threading
    import numpy as np
    import minimtl as mt
    from minimtl import functional as F
    from minimtl.optim import Adam

    def train(seed):
        # the pools are prange kernels at every size: each step enters parallel regions
        rng = np.random.default_rng(seed)
        x = mt.tensor(rng.standard_normal((64, 8, 256)).astype(np.float32), backend="numba")
        y = rng.integers(0, 4, 64)
        w = mt.tensor(0.1 * rng.standard_normal((16, 8, 3)).astype(np.float32),
                      requires_grad=True, backend="numba")
        v = mt.tensor(0.1 * rng.standard_normal((4, 16 * 31)).astype(np.float32),
                      requires_grad=True, backend="numba")
        opt = Adam([w, v], lr=1e-2)
        losses = []
        for step in range(40):
            h = F.max_pool1d(F.relu(F.conv1d(x, w)), 4)
            h = F.avg_pool1d(h, 2)
            loss = F.cross_entropy(F.linear(F.flatten(h), v), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.item()))
        return losses, w.data.copy(), v.data.copy()

    alone = {s: train(s) for s in (1, 2)}
    together = {}
    threads = [threading.Thread(target=lambda s=s: together.__setitem__(s, train(s)))
               for s in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in (1, 2):
        assert together[s][0] == alone[s][0], (s, together[s][0], alone[s][0])
        assert all(np.array_equal(a, b) for a, b in zip(together[s][1:], alone[s][1:])), s
    assert alone[1][0][-1] < alone[1][0][0]          # and they did train
    print("ok", alone[1][0][0], alone[1][0][-1])
""")


def test_two_threads_train_on_numba_at_once_and_match_single_threaded_runs():
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               NUMBA_NUM_THREADS="2")
    env.pop("NUMBA_THREADING_LAYER", None)          # the default: workqueue
    proc = subprocess.run([sys.executable, "-c", _TRAIN], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-3000:])
    assert proc.stdout.startswith("ok")
