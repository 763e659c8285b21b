"""Optimizers (SGD, Adam, AdamW) and gradient clipping, with PyTorch's update rules.

An optimizer holds a list of parameters and, per parameter, a small state (momentum
buffers, moment estimates). ``step()`` updates each parameter whose ``.grad`` is not None,
in place on ``p.data`` with the array module of the parameter's backend (NumPy or CuPy);
no graph is recorded, and ``p.grad`` is never written. Adam/AdamW run their update through
``kernels.get("adam", backend)`` like every heavy op (math: kernels/adam/__init__.py): the
NumPy reference's passes, one fused loop (numba) or one kernel launch (cupy) per parameter,
with the same operations in the same order and rounding, so the same bits on every
backend. Build the optimizer after ``Module.to(backend)``, which replaces parameters by new
objects.

``state_dict()`` is a flat dict of scalars and NumPy arrays, so a checkpoint can store it
with ``np.savez`` and read it back without pickle:

    {"step": 3, "lr": 0.001, …hyperparameters…, "m.0": array, "v.0": array, "step.0": 3, …}

where ``name.i`` is the state ``name`` of parameter i (in the order they were given).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

import kernels

from .backend import kernel_module, xp_of
from .tensor import Tensor

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "clip_grad_norm_"]


def _host(a) -> np.ndarray:
    """A NumPy view of ``a`` (a CuPy array is copied to the host)."""
    return a.get() if hasattr(a, "__cuda_array_interface__") else np.asarray(a)


class Optimizer:
    """Base class: the parameter list, per-parameter state and the step counter.

    Subclasses list their hyperparameters (attributes saved in the state dict), their
    per-parameter array ``buffers`` and integer ``counters``, and write ``_update``.

    Parameters
    ----------
    params : iterable of Tensor     each must require grad; no duplicates
    lr : float ≥ 0                  the learning rate
    """

    hyperparameters: tuple[str, ...] = ("lr",)
    buffers: tuple[str, ...] = ()
    counters: tuple[str, ...] = ()

    def __init__(self, params: Iterable[Tensor], lr: float) -> None:
        self.params: list[Tensor] = list(params)
        name = type(self).__name__
        if not self.params:
            raise ValueError(f"{name}: got an empty parameter list")
        for i, p in enumerate(self.params):
            if not isinstance(p, Tensor) or not p.requires_grad:
                raise TypeError(f"{name}: parameter {i} is not a Tensor that requires grad")
        if len({id(p) for p in self.params}) != len(self.params):
            raise ValueError(f"{name}: a parameter appears more than once")
        if lr < 0:
            raise ValueError(f"{name}: lr must be >= 0, got {lr}")
        self.lr = lr
        self.step_count = 0  # calls to step()
        self.state: list[dict] = [{} for _ in self.params]

    def zero_grad(self) -> None:
        """Set every parameter's ``.grad`` to None (the next backward starts afresh)."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """Update every parameter that has a gradient; skip those whose ``.grad`` is None."""
        self.step_count += 1
        for p, state in zip(self.params, self.state):
            if p.grad is not None:
                self._update(p, p.grad, state, xp_of(p.backend))

    def _update(self, p: Tensor, g, state: dict, xp) -> None:
        raise NotImplementedError

    # --- checkpoints -----------------------------------------------------------------
    def state_dict(self) -> dict:
        """Scalars and NumPy copies of the state (see the module docstring)."""
        d: dict = {"step": self.step_count}
        d.update({name: getattr(self, name) for name in self.hyperparameters})
        for i, state in enumerate(self.state):
            for key, value in state.items():
                d[f"{key}.{i}"] = value if key in self.counters else np.array(_host(value))
        return d

    def load_state_dict(self, d: dict) -> None:
        """Restore the step counter, hyperparameters and per-parameter state from ``d``.

        The arrays are copied (later steps never write into ``d``). Every problem (missing
        scalars, unknown keys, shape mismatches) is reported in one ``ValueError``, and on
        error nothing is changed.
        """
        name = type(self).__name__
        scalars = ("step",) + self.hyperparameters
        problems = [f"missing {k!r}" for k in scalars if k not in d]
        new_state: list[dict] = [{} for _ in self.params]
        for key, value in d.items():
            if key in scalars:
                continue
            kind, _, index = key.rpartition(".")
            if kind not in self.buffers + self.counters or not index.isdigit() \
                    or int(index) >= len(self.params):
                problems.append(f"unexpected {key!r}")
                continue
            p = self.params[int(index)]
            if kind in self.counters:
                new_state[int(index)][kind] = int(value)
                continue
            value = _host(value)
            if value.shape != p.shape:
                problems.append(f"{key!r} has shape {value.shape}, parameter {p.shape}")
                continue
            new_state[int(index)][kind] = xp_of(p.backend).array(value, dtype=p.dtype)
        if problems:
            raise ValueError(f"{name}.load_state_dict: " + "; ".join(problems))
        self.step_count = int(d["step"])
        for h in self.hyperparameters:
            setattr(self, h, bool(d[h]) if isinstance(getattr(self, h), bool) else float(d[h]))
        self.state = new_state

    def __repr__(self) -> str:
        hyper = ", ".join(f"{h}={getattr(self, h)}" for h in self.hyperparameters)
        return f"{type(self).__name__}({len(self.params)} parameters, {hyper})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov momentum and L2 weight
    decay, with PyTorch's rules (dampening 0). Per parameter, with g its gradient:

        g ← g + weight_decay·p                      (if weight_decay ≠ 0)
        b ← g at the first step, else momentum·b + g  (if momentum ≠ 0)
        g ← g + momentum·b if nesterov else b       (if momentum ≠ 0)
        p ← p − lr·g

    Parameters
    ----------
    params : iterable of Tensor
    lr : float
    momentum : float ≥ 0
    nesterov : bool             needs momentum > 0
    weight_decay : float ≥ 0
    """

    hyperparameters = ("lr", "momentum", "nesterov", "weight_decay")
    buffers = ("momentum_buffer",)

    def __init__(self, params: Iterable[Tensor], lr: float, momentum: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        if momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: momentum and weight_decay must be >= 0, got {momentum}, "
                             f"{weight_decay}")
        if nesterov and momentum <= 0:
            raise ValueError("SGD: nesterov needs momentum > 0")
        self.momentum, self.nesterov, self.weight_decay = momentum, nesterov, weight_decay

    def _update(self, p, g, state, xp):
        if self.weight_decay:
            g = g + self.weight_decay * p.data  # a new array: p.grad stays untouched
        if self.momentum:
            b = state.get("momentum_buffer")
            if b is None:
                b = state["momentum_buffer"] = g.copy()
            else:
                b *= self.momentum
                b += g
            g = g + self.momentum * b if self.nesterov else b
        p.data -= self.lr * g


class Adam(Optimizer):
    """Adam with bias correction, exactly PyTorch's formula. Per parameter, step t:

        g ← g + weight_decay·p                     (L2 added to the gradient, PyTorch's Adam)
        m ← β1·m + (1 − β1)·g
        v ← β2·v + (1 − β2)·g²
        p ← p − lr/(1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + eps)

    eps is added to the bias-corrected √v̂, as in PyTorch and the Adam paper. Keras instead
    uses eps = 1e-7 added to the uncorrected √v:  p ← p − lr·√(1 − β2ᵗ)/(1 − β1ᵗ) · m/(√v + ε),
    which equals the formula above with eps = ε / √(1 − β2ᵗ) (a larger eps in early steps).
    The two agree to within eps-sized differences; pass ``eps=1e-7`` to be closer to Keras.

    Parameters
    ----------
    params : iterable of Tensor
    lr : float
    betas : (β1, β2) in [0, 1)
    eps : float ≥ 0             PyTorch's default 1e-8
    weight_decay : float ≥ 0    L2 penalty folded into the gradient (see ``AdamW``)

    State per parameter: ``m``, ``v`` (arrays) and ``step`` (its own t: a parameter skipped
    because its gradient was None does not advance, as in PyTorch).
    """

    hyperparameters = ("lr", "beta1", "beta2", "eps", "weight_decay")
    buffers = ("m", "v")
    counters = ("step",)
    decoupled = False

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr)
        beta1, beta2 = betas
        if not (0 <= beta1 < 1 and 0 <= beta2 < 1):
            raise ValueError(f"{type(self).__name__}: betas must lie in [0, 1), got {betas}")
        if eps < 0 or weight_decay < 0:
            raise ValueError(f"{type(self).__name__}: eps and weight_decay must be >= 0, got "
                             f"{eps}, {weight_decay}")
        self.beta1, self.beta2, self.eps, self.weight_decay = beta1, beta2, eps, weight_decay

    def _update(self, p, g, state, xp):
        b1, b2 = self.beta1, self.beta2
        if self.weight_decay:
            if self.decoupled:
                p.data *= 1 - self.lr * self.weight_decay
            else:
                g = g + self.weight_decay * p.data
        if "m" not in state:
            state["m"], state["v"], state["step"] = xp.zeros_like(p.data), \
                xp.zeros_like(p.data), 0
        m, v = state["m"], state["v"]
        state["step"] += 1
        t = state["step"]
        adam = kernel_module("adam", p.backend)
        with kernels.guard(p.backend):
            adam.update(p.data, g, m, v, b1=b1, b2=b2, c2=math.sqrt(1 - b2**t), eps=self.eps,
                        step=self.lr / (1 - b1**t))


class AdamW(Adam):
    """Adam with decoupled weight decay (PyTorch's AdamW): before the Adam step,

        p ← p·(1 − lr·weight_decay)

    and the gradient is not changed. Parameters as ``Adam``; weight_decay defaults to 1e-2.
    """

    decoupled = True

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2) -> None:
        super().__init__(params, lr, betas, eps, weight_decay)


def clip_grad_norm_(params: Iterable[Tensor] | Tensor, max_norm: float) -> float:
    """Scale all gradients together so that their global L2 norm is at most ``max_norm``.

    PyTorch's semantics: total = ‖(‖g₁‖, ‖g₂‖, …)‖₂ over the parameters with a gradient;
    every gradient is multiplied by min(1, max_norm / (total + 1e-6)).

    Returns
    -------
    float : the total norm before clipping
    """
    params = [params] if isinstance(params, Tensor) else list(params)
    grads = [p for p in params if p.grad is not None]
    norms = [float(xp_of(p.backend).linalg.norm(p.grad.ravel())) for p in grads]
    total = math.sqrt(sum(n * n for n in norms))
    coef = min(1.0, max_norm / (total + 1e-6))
    if coef < 1.0:
        for p in grads:
            # A new array, not ``*=``: the engine may hand several leaves the same gradient
            # array (e.g. both inputs of an addition), which must be scaled only once.
            p.grad = p.grad * p.grad.dtype.type(coef)
    return total
