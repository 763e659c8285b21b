"""The kernel calls a run times: ``kernel_cases(op, batch)`` gives each operator's calls at
the shapes it has in the article's network, with fixed random inputs and upstream gradients,
how to call its kernel module and how PyTorch computes the same."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["HIDDEN", "CLASSES", "Case", "randn", "kernel_cases"]

HIDDEN = 64                   # RNN hidden size of the benchmarks (the article's towers: 64)
CLASSES = 10                  # units of each head
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


@dataclass
class Case:
    """One kernel call to time: arrays (forward inputs, then the fixed upstream gradients,
    whose keys start with ``g``) and how to call ``fwd`` and ``bwd`` of a kernel module."""

    op: str
    shape: str
    batch: int
    arrays: dict[str, np.ndarray]
    fwd: Callable[[Any, dict], Any]                  # (kernel module, arrays) -> outputs
    bwd: Callable[[Any, dict, Any], Any]             # (module, arrays, outputs) -> grads
    torch: Callable[[Any, dict, str], tuple]         # (torch, tensors, device) -> (f, leaves)
    grad_keys: tuple[str, ...]                       # inputs that get a gradient
    out_bytes: int                                   # the forward's results (no saved extras)
    flops: int = 0                                   # forward matmul flops; 0: not counted
    torch_arrays: dict[str, np.ndarray] | None = None  # torch's own layout; None: ``arrays``
    bytes_fwd: int = field(init=False)
    bytes_fwdbwd: int = field(init=False)

    def __post_init__(self) -> None:
        a = self.arrays
        inputs = sum(v.nbytes for k, v in a.items() if not k.startswith("g"))
        upstream = sum(v.nbytes for k, v in a.items() if k.startswith("g"))
        # every input read once and every result written once: a lower bound on traffic
        self.bytes_fwd = inputs + self.out_bytes
        self.bytes_fwdbwd = self.bytes_fwd + upstream + sum(a[k].nbytes for k in self.grad_keys)


def randn(rng: np.random.Generator, *shape: int, scale: float = 1.0) -> np.ndarray:
    """float32 standard-normal draws of ``shape``, times ``scale``."""
    return (rng.standard_normal(shape) * scale).astype(np.float32)


CONV = dict(stride=1, padding_left=0, padding_right=0, dilation=1)
POOL = dict(kernel_size=2, stride=2, padding=0)


def _in_layout(a: dict[str, np.ndarray], channels_last: bool
               ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray] | None]:
    """(the kernel's arrays, torch's or None): channels-last gives the kernel ``x`` and
    ``gy`` as (N, L, C) and keeps the (N, C, L) originals for torch's own layers."""
    if not channels_last:
        return a, None
    return {k: np.ascontiguousarray(v.swapaxes(1, 2)) if k in ("x", "gy") else v
            for k, v in a.items()}, a


