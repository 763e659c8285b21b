"""What a head kind means, in one place: its loss, prediction, targets and metrics.

A head outputs logits (N, K). Its kind decides everything after that:

==========  =========================  ==================  ==========================
kind        loss (mean over the batch)  prediction          metrics
==========  =========================  ==================  ==========================
softmax     cross-entropy with labels   softmax rows        accuracy (argmax), macro
            (N,) int or probability                          one-vs-rest AUC
            rows (N, K)
sigmoid     binary cross-entropy with   sigmoid per output  accuracy at 0.5 over all
            logits, targets (N, K)                           labels, macro AUC
            in [0, 1]
linear      mean squared error          the logits          RMSE, MAE
==========  =========================  ==================  ==========================

The losses are the fused, stable ``cross_entropy`` / ``soft_cross_entropy`` and
``binary_cross_entropy_with_logits`` (Keras's softmax + categorical cross-entropy and
sigmoid + binary cross-entropy, without its probability clipping). ``objective(kind)``
returns the one instance of each kind; ``fit``, ``evaluate``, the model's ``losses`` and
``predict`` and the CLI all ask it, so a kind is defined nowhere else.
"""

from __future__ import annotations

import numpy as np

from . import functional as F
from .metrics import macro_auc
from .tensor import Tensor

__all__ = ["Objective", "Softmax", "Sigmoid", "Linear", "OBJECTIVES", "HEAD_TYPES", "objective",
           "classes"]


class Objective:
    """A head kind. Subclasses set ``kind`` and ``activation`` and define the methods."""

    kind: str = ""
    #: the activation the summary names for the head (applied by ``predict``, not forward)
    activation: str = ""
    #: does training log an accuracy for this kind?
    has_accuracy: bool = True

    def loss(self, logits: Tensor, target) -> Tensor:
        """Mean loss of a batch: logits (N, K), target as ``target_array`` made it."""
        raise NotImplementedError

    def predict(self, logits: Tensor) -> Tensor:
        """What the head predicts: probabilities, or values."""
        raise NotImplementedError

    def check_targets(self, task: str, target: np.ndarray) -> None:
        """Refuse targets this kind cannot learn from, naming the task (one line)."""

    def target_array(self, task: str, target, xp, dtype):
        """A batch's targets as the loss wants them, on the model's array module."""
        return xp.asarray(target, dtype=dtype)

    def batch_hits(self, logits: np.ndarray, target: np.ndarray) -> float | None:
        """Correct predictions in a batch, from its logits: per sample (mean over the
        labels for a sigmoid head); None where the kind has no accuracy."""
        return None

    def metrics(self, output: np.ndarray, target: np.ndarray) -> dict[str, float]:
        """Metrics of the head over a data set, from ``predict``'s outputs (N, K)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<objective {self.kind}>"


def classes(target) -> np.ndarray:
    """Class labels of a softmax head's target: labels as given, rows by their argmax."""
    target = np.asarray(target)
    return np.argmax(target, axis=1) if target.ndim == 2 else target


class Softmax(Objective):
    """One class of K per sample. Targets: labels (N,) or probability rows (N, K) (one-hot
    or soft; their argmax is the class for accuracy and AUC, Keras's categorical accuracy)."""

    kind, activation = "softmax", "softmax"

    def loss(self, logits: Tensor, target) -> Tensor:
        return F.cross_entropy(logits, target)

    def predict(self, logits: Tensor) -> Tensor:
        return F.softmax(logits)

    def check_targets(self, task: str, target: np.ndarray) -> None:
        if np.ndim(target) != 2:
            return
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

    def batch_hits(self, logits: np.ndarray, target: np.ndarray) -> float:
        return float(np.sum(np.argmax(logits, axis=1) == classes(target)))

    def metrics(self, output: np.ndarray, target: np.ndarray) -> dict[str, float]:
        target = classes(target)
        acc = float(np.mean(np.argmax(output, axis=1) == target))
        return {"accuracy": acc, "auc": macro_auc(output, target[:, None] == np.arange(
            output.shape[1]))}


class Sigmoid(Objective):
    """K independent yes/no labels per sample (multi-hot targets (N, K) in [0, 1]); a label
    counts as positive above 0.5, both in the targets and in the predictions."""

    kind, activation = "sigmoid", "sigmoid"

    def loss(self, logits: Tensor, target) -> Tensor:
        return F.binary_cross_entropy_with_logits(logits, target)

    def predict(self, logits: Tensor) -> Tensor:
        return F.sigmoid(logits)

    def batch_hits(self, logits: np.ndarray, target: np.ndarray) -> float:
        # logit > 0 is probability > 0.5
        return float(np.sum(np.mean((logits > 0) == (target > 0.5), axis=1)))

    def metrics(self, output: np.ndarray, target: np.ndarray) -> dict[str, float]:
        acc = float(np.mean((output > 0.5) == (target > 0.5)))
        return {"accuracy": acc, "auc": macro_auc(output, target > 0.5)}


class Linear(Objective):
    """Real-valued outputs (N, K), learned with the mean squared error."""

    kind, activation, has_accuracy = "linear", "linear", False

    def loss(self, logits: Tensor, target) -> Tensor:
        return F.mse_loss(logits, target)

    def predict(self, logits: Tensor) -> Tensor:
        return logits

    def metrics(self, output: np.ndarray, target: np.ndarray) -> dict[str, float]:
        err = output - target
        return {"rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err)))}


OBJECTIVES: dict[str, Objective] = {o.kind: o for o in (Softmax(), Sigmoid(), Linear())}
HEAD_TYPES = tuple(OBJECTIVES)


def objective(kind: str) -> Objective:
    """The objective of a head kind (``softmax``, ``sigmoid``, ``linear``)."""
    try:
        return OBJECTIVES[kind]
    except KeyError:
        raise ValueError(f"unknown head type {kind!r}; known: {', '.join(HEAD_TYPES)}") \
            from None
