"""Optimizers (SGD, Adam, AdamW) and gradient clipping, with PyTorch's update rules.

An optimizer holds a list of parameters and, per parameter, a small state (momentum
buffers, moment estimates). ``step()`` updates each parameter whose ``.grad`` is not None,
in place on ``p.data`` with the array module of the parameter's backend (NumPy or CuPy);
no graph is recorded, and ``p.grad`` is never written. Adam/AdamW run their update through
``kernels.get("adam", backend)`` like every heavy op (math: kernels/adam/__init__.py): the
NumPy reference's passes, one fused loop (numba) per parameter, or on cupy one kernel
launch for all the parameters of the step (``update_many``, when every parameter has a
gradient and they share a backend, a dtype and their step t; else one launch per
parameter), with the same operations in the same order and rounding, so the same bits on
every backend. Build the optimizer after ``Module.to(backend)``, which replaces parameters by new
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
    #: whether a CUDA graph of ``step`` replays correctly (minimtl/train/graph.py): nothing
    #: it computes on the host changes from step to step (hyperparameters are fixed at
    #: capture)
    capturable: bool = False

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
        if self._update_all():
            return
        for p, state in zip(self.params, self.state):
            if p.grad is not None:
                self._update(p, p.grad, state, xp_of(p.backend))

    def _update_all(self) -> bool:
        """Update every parameter in one go if the subclass can (then True); else False and
        ``step`` calls ``_update`` per parameter."""
        return False

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
    capturable = True       # after the first step its update is the same kernels each step
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
    device_step : bool          keep the common step t on the parameters' device and compute
                                the bias corrections there (for CUDA-graph capture, below)

    State per parameter: ``m``, ``v`` (arrays) and ``step`` (its own t: a parameter skipped
    because its gradient was None does not advance, as in PyTorch).

    A step in which every parameter has a gradient, and all share a backend, a dtype and t,
    is one ``update_many`` call (on cupy one kernel launch, plus one per parameter for weight
    decay); any other step updates the parameters one by one with their own t.

    ``device_step=True``: such a step passes ``update_many`` a device int64 counter of t
    instead of host scalars; the kernels advance it and compute √(1 − β2ᵗ) and
    lr/(1 − β1ᵗ) on the device (two launches), so a captured CUDA graph of the step advances
    t on every replay (lr is then the one at capture). The same bits as the host formula for
    the default betas (kernels/adam/__init__.py says when they may differ). The per-parameter
    ``step`` in ``state`` lags while the counter runs: ``state_dict()`` reads the counter back
    (one synchronisation), and so does a step that must update the parameters one by one.
    """

    hyperparameters = ("lr", "beta1", "beta2", "eps", "weight_decay")
    buffers = ("m", "v")
    counters = ("step",)
    decoupled = False

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, device_step: bool = False) -> None:
        super().__init__(params, lr)
        self.device_step = bool(device_step)
        self._counter = None    # device_step: the common t of every parameter, on its device
        beta1, beta2 = betas
        if not (0 <= beta1 < 1 and 0 <= beta2 < 1):
            raise ValueError(f"{type(self).__name__}: betas must lie in [0, 1), got {betas}")
        if eps < 0 or weight_decay < 0:
            raise ValueError(f"{type(self).__name__}: eps and weight_decay must be >= 0, got "
                             f"{eps}, {weight_decay}")
        self.beta1, self.beta2, self.eps, self.weight_decay = beta1, beta2, eps, weight_decay

    @property
    def capturable(self) -> bool:
        """With ``device_step`` (its t and bias corrections on the device)."""
        return self.device_step

    def _fusable(self) -> bool:
        p0, s0 = self.params[0], self.state[0]
        t0 = s0.get("step") if "m" in s0 else None
        return all(p.grad is not None and p.backend == p0.backend and p.dtype == p0.dtype
                   and (s.get("step") if "m" in s else None) == t0
                   for p, s in zip(self.params, self.state))

    def _decayed(self, p, g):
        """The gradient after weight decay: L2 added to it (Adam), or p scaled in place and g
        unchanged (AdamW)."""
        if self.weight_decay:
            if self.decoupled:
                p.data *= 1 - self.lr * self.weight_decay
            else:
                g = g + self.weight_decay * p.data
        return g

    @staticmethod
    def _moments(p, state, xp):
        if "m" not in state:
            state["m"], state["v"], state["step"] = xp.zeros_like(p.data), \
                xp.zeros_like(p.data), 0
        return state["m"], state["v"]

    def _scalars(self, t: int) -> dict:
        """The keyword arguments of the adam kernels at step t (host formula)."""
        b1, b2 = self.beta1, self.beta2
        return dict(b1=b1, b2=b2, c2=math.sqrt(1 - b2**t), eps=self.eps,
                    step=self.lr / (1 - b1**t))

    def _update(self, p, g, state, xp):
        g = self._decayed(p, g)
        m, v = self._moments(p, state, xp)
        state["step"] += 1
        adam = kernel_module("adam", p.backend)
        with kernels.guard(p.backend):
            adam.update(p.data, g, m, v, **self._scalars(state["step"]))

    def _update_all(self) -> bool:
        """Every parameter in one ``update_many`` call when all have a gradient, share a
        backend and dtype and are at the same t (one kernel launch on cupy); else False
        (with a device counter, its t copied back to every parameter first)."""
        if not self._fusable():
            self._steps_to_host(keep_counter=False)
            return False
        backend = self.params[0].backend
        xp = xp_of(backend)
        gs, ms, vs = [], [], []
        for p, state in zip(self.params, self.state):
            gs.append(self._decayed(p, p.grad))
            m, v = self._moments(p, state, xp)
            ms.append(m)
            vs.append(v)
        ps = [p.data for p in self.params]
        adam = kernel_module("adam", backend)
        if self.device_step:
            if self._counter is None:      # t of the previous step, from the host (one copy)
                self._counter = xp.array([self.state[0]["step"]], dtype=np.int64)
            with kernels.guard(backend):
                adam.update_many(ps, gs, ms, vs, b1=self.beta1, b2=self.beta2, eps=self.eps,
                                 counter=self._counter, lr=self.lr)
            return True                    # the host's per-parameter t lag: _steps_to_host
        t = self.state[0]["step"] + 1
        for state in self.state:
            state["step"] = t
        with kernels.guard(backend):
            adam.update_many(ps, gs, ms, vs, **self._scalars(t))
        return True

    def _steps_to_host(self, keep_counter: bool) -> None:
        """With a device counter: copy its t into every parameter's ``step`` (one read, a
        synchronisation); drop the counter unless ``keep_counter``."""
        if self._counter is None:
            return
        t = int(_host(self._counter)[0])
        for state in self.state:
            if "m" in state:
                state["step"] = t
        if not keep_counter:
            self._counter = None

    def state_dict(self) -> dict:
        """As ``Optimizer.state_dict``; with ``device_step``, the step counter is read back
        from the device first."""
        self._steps_to_host(keep_counter=True)
        return super().state_dict()

    def load_state_dict(self, d: dict) -> None:
        """As ``Optimizer.load_state_dict``; a device step counter restarts from the loaded
        steps."""
        super().load_state_dict(d)
        self._counter = None


class AdamW(Adam):
    """Adam with decoupled weight decay (PyTorch's AdamW): before the Adam step,

        p ← p·(1 − lr·weight_decay)

    and the gradient is not changed. Parameters as ``Adam``; weight_decay defaults to 1e-2.
    """

    decoupled = True

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, device_step: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, device_step)


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
