"""A batch as the model's tensors, and ``evaluate``: losses and metrics over a data set."""

from __future__ import annotations

import numpy as np

from ..backend import xp_of
from ..data import TASKS, Dataset, iterate_batches
from ..function import no_grad
from ..tensor import Tensor

__all__ = ["to_tensors", "evaluate"]


def _model_place(model) -> tuple[str, np.dtype]:
    p = next(iter(model.parameters()))
    return p.backend, p.dtype


def to_tensors(model, inputs: dict, targets: dict) -> tuple[dict[str, Tensor], dict]:
    """A batch's inputs as tensors on the model's backend and dtype, and its targets as
    arrays in the form each head's objective wants (checked there)."""
    backend, dtype = _model_place(model)
    xp = xp_of(backend)
    x = {t: Tensor(xp.asarray(inputs[t], dtype=dtype), backend=backend) for t in TASKS}
    y = {t: model.objectives[t].target_array(t, targets[t], xp, dtype)
         for t in TASKS}
    return x, y


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
                x, y = to_tensors(model, inputs, targets)
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
        metrics = model.objectives[t].metrics(np.concatenate(outs[t]),
                                                         ds.targets[t])
        for name, value in metrics.items():
            result[f"{t}_{name}"] = value
    result["loss"] = total
    return result