def _conv_cases(op: str, n: int, seq_len: int, features: int, rng) -> list[Case]:
    """conv1d, conv1d_relu and the fused block conv1d_relu_maxpool (with the towers' pool
    of 2) at the article's two conv shapes, channels-first and channels-last (torch times
    its own channels-first layers on the same values in both rows)."""
    pooled = op == "conv1d_relu_maxpool"
    out = []
    for c, o, length, cl in ((features, 64, seq_len, False), (64, 128, (seq_len - 2) // 2, False),
                             (features, 64, seq_len, True), (64, 128, (seq_len - 2) // 2, True)):
        lo = length - 2
        ly = lo // 2 if pooled else lo                       # the op's output length
        a = {"x": randn(rng, n, c, length), "w": randn(rng, o, c, 3, scale=(3 * c) ** -0.5),
             "b": randn(rng, o, scale=0.1), "gy": randn(rng, n, o, ly)}
        a, ta = _in_layout(a, cl)
        kw = dict(CONV, channels_last=cl)
        if pooled:
            kw.update(pool_size=2, pool_stride=2, pool_padding=0)

        def bwd(k, a, y, kw=kw):
            saved = {"conv1d": (), "conv1d_relu": (y,), "conv1d_relu_maxpool": y}[op]
            return k.bwd(a["gy"], a["x"], a["w"], *saved, **kw)   # y: (y, argmax) if pooled

        def tf(torch, t, dev):
            F = torch.nn.functional
            if op == "conv1d":
                f = lambda: F.conv1d(t["x"], t["w"], t["b"])  # noqa: E731
            elif op == "conv1d_relu":
                f = lambda: torch.relu(F.conv1d(t["x"], t["w"], t["b"]))  # noqa: E731
            else:
                f = lambda: F.max_pool1d(torch.relu(F.conv1d(t["x"], t["w"], t["b"])), 2)  # noqa: E731
            return f, [t["x"], t["w"], t["b"]]
        label = f"{c}->{o} L={length}" + (" pool 2" if pooled else "") + (" NLC" if cl else "")
        out.append(Case(op, label, n, a,
                        lambda k, a, kw=kw: k.fwd(a["x"], a["w"], a["b"], **kw), bwd, tf,
                        ("x", "w", "b"), n * o * ly * 4 * (2 if pooled else 1),
                        2 * n * o * c * 3 * lo, torch_arrays=ta))
    return out


def _pool_cases(op: str, n: int, seq_len: int, features: int, rng) -> list[Case]:
    """pools at the article's two shapes, channels-first and channels-last (torch: its own
    channels-first pool in both rows)."""
    out = []
    for c, length, cl in ((64, seq_len - 2, False), (128, (seq_len - 2) // 2 - 2, False),
                          (64, seq_len - 2, True), (128, (seq_len - 2) // 2 - 2, True)):
        lo = length // 2
        a = {"x": randn(rng, n, c, length), "gy": randn(rng, n, c, lo)}
        a, ta = _in_layout(a, cl)
        kw = dict(POOL, channels_last=cl)
        if op == "maxpool1d":
            def bwd(k, a, out, length=length, kw=kw):
                return k.bwd(a["gy"], out[1], length=length, **kw)

            def tf(torch, t, dev):
                f = torch.nn.functional.max_pool1d
                return lambda: f(t["x"], 2, 2, return_indices=True)[0], [t["x"]]
        else:
            def bwd(k, a, out, length=length, kw=kw):
                return k.bwd(a["gy"], length=length, **kw)

            def tf(torch, t, dev):
                return lambda: torch.nn.functional.avg_pool1d(t["x"], 2, 2), [t["x"]]
        shape = f"({n},{length},{c}) K=2 NLC" if cl else f"({n},{c},{length}) K=2"
        out.append(Case(op, shape, n, a, lambda k, a, kw=kw: k.fwd(a["x"], **kw), bwd, tf,
                        ("x",), n * c * lo * 4, torch_arrays=ta))
    return out


def _rnn_cases(op: str, n: int, seq_len: int, features: int, rng) -> list[Case]:
    g, h, d, t_len = GATES[op], HIDDEN, features, seq_len
    s = h ** -0.5
    a = {"x": randn(rng, n, t_len, d), "h0": randn(rng, n, h, scale=0.5)}
    if op == "lstm":
        a["c0"] = randn(rng, n, h, scale=0.5)
    for name, shape in (("w_ih", (g * h, d)), ("w_hh", (g * h, h)), ("b_ih", (g * h,)),
                        ("b_hh", (g * h,))):
        a[name] = rng.uniform(-s, s, shape).astype(np.float32)
    a["gy"] = randn(rng, n, t_len, h)
    weights = ("w_ih", "w_hh", "b_ih", "b_hh")
    if op == "lstm":
        a["gc"] = np.zeros((n, t_len, h), np.float32)   # cs unused downstream, as in a tower

        def fwd(k, a):
            return k.fwd(a["x"], a["h0"], a["c0"], *(a[w] for w in weights))

        def bwd(k, a, out):
            hs, cs, gates = out
            return k.bwd(a["gy"], a["gc"], a["x"], a["h0"], a["c0"], a["w_ih"], a["w_hh"],
                         hs, cs, gates)
    else:
        def fwd(k, a):
            return k.fwd(a["x"], a["h0"], *(a[w] for w in weights))

        def bwd(k, a, out):
            extra = (out,) if op == "rnn" else out          # rnn: hs; gru: (hs, gates)
            return k.bwd(a["gy"], a["x"], a["h0"], a["w_ih"], a["w_hh"], *extra)

    def tf(torch, t, dev):
        cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[op]
        mod = cls(d, h, batch_first=True).to(dev)
        with torch.no_grad():
            for w, name in zip(weights, ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0",
                                         "bias_hh_l0")):
                getattr(mod, name).copy_(t[w])
        states = [t["h0"], t["c0"]] if op == "lstm" else [t["h0"]]

        def f():
            if op == "lstm":
                return mod(t["x"], (t["h0"][None], t["c0"][None]))[0]
            return mod(t["x"], t["h0"][None])[0]
        return f, [t["x"], *states, *mod.parameters()]

    keys = ("x", "h0", "c0", *weights) if op == "lstm" else ("x", "h0", *weights)
    outs = (2 if op == "lstm" else 1) * n * t_len * h * 4   # hs (and cs)
    flops = 2 * n * t_len * g * h * (d + h)
    return [Case(op, f"{d}->{h} T={t_len}", n, a, fwd, bwd, tf, keys, outs, flops)]


def _row_cases(op: str, n: int, seq_len: int, features: int, rng) -> list[Case]:
    """softmax, log_softmax and the losses on (M, K) = (N, 10) rows."""
    x = randn(rng, n, CLASSES, scale=2.0)
    shape = f"M={n} K={CLASSES}"
    if op in ("softmax", "log_softmax"):
        a = {"x": x, "gy": randn(rng, n, CLASSES)}
        name = op

        def tf(torch, t, dev):
            return lambda: getattr(torch, name)(t["x"], -1), [t["x"]]
        return [Case(op, shape, n, a, lambda k, a: k.fwd(a["x"]),
                     lambda k, a, y: k.bwd(a["gy"], y), tf, ("x",), x.nbytes)]
    if op in ("cross_entropy", "soft_cross_entropy"):
        if op == "cross_entropy":
            target = rng.integers(0, CLASSES, n).astype(np.int64)
            keys = ("x",)
        else:
            e = np.exp(randn(rng, n, CLASSES))
            target = (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
            keys = ("x", "p")
        a = {"x": x, "p": target, "gy": randn(rng, n)}

        def tf(torch, t, dev):
            f = torch.nn.functional.cross_entropy
            return lambda: f(t["x"], t["p"], reduction="none"), [t[k] for k in keys]

        def bwd(k, a, out):
            return k.bwd(a["gy"], a["x"], a["p"], out[1])
        return [Case(op, shape, n, a, lambda k, a: k.fwd(a["x"], a["p"]), bwd, tf, keys,
                     n * 4)]
    # elementwise losses: bce_with_logits (z, y), bce (p, y), mse (a, b)
    first, fname = {"bce_with_logits": (x, "binary_cross_entropy_with_logits"),
                    "bce": (rng.uniform(0.05, 0.95, (n, CLASSES)).astype(np.float32),
                            "binary_cross_entropy"),
                    "mse": (x, "mse_loss")}[op]
    second = (rng.random((n, CLASSES)) > 0.5).astype(np.float32)
    a = {"x": first, "y": second, "gy": randn(rng, n, CLASSES)}
    keys = ("x", "y") if op == "mse" else ("x",)

    def tf(torch, t, dev):
        f = getattr(torch.nn.functional, fname)
        return lambda: f(t["x"], t["y"], reduction="none"), [t[k] for k in keys]
    return [Case(op, shape, n, a, lambda k, a: k.fwd(a["x"], a["y"]),
                 lambda k, a, out: k.bwd(a["gy"], a["x"], a["y"]), tf, keys, first.nbytes)]


def _head_losses_cases(op: str, n: int, seq_len: int, features: int, rng) -> list[Case]:
    """The article's three heads as one call: softmax, sigmoid, softmax over 10 columns
    each of the (N, 30) stacked logits, weights 1."""
    x = randn(rng, n, 3 * CLASSES, scale=2.0)
    labels = rng.integers(0, CLASSES, (2, n)).astype(np.int64)
    targets = (rng.random(n * CLASSES) > 0.5).astype(np.float32)
    spec = np.array([(0, 0, CLASSES, 0), (1, CLASSES, CLASSES, 0),
                     (0, 2 * CLASSES, CLASSES, 1)], dtype=np.int64)
    a = {"x": x, "labels": labels, "targets": targets, "spec": spec,
         "weights": np.ones(3), "gy": np.ones(1, dtype=np.float32)}

    def fwd(k, a):
        return k.fwd(a["x"], a["labels"], a["targets"], a["spec"], a["weights"])

    def bwd(k, a, out):
        return k.bwd(a["gy"], a["x"], a["labels"], a["targets"], a["spec"], a["weights"],
                     out[1])

    def tf(torch, t, dev):
        F = torch.nn.functional
        x, y = t["x"], t["labels"]
        c = CLASSES

        def f():
            return (F.cross_entropy(x[:, :c], y[0]) + F.binary_cross_entropy_with_logits(
                x[:, c:2 * c], t["targets"].reshape(-1, c)) + F.cross_entropy(
                x[:, 2 * c:], y[1])).reshape(1)
        return f, [x]
    return [Case(op, f"N={n} 3 heads x {CLASSES}", n, a, fwd, bwd, tf, ("x",), 4 * 4)]


_BUILDERS = {"head_losses": _head_losses_cases, "conv1d": _conv_cases, "conv1d_relu": _conv_cases,
             "conv1d_relu_maxpool": _conv_cases, "maxpool1d": _pool_cases,
             "avgpool1d": _pool_cases, "rnn": _rnn_cases, "lstm": _rnn_cases,
             "gru": _rnn_cases}


def kernel_cases(op: str, batch: int, seq_len: int = 64, features: int = 32,
                 seed: int = 0) -> list[Case]:
    """The benchmark calls of ``op`` at batch ``batch``: the shapes it has in the article's
    network (conv and pool: both tower blocks; RNNs: features -> 64 over seq_len steps;
    softmax and losses: N rows of 10 classes). Same seed, same values."""
    rng = np.random.default_rng([seed, batch, sum(map(ord, op))])
    return _BUILDERS.get(op, _row_cases)(op, batch, seq_len, features, rng)

