"""The engine's one mechanism: a ``Function`` records itself in the graph when applied.

An op subclasses ``Function`` and writes ``forward(ctx, *arrays, **params)`` and
``backward(ctx, *gys)`` on raw arrays. ``Function.apply`` does the bookkeeping once for
every op: it checks that all tensor inputs share a backend, unwraps them, runs
``forward``, wraps the outputs and, when gradients are needed, links them to a ``Node``
that the backward walk (minimtl/autograd.py) later visits.

Gradients nobody needs, one rule for every op:

- ``ctx.needs_grad[i]``: input i is a Tensor that required grad when the op was applied.
- ``backward`` gets one C-contiguous gradient per output (None for an output nothing
  depends on) and returns one gradient per input, in order. It may return None for an
  input whose ``needs_grad`` is false, and does wherever knowing it saves work.
- The walk never accumulates a gradient into an input whose ``needs_grad`` is false.
- An op passes ``need_*=ctx.needs_grad[i]`` to a kernel that can skip the work (the
  convolutions' ``need_gx``); what a kernel computes anyway the op returns as it is.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import kernels

from .backend import kernel_module, xp_of

__all__ = ["Function", "Context", "Node", "no_grad", "enable_grad", "is_grad_enabled"]


class _GradMode(threading.local):
    """Grad mode is per thread, as in PyTorch: ``no_grad`` in one thread (an evaluation
    beside training) never turns recording off in another. A new thread starts enabled."""

    enabled = True


_mode = _GradMode()


def is_grad_enabled() -> bool:
    """Whether applied ops currently record the graph (in this thread)."""
    return _mode.enabled


@contextlib.contextmanager
def _grad_mode(enabled: bool) -> Iterator[None]:
    previous, _mode.enabled = _mode.enabled, enabled
    try:
        yield
    finally:
        _mode.enabled = previous


def no_grad():
    """Context manager: ops inside record no graph (inference, optimizer updates)."""
    return _grad_mode(False)


def enable_grad():
    """Context manager: re-enable graph recording inside a ``no_grad`` block."""
    return _grad_mode(True)


class Context:
    """Per-call scratch space of a Function: saved arrays, parameters, backend, kernels.

    Attributes
    ----------
    backend : str       the inputs' backend
    xp : module         its array module (numpy or cupy)
    k : module | None   ``kernels.get(Function.kernel, backend)`` for heavy ops
    needs_grad : tuple[bool, ...]  per input: does it require a gradient? (module doc)
    saved : tuple       what ``save`` stored
    """

    __slots__ = ("backend", "xp", "k", "needs_grad", "saved", "params")

    def __init__(self, backend: str, needs_grad: tuple[bool, ...], kernel: str | None):
        self.backend = backend
        self.xp = xp_of(backend)
        self.k = kernel_module(kernel, backend) if kernel is not None else None
        self.needs_grad = needs_grad
        self.saved: tuple = ()
        self.params: dict[str, Any] = {}

    def save(self, *arrays) -> None:
        """Keep arrays for backward (they must not be modified in place afterwards)."""
        self.saved = arrays


class Node:
    """A recorded call in the graph: the Function, its context, its tensor inputs."""

    __slots__ = ("fn", "ctx", "inputs", "n_outputs")

    def __init__(self, fn: type[Function], ctx: Context, inputs: tuple, n_outputs: int):
        self.fn = fn
        self.ctx = ctx
        self.inputs = inputs  # Tensors, or None for non-tensor arguments
        self.n_outputs = n_outputs

    def __repr__(self) -> str:
        return f"<Node {self.fn.__name__}>"


class Function:
    """Base class of every differentiable op. Subclasses define ``forward``/``backward``.

    ``kernel`` names the ``kernels/<op>`` family for heavy ops (``ctx.k``); generic ops leave
    it ``None`` and compute with ``ctx.xp``. ``strided_gradients``: the backward only
    re-views or slices its gradients, so the walk hands them over as they are (not made
    C-contiguous first: a copy kernel each on a GPU).
    """

    kernel: str | None = None
    strided_gradients: bool = False

    @staticmethod
    def forward(ctx: Context, *args, **params):
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, *gys):
        raise NotImplementedError

    @classmethod
    def op_name(cls) -> str:
        """The name errors use: the kernel family's (``conv1d``, ``lstm``, ``mse``), as the
        ops' own input checks do, else the class's in lower case (``add``, ``linear``)."""
        return cls.kernel or cls.__name__.lower()

    @classmethod
    def apply(cls, *inputs, **params):
        from .tensor import Tensor

        backend = None
        for t in inputs:
            if isinstance(t, Tensor):
                if backend is None:
                    backend = t.backend
                elif t.backend != backend:
                    shapes = ", ".join(
                        f"{u.backend}{u.shape}" for u in inputs if isinstance(u, Tensor)
                    )
                    raise ValueError(
                        f"{cls.op_name()}: inputs live on different backends ({shapes}); "
                        f"move them with .to(backend) first"
                    )
        if backend is None:
            raise TypeError(f"{cls.op_name()}: needs at least one Tensor input")
        needs_grad = tuple(isinstance(t, Tensor) and t.requires_grad for t in inputs)
        record = _mode.enabled and any(needs_grad)
        ctx = Context(backend, needs_grad, cls.kernel)
        raw = [t.data if isinstance(t, Tensor) else t for t in inputs]
        with kernels.guard(backend):
            out = cls.forward(ctx, *raw, **params)
        multi = isinstance(out, tuple)
        outs = out if multi else (out,)
        node = Node(cls, ctx, inputs, len(outs)) if record else None
        wrapped = tuple(
            Tensor._from_op(o, backend, node, i) for i, o in enumerate(outs)
        )
        return wrapped if multi else wrapped[0]
