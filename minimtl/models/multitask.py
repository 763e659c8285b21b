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

The heads output logits; the losses are the fused, stable ``cross_entropy`` and
``binary_cross_entropy_with_logits`` (mathematically Keras's softmax + categorical
cross-entropy and sigmoid + binary cross-entropy, without its probability clipping).
Layouts: on the CPU the towers run channels-last, on the (N, L, C) inputs as they come
(Keras's layout: each conv is one matrix product whose rows are already the output, no
reordering passes), each conv block as one fused conv+bias+ReLU+max-pool kernel; on the
GPU channels-first (N, C, L), the layout of the CUDA kernels, as separate layers.
Either way Flatten orders the features (L, C) as Keras does, so the same parameters give
the same outputs in both layouts (``channels_last`` picks one explicitly).
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .. import nn
from ..data import TASKS
from ..tensor import Tensor

__all__ = ["MultiTaskNet", "Tower", "HEAD_TYPES", "EXTRACTORS", "SHARING", "FUSIONS"]

HEAD_TYPES = ("softmax", "sigmoid", "linear")
EXTRACTORS = ("cnn", "cnn+rnn")
SHARING = ("separate", "shared")
FUSIONS = ("concat", "weighted")
RNN_CELLS = ("lstm", "gru", "rnn")
#: How Flatten orders a tower's features (saved in checkpoints: the heads' weights depend
#: on it). Versions before the channels-last towers flattened channel-major, (C, L).
FLATTEN_ORDER = "(L, C)"


class Tower(nn.Module):
    """Feature extractor for one (N, L, F) sequence -> (N, D) feature vector."""

    def __init__(self, seq_len: int, features: int, *, extractor: str = "cnn",
                 rnn: str = "lstm", rnn_hidden: int = 64, rng: np.random.Generator,
                 dtype=np.float32, backend: str | None = None,
                 channels_last: bool | None = None):
        super().__init__()
        self.channels_last = channels_last
        kw = dict(rng=rng, dtype=dtype, backend=backend)
        self.conv1 = nn.Conv1d(features, 64, 3, activation="relu", **kw)
        self.pool1 = nn.MaxPool1d(2)
        self.conv2 = nn.Conv1d(64, 128, 3, activation="relu", **kw)
        self.pool2 = nn.MaxPool1d(2)
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

    @staticmethod
    def _block(h: Tensor, conv: nn.Conv1d, pool: nn.MaxPool1d) -> Tensor:
        """pool(conv(h)) for channels-last h, through the fused kernel."""
        return F.conv1d_relu_maxpool1d(
            h, conv.weight, conv.bias, stride=conv.stride, padding=conv.padding,
            dilation=conv.dilation, pool_size=pool.kernel_size, pool_stride=pool.stride,
            pool_padding=pool.padding, channels_last=True)

    def layout(self, x: Tensor) -> bool:
        """True when the convolutions run channels-last on ``x``: ``channels_last`` if set,
        else channels-last everywhere except on the cupy backend."""
        return self.channels_last if self.channels_last is not None else x.backend != "cupy"

    def forward(self, x: Tensor) -> Tensor:
        if self.layout(x):
            # (N, L, F) as it comes; each conv block as one fused conv+bias+ReLU+max-pool
            # kernel, the same math as the layers
            h = self._block(x, self.conv1, self.pool1)    # (N, (L-2)//2, 64)
            h = self._block(h, self.conv2, self.pool2)    # (N, Lo, 128)
        else:
            h = x.transpose(0, 2, 1)              # (N, F, L): the layers' channels-first
            h = self.pool1(self.conv1(h))         # (N, 64, (L-2)//2)
            h = self.pool2(self.conv2(h))         # (N, 128, Lo)
            h = h.transpose(0, 2, 1)              # (N, Lo, 128): Keras's order
        if self.extractor == "cnn":
            return F.flatten(h)                   # (N, Lo·128)
        _, last = self.rnn(h)                     # final state of the Lo steps
        return last[0] if isinstance(last, tuple) else last  # (N, H)


