"""Checkpoints and run files under attack: Ctrl-C inside an epoch, divergence, wrong dtypes,
broken metadata, truncations and byte flips at many offsets, planted symlinks. Each ends
in a clear error or a correct result, and the last good checkpoint is never lost."""

from __future__ import annotations

import json
import signal

import numpy as np
import pytest

from minimtl import data as D
from minimtl.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from minimtl.cli import main
from minimtl.models import MultiTaskNet
from minimtl.optim import Adam
from minimtl.train import TrainingError, fit

SEQ, FEAT = 12, 3


@pytest.fixture(scope="module")
def data():
    full = D.make_synthetic(samples=120, seq_len=SEQ, features=FEAT, seed=2)
    train, val, _ = D.train_val_test_split(full, seed=0)
    return train, val


def _model():
    return MultiTaskNet(SEQ, FEAT, seed=0, backend="numpy", dtype=np.float64)


def _arrays(model, opt):
    out = {f"model/{k}": np.array(v) for k, v in model.state_dict().items()}
    out.update({f"optim/{k}": np.array(v) for k, v in opt.state_dict().items()})
    return out


def test_ctrl_c_inside_an_epoch_saves_and_resume_continues_exactly(data, tmp_path):
    train, val = data
    ref_model = _model()
    ref_opt = Adam(list(ref_model.parameters()), lr=1e-2)
    ref = fit(ref_model, train, val, optimizer=ref_opt, epochs=2, batch_size=16, stream=None)

    model = _model()
    opt = Adam(list(model.parameters()), lr=1e-2)
    calls = {"n": 0}
    step = opt.step

    def step_then_ctrl_c():           # Ctrl-C arrives during the 9th step (of 2 × 6)
        step()
        calls["n"] += 1
        if calls["n"] == 9:
            signal.raise_signal(signal.SIGINT)

    opt.step = step_then_ctrl_c
    path = tmp_path / "c.npz"
    with pytest.raises(KeyboardInterrupt, match=r"epoch 2, step 3/6; saved to"):
        fit(model, train, val, optimizer=opt, epochs=2, batch_size=16, stream=None,
            checkpoint=path)
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
    assert meta["epoch"] == 1 and meta["partial"]["step"] == 3

    model2 = _model()
    opt2 = Adam(list(model2.parameters()), lr=1e-2)
    history = fit(model2, train, val, optimizer=opt2, epochs=2, batch_size=16, stream=None,
                  checkpoint=path, resume=True)
    strip = [{k: v for k, v in e.items() if k != "time_s"} for e in history.epochs]
    assert strip == [{k: v for k, v in e.items() if k != "time_s"} for e in ref.epochs]
    got, want = _arrays(model2, opt2), _arrays(ref_model, ref_opt)
    assert got.keys() == want.keys()
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def test_a_diverged_epoch_never_replaces_the_last_good_checkpoint(data, tmp_path):
    train, val = data
    model = _model()
    path = tmp_path / "c.npz"
    fit(model, train, val, optimizer=Adam(list(model.parameters()), lr=1e-3), epochs=1,
        batch_size=16, stream=None, checkpoint=path)
    good = path.read_bytes()
    # NaN into the optimizer's state: the loss of the next steps can stay finite for a
    # while, the epoch's end check catches what the per-step loss check would miss
    opt = Adam(list(model.parameters()), lr=1e-3)
    load_checkpoint(path, model, opt)
    opt.state[0]["m"][...] = np.nan
    with pytest.raises(TrainingError, match="NaN/inf"):
        fit(model, train, val, optimizer=opt, epochs=2, batch_size=16, stream=None,
            checkpoint=path, resume=False)
    assert path.read_bytes() == good


def test_a_huge_learning_rate_on_the_command_line_fails_cleanly(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["train", "--lr", "1e8", "--epochs", "3", "--samples", "300", "--seq-len", "64",
               "--features", "32", "--backend", "numba", "--quiet", "--out", str(out)])
    assert rc == 2                     # Adam's v overflows float32 in the first epoch
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("minimtl: error: training diverged in epoch 1: NaN/inf in optimizer")
    assert "no checkpoint was written" in err
    ckpt = out / "checkpoint.npz"
    if ckpt.exists():                  # whatever was kept is finite
        with np.load(ckpt) as z:
            assert all(np.all(np.isfinite(z[k])) for k in z.files if k.startswith("model/"))


@pytest.fixture()
def saved(data, tmp_path):
    train, _ = data
    model = _model()
    opt = Adam(list(model.parameters()), lr=1e-3)
    path = tmp_path / "c.npz"
    fit(model, train, optimizer=opt, epochs=1, batch_size=32, stream=None, checkpoint=path)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    return path, arrays


