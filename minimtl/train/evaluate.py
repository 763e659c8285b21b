"""A batch as the model's tensors, and ``evaluate``: losses and metrics over a data set."""

from __future__ import annotations

import numpy as np

from ..backend import xp_of
from ..data import Dataset, iterate_batches
from ..function import no_grad
from ..targets import pack_targets
from ..tensor import Tensor

__all__ = ["to_tensors", "evaluate", "check_names"]


def _model_place(model) -> tuple[str, np.dtype]:
    p = next(iter(model.parameters()))
    return p.backend, p.dtype


def check_names(model, ds: Dataset, where: str) -> None:
    """One line naming the first input the model reads, or task it trains, that ``ds``
    lacks (``where``: "fit: the training data", ...), with the names ``ds`` has."""
    for kind, want, have in (("input", model.input_names, ds.inputs),
                             ("target", model.task_names, ds.targets)):
        missing = [n for n in want if n not in have]
        if missing:
            role = "the model reads" if kind == "input" else "the model's tasks are"
            raise ValueError(f"{where} has no {kind} {missing[0]!r} ({role} "
                             f"{', '.join(want)}; the data has {', '.join(have) or 'none'})")


def to_tensors(model, inputs: dict, targets: dict) -> tuple[dict, dict]:
    """A batch's inputs as tensors on the model's backend (of its dtype; int64 for the codes
    of categorical inputs), and its targets as ``pack_targets`` makes them: checked on the
    host (one line naming the task), then in the form each task's objective wants, from
    one upload (the fused losses' inputs included)."""
    backend, dtype = _model_place(model)
    xp = xp_of(backend)
    categorical = set(model.categorical_inputs)
    x = {k: Tensor(xp.asarray(inputs[k], dtype=np.int64 if k in categorical else dtype),
                   backend=backend) for k in model.input_names}
    return x, pack_targets(model.tasks, targets, xp, dtype)


def evaluate(model, ds: Dataset, batch_size: int = 256, *, dist=None) -> dict[str, float]:
    """Mean losses and metrics of every task over ``ds`` (no graph, eval mode). A gated
    model's ``gate_weights()`` afterwards are the mean gate weights over ``ds``.

    With ``dist`` (a ``minimtl.distributed.ProcessGroup``) each rank evaluates its
    contiguous shard and the predictions, loss sums and gate statistics are gathered, so
    every rank returns the metrics of the whole set, as one process would."""
    if len(ds) == 0:
        raise ValueError("evaluate: the data set is empty (no losses or metrics to compute)")
    check_names(model, ds, "evaluate: the data")
    whole = ds
    if dist is not None and dist.size > 1:
        from ..distributed import shard_bounds

        ds = ds.subset(slice(*shard_bounds(len(ds), dist.size, dist.rank)))
    was_training = model.training
    model.eval()
    if hasattr(model, "reset_gate_stats"):
        model.reset_gate_stats()       # gate utilisation over this pass alone
    names = model.task_names
    outs: dict[str, list] = {t: [] for t in names}
    loss_sums = {t: 0.0 for t in names}
    try:
        with no_grad():
            for inputs, targets in iterate_batches(ds, batch_size, shuffle=False):
                x, y = to_tensors(model, inputs, targets)
                logits = model(x)
                values = model.loss_values(model.losses(logits, y))   # one read back
                n = len(targets[names[0]])
                for t in names:
                    loss_sums[t] += values[t] * n
                pred = model.predict(x)
                for t in names:
                    outs[t].append(pred[t])
    finally:
        model.train(was_training)
    if ds is not whole:
        outs, loss_sums = _gather(dist, model, outs, loss_sums)
        ds = whole
    result: dict[str, float] = {}
    total = 0.0
    for t in names:
        loss = loss_sums[t] / max(len(ds), 1)
        result[f"{t}_loss"] = loss
        total += model.loss_weights[t] * loss
        metrics = model.objectives[t].metrics(np.concatenate(outs[t]),
                                                         ds.targets[t])
        for name, value in metrics.items():
            result[f"{t}_{name}"] = value
    result["loss"] = total
    return result


def _gather(dist, model, outs: dict, loss_sums: dict) -> tuple[dict, dict]:
    """Every rank's predictions (in rank order: the set's order) and loss sums; the gate
    statistics summed in place."""
    stats = getattr(model, "gate_stats", None) or getattr(getattr(model, "body", None),
                                                          "gate_stats", None)
    gates = None if stats is None else ({g: s.copy() for g, s in stats.sums.items()},
                                        stats.rows)
    mine = {t: np.concatenate(v) if v else None for t, v in outs.items()}
    parts = dist.allgather_object((mine, loss_sums, gates), "the gather of the evaluation")
    outs = {t: [p[0][t] for p in parts if p[0][t] is not None] for t in outs}
    loss_sums = {t: sum(p[1][t] for p in parts) for t in loss_sums}
    if stats is not None:
        stats.sums = {g: sum(p[2][0][g] for p in parts) for g in stats.sums}
        stats.rows = sum(p[2][1] for p in parts)
    return outs, loss_sums
