"""The metrics of ``minimtl.train`` against independent references.

- ``roc_auc`` against an O(n²) count over all (positive, negative) pairs, ties counting one
  half, on scores drawn from a few values so that ties are frequent; hand-worked cases.
- ``task_metrics`` per head kind on hand-made cases where the wrong column, the wrong
  positives, a threshold off by its boundary or MSE reported as RMSE change the answer.
- ``_batch_hits`` (an objective's ``batch_hits``), the per-batch hit count behind ``fit``'s
  training accuracy, on logits.
- ``evaluate``: independent of the batch size on a set whose size is no multiple of it,
  and equal to losses and metrics computed in NumPy over the whole set in one pass.
- ``fit``: with a learning rate of 0 (a fixed model), one epoch's logged losses and
  accuracies equal those of the model over the whole training set.

The model runs in float64 on the numpy backend (no Numba compilation), so batch-size
independence holds to float64 rounding (1e-12), not to a float32 tolerance.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from minimtl import data as D
from minimtl.data import TASKS
from minimtl.models import MultiTaskNet
from minimtl.objectives import objective
from minimtl.optim import SGD
from minimtl.tensor import Tensor
from minimtl.train import evaluate, fit, roc_auc, task_metrics

EXACT = dict(rel=1e-12, abs=1e-12)


# --- independent references --------------------------------------------------------------
def brute_force_auc(scores, positive) -> float:
    """P(score_pos > score_neg) + 0.5·P(score_pos = score_neg) over all pairs; NaN when
    one class is empty."""
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    pos, neg = scores[positive], scores[~positive]
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    diff = pos[:, None] - neg[None, :]
    return float(np.mean(diff > 0) + 0.5 * np.mean(diff == 0))


def macro_auc(scores: np.ndarray, positives: np.ndarray) -> float:
    """Mean of the pair-count AUC over the columns whose labels hold both classes."""
    aucs = [brute_force_auc(scores[:, k], positives[:, k]) for k in range(scores.shape[1])]
    aucs = [a for a in aucs if not math.isnan(a)]
    return sum(aucs) / len(aucs) if aucs else float("nan")


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def cross_entropy(z: np.ndarray, y: np.ndarray) -> float:
    m = z.max(axis=1)
    lse = m + np.log(np.exp(z - m[:, None]).sum(axis=1))
    return float(np.mean(lse - z[np.arange(len(y)), y]))


def bce_with_logits(z: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))))


# --- roc_auc ---------------------------------------------------------------------------
FEW_SCORES = st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0])
PAIRS = st.lists(st.tuples(FEW_SCORES | st.integers(-2, 2).map(float), st.booleans()),
                 min_size=1, max_size=40)


@given(PAIRS)
@example([(0.5, True), (0.5, False)])                          # one tied pair: 0.5
@example([(0.1, False), (0.5, True), (0.5, False), (0.5, True), (0.9, False)])
@example([(1.0, True)] * 3 + [(1.0, False)] * 2 + [(0.0, False)])
def test_roc_auc_equals_the_pair_count_with_ties(pairs):
    scores = np.array([s for s, _ in pairs])
    labels = np.array([p for _, p in pairs])
    got = roc_auc(scores, labels)
    want = brute_force_auc(scores, labels)
    if labels.all() or not labels.any():
        assert math.isnan(got)
    else:
        assert got == pytest.approx(want, **EXACT)


@given(st.lists(st.tuples(st.integers(0, 3), st.booleans()), min_size=2, max_size=30)
       .filter(lambda ps: len({p for _, p in ps}) == 2))
def test_roc_auc_of_integer_scores_equals_the_pair_count(pairs):
    scores = np.array([s for s, _ in pairs], dtype=np.int64)
    labels = np.array([p for _, p in pairs])
    assert roc_auc(scores, labels) == pytest.approx(brute_force_auc(scores, labels), **EXACT)


def test_roc_auc_of_a_perfect_ranking_is_1_and_of_the_reversed_one_0():
    scores = np.array([0.1, 0.2, 0.3, 0.7, 0.8])
    labels = np.array([False, False, True, True, True])
    assert roc_auc(scores, labels) == 1.0
    assert roc_auc(-scores, labels) == 0.0
    assert roc_auc(scores, ~labels) == 0.0


def test_roc_auc_of_all_tied_scores_is_one_half():
    assert roc_auc(np.full(6, 0.3), np.array([1, 0, 0, 1, 1, 0])) == 0.5


def test_roc_auc_on_small_cases_worked_by_hand():
    # positives {0.35, 0.8} vs negatives {0.1, 0.4}: 0.35 > 0.1, 0.35 < 0.4, 0.8 > both,
    # so 3 of the 4 pairs are ordered: 0.75
    assert roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75
    # positives {0.5, 0.9} vs negatives {0.5, 0.2}: the tie 0.5 = 0.5 counts 1/2, the three
    # other pairs are ordered: 3.5 / 4 = 0.875
    assert roc_auc(np.array([0.5, 0.5, 0.2, 0.9]), np.array([1, 0, 0, 1])) == 0.875
    # one positive 0.5 among negatives {0.5, 0.5, 0.1}: (1/2 + 1/2 + 1) / 3 = 2/3
    assert roc_auc(np.array([0.5, 0.5, 0.5, 0.1]), np.array([0, 1, 0, 0])) == \
        pytest.approx(2 / 3, **EXACT)


@pytest.mark.parametrize("dtype", [bool, np.int64, np.int32, np.float64, np.float32])
def test_roc_auc_takes_bool_int_or_float_labels(dtype):
    scores = np.array([0.5, 0.5, 0.2, 0.9])
    labels = np.array([1, 0, 0, 1]).astype(dtype)
    assert roc_auc(scores, labels) == 0.875


@pytest.mark.parametrize("labels", [[0, 0, 0], [1, 1, 1], [True, True, True]])
def test_roc_auc_is_nan_when_the_labels_are_one_class(labels):
    assert math.isnan(roc_auc(np.array([0.1, 0.5, 0.9]), np.array(labels)))


# --- task_metrics: softmax ----------------------------------------------------------------
# Four samples, three classes; class 2 never occurs, so its one-vs-rest AUC is NaN and is
# left out of the macro mean.
SOFTMAX_OUT = np.array([[0.50, 0.45, 0.05],    # target 0, argmax 0: hit
                        [0.20, 0.45, 0.35],    # target 1, argmax 1: hit
                        [0.30, 0.20, 0.50],    # target 0, argmax 2: miss
                        [0.10, 0.60, 0.30]])   # target 1, argmax 1: hit
SOFTMAX_TARGET = np.array([0, 1, 0, 1])


def test_softmax_accuracy_counts_argmax_hits():
    assert task_metrics("softmax", SOFTMAX_OUT, SOFTMAX_TARGET)["accuracy"] == 0.75


def test_softmax_auc_is_the_macro_one_vs_rest_mean_over_present_classes():
    # class 0, column 0: positives {0.5, 0.3} vs negatives {0.2, 0.1}: 4/4 = 1
    # class 1, column 1: positives {0.45, 0.6} vs negatives {0.45, 0.2}: one tie, 3.5/4
    # class 2: no positive, NaN, skipped.  Mean (1 + 0.875) / 2 = 0.9375.
    # (Column k+1 would give (0.125 + 0.5) / 2, positives t != k (0 + 0.125) / 2, and
    # counting class 2 as 0.5 would give 0.79...)
    auc = task_metrics("softmax", SOFTMAX_OUT, SOFTMAX_TARGET)["auc"]
    assert auc == pytest.approx(0.9375, **EXACT)
    onehot = SOFTMAX_TARGET[:, None] == np.arange(3)
    assert auc == pytest.approx(macro_auc(SOFTMAX_OUT, onehot), **EXACT)


def test_softmax_auc_is_nan_when_every_class_is_degenerate():
    m = task_metrics("softmax", SOFTMAX_OUT, np.zeros(4, dtype=np.int64))
    assert math.isnan(m["auc"])
    assert m["accuracy"] == 0.25        # only row 0 has argmax 0


@given(st.data())
def test_softmax_metrics_equal_the_references_on_random_outputs(data):
    n = data.draw(st.integers(2, 12))
    k = data.draw(st.integers(2, 4))
    out = np.array(data.draw(st.lists(st.lists(FEW_SCORES, min_size=k, max_size=k),
                                      min_size=n, max_size=n)))
    target = np.array(data.draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    m = task_metrics("softmax", out, target)
    hits = sum(int(np.argmax(out[i]) == target[i]) for i in range(n))
    assert m["accuracy"] == hits / n
    want = macro_auc(out, target[:, None] == np.arange(k))
    if math.isnan(want):
        assert math.isnan(m["auc"])
    else:
        assert m["auc"] == pytest.approx(want, **EXACT)


# --- task_metrics: sigmoid ----------------------------------------------------------------
SIGMOID_OUT = np.array([[0.9, 0.6],
                        [0.5, 0.8],     # 0.5 is not above the threshold: a negative
                        [0.7, 0.4],
                        [0.2, 0.1]])
SIGMOID_TARGET = np.array([[1.0, 0.0],
                           [0.0, 1.0],
                           [1.0, 1.0],
                           [0.0, 0.0]])


def test_sigmoid_accuracy_is_over_all_labels_at_output_above_one_half():
    # column 0: predictions [1, 0, 1, 0] (0.5 -> 0) all right; column 1: [1, 1, 0, 0] vs
    # [0, 1, 1, 0], two right: 6 of 8 labels.  (>= 0.5 would give 5/8; whole rows right,
    # 2/4.)
    assert task_metrics("sigmoid", SIGMOID_OUT, SIGMOID_TARGET)["accuracy"] == 0.75


def test_sigmoid_auc_is_the_macro_mean_over_label_columns():
    # column 0: positives {0.9, 0.7} vs negatives {0.5, 0.2}: 1
    # column 1: positives {0.8, 0.4} vs negatives {0.6, 0.1}: 3 of 4 pairs: 0.75
    # mean 0.875 (column 0's labels for column 1 would give (1 + 0.5) / 2)
    auc = task_metrics("sigmoid", SIGMOID_OUT, SIGMOID_TARGET)["auc"]
    assert auc == pytest.approx(0.875, **EXACT)


def test_sigmoid_targets_above_one_half_are_the_positives():
    out = np.array([[0.4], [0.6], [0.6], [0.3]])
    target = np.array([[0.5], [0.7], [0.2], [0.9]])     # positives: rows 1 and 3
    m = task_metrics("sigmoid", out, target)
    assert m["accuracy"] == 0.5                         # rows 0 and 1 right
    # positives {0.6, 0.3} vs negatives {0.4, 0.6}: 1 + 1/2 + 0 + 0 of 4 pairs
    assert m["auc"] == pytest.approx(0.375, **EXACT)


def test_sigmoid_auc_skips_degenerate_columns_and_is_nan_when_all_are():
    out = np.column_stack([SIGMOID_OUT, [0.3, 0.2, 0.9, 0.4]])
    target = np.column_stack([SIGMOID_TARGET, np.ones(4)])   # column 2: all positive
    assert task_metrics("sigmoid", out, target)["auc"] == pytest.approx(0.875, **EXACT)
    m = task_metrics("sigmoid", SIGMOID_OUT, np.ones((4, 2)))
    assert math.isnan(m["auc"])
    assert m["accuracy"] == 0.5          # 0.9, 0.6, 0.8, 0.7 above 0.5: 4 of 8


@given(st.data())
def test_sigmoid_metrics_equal_the_references_on_random_outputs(data):
    n = data.draw(st.integers(1, 12))
    g = data.draw(st.integers(1, 4))
    out = np.array(data.draw(st.lists(st.lists(FEW_SCORES, min_size=g, max_size=g),
                                      min_size=n, max_size=n)))
    target = np.array(data.draw(st.lists(st.lists(st.sampled_from([0.0, 1.0]), min_size=g,
                                                  max_size=g), min_size=n, max_size=n)))
    m = task_metrics("sigmoid", out, target)
    right = sum(int((out[i, j] > 0.5) == (target[i, j] == 1.0))
                for i in range(n) for j in range(g))
    assert m["accuracy"] == pytest.approx(right / (n * g), **EXACT)
    want = macro_auc(out, target == 1.0)
    if math.isnan(want):
        assert math.isnan(m["auc"])
    else:
        assert m["auc"] == pytest.approx(want, **EXACT)


# --- task_metrics: linear ---------------------------------------------------------------
def test_linear_metrics_are_rmse_and_mae():
    # errors +1 and -3: MSE 5, RMSE √5, MAE 2 (the signed mean would be -1)
    m = task_metrics("linear", np.array([2.0, 0.0]), np.array([1.0, 3.0]))
    assert set(m) == {"rmse", "mae"}
    assert m["rmse"] == pytest.approx(math.sqrt(5.0), **EXACT)
    assert m["mae"] == pytest.approx(2.0, **EXACT)


def test_linear_metrics_average_over_every_output_of_every_sample():
    out = np.array([[1.0, 2.0], [0.0, -1.0]])
    target = np.array([[0.0, 2.0], [2.0, 1.0]])       # errors 1, 0, -2, -2
    m = task_metrics("linear", out, target)
    assert m["rmse"] == pytest.approx(math.sqrt(9 / 4), **EXACT)
    assert m["mae"] == pytest.approx(5 / 4, **EXACT)


# --- _batch_hits ---------------------------------------------------------------------------
def _batch_hits(kind: str, logits: np.ndarray, target: np.ndarray) -> float | None:
    """``fit``'s per-batch hit count for a head kind: its objective's ``batch_hits``."""
    return objective(kind).batch_hits(logits, target)


def test_batch_hits_of_a_softmax_head_counts_argmax_hits():
    logits = np.array([[2.0, 1.0, 0.0],
                       [0.0, 3.0, 1.0],
                       [1.0, 0.0, 5.0],
                       [4.0, 4.5, 0.0]])
    target = np.array([0, 1, 0, 1])          # argmax [0, 1, 2, 1]: three hits
    hits = _batch_hits("softmax", logits, target)
    assert np.ndim(hits) == 0                # a value on the arrays' module, read by fit
    assert float(hits) == 3.0


def test_batch_hits_of_a_sigmoid_head_thresholds_logits_at_zero():
    logits = np.array([[0.0, 0.3, -1.0],      # 0.0 is a negative, 0.3 a positive
                       [3.0, -0.5, 0.0]])
    target = np.array([[0.0, 1.0, 0.0],       # all three right: 1
                       [1.0, 1.0, 0.0]])      # two of three right: 2/3
    # per-sample means summed: 1 + 2/3 (>= 0 would give 2/3 + 1/3; > 0.5, 2/3 + 2/3)
    assert _batch_hits("sigmoid", logits, target) == pytest.approx(5 / 3, **EXACT)


def test_batch_hits_of_a_linear_head_is_none():
    assert _batch_hits("linear", np.zeros((3, 2)), np.zeros((3, 2))) is None


# --- evaluate and fit on a small float64 model ------------------------------------------------
N, SEQ_LEN, FEATURES, CLASSES = 30, 10, 3, 4
WEIGHTS = {"user": 0.5, "goods": 2.0, "ads": 0.25}
HEADS = {"user": "softmax", "goods": "sigmoid", "ads": "linear"}


@pytest.fixture(scope="module")
def dataset():
    """30 samples (no multiple of 7 or 8); the ads target made a (N, 4) regression."""
    ds = D.make_synthetic(samples=N, seq_len=SEQ_LEN, features=FEATURES, classes=CLASSES,
                          seed=3)
    rng = np.random.default_rng(5)
    targets = dict(ds.targets, ads=rng.standard_normal((N, CLASSES)).astype(np.float32))
    return D.Dataset(ds.inputs, targets)


def _model():
    return MultiTaskNet(SEQ_LEN, FEATURES, CLASSES, heads=HEADS, loss_weights=WEIGHTS,
                        seed=0, dtype=np.float64, backend="numpy")


@pytest.fixture(scope="module")
def reference(dataset):
    """Losses and metrics computed here over the whole set in one pass, from the logits."""
    model = _model()
    model.eval()
    x = {t: Tensor(np.asarray(dataset.inputs[t], dtype=np.float64), backend="numpy")
         for t in TASKS}
    z = {t: np.asarray(v.numpy(), dtype=np.float64) for t, v in model(x).items()}
    y = dataset.targets
    goods_y = y["goods"].astype(np.float64)
    ads_err = z["ads"] - y["ads"].astype(np.float64)
    ref = {
        "user_loss": cross_entropy(z["user"], y["user"]),
        "user_accuracy": float(np.mean(np.argmax(z["user"], axis=1) == y["user"])),
        "user_auc": macro_auc(softmax(z["user"]), y["user"][:, None] == np.arange(CLASSES)),
        "goods_loss": bce_with_logits(z["goods"], goods_y),
        "goods_accuracy": float(np.mean((z["goods"] > 0) == (goods_y > 0.5))),
        "goods_auc": macro_auc(1 / (1 + np.exp(-z["goods"])), goods_y > 0.5),
        "ads_loss": float(np.mean(ads_err**2)),
        "ads_rmse": float(np.sqrt(np.mean(ads_err**2))),
        "ads_mae": float(np.mean(np.abs(ads_err))),
    }
    ref["loss"] = sum(WEIGHTS[t] * ref[f"{t}_loss"] for t in TASKS)
    return ref


def test_reference_case_is_not_degenerate(dataset, reference):
    # the checks below can only tell a weighted loss from an unweighted one, or a wrong
    # accuracy from a right one, when these differ
    assert len({round(reference[f"{t}_loss"], 6) for t in TASKS}) == 3
    assert 0 < reference["user_accuracy"] < 1 and 0 < reference["goods_accuracy"] < 1
    assert len(set(dataset.targets["user"].tolist())) > 1


@pytest.mark.parametrize("batch_size", [1, 7, 8, 64, N])
def test_evaluate_equals_the_whole_set_reference_at_any_batch_size(dataset, reference,
                                                                   batch_size):
    got = evaluate(_model(), dataset, batch_size=batch_size)
    assert set(got) == set(reference)
    for key, want in reference.items():
        assert got[key] == pytest.approx(want, **EXACT), key


def test_evaluate_loss_is_the_weighted_sum_of_the_task_losses(dataset):
    got = evaluate(_model(), dataset, batch_size=7)
    assert got["loss"] == pytest.approx(sum(WEIGHTS[t] * got[f"{t}_loss"] for t in TASKS),
                                        **EXACT)
    assert got["loss"] != pytest.approx(sum(got[f"{t}_loss"] for t in TASKS), rel=1e-3)


def test_evaluate_leaves_the_training_mode_as_it_was(dataset):
    model = _model()
    model.train()
    evaluate(model, dataset, batch_size=8)
    assert model.training
    model.eval()
    evaluate(model, dataset, batch_size=8)
    assert not model.training


def test_fit_logs_the_training_accuracy_and_losses_of_the_epoch(dataset, reference):
    # lr = 0 keeps the model fixed, so each batch is scored by the same model and the
    # epoch's means are those of the whole set (this model has no dropout: train mode
    # computes the same function as eval mode)
    model = _model()
    history = fit(model, dataset, optimizer=SGD(list(model.parameters()), lr=0.0), epochs=1,
                  batch_size=7, stream=None)
    logs = history.epochs[0]
    for key in ("loss", "user_loss", "goods_loss", "ads_loss", "user_accuracy",
                "goods_accuracy"):
        assert logs[key] == pytest.approx(reference[key], **EXACT), key
    assert "ads_accuracy" not in logs


def test_softmax_metrics_of_probability_rows_are_those_of_their_argmax_labels():

    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(4), size=40)
    labels = rng.integers(0, 4, 40)
    rows = np.eye(4)[labels] * 0.7 + 0.3 / 4          # smoothed one-hot: argmax = label
    assert task_metrics("softmax", probs, rows) == task_metrics("softmax", probs, labels)
    assert _batch_hits("softmax", probs, rows) == _batch_hits("softmax", probs, labels) == \
        float(np.sum(np.argmax(probs, axis=1) == labels))
