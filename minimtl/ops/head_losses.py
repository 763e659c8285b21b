"""Every task's mean loss and their weighted total from the stacked heads' logits, as one
op with T + 1 outputs (the total, then L_0 .. L_{T−1}). Math: kernels/head_losses/."""

from __future__ import annotations

import numpy as np

from ..function import Function
from . import _checks

__all__ = ["HeadLosses"]


def _check_host(x, labels, targets, spec, on_host: bool) -> None:
    """What can be checked without reading the device: shapes always; on host arrays also
    the spec's tiling and the labels' range (on a GPU the kernel turns a bad label into a
    NaN loss instead, and ``minimtl.targets.pack_targets`` checks labels before the
    upload)."""
    N, W = x.shape
    if spec.ndim != 2 or spec.shape[1] != 4 or not 1 <= spec.shape[0] <= 1024 or \
            labels.ndim != 2 or labels.shape[1] != N or targets.ndim != 1:
        raise ValueError(f"head_losses: spec (T, 4) with 1 <= T <= 1024, labels (Tm, {N}) "
                         f"and flat targets expected for logits {x.shape}, got spec "
                         f"{spec.shape}, labels {labels.shape}, targets {targets.shape}")
    if not on_host:
        return
    start = 0
    for t, (kind, s, K, j) in enumerate(spec.tolist()):
        if kind not in (0, 1, 2) or s != start or K < 1 or (kind == 0 and not 0 <= j < len(
                labels)) or (kind != 0 and not 0 <= N * (j + K) <= targets.size):
            raise ValueError(f"head_losses: spec row {t} {(kind, s, K, j)} does not fit "
                             f"logits {x.shape}, labels {labels.shape}, targets "
                             f"{targets.shape}")
        if kind == 0 and N and (int(labels[j].min()) < 0 or int(labels[j].max()) >= K):
            raise ValueError(f"head_losses: labels of task {t} must lie in [0, {K}), got "
                             f"range [{int(labels[j].min())}, {int(labels[j].max())}]")
        start += K
    if start != W:
        raise ValueError(f"head_losses: the tasks cover {start} of the {W} columns of the "
                         f"logits {x.shape}")


class HeadLosses(Function):
    """(total, L_0, ..., L_{T−1}) of stacked logits x (N, W); ``spec`` says which columns
    are which task's and of what kind. All outputs are 0-d."""

    kernel = "head_losses"

    @staticmethod
    def forward(ctx, x, labels, targets, spec, weights):
        _checks.ndim("head_losses", "logits", x, 2, "(N, W)")
        x, targets = _checks.floats("head_losses", logits=x, targets=targets)
        xp = ctx.xp
        labels = xp.ascontiguousarray(labels, dtype=xp.int64)
        spec = xp.ascontiguousarray(spec, dtype=xp.int64)
        weights = xp.ascontiguousarray(weights, dtype=xp.float64)
        _check_host(x, labels, targets, spec, xp is np)
        losses, lse = ctx.k.fwd(x, labels, targets, spec, weights)
        ctx.save(x, labels, targets, spec, weights, lse)
        # views of the one output array: reading all T + 1 values is one transfer
        return tuple(losses[t:t + 1].reshape(()) for t in range(losses.shape[0]))

    @staticmethod
    def backward(ctx, gtotal, *glosses):
        xp = ctx.xp
        x = ctx.saved[0]
        if all(g is None for g in glosses):       # the plain backward of the total
            g = gtotal.reshape(1)
        else:                                     # a per-task backward (a balancer's)
            zero = xp.zeros((), dtype=x.dtype)
            g = xp.stack([zero if v is None else v for v in (gtotal, *glosses)])
        return ctx.k.bwd(xp.ascontiguousarray(g, dtype=x.dtype), *ctx.saved)
