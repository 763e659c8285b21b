"""The backward walk: from one output back to every leaf, each op's ``backward`` once.

``backward`` sorts the graph topologically with an explicit stack (no recursion, so a
2,000-step unrolled recurrence is fine), then walks it once in reverse. Before a Function's
``backward`` it makes each incoming gradient C-contiguous (ops and kernels may rely on
it; a gradient nobody sent stays None), except for the view ops that declare
``strided_gradients``; after it, it un-broadcasts each returned gradient
to its input's shape, checks shape and dtype, and accumulates it, but only for inputs whose
``ctx.needs_grad`` is true (the rule in function.py). Leaf gradients are applied only after
the whole walk succeeded, so an error never leaves a gradient half-computed. The graph is
freed as it is walked unless ``retain_graph=True``.

``backward(..., on_leaf=f)`` calls ``f(leaf, g)`` as soon as a leaf's gradient from this
walk is complete: right after the last node that uses the leaf (in walk order) was
walked, while the rest of the walk is still to come. Data-parallel training starts
all-reducing the gradients of the layers near the output this way while the layers near
the input are still being differentiated (``minimtl/distributed/overlap.py``).

``minimtl.grad`` (minimtl/gradients.py) walks the same graph node by node with
``walk_node``, but returns the gradients of chosen tensors instead of accumulating ``.grad``.
"""

from __future__ import annotations

import numpy as np

import kernels

from .backend import address
from .function import Node

__all__ = ["backward", "seed_gradient", "walk_node", "topological_order", "unbroadcast"]


def backward(root, gradient, xp, retain_graph: bool = False, on_leaf=None) -> None:
    """Accumulate d(root)/d(leaf) · gradient into every leaf's ``.grad``.

    root: a Tensor that requires grad; gradient: None (1 for a single element) or an
    array of root's shape; xp: root's array module; on_leaf: None, or called as
    ``on_leaf(leaf, g)`` once per leaf that requires grad, with this walk's complete
    gradient ``g`` (None if no gradient reached it), during the walk (read ``g``; it
    becomes ``.grad`` after the walk).
    """
    gradient = seed_gradient("backward", root, gradient, xp)
    if root._node is None:  # a leaf: d(root)/d(root) = gradient
        root.grad = gradient.copy() if root.grad is None else root.grad + gradient
        return
    leaf_grads = _walk(root, gradient, retain_graph, on_leaf)
    taken = [_span(gradient)]
    for t, g in leaf_grads.values():
        if t.grad is not None:
            t.grad = t.grad + g
            continue
        # a backward may hand one array to several inputs (Add returns gy twice), a
        # broadcast view, or a view of the caller's gradient: copy those, so that every
        # .grad is C-contiguous and writable and no two .grad overlap each other or the
        # caller's array; fresh arrays, and disjoint views of one fresh array (the
        # stacked heads' weight gradient, a concatenation's pieces), are kept as they are
        span = _span(g)
        if not g.flags.c_contiguous or any(lo < span[1] and span[0] < hi for lo, hi in taken):
            g = g.copy()
            span = _span(g)
        taken.append(span)
        t.grad = g


def _span(a) -> tuple[int, int]:
    """The bytes [lo, hi) that array ``a`` (NumPy or CuPy, any strides) can touch; none
    for a NumPy scalar (a value, not a view of anything)."""
    if isinstance(a, np.generic):
        return 0, 0
    lo = hi = address(a)
    for n, s in zip(a.shape, a.strides):
        if n == 0:
            return lo, lo
        lo, hi = lo + min(0, s * (n - 1)), hi + max(0, s * (n - 1))
    return lo, hi + a.itemsize


def seed_gradient(name: str, root, gradient, xp):
    """The gradient the walk starts from: ``gradient`` checked, or 1 for a scalar root."""
    if not root.requires_grad:
        raise RuntimeError(f"{name}: this tensor does not require grad (no graph)")
    if gradient is None:
        if root.size != 1:
            raise RuntimeError(
                f"{name}: gradient must be given for a non-scalar output {root.shape}")
        return xp.ones(root.data.shape, dtype=root.data.dtype)
    gradient = xp.asarray(gradient)
    if gradient.shape != root.data.shape:
        raise ValueError(
            f"{name}: gradient shape {gradient.shape} != tensor shape {root.shape}")
    return gradient.astype(root.data.dtype, copy=False)


