"""Recurrent layers over a whole sequence: tanh RNN, LSTM, GRU (batch-first).

Math: kernels/rnn/__init__.py, kernels/lstm/__init__.py, kernels/gru/__init__.py.
Each op returns every hidden state (N, T, H); the final state is a slice of it.
"""

from __future__ import annotations

from ..function import Function
from . import _checks

__all__ = ["RNN", "LSTM", "GRU"]


def _check(op, gates, x, h0, c0, w_ih, w_hh, b_ih, b_hh):
    _checks.ndim(op, "x", x, 3, "(N, T, D)")
    n, t, d = x.shape
    if t < 1:
        raise ValueError(f"{op}: the sequence is empty: x {x.shape}")
    _checks.ndim(op, "w_hh", w_hh, 2, f"({gates}·H, H)")
    hidden = w_hh.shape[-1]
    if w_hh.shape[0] != gates * hidden:
        raise ValueError(f"{op}: w_hh must be ({gates}·H, H) for hidden size H (its columns), "
                         f"got shape {w_hh.shape}")
    expect = {"w_ih": (gates * hidden, d), "w_hh": (gates * hidden, hidden),
              "b_ih": (gates * hidden,), "b_hh": (gates * hidden,), "h0": (n, hidden)}
    arrays = {"w_ih": w_ih, "w_hh": w_hh, "b_ih": b_ih, "b_hh": b_hh, "h0": h0}
    if c0 is not None:
        expect["c0"] = (n, hidden)
        arrays["c0"] = c0
    for name, a in arrays.items():
        if a.shape != expect[name]:
            raise ValueError(f"{op}: {name} has shape {a.shape}, expected {expect[name]} "
                             f"for x {x.shape} and hidden size {hidden}")
    return _checks.floats(op, x=x, h0=h0, c0=c0, w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh)


class RNN(Function):
    """hs = tanh-RNN(x, h0; w_ih (H, D), w_hh (H, H), b_ih, b_hh) -> (N, T, H)."""

    kernel = "rnn"

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh):
        x, h0, _, w_ih, w_hh, b_ih, b_hh = _check("rnn", 1, x, h0, None, w_ih, w_hh, b_ih, b_hh)
        hs = ctx.k.fwd(x, h0, w_ih, w_hh, b_ih, b_hh)
        ctx.save(x, h0, w_ih, w_hh, hs)
        return hs

    @staticmethod
    def backward(ctx, ghs):
        return ctx.k.bwd(ghs, *ctx.saved)


class LSTM(Function):
    """(hs, cs) = LSTM(x, h0, c0; w_ih (4H, D), w_hh (4H, H), b_ih, b_hh), gates i, f, g, o."""

    kernel = "lstm"

    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh):
        x, h0, c0, w_ih, w_hh, b_ih, b_hh = _check("lstm", 4, x, h0, c0, w_ih, w_hh, b_ih,
                                                   b_hh)
        hs, cs, gates = ctx.k.fwd(x, h0, c0, w_ih, w_hh, b_ih, b_hh)
        ctx.save(x, h0, c0, w_ih, w_hh, hs, cs, gates)
        return hs, cs

    @staticmethod
    def backward(ctx, ghs, gcs):
        hs = ctx.saved[5]                     # an output nothing used sends no gradient
        ghs = ctx.xp.zeros_like(hs) if ghs is None else ghs
        gcs = ctx.xp.zeros_like(hs) if gcs is None else gcs
        return ctx.k.bwd(ghs, gcs, *ctx.saved)


class GRU(Function):
    """hs = GRU(x, h0; w_ih (3H, D), w_hh (3H, H), b_ih, b_hh) -> (N, T, H), gates r, z, n."""

    kernel = "gru"

    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh):
        x, h0, _, w_ih, w_hh, b_ih, b_hh = _check("gru", 3, x, h0, None, w_ih, w_hh, b_ih, b_hh)
        hs, gates = ctx.k.fwd(x, h0, w_ih, w_hh, b_ih, b_hh)
        ctx.save(x, h0, w_ih, w_hh, hs, gates)
        return hs

    @staticmethod
    def backward(ctx, ghs):
        return ctx.k.bwd(ghs, *ctx.saved)
