"""Tasks as data: the ``Task`` spec, the four kinds' target checks, widths taken from the
data, and a model with its own inputs and tasks trained by ``fit``.

- ``Task`` refuses bad names, kinds, widths and weights in one line naming the task.
- Each kind's ``check_targets`` accepts what its loss can learn from and refuses, naming
  the task, targets of the wrong shape, dtype or range (a 15-class label file declared
  with 10 outputs, multi-hot rows for a binary task, NaN for a regression).
- ``Binary`` metrics on a hand-worked case; log-loss against its formula.
- A ``MultiTaskNet`` with two inputs and tasks of every kind, of widths read from the
  data, trains: the loss falls and ``evaluate`` reports each task's metrics.
- Data without one of the model's inputs or targets is refused by ``fit`` and ``evaluate``
  in one line naming it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from minimtl import data as D
from minimtl.models import MultiTaskNet
from minimtl.objectives import KINDS, Task, objective, tasks_from_json
from minimtl.optim import Adam
from minimtl.train import evaluate, fit


@pytest.mark.parametrize("args,match", [
    (("", "binary"), "name"),
    (("a b", "binary"), "name"),
    (("t", "softmax2"), "unknown task kind 'softmax2'"),
    (("t", "binary", 2), "binary task has one output"),
    (("t", "multiclass", 1), "needs >= 2 classes"),
    (("t", "regression", 0), "outputs must be an integer >= 1"),
    (("t", "regression", True), "outputs must be an integer >= 1"),
    (("t", "regression", 1, -1.0), "weight must be a finite number >= 0"),
    (("t", "regression", 1, float("nan")), "weight must be a finite number >= 0"),
])
def test_a_bad_task_is_refused_in_one_line(args, match):
    with pytest.raises(ValueError, match=match) as e:
        Task(*args)
    assert "\n" not in str(e.value)


def test_head_types_are_aliases_of_kinds():
    assert Task("u", "softmax", 3).kind == "multiclass"
    assert Task("g", "sigmoid", 3).kind == "multilabel"
    assert Task("r", "linear", 2).kind == "regression"
    assert {objective(k).kind for k in KINDS} == set(KINDS)


def test_widths_come_from_the_data():
    labels = np.array([0, 14, 3])
    assert Task.from_data("genre", "multiclass", labels).outputs == 15
    assert Task.from_data("goods", "multilabel", np.zeros((3, 5))).outputs == 5
    assert Task.from_data("click", "binary", np.array([0.0, 1.0])).outputs == 1
    assert Task.from_data("rating", "regression", np.zeros(4)).outputs == 1
    assert Task.from_data("xy", "regression", np.zeros((4, 2))).outputs == 2


@pytest.mark.parametrize("kind,target,outputs,match", [
    ("multiclass", np.array([0, 14, 3]), 10, r"has 10 classes, but its labels range 0\.\.14"),
    ("multiclass", np.array([0, -1]), 3, "labels range -1..0"),
    ("multiclass", np.array([0.5, 1.0]), 3, "expected integer class labels"),
    ("multiclass", np.ones((2, 3)), 3, "not probability rows"),
    ("multiclass", np.full((2, 4), 0.25), 3, r"probability rows \(N, 3\)"),
    ("multilabel", np.zeros(3), 3, r"multi-hot rows \(N, 3\)"),
    ("multilabel", np.full((2, 3), 2.0), 3, r"not all in \[0, 1\]"),
    ("binary", np.zeros((3, 2)), 1, "one label per sample"),
    ("binary", np.array([0.0, np.nan]), 1, r"not all in \[0, 1\]"),
    ("regression", np.zeros((3, 2)), 3, r"real values \(N, 3\)"),
    ("regression", np.array([1.0, np.inf]), 1, "NaN or inf"),
    ("regression", np.array(["a", "b"]), 1, "expected real values"),
])
def test_targets_that_do_not_fit_the_task_are_refused_naming_it(kind, target, outputs, match):
    with pytest.raises(ValueError, match=match) as e:
        objective(kind).check_targets("mytask", target, outputs)
    assert "mytask" in str(e.value) and "\n" not in str(e.value)


def test_targets_that_fit_pass():
    objective("multiclass").check_targets("t", np.array([0, 2]), 3)
    objective("multiclass").check_targets("t", np.eye(3)[[0, 2]], 3)
    objective("multilabel").check_targets("t", np.array([[0, 1.0], [1, 1]]), 2)
    objective("binary").check_targets("t", np.array([[0.0], [1.0]]), 1)
    objective("regression").check_targets("t", np.array([-3.0, 2.5]), 1)


def test_binary_metrics_on_a_hand_worked_case():
    p = np.array([[0.9], [0.4], [0.6], [0.2]])
    y = np.array([1.0, 1.0, 0.0, 0.0])
    m = objective("binary").metrics(p, y)
    assert m["accuracy"] == 0.5          # rows 0 and 3 right
    # positives {0.9, 0.4} vs negatives {0.6, 0.2}: pairs won 0.9>0.6, 0.9>0.2, 0.4>0.2
    assert m["auc"] == pytest.approx(3 / 4, abs=1e-15)
    want = -(math.log(0.9) + math.log(0.4) + math.log(0.4) + math.log(0.8)) / 4
    assert m["logloss"] == pytest.approx(want, rel=1e-13)


def test_a_confident_mistake_has_a_large_finite_logloss():
    m = objective("binary").metrics(np.array([[1.0], [0.0]]), np.array([0.0, 0.0]))
    assert math.isfinite(m["logloss"]) and m["logloss"] > 10


def test_tasks_from_json_names_the_bad_entry():
    good = tasks_from_json([{"name": "a", "kind": "binary"},
                            {"name": "b", "kind": "regression", "outputs": 2, "weight": 0.5}])
    assert [t.to_json() for t in good] == [
        {"name": "a", "kind": "binary", "outputs": 1, "weight": 1.0},
        {"name": "b", "kind": "regression", "outputs": 2, "weight": 0.5}]
    for bad, match in (([], "non-empty list"), ({"name": "a"}, "non-empty list"),
                       ([{"name": "a"}], r"tasks\[0\]: expected"),
                       ([{"name": "a", "kind": "x"}], r"tasks\[0\]: unknown task kind"),
                       ([{"name": "a", "kind": "binary", "units": 3}], r"tasks\[0\]"),
                       ([{"name": "a", "kind": "binary"}] * 2, "names repeat")):
        with pytest.raises(ValueError, match=match):
            tasks_from_json(bad)


def _own_data(n=240, seed=0):
    """Two sequence inputs; four tasks of every kind, each a function of the inputs."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, 12, 3)).astype(np.float32)
    b = rng.standard_normal((n, 12, 3)).astype(np.float32)
    s = a[:, :, 0].mean(axis=1) + b[:, :, 1].mean(axis=1)
    targets = {"click": (s > 0).astype(np.float32),
               "genre": np.digitize(s, np.quantile(s, np.linspace(0, 1, 16)[1:-1])),
               "tags": (np.stack([a[:, :, k].mean(1) for k in range(3)], 1) > 0)
               .astype(np.float32),
               "rating": (3 * s).astype(np.float32)}
    return D.Dataset({"clicks": a, "views": b}, targets)