def _walk(root, gradient, retain_graph: bool, on_leaf=None) -> dict[int, tuple]:
    """Walk the graph under ``root`` once; returns {id(leaf): (leaf, gradient)};
    ``on_leaf`` as in ``backward``."""
    order = topological_order(root._node)
    grads: dict[Node, list] = {root._node: [None] * root._node.n_outputs}
    grads[root._node][root._index] = gradient
    leaf_grads: dict[int, tuple] = {}
    complete = _last_uses(order) if on_leaf is not None else {}
    for k, node in enumerate(order):
        walk_node(node, grads, leaf_grads, retain_graph)
        for t in complete.get(k, ()):       # leaves whose last user was this node
            g = leaf_grads.get(id(t))
            on_leaf(t, None if g is None else g[1])
    if not retain_graph:
        for node in order:
            node.inputs = ()
    return leaf_grads


def _last_uses(order: list[Node]) -> dict[int, list]:
    """{k: the leaves (requiring grad) whose last user in walk order is ``order[k]``}."""
    last: dict[int, tuple] = {}
    for k, node in enumerate(order):
        if node.ctx is None:
            continue                              # freed: the walk says so
        for t, need in zip(node.inputs, node.ctx.needs_grad):
            if need and getattr(t, "_node", 0) is None:
                last[id(t)] = (k, t)
    complete: dict[int, list] = {}
    for k, t in last.values():
        complete.setdefault(k, []).append(t)
    return complete


def walk_node(node: Node, grads: dict, leaf_grads: dict, retain_graph: bool) -> None:
    """One node of the walk: its ``backward`` on the gradients that reached it (popped from
    ``grads``; none: nothing to do), the results accumulated into its inputs' slots
    (``grads``) or ``leaf_grads``."""
    gys = grads.pop(node, None)
    if gys is None:
        return
    ctx = node.ctx
    if ctx is None:
        raise RuntimeError(
            f"backward: the graph through {node.fn.__name__} was already freed; "
            f"pass retain_graph=True to the first backward to walk it twice")
    for i, g in enumerate(gys):
        if g is not None and not g.flags.c_contiguous and not node.fn.strided_gradients:
            gys[i] = ctx.xp.ascontiguousarray(g)
    with kernels.guard(ctx.backend):
        gxs = node.fn.backward(ctx, *gys)
    if not isinstance(gxs, tuple):
        gxs = (gxs,)
    if len(gxs) != len(node.inputs):
        raise RuntimeError(f"{node.fn.__name__}.backward returned {len(gxs)} gradients "
                           f"for {len(node.inputs)} inputs")
    for t, g, need in zip(node.inputs, gxs, ctx.needs_grad):
        if g is None or not need:
            continue
        g = unbroadcast(g, t.data.shape)
        if g.shape != t.data.shape or g.dtype != t.data.dtype:
            raise RuntimeError(
                f"{node.fn.__name__}.backward: gradient {g.shape} {g.dtype} does not "
                f"match its input {t.data.shape} {t.data.dtype}")
        if t._node is None:
            prev = leaf_grads.get(id(t))
            leaf_grads[id(t)] = (t, g if prev is None else prev[1] + g)
        else:
            slots = grads.setdefault(t._node, [None] * t._node.n_outputs)
            prev = slots[t._index]
            slots[t._index] = g if prev is None else prev + g
    if not retain_graph:
        node.ctx = None


def topological_order(root: Node) -> list[Node]:
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


def unbroadcast(g, shape: tuple[int, ...]):
    """Sum ``g`` over the axes that broadcasting added or stretched, giving ``shape``."""
    if g.shape == shape:
        return g
    extra = g.ndim - len(shape)
    if extra > 0:
        g = g.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if stretched:
        g = g.sum(axis=stretched, keepdims=True)
    return g
