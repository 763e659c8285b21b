"""``minimtl.grad``: the gradients of one output with respect to chosen tensors, as new
tensors; no ``.grad`` is read or changed.

One forward, then one ``grad`` per task loss with ``retain_graph=True``, gives every task's
gradient on the shared parameters (task balancing and the conflict diagnostics,
minimtl/train/balancer.py). It walks the graph as ``backward`` does, node by node with
``autograd.walk_node``, with two differences: the complete gradient of an intermediate
tensor is read off when its node is reached (every consumer has been walked by then), and
only the nodes with a path to one of the chosen tensors run their ``backward`` (a gradient
on the last shared layer skips everything below it).
"""

from __future__ import annotations

from .autograd import seed_gradient, topological_order, walk_node
from .backend import xp_of
from .function import Node
from .tensor import Tensor

__all__ = ["grad"]


def grad(output: Tensor, tensors, gradient=None, retain_graph: bool = False,
         allow_unused: bool = False) -> tuple[Tensor | None, ...]:
    """d(output)/d(t) · gradient for each t in ``tensors`` (a Tensor or a sequence of
    them: parameters, inputs or intermediate results), as new Tensors that track no
    gradient. ``gradient`` defaults to 1 for a single-element output. The graph is freed
    unless ``retain_graph``: keep it to take a second output's gradients from the same
    forward (one per task loss; the last call may free it). A tensor the output does not
    depend on raises ``ValueError`` unless ``allow_unused`` (its entry is then None)."""
    tensors = (tensors,) if isinstance(tensors, Tensor) else tuple(tensors)
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"grad: tensors[{i}] is a {type(t).__name__}, not a Tensor")
        if t.backend != output.backend:
            raise ValueError(f"grad: tensors[{i}] lives on {t.backend}, the output on "
                             f"{output.backend}")
    if isinstance(gradient, Tensor):
        gradient = gradient.data
    gradient = seed_gradient("grad", output, gradient, xp_of(output.backend))
    for i, t in enumerate(tensors):
        if not t.requires_grad:
            raise ValueError(f"grad: tensors[{i}] {t.shape} does not require grad")
    # intermediate outputs (id(node), index) -> their gradient, filled in by the walk
    wanted: dict[tuple[int, int], object] = {
        (id(t._node), t._index): None for t in tensors if t._node is not None and t is not output}
    leaf_grads = {} if output._node is None else _walk(output, gradient, tensors, wanted,
                                                       retain_graph)
    out = []
    for i, t in enumerate(tensors):
        if t is output:
            g = gradient
        elif t._node is None:
            g = leaf_grads.get(id(t), (None, None))[1]
        else:
            g = wanted[(id(t._node), t._index)]
        if g is None and not allow_unused:
            raise ValueError(f"grad: tensors[{i}] {t.shape} is not used to compute the "
                             f"output (pass allow_unused=True to get None for it)")
        out.append(None if g is None else Tensor._from_op(g.copy(), output.backend, None, 0))
    return tuple(out)


def _walk(output: Tensor, gradient, tensors, wanted: dict, retain_graph: bool) -> dict:
    """The walk under ``output``, differentiating only the nodes that lead to ``tensors``;
    fills ``wanted`` in and returns {id(leaf): (leaf, gradient)} as ``backward``'s walk."""
    order = topological_order(output._node)
    needed = _leading_to(order, tensors, wanted)
    grads: dict[Node, list] = {output._node: [None] * output._node.n_outputs}
    grads[output._node][output._index] = gradient
    leaf_grads: dict[int, tuple] = {}
    for node in order:
        gys = grads.get(node)
        if gys is not None:
            for i, g in enumerate(gys):
                if (id(node), i) in wanted:
                    wanted[(id(node), i)] = g
        if id(node) in needed:
            walk_node(node, grads, leaf_grads, retain_graph)
        else:
            grads.pop(node, None)
            if not retain_graph:
                node.ctx = None
    if not retain_graph:
        for node in order:
            node.inputs = ()
    return leaf_grads


def _leading_to(order: list[Node], tensors, wanted: dict) -> set[int]:
    """ids of the nodes in ``order`` with a path to one of ``tensors``."""
    leaves = {id(t) for t in tensors if t._node is None}
    needed: set[int] = set()
    for node in reversed(order):                  # inputs before their consumers
        if node.ctx is None:                      # freed: let walk_node say so
            needed.add(id(node))
            continue
        for t in node.inputs:
            if t is None or not hasattr(t, "_node"):
                continue
            if id(t) in leaves or (t._node is not None and (
                    id(t._node) in needed or (id(t._node), t._index) in wanted)):
                needed.add(id(node))
                break
    return needed
