"""head_losses, NumPy reference: the definition and the test oracle, composed from the
references of the per-task families (cross_entropy, bce_with_logits, mse). Math: see SPEC
(kernels/head_losses/__init__.py). Computes in float64, returns x's dtype."""

from __future__ import annotations

import numpy as np

from kernels.bce_with_logits import reference as bce
from kernels.cross_entropy import reference as ce
from kernels.mse import reference as mse

__all__ = ["fwd", "bwd"]


def _check(x, labels, targets, spec, weights) -> None:
    if x.ndim != 2 or spec.ndim != 2 or spec.shape[1] != 4 or spec.shape[0] < 1:
        raise ValueError(f"head_losses: x must be (N, W) and spec (T, 4) with T >= 1, got x "
                         f"{x.shape} and spec {spec.shape}")
    N, W = x.shape
    T = spec.shape[0]
    if weights.shape != (T,) or labels.ndim != 2 or labels.shape[1] != N or targets.ndim != 1:
        raise ValueError(f"head_losses: weights ({T},), labels (Tm, {N}) and flat targets "
                         f"expected, got {weights.shape}, {labels.shape}, {targets.shape}")
    start = 0
    for t, (kind, s, K, j) in enumerate(spec.tolist()):
        room = labels.shape[0] if kind == 0 else targets.size // max(N, 1)
        if kind not in (0, 1, 2) or s != start or K < 1 or not (
                0 <= j < room if kind == 0 else N == 0 or 0 <= j <= room - K):
            raise ValueError(f"head_losses: spec row {t} {(kind, s, K, j)} does not fit (the "
                             f"tasks must tile the {W} columns in order; labels "
                             f"{labels.shape}, targets {targets.shape})")
        start += K
    if start != W:
        raise ValueError(f"head_losses: the tasks cover {start} of the {W} columns of x")


def _blocks(x, labels, targets, spec):
    """Per task: (kind, column slice, its float64 logits, its labels or float64 targets, j)."""
    N = x.shape[0]
    for kind, s, K, j in spec.tolist():
        cols = slice(s, s + K)
        z = x[:, cols].astype(np.float64)
        if kind == 0:
            y = labels[j]
        else:
            y = targets[N * j:N * (j + K)].astype(np.float64).reshape(N, K)
        yield kind, cols, z, y, j


def fwd(x, labels, targets, spec, weights):
    """Every task's mean loss and the weighted total.

    Parameters
    ----------
    x : (N, W) float32 or float64 stacked logits;  labels : (Tm, N) int64;
    targets : (S,) float targets, x's dtype;  spec : (T, 4) int64 (kind, start, K, j);
    weights : (T,) float64

    Returns
    -------
    (losses, lse) : losses (T + 1,) = (total, L_0, ..., L_{T−1}) and lse (Tm, N), x's dtype
    """
    _check(x, labels, targets, spec, weights)
    losses = np.empty(spec.shape[0] + 1)
    lse = np.empty(labels.shape, dtype=x.dtype)
    for t, (kind, _, z, y, j) in enumerate(_blocks(x, labels, targets, spec)):
        if kind == 0:
            loss, lse64 = ce.fwd(z, y)
            lse[j] = lse64.astype(x.dtype)
        else:
            loss = (bce if kind == 1 else mse).fwd(z, y)
        with np.errstate(invalid="ignore", divide="ignore"):    # N = 0: 0/0 = NaN
            losses[1 + t] = np.sum(loss) / np.float64(loss.size)
    losses[0] = np.sum(weights.astype(np.float64) * losses[1:])
    return losses.astype(x.dtype), lse


def bwd(g, x, labels, targets, spec, weights, lse):
    """Gradient of the stacked logits.

    Parameters
    ----------
    g : (1,) (the total's gradient) or (T + 1,) (the total's, then each L_t's);
    x, labels, targets, spec, weights : as ``fwd``;  lse : (Tm, N), ``fwd``'s second output

    Returns
    -------
    (gx, None, None, None, None) : gx (N, W) of x's dtype; nothing else has a gradient
    """
    _check(x, labels, targets, spec, weights)
    T = spec.shape[0]
    if g.shape not in ((1,), (T + 1,)):
        raise ValueError(f"head_losses bwd: g must be (1,) or ({T + 1},), got {g.shape}")
    g64 = g.astype(np.float64)
    gx = np.empty(x.shape)
    for t, (kind, cols, z, y, j) in enumerate(_blocks(x, labels, targets, spec)):
        a = g64[0] * np.float64(weights[t]) + (g64[1 + t] if g.shape[0] > 1 else 0.0)
        if kind == 0:
            b = np.full(z.shape[0], a / max(z.shape[0], 1))
            gx[:, cols] = ce.bwd(b, z, y, lse[j].astype(np.float64))[0]
        else:
            b = np.full(z.shape, a / max(z.size, 1))
            gx[:, cols] = (bce if kind == 1 else mse).bwd(b, z, y)[0]
    return gx.astype(x.dtype), None, None, None, None
