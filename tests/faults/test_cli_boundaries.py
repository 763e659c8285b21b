"""Every ``minimtl train`` flag at its boundary: the smallest (or largest) value that is
allowed trains and writes a finished run; the first value past it is refused in one line
that names the flag, before anything is written."""

from __future__ import annotations

import json

import pytest

from minimtl.cli import main

TINY = ["--samples", "20", "--seq-len", "10", "--features", "2", "--epochs", "1",
        "--batch-size", "8", "--backend", "numpy", "--quiet", "--no-malloc-tuned"]


def _run(tmp_path, *flags):
    out = tmp_path / "run"
    return main(["train", *TINY, *flags, "--out", str(out)]), out


ALLOWED = [
    ("--epochs", "1"),
    ("--batch-size", "1"),
    ("--batch-size", "100000"),            # larger than the training split: one batch
    ("--samples", "10"),
    ("--seq-len", "10"),
    ("--features", "1"),
    ("--rnn-hidden", "1", "--extractor", "cnn+rnn"),
    ("--rnn", "gru", "--extractor", "cnn+rnn"),
    ("--rnn", "rnn", "--extractor", "cnn+rnn"),
    ("--lr", "1e-30"),
    ("--noise", "0"),
    ("--relatedness", "0"),
    ("--relatedness", "1"),
    ("--seed", "0"),
    ("--seed", str(2 ** 32)),
    ("--threads", "1"),
    ("--preprocess", ""),
    ("--preprocess", "denoise,standardize,minmax"),
    ("--sharing", "shared"),
    ("--fusion", "weighted"),
    ("--goods-head", "linear"),
    ("--layout", "channels-first"),
]


@pytest.mark.parametrize("flags", ALLOWED, ids=[" ".join(f) for f in ALLOWED])
def test_a_value_at_the_boundary_trains_a_finished_run(flags, tmp_path, capsys):
    rc, out = _run(tmp_path, *flags)
    assert rc == 0, capsys.readouterr().err
    assert json.loads((out / "run.json").read_text())["finished"] is True
    metrics = json.loads((out / "test_metrics.json").read_text())["test"]
    assert metrics                           # a finite loss per task
    assert all(v == v for k, v in metrics.items() if k.endswith("_loss"))


REFUSED = [
    (("--epochs", "0"), "--epochs must be an integer >= 1, got 0"),
    (("--batch-size", "0"), "--batch-size must be an integer >= 1, got 0"),
    (("--samples", "9"), "--samples must be an integer >= 10, got 9"),
    (("--seq-len", "9"), "--seq-len must be an integer >= 10, got 9"),
    (("--features", "0"), "--features must be an integer >= 1, got 0"),
    (("--rnn-hidden", "0", "--extractor", "cnn+rnn"), "--rnn-hidden must be an integer >= 1"),
    (("--lr", "0"), "--lr must be a positive finite number, got 0.0"),
    (("--lr", "nan"), "--lr must be a positive finite number, got nan"),
    (("--noise", "-0.01"), "--noise must be a finite number >= 0, got -0.01"),
    (("--noise", "inf"), "--noise must be a finite number >= 0, got inf"),
    (("--relatedness", "-0.01"), "--relatedness must lie in [0, 1], got -0.01"),
    (("--relatedness", "1.01"), "--relatedness must lie in [0, 1], got 1.01"),
    (("--seed", "-1"), "--seed must be an integer >= 0, got -1"),
    (("--threads", "0"), "--threads must be an integer >= 1, got 0"),
    (("--threads", "100000"), "set_num_threads: 100000 threads, but Numba has"),
    (("--preprocess", "standardize,whiten"), "unknown step 'whiten'"),
    (("--samples", str(10 ** 12)), "out of memory"),
    (("--data", "no-such-file.npz"), "no such file"),
    (("--cuda-graph", "--backend", "numba"), "--cuda-graph needs the cupy backend"),
    (("--cuda-graph", "--pcgrad"), "--cuda-graph trains with the plain backward"),
]


