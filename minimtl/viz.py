"""The autograd graph as a picture: Graphviz DOT text of what a forward recorded.

    from minimtl import viz
    loss = model.total_loss(model.losses(model(x), y))
    dot = viz.graph(loss, model=model)     # DOT text: one box per recorded op
    viz.render(dot, "graph.svg")           # needs the graphviz package and `dot`

Each op node shows the op, its output shapes, dtype and backend; each leaf shows a
parameter by its module path (``towers.0.conv1.weight``) or an input by its shape. Edges
run from what an op read to the op, in the direction of the forward pass; an edge from
a multi-output op names the output it carries. Only what was recorded appears: ops under
``no_grad`` or on tensors that need no gradient are not in the graph.
"""

from __future__ import annotations

import os
import shutil

from .tensor import Tensor

__all__ = ["graph", "render", "RenderError"]


class RenderError(RuntimeError):
    """The DOT text cannot be drawn here (no graphviz package or no ``dot`` program)."""


def _shape(t: Tensor) -> str:
    return str(tuple(int(d) for d in t.shape))


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"' + escaped + '"'


def graph(*outputs: Tensor, model=None, title: str | None = None) -> str:
    """DOT text of the graph that produced ``outputs``.

    Parameters
    ----------
    outputs : Tensor        the ends of the graph (a loss, a model's logits)
    model : Module, optional   names its parameters by their module path
    title : str, optional

    Returns
    -------
    str   a ``digraph`` in the DOT language
    """
    names = {id(p): n for n, p in model.named_parameters()} if model is not None else {}
    lines = ["digraph minimtl {", '  rankdir="TB";', '  node [fontname="Helvetica", '
             'fontsize=10];']
    if title:
        lines.append(f"  label={_quote(title)}; labelloc=t;")
    node_ids: dict[int, str] = {}
    leaf_ids: dict[int, str] = {}
    outs_of: dict[int, list[Tensor]] = {}

    def leaf(t: Tensor) -> str:
        if id(t) not in leaf_ids:
            key = f"t{len(leaf_ids)}"
            leaf_ids[id(t)] = key
            if id(t) in names:
                label = f"{names[id(t)]}\n{_shape(t)}"
                style = 'shape=ellipse, style=filled, fillcolor="#e8f0fe"'
            else:
                label = f"input {_shape(t)}\n{t.dtype}, {t.backend}"
                style = 'shape=ellipse, style=filled, fillcolor="#f1f3f4"'
            lines.append(f"  {key} [label={_quote(label)}, {style}];")
        return leaf_ids[id(t)]

    # iterative walk from the outputs; each node once
    stack = [t._node for t in outputs if isinstance(t, Tensor) and t._node is not None]
    order = []
    while stack:
        node = stack.pop()
        if id(node) in node_ids:
            continue
        node_ids[id(node)] = f"n{len(node_ids)}"
        order.append(node)
        for t in node.inputs:
            if isinstance(t, Tensor) and t._node is not None:
                outs_of.setdefault(id(t._node), []).append(t)
                stack.append(t._node)
    for t in outputs:
        if isinstance(t, Tensor) and t._node is not None:
            outs_of.setdefault(id(t._node), []).append(t)
    for node in order:
        produced = {t._index: t for t in outs_of.get(id(node), [])}
        shapes = ", ".join(_shape(produced[i]) for i in sorted(produced)) or "?"
        some = next(iter(produced.values()), None)
        where = f"\n{some.dtype}, {some.backend}" if some is not None else ""
        label = f"{node.fn.op_name()}\n{shapes}{where}"
        lines.append(f"  {node_ids[id(node)]} [label={_quote(label)}, shape=box, "
                     f'style="rounded,filled", fillcolor="#fef7e0"];')
    for node in order:
        for t in node.inputs:
            if not isinstance(t, Tensor):
                continue
            if t._node is None:
                src, attr = leaf(t), ""
            else:
                src = node_ids[id(t._node)]
                attr = f" [label={_quote(str(t._index))}]" if t._node.n_outputs > 1 else ""
            lines.append(f"  {src} -> {node_ids[id(node)]}{attr};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(dot: str, path: str | os.PathLike) -> str:
    """Draw DOT text to ``path`` (its suffix, .svg or .png, picks the format) with the
    ``graphviz`` package (extra ``graph``) and Graphviz's ``dot`` program; returns the path.
    Raises ``RenderError`` saying what to install when either is missing."""
    path = os.fspath(path)
    fmt = os.path.splitext(path)[1].lstrip(".").lower()
    if fmt not in ("svg", "png", "pdf"):
        raise RenderError(f"render: {path!r}: the suffix must be .svg, .png or .pdf")
    try:
        import graphviz
    except ImportError:
        raise RenderError("render: the graphviz package is not installed (pip install "
                          "'minimtl[graph]'); the DOT text renders anywhere Graphviz "
                          "runs") from None
    if shutil.which("dot") is None:
        raise RenderError("render: Graphviz's `dot` program is not on PATH (install "
                          "Graphviz, e.g. apt install graphviz); write the DOT text and "
                          "draw it elsewhere")
    stem = os.path.splitext(path)[0]
    out = graphviz.Source(dot).render(stem, format=fmt, cleanup=True)
    return out
