"""Data-parallel training on 2 ranks (launched here through ``mpiexec``) against one
process: the same parameters after the same steps, rank 0's start, rank-0-only writes,
gathered metrics, resumes across a change in the number of ranks, and faults."""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from minimtl.checkpoint import read_meta
from minimtl.train import evaluate

from . import ranks

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# found, not imported: importing mpi4py would start MPI in this (the test) process
_MPI4PY = importlib.util.find_spec("mpi4py") is not None
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep
                       + os.environ.get("PATH", ""))
pytestmark = pytest.mark.skipif(not (_MPI4PY and MPIEXEC), reason=(
    "mpi4py is not installed" if not _MPI4PY else "no mpiexec next to Python or on PATH")
    + " (pip install 'minimtl[mpi]')")


def mpirun(*args: str, n: int = 2, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    return subprocess.run([MPIEXEC, "-n", str(n), sys.executable, "-m",
                           "tests.distributed.ranks", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """One mpiexec -n 2 run of every equivalence scenario (ranks._equivalence)."""
    out = str(tmp_path_factory.mktemp("dp"))
    ranks.train(None, epochs=1, checkpoint=os.path.join(out, "one-rank.npz"))
    run = mpirun("equivalence", out)
    assert run.returncode == 0, run.stdout + run.stderr
    loaded = []
    for r in (0, 1):
        with np.load(os.path.join(out, f"rank{r}.npz")) as z:
            arrays = {k: z[k] for k in z.files}
        with open(os.path.join(out, f"rank{r}.json")) as f:
            loaded.append((arrays, json.load(f)))
    return out, loaded


def _max_rel(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(np.linalg.norm(a[k] - b[k]) / max(np.linalg.norm(b[k]), 1e-300) for k in a)


def _part(arrays: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


def test_two_ranks_with_half_batches_equal_one_process_float64(two_ranks):
    _, loaded = two_ranks
    single, _, _ = ranks.train(None, seed=10)        # rank 0's init, broadcast to rank 1
    reference = ranks.params(single)
    for arrays, _ in loaded:
        assert _max_rel(_part(arrays, "f64/"), reference) < 1e-12
    # and the steps moved the parameters far more than that
    start = ranks.params(ranks.model(10))
    assert _max_rel(start, reference) > 1e-3


def test_two_ranks_equal_one_process_float32_within_rounding(two_ranks):
    _, loaded = two_ranks
    single, _, _ = ranks.train(None, dtype=np.float32, seed=10)
    for arrays, _ in loaded:
        assert _max_rel(_part(arrays, "f32/"), ranks.params(single)) < 1e-4


def test_overlapping_the_all_reduce_with_the_backward_changes_no_bit(two_ranks):
    _, loaded = two_ranks
    for arrays, j in loaded:
        overlapped, after = _part(arrays, "f64/"), _part(arrays, "after/")
        for k in overlapped:
            np.testing.assert_array_equal(overlapped[k], after[k])
        # every one of the test's small buckets (512 bytes: several a step) was started
        # by the walk, none left for after it (when in the walk: tests/autograd/
        # test_on_leaf.py)
        early, total = j["buckets"]["early"], j["buckets"]["total"]
        assert early == total and total >= 3 * 14, j["buckets"]


def test_replicas_are_bitwise_equal_and_start_from_rank_0(two_ranks):
    _, ((a0, _), (a1, _)) = two_ranks
    for k in a0:
        np.testing.assert_array_equal(a0[k], a1[k])
    # rank 1 built its model from seed 11: without the broadcast it would differ
    own = ranks.train(None, seed=11)[0]
    assert _max_rel(ranks.params(own), _part(a1, "f64/")) > 1e-3


def test_history_and_gathered_metrics_equal_one_process(two_ranks):
    _, ((_, j0), (_, j1)) = two_ranks
    single, _, history = ranks.train(None, seed=10)
    untimed = [[{k: v for k, v in e.items() if k != "time_s"} for e in j["history"]]
               for j in (j0, j1)]
    assert untimed[0] and untimed[0] == untimed[1]
    for got, want in zip(j0["history"], history.epochs):
        assert got.keys() == want.keys()
        for k, v in want.items():
            if isinstance(v, float) and k != "time_s":
                assert abs(got[k] - v) <= 1e-12 * max(1.0, abs(v)), k
    want = evaluate(single, ranks.data(40, seed=1), batch_size=7)
    assert j0["metrics"] == j1["metrics"]
    for k, v in want.items():
        assert abs(j0["metrics"][k] - v) <= 1e-12 * max(1.0, abs(v)), k
    assert "click_auc" in want
    gates = single.gate_weights()
    for g, row in gates.items():
        np.testing.assert_allclose(list(j0["gates"][g].values()), list(row.values()),
                                   rtol=1e-12)


def test_only_rank_0_prints_and_writes_checkpoints(two_ranks):
    out, ((_, j0), (_, j1)) = two_ranks
    assert j1["writes"] == [] and j0["writes"]
    assert set(j0["writes"]) == {"two.npz", "one-rank.npz", "epoch1-two-ranks.npz"}
    with open(os.path.join(out, "log-1.txt")) as f:
        assert f.read() == ""
    with open(os.path.join(out, "log-0.txt")) as f:
        assert "Epoch 2/2" in f.read()
    assert read_meta(os.path.join(out, "two.npz"))["epoch"] == 2
    assert not glob.glob(os.path.join(out, "*.tmp*"))


def test_resume_with_another_number_of_ranks_equals_an_uninterrupted_run(two_ranks, tmp_path):
    out, loaded = two_ranks
    uninterrupted = ranks.params(ranks.train(None)[0])
    # one process wrote epoch 1, two ranks trained epoch 2
    for arrays, _ in loaded:
        assert _max_rel(_part(arrays, "resumed/"), uninterrupted) < 1e-12
    # two ranks wrote epoch 1, one process trains epoch 2
    ckpt = str(tmp_path / "c.npz")
    shutil.copy(os.path.join(out, "epoch1-two-ranks.npz"), ckpt)
    resumed = ranks.train(None, checkpoint=ckpt, resume=True)[0]
    assert _max_rel(ranks.params(resumed), uninterrupted) < 1e-12


@pytest.mark.parametrize("how", ["raise", "hang", "die"])
def test_a_failing_dead_or_silent_rank_stops_the_others_naming_it(tmp_path, how):
    run = mpirun(how, str(tmp_path), "3", timeout=90)
    assert run.returncode != 0
    if how == "die":
        # mpiexec ends every rank at once when one is killed, and says which signal; (a
        # rank that stops answering without dying is the "hang" case)
        assert "signal 9" in run.stdout + run.stderr, run.stdout + run.stderr
        zero = None
    else:
        with open(tmp_path / "fault-0.json") as f:
            zero = json.load(f)
        assert zero["outcome"].startswith("DistributedError"), zero
    if how == "raise":
        assert "rank 1 of 2 failed (RuntimeError: planted failure on rank 1)" in \
            zero["outcome"]
        with open(tmp_path / "fault-1.json") as f:
            assert json.load(f)["outcome"] == "RuntimeError: planted failure on rank 1"
        assert zero["seconds"] < 30
    elif how == "hang":
        assert "waited 3 s" in zero["outcome"] and "rank(s) 1 did not answer" in \
            zero["outcome"], zero
    # the failure came in epoch 2: the checkpoint of epoch 1 is whole, nothing partial
    assert read_meta(tmp_path / "fault.npz")["epoch"] == 1
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["fault.npz"] + [f"fault-{r}.json" for r in (0, 1) if (tmp_path /
                                                               f"fault-{r}.json").exists()])


def test_a_ctrl_c_on_one_rank_stops_every_rank_at_the_same_step_and_resumes(tmp_path):
    run = mpirun("interrupt", str(tmp_path), "30")
    assert run.returncode != 0
    outcomes = []
    for r in (0, 1):
        with open(tmp_path / f"fault-{r}.json") as f:
            outcomes.append(json.load(f)["outcome"])
    where = "KeyboardInterrupt: interrupted at epoch 2, step 3/7"
    assert outcomes[0].startswith(where + "; saved to") and outcomes[1] == where, outcomes
    # the checkpoint inside epoch 2 holds the global sums: one process resumes it exactly
    ckpt = str(tmp_path / "fault.npz")
    assert read_meta(ckpt)["partial"]["step"] == 3
    resumed = ranks.model()
    ranks.fault_fit(resumed, checkpoint=ckpt, resume=True)
    uninterrupted = ranks.model()
    history = ranks.fault_fit(uninterrupted)
    assert _max_rel(ranks.params(resumed), ranks.params(uninterrupted)) < 1e-12
    assert read_meta(ckpt)["history"][1]["loss"] == pytest.approx(
        history.epochs[1]["loss"], rel=1e-12)


# --- the command ------------------------------------------------------------------------
TRAIN = ["train", "--samples", "200", "--seq-len", "10", "--features", "4", "--backend",
         "numpy", "--batch-size", "20", "--threads", "1"]


def minimtl(*args: str, n: int) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    head = [MPIEXEC, "-n", str(n)] if n > 1 else []
    return subprocess.run([*head, sys.executable, "-m", "minimtl.cli", *TRAIN, *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def _test_metrics(out) -> dict:
    with open(os.path.join(out, "test_metrics.json")) as f:
        return json.load(f)["test"]


def test_the_command_on_2_ranks_prints_once_and_resumes_on_1(tmp_path):
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    assert minimtl("--epochs", "2", "--out", one, "--quiet", n=1).returncode == 0
    run = minimtl("--epochs", "1", "--out", two, n=2)
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("Epoch 1/1") == 1 and run.stdout.count("Test set") == 1
    assert "data-parallel on 2 ranks (MPI)" in run.stdout
    # the second epoch in one process: the run of one process throughout, to float32
    # rounding (the model is float32)
    run = minimtl("--epochs", "2", "--out", two, "--resume", "--quiet", n=1)
    assert run.returncode == 0, run.stderr
    a, b = _test_metrics(one), _test_metrics(two)
    assert max(abs(a[k] - b[k]) for k in a) < 1e-4
    assert sorted(os.listdir(two)) == sorted(os.listdir(one))


def test_the_command_names_the_rank_that_failed(tmp_path):
    out = str(tmp_path / "run")
    os.makedirs(out)
    with open(os.path.join(out, "history.json"), "w") as f:
        f.write("{}")                  # a run rank 0 refuses to overwrite
    run = minimtl("--epochs", "1", "--out", out, n=2)
    assert run.returncode == 2
    assert "minimtl: error (rank 0 of 2): " in run.stderr and "already holds a run" in \
        run.stderr
    assert "minimtl: error (rank 1 of 2): rank 0 of 2 failed (CLIError: " in run.stderr
    assert os.listdir(out) == ["history.json"]
