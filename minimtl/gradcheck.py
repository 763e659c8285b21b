"""Gradient checking: compare the engine's backward with central finite differences.

``full`` mode builds both Jacobians entry by entry: the analytical one row by row (one
backward per output element, with a one-hot cotangent), the numerical one column by column
(two forward passes per input element). ``fast`` mode checks one random direction: with
random u (per input) and v (per output) it compares v·(J u), from two forward passes, with
(vᵀJ)·u, from one backward; cheap enough for LSTM-sized inputs. Both also check that
backward is deterministic (two runs, bitwise equal), that gradients have their input's
shape and dtype, and that ``fn`` leaves its inputs unchanged.

Defaults are PyTorch's (eps 1e-6, atol 1e-5, rtol 1e-3); they assume float64, so inputs
that require grad must be float64.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .backend import xp_of
from .function import enable_grad, no_grad
from .tensor import Tensor

__all__ = ["gradcheck", "GradcheckError"]


class GradcheckError(AssertionError):
    """The analytical and numerical gradients disagree (or backward misbehaves)."""


def _outputs(fn, inputs) -> list[Tensor]:
    out = fn(*inputs)
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _host(a) -> np.ndarray:
    return np.array(a.get() if hasattr(a, "get") else a, dtype=np.float64)


def _forward_values(fn, inputs) -> list[np.ndarray]:
    with no_grad():
        return [_host(o.data) for o in _outputs(fn, inputs)]


def _leaf_grads(inputs, diff) -> list[np.ndarray]:
    out = []
    for j in diff:
        g = inputs[j].grad
        out.append(np.zeros(inputs[j].shape) if g is None else _host(g))
    return out


def _backward(outs, cotangents, inputs, diff) -> list[np.ndarray]:
    """Gradients of Σ_i <cotangent_i, out_i> w.r.t. each differentiable input."""
    for j in diff:
        inputs[j].grad = None
    for o, v in zip(outs, cotangents):
        if o.requires_grad and v is not None:
            o.backward(xp_of(o.backend).asarray(v, dtype=o.dtype), retain_graph=True)
    for j in diff:
        g = inputs[j].grad
        if g is not None and (g.shape != inputs[j].data.shape or g.dtype != inputs[j].dtype):
            raise GradcheckError(
                f"gradient of input {j} has shape {g.shape} and dtype {g.dtype}, expected "
                f"{inputs[j].shape} and {inputs[j].dtype}"
            )
    return _leaf_grads(inputs, diff)


def _perturbed(fn, inputs, j: int, flat_index: int | None, direction, eps: float):
    """(f(x + eps·d) − f(x − eps·d)) / (2 eps) for input j, where d is the unit vector at
    ``flat_index`` or the array ``direction``; the input is restored exactly afterwards."""
    t = inputs[j]
    xp = xp_of(t.backend)
    original = t.data
    base = xp.array(original, copy=True)
    delta = xp.zeros_like(base)
    if flat_index is not None:
        delta.reshape(-1)[flat_index] = eps
    else:
        delta = xp.asarray(direction, dtype=base.dtype) * eps
    try:
        t.data = base + delta
        plus = _forward_values(fn, inputs)
        t.data = base - delta
        minus = _forward_values(fn, inputs)
    finally:
        t.data = original
    return [(p - m) / (2 * eps) for p, m in zip(plus, minus)]


def _fail(msg: str, raise_exception: bool) -> bool:
    if raise_exception:
        raise GradcheckError(msg)
    return False


def _compare(i: int, j: int, analytical, numerical, atol, rtol, raise_exception) -> bool:
    err = np.abs(analytical - numerical)
    bad = err > atol + rtol * np.abs(numerical)
    if not bad.any():
        return True
    worst = np.argsort(err, axis=None)[::-1][: min(5, int(bad.sum()))]
    rows = []
    for w in worst:
        r, c = np.unravel_index(w, err.shape)
        rows.append(f"  d out{i}[{r}] / d in{j}[{c}]: numerical {numerical[r, c]:.8g}, "
                    f"analytical {analytical[r, c]:.8g}")
    k = np.unravel_index(worst[0], err.shape)
    msg = (f"Jacobian mismatch for output {i} w.r.t. input {j}: max |a-n| = {err[k]:.3g}, "
           f"at index {tuple(int(v) for v in k)} (output flat index, input flat index), "
           f"numerical {numerical[k]:.8g}, analytical {analytical[k]:.8g}; worst entries:\n"
           + "\n".join(rows))
    return _fail(msg, raise_exception)


def gradcheck(fn: Callable[..., Tensor | Sequence[Tensor]], inputs: Sequence, *,
              eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3, mode: str = "full",
              seed: int = 0, raise_exception: bool = True) -> bool:
    """Check ``fn``'s backward against finite differences at ``inputs``.

    Parameters
    ----------
    fn : callable        ``fn(*inputs)`` -> Tensor or tuple of Tensors
    inputs : sequence    Tensors (float64 where ``requires_grad``) and other arguments
    eps, atol, rtol      step and tolerance: pass iff |a − n| ≤ atol + rtol·|n| everywhere
    mode : 'full' | 'fast'
    seed : int           for the random directions and cotangents
    raise_exception : bool  raise ``GradcheckError`` on failure (else return False)

    Returns
    -------
    bool : True when every check passes.
    """
    if mode not in ("full", "fast"):
        raise ValueError(f"gradcheck: mode must be 'full' or 'fast', got {mode!r}")
    inputs = list(inputs)
    diff = [j for j, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not diff:
        raise ValueError("gradcheck: no input requires grad")
    for j in diff:
        if inputs[j].dtype != np.float64:
            raise TypeError(f"gradcheck: input {j} requires grad but is {inputs[j].dtype}; "
                            f"finite differences with eps={eps} need float64")
    before = [_host(t.data).copy() if isinstance(t, Tensor) else None for t in inputs]
    saved_grads = [inputs[j].grad for j in diff]
    rng = np.random.default_rng(seed)
    try:
        with enable_grad():
            outs = _outputs(fn, inputs)
        values = [_host(o.data) for o in outs]
        for j, b in enumerate(before):
            if b is not None and not np.array_equal(b, _host(inputs[j].data), equal_nan=True):
                return _fail(f"fn modified input {j} in place", raise_exception)
        if not any(o.requires_grad for o in outs):
            return _fail("no output depends on an input that requires grad", raise_exception)

        # backward must be deterministic
        v = [rng.standard_normal(val.shape) for val in values]
        first = _backward(outs, v, inputs, diff)
        second = _backward(outs, v, inputs, diff)
        for j, g1, g2 in zip(diff, first, second):
            if not np.array_equal(g1, g2):
                return _fail(f"backward is not deterministic for input {j}: two runs differ "
                             f"by up to {np.max(np.abs(g1 - g2)):.3g}", raise_exception)

        if mode == "fast":
            u = [rng.standard_normal(inputs[j].shape) for j in diff]
            analytical = sum(float(np.sum(g * uj)) for g, uj in zip(first, u))
            numerical = 0.0
            for j, uj in zip(diff, u):
                d = _perturbed(fn, inputs, j, None, uj, eps)
                numerical += sum(float(np.sum(vi * di)) for vi, di in zip(v, d))
            if abs(analytical - numerical) <= atol + rtol * abs(numerical):
                return True
            small = sum(inputs[j].size for j in diff) * sum(val.size for val in values)
            if small <= 20_000:  # cheap enough to name the wrong entries
                return gradcheck(fn, inputs, eps=eps, atol=atol, rtol=rtol, mode="full",
                                 seed=seed, raise_exception=raise_exception)
            return _fail(f"directional derivative mismatch: (vᵀJ)·u = {analytical:.10g} "
                         f"(analytical), v·(J u) = {numerical:.10g} (numerical)",
                         raise_exception)

        numerical = {j: [np.zeros((val.size, inputs[j].size)) for val in values] for j in diff}
        for j in diff:
            for e in range(inputs[j].size):
                for i, d in enumerate(_perturbed(fn, inputs, j, e, None, eps)):
                    numerical[j][i][:, e] = d.reshape(-1)
        ok = True
        for i, (o, val) in enumerate(zip(outs, values)):
            rows = {j: np.zeros((val.size, inputs[j].size)) for j in diff}
            if o.requires_grad:
                for r in range(val.size):
                    onehot = np.zeros(val.shape)
                    onehot.reshape(-1)[r] = 1.0
                    for j, g in zip(diff, _backward([o], [onehot], inputs, diff)):
                        rows[j][r] = g.reshape(-1)
            for j in diff:
                ok = _compare(i, j, rows[j], numerical[j][i], atol, rtol, raise_exception) and ok
        return ok
    finally:
        for j, g in zip(diff, saved_grads):
            inputs[j].grad = g
