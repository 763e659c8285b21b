"""``Tensor``: an array, the backend it lives on, and its place in the autograd graph.

A tensor made by an op remembers the ``Node`` that made it (``_node``) and which of the
node's outputs it is (``_index``); ``backward`` hands it to the walk in minimtl/autograd.py.
Operators and shortcuts come from ``TensorMethods`` (minimtl/tensor_methods.py).
"""

from __future__ import annotations

import numpy as np

from . import autograd
from .backend import check_backend, default_backend, xp_of
from .function import Node
from .tensor_methods import TensorMethods

__all__ = ["Tensor", "tensor"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


class Tensor(TensorMethods):
    """An n-dimensional array on a backend, optionally tracking gradients. Its operators
    (``+``, ``@``, ``x[i]``, ...) and method shortcuts (``x.sum()``, ``x.astype(...)``) are
    in minimtl/tensor_methods.py.

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

    # --- autograd --------------------------------------------------------------------
    def backward(self, gradient=None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) · gradient into every leaf's ``.grad`` (the walk:
        minimtl/autograd.py). ``gradient`` defaults to 1 for a single-element tensor; the
        graph is freed unless ``retain_graph``."""
        if isinstance(gradient, Tensor):
            gradient = gradient.data
        autograd.backward(self, gradient, xp_of(self.backend), retain_graph)

    def zero_grad(self) -> None:
        self.grad = None


def tensor(data, dtype=None, backend: str | None = None, requires_grad: bool = False) -> Tensor:
    """Make a Tensor (see ``Tensor``)."""
    return Tensor(data, backend=backend, requires_grad=requires_grad, dtype=dtype)
