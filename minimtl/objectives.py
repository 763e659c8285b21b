"""Tasks and what each kind of task means, in one place: loss, prediction, targets, metrics.

A task is data (``Task``): a name, a kind, its number of outputs and its loss weight. A
head outputs logits (N, outputs); the task's kind decides everything after that:

==========  ==========================  ===================  ============================
kind        loss (mean over the batch)  prediction           metrics
==========  ==========================  ===================  ============================
multiclass  cross-entropy; targets       softmax rows         accuracy (argmax), macro
            labels (N,) int in [0, K)                         one-vs-rest AUC
            or probability rows (N, K)
multilabel  binary cross-entropy with    sigmoid per output   accuracy at 0.5 over all
            logits; targets (N, K)                            labels, macro AUC
            in [0, 1]
binary      the same, one output;        sigmoid (N, 1)       accuracy at 0.5, AUC,
            targets (N,) or (N, 1)                            log-loss
            in [0, 1]
regression  mean squared error;          the logits           RMSE, MAE
            targets (N, K) or (N,)
==========  ==========================  ===================  ============================

The article's head types are the same kinds under Keras's activation names: ``softmax``
= multiclass, ``sigmoid`` = multilabel, ``linear`` = regression (``objective`` takes
either). The losses are the fused, stable ``cross_entropy`` / ``soft_cross_entropy`` and
``binary_cross_entropy_with_logits`` (Keras's softmax + categorical cross-entropy and
sigmoid + binary cross-entropy, without its probability clipping). ``fit``, ``evaluate``,
the models' ``losses`` and ``predict`` and the CLI all ask the objective, so a kind is
defined nowhere else.

A batch's targets are made by ``minimtl.targets.pack_targets`` (checked here, by each
kind's ``check_targets``, then uploaded in one buffer for the fused losses).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from kernels.head_losses import KINDS as _FUSED

from . import functional as F
from . import ops
from .metrics import macro_auc
from .tensor import Tensor

__all__ = ["Task", "Objective", "Multiclass", "Multilabel", "Binary", "Regression", "KINDS",
           "HEAD_TYPES", "OBJECTIVES", "objective", "classes", "tasks_from_json"]


class Objective:
    """A kind of task. Subclasses set ``kind`` and ``activation`` and define the methods."""

    kind: str = ""
    #: the activation the summary names for the head (applied by ``predict``, not forward)
    activation: str = ""
    #: does training log an accuracy for this kind?
    has_accuracy: bool = True
    #: the ``head_losses`` kernel's kind code of this loss (kernels/head_losses SPEC)
    fused_kind: int = -1

    def loss(self, logits: Tensor, target, *, checked: bool = False) -> Tensor:
        """Mean loss of a batch: logits (N, K), target as ``target_array`` made it;
        ``checked``: ``check_targets`` passed on the host (``pack_targets``), so the loss
        need not read the targets back from a device to check them."""
        raise NotImplementedError

    def predict(self, logits: Tensor) -> Tensor:
        """What the head predicts: probabilities, or values."""
        raise NotImplementedError

    def outputs_from(self, target: np.ndarray) -> int:
        """The number of outputs that targets like these need (a task's width from data)."""
        return 1 if np.ndim(target) == 1 else int(np.shape(target)[1])

    def check_targets(self, task: str, target: np.ndarray, outputs: int | None = None) -> None:
        """Refuse targets this kind cannot learn from (or that do not fit ``outputs``),
        in one line naming the task."""

    def target_array(self, task: str, target, xp, dtype):
        """A batch's targets as the loss wants them, on the model's array module."""
        return xp.asarray(target, dtype=dtype)

    def batch_hits(self, logits, target):
        """Correct predictions in a batch, from its logits and its targets as
        ``target_array`` makes them: per sample (mean over the labels for a multilabel
        head), a 0-d array on the arrays' module (on the GPU it stays there: the loop reads
        it with the losses); None where the kind has no accuracy."""
        return None

    def metrics(self, output: np.ndarray, target: np.ndarray) -> dict[str, float]:
        """Metrics of the head over a data set, from ``predict``'s outputs (N, K)."""
        raise NotImplementedError

    def prior_bias(self, target: np.ndarray, outputs: int) -> np.ndarray:
        """The output bias (outputs,) float64 with which a head whose weights are zero
        predicts these targets' marginal: each label's rate, the class frequencies, the
        mean. For ``MultiTaskModel.init_output_bias``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<objective {self.kind}>"


#: rates are clipped to [PRIOR_EPS, 1 − PRIOR_EPS] before their log-odds or log (a label
#: or class the targets never show gets a large finite bias, not an infinite one)
PRIOR_EPS = 1e-6


def _log_odds(rate: np.ndarray) -> np.ndarray:
    rate = np.clip(np.asarray(rate, dtype=np.float64), PRIOR_EPS, 1 - PRIOR_EPS)
    return np.log(rate) - np.log1p(-rate)


def classes(target) -> np.ndarray:
    """Class labels of a multiclass target: labels as given, rows by their argmax."""
    target = np.asarray(target)
    return np.argmax(target, axis=1) if target.ndim == 2 else target


def _shape_error(task: str, kind: str, target, want: str) -> ValueError:
    return ValueError(f"the {task} task is {kind}, but its targets have shape "
                      f"{np.shape(target)} and dtype {np.asarray(target).dtype} ({want})")


def _check_unit_interval(task: str, kind: str, target: np.ndarray) -> None:
    if not np.issubdtype(target.dtype, np.number) or np.issubdtype(target.dtype,
                                                                   np.complexfloating):
        raise _shape_error(task, kind, target, "expected real numbers in [0, 1]")
    if target.size and not (np.all(np.isfinite(target)) and target.min() >= 0
                            and target.max() <= 1):
        raise ValueError(f"the {task} task is {kind}, but its targets are not all in "
                         f"[0, 1] (range {np.nanmin(target):g}..{np.nanmax(target):g})")


class Multiclass(Objective):
    """One class of K per sample. Targets: labels (N,) or probability rows (N, K) (one-hot
    or soft; their argmax is the class for accuracy and AUC, Keras's categorical accuracy).
    The article's ``softmax`` head."""

    kind, activation = "multiclass", "softmax"
    fused_kind = _FUSED["cross_entropy"]          # with labels (N,); soft rows: unfused

    def loss(self, logits: Tensor, target, *, checked: bool = False) -> Tensor:
        if checked and getattr(target, "ndim", 0) == 1:   # labels known to be in range
            return ops.CrossEntropy.apply(logits, target, checked=True).mean()
        return F.cross_entropy(logits, target)

    def predict(self, logits: Tensor) -> Tensor:
        return F.softmax(logits)

    def outputs_from(self, target: np.ndarray) -> int:
        if np.ndim(target) == 2:
            return int(np.shape(target)[1])
        return 1 + int(np.max(target, initial=0))

    def check_targets(self, task: str, target: np.ndarray, outputs: int | None = None) -> None:
        target = np.asarray(target)
        if target.ndim == 1:
            if not np.issubdtype(target.dtype, np.integer):
                raise _shape_error(task, "multiclass", target,
                                   "expected integer class labels (N,) or probability rows "
                                   "(N, K)")
            top = int(target.max(initial=0))
            if target.size and (target.min() < 0 or (outputs is not None and top >= outputs)):
                raise ValueError(f"the {task} task has {outputs} classes, but its labels range "
                                 f"{int(target.min())}..{top} (labels must be in "
                                 f"[0, {outputs}))")
            return
        if target.ndim != 2 or (outputs is not None and target.shape[1] != outputs):
            raise _shape_error(task, "multiclass", target,
                               f"expected labels (N,) or probability rows (N, {outputs or 'K'})")
        sums = np.sum(target, axis=1)
        if np.any(target < 0) or not np.allclose(sums, 1.0, atol=1e-4):
            raise ValueError(f"the {task} head is softmax, but its targets {target.shape} are "
                             f"not probability rows (row sums {sums.min():g}..{sums.max():g}; "
                             f"multi-hot labels need a sigmoid head)")

    def target_array(self, task: str, target, xp, dtype):
        if np.ndim(target) == 2:                      # probability rows: soft targets
            self.check_targets(task, target)
            return xp.asarray(target, dtype=dtype)
        return xp.asarray(target, dtype=np.int64)

    def batch_hits(self, logits, target):
        labels = target.argmax(axis=1) if target.ndim == 2 else target
        return (logits.argmax(axis=1) == labels).sum()

    def metrics(self, output: np.ndarray, target: np.ndarray) -> dict[str, float]:
        target = classes(target)
        acc = float(np.mean(np.argmax(output, axis=1) == target))
        return {"accuracy": acc, "auc": macro_auc(output, target[:, None] == np.arange(
            output.shape[1]))}

    def prior_bias(self, target: np.ndarray, outputs: int) -> np.ndarray:
        # log class frequencies (labels counted, or probability rows averaged), centred:
        # softmax ignores a shift
        target = np.asarray(target)
        freq = np.bincount(target.astype(np.int64), minlength=outputs) / len(target) \
            if target.ndim == 1 else target.astype(np.float64).mean(axis=0)
        b = np.log(np.maximum(freq, PRIOR_EPS))
        return b - b.mean()


class Multilabel(Objective):
    """K independent yes/no labels per sample (multi-hot targets (N, K) in [0, 1]); a label
    counts as positive above 0.5, both in the targets and in the predictions. The article's
    ``sigmoid`` head."""

    kind, activation = "multilabel", "sigmoid"
    fused_kind = _FUSED["bce_with_logits"]

    def loss(self, logits: Tensor, target, *, checked: bool = False) -> Tensor:
        return F.binary_cross_entropy_with_logits(logits, target)

    def predict(self, logits: Tensor) -> Tensor:
        return F.sigmoid(logits)

    def check_targets(self, task: str, target: np.ndarray, outputs: int | None = None) -> None:
        target = np.asarray(target)
        if target.ndim != 2 or (outputs is not None and target.shape[1] != outputs):
            raise _shape_error(task, "multilabel", target,
                               f"expected multi-hot rows (N, {outputs or 'K'})")
        _check_unit_interval(task, "multilabel", target)

    def batch_hits(self, logits, target):
        # logit > 0 is probability > 0.5
        return ((logits > 0) == (target > 0.5)).mean(axis=1).sum()

    def metrics(self, output: np.ndarray, target: np.ndarray) -> dict[str, float]:
        acc = float(np.mean((output > 0.5) == (target > 0.5)))
        return {"accuracy": acc, "auc": macro_auc(output, target > 0.5)}

    def prior_bias(self, target: np.ndarray, outputs: int) -> np.ndarray:
        return _log_odds(np.asarray(target, dtype=np.float64).mean(axis=0))   # per label


#: probabilities are clipped to [ε, 1 − ε] in the log-loss, so that one confident mistake
#: gives a large finite value (as scikit-learn's ``log_loss`` does)
LOGLOSS_EPS = 1e-15


class Binary(Objective):
    """One yes/no label per sample: one sigmoid output, targets (N,) or (N, 1) in [0, 1]."""

    kind, activation = "binary", "sigmoid"
    fused_kind = _FUSED["bce_with_logits"]

    def loss(self, logits: Tensor, target, *, checked: bool = False) -> Tensor:
        return F.binary_cross_entropy_with_logits(logits, target)

    def predict(self, logits: Tensor) -> Tensor:
        return F.sigmoid(logits)

    def outputs_from(self, target: np.ndarray) -> int:
        return 1

    def check_targets(self, task: str, target: np.ndarray, outputs: int | None = None) -> None:
        target = np.asarray(target)
        if outputs not in (None, 1) or not (target.ndim == 1 or (target.ndim == 2 and
                                                                  target.shape[1] == 1)):
            raise _shape_error(task, "binary", target, "expected one label per sample, (N,) "
                               "or (N, 1), and one output")
        _check_unit_interval(task, "binary", target)

    def target_array(self, task: str, target, xp, dtype):
        return xp.asarray(target, dtype=dtype).reshape(-1, 1)

    def batch_hits(self, logits, target):
        return ((logits.reshape(-1) > 0) == (target.reshape(-1) > 0.5)).sum()

    def metrics(self, output: np.ndarray, target: np.ndarray) -> dict[str, float]:
        p = output.reshape(-1).astype(np.float64)
        y = np.reshape(target, -1) > 0.5
        q = np.clip(p, LOGLOSS_EPS, 1 - LOGLOSS_EPS)
        return {"accuracy": float(np.mean((p > 0.5) == y)),
                "auc": macro_auc(p[:, None], y[:, None]),
                "logloss": float(-np.mean(np.where(y, np.log(q), np.log1p(-q))))}

    def prior_bias(self, target: np.ndarray, outputs: int) -> np.ndarray:
        return _log_odds([np.mean(np.asarray(target, dtype=np.float64))])


class Regression(Objective):
    """Real-valued outputs (N, K) (or (N,) for one output), learned with the mean squared
    error. The article's ``linear`` head."""

    kind, activation, has_accuracy = "regression", "linear", False
    fused_kind = _FUSED["mse"]

    def loss(self, logits: Tensor, target, *, checked: bool = False) -> Tensor:
        return F.mse_loss(logits, target)

    def predict(self, logits: Tensor) -> Tensor:
        return logits

    def check_targets(self, task: str, target: np.ndarray, outputs: int | None = None) -> None:
        target = np.asarray(target)
        width = 1 if target.ndim == 1 else (target.shape[1] if target.ndim == 2 else None)
        if width is None or (outputs is not None and width != outputs) or not np.issubdtype(
                target.dtype, np.number) or np.issubdtype(target.dtype, np.complexfloating):
            raise _shape_error(task, "regression", target,
                               f"expected real values (N, {outputs or 'K'})")
        if not np.all(np.isfinite(target)):
            raise ValueError(f"the {task} task is regression, but its targets hold NaN or inf")

    def target_array(self, task: str, target, xp, dtype):
        target = xp.asarray(target, dtype=dtype)
        return target.reshape(-1, 1) if target.ndim == 1 else target

    def metrics(self, output: np.ndarray, target: np.ndarray) -> dict[str, float]:
        err = output - np.reshape(target, output.shape)
        return {"rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err)))}

    def prior_bias(self, target: np.ndarray, outputs: int) -> np.ndarray:
        target = np.asarray(target, dtype=np.float64)
        return target.reshape(len(target), -1).mean(axis=0)


OBJECTIVES: dict[str, Objective] = {
    o.kind: o for o in (Multiclass(), Multilabel(), Binary(), Regression())}
KINDS = tuple(OBJECTIVES)
#: the article's head types: the kinds by Keras's activation names
HEAD_TYPES = ("softmax", "sigmoid", "linear")
_ALIASES = {"softmax": "multiclass", "sigmoid": "multilabel", "linear": "regression"}


def objective(kind: str) -> Objective:
    """The objective of a kind (``multiclass``, ``multilabel``, ``binary``, ``regression``)
    or of an article head type (``softmax``, ``sigmoid``, ``linear``)."""
    try:
        return OBJECTIVES[_ALIASES.get(kind, kind)]
    except (KeyError, TypeError):
        raise ValueError(f"unknown task kind {kind!r}; known: {', '.join(KINDS)} (or the head "
                         f"types {', '.join(HEAD_TYPES)})") from None


@dataclass(frozen=True)
class Task:
    """A task: ``name`` (letters, digits, ``_``, ``-``), ``kind`` (one of ``KINDS``; a head
    type is translated), ``outputs`` (the head's width: classes, labels or values; a binary
    task has one) and ``weight`` (its loss weight; the total loss is Σ_t weight_t·L_t)."""

    name: str
    kind: str
    outputs: int = 1
    weight: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or not all(
                ch.isalnum() or ch in "_-" for ch in self.name):
            raise ValueError(f"Task: name must be a non-empty string of letters, digits, _ "
                             f"or -, got {self.name!r}")
        object.__setattr__(self, "kind", objective(self.kind).kind)
        if isinstance(self.outputs, bool) or not isinstance(self.outputs, (int, np.integer)) \
                or self.outputs < 1:
            raise ValueError(f"Task {self.name}: outputs must be an integer >= 1, got "
                             f"{self.outputs!r}")
        object.__setattr__(self, "outputs", int(self.outputs))
        if self.kind == "binary" and self.outputs != 1:
            raise ValueError(f"Task {self.name}: a binary task has one output, got "
                             f"{self.outputs} (use multilabel for several)")
        if self.kind == "multiclass" and self.outputs < 2:
            raise ValueError(f"Task {self.name}: a multiclass task needs >= 2 classes, got "
                             f"{self.outputs}")
        if isinstance(self.weight, bool) or not isinstance(self.weight, (int, float)) or \
                not math.isfinite(self.weight) or self.weight < 0:
            raise ValueError(f"Task {self.name}: weight must be a finite number >= 0, got "
                             f"{self.weight!r}")
        object.__setattr__(self, "weight", float(self.weight))

    @property
    def objective(self) -> Objective:
        return OBJECTIVES[self.kind]

    @classmethod
    def from_data(cls, name: str, kind: str, target: np.ndarray, weight: float = 1.0,
                  outputs: int | None = None) -> Task:
        """A task whose width comes from its targets (or is checked against them)."""
        obj = objective(kind)
        width = obj.outputs_from(target) if outputs is None else outputs
        task = cls(name, kind, width, weight)
        obj.check_targets(name, target, task.outputs)
        return task

    def to_json(self) -> dict:
        return {"name": self.name, "kind": self.kind, "outputs": self.outputs,
                "weight": self.weight}


def tasks_from_json(items, where: str = "tasks") -> tuple[Task, ...]:
    """Tasks from a JSON list of ``{"name", "kind", "outputs"?, "weight"?}`` objects; one
    line naming ``where`` and the entry for anything malformed or repeated."""
    if not isinstance(items, list) or not items:
        raise ValueError(f"{where}: expected a non-empty list of task objects, got "
                         f"{type(items).__name__}")
    tasks = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not {"name", "kind"} <= set(item) or \
                set(item) - {"name", "kind", "outputs", "weight"}:
            raise ValueError(f"{where}[{i}]: expected {{name, kind, outputs?, weight?}}, got "
                             f"{item!r}")
        try:
            tasks.append(Task(item["name"], item["kind"], item.get("outputs", 1),
                              item.get("weight", 1.0)))
        except ValueError as e:
            raise ValueError(f"{where}[{i}]: {e}") from None
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise ValueError(f"{where}: task names repeat ({', '.join(names)})")
    return tuple(tasks)
