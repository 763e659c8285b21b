"""Training the multi-task network: fit/evaluate loops, metrics, progress, checkpoints.

- ``fit`` shuffles each epoch with ``np.random.default_rng([seed, epoch])``, so an epoch's
  batches depend only on the seed and the epoch number: resuming from a checkpoint written
  after epoch e replays epochs e+1… exactly as an uninterrupted run would.
- Progress follows Keras's log (``Epoch 3/10`` then ``60/60 [====] - 1s 12ms/step - loss:
  … - user_loss: … - val_…``): a live bar on a terminal, one plain line per epoch otherwise.
- A NaN or infinite loss stops training with ``TrainingError`` naming the task, epoch and
  step; the last checkpoint (written after the last finished epoch) stays intact.
- Checkpoints are one ``.npz`` (no pickle): ``model/<param>``, ``optim/<key>``, ``prep/<key>``
  arrays and a JSON ``meta`` string; written to a temporary file that is then renamed over
  the old one, so a crash never leaves a half-written checkpoint.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TextIO

import numpy as np

from .backend import xp_of
from .checkpoint import CheckpointError, atomic_write, load_checkpoint, save_checkpoint
from .data import TASKS, Dataset, iterate_batches
from .function import no_grad
from .tensor import Tensor

__all__ = ["fit", "evaluate", "History", "TrainingError", "CheckpointError",
           "save_checkpoint", "load_checkpoint", "roc_auc", "task_metrics"]


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss, parameters or optimizer state)."""


