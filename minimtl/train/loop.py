"""The training loop: ``fit``, with its stops (non-finite losses, a diverged epoch, Ctrl-C)
and its checkpoints after every epoch. How it behaves is described in ``minimtl.train``."""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable
from typing import TextIO

import numpy as np

from ..backend import xp_of
from ..checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ..data import Dataset, iterate_batches
from .evaluate import evaluate, to_tensors
from .progress import History, Progress

__all__ = ["fit", "TrainingError"]


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss, parameters or optimizer state)."""


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
        callbacks: Iterable = (), balancer=None) -> History:
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
    balancer        a ``minimtl.train.Balancer``: loss weighting, PCGrad, conflict
                    diagnostics (None: the tasks' declared weights, the plain backward);
                    its epoch logs (weights, cosines, conflict rates) join the history

    Raises ``TrainingError`` when a loss, a parameter or the optimizer state becomes
    NaN/inf (the last good checkpoint is kept) and ``KeyboardInterrupt`` after saving, on
    Ctrl-C.

    Returns
    -------
    History
    """
    from ..optim import Adam

    if batch_size < 1 or epochs < 0:
        raise ValueError(f"fit: batch_size must be >= 1 and epochs >= 0, got {batch_size}, "
                         f"{epochs}")
    if len(train) == 0:
        raise ValueError("fit: the training set is empty")
    extra_params = balancer.parameters() if balancer is not None else []
    if optimizer is None:
        optimizer = Adam(list(model.parameters()) + extra_params, lr=1e-3)
    elif extra_params and not {id(p) for p in extra_params} <= {id(p) for p in
                                                                 optimizer.params}:
        raise ValueError(f"fit: the optimizer does not update the {balancer.weighting.name} "
                         f"weighting's parameters; build it over list(model.parameters()) + "
                         f"balancer.parameters()")
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
        if balancer is not None and "balancer" in state["meta"]:
            balancer.load_state(state["meta"]["balancer"])
    steps = math.ceil(len(train) / batch_size)
    progress = Progress(stream, steps, epochs)
    objectives = model.objectives
    names = model.task_names

    def save(epoch_done: int, partial_state: dict | None = None) -> None:
        meta = {"epoch": epoch_done, "history": history.epochs,
                "config": getattr(model, "config", {})}
        if partial_state is not None:
            meta["partial"] = partial_state
        if balancer is not None:
            meta["balancer"] = balancer.state()
        save_checkpoint(checkpoint, model, optimizer, extra=extra, meta=meta)

    with _Interrupts() as interrupts:
        for epoch in range(start, epochs + 1):
            model.train()
            progress.epoch_start(epoch)
            t0 = time.perf_counter()
            sums = {t: 0.0 for t in names}
            correct = {t: 0.0 for t in names}
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
                x, y = to_tensors(model, inputs, targets)
                logits = model(x)
                losses = model.losses(logits, y)
                optimizer.zero_grad()
                if balancer is None:
                    model.total_loss(losses).backward()
                else:
                    balancer.backward(losses)
                values = {t: float(losses[t].item()) for t in names}
                _check_finite(values, epoch, step)
                optimizer.step()
                n = len(targets[names[0]])
                seen += n
                for t in names:
                    sums[t] += values[t] * n
                    hits = objectives[t].batch_hits(logits[t].numpy(), targets[t])
                    if hits is not None:
                        correct[t] += hits
                logs = {t: sums[t] / seen for t in names}
                progress.step(step, time.perf_counter() - t0,
                              {"loss": sum(model.loss_weights[t] * logs[t] for t in names)})
                if interrupts.requested:
                    where = f"epoch {epoch}, step {step}/{steps}"
                    if checkpoint is not None:
                        save(epoch - 1, {"epoch": epoch, "step": step, "seen": seen,
                                         "sums": sums, "correct": correct,
                                         "elapsed": before + time.perf_counter() - t0})
                        where += f"; saved to {checkpoint}, resume continues from there"
                    raise KeyboardInterrupt(f"interrupted at {where}")
            logs = {"loss": sum(model.loss_weights[t] * sums[t] / seen for t in names)}
            for t in names:
                logs[f"{t}_loss"] = sums[t] / seen
                if objectives[t].has_accuracy:
                    logs[f"{t}_accuracy"] = correct[t] / seen
            if balancer is not None:
                logs.update(balancer.epoch_end({t: sums[t] / seen for t in names}))
            if val is not None and len(val):
                logs.update({f"val_{k}": v for k, v in evaluate(model, val).items()})
                gates = model.gate_weights() if hasattr(model, "gate_weights") else {}
                if gates:    # mean gate weight per task per expert over the validation set
                    logs["gates"] = gates
            elapsed = before + time.perf_counter() - t0
            logs["time_s"] = elapsed
            _check_state(model, optimizer, logs, epoch)
            history.epochs.append(logs)
            progress.epoch_end(elapsed, {k: v for k, v in logs.items()
                                         if k not in ("time_s", "gates", "cosines")})
            if checkpoint is not None:
                save(epoch)
            for cb in callbacks:
                cb(epoch, logs)
    return history
