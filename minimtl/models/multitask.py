"""The article's multi-task recommendation network (its Keras listing, section 5.2).

Three behaviour sequences, each (N, seq_len, features) like Keras's inputs::

    user  ─ tower ─┐                      ┌─ user head:  Dense(10), softmax  → interest
    goods ─ tower ─┼─ fusion (concat or ──┼─ goods head: Dense(10), sigmoid  → will-buy
    ads   ─ tower ─┘   weighted)          └─ ads head:   Dense(10), softmax  → ad click

    tower (extractor='cnn', the listing):
        Conv1D(64, 3, relu) → MaxPool1D(2) → Conv1D(128, 3, relu) → MaxPool1D(2) → Flatten
    tower (extractor='cnn+rnn', the worked example of section 4.3):
        the same two conv blocks → LSTM / GRU / tanh-RNN → last hidden state

Options from the article's text:

- ``sharing``: ``separate`` (one tower per input, the listing) or ``shared`` (one tower
  applied to all three inputs: the "shared feature layer" of section 2's diagram).
- ``fusion``: ``concat`` (the listing: every head sees the concatenation) or ``weighted``
  (section 3.2 step 3, "weighted fusion to emphasise the important task's features"): each
  task t learns logits a_t ∈ R³, and its head sees Σ_i softmax(a_t)_i · f_i, the feature
  vectors f_user, f_goods, f_ads mixed by learned weights; ``fusion_weights()`` reports them.
- per-task head type (``softmax``: categorical cross-entropy, ``sigmoid``: binary
  cross-entropy, ``linear``: MSE regression) and loss weights; total loss = Σ_t w_t·L_t as
  Keras sums a multi-output model's losses.

The heads output logits; what each head kind means (its loss, prediction, metrics) is
defined once in ``minimtl.objectives``.

What runs is what ``summary()`` prints: each conv block (Conv1D → ReLU → MaxPool1D of the
listing) is one ``nn.Conv1dReluMaxPool1d`` layer, one fused op; with concat fusion the
three heads are one ``StackedHeads`` layer, one product. The towers' activation layout is
chosen once, when the model is built: channels-last on the CPU, on the (N, L, C) inputs as
they come (Keras's layout: each conv is one matrix product whose rows are already the
output, no reordering passes); channels-first (N, C, L) on the GPU, the layout of the
CUDA kernels, with one transpose in and one out of each tower. Either way Flatten orders
the features (L, C) as Keras does, so the same parameters give the same outputs in both
layouts (``channels_last`` picks one explicitly).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import functional as F
from .. import nn
from ..backend import default_backend, xp_of
from ..data import TASKS
from ..objectives import HEAD_TYPES, Task
from ..tensor import Tensor
from .base import HeadLogits, MultiTaskModel

__all__ = ["MultiTaskNet", "Tower", "StackedHeads", "HEAD_TYPES", "EXTRACTORS", "SHARING",
           "FUSIONS"]

EXTRACTORS = ("cnn", "cnn+rnn")
SHARING = ("separate", "shared")
FUSIONS = ("concat", "weighted")
RNN_CELLS = ("lstm", "gru", "rnn")
#: How Flatten orders a tower's features (saved in checkpoints: the heads' weights depend
#: on it). Versions before the channels-last towers flattened channel-major, (C, L).
FLATTEN_ORDER = "(L, C)"


class Tower(nn.Module):
    """Feature extractor for one (N, L, F) sequence -> (N, D) feature vector.

    ``conv1`` and ``conv2`` are the listing's two conv blocks, each Conv1D(3, relu) →
    MaxPool1D(2) as one fused layer (named for its conv: it holds the conv's parameters).
    ``channels_last`` (None: channels-last unless the backend is cupy) is fixed here.
    """

    def __init__(self, seq_len: int, features: int, *, extractor: str = "cnn",
                 rnn: str = "lstm", rnn_hidden: int = 64, rng: np.random.Generator,
                 dtype=np.float32, backend: str | None = None,
                 channels_last: bool | None = None):
        super().__init__()
        if channels_last is None:
            channels_last = (backend or default_backend()) != "cupy"
        self.channels_last = bool(channels_last)
        kw = dict(rng=rng, dtype=dtype, backend=backend)
        block = dict(pool_size=2, channels_last=self.channels_last, **kw)
        self.conv1 = nn.Conv1dReluMaxPool1d(features, 64, 3, **block)
        self.conv2 = nn.Conv1dReluMaxPool1d(64, 128, 3, **block)
        self.extractor = extractor
        length = ((seq_len - 2) // 2 - 2) // 2
        if length < 1:
            raise ValueError(f"Tower: seq_len {seq_len} is too short for two conv(3)+pool(2) "
                             f"blocks (needs at least 10)")
        self.out_length = length
        if extractor == "cnn":
            self.out_features = 128 * length
        else:
            cls = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[rnn]
            self.rnn = cls(128, rnn_hidden, **kw)
            self.out_features = rnn_hidden

    def forward(self, x: Tensor) -> Tensor:
        h = x if self.channels_last else x.transpose(0, 2, 1)   # (N, L, F) or (N, F, L)
        h = self.conv2(self.conv1(h))        # (N, Lo, 128) or (N, 128, Lo)
        if not self.channels_last:
            h = h.transpose(0, 2, 1)         # (N, Lo, 128): Keras's order
        if self.extractor == "cnn":
            return F.flatten(h)              # (N, Lo·128)
        _, last = self.rnn(h)                # final state of the Lo steps
        return last[0] if isinstance(last, tuple) else last  # (N, H)


class StackedHeads(nn.ModuleList):
    """Dense heads that read the same input z, computed as one product: their weights
    stacked (T·outputs, D) times z is the same math as T products, and backward writes z's
    gradient once instead of T times plus T − 1 sums. Items are ordinary ``nn.Linear``
    heads (parameters ``<name>.0.weight``, ...); ``forward(z)`` returns their outputs.

    The heads' weights (and biases) are kept one after another in one array, each head's
    parameter a view of its rows, so stacking them each step is a view, not a copy (on a
    GPU, six copy kernels fewer a step); a model moved with ``to`` stacks them by copying
    until rebuilt."""

    def __init__(self, heads) -> None:
        super().__init__(heads)
        for name in ("weight", "bias"):
            params = [getattr(h, name) for h in self]
            stacked = xp_of(params[0].backend).concatenate([p.data for p in params], axis=0)
            start = 0
            for p in params:
                p.data = stacked[start:start + p.shape[0]]
                start += p.shape[0]

    def forward(self, z: Tensor) -> list[Tensor]:
        return list(self.logits(z, range(len(self))).values())

    def logits(self, z: Tensor, names) -> HeadLogits:
        """The heads' outputs keyed by ``names``, as ``HeadLogits``: column slices of the
        one product (N, T·outputs), which ``HeadLogits.stacked`` keeps for the losses."""
        heads = list(self)
        w = F.concatenate([h.weight for h in heads], axis=0)   # (T·outputs, D)
        b = F.concatenate([h.bias for h in heads], axis=0)
        y = F.linear(z, w, b)                                  # (N, T·outputs)
        return HeadLogits(names, y, np.cumsum([0] + [h.out_features for h in heads]))


#: the article's three tasks: its head types and 10 outputs each
ARTICLE_HEADS = {"user": "softmax", "goods": "sigmoid", "ads": "softmax"}
#: the head type that names each kind in the config and the summary
_HEAD_NAME = {"multiclass": "softmax", "multilabel": "sigmoid", "regression": "linear",
              "binary": "binary"}


class MultiTaskNet(MultiTaskModel):
    """The article's multi-task network. ``forward(inputs)`` takes a dict of (N, L, F)
    tensors keyed by the input names (``user``, ``goods``, ``ads``) and returns a dict of
    logits (N, outputs) keyed by the task names (the same three in the article).

    Parameters
    ----------
    seq_len, features : int       input shape (N, seq_len, features) of every sequence
    outputs : int                 units of each article head (10 in the article)
    extractor : 'cnn' | 'cnn+rnn'
    rnn : 'lstm' | 'gru' | 'rnn'  recurrent cell of 'cnn+rnn'
    rnn_hidden : int
    sharing : 'separate' | 'shared'
    fusion : 'concat' | 'weighted'
    heads : dict task -> 'softmax' | 'sigmoid' | 'linear'   the article's heads' types
    loss_weights : dict task -> float
    tasks : sequence of ``Task`` (or (name, kind, outputs[, weight]) tuples), optional
                                  any tasks instead of the article's three (then
                                  ``heads``/``outputs``/``loss_weights`` are not used)
    inputs : sequence of str      the sequence inputs, one tower each (or one shared)
    seed, dtype, backend          initialisation and placement
    channels_last : bool | None   the towers' activation layout; None (default): channels-
                                  last except on the cupy backend. It changes speed only.
    """

    def __init__(self, seq_len: int = 64, features: int = 32, outputs: int = 10, *,
                 extractor: str = "cnn", rnn: str = "lstm", rnn_hidden: int = 64,
                 sharing: str = "separate", fusion: str = "concat",
                 heads: dict[str, str] | None = None,
                 loss_weights: dict[str, float] | None = None,
                 tasks=None, inputs: Sequence[str] = TASKS, seed: int = 0,
                 dtype=np.float32, backend: str | None = None,
                 channels_last: bool | None = None):
        super().__init__()
        for name, value, allowed in (("extractor", extractor, EXTRACTORS),
                                     ("rnn", rnn, RNN_CELLS), ("sharing", sharing, SHARING),
                                     ("fusion", fusion, FUSIONS)):
            if value not in allowed:
                raise ValueError(f"MultiTaskNet: {name} must be one of {allowed}, "
                                 f"got {value!r}")
        inputs = tuple(inputs)
        if not inputs or len(set(inputs)) != len(inputs):
            raise ValueError(f"MultiTaskNet: inputs must be distinct names, got {inputs}")
        article = tasks is None
        if article:
            heads = dict(ARTICLE_HEADS, **(heads or {}))
            for task, kind in heads.items():
                if task not in TASKS or kind not in HEAD_TYPES:
                    raise ValueError(f"MultiTaskNet: head {task!r}: {kind!r} (tasks {TASKS}, "
                                     f"head types {HEAD_TYPES})")
            weights = dict({t: 1.0 for t in TASKS}, **(loss_weights or {}))
            tasks = [Task(t, heads[t], outputs, weights[t]) for t in TASKS]
        elif heads or loss_weights:
            raise ValueError("MultiTaskNet: give either tasks, or the article's heads and "
                             "loss_weights, not both")
        self._set_tasks(tasks, inputs)
        names = self.task_names
        self.config = dict(seq_len=seq_len, features=features, outputs=outputs,
                           extractor=extractor, rnn=rnn, rnn_hidden=rnn_hidden,
                           sharing=sharing, fusion=fusion,
                           heads={t.name: _HEAD_NAME[t.kind] for t in self.tasks},
                           loss_weights=dict(self.loss_weights), seed=seed,
                           flatten=FLATTEN_ORDER)
        if not article:
            self.config["outputs"] = {t.name: t.outputs for t in self.tasks}
            self.config["tasks"] = [t.to_json() for t in self.tasks]
        if inputs != TASKS:
            self.config["inputs"] = list(inputs)
        #: each task's head type by its article name (softmax, sigmoid, linear, binary)
        self.heads_kind = self.config["heads"]
        rng = np.random.default_rng(seed)
        kw = dict(rng=rng, dtype=dtype, backend=backend)
        tower_kw = dict(extractor=extractor, rnn=rnn, rnn_hidden=rnn_hidden,
                        channels_last=channels_last, **kw)
        n_towers = 1 if sharing == "shared" else len(inputs)
        self.towers = nn.ModuleList([Tower(seq_len, features, **tower_kw)
                                     for _ in range(n_towers)])
        feat = self.towers[0].out_features
        head_in = feat * len(inputs) if fusion == "concat" else feat
        if fusion == "weighted":
            # one row of mixing logits per task; zeros = equal weights at the start
            self.fusion_logits = nn.Parameter(np.zeros((len(names), len(inputs)), dtype=dtype),
                                              backend=backend)
        dense = [nn.Linear(head_in, t.outputs, **kw) for t in self.tasks]
        # with concat fusion every head reads the same z: one product for all of them
        self.heads = StackedHeads(dense) if fusion == "concat" else nn.ModuleList(dense)

    def features(self, inputs: dict[str, Tensor]) -> list[Tensor]:
        """The tower outputs, one per input (f_user, f_goods, f_ads), each (N, D)."""
        towers = list(self.towers)
        return [(towers[0] if len(towers) == 1 else towers[i])(inputs[name])
                for i, name in enumerate(self.input_names)]

    def forward(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        feats = self.features(inputs)
        names = self.task_names
        if self.config["fusion"] == "concat":
            z = F.concatenate(feats, axis=1)              # (N, I·D)
            return self.heads.logits(z, names)            # each (N, outputs_t)
        n_in = len(self.input_names)
        stacked = F.stack(feats, axis=1)                  # (N, I, D)
        weights = F.softmax(self.fusion_logits, axis=1)   # (tasks, I)
        out = {}
        for i, (t, head) in enumerate(zip(names, self.heads)):
            w = weights[i].reshape(1, n_in, 1)
            out[t] = head((stacked * w).sum(axis=1))      # (N, D) -> (N, outputs_t)
        return out

    def output_layers(self) -> dict:
        return dict(zip(self.task_names, self.heads))

    def fusion_weights(self) -> dict[str, dict[str, float]] | None:
        """For ``fusion='weighted'``: per task, the learned weight of each input's features."""
        if self.config["fusion"] != "weighted":
            return None
        a = self.fusion_logits.numpy().astype(np.float64)
        w = np.exp(a - a.max(axis=1, keepdims=True))
        w /= w.sum(axis=1, keepdims=True)
        return {t: {s: float(w[i, j]) for j, s in enumerate(self.input_names)}
                for i, t in enumerate(self.task_names)}

    # --- summary --------------------------------------------------------------------
    def summary_rows(self, batch: str = "None") -> list[tuple[str, str, int, str, str]]:
        """(layer, output shape, parameters, connected to, op) rows in Keras's order, one
        per layer that ``forward`` calls (a shared tower once per input it reads); ``op``
        names the op the layer records in the graph ("" for the inputs)."""
        c = self.config
        L, Fe = c["seq_len"], c["features"]
        towers = list(self.towers)
        rows = []
        for name in self.input_names:
            rows.append((f"input_{name} (Input)", f"({batch}, {L}, {Fe})", 0, "-", ""))
        feat_names = []
        for i, name in enumerate(self.input_names):
            tw = towers[0] if len(towers) == 1 else towers[i]
            tag = "shared" if len(towers) == 1 else name
            first_use = len(towers) > 1 or i == 0

            def n(m, counted=first_use):  # a reused (shared) tower adds no parameters
                return m.num_parameters() if counted else 0

            l2 = (L - 2) // 2
            l4 = (l2 - 2) // 2
            prev = f"input_{name}"
            block = "Conv1D+ReLU+MaxPool1D"
            seq = [(f"{tag}_conv1 ({block})", f"({batch}, {l2}, 64)", n(tw.conv1),
                    "conv1d_relu_maxpool"),
                   (f"{tag}_conv2 ({block})", f"({batch}, {l4}, 128)", n(tw.conv2),
                    "conv1d_relu_maxpool")]
            if c["extractor"] == "cnn":
                seq.append((f"{tag}_flat (Flatten)", f"({batch}, {128 * l4})", 0, "reshape"))
            else:
                kind = {"lstm": "LSTM", "gru": "GRU", "rnn": "SimpleRNN"}[c["rnn"]]
                seq.append((f"{tag}_rnn ({kind})", f"({batch}, {c['rnn_hidden']})",
                            n(tw.rnn), c["rnn"]))
            for layer, shape, params, op in seq:
                label = layer if first_use else f"{layer} [reused]"
                rows.append((label, shape, params, prev, op))
                prev = layer.split(" ")[0]
            feat_names.append(prev)
        feat = towers[0].out_features
        n_in = len(self.input_names)
        if c["fusion"] == "concat":
            rows.append(("merged (Concatenate)", f"({batch}, {n_in * feat})", 0,
                         ", ".join(feat_names), "concat"))
            heads = list(self.heads)
            width = sum(t.outputs for t in self.tasks)
            rows.append((f"heads (StackedHeads: {len(heads)} Dense, one product)",
                         f"({batch}, {width})",
                         sum(h.num_parameters() for h in heads), "merged", "linear"))
            lo = 0
            for t in self.tasks:
                rows.append((f"output_{t.name} (columns {lo}:{lo + t.outputs}, "
                             f"{t.objective.activation})", f"({batch}, {t.outputs})", 0,
                             "heads", "getitem"))
                lo += t.outputs
            return rows
        rows.append(("fusion (WeightedFusion)", f"({batch}, {n_in}, {feat}) per task",
                     self.fusion_logits.size, ", ".join(feat_names), "stack"))
        for t, head in zip(self.tasks, self.heads):
            rows.append((f"output_{t.name} (Dense, {t.objective.activation})",
                         f"({batch}, {t.outputs})", head.num_parameters(), "fusion", "linear"))
        return rows

    def summary_title(self) -> str:
        return (f'Model: "multitask" ({self.config["extractor"]}, {self.config["sharing"]} '
                f'towers, {self.config["fusion"]} fusion)')
