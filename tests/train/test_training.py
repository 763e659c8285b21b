"""Training end to end: learning, resume, checkpoints, failures, the CLI."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from minimtl import data as D
from minimtl.cli import main
from minimtl.data import TASKS
from minimtl.models import MultiTaskNet
from minimtl.optim import Adam
from minimtl.train import CheckpointError, TrainingError, evaluate, fit, load_checkpoint

SMALL = dict(samples=800, seq_len=24, features=8)


@pytest.fixture(scope="module")
def small_data():
    full = D.make_synthetic(seed=1, **SMALL)
    train, val, test = D.train_val_test_split(full, val_fraction=0.1, test_fraction=0.2,
                                              seed=1)
    prep = D.Preprocessor().fit(train)
    return prep.transform(train), prep.transform(val), prep.transform(test), full.meta


def _model(**kw):
    return MultiTaskNet(SMALL["seq_len"], SMALL["features"], seed=0, backend="numba", **kw)


def test_each_task_learns_well_above_chance_and_its_loss_falls(small_data):
    train, val, test, meta = small_data
    model = _model()
    history = fit(model, train, val, epochs=6, batch_size=32, stream=None)
    for t in TASKS:
        losses = history.series(f"{t}_loss")
        assert losses[-1] < 0.8 * losses[0], (t, losses)
    m = evaluate(model, test)
    chance = meta["chance_accuracy"]
    for t in TASKS:
        # "a clear margin": a quarter of the way from chance to the best achievable, and at
        # least four standard errors of an accuracy measured on this test set
        decisions = len(test) * (10 if t == "goods" else 1)
        se = np.sqrt(chance[t] * (1 - chance[t]) / decisions)
        margin = max(0.25 * (meta["best_accuracy"][t] - chance[t]), 4 * se)
        assert m[f"{t}_accuracy"] > chance[t] + margin, (t, m[f"{t}_accuracy"], chance[t])


@pytest.mark.parametrize("kw", [
    {"extractor": "cnn+rnn", "rnn": "lstm"},
    {"extractor": "cnn+rnn", "rnn": "gru", "sharing": "shared"},
    {"extractor": "cnn+rnn", "rnn": "rnn"},
    {"sharing": "shared"},
    {"fusion": "weighted"},
])
def test_every_extractor_sharing_and_fusion_option_trains(small_data, kw):
    train, val, _, _ = small_data
    model = _model(**kw)
    before = evaluate(model, val)["loss"]
    fit(model, train.subset(np.arange(320)), epochs=2, batch_size=32, stream=None)
    assert evaluate(model, val)["loss"] < before


def test_resume_reproduces_the_uninterrupted_run_exactly(small_data, tmp_path):
    train, val, _, _ = small_data
    train, val = train.subset(np.arange(192)), val.subset(np.arange(32))
    straight = _model()
    h1 = fit(straight, train, val, epochs=3, stream=None, checkpoint=tmp_path / "a.npz")
    interrupted = _model()
    fit(interrupted, train, val, epochs=1, stream=None, checkpoint=tmp_path / "b.npz")
    resumed = _model()  # a fresh process would start from a fresh model
    h2 = fit(resumed, train, val, epochs=3, stream=None, checkpoint=tmp_path / "b.npz",
             resume=True)
    for key in ("loss", "user_loss", "goods_loss", "ads_loss", "val_loss"):
        assert h1.series(key) == h2.series(key), key
    for (n1, p1), (_, p2) in zip(straight.named_parameters(), resumed.named_parameters()):
        np.testing.assert_array_equal(p1.data, p2.data, err_msg=n1)


def test_truncated_checkpoint_gives_clear_error(small_data, tmp_path):
    train, _, _, _ = small_data
    path = tmp_path / "ckpt.npz"
    fit(_model(), train.subset(np.arange(64)), epochs=1, stream=None, checkpoint=path)
    blob = path.read_bytes()
    bad = tmp_path / "bad.npz"
    bad.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load_checkpoint(bad, _model())
    bad.write_bytes(b"not a zip file at all")
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load_checkpoint(bad, _model())


def test_failed_checkpoint_write_leaves_previous_checkpoint_intact(small_data, tmp_path,
                                                                   monkeypatch):
    train, _, _, _ = small_data
    path = tmp_path / "ckpt.npz"
    sub = train.subset(np.arange(64))
    fit(_model(), sub, epochs=1, stream=None, checkpoint=path)
    before = path.read_bytes()

    def exploding_savez(f, **arrays):
        f.write(b"partial garbage")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", exploding_savez)
    with pytest.raises(OSError, match="disk full"):
        fit(_model(), sub, epochs=1, stream=None, checkpoint=path)
    assert path.read_bytes() == before
    assert [p for p in os.listdir(tmp_path) if "tmp" in p] == []
    load_checkpoint(path, _model())  # still loads


def test_checkpoint_of_another_architecture_names_the_differences(small_data, tmp_path):
    train, _, _, _ = small_data
    path = tmp_path / "ckpt.npz"
    fit(_model(), train.subset(np.arange(32)), epochs=1, stream=None, checkpoint=path)
    other = MultiTaskNet(SMALL["seq_len"], SMALL["features"], sharing="shared",
                         backend="numba")
    with pytest.raises(CheckpointError, match=r"of another model configuration \(sharing: "
                       r"checkpoint 'separate', model 'shared'\)"):
        load_checkpoint(path, other)
    bare = MultiTaskNet(SMALL["seq_len"], SMALL["features"], sharing="shared",
                        backend="numba")
    bare.config = None                  # no configuration to compare: the shapes still differ
    with pytest.raises(CheckpointError, match="does not fit the model"):
        load_checkpoint(path, bare)


def test_checkpoint_with_the_old_flatten_order_is_refused(small_data, tmp_path):
    """Checkpoints of the channel-major Flatten (before the channels-last towers) have the
    same shapes but other meanings for the heads' weights: loading one is an error."""
    from minimtl.train import save_checkpoint

    model = _model()
    old_cfg = {k: v for k, v in model.config.items() if k != "flatten"}
    path = tmp_path / "old.npz"
    save_checkpoint(path, model, meta={"epoch": 1, "config": old_cfg})
    with pytest.raises(CheckpointError, match=r"flattened its features \(C, L\); this one "
                                              r"flattens \(L, C\)"):
        load_checkpoint(path, _model())
    save_checkpoint(path, model, meta={"epoch": 1, "config": model.config})
    load_checkpoint(path, _model())                      # the current order loads


