"""Shape ops: reshape, transpose, concatenate, stack, indexing (basic and integer-array),
written once against ``ctx.xp``."""

from __future__ import annotations

from ..backend import address
from ..function import Function
from . import _checks

__all__ = ["Reshape", "Transpose", "Concat", "Stack", "GetItem"]


class Reshape(Function):
    """y = x viewed with a new shape  ⇒  gx = gy reshaped back."""

    strided_gradients = True

    @staticmethod
    def forward(ctx, x, *, shape):
        ctx.params = {"shape": x.shape}
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape {x.shape} into {tuple(shape)}") from None

    @staticmethod
    def backward(ctx, gy):
        return (gy.reshape(ctx.params["shape"]),)


class Transpose(Function):
    """y = x with axes permuted  ⇒  gx = gy with the inverse permutation."""

    strided_gradients = True

    @staticmethod
    def forward(ctx, x, *, axes=None):
        axes = (tuple(reversed(range(x.ndim))) if axes is None else
                tuple(_checks.axis("transpose", a, x.ndim) for a in axes))
        if sorted(axes) != list(range(x.ndim)):
            raise ValueError(f"transpose: axes {axes} are not a permutation for {x.shape}")
        ctx.params = {"inverse": tuple(axes.index(i) for i in range(x.ndim))}
        return x.transpose(axes)

    @staticmethod
    def backward(ctx, gy):
        return (gy.transpose(ctx.params["inverse"]),)


class Concat(Function):
    """y = [x₀, x₁, …] joined along ``axis``  ⇒  each gxᵢ is its slice of gy."""

    strided_gradients = True

    @staticmethod
    def forward(ctx, *xs, axis=0):
        shapes = [x.shape for x in xs]
        ref = shapes[0]
        axis = _checks.axis("concatenate", axis, len(ref))
        _checks.one_dtype("concatenate", xs)
        for s in shapes:
            if len(s) != len(ref) or any(a != b for i, (a, b) in enumerate(zip(s, ref))
                                         if i != axis):
                raise ValueError(f"concatenate: shapes {shapes} differ outside axis {axis}")
        ctx.params = {"axis": axis, "sizes": [s[axis] for s in shapes]}
        packed = _packed_rows(xs) if axis == 0 else None
        return packed if packed is not None else ctx.xp.concatenate(xs, axis=axis)

    @staticmethod
    def backward(ctx, gy):
        axis, sizes = ctx.params["axis"], ctx.params["sizes"]
        out, start = [], 0
        for n in sizes:
            index = [slice(None)] * gy.ndim
            index[axis] = slice(start, start + n)
            out.append(gy[tuple(index)])
            start += n
        return tuple(out)


class Stack(Function):
    """y = [x₀, x₁, …] stacked on a new ``axis``  ⇒  gxᵢ = gy taken at i on that axis."""

    strided_gradients = True

    @staticmethod
    def forward(ctx, *xs, axis=0):
        shapes = {x.shape for x in xs}
        if len(shapes) != 1:
            raise ValueError(f"stack: all shapes must be equal, got {[x.shape for x in xs]}")
        _checks.one_dtype("stack", xs)
        axis = _checks.axis("stack", axis, xs[0].ndim + 1)
        ctx.params = {"axis": axis}
        return ctx.xp.stack(xs, axis=axis)

    @staticmethod
    def backward(ctx, gy):
        axis = ctx.params["axis"]
        return tuple(ctx.xp.take(gy, i, axis=axis) if need else None
                     for i, need in enumerate(ctx.needs_grad))


def _packed_rows(xs):
    """The joined array without a copy when ``xs`` already lie one after another in one
    C-contiguous array that holds exactly them (``StackedHeads`` keeps its heads' weights
    so): a view of that array; else None."""
    base = xs[0].base
    if base is None or not base.flags.c_contiguous or any(
            x.base is not base or not x.flags.c_contiguous for x in xs):
        return None
    at = address(base)
    for x in xs:
        if address(x) != at:
            return None
        at += x.nbytes
    if at != address(base) + base.nbytes:
        return None
    return base.reshape((sum(x.shape[0] for x in xs),) + xs[0].shape[1:])


def _has_array_index(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(hasattr(i, "shape") or isinstance(i, list) for i in items)


class GetItem(Function):
    """y = x[index] (slices, ints, integer or boolean arrays)  ⇒  gx = zeros with gy
    written back at ``index``; with integer arrays repeated indices add up (scatter-add),
    which is what makes an embedding lookup's backward right."""

    strided_gradients = True

    @staticmethod
    def forward(ctx, x, *, index):
        ctx.params = {"index": index, "shape": x.shape, "dtype": x.dtype}
        try:
            return x[index]
        except IndexError as e:
            raise IndexError(f"getitem: {e} (tensor shape {x.shape})") from None

    @staticmethod
    def backward(ctx, gy):
        p = ctx.params
        xp = ctx.xp
        gx = xp.zeros(p["shape"], dtype=p["dtype"])
        if _has_array_index(p["index"]):
            if xp.__name__ == "numpy":
                xp.add.at(gx, p["index"], gy)
            else:
                import cupyx

                cupyx.scatter_add(gx, p["index"], gy)
        else:
            gx[p["index"]] = gy
        return (gx,)