# --- metrics --------------------------------------------------------------------------
def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve = P(score of a random positive > a random negative), ties
    counting one half (the Mann–Whitney statistic, from average ranks). NaN when the labels
    are all one class."""
    positive = positive.astype(bool)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(scores.size)
    sorted_scores = scores[order]
    # average ranks over ties
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores)) + 1]
    ends = np.r_[starts[1:], scores.size]
    for s, e in zip(starts, ends):
        ranks[order[s:e]] = 0.5 * (s + e - 1) + 1
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def task_metrics(kind: str, output: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Metrics of one head from its outputs (probabilities, or values for 'linear').

    softmax: accuracy (argmax), macro one-vs-rest AUC; sigmoid: binary accuracy at 0.5 over
    all labels, macro AUC over labels; linear: RMSE and MAE. A softmax head's target is
    class labels (N,) or probability rows (N, K), whose argmax is then the class (Keras's
    categorical accuracy).
    """
    if kind == "softmax":
        target = _classes(target)
        acc = float(np.mean(np.argmax(output, axis=1) == target))
        aucs = [roc_auc(output[:, k], target == k) for k in range(output.shape[1])]
        return {"accuracy": acc, "auc": float(np.nanmean(aucs)) if not np.all(
            np.isnan(aucs)) else float("nan")}
    if kind == "sigmoid":
        acc = float(np.mean((output > 0.5) == (target > 0.5)))
        aucs = [roc_auc(output[:, k], target[:, k] > 0.5) for k in range(output.shape[1])]
        return {"accuracy": acc, "auc": float(np.nanmean(aucs)) if not np.all(
            np.isnan(aucs)) else float("nan")}
    err = output - target
    return {"rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err)))}


# --- batches as tensors ----------------------------------------------------------------
def _model_place(model) -> tuple[str, np.dtype]:
    p = next(iter(model.parameters()))
    return p.backend, p.dtype


def _to_tensors(model, inputs: dict, targets: dict):
    backend, dtype = _model_place(model)
    xp = xp_of(backend)
    x = {t: Tensor(xp.asarray(inputs[t], dtype=dtype), backend=backend) for t in TASKS}
    y = {}
    for t in TASKS:
        kind = model.heads_kind[t]
        target = targets[t]
        if kind == "softmax" and np.ndim(target) == 2:   # probability rows: soft targets
            _check_distributions(t, target)
            y[t] = xp.asarray(target, dtype=dtype)
        elif kind == "softmax":
            y[t] = xp.asarray(target, dtype=np.int64)
        else:
            y[t] = xp.asarray(target, dtype=dtype)
    return x, y


def _check_distributions(task: str, target: np.ndarray) -> None:
    """A softmax head's (N, K) targets must be probability rows (one-hot or soft)."""
    sums = np.sum(target, axis=1)
    if np.any(target < 0) or not np.allclose(sums, 1.0, atol=1e-4):
        raise ValueError(f"the {task} head is softmax, but its targets {target.shape} are not "
                         f"probability rows (row sums {sums.min():g}..{sums.max():g}; "
                         f"multi-hot labels need a sigmoid head)")


def evaluate(model, ds: Dataset, batch_size: int = 256) -> dict[str, float]:
    """Mean losses and metrics of every task over ``ds`` (no graph, eval mode)."""
    if len(ds) == 0:
        raise ValueError("evaluate: the data set is empty (no losses or metrics to compute)")
    was_training = model.training
    model.eval()
    outs: dict[str, list] = {t: [] for t in TASKS}
    loss_sums = {t: 0.0 for t in TASKS}
    try:
        with no_grad():
            for inputs, targets in iterate_batches(ds, batch_size, shuffle=False):
                x, y = _to_tensors(model, inputs, targets)
                logits = model(x)
                losses = model.losses(logits, y)
                n = len(targets[TASKS[0]])
                for t in TASKS:
                    loss_sums[t] += float(losses[t].item()) * n
                pred = model.predict(x)
                for t in TASKS:
                    outs[t].append(pred[t])
    finally:
        model.train(was_training)
    result: dict[str, float] = {}
    total = 0.0
    for t in TASKS:
        loss = loss_sums[t] / max(len(ds), 1)
        result[f"{t}_loss"] = loss
        total += model.loss_weights[t] * loss
        for name, value in task_metrics(model.heads_kind[t], np.concatenate(outs[t]),
                                        ds.targets[t]).items():
            result[f"{t}_{name}"] = value
    result["loss"] = total
    return result


# --- progress ----------------------------------------------------------------------------
def _fmt_logs(logs: dict[str, float]) -> str:
    return " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())


class _Progress:
    """Keras-style progress: a live bar on a terminal, plain epoch lines otherwise."""

    def __init__(self, stream: TextIO | None, steps: int, epochs: int):
        self.stream = stream
        self.steps = steps
        self.epochs = epochs
        self.live = stream is not None and hasattr(stream, "isatty") and stream.isatty()
        self._last = 0.0

    def _bar(self, step: int) -> str:
        width = 30
        done = int(width * step / max(self.steps, 1))
        arrow = ">" if step < self.steps else "="
        body = "=" * max(done - 1, 0) + (arrow if done else "") + "." * (width - done)
        return f"{step}/{self.steps} [{body}]"

    def epoch_start(self, epoch: int) -> None:
        if self.stream is not None:
            print(f"Epoch {epoch}/{self.epochs}", file=self.stream, flush=True)

    def step(self, step: int, elapsed: float, logs: dict[str, float]) -> None:
        if not self.live or (time.perf_counter() - self._last < 0.1 and step < self.steps):
            return
        self._last = time.perf_counter()
        eta = elapsed / step * (self.steps - step)
        print(f"\r{self._bar(step)} - ETA: {eta:.0f}s - {_fmt_logs(logs)}", end="",
              file=self.stream, flush=True)

    def epoch_end(self, elapsed: float, logs: dict[str, float]) -> None:
        if self.stream is None:
            return
        per_step = elapsed / max(self.steps, 1) * 1e3
        line = f"{self._bar(self.steps)} - {elapsed:.0f}s {per_step:.0f}ms/step - "
        print(("\r" if self.live else "") + line + _fmt_logs(logs), file=self.stream,
              flush=True)


# --- fit -----------------------------------------------------------------------------------
@dataclass
class History:
    """Per-epoch logs (train means, and val_* when validating), as Keras's History."""

    epochs: list[dict[str, float]] = field(default_factory=list)

    def series(self, key: str) -> list[float]:
        return [e[key] for e in self.epochs if key in e]

    def to_json(self) -> str:
        return json.dumps({"epochs": self.epochs}, indent=1)

    def save(self, path: str | os.PathLike) -> None:
        text = self.to_json()
        atomic_write(path, lambda f: f.write(text), binary=False)


def _classes(target: np.ndarray) -> np.ndarray:
    """Class labels of a softmax head's target: labels as given, rows by their argmax."""
    target = np.asarray(target)
    return np.argmax(target, axis=1) if target.ndim == 2 else target


def _batch_hits(kind: str, logits: np.ndarray, target: np.ndarray) -> float | None:
    """Correct predictions in a batch (per sample; mean over labels for sigmoid heads)."""
    if kind == "softmax":
        return float(np.sum(np.argmax(logits, axis=1) == _classes(target)))
    if kind == "sigmoid":
        return float(np.sum(np.mean((logits > 0) == (target > 0.5), axis=1)))
    return None


def _check_finite(losses: dict[str, float], epoch: int, step: int) -> None:
    for t, v in losses.items():
        if not math.isfinite(v):
            raise TrainingError(f"the {t} loss became {v} at epoch {epoch}, step {step}: "
                                f"training stopped (try a lower learning rate or check the "
                                f"inputs for NaN/inf)")


class _Interrupts:
    """Ctrl-C during ``fit``: the first one lets the current step finish (its optimizer
    update is never left half done), then ``fit`` saves and stops; a second one stops at
    once. Only in the main thread (Python delivers signals there) and only while fitting."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> _Interrupts:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _check_state(model, optimizer, logs: dict[str, float], epoch: int) -> None:
    """Refuse to keep (or checkpoint) an epoch that diverged: NaN/inf in the validation
    loss, a parameter or the optimizer state."""
    bad = [k for k, v in logs.items() if k.startswith("val_") and k.endswith("loss")
           and not math.isfinite(v)]
    bad += [name for name, p in model.named_parameters()
            if not bool(xp_of(p.backend).isfinite(p.data).all())]
    bad += [f"optimizer {key}.{i}" for i, state in enumerate(getattr(optimizer, "state", []))
            for key, v in state.items() if hasattr(v, "shape")
            and not bool(xp_of(optimizer.params[i].backend).isfinite(v).all())]
    if bad:
        kept = f"the last checkpoint (of epoch {epoch - 1}) is kept" if epoch > 1 else \
            "no checkpoint was written"
        raise TrainingError(f"training diverged in epoch {epoch}: NaN/inf in "
                            f"{', '.join(bad[:5])}{' …' if len(bad) > 5 else ''}; {kept} "
                            f"(try a lower learning rate)")


def fit(model, train: Dataset, val: Dataset | None = None, *, optimizer=None,
        epochs: int = 10, batch_size: int = 32, seed: int = 0,
        checkpoint: str | os.PathLike | None = None, resume: bool = False,
        stream: TextIO | None = sys.stdout, extra: dict[str, np.ndarray] | None = None,
        callbacks: Iterable = ()) -> History:
    """Train ``model`` on ``train`` with per-task losses; validate on ``val`` each epoch.

    Parameters
    ----------
    optimizer       default Adam(lr=1e-3) as in the article
    checkpoint      path of the ``.npz`` written after every epoch (atomically), and on
                    Ctrl-C after the step in progress (``meta["partial"]``: the epoch, the
                    steps done and their running sums), so that ``resume`` continues
                    inside the epoch exactly as if never stopped
    resume          continue from ``checkpoint`` (model, optimizer, epoch, history)
    stream          where progress goes (None: silent)
    extra           arrays stored with each checkpoint (e.g. preprocessing statistics)
    callbacks       callables ``cb(epoch, logs)`` run after each epoch

    Raises ``TrainingError`` when a loss, a parameter or the optimizer state becomes
    NaN/inf (the last good checkpoint is kept) and ``KeyboardInterrupt`` after saving, on
    Ctrl-C.

    Returns
    -------
    History
    """
    from .optim import Adam

    if batch_size < 1 or epochs < 0:
        raise ValueError(f"fit: batch_size must be >= 1 and epochs >= 0, got {batch_size}, "
                         f"{epochs}")
    if len(train) == 0:
        raise ValueError("fit: the training set is empty")
    optimizer = Adam(list(model.parameters()), lr=1e-3) if optimizer is None else optimizer
    history = History()
    start, partial = 1, None
    if resume:
        if checkpoint is None or not os.path.exists(checkpoint):
            raise CheckpointError(f"fit: resume=True but there is no checkpoint at "
                                  f"{checkpoint}")
        state = load_checkpoint(checkpoint, model, optimizer)
        history = History(state["meta"].get("history", []))
        start = int(state["meta"]["epoch"]) + 1
        partial = state["meta"].get("partial")
    steps = math.ceil(len(train) / batch_size)
    progress = _Progress(stream, steps, epochs)

    def save(epoch_done: int, partial_state: dict | None = None) -> None:
        meta = {"epoch": epoch_done, "history": history.epochs,
                "config": getattr(model, "config", {})}
        if partial_state is not None:
            meta["partial"] = partial_state
        save_checkpoint(checkpoint, model, optimizer, extra=extra, meta=meta)

    with _Interrupts() as interrupts:
        for epoch in range(start, epochs + 1):
            model.train()
            progress.epoch_start(epoch)
            t0 = time.perf_counter()
            sums = {t: 0.0 for t in TASKS}
            correct = {t: 0.0 for t in TASKS}
            seen, skip, before = 0, 0, 0.0
            if partial is not None and partial["epoch"] == epoch:
                sums, correct = dict(partial["sums"]), dict(partial["correct"])
                seen, skip, before = partial["seen"], partial["step"], partial["elapsed"]
            partial = None
            rng = np.random.default_rng([seed, epoch])
            for step, (inputs, targets) in enumerate(
                    iterate_batches(train, batch_size, shuffle=True, rng=rng), start=1):
                if step <= skip:              # done before the interruption
                    continue
                x, y = _to_tensors(model, inputs, targets)
                logits = model(x)
                losses = model.losses(logits, y)
                total = model.total_loss(losses)
                optimizer.zero_grad()
                total.backward()
                values = {t: float(losses[t].item()) for t in TASKS}
                _check_finite(values, epoch, step)
                optimizer.step()
                n = len(targets[TASKS[0]])
                seen += n
                for t in TASKS:
                    sums[t] += values[t] * n
                    hits = _batch_hits(model.heads_kind[t], logits[t].numpy(), targets[t])
                    if hits is not None:
                        correct[t] += hits
                logs = {t: sums[t] / seen for t in TASKS}
                progress.step(step, time.perf_counter() - t0,
                              {"loss": sum(model.loss_weights[t] * logs[t] for t in TASKS)})
                if interrupts.requested:
                    where = f"epoch {epoch}, step {step}/{steps}"
                    if checkpoint is not None:
                        save(epoch - 1, {"epoch": epoch, "step": step, "seen": seen,
                                         "sums": sums, "correct": correct,
                                         "elapsed": before + time.perf_counter() - t0})
                        where += f"; saved to {checkpoint}, resume continues from there"
                    raise KeyboardInterrupt(f"interrupted at {where}")
            logs = {"loss": sum(model.loss_weights[t] * sums[t] / seen for t in TASKS)}
            for t in TASKS:
                logs[f"{t}_loss"] = sums[t] / seen
                if model.heads_kind[t] != "linear":
                    logs[f"{t}_accuracy"] = correct[t] / seen
            if val is not None and len(val):
                logs.update({f"val_{k}": v for k, v in evaluate(model, val).items()})
            elapsed = before + time.perf_counter() - t0
            logs["time_s"] = elapsed
            _check_state(model, optimizer, logs, epoch)
            history.epochs.append(logs)
            progress.epoch_end(elapsed, {k: v for k, v in logs.items() if k != "time_s"})
            if checkpoint is not None:
                save(epoch)
            for cb in callbacks:
                cb(epoch, logs)
    return history