@pytest.mark.parametrize("dtype", [bool, np.int64, np.float16, np.complex128, "U3"])
def test_checkpoint_arrays_of_the_wrong_dtype_are_refused(saved, dtype):
    path, arrays = saved
    name = "model/heads_weight" if "model/heads_weight" in arrays else \
        next(k for k in arrays if k.startswith("model/"))
    arrays[name] = arrays[name].astype(dtype)
    np.savez(path, **arrays)
    model = _model()
    before = {k: np.array(v) for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match=f"{name} has dtype"):
        load_checkpoint(path, model)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_checkpoint_arrays_with_nan_are_refused(saved):
    path, arrays = saved
    name = next(k for k in arrays if k.startswith("model/"))
    arrays[name] = arrays[name].copy()
    arrays[name].flat[0] = np.nan
    np.savez(path, **arrays)
    with pytest.raises(CheckpointError, match=f"{name} holds 1 NaN/inf"):
        load_checkpoint(path, _model())


@pytest.mark.parametrize("meta,needle", [
    ("[1, 2]", "JSON list, not an object"),
    ('{"history": []}', "no epoch count"),
    ('{"epoch": -1}', "no epoch count"),
    ('{"epoch": "3"}', "no epoch count"),
    ('{"epoch": 1, "history": 5}', "history is not a list"),
    ("{not json", "'meta' is not JSON"),
])
def test_broken_checkpoint_metadata_gives_a_clear_error(saved, meta, needle):
    path, arrays = saved
    arrays["meta"] = np.asarray(meta)
    np.savez(path, **arrays)
    with pytest.raises(CheckpointError, match=needle):
        load_checkpoint(path, _model())


def test_a_checkpoint_of_other_heads_is_refused_before_loading(saved):
    path, _ = saved
    other = MultiTaskNet(SEQ, FEAT, seed=0, backend="numpy", dtype=np.float64,
                         heads={"goods": "linear"})
    with pytest.raises(CheckpointError, match="another model configuration.*heads"):
        load_checkpoint(path, other)


@pytest.mark.parametrize("fraction", [0.0, 0.002, 0.05, 0.2, 0.4, 0.6, 0.8, 0.95, 0.999])
def test_a_truncated_checkpoint_is_refused(saved, fraction):
    path, _ = saved
    raw = path.read_bytes()
    path.write_bytes(raw[:int(len(raw) * fraction)])
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load_checkpoint(path, _model())


@pytest.mark.parametrize("seed", range(24))
def test_a_flipped_byte_gives_a_clear_error_or_the_same_values(saved, seed, tmp_path):
    path, arrays = saved
    raw = bytearray(path.read_bytes())
    rng = np.random.default_rng(seed)
    # half the flips land in the .npy headers, the rest anywhere
    headers = [i for i in range(len(raw) - 6) if raw[i:i + 6] == b"\x93NUMPY"]
    at = int(rng.choice(headers)) + int(rng.integers(8, 60)) if seed % 2 else \
        int(rng.integers(0, len(raw)))
    raw[at] ^= 1 << int(rng.integers(0, 8))
    path.write_bytes(bytes(raw))
    model = _model()
    try:
        load_checkpoint(path, model)
    except CheckpointError:
        return
    for k, v in model.state_dict().items():               # loaded: then nothing changed
        np.testing.assert_array_equal(v, arrays[f"model/{k}"])


def test_planted_symlinks_in_out_are_never_followed(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    victims = {}
    for name in ("run.json", "history.json", "test_metrics.json", "curves.png",
                 "checkpoint.npz", "history.json.tmp", "checkpoint.npz.tmp-1"):
        victim = tmp_path / f"victim-{name}"
        victim.write_text("precious")
        (out / name).symlink_to(victim)
        victims[name] = victim
    assert main(["train", "--epochs", "1", "--samples", "200", "--seq-len", "16",
                 "--features", "4", "--backend", "numba", "--quiet", "--overwrite", "--out",
                 str(out)]) == 0
    for name, victim in victims.items():
        assert victim.read_text() == "precious", name
    for p in out.iterdir():
        assert not p.is_symlink(), p.name


def test_save_checkpoint_leaves_no_file_behind_when_writing_fails(tmp_path, monkeypatch):
    model = _model()
    path = tmp_path / "c.npz"
    save_checkpoint(path, model, meta={"epoch": 1})
    good = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", fail)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, meta={"epoch": 2})
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]
