"""What the experiments share: train one architecture on one source with one seed, and
summarise runs as mean ± sd.

A run trains with Adam for a fixed number of epochs (no early stopping, no tuning per
model: every model of an experiment gets the same optimiser settings), evaluates the test
set after every epoch (the curves) and keeps the last epoch's test metrics.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass

import numpy as np

__all__ = ["Settings", "train_one", "mean_sd", "fmt_mean_sd"]


@dataclass
class Settings:
    """One experiment's training settings (the same for every model and seed)."""

    epochs: int
    batch_size: int
    lr: float = 1e-3
    backend: str = "numba"


def train_one(source, architecture: str, sizes: dict, seed: int, settings: Settings,
              categorical: str = "onehot") -> dict:
    """Train ``architecture`` on ``source`` with ``seed``; the per-epoch test metrics and
    the final ones, the gate utilisation (test set) and the wall time."""
    from ..models.network import MultiTaskNetwork
    from ..optim import Adam
    from ..train import evaluate, fit

    model = MultiTaskNetwork(source.inputs, source.shapes, source.tasks,
                             architecture=architecture, vocab=source.vocab,
                             categorical=categorical, seed=seed, backend=settings.backend,
                             **sizes)
    curve: list[dict] = []
    t0 = time.perf_counter()
    fit(model, source.train, None, optimizer=Adam(list(model.parameters()), lr=settings.lr),
        epochs=settings.epochs, batch_size=settings.batch_size, seed=seed, stream=None,
        callbacks=[lambda epoch, logs: curve.append(evaluate(model, source.test, 4096))])
    wall = time.perf_counter() - t0
    return {"architecture": architecture, "seed": seed, "parameters": model.num_parameters(),
            "test": curve[-1], "curve": curve, "gates": model.gate_weights(),
            "train_s": wall}


def mean_sd(values) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value); NaNs left out."""
    v = np.asarray([x for x in values if not math.isnan(x)], dtype=np.float64)
    if v.size == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def fmt_mean_sd(values, digits: int = 4) -> str:
    m, s = mean_sd(values)
    return f"{m:.{digits}f} ± {s:.{digits}f}"


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
