"""``minimtl train`` killed (SIGKILL) or interrupted (SIGINT) at seeded random moments,
checkpoint writes included: whatever is on disk afterwards is a loadable checkpoint of a
finished step, ``--resume`` then finishes the run with exactly the parameters and history of
an uninterrupted run, and no temporary file is left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ARGS = ["--samples", "400", "--seq-len", "16", "--features", "4", "--batch-size", "16",
        "--epochs", "4", "--backend", "numba", "--threads", "1", "--quiet",
        "--no-malloc-tuned"]
ROOT = Path(__file__).resolve().parent.parent.parent


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _start(out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "minimtl.cli", "train", *ARGS, "--out",
                             str(out), *extra], env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def _finish(out: Path, *extra: str) -> None:
    proc = _start(out, *extra)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err


def _model_arrays(out: Path) -> dict[str, np.ndarray]:
    with np.load(out / "checkpoint.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files if k.startswith(("model/", "optim/"))}


def _losses(out: Path) -> list[dict[str, float]]:
    epochs = json.loads((out / "history.json").read_text())["epochs"]
    return [{k: v for k, v in e.items() if k != "time_s"} for e in epochs]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run: its final arrays, history and wall time."""
    out = tmp_path_factory.mktemp("reference") / "run"
    _finish(out)                          # compiles what the kernels' cache lacks
    proc = _start(out, "--overwrite")
    t0 = _training_started(out, proc)
    while not (out / "test_metrics.json").exists():    # the epochs and the test evaluation
        assert proc.poll() is None, proc.communicate()[1]
        time.sleep(0.005)
    training = time.perf_counter() - t0
    proc.communicate(timeout=300)
    assert proc.returncode == 0
    return _model_arrays(out), _losses(out), training


def _training_started(out: Path, proc: subprocess.Popen) -> float:
    """When the run wrote its run.json (just before the first epoch)."""
    while not (out / "run.json").exists() or (out / "test_metrics.json").exists():
        assert proc.poll() is None, proc.communicate()[1]
        time.sleep(0.005)
    return time.perf_counter()


def _finished(out: Path) -> bool:
    run = out / "run.json"
    return run.exists() and bool(json.loads(run.read_text()).get("finished"))


def _assert_loadable_or_absent(out: Path) -> None:
    from minimtl.models import MultiTaskNet
    from minimtl.optim import Adam
    from minimtl.train import load_checkpoint

    path = out / "checkpoint.npz"
    if path.exists():
        model = MultiTaskNet(16, 4, backend="numpy")
        load_checkpoint(path, model, Adam(list(model.parameters())))


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill", "interrupt"])
@pytest.mark.parametrize("seed", range(4))
def test_a_run_stopped_at_a_random_moment_resumes_to_the_uninterrupted_result(
        reference, tmp_path, sig, seed):
    arrays, losses, training = reference
    out = tmp_path / "run"
    proc = _start(out)
    _training_started(out, proc)
    # anywhere in the epochs (checkpoint writes included) and a little after them
    time.sleep(float(np.random.default_rng([seed, sig]).uniform(0.0, 1.15)) * training)
    if proc.poll() is None:
        proc.send_signal(sig)
    proc.communicate(timeout=300)
    _assert_loadable_or_absent(out)
    if not _finished(out):                # the signal may come after the run's last write
        _finish(out, "--resume") if (out / "checkpoint.npz").exists() else _finish(out)
    for i, (got, want) in enumerate(zip(_losses(out), losses, strict=True)):
        assert got == want, (i, {k: (got[k], want[k]) for k in want if got[k] != want[k]})
    got = _model_arrays(out)
    assert got.keys() == arrays.keys()
    for k in arrays:
        np.testing.assert_array_equal(got[k], arrays[k], err_msg=k)
    assert not [p.name for p in out.iterdir() if "tmp" in p.name]
