"""``Parameter`` and ``Module``: the bookkeeping every layer shares.

A ``Module`` registers what is assigned to it: ``self.weight = Parameter(...)`` lands in
``self._parameters``, ``self.conv = Conv1d(...)`` in ``self._modules``, both in assignment
order. That ``__setattr__`` is the one piece of magic in ``minimtl.nn``; everything else
(names, state dicts, ``train``/``eval``, moving between backends) walks those two dicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from ..backend import check_backend, xp_of
from ..tensor import Tensor

__all__ = ["Parameter", "Module", "ModuleList", "Sequential"]


class Parameter(Tensor):
    """A leaf tensor that a ``Module`` registers and an optimizer updates.

    Parameters
    ----------
    data : array-like     the initial values (a NumPy array is used as is, not copied)
    backend : str, optional

    Always ``requires_grad=True``; the dtype is the data's (float32 or float64).
    """

    __slots__ = ()

    def __init__(self, data, backend: str | None = None):
        super().__init__(data, backend=backend, requires_grad=True)

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype}, backend={self.backend!r})"


def _indent(text: str) -> str:
    return text.replace("\n", "\n  ")


def _host(a) -> np.ndarray:
    """A NumPy view of ``a`` (a CuPy array is copied to the host)."""
    return a.get() if hasattr(a, "__cuda_array_interface__") else np.asarray(a)


class Module:
    """Base class of layers and models: subclasses set attributes in ``__init__`` (after
    calling ``super().__init__()``) and write ``forward``; call the module to run it.

    Attributes
    ----------
    training : bool     True after ``train()`` (the default), False after ``eval()``
    """

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    # --- registration ----------------------------------------------------------------
    def __setattr__(self, name: str, value) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before "
                                 f"assigning attributes")
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        self.__dict__.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str):
        # Only called when normal lookup fails, i.e. for registered parameters and modules.
        d = self.__dict__
        if name in d.get("_parameters", {}):
            return d["_parameters"][name]
        if name in d.get("_modules", {}):
            return d["_modules"][name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        if name in self._parameters:
            del self._parameters[name]
        elif name in self._modules:
            del self._modules[name]
        else:
            object.__delattr__(self, name)

    # --- running ---------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # --- walking the tree ------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """(dotted name, module) for this module (name ``prefix``, "" at the top) and every
        descendant, depth first in registration order; a shared module appears once."""
        seen: set[int] = set()
        stack: list[tuple[str, Module]] = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{k}" if name else k, m) for k, m in module._modules.items()]
            stack.extend(reversed(children))

    def modules(self) -> Iterator[Module]:
        """This module and every descendant (see ``named_modules``)."""
        for _, module in self.named_modules():
            yield module

    def children(self) -> Iterator[Module]:
        """The directly registered sub-modules, in registration order."""
        yield from self._modules.values()

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter), e.g. ``("towers.0.conv1.weight", p)``, in registration
        order; a parameter shared by several modules appears once, under its first name."""
        seen: set[int] = set()
        for prefix, module in self.named_modules():
            for name, p in module._parameters.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{prefix}.{name}" if prefix else name), p

    def parameters(self) -> Iterator[Parameter]:
        """Every parameter once, in the order of ``named_parameters``."""
        for _, p in self.named_parameters():
            yield p

    def num_parameters(self) -> int:
        """The number of scalars in all parameters (shared ones counted once)."""
        return sum(p.size for p in self.parameters())

    # --- modes and gradients ---------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set ``training`` on this module and all descendants; returns self."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """``train(False)``: e.g. Dropout becomes the identity."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Set every parameter's ``.grad`` to None."""
        for p in self.parameters():
            p.grad = None

    # --- state -----------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Dotted name -> a NumPy copy of the parameter's values (host memory, even for
        ``cupy``), ready for ``np.savez``."""
        return {name: np.array(p.numpy()) for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict, strict: bool = True) -> tuple[list[str], list[str]]:
        """Copy values from ``state`` into the parameters, in place (same objects after).

        Every problem is reported in one ``ValueError``: missing names, unexpected names
        (both only when ``strict``) and shape mismatches (always). On error nothing is
        changed. Values are cast to each parameter's dtype.

        Returns
        -------
        (missing, unexpected) : the names not loaded and the names ignored
        """
        params = dict(self.named_parameters())
        missing = [k for k in params if k not in state]
        unexpected = [k for k in state if k not in params]
        values, mismatched = {}, []
        for name, p in params.items():
            if name in state:
                values[name] = _host(state[name])
                if values[name].shape != p.shape:
                    mismatched.append(f"{name}: checkpoint {values[name].shape}, "
                                      f"model {p.shape}")
        problems = []
        if strict and missing:
            problems.append("missing: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected: " + ", ".join(unexpected))
        if mismatched:
            problems.append("shape mismatch: " + "; ".join(mismatched))
        if problems:
            raise ValueError(f"{type(self).__name__}.load_state_dict: "
                             + "\n  ".join(["state dict does not fit the model"] + problems))
        # Convert everything before writing anything, so a bad value changes nothing.
        ready = {name: xp_of(params[name].backend).asarray(v, dtype=params[name].dtype)
                 for name, v in values.items()}
        for name, value in ready.items():
            params[name].data[...] = value
        return missing, unexpected

    def to(self, backend: str) -> Module:
        """Move every parameter to ``backend``; returns self (the module is changed in place).

        Identity: a parameter already on ``backend`` stays the same object. Any other is
        *replaced* by a new ``Parameter`` holding a copy on ``backend`` (its array cannot
        move), registered under the same name; a parameter shared by several modules stays
        shared. References taken before the move (``p = model.fc.weight``, an optimizer's
        parameter list) still point to the old objects: call ``to`` before building the
        optimizer. Gradients are not moved (the new parameters have ``grad=None``).
        """
        check_backend(backend)
        moved: dict[int, Parameter] = {}
        for module in self.modules():
            for name, p in module._parameters.items():
                if p.backend != backend:
                    if id(p) not in moved:
                        moved[id(p)] = Parameter(p.to(backend).data, backend=backend)
                    module._parameters[name] = moved[id(p)]
        return self

    # --- printing --------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The constructor arguments worth showing in ``repr`` (layers override this)."""
        return ""

    def __repr__(self) -> str:
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not self._modules:
            return head + ")"
        lines = [f"({name}): {_indent(repr(m))}" for name, m in self._modules.items()]
        return head + "\n  " + "\n  ".join(lines) + "\n)"


class ModuleList(Module):
    """A list of modules, registered under the names "0", "1", …; indexable, iterable,
    ``len``. It has no ``forward``: the owner decides how to call its items."""

    def __init__(self, modules: Iterable[Module] = ()) -> None:
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module: Module) -> ModuleList:
        if not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__}: expected a Module, got "
                            f"{type(module).__name__}")
        setattr(self, str(len(self._modules)), module)
        return self

    def __getitem__(self, index: int | slice):
        items = list(self._modules.values())
        return ModuleList(items[index]) if isinstance(index, slice) else items[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(list(self._modules.values()))


class Sequential(ModuleList):
    """Modules applied one after the other: ``Sequential(a, b, c)(x) == c(b(a(x)))``."""

    def __init__(self, *modules: Module) -> None:
        super().__init__(modules)

    def __getitem__(self, index: int | slice):
        item = super().__getitem__(index)
        return Sequential(*item) if isinstance(index, slice) else item

    def forward(self, x):
        for module in self:
            x = module(x)
        return x
