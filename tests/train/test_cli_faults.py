"""A user's first hour with ``minimtl train``: every bad flag named in one line, no run lost
or silently replaced, ``--resume`` refusing settings that differ, unreadable data files
reported as such (never a traceback, never advice to unpickle), layers refusing size 0."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import minimtl as mt
from minimtl import data as D
from minimtl.cli import main

TINY = ["--samples", "200", "--seq-len", "16", "--features", "4", "--backend", "numba",
        "--quiet"]


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("minimtl: error: "), err
    return err[0]


def _snapshot(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("command", ["train", "summary"])
@pytest.mark.parametrize("flag,value,needle", [
    ("--epochs", "0", "--epochs must be an integer >= 1, got 0"),
    ("--batch-size", "0", "--batch-size must be an integer >= 1, got 0"),
    ("--samples", "9", "--samples must be an integer >= 10, got 9"),
    ("--lr", "0", "--lr must be a positive finite number, got 0.0"),
    ("--lr", "-1e-3", "--lr must be a positive finite number"),
    ("--lr", "nan", "--lr must be a positive finite number, got nan"),
    ("--lr", "inf", "--lr must be a positive finite number, got inf"),
    ("--seq-len", "0", "--seq-len must be an integer >= 10, got 0"),
    ("--features", "0", "--features must be an integer >= 1, got 0"),
    ("--rnn-hidden", "0", "--rnn-hidden must be an integer >= 1, got 0"),
])
def test_a_bad_flag_value_is_named_in_one_line(command, flag, value, needle, tmp_path, capsys):
    if command == "summary" and flag in ("--epochs", "--batch-size", "--samples", "--lr"):
        pytest.skip("not a summary flag")
    argv = [command, f"{flag}={value}", "--extractor", "cnn+rnn"]
    if command == "train":
        argv += ["--out", str(tmp_path / "r")]
    assert main(argv) == 2
    assert needle in _one_line_error(capsys)
    assert not (tmp_path / "r").exists()


def test_an_unknown_flag_prints_the_commands_own_usage(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--epochs", "1", "--no-such-flag"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "minimtl train: error: unrecognized arguments: --no-such-flag" in err
    assert "usage: minimtl train" in err and "--batch-size" in err


def test_a_second_run_into_the_same_out_is_refused_and_overwrite_replaces_it(tmp_path,
                                                                              capsys):
    out = tmp_path / "run"
    assert main(["train", "--epochs", "1", "--out", str(out)] + TINY) == 0
    assert {"run.json", "checkpoint.npz", "history.json", "test_metrics.json"} <= \
        {p.name for p in out.iterdir()}
    before = _snapshot(out)
    capsys.readouterr()
    assert main(["train", "--epochs", "1", "--out", str(out)] + TINY) == 2
    line = _one_line_error(capsys)
    assert "already holds a run" in line and "--overwrite" in line and "--resume" in line
    assert _snapshot(out) == before                              # nothing touched
    assert main(["train", "--epochs", "1", "--seed", "4", "--overwrite", "--out", str(out)]
                + TINY) == 0
    assert json.loads((out / "run.json").read_text())["settings"]["seed"] == 4
    assert _snapshot(out)["checkpoint.npz"] != before["checkpoint.npz"]


@pytest.mark.parametrize("changed,needle", [
    (["--lr", "0.01"], "--lr 0.001 -> 0.01"),
    (["--seed", "3"], "--seed 0 -> 3"),
    (["--batch-size", "16"], "--batch-size 32 -> 16"),
    (["--preprocess", "minmax"], "--preprocess 'denoise,standardize' -> 'minmax'"),
])
def test_resume_refuses_settings_that_differ_and_leaves_the_run_alone(changed, needle,
                                                                      tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--epochs", "1", "--out", str(out)] + TINY) == 0
    before = _snapshot(out)
    capsys.readouterr()
    assert main(["train", "--epochs", "2", "--resume", "--out", str(out)] + TINY
                + changed) == 2
    assert needle in _one_line_error(capsys)
    assert _snapshot(out) == before


def test_resume_with_no_more_epochs_to_train_says_so(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--epochs", "2", "--out", str(out)] + TINY) == 0
    capsys.readouterr()
    assert main(["train", "--epochs", "2", "--resume", "--out", str(out)] + TINY) == 2
    assert "already trained 2 epoch(s); --epochs 2 trains nothing" in _one_line_error(capsys)
    assert main(["train", "--epochs", "3", "--resume", "--out", str(out)] + TINY) == 0
    assert len(json.loads((out / "history.json").read_text())["epochs"]) == 3


def test_resume_finishes_a_run_stopped_after_its_last_epoch(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--epochs", "2", "--out", str(out)] + TINY) == 0
    history = (out / "history.json").read_bytes()
    run = json.loads((out / "run.json").read_text())
    del run["finished"]                   # as if stopped before the last files were written
    (out / "run.json").write_text(json.dumps(run))
    (out / "test_metrics.json").unlink()
    assert main(["train", "--epochs", "2", "--resume", "--out", str(out)] + TINY) == 0
    assert (out / "test_metrics.json").exists() and (out / "history.json").read_bytes() == history
    assert json.loads((out / "run.json").read_text())["finished"] is True


def test_resume_without_a_checkpoint_fails_before_printing_anything(tmp_path, capsys):
    assert main(["train", "--resume", "--epochs", "1", "--out", str(tmp_path / "none"),
                 "--backend", "numba"]) == 2
    assert "there is no checkpoint at" in _one_line_error(capsys)
    assert capsys.readouterr().out == ""
    assert not (tmp_path / "none").exists()


def test_an_unwritable_out_is_found_before_any_work(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["train", "--epochs", "1", "--out", str(blocker / "run")] + TINY) == 2
    assert "is not writable" in _one_line_error(capsys)
    assert capsys.readouterr().out == ""


def test_a_failed_run_leaves_no_empty_output_folder(tmp_path, capsys):
    out = tmp_path / "a" / "b"
    assert main(["train", "--epochs", "1", "--data", str(tmp_path / "missing.npz"), "--out",
                 str(out)] + TINY) == 2
    assert "no such file" in _one_line_error(capsys)
    assert not (tmp_path / "a").exists()


def test_a_run_leaves_only_its_own_files(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--epochs", "1", "--out", str(out)] + TINY) == 0
    names = {p.name for p in out.iterdir()}
    assert names <= {"run.json", "checkpoint.npz", "history.json", "test_metrics.json",
                     "curves.png"}, names                     # no temporary file left


# --- data files ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def npz_bytes(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("npz") / "ok.npz"
    D.save_npz(D.make_synthetic(samples=40, seq_len=8, features=3, seed=1), path)
    return path.read_bytes()


@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99])
def test_a_truncated_data_file_gives_a_clear_error(npz_bytes, fraction, tmp_path):
    path = tmp_path / "cut.npz"
    path.write_bytes(npz_bytes[:int(len(npz_bytes) * fraction)])
    with pytest.raises(ValueError, match=r"load_npz\('.*cut\.npz'\): ") as e:
        D.load_npz(path)
    assert "pickle" not in str(e.value)


@pytest.mark.parametrize("seed", range(12))
def test_a_flipped_byte_in_a_data_file_gives_a_clear_error_or_a_checked_dataset(
        npz_bytes, seed, tmp_path):
    rng = np.random.default_rng(seed)
    data = bytearray(npz_bytes)
    at = int(rng.integers(0, len(data)))
    data[at] ^= 1 << int(rng.integers(0, 8))
    path = tmp_path / "flip.npz"
    path.write_bytes(bytes(data))
    try:
        ds = D.load_npz(path)
    except ValueError as e:                    # a clear error naming the file ...
        assert "flip.npz" in str(e) and "pickle" not in str(e)
    else:                                      # ... or data that passed every check
        assert all(np.isfinite(ds.inputs[t]).all() for t in D.TASKS)


def test_a_file_that_is_not_an_npz_is_named_as_such_without_pickle_advice(tmp_path):
    text = tmp_path / "notes.npz"
    text.write_text("user,goods,ads\n1,2,3\n")
    with pytest.raises(ValueError, match="not a readable .npz archive") as e:
        D.load_npz(text)
    assert "pickle" not in str(e.value)
    single = tmp_path / "single.npz"
    with open(single, "wb") as f:
        np.save(f, np.zeros(3))
    with pytest.raises(ValueError, match="single .npy array"):
        D.load_npz(single)


def test_a_truncated_data_file_on_the_command_line_is_one_line(npz_bytes, tmp_path, capsys):
    path = tmp_path / "cut.npz"
    path.write_bytes(npz_bytes[: len(npz_bytes) // 2])
    assert main(["train", "--epochs", "1", "--data", str(path), "--out",
                 str(tmp_path / "r")] + TINY) == 2
    assert "cut.npz" in _one_line_error(capsys)


def test_finite_data_beyond_float32_range_is_refused(npz_bytes, tmp_path):
    src = tmp_path / "ok.npz"
    src.write_bytes(npz_bytes)
    arrays = dict(np.load(src))
    arrays["goods"] = arrays["goods"].astype(np.float64)
    arrays["goods"][0, 0, 0] = 1e300                     # finite in float64, inf in float32
    np.savez(tmp_path / "big.npz", **arrays)
    with pytest.raises(ValueError, match="'goods' has 1 value.* beyond float32's range"):
        D.load_npz(tmp_path / "big.npz")


def test_unused_members_are_never_read(npz_bytes, tmp_path):
    """A member the schema does not use is not decompressed: here it is corrupt, and the
    file still loads."""
    import zipfile

    path = tmp_path / "extra.npz"
    path.write_bytes(npz_bytes)
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("unused.npy", b"\x93NUMPY garbage")
    assert len(D.load_npz(path)) == 40


# --- the library -------------------------------------------------------------------------
@pytest.mark.parametrize("make,needle", [
    (lambda: mt.nn.LSTM(3, 0), "LSTM: hidden_size must be an integer >= 1, got 0"),
    (lambda: mt.nn.GRU(0, 2), "GRU: input_size must be an integer >= 1, got 0"),
    (lambda: mt.nn.Linear(3, 0), "Linear: out_features must be an integer >= 1, got 0"),
    (lambda: mt.nn.Conv1d(2, 3, 0), "Conv1d: kernel_size must be an integer >= 1, got 0"),
])
def test_layers_of_size_zero_are_refused_by_name(make, needle):
    with pytest.raises(ValueError, match=needle):
        make()


def test_nn_and_optim_come_with_the_package():
    assert mt.nn.Linear is not None and mt.optim.Adam is not None
    assert os.path.basename(mt.nn.__file__) == "__init__.py"


# --- threads, small splits, leftovers, the picture ---------------------------------------
def test_set_num_threads_limits_numba_and_blas():
    pytest.importorskip("numba")
    import numba
    from threadpoolctl import threadpool_info, threadpool_limits

    from kernels import _threads
    from minimtl.backend import set_num_threads

    def blas_threads():
        return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}

    before = numba.get_num_threads(), _threads.threads(), max(blas_threads(), default=1)
    try:
        assert set_num_threads(1) == {"numba": 1, "chunks": 1, "blas": 1}
        assert numba.get_num_threads() == 1 and _threads.threads() == 1
        assert blas_threads() <= {1}
        if numba.config.NUMBA_NUM_THREADS >= 2:
            # the chunk threads take the cores, BLAS runs on one thread under each
            assert set_num_threads(2) == {"numba": 2, "chunks": 2, "blas": 1}
            assert _threads.threads() == 2 and blas_threads() <= {1}
        with pytest.raises(ValueError, match="set_num_threads: n must be an integer >= 1"):
            set_num_threads(0)
        with pytest.raises(ValueError, match="but Numba has"):
            set_num_threads(numba.config.NUMBA_NUM_THREADS + 1)
    finally:
        numba.set_num_threads(before[0])
        _threads.set_threads(before[1])
        threadpool_limits(limits=before[2], user_api="blas")


def test_threads_flag_at_its_boundary(tmp_path, capsys):
    assert main(["train", "--threads", "0", "--out", str(tmp_path / "r")] + TINY) == 2
    assert "--threads must be an integer >= 1, got 0" in _one_line_error(capsys)
    assert main(["train", "--threads", "1", "--epochs", "1", "--out", str(tmp_path / "r")]
                + TINY) == 0


def test_a_tiny_split_is_warned_about_and_its_auc_shown_as_na(tmp_path, capsys):
    assert main(["train", "--epochs", "1", "--out", str(tmp_path / "r"), "--samples", "12",
                 "--seq-len", "16", "--features", "4", "--backend", "numba"]) == 0
    captured = capsys.readouterr()
    assert "warning: only 1 validation and 1 test samples (from 12)" in captured.err
    table = captured.out[captured.out.index("Test set"):]
    assert " n/a " in table and "nan" not in table


def test_leftover_temporary_files_of_a_killed_run_are_removed_on_resume(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--epochs", "1", "--out", str(out)] + TINY) == 0
    for name in ("checkpoint.npz.tmp-12345", "history.json.tmp", ".tmp-abcd.json"):
        (out / name).write_bytes(b"half a file")
    assert main(["train", "--epochs", "2", "--resume", "--out", str(out)] + TINY) == 0
    assert not [p.name for p in out.iterdir() if "tmp" in p.name]


def test_the_curves_of_a_one_epoch_run_are_not_blank(tmp_path):
    image = pytest.importorskip("matplotlib.image")
    out = tmp_path / "run"
    assert main(["train", "--epochs", "1", "--out", str(out)] + TINY) == 0
    rgb = image.imread(out / "curves.png")[..., :3]
    left = rgb[:, : rgb.shape[1] // 2]                     # the loss axes: markers only
    blue = np.array([0x1F, 0x77, 0xB4]) / 255.0            # the user task's colour (C0)
    assert np.sum(np.all(np.abs(left - blue) < 0.08, axis=-1)) > 20


def test_train_never_imports_the_benchmark_runner(tmp_path):
    import subprocess
    import sys

    code = ("import sys; from minimtl.cli import main; "
            f"rc = main(['train', '--epochs', '1', '--out', {str(tmp_path / 'r')!r}] + {TINY!r}); "
            "assert rc == 0, rc; print(sorted(m for m in sys.modules if 'bench' in m))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"