def test_non_finite_loss_stops_training_naming_task_and_step(small_data):
    train, _, _, _ = small_data
    bad = train.subset(np.arange(64))
    bad.inputs["user"][5, 3, 2] = np.nan
    with pytest.raises(TrainingError, match=r"loss became nan at epoch 1, step \d"):
        fit(_model(), bad, epochs=1, batch_size=16, stream=None)


def test_progress_lines_follow_the_keras_format(small_data, capsys):
    import sys

    train, val, _, _ = small_data
    fit(_model(), train.subset(np.arange(64)), val, epochs=2, batch_size=32,
        stream=sys.stdout)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Epoch 1/2"
    assert out[1].startswith("2/2 [==============================] - ")
    for key in ("loss: ", "user_loss: ", "user_accuracy: ", "goods_accuracy: ",
                "val_ads_accuracy: ", "val_user_auc: "):
        assert key in out[1], key


def test_cli_train_writes_checkpoint_history_and_metrics(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["train", "--epochs", "2", "--samples", "300", "--seq-len", "16",
               "--features", "4", "--out", str(out), "--backend", "numba"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "Total params:" in text and "best achievable" in text
    history = json.loads((out / "history.json").read_text())
    assert len(history["epochs"]) == 2
    assert (out / "checkpoint.npz").exists()
    metrics = json.loads((out / "test_metrics.json").read_text())
    assert set(metrics["best_accuracy"]) == set(TASKS)


def test_cli_layouts_train_to_the_same_losses(tmp_path):
    """--layout changes the towers' memory layout only: the same run in both layouts gives
    the same losses up to float32 rounding (the products sum in other orders)."""
    losses = []
    for layout in ("channels-last", "channels-first"):
        out = tmp_path / layout
        assert main(["train", "--epochs", "2", "--samples", "200", "--seq-len", "16",
                     "--features", "4", "--out", str(out), "--backend", "numba", "--quiet",
                     "--layout", layout]) == 0
        history = json.loads((out / "history.json").read_text())
        losses.append([e["loss"] for e in history["epochs"]])
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-4)


def test_cli_resume_continues_from_the_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--samples", "200", "--seq-len", "16", "--features", "4", "--out",
            str(out), "--backend", "numba", "--quiet"]
    assert main(args + ["--epochs", "1"]) == 0
    assert main(args + ["--epochs", "2", "--resume"]) == 0
    history = json.loads((out / "history.json").read_text())
    assert len(history["epochs"]) == 2


