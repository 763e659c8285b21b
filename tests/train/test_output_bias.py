"""Output biases from the training targets' priors (``MultiTaskModel.init_output_bias``,
``minimtl train --output-bias prior``): a head whose weights are still zero then predicts
each label's rate, the class frequencies, the mean; checked as a property of the four
objectives (Hypothesis) and on both model families; bad or missing targets are refused in
one line naming the task."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minimtl as mt
from minimtl.cli import main
from minimtl.models import MultiTaskNet
from minimtl.models.network import MultiTaskNetwork
from minimtl.objectives import PRIOR_EPS, Task, objective

TASKS = [Task("b", "binary"), Task("m", "multiclass", 4), Task("l", "multilabel", 3),
         Task("r", "regression", 2)]


def _targets(n, rng):
    return {"b": (rng.random(n) < 0.07).astype(np.float32),
            "m": rng.integers(0, 4, n),
            "l": (rng.random((n, 3)) < [0.2, 0.5, 0.9]).astype(np.float32),
            "r": rng.normal(3, 2, (n, 2)).astype(np.float32)}


def _marginals(t):
    return {"b": [t["b"].mean()], "m": np.bincount(t["m"], minlength=4) / len(t["m"]),
            "l": t["l"].mean(0), "r": t["r"].mean(0)}


@given(st.lists(st.floats(0, 1), min_size=1, max_size=40))
def test_a_binary_prior_is_the_log_odds_of_the_rate(values):
    y = np.array(values)
    p = 1 / (1 + np.exp(-objective("binary").prior_bias(y, 1)[0]))
    assert p == pytest.approx(np.clip(y.mean(), PRIOR_EPS, 1 - PRIOR_EPS), rel=1e-9,
                              abs=1e-12)


@given(st.lists(st.integers(0, 4), min_size=1, max_size=40))
def test_a_softmax_prior_gives_the_class_frequencies(labels):
    y = np.array(labels)
    b = objective("multiclass").prior_bias(y, 5)
    e = np.exp(b - b.max())
    freq = np.maximum(np.bincount(y, minlength=5) / len(y), PRIOR_EPS)
    np.testing.assert_allclose(e / e.sum(), freq / freq.sum(), rtol=1e-9)
    assert abs(b.mean()) < 1e-9                       # centred
    # probability rows give the same prior as the labels they are one-hot of
    np.testing.assert_allclose(objective("multiclass").prior_bias(np.eye(5)[y], 5), b,
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("arch", ["shared-bottom", "mmoe", "ple", "article"])
def test_an_untrained_head_predicts_the_targets_marginal(arch):
    rng = np.random.default_rng(1)
    targets = _targets(600, rng)
    if arch == "article":
        model = MultiTaskNet(12, 3, tasks=TASKS, inputs=("x",), backend="numpy",
                             dtype=np.float64)
        x = {"x": mt.Tensor(rng.normal(size=(5, 12, 3)), backend="numpy")}
    else:
        model = MultiTaskNetwork({"x": "continuous"}, {"x": (6,)}, TASKS, architecture=arch,
                                 backend="numpy", dtype=np.float64)
        x = {"x": mt.Tensor(rng.normal(size=(5, 6)), backend="numpy")}
    before = model.predict(x)
    set_ = model.init_output_bias(targets)
    assert set(set_) == {"b", "m", "l", "r"}
    for layer in model.output_layers().values():
        layer.weight.data[...] = 0                     # what the head adds from its input
    after, want = model.predict(x), _marginals(targets)
    for t in want:
        np.testing.assert_allclose(after[t], np.broadcast_to(want[t], after[t].shape),
                                   rtol=1e-6, err_msg=t)
    assert not np.allclose(before["b"], want["b"])     # zero biases predicted otherwise


def test_bad_or_missing_targets_are_refused_naming_the_task():
    model = MultiTaskNetwork({"x": "continuous"}, {"x": (6,)}, TASKS,
                             architecture="shared-bottom", backend="numpy")
    targets = _targets(50, np.random.default_rng(0))
    with pytest.raises(ValueError, match="no targets for task 'l'"):
        model.init_output_bias({k: v for k, v in targets.items() if k != "l"})
    with pytest.raises(ValueError, match="the r targets are empty"):
        model.init_output_bias(dict(targets, r=np.zeros((0, 2))))
    with pytest.raises(ValueError, match="the m task has 4 classes, but its labels range 7..7"):
        model.init_output_bias(dict(targets, m=np.full(50, 7)))
    # "b" comes before "m": refused targets leave every bias as it was
    assert all(np.all(layer.bias.data == 0) for layer in model.output_layers().values())


def test_the_cli_starts_from_the_priors_and_records_it(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", "--data", "mmoe-synthetic", "--model", "shared-bottom",
                 "--bottom-units", "8", "--epochs", "1", "--output-bias", "prior",
                 "--out", str(out)]) == 0
    assert "output biases from the training targets: y1 " in capsys.readouterr().out
    assert json.loads((out / "run.json").read_text())["settings"]["output_bias"] == "prior"
