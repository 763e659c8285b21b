"""minimtl: a from-scratch, readable deep-learning engine on NumPy, Numba and CuPy.

    import minimtl as mt
    x = mt.tensor([[1.0, 2.0]], requires_grad=True)
    y = (x * x).sum()
    y.backward()          # x.grad == 2·x

``mt.nn`` (layers), ``mt.optim`` (SGD, Adam, AdamW) and ``mt.functional`` come with the
import. Importing minimtl imports neither numba nor cupy: a backend loads on first use.
"""

from . import functional, nn, ops, optim
from .backend import (
    BACKENDS,
    available_backends,
    default_backend,
    set_default_backend,
    use_backend,
)
from .function import Function, enable_grad, is_grad_enabled, no_grad
from .gradcheck import gradcheck
from .gradients import grad
from .profiler import profile
from .tensor import Tensor, tensor
from .threads import set_num_threads

__version__ = "0.1.0"

__all__ = [
    "Tensor", "tensor", "grad", "Function", "no_grad", "enable_grad", "is_grad_enabled",
    "BACKENDS", "available_backends", "default_backend", "set_default_backend",
    "use_backend", "set_num_threads", "functional", "nn", "ops", "optim", "gradcheck",
    "profile", "__version__",
]
