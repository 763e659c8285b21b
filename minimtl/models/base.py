"""What every multi-task model shares: its inputs and tasks, each task's objective, the
losses, prediction, and the Keras-like summary table.

A model here takes a dict of named input tensors (arrays of integer codes for categorical
inputs) and returns a dict task name -> logits (N, outputs). ``fit`` and ``evaluate`` use
only what this class defines, so any subclass trains on any data set with those names.

Where the heads are one product (``StackedHeads``: ``forward`` returns ``HeadLogits``,
slices of one (N, W) tensor) and the targets were packed by ``pack_targets`` (as
``minimtl.train.to_tensors`` does), ``losses`` computes every task's loss and the weighted
total with one ``head_losses`` op on the stacked logits, and ``total_loss`` returns that
total: one kernel forward and one backward instead of a chain per task. The per-task
values are the same means as the per-task losses (to rounding); a per-task backward (a
balancer's) goes through the same op. Any other model or target form takes the per-task
path.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .. import nn, ops
from ..backend import xp_of
from ..objectives import Objective, Task
from ..targets import TaskTargets
from ..tensor import Tensor

__all__ = ["MultiTaskModel", "HeadLogits", "TaskLosses", "as_tasks", "render_summary"]


class HeadLogits(dict):
    """Task name -> logits (N, outputs) that are column slices of one ``stacked`` (N, W)
    tensor, in task order (what ``StackedHeads`` computes)."""

    def __init__(self, names, stacked: Tensor, edges) -> None:
        self.stacked = stacked
        self.widths = tuple(int(hi - lo) for lo, hi in zip(edges[:-1], edges[1:]))
        super().__init__((name, stacked[:, int(lo):int(hi)])
                         for name, lo, hi in zip(names, edges[:-1], edges[1:]))
        self.slices = tuple(self.values())


class TaskLosses(dict):
    """Task name -> mean loss (0-d), and ``total`` = Σ_t w_t·L_t computed with them by the
    fused op (``total_loss`` returns it while the dict holds the op's own outputs)."""

    def __init__(self, items, total: Tensor) -> None:
        super().__init__(items)
        self.total = total
        self.parts = tuple(self.values())


def as_tasks(tasks) -> tuple[Task, ...]:
    """Tasks from ``Task`` objects, (name, kind, outputs[, weight]) tuples, or a dict
    name -> (kind, outputs); names must not repeat."""
    if isinstance(tasks, dict):
        tasks = [(name, *spec) for name, spec in tasks.items()]
    out = tuple(t if isinstance(t, Task) else Task(*t) for t in tasks)
    if not out:
        raise ValueError("a multi-task model needs at least one task")
    names = [t.name for t in out]
    if len(set(names)) != len(names):
        raise ValueError(f"task names repeat: {', '.join(names)}")
    return out


def render_summary(title: str, rows, total: int, trainable: int) -> str:
    """The Keras-like table of ``summary_rows`` (layer, output shape, params, connected
    to, op), with totals."""
    heads = ("Layer (type)", "Output Shape", "Param #", "Connected to")
    cells = [(a, b, f"{p:,}", d) for a, b, p, d, *_ in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(heads)]
    line = lambda r: "  ".join(s.ljust(w) for s, w in zip(r, widths)).rstrip()  # noqa: E731
    rule = "─" * (sum(widths) + 2 * (len(widths) - 1))
    out = [title, rule, line(heads), rule]
    out += [line(r) for r in cells]
    out += [rule, f"Total params: {total:,}", f"Trainable params: {trainable:,}",
            f"Non-trainable params: {total - trainable:,}", rule]
    return "\n".join(out)


class MultiTaskModel(nn.Module):
    """Base class: subclasses call ``_set_tasks`` in ``__init__``, define ``forward``
    (inputs -> logits per task), ``summary_rows`` and ``summary_title``.

    Attributes
    ----------
    tasks : tuple[Task, ...]        in head order
    input_names : tuple[str, ...]   the keys ``forward`` reads
    categorical_inputs : tuple[str, ...]   those given as integer codes, not floats
    """

    tasks: tuple[Task, ...] = ()
    input_names: tuple[str, ...] = ()
    categorical_inputs: tuple[str, ...] = ()

    def _set_tasks(self, tasks: Sequence[Task], input_names: Sequence[str],
                   categorical: Sequence[str] = ()) -> None:
        self.tasks = as_tasks(tasks)
        self.input_names = tuple(input_names)
        self.categorical_inputs = tuple(categorical)

    @property
    def task_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tasks)

    @property
    def objectives(self) -> dict[str, Objective]:
        return {t.name: t.objective for t in self.tasks}

    @property
    def loss_weights(self) -> dict[str, float]:
        return {t.name: t.weight for t in self.tasks}

    def losses(self, logits: dict[str, Tensor], targets: dict) -> dict[str, Tensor]:
        """Per-task mean losses of a batch, each from its task's objective (targets as
        ``minimtl.train.to_tensors`` makes them); all at once with the fused op where the
        logits are ``HeadLogits`` and the targets packed (module doc)."""
        fused = self._fused_losses(logits, targets)
        if fused is not None:
            return fused
        checked = isinstance(targets, TaskTargets) and targets.checked and \
            targets.unchanged(self.tasks)
        return {t.name: t.objective.loss(logits[t.name], targets[t.name], checked=checked)
                for t in self.tasks}

    def _fused_losses(self, logits, targets) -> TaskLosses | None:
        names = self.task_names
        if not (isinstance(logits, HeadLogits) and isinstance(targets, TaskTargets)
                and targets.packed is not None and targets.unchanged(self.tasks)
                and tuple(logits) == names
                and logits.widths == tuple(t.outputs for t in self.tasks)
                and all(logits[n] is s for n, s in zip(names, logits.slices))):
            return None
        total, *parts = ops.HeadLosses.apply(logits.stacked, *targets.packed)
        return TaskLosses(zip(names, parts), total)

    def total_loss(self, losses: dict[str, Tensor]) -> Tensor:
        """Σ_t weight_t·L_t, as Keras sums a multi-output model's losses (the fused op's
        total where ``losses`` holds its outputs)."""
        if isinstance(losses, TaskLosses) and tuple(losses) == self.task_names and all(
                losses[n] is p for n, p in zip(self.task_names, losses.parts)):
            return losses.total
        total = None
        for t in self.tasks:
            term = losses[t.name] * float(t.weight)
            total = term if total is None else total + term
        return total

    def loss_values(self, losses: dict[str, Tensor]) -> dict[str, float]:
        """Each task's loss as a float: the fused op's T + 1 values come back in one
        transfer (they are views of one array), others one ``item()`` each."""
        if isinstance(losses, TaskLosses) and tuple(losses) == self.task_names:
            whole = losses.total.data.base
            if whole is not None and whole.shape == (len(losses) + 1,):
                host = Tensor._from_op(whole, losses.total.backend, None, 0).numpy()
                return {n: float(v) for n, v in zip(self.task_names, host[1:])}
        return {n: float(losses[n].item()) for n in self.task_names}

    def logits_numpy(self, logits: dict[str, Tensor]) -> dict[str, np.ndarray]:
        """The logits per task as NumPy arrays: ``HeadLogits`` in one transfer (its stacked
        tensor, sliced on the host), others one each."""
        if isinstance(logits, HeadLogits) and tuple(logits) == self.task_names:
            host = logits.stacked.numpy()
            edges = np.cumsum([0, *logits.widths])
            return {n: host[:, lo:hi] for n, lo, hi in zip(logits, edges[:-1], edges[1:])}
        return {n: logits[n].numpy() for n in self.task_names}

    def predict(self, inputs: dict[str, Tensor]) -> dict[str, np.ndarray]:
        """What each head predicts (probabilities, or values), as NumPy arrays."""
        from ..function import no_grad

        with no_grad():
            logits = self.forward(inputs)
            return {t.name: t.objective.predict(logits[t.name]).numpy() for t in self.tasks}

    def output_layers(self) -> dict:
        """Task name -> the ``Linear`` layer that gives the task's logits."""
        raise NotImplementedError

    def init_output_bias(self, targets: dict) -> dict[str, np.ndarray]:
        """Set each task's output bias from its training targets (task name -> array):
        the bias with which the head, before it has learned anything from its input,
        predicts the targets' marginal (the objective's ``prior_bias``: a binary or
        multilabel head's log-odds of its rates, a softmax head's log class frequencies,
        a regression head's mean). Returns the biases set.

        Layers start with zero biases, as Keras's do, so a binary head predicts 0.5 at
        first. For a rare label the first steps then drive the logit down hard, through
        every hidden unit with a positive weight into the head, and a ReLU unit pushed
        below zero on every row stops learning. On census-income (income > 50K for 6 % of
        the rows) MMoE's income tower lost all but 1-2 % of its activity within 20 steps
        at one seed in ten and learned little more than its bias for ten epochs
        (benchmarks/NOTES.md, item 41). Starting from the prior removes that first push;
        Lin et al. ("Focal Loss for Dense Object Detection", ICCV 2017) start their
        classifier's bias from a prior probability for the same reason. The targets are
        checked first (one line naming the task), and every bias is computed before any
        is written, so a refused target changes nothing."""
        layers, biases = self.output_layers(), {}
        for t in self.tasks:
            if t.name not in targets:
                raise ValueError(f"init_output_bias: no targets for task {t.name!r} (given: "
                                 f"{', '.join(targets) or 'none'})")
            target = np.asarray(targets[t.name])
            if len(target) == 0:
                raise ValueError(f"init_output_bias: the {t.name} targets are empty")
            t.objective.check_targets(t.name, target, t.outputs)
            bias = layers[t.name].bias
            if bias is None:
                raise ValueError(f"init_output_bias: the {t.name} head has no bias")
            biases[t.name] = t.objective.prior_bias(target, t.outputs)
        for name, value in biases.items():
            bias = layers[name].bias
            bias.data[...] = xp_of(bias.backend).asarray(value, dtype=bias.dtype)
        return biases

    def summary_rows(self, batch: str = "None") -> list[tuple[str, str, int, str, str]]:
        raise NotImplementedError

    def summary_title(self) -> str:
        return f'Model: "{type(self).__name__}"'

    def summary(self) -> str:
        """A Keras-like table: layer, output shape, parameters, connected to; with totals."""
        trainable = sum(p.size for p in self.parameters() if p.requires_grad)
        return render_summary(self.summary_title(), self.summary_rows(),
                              self.num_parameters(), trainable)
