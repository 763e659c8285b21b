"""``Tensor``: an array, the backend it lives on, and its place in the autograd graph.

A tensor made by an op remembers the ``Node`` that made it. ``backward`` sorts the graph
topologically with an explicit stack (no recursion, so a 2,000-step unrolled recurrence is
fine), then walks it once in reverse, calling each op's ``backward`` and accumulating
gradients. Leaf gradients are applied only after the whole walk succeeded, so an error
never leaves a gradient half-computed. The graph is freed as it is walked unless
``retain_graph=True``.
"""

from __future__ import annotations

import numpy as np

import kernels

from .backend import check_backend, default_backend, xp_of
from .function import Node, unbroadcast

__all__ = ["Tensor", "tensor"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


class Tensor:
    """An n-dimensional array on a backend, optionally tracking gradients.

    Parameters
    ----------
    data : array-like          NumPy/CuPy array or anything ``np.asarray`` takes
    backend : str, optional    ``numpy``, ``numba`` or ``cupy``; default: the default backend
    requires_grad : bool       accumulate ``.grad`` in ``backward`` (float dtypes only)
    dtype : optional           convert the data to this dtype; by default arrays keep
                               theirs and Python floats become float32
    """

    __slots__ = ("data", "grad", "requires_grad", "backend", "_node", "_index", "__weakref__")
    __array_priority__ = 1000  # ndarray (op) Tensor defers to Tensor's reflected operators

    def __init__(self, data, backend: str | None = None, requires_grad: bool = False,
                 dtype=None):
        backend = check_backend(backend) if backend is not None else default_backend()
        xp = xp_of(backend)
        if isinstance(data, Tensor):
            data = data.data
        # Python numbers and lists of them become float32 (as in PyTorch); arrays and
        # NumPy scalars keep their dtype.
        from_python = dtype is None and not hasattr(data, "dtype")
        if backend == "cupy":
            data = xp.asarray(data, dtype=dtype)
        else:
            if not isinstance(data, np.ndarray) and hasattr(data, "get"):
                data = data.get()  # a CuPy array: copy to the host
            data = np.asarray(data, dtype=dtype)
        if from_python and data.dtype == np.float64:
            data = data.astype(np.float32)
        if requires_grad and data.dtype not in _FLOATS:
            raise TypeError(
                f"Tensor: requires_grad needs float32 or float64 data, got {data.dtype}"
            )
        self.data = data
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self.backend = backend
        self._node: Node | None = None
        self._index = 0

    @classmethod
    def _from_op(cls, data, backend: str, node: Node | None, index: int) -> Tensor:
        t = cls.__new__(cls)
        t.data = data
        t.grad = None
        t.backend = backend
        t.requires_grad = node is not None and data.dtype in _FLOATS
        t._node = node if t.requires_grad else None
        t._index = index
        return t

    # --- array facts -----------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return int(self.data.size)

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    def __len__(self) -> int:
        return self.data.shape[0]

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        return (f"Tensor({self.numpy()!r}, backend={self.backend!r}{grad})"
                if self.size <= 20 else
                f"Tensor(shape={self.shape}, dtype={self.dtype}, backend={self.backend!r}{grad})")

    # --- conversion ------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (a copy from the GPU for ``cupy``)."""
        return self.data.get() if self.backend == "cupy" else self.data

    def item(self) -> float:
        return self.data.item()

    def detach(self) -> Tensor:
        """The same data as a new leaf that tracks no gradient."""
        return Tensor._from_op(self.data, self.backend, None, 0)

    def to(self, backend: str) -> Tensor:
        """A copy on ``backend``, as a new leaf keeping ``requires_grad``."""
        if backend == self.backend:
            return self
        if backend == "cupy":
            data = self.data  # host -> device copies
        elif self.backend == "cupy":
            data = self.numpy()  # device -> host copies
        else:
            data = self.data.copy()
        return Tensor(data, backend=backend, requires_grad=self.requires_grad)

    def astype(self, dtype) -> Tensor:
        from .ops.elementwise import Cast

        return Cast.apply(self, dtype=np.dtype(dtype))

    # --- autograd --------------------------------------------------------------------
    def backward(self, gradient=None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) · gradient into every leaf's ``.grad``.

        ``gradient`` defaults to 1 for a single-element tensor.
        """
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad (no graph)")
        xp = xp_of(self.backend)
        if gradient is None:
            if self.size != 1:
                raise RuntimeError(
                    f"backward: gradient must be given for a non-scalar output {self.shape}"
                )
            gradient = xp.ones(self.data.shape, dtype=self.data.dtype)
        else:
            gradient = gradient.data if isinstance(gradient, Tensor) else xp.asarray(gradient)
            if gradient.shape != self.data.shape:
                raise ValueError(
                    f"backward: gradient shape {gradient.shape} != tensor shape {self.shape}"
                )
            gradient = gradient.astype(self.data.dtype, copy=False)
        if self._node is None:  # a leaf: d(self)/d(self) = gradient
            self.grad = gradient.copy() if self.grad is None else self.grad + gradient
            return

        order = _topological_order(self._node)
        grads: dict[Node, list] = {self._node: [None] * self._node.n_outputs}
        grads[self._node][self._index] = gradient
        leaf_grads: dict[int, tuple[Tensor, object]] = {}
        for node in order:
            gys = grads.pop(node, None)
            if gys is None:
                continue
            if node.ctx is None:
                raise RuntimeError(
                    f"backward: the graph through {node.fn.__name__} was already freed; "
                    f"pass retain_graph=True to the first backward to walk it twice"
                )
            with kernels.guard(node.ctx.backend):
                gxs = node.fn.backward(node.ctx, *gys)
            if not isinstance(gxs, tuple):
                gxs = (gxs,)
            if len(gxs) != len(node.inputs):
                raise RuntimeError(
                    f"{node.fn.__name__}.backward returned {len(gxs)} gradients for "
                    f"{len(node.inputs)} inputs"
                )
            for t, g in zip(node.inputs, gxs):
                if g is None or not isinstance(t, Tensor) or not t.requires_grad:
                    continue
                g = unbroadcast(g, t.data.shape)
                if g.shape != t.data.shape or g.dtype != t.data.dtype:
                    raise RuntimeError(
                        f"{node.fn.__name__}.backward: gradient {g.shape} {g.dtype} does not "
                        f"match its input {t.data.shape} {t.data.dtype}"
                    )
                if t._node is None:
                    prev = leaf_grads.get(id(t))
                    leaf_grads[id(t)] = (t, g if prev is None else prev[1] + g)
                else:
                    slots = grads.setdefault(t._node, [None] * t._node.n_outputs)
                    prev = slots[t._index]
                    slots[t._index] = g if prev is None else prev + g
            if not retain_graph:
                node.ctx = None
        owned: set[int] = set()
        for t, g in leaf_grads.values():
            if t.grad is not None:
                t.grad = t.grad + g
                continue
            # a backward may hand one array to several inputs (Add returns gy twice), a
            # view of another array, or the caller's gradient: copy those, so that no two
            # .grad alias each other or anything outside; fresh arrays are kept as they are
            if id(g) in owned or g.base is not None or g is gradient:
                g = g.copy()
            owned.add(id(g))
            t.grad = g
        if not retain_graph:
            for node in order:
                node.inputs = ()

    def zero_grad(self) -> None:
        self.grad = None

    # --- operators (implemented in minimtl.ops) --------------------------------------
    def __add__(self, other):
        return _ops().add(self, other)

    def __radd__(self, other):
        return _ops().add(other, self)

    def __sub__(self, other):
        return _ops().sub(self, other)

    def __rsub__(self, other):
        return _ops().sub(other, self)

    def __mul__(self, other):
        return _ops().mul(self, other)

    def __rmul__(self, other):
        return _ops().mul(other, self)

    def __truediv__(self, other):
        return _ops().div(self, other)

    def __rtruediv__(self, other):
        return _ops().div(other, self)

    def __pow__(self, exponent):
        return _ops().pow(self, exponent)

    def __matmul__(self, other):
        return _ops().matmul(self, other)

    def __rmatmul__(self, other):
        return _ops().matmul(other, self)

    def __neg__(self):
        return _ops().neg(self)

    def __getitem__(self, index):
        return _ops().getitem(self, index)

    # readable shortcuts for the most used generic ops
    def sum(self, axis=None, keepdims: bool = False):
        return _ops().sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims: bool = False):
        return _ops().mean(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims: bool = False):
        return _ops().max(self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape):
        return _ops().reshape(self, shape[0] if len(shape) == 1 else shape)

    def transpose(self, *axes):
        return _ops().transpose(self, axes if axes else None)

    @property
    def T(self):
        return _ops().transpose(self, None)

    def exp(self):
        return _ops().exp(self)

    def log(self):
        return _ops().log(self)

    def tanh(self):
        return _ops().tanh(self)

    def sigmoid(self):
        return _ops().sigmoid(self)

    def relu(self):
        return _ops().relu(self)


def _topological_order(root: Node) -> list[Node]:
    """Nodes reachable from ``root``, each after every node that consumes its outputs.

    Iterative depth-first post-order (explicit stack), reversed.
    """
    order: list[Node] = []
    visited: set[int] = {id(root)}
    stack: list[tuple[Node, int]] = [(root, 0)]
    while stack:
        node, i = stack.pop()
        inputs = node.inputs
        while i < len(inputs):
            t = inputs[i]
            i += 1
            child = getattr(t, "_node", None)
            if child is not None and id(child) not in visited:
                visited.add(id(child))
                stack.append((node, i))
                stack.append((child, 0))
                break
        else:
            order.append(node)
    order.reverse()
    return order


def _ops():
    from . import ops

    return ops


def tensor(data, dtype=None, backend: str | None = None, requires_grad: bool = False) -> Tensor:
    """Make a Tensor (see ``Tensor``)."""
    return Tensor(data, backend=backend, requires_grad=requires_grad, dtype=dtype)
