"""``minimtl.viz.graph``: the DOT text of a recorded graph has one box per recorded op,
one ellipse per leaf (parameters by their module path), one edge per tensor an op read;
``render`` says what to install when it cannot draw."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

import minimtl as mt
from minimtl import functional as F
from minimtl import nn, viz
from minimtl.data import TASKS
from minimtl.models import MultiTaskNet


def _boxes(dot: str) -> list[str]:
    return re.findall(r'n\d+ \[label="([a-z_0-9]+)\\n', dot)


def test_a_small_graph_has_its_ops_leaves_and_edges():
    layer = nn.Linear(3, 2, backend="numpy", dtype=np.float64)
    x = mt.tensor(np.ones((4, 3)), backend="numpy")
    y = F.relu(layer(x)).sum()
    dot = viz.graph(y, model=layer)
    assert dot.startswith("digraph minimtl {") and dot.rstrip().endswith("}")
    assert sorted(_boxes(dot)) == ["linear", "relu", "sum"]
    assert '"weight\\n(2, 3)"' in dot and '"bias\\n(2,)"' in dot
    assert '"input (4, 3)\\nfloat64, numpy"' in dot
    # linear reads x, weight, bias; relu reads linear's output; sum reads relu's
    assert len(re.findall(r" -> ", dot)) == 5
    assert "linear\\n(4, 2)\\nfloat64, numpy" in dot


def test_the_article_network_shows_its_fused_blocks_and_named_parameters():
    model = MultiTaskNet(24, 5, backend="numpy")
    rng = np.random.default_rng(0)
    x = {t: mt.tensor(rng.standard_normal((2, 24, 5)).astype(np.float32), backend="numpy")
         for t in TASKS}
    logits = model(x)
    dot = viz.graph(*logits.values(), model=model)
    assert _boxes(dot).count("conv1d_relu_maxpool") == 6
    assert _boxes(dot).count("linear") == 1
    for name, _ in model.named_parameters():
        assert f'"{name}\\n' in dot, name


def test_a_multi_output_op_labels_the_output_an_edge_carries():
    lstm = nn.LSTM(3, 4, backend="numpy", dtype=np.float64)
    hs, (h, c) = lstm(mt.tensor(np.ones((2, 5, 3)), backend="numpy"))
    dot = viz.graph((h * c).sum(), model=lstm)
    assert re.search(r'-> n\d+ \[label="1"\]', dot) or re.search(r'\[label="2"\]', dot)


def test_render_says_what_is_missing(tmp_path):
    dot = viz.graph(nn.Linear(2, 1, backend="numpy")(mt.tensor(np.ones((1, 2), np.float32),
                                                               backend="numpy")))
    with pytest.raises(viz.RenderError, match="suffix"):
        viz.render(dot, tmp_path / "g.txt")
    try:
        import graphviz  # noqa: F401
        has_package = True
    except ImportError:
        has_package = False
    if has_package and shutil.which("dot"):
        out = viz.render(dot, tmp_path / "g.svg")
        assert open(out).read().lstrip().startswith(("<?xml", "<svg"))
    else:
        with pytest.raises(viz.RenderError, match="graphviz|dot"):
            viz.render(dot, tmp_path / "g.svg")