class MultiTaskNet(nn.Module):
    """The seed multi-task network. ``forward(inputs)`` takes a dict of (N, L, F) tensors
    keyed by ``user``, ``goods``, ``ads`` and returns a dict of logits (N, outputs).

    Parameters
    ----------
    seq_len, features : int       input shape (N, seq_len, features) of every sequence
    outputs : int                 units of each head (10 in the article)
    extractor : 'cnn' | 'cnn+rnn'
    rnn : 'lstm' | 'gru' | 'rnn'  recurrent cell of 'cnn+rnn'
    rnn_hidden : int
    sharing : 'separate' | 'shared'
    fusion : 'concat' | 'weighted'
    heads : dict task -> 'softmax' | 'sigmoid' | 'linear'
    loss_weights : dict task -> float
    seed, dtype, backend          initialisation and placement
    channels_last : bool | None   the towers' activation layout; None (default): channels-
                                  last except on the cupy backend. It changes speed only.
    """

    def __init__(self, seq_len: int = 64, features: int = 32, outputs: int = 10, *,
                 extractor: str = "cnn", rnn: str = "lstm", rnn_hidden: int = 64,
                 sharing: str = "separate", fusion: str = "concat",
                 heads: dict[str, str] | None = None,
                 loss_weights: dict[str, float] | None = None, seed: int = 0,
                 dtype=np.float32, backend: str | None = None,
                 channels_last: bool | None = None):
        super().__init__()
        heads = dict({"user": "softmax", "goods": "sigmoid", "ads": "softmax"}, **(heads or {}))
        for name, value, allowed in (("extractor", extractor, EXTRACTORS),
                                     ("rnn", rnn, RNN_CELLS), ("sharing", sharing, SHARING),
                                     ("fusion", fusion, FUSIONS)):
            if value not in allowed:
                raise ValueError(f"MultiTaskNet: {name} must be one of {allowed}, "
                                 f"got {value!r}")
        for task, kind in heads.items():
            if task not in TASKS or kind not in HEAD_TYPES:
                raise ValueError(f"MultiTaskNet: head {task!r}: {kind!r} (tasks {TASKS}, "
                                 f"head types {HEAD_TYPES})")
        self.config = dict(seq_len=seq_len, features=features, outputs=outputs,
                           extractor=extractor, rnn=rnn, rnn_hidden=rnn_hidden,
                           sharing=sharing, fusion=fusion, heads=heads,
                           loss_weights=dict({t: 1.0 for t in TASKS}, **(loss_weights or {})),
                           seed=seed, flatten=FLATTEN_ORDER)
        self.heads_kind = heads
        self.loss_weights = self.config["loss_weights"]
        rng = np.random.default_rng(seed)
        kw = dict(rng=rng, dtype=dtype, backend=backend)
        tower_kw = dict(extractor=extractor, rnn=rnn, rnn_hidden=rnn_hidden,
                        channels_last=channels_last, **kw)
        n_towers = 1 if sharing == "shared" else len(TASKS)
        self.towers = nn.ModuleList([Tower(seq_len, features, **tower_kw)
                                     for _ in range(n_towers)])
        feat = self.towers[0].out_features
        head_in = feat * len(TASKS) if fusion == "concat" else feat
        if fusion == "weighted":
            # one row of mixing logits per task; zeros = equal weights at the start
            self.fusion_logits = nn.Parameter(np.zeros((len(TASKS), len(TASKS)), dtype=dtype),
                                              backend=backend)
        self.heads = nn.ModuleList([nn.Linear(head_in, outputs, **kw) for _ in TASKS])

    def features(self, inputs: dict[str, Tensor]) -> list[Tensor]:
        """The three tower outputs f_user, f_goods, f_ads, each (N, D)."""
        towers = list(self.towers)
        return [(towers[0] if len(towers) == 1 else towers[i])(inputs[task])
                for i, task in enumerate(TASKS)]

    def forward(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        feats = self.features(inputs)
        if self.config["fusion"] == "concat":
            z = F.concatenate(feats, axis=1)              # (N, 3·D)
            # the three Dense heads read the same z: one product with their weights
            # stacked (T·outputs, 3·D) is the same math as three, and writes z's gradient
            # once instead of three times plus two sums
            heads = list(self.heads)
            w = F.concatenate([h.weight for h in heads], axis=0)
            b = F.concatenate([h.bias for h in heads], axis=0)
            logits = F.linear(z, w, b)                    # (N, T·outputs)
            out = self.config["outputs"]
            return {t: logits[:, i * out:(i + 1) * out] for i, t in enumerate(TASKS)}
        stacked = F.stack(feats, axis=1)                  # (N, 3, D)
        weights = F.softmax(self.fusion_logits, axis=1)   # (tasks, 3)
        out = {}
        for i, (t, head) in enumerate(zip(TASKS, self.heads)):
            w = weights[i].reshape(1, len(TASKS), 1)
            out[t] = head((stacked * w).sum(axis=1))      # (N, D) -> (N, outputs)
        return out

    def losses(self, logits: dict[str, Tensor], targets: dict) -> dict[str, Tensor]:
        """Per-task mean losses for a batch (targets: labels (N,) or (N, outputs) arrays)."""
        out = {}
        for t in TASKS:
            kind = self.heads_kind[t]
            y = targets[t]
            if kind == "softmax":
                out[t] = F.cross_entropy(logits[t], y)
            elif kind == "sigmoid":
                out[t] = F.binary_cross_entropy_with_logits(logits[t], y)
            else:
                out[t] = F.mse_loss(logits[t], y)
        return out

    def total_loss(self, losses: dict[str, Tensor]) -> Tensor:
        total = None
        for t in TASKS:
            term = losses[t] * float(self.loss_weights[t])
            total = term if total is None else total + term
        return total

    def predict(self, inputs: dict[str, Tensor]) -> dict[str, np.ndarray]:
        """Head outputs as the article's layers give them: softmax probabilities, sigmoid
        probabilities, or raw regression values; NumPy arrays."""
        from ..function import no_grad

        with no_grad():
            logits = self.forward(inputs)
            out = {}
            for t in TASKS:
                kind = self.heads_kind[t]
                if kind == "softmax":
                    out[t] = F.softmax(logits[t]).numpy()
                elif kind == "sigmoid":
                    out[t] = F.sigmoid(logits[t]).numpy()
                else:
                    out[t] = logits[t].numpy()
        return out

    def fusion_weights(self) -> dict[str, dict[str, float]] | None:
        """For ``fusion='weighted'``: per task, the learned weight of each input's features."""
        if self.config["fusion"] != "weighted":
            return None
        a = self.fusion_logits.numpy().astype(np.float64)
        w = np.exp(a - a.max(axis=1, keepdims=True))
        w /= w.sum(axis=1, keepdims=True)
        return {t: {s: float(w[i, j]) for j, s in enumerate(TASKS)} for i, t in enumerate(TASKS)}

    # --- summary --------------------------------------------------------------------
    def summary_rows(self, batch: str = "None") -> list[tuple[str, str, int, str]]:
        """(layer, output shape, parameters, connected to) rows in Keras's order."""
        c = self.config
        L, Fe, out = c["seq_len"], c["features"], c["outputs"]
        towers = list(self.towers)
        rows = []
        for t in TASKS:
            rows.append((f"input_{t} (Input)", f"({batch}, {L}, {Fe})", 0, "-"))
        feat_names = []
        for i, t in enumerate(TASKS):
            tw = towers[0] if len(towers) == 1 else towers[i]
            tag = "shared" if len(towers) == 1 else t
            first_use = len(towers) > 1 or i == 0

            def n(m, counted=first_use):  # a reused (shared) tower adds no parameters
                return m.num_parameters() if counted else 0

            l1 = L - 2
            l2 = l1 // 2
            l3 = l2 - 2
            l4 = l3 // 2
            prev = f"input_{t}"
            seq = [(f"{tag}_conv1 (Conv1D)", f"({batch}, {l1}, 64)", n(tw.conv1)),
                   (f"{tag}_pool1 (MaxPooling1D)", f"({batch}, {l2}, 64)", 0),
                   (f"{tag}_conv2 (Conv1D)", f"({batch}, {l3}, 128)", n(tw.conv2)),
                   (f"{tag}_pool2 (MaxPooling1D)", f"({batch}, {l4}, 128)", 0)]
            if c["extractor"] == "cnn":
                seq.append((f"{tag}_flat (Flatten)", f"({batch}, {128 * l4})", 0))
            else:
                kind = {"lstm": "LSTM", "gru": "GRU", "rnn": "SimpleRNN"}[c["rnn"]]
                seq.append((f"{tag}_rnn ({kind})", f"({batch}, {c['rnn_hidden']})",
                            n(tw.rnn)))
            for name, shape, params in seq:
                label = name if first_use else f"{name} [reused]"
                rows.append((label, shape, params, prev))
                prev = name.split(" ")[0]
            feat_names.append(prev)
        feat = towers[0].out_features
        if c["fusion"] == "concat":
            rows.append(("merged (Concatenate)", f"({batch}, {3 * feat})", 0,
                         ", ".join(feat_names)))
            src = "merged"
        else:
            rows.append(("fusion (WeightedFusion)", f"({batch}, 3, {feat}) per task",
                         self.fusion_logits.size, ", ".join(feat_names)))
            src = "fusion"
        for t, head in zip(TASKS, self.heads):
            act = {"softmax": "softmax", "sigmoid": "sigmoid", "linear": "linear"}[
                self.heads_kind[t]]
            rows.append((f"output_{t} (Dense, {act})", f"({batch}, {out})",
                         head.num_parameters(), src))
        return rows

    def summary(self) -> str:
        """A Keras-like table: layer, output shape, parameters, connected to; with totals."""
        rows = self.summary_rows()
        heads = ("Layer (type)", "Output Shape", "Param #", "Connected to")
        cells = [(a, b, f"{p:,}", d) for a, b, p, d in rows]
        widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(heads)]
        line = lambda r: "  ".join(s.ljust(w) for s, w in zip(r, widths)).rstrip()  # noqa: E731
        rule = "─" * (sum(widths) + 2 * (len(widths) - 1))
        total = self.num_parameters()
        trainable = sum(p.size for p in self.parameters() if p.requires_grad)
        out = [f'Model: "multitask" ({self.config["extractor"]}, {self.config["sharing"]} '
               f'towers, {self.config["fusion"]} fusion)', rule, line(heads), rule]
        out += [line(r) for r in cells]
        out += [rule, f"Total params: {total:,}", f"Trainable params: {trainable:,}",
                f"Non-trainable params: {total - trainable:,}", rule]
        return "\n".join(out)