@pytest.mark.parametrize("argv,needle", [
    (["train", "--epochs", "0"], "--epochs must be an integer >= 1"),
    (["train", "--backend", "cupy", "--epochs", "1"], "not available"),
    (["train", "--resume", "--out", "/nonexistent-minimtl-dir/x", "--epochs", "1"], ""),
    (["gradcheck", "no_such_op"], "unknown operator"),
])
def test_cli_bad_arguments_give_a_one_line_error(argv, needle, capsys):
    from minimtl.backend import available

    if "cupy" in argv and available("cupy"):
        pytest.skip("a GPU is present")
    rc = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("minimtl: error: ")
    assert needle in err[0]


def test_cli_summary_and_info(capsys):
    assert main(["summary"]) == 0
    assert "Total params: 254,046" in capsys.readouterr().out
    assert main(["info"]) == 0
    assert "backend numpy  available" in capsys.readouterr().out


def test_adam_optimizer_state_is_in_the_checkpoint(small_data, tmp_path):
    train, _, _, _ = small_data
    path = tmp_path / "c.npz"
    model = _model()
    opt = Adam(list(model.parameters()), lr=1e-3)
    fit(model, train.subset(np.arange(64)), optimizer=opt, epochs=1, stream=None,
        checkpoint=path)
    with np.load(path, allow_pickle=False) as z:
        assert any(k.startswith("optim/") for k in z.files)
        assert json.loads(str(z["meta"]))["epoch"] == 1


def _losses_after_steps(backend, steps=3, batch=16):
    full = D.make_synthetic(samples=batch * steps, seed=3, **{k: SMALL[k] for k in
                                                               ("seq_len", "features")})
    model = MultiTaskNet(SMALL["seq_len"], SMALL["features"], seed=0, backend=backend)
    opt = Adam(list(model.parameters()), lr=1e-3)
    out = []
    from minimtl.train import to_tensors as _to_tensors

    for inputs, targets in D.iterate_batches(full, batch, shuffle=False):
        x, y = _to_tensors(model, inputs, targets)
        losses = model.losses(model(x), y)
        opt.zero_grad()
        model.total_loss(losses).backward()
        opt.step()
        out.append([float(losses[t].item()) for t in TASKS])
    return np.array(out)


def test_numba_backend_trains_to_the_reference_backends_losses():
    ref = _losses_after_steps("numpy")
    fast = _losses_after_steps("numba")
    # float32 end to end; three Adam steps keep the two runs within float32 rounding
    np.testing.assert_allclose(fast, ref, rtol=2e-5, atol=1e-6)


@pytest.mark.gpu
def test_cupy_backend_trains_to_the_cpu_backends_losses():
    ref = _losses_after_steps("numpy")
    gpu = _losses_after_steps("cupy")
    np.testing.assert_allclose(gpu, ref, rtol=2e-5, atol=1e-6)


@pytest.mark.gpu
def test_cli_trains_on_the_gpu_and_info_names_the_device(tmp_path, capsys):
    rc = main(["train", "--epochs", "1", "--samples", "200", "--seq-len", "16", "--features",
               "4", "--out", str(tmp_path / "run"), "--backend", "cupy"])
    assert rc == 0
    assert "backend cupy" in capsys.readouterr().out
    assert main(["info"]) == 0
    assert "GPU 0:" in capsys.readouterr().out


def test_cli_trains_on_a_user_npz_file(tmp_path, capsys):
    path = tmp_path / "mine.npz"
    D.save_npz(D.make_synthetic(samples=200, seq_len=16, features=4, seed=5), path)
    rc = main(["train", "--data", str(path), "--epochs", "1", "--out", str(tmp_path / "r"),
               "--backend", "numba", "--quiet"])
    assert rc == 0
    assert "Test set (20 samples)" in capsys.readouterr().out
    bad = tmp_path / "bad.npz"
    np.savez(bad, user=np.zeros((3, 16, 4)))
    assert main(["train", "--data", str(bad), "--epochs", "1", "--out",
                 str(tmp_path / "r2")]) == 2
    assert "goods" in capsys.readouterr().err