def test_a_model_of_its_own_inputs_and_tasks_trains():
    ds = _own_data()
    kinds = {"click": "binary", "genre": "multiclass", "tags": "multilabel",
             "rating": "regression"}
    tasks = [Task.from_data(t, k, ds.targets[t]) for t, k in kinds.items()]
    assert [t.outputs for t in tasks] == [1, 15, 3, 1]
    model = MultiTaskNet(12, 3, tasks=tasks, inputs=("clicks", "views"), backend="numpy",
                         dtype=np.float64, seed=1)
    assert sum(r[2] for r in model.summary_rows()) == model.num_parameters()
    assert "output_genre (columns 1:16, softmax)" in model.summary()
    before = evaluate(model, ds)
    history = fit(model, ds, optimizer=Adam(list(model.parameters()), lr=3e-3), epochs=3,
                  batch_size=32, stream=None)
    after = evaluate(model, ds)
    assert after["loss"] < before["loss"]
    assert history.epochs[-1]["loss"] < history.epochs[0]["loss"]
    assert {"click_logloss", "click_auc", "genre_accuracy", "tags_auc", "rating_rmse",
            "rating_mae"} <= set(after)
    assert "rating_accuracy" not in history.epochs[-1]
    assert after["click_auc"] > 0.6


def test_tasks_and_article_heads_together_are_refused():
    with pytest.raises(ValueError, match="either tasks"):
        MultiTaskNet(12, 3, tasks=[Task("a", "binary")], heads={"goods": "linear"},
                     backend="numpy")


@pytest.mark.parametrize("drop, match", [
    (("inputs", "views"), r"training data has no input 'views' \(the model reads clicks, "
                          r"views; the data has clicks\)"),
    (("targets", "tags"), r"training data has no target 'tags' \(the model's tasks are "
                          r"click, genre, tags, rating; the data has click, genre, rating\)"),
])
def test_data_without_a_models_input_or_target_is_refused_naming_it(drop, match):
    ds = _own_data()
    tasks = [Task.from_data(t, k, ds.targets[t]) for t, k in
             {"click": "binary", "genre": "multiclass", "tags": "multilabel",
              "rating": "regression"}.items()]
    model = MultiTaskNet(12, 3, tasks=tasks, inputs=("clicks", "views"), backend="numpy")
    field, name = drop
    parts = {"inputs": dict(ds.inputs), "targets": dict(ds.targets)}
    del parts[field][name]
    short = D.Dataset(parts["inputs"], parts["targets"])
    with pytest.raises(ValueError, match="fit: the " + match):
        fit(model, short, stream=None)
    with pytest.raises(ValueError, match="fit: the validation" + match[len("training"):]):
        fit(model, ds, short, stream=None)
    with pytest.raises(ValueError, match="evaluate: the data" + match[len("training data"):]):
        evaluate(model, short)
