"""What the multi-task architectures share (``moe.py``, ``ple.py``): the task list, expert
groups and gates computed as one product each, task towers, gate statistics, the summary.

Every architecture is an ``Architecture``: ``forward(x)`` reads x (N, D), the output of
an input encoder (any representation: tabular columns, tower features), and returns a
dict task -> logits (N, outputs_t); what a task's logits mean (loss, prediction, metrics)
is its objective's business (``minimtl.objectives``). Tasks come as (name, outputs)
pairs, a dict name -> outputs, or task specs with ``.name`` and ``.outputs``.

Gate utilisation. Every forward in eval mode (after ``model.eval()``) adds its gate
weights to ``model.gate_stats``; training-mode forwards record nothing (no copy to the
host per step). ``model.gate_weights()`` is then {gate: {expert: mean weight}} over the
rows seen since ``model.reset_gate_stats()``, plain floats ready for JSON. A training loop
keeps it per evaluation::

    model.eval(); model.reset_gate_stats()
    with no_grad():
        for batch in validation: model(batch)
    history["gates"].append(model.gate_weights())
    model.train()

``model.gate_experts()`` names the gates and the experts each one mixes (each
architecture's doc says how it names them); ``model.gates(x)`` returns the weights (N, E)
of one forward without recording them. Ungated models report {}.
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .. import nn
from ..nn import init
from ..tensor import Tensor
from .base import render_summary

__all__ = ["Architecture", "Experts", "Gates", "TaskTower", "GateStats", "task_outputs",
           "summary_table", "check_size"]


def check_size(model: str, name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{model}: {name} must be an integer >= 1, got {value!r}")


def task_outputs(tasks) -> list[tuple[str, int]]:
    """(name, outputs) per task, in order, from a dict name -> outputs (or -> task spec), a
    sequence of (name, outputs) pairs, or a sequence of task specs with ``.name`` and
    ``.outputs``. Names must be distinct strings, outputs integers >= 1."""
    if isinstance(tasks, dict):
        items = [(name, getattr(v, "outputs", v)) for name, v in tasks.items()]
    else:
        items = [(t.name, t.outputs) if hasattr(t, "outputs") else tuple(t) for t in tasks]
    if not items:
        raise ValueError("tasks: at least one task is needed")
    out = []
    for item in items:
        if len(item) != 2 or not isinstance(item[0], str):
            raise ValueError(f"tasks: expected (name, outputs) pairs or task specs, got "
                             f"{item!r}")
        check_size("tasks", f"outputs of task {item[0]!r}", item[1])
        out.append((item[0], int(item[1])))
    names = [n for n, _ in out]
    if len(set(names)) != len(names):
        raise ValueError(f"tasks: names must be distinct, got {names}")
    return out


class Experts(nn.Module):
    """E experts, each Dense(U) + ReLU reading the same x (N, D), as one product: weights
    stacked (E·U, D) (expert e in rows e·U … e·U + U − 1), Glorot-uniform per expert
    (fans D and U), biases zero. ``forward(x)`` -> (N, E, U)."""

    def __init__(self, in_features: int, experts: int, units: int, *,
                 rng: np.random.Generator, dtype=np.float32, backend: str | None = None):
        super().__init__()
        for name, value in (("in_features", in_features), ("experts", experts),
                            ("units", units)):
            check_size("Experts", name, value)
        self.in_features, self.experts, self.units = in_features, experts, units
        w = init.glorot_uniform((experts * units, in_features), in_features, units, rng, dtype)
        self.weight = nn.Parameter(w, backend=backend)
        self.bias = nn.Parameter(init.zeros((experts * units,), dtype), backend=backend)

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(F.linear(x, self.weight, self.bias))           # (N, E·U)
        return h.reshape(x.shape[0], self.experts, self.units)    # (N, E, U)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.experts} × {self.units}, relu"


class Gates(nn.Module):
    """G softmax gates over E choices each, reading the same x (N, D), as one product:
    logits x W_gᵀ + b_g with W_g (G·E, D), then a softmax over each gate's E entries.
    ``forward(x)`` -> (N, G, E), every row a distribution."""

    def __init__(self, in_features: int, gates: int, choices: int, *,
                 rng: np.random.Generator, dtype=np.float32, backend: str | None = None):
        super().__init__()
        for name, value in (("in_features", in_features), ("gates", gates),
                            ("choices", choices)):
            check_size("Gates", name, value)
        self.in_features, self.gates, self.choices = in_features, gates, choices
        w = init.glorot_uniform((gates * choices, in_features), in_features, choices, rng,
                                dtype)
        self.weight = nn.Parameter(w, backend=backend)
        self.bias = nn.Parameter(init.zeros((gates * choices,), dtype), backend=backend)

    def forward(self, x: Tensor) -> Tensor:
        z = F.linear(x, self.weight, self.bias)                   # (N, G·E)
        return F.softmax(z.reshape(x.shape[0], self.gates, self.choices), axis=-1)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.gates} × softmax({self.choices})"


class TaskTower(nn.Module):
    """A task's tower: Dense(H) + ReLU, then Dense(outputs) giving the task's logits."""

    def __init__(self, in_features: int, units: int, outputs: int, *,
                 rng: np.random.Generator, dtype=np.float32, backend: str | None = None):
        super().__init__()
        kw = dict(rng=rng, dtype=dtype, backend=backend)
        self.hidden = nn.Linear(in_features, units, **kw)
        self.out = nn.Linear(units, outputs, **kw)

    def forward(self, h: Tensor) -> Tensor:
        return self.out(F.relu(self.hidden(h)))


class GateStats:
    """Running sums of gate weights over recorded rows: per gate, per expert it mixes.

    ``experts``: gate name -> the names of its experts, in the gate's order.
    """

    def __init__(self, experts: dict[str, list[str]]):
        self.experts = {g: list(names) for g, names in experts.items()}
        self.reset()

    def reset(self) -> None:
        self.sums = {g: np.zeros(len(names)) for g, names in self.experts.items()}
        self.rows = 0

    def add(self, gates: dict[str, Tensor]) -> None:
        """Add one batch: gate name -> weights (N, E) of the same N rows."""
        for name, w in gates.items():
            self.sums[name] += np.asarray(w.numpy(), dtype=np.float64).sum(axis=0)
        self.rows += next(iter(gates.values())).shape[0] if gates else 0

    def mean(self) -> dict[str, dict[str, float]]:
        """{gate: {expert: mean weight}} (each gate's weights sum to 1); {} for no gates."""
        if self.experts and self.rows == 0:
            raise ValueError("gate_weights: no eval-mode forward since the last reset "
                             "(call model.eval() and run a batch first)")
        return {g: {e: float(s / self.rows) for e, s in zip(names, self.sums[g])}
                for g, names in self.experts.items()}


def summary_table(title: str, rows, model: nn.Module) -> str:
    """The Keras-like table of every model's ``summary``, with the totals of ``model``."""
    trainable = sum(p.size for p in model.parameters() if p.requires_grad)
    return render_summary(title, rows, model.num_parameters(), trainable)


class Architecture(nn.Module):
    """What the architectures share: the task list, ``forward(x) -> {task: logits}``, gate
    statistics, the summary table. Subclasses define ``run``, ``gate_experts`` (if gated),
    ``describe`` and ``summary_rows``.

    Attributes
    ----------
    tasks : list of (name, outputs)
    task_names : list of str
    config : dict        the constructor's arguments but dtype and backend (tasks as
                         pairs): ``type(model)(**model.config)`` builds the same model
    """

    name = "multitask"

    def __init__(self, in_features: int, tasks, *, seed: int, **sizes: int):
        super().__init__()
        who = type(self).__name__
        check_size(who, "in_features", in_features)
        for key, value in sizes.items():
            check_size(who, key, value)
        self.in_features = int(in_features)
        self.tasks = task_outputs(tasks)
        self.task_names = [t for t, _ in self.tasks]
        self.config = dict(in_features=self.in_features, tasks=list(self.tasks),
                           **{k: int(v) for k, v in sizes.items()}, seed=seed)

    def _towers(self, in_features: int, units: int, **kw) -> nn.ModuleList:
        """One ``TaskTower`` per task (``kw``: rng, dtype, backend)."""
        return nn.ModuleList([TaskTower(in_features, units, outputs, **kw)
                              for _, outputs in self.tasks])

    def run(self, x: Tensor, gates: bool = False):
        """(logits dict, gate dict name -> (N, E) weights, {} unless ``gates``)."""
        raise NotImplementedError

    def gate_experts(self) -> dict[str, list[str]]:
        """Gate name -> names of the experts it mixes; {} for an ungated model."""
        return {}

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"{type(self).__name__}: expected x (N, {self.in_features}), "
                             f"got {x.shape}")
        record = not self.training and bool(self.gate_stats.experts)
        logits, gates = self.run(x, gates=record)
        if record:
            self.gate_stats.add(gates)
        return logits

    def gates(self, x: Tensor) -> dict[str, Tensor]:
        """Gate name -> weights (N, E) for ``x``, not recorded in ``gate_stats``."""
        return self.run(x, gates=True)[1]

    @property
    def gate_stats(self) -> GateStats:
        if "_gate_stats" not in self.__dict__:
            self._gate_stats = GateStats(self.gate_experts())
        return self._gate_stats

    def gate_weights(self) -> dict[str, dict[str, float]]:
        """Mean gate weight per gate (task) per expert since the last reset (module doc)."""
        return self.gate_stats.mean()

    def reset_gate_stats(self) -> None:
        self.gate_stats.reset()

    def describe(self) -> str:
        """The summary title's parenthesis."""
        return ""

    def summary_rows(self, batch: str = "None") -> list[tuple[str, str, int, str, str]]:
        """(layer, output shape, parameters, connected to, ops) rows in forward order; ops
        are the op names the layer records, joined by "+"."""
        raise NotImplementedError

    def tower_rows(self, sources: list[str], batch: str = "None") -> list[tuple]:
        """Two rows per task tower, tower t reading the layer ``sources[t]``."""
        rows = []
        for (t, outputs), tower, src in zip(self.tasks, self.towers, sources):
            units = tower.hidden.out_features
            rows.append((f"{t}_tower (Dense({units}), relu)", f"({batch}, {units})",
                         tower.hidden.num_parameters(), src, "linear+relu"))
            rows.append((f"{t} (Dense({outputs}), logits)", f"({batch}, {outputs})",
                         tower.out.num_parameters(), f"{t}_tower", "linear"))
        return rows

    def summary(self) -> str:
        """A Keras-like table: layer, output shape, parameters, connected to; with totals."""
        return summary_table(f'Model: "{self.name}" ({self.describe()})', self.summary_rows(),
                             self)

    def extra_repr(self) -> str:
        tasks = ", ".join(f"{t}: {o}" for t, o in self.tasks)
        return f"in_features={self.in_features}, tasks={{{tasks}}}"