@pytest.mark.parametrize("flags,needle", REFUSED, ids=[" ".join(f) for f, _ in REFUSED])
def test_the_first_value_past_the_boundary_is_refused_in_one_line(flags, needle, tmp_path,
                                                                   capsys):
    rc, out = _run(tmp_path, *flags)
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    err = [line for line in err if not line.startswith("warning: ")]
    assert len(err) == 1 and err[0].startswith("minimtl: error: "), err
    assert needle in err[0], err[0]
    assert not out.exists()


PARSER = [
    ("--epochs", "1.5"), ("--batch-size", "x"), ("--lr", "fast"), ("--seed", "0x10"),
    ("--extractor", "rnn"), ("--rnn", "transformer"), ("--sharing", "half"),
    ("--fusion", "sum"), ("--goods-head", "relu"), ("--backend", "tpu"),
    ("--layout", "channels_last"),
]


@pytest.mark.parametrize("flag,value", PARSER, ids=[f"{f} {v}" for f, v in PARSER])
def test_a_value_of_the_wrong_kind_names_the_flag_in_trains_usage(flag, value, tmp_path,
                                                                  capsys):
    with pytest.raises(SystemExit) as e:
        _run(tmp_path, flag, value)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"minimtl train: error: argument {flag}: invalid" in err, err
    assert not (tmp_path / "run").exists()


def test_a_softmax_goods_head_is_refused_for_multi_hot_goods_and_trains_on_one_hot(
        tmp_path, capsys):
    import numpy as np

    from minimtl import data as D

    rc, out = _run(tmp_path, "--goods-head", "softmax")      # synthetic goods: multi-hot
    assert rc == 2 and not out.exists()
    err = capsys.readouterr().err
    assert "--goods-head softmax: the goods head is softmax, but its targets (20, 10) are " \
           "not probability rows" in err and "need a sigmoid head" in err
    ds = D.make_synthetic(samples=20, seq_len=10, features=2, seed=0)
    goods = ds.targets["goods"]
    one_hot = np.eye(goods.shape[1], dtype=goods.dtype)[np.argmax(goods, axis=1)]
    ds.targets["goods"] = one_hot
    path = tmp_path / "one_hot.npz"
    D.save_npz(ds, path)
    rc, out = _run(tmp_path, "--goods-head", "softmax", "--data", str(path))
    assert rc == 0, capsys.readouterr().err
    assert "goods_loss" in json.loads((out / "test_metrics.json").read_text())["test"]


def test_a_data_file_too_small_to_split_is_refused_before_training(tmp_path, capsys):
    from minimtl import data as D

    path = tmp_path / "five.npz"
    D.save_npz(D.make_synthetic(samples=20, seq_len=10, features=2, seed=0).subset(range(5)),
               path)
    rc, out = _run(tmp_path, "--data", str(path))
    assert rc == 2 and not out.exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"minimtl: error: 5 samples from the --data file ({path}) leave no "
                   f"validation or test samples (10 % each): at least 10 are needed, and many "
                   f"more for meaningful metrics"]


def test_the_curves_have_labelled_axes_a_best_line_and_legends_off_the_data(tmp_path,
                                                                            monkeypatch):
    plt = pytest.importorskip("matplotlib.pyplot")
    figures = []
    close = plt.close
    monkeypatch.setattr(plt, "close", lambda fig=None: (figures.append(fig), close(fig)))
    rc, out = _run(tmp_path, "--epochs", "2")
    assert rc == 0 and (out / "curves.png").stat().st_size > 0
    (fig,) = [f for f in figures if f is not None]
    loss, acc = fig.axes[:2]
    assert (loss.get_ylabel(), acc.get_ylabel()) == ("loss", "accuracy")
    assert loss.get_xlabel() == acc.get_xlabel() == "epoch"
    assert list(acc.get_xticks()) == [1, 2]                 # whole epochs only
    best = [ln for ln in acc.get_lines() if ln.get_label().endswith("best achievable")]
    assert {ln.get_label().split()[0] for ln in best} == {"user", "goods", "ads"}
    fig.canvas.draw()
    for ax in (loss, acc):                                  # each legend right of its axes
        box = ax.get_legend().get_window_extent()
        assert box.x0 >= ax.get_window_extent().x1
