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
from .evaluate import check_names, evaluate, to_tensors
from .progress import History, Progress

__all__ = ["fit", "TrainingError"]


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss, parameters or optimizer state)."""


def _check_finite(losses: dict[str, float], first: int, epoch: int, step: int) -> None:
    """``losses`` summed over steps ``first``..``step``: a NaN/inf in any of them stays."""
    where = f"step {step}" if first == step else f"one of steps {first}-{step}"
    for t, v in losses.items():
        if not math.isfinite(v):
            raise TrainingError(f"the {t} loss became {v} at epoch {epoch}, {where}: "
                                f"training stopped (try a lower learning rate or check the "
                                f"inputs for NaN/inf)")


#: On the GPU the loop reads the running loss sums and hit counts off the device (a
#: synchronisation) at most every this many steps, and when the progress bar redraws, the
#: epoch ends or Ctrl-C asks to stop; the host backends read every step (it costs nothing).
READ_EVERY = 50


class _Running:
    """The epoch's per-task loss sums and hit counts so far. A step's values are added where
    the step computed them (device arrays on the GPU: no device-to-host copy inside a step)
    and ``read`` brings the sums to the host; ``since`` is the first step not yet read."""

    def __init__(self, names, sums: dict, hits: dict, step: int, xp) -> None:
        self.names, self.xp = names, xp
        self.sums, self.hits = dict(sums), dict(hits)
        self.unread: list[tuple[int, list, list]] = []    # (scale, loss values, hits)
        self.since = step + 1

    def add(self, batch: dict) -> None:
        """A step's values: ``batch["sums"]`` per-task loss sums, or the mean losses when
        ``batch["means"]`` (multiplied by ``batch["n"]`` on the host, in float64)."""
        self.unread.append((batch["n"] if batch.get("means") else 1,
                            [batch["sums"][t] for t in self.names],
                            [batch["hits"][t] for t in self.names]))

    def read(self, step: int) -> tuple[dict[str, float], int]:
        """Fold the steps added since the last read (up to ``step``) into the host sums;
        returns their loss sums alone (for the NaN/inf check) and the first of them."""
        steps, self.unread = self.unread, []
        values = iter(_to_host([v for _, losses, hits in steps for v in losses + hits],
                               self.xp))
        new = {"sums": dict.fromkeys(self.names, 0.0), "hits": dict.fromkeys(self.names, 0.0)}
        for scale, _, _ in steps:
            for key, factor in (("sums", scale), ("hits", 1)):
                for t in self.names:
                    new[key][t] += next(values) * factor
        for key, total in (("sums", self.sums), ("hits", self.hits)):
            for t in self.names:
                total[t] += new[key][t]
        first, self.since = self.since, step + 1
        return new["sums"], first


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
        callbacks: Iterable = (), balancer=None, dist=None,
        cuda_graph: bool = False) -> History:
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
    dist            a ``minimtl.distributed.ProcessGroup``: data-parallel training, one
                    replica per rank, ``batch_size`` the global batch (see
                    ``minimtl.distributed``); only rank 0 prints and writes the checkpoint
                    (and reads it on ``resume``); ``callbacks`` run on every rank.
                    Not with a ``balancer`` on more than one rank (its per-task gradients,
                    PCGrad and GradNorm are not sums over the batch's rows)
    cuda_graph      replay each step from a CUDA graph captured once per batch shape
                    (``minimtl.train.graph``; the cupy backend, one process, no
                    balancer); where the step cannot be captured it says why once and
                    trains eagerly

    Raises ``ValueError`` in one line for bad arguments and for data that lacks an input
    the model reads or a target of one of its tasks, ``DistributedError`` when another
    rank fails or stops answering, ``TrainingError`` when a loss, a parameter or the
    optimizer state becomes NaN/inf (the last good checkpoint is kept) and
    ``KeyboardInterrupt`` after saving, on Ctrl-C.

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
    check_names(model, train, "fit: the training data")
    if val is not None:
        check_names(model, val, "fit: the validation data")
    extra_params = balancer.parameters() if balancer is not None else []
    if optimizer is None:
        optimizer = Adam(list(model.parameters()) + extra_params, lr=1e-3,
                         device_step=cuda_graph)
    elif extra_params and not {id(p) for p in extra_params} <= {id(p) for p in
                                                                 optimizer.params}:
        raise ValueError(f"fit: the optimizer does not update the {balancer.weighting.name} "
                         f"weighting's parameters; build it over list(model.parameters()) + "
                         f"balancer.parameters()")
    if dist is not None and dist.size > 1 and balancer is not None:
        raise ValueError("fit: a balancer cannot run data-parallel yet (its per-task "
                         "gradients, PCGrad and GradNorm are not sums over the rows of the "
                         "batch, so ranks would disagree); train it in one process")
    if cuda_graph and (balancer is not None or dist is not None or any(
            p.backend != "cupy" for p in model.parameters())):
        raise ValueError("fit: cuda_graph needs the cupy backend, one process and no "
                         "balancer")
    root = dist is None or dist.is_root
    stream = stream if root else None
    history = History()
    start, partial = 1, None
    if resume:
        if checkpoint is None or (root and not os.path.exists(checkpoint)):
            raise CheckpointError(f"fit: resume=True but there is no checkpoint at "
                                  f"{checkpoint}")
        state = load_checkpoint(checkpoint, model, optimizer) if root else None
        if dist is not None:                 # rank 0 read it: any number of ranks resumes
            state = _share_state(dist, state, model, optimizer)
        history = History(state["meta"].get("history", []))
        start = int(state["meta"]["epoch"]) + 1
        partial = state["meta"].get("partial")
        if balancer is not None and "balancer" in state["meta"]:
            balancer.load_state(state["meta"]["balancer"])
    elif dist is not None:
        dist.broadcast_parameters(model.parameters())
    model_backend = next((p.backend for p in model.parameters()), "numpy")
    steps = math.ceil(len(train) / batch_size)
    progress = Progress(stream, steps, epochs)
    graph = None
    if cuda_graph:
        from .graph import GraphStep

        def eager(inputs, targets):
            batch = _step(model, optimizer, None, inputs, targets)
            optimizer.step()
            return batch

        graph = GraphStep(model, optimizer, eager, say=None if stream is None else
                          lambda line: print(line, file=stream, flush=True))
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

    with _Interrupts() as interrupts, _telling_others(dist):
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
            running = _Running(names, sums, correct, skip, xp_of(model_backend))
            sums, correct = running.sums, running.hits
            read_every = READ_EVERY if model_backend == "cupy" else 1
            rng = np.random.default_rng([seed, epoch])
            for step, (inputs, targets) in enumerate(
                    iterate_batches(train, batch_size, shuffle=True, rng=rng), start=1):
                if step <= skip:              # done before the interruption
                    continue
                if graph is not None:          # the update is part of the graph
                    batch = graph(inputs, targets)
                elif dist is not None:
                    batch = _data_parallel_step(dist, model, optimizer, inputs, targets,
                                                interrupts)
                else:
                    batch = _step(model, optimizer, balancer, inputs, targets)
                running.add(batch)
                if step == steps or step - running.since + 1 >= read_every \
                        or progress.due(step) or interrupts.requested:
                    _check_finite(*running.read(step), epoch, step)
                if graph is None:
                    optimizer.step()
                seen += batch["n"]
                stop = batch["stop"] if dist is not None else interrupts.requested
                if stop:
                    running.read(step)
                if progress.due(step):
                    progress.step(step, time.perf_counter() - t0, {"loss": sum(
                        model.loss_weights[t] * sums[t] for t in names) / seen})
                # on several ranks the flags of all of them, summed with the gradients, so
                # that every rank stops after the same step (a flag raised later on one
                # rank stays set and travels with the next step's)
                if stop:
                    where = f"epoch {epoch}, step {step}/{steps}"
                    if checkpoint is not None and root:
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
                logs.update({f"val_{k}": v for k, v in evaluate(model, val, dist=dist).items()})
                gates = model.gate_weights() if hasattr(model, "gate_weights") else {}
                if gates:    # mean gate weight per task per expert over the validation set
                    logs["gates"] = gates
            elapsed = before + time.perf_counter() - t0
            logs["time_s"] = elapsed
            _check_state(model, optimizer, logs, epoch)
            if dist is not None:
                dist.check_replicas(model.parameters(), f"epoch {epoch}")
            history.epochs.append(logs)
            progress.epoch_end(elapsed, {k: v for k, v in logs.items()
                                         if k not in ("time_s", "gates", "cosines")})
            if checkpoint is not None and root:
                save(epoch)
            for cb in callbacks:
                cb(epoch, logs)
        if dist is not None:      # a failure on rank 0's last write reaches every rank
            dist.barrier("the end of training")
    return history


def _step(model, optimizer, balancer, inputs, targets, backward=None) -> dict:
    """One process's step up to the optimizer update: the batch's rows ``n``, per-task
    loss sums (mean · n) and hit counts. ``backward(loss)`` walks the backward when given
    (data-parallel: with the all-reduce overlapped), else ``loss.backward()``."""
    x, y = to_tensors(model, inputs, targets)
    logits = model(x)
    losses = model.losses(logits, y)
    optimizer.zero_grad()
    if backward is not None:
        backward(model.total_loss(losses))
    elif balancer is None:
        model.total_loss(losses).backward()
    else:
        balancer.backward(losses)
    n = len(next(iter(targets.values())))
    sums, hits = {}, {}
    for t in model.task_names:      # left where they are (device arrays on the GPU)
        sums[t] = losses[t].data
        h = model.objectives[t].batch_hits(logits[t].data, y[t])
        hits[t] = 0.0 if h is None else h
    return {"n": n, "sums": sums, "means": True, "hits": hits}


def _to_host(values: list, xp) -> list[float]:
    """Python floats of ``values`` (floats and 0-d arrays): the device arrays among them
    stacked into one array first, so that reading them is one copy, one synchronisation."""
    arrays = [i for i, v in enumerate(values) if hasattr(v, "shape")]
    out = list(values)
    if arrays:
        stacked = xp.stack([values[i] for i in arrays])    # one dtype: promoted
        host = stacked.get() if hasattr(stacked, "get") else stacked
        for i, v in zip(arrays, host.tolist()):
            out[i] = v
    return [float(v) for v in out]


def _data_parallel_step(dist, model, optimizer, inputs, targets, interrupts) -> dict:
    """This rank's shard of the global batch, then the gradients, loss sums, hit counts
    and the Ctrl-C flags (as they are after this rank's backward) summed over the ranks
    (``minimtl.distributed``)."""
    from ..distributed import shard_bounds

    names = model.task_names
    n = len(targets[names[0]])
    lo, hi = shard_bounds(n, dist.size, dist.rank)
    reduce = dist.gradient_reduce(optimizer.params, hi - lo, n)
    if hi > lo:                         # the all-reduce starts during the backward
        mine = _step(model, optimizer, None, {k: v[lo:hi] for k, v in inputs.items()},
                     {k: v[lo:hi] for k, v in targets.items()}, backward=reduce.backward)
    else:                               # fewer rows than ranks: this one adds nothing
        optimizer.zero_grad()
        mine = {"sums": dict.fromkeys(names, 0.0), "hits": dict.fromkeys(names, 0.0)}
    extra = np.array([float(mine["sums"][t]) * (hi - lo) for t in names]
                     + [float(mine["hits"][t]) for t in names]
                     + [float(interrupts.requested)])
    total = reduce.finish(extra)
    k = len(names)
    return {"n": n, "sums": dict(zip(names, total[:k].tolist())),
            "hits": dict(zip(names, total[k:2 * k].tolist())), "stop": bool(total[-1])}


def _share_state(dist, state, model, optimizer) -> dict:
    """Rank 0's loaded checkpoint (model, optimizer, metadata) on every rank."""
    shared = dist.broadcast_object(None if state is None else {
        "meta": state["meta"], "model": model.state_dict(),
        "optim": optimizer.state_dict()}, "the broadcast of the checkpoint")
    if not dist.is_root:
        model.load_state_dict(shared["model"])
        optimizer.load_state_dict(shared["optim"])
    return {"meta": shared["meta"]}


class _telling_others:
    """An exception on this rank sends a fault notice to the others before it goes on."""

    def __init__(self, dist) -> None:
        self.dist = dist

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> None:
        if exc is not None and self.dist is not None:
            self.dist.notify_failure(exc)
