"""Multi-task architectures over a shared representation: single-task baseline, shared-bottom,
OMoE and MMoE (this file); CGC and PLE (``ple.py``).

Each model reads x (N, D), the output of an input encoder (any representation: tabular
columns, tower features), and returns a dict task -> logits (N, outputs_t); what a task's
logits mean (loss, prediction, metrics) is its objective's business (``minimtl.objectives``).

    SingleTask    x ─ bottom_t ─ tower_t → y_t          one independent network per task
    SharedBottom  x ─ bottom ─┬─ tower_t → y_t          one bottom MLP for every task
    OMoE          x ─ experts f_e ─ Σ_e g_e(x)·f_e(x) ─┬─ tower_t → y_t    one gate
    MMoE          x ─ experts f_e ─ Σ_e g_t,e(x)·f_e(x) ─ tower_t → y_t    a gate per task

with f_e(x) = ReLU(W_e x + b_e) (E experts of U units), g(x) = softmax(W_g x + b_g) over
the E experts, and tower_t(h) = V_t ReLU(A_t h + a_t) + v_t (H hidden units). MMoE: Ma et
al., KDD 2018, "Modeling Task Relationships in Multi-task Learning with Multi-gate
Mixture-of-Experts"; OMoE is its one-gate ablation.

Products: the experts of a group are one ``linear`` (their weights stacked (E·U, D)), the
gates that read the same input another ((G·E, D)), and every gate's mixture one batched
product g (N, G, E) @ f (N, E, U) -> (N, G, U). ``summary()`` lists these layers and the
ops each one runs.

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

Gates are named after the task whose mixture they make (OMoE's one gate appears under
every task, as every task reads it); ``model.gates(x)`` returns the weights (N, E) of one
forward without recording them.
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .. import nn
from ..nn import init
from ..tensor import Tensor

__all__ = ["MultiTaskModel", "SingleTask", "SharedBottom", "OMoE", "MMoE", "Experts", "Gates",
           "TaskTower", "GateStats", "task_outputs", "summary_table"]


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
    """The Keras-like table of ``MultiTaskNet.summary``: layer, output shape, parameters,
    connected to; then the totals."""
    heads = ("Layer (type)", "Output Shape", "Param #", "Connected to")
    cells = [(a, b, f"{p:,}", d) for a, b, p, d, _ in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(heads)]
    line = lambda r: "  ".join(s.ljust(w) for s, w in zip(r, widths)).rstrip()  # noqa: E731
    rule = "─" * (sum(widths) + 2 * (len(widths) - 1))
    total = model.num_parameters()
    trainable = sum(p.size for p in model.parameters() if p.requires_grad)
    out = [title, rule, line(heads), rule] + [line(r) for r in cells]
    out += [rule, f"Total params: {total:,}", f"Trainable params: {trainable:,}",
            f"Non-trainable params: {total - trainable:,}", rule]
    return "\n".join(out)


class MultiTaskModel(nn.Module):
    """What the architectures share: the task list, ``forward(x) -> {task: logits}``, gate
    statistics, the summary table. Subclasses define ``run``, ``gate_experts`` (if gated),
    ``describe`` and ``summary_rows``."""

    name = "multitask"

    def __init__(self, in_features: int, tasks, *, dtype=np.float32,
                 backend: str | None = None):
        super().__init__()
        check_size(type(self).__name__, "in_features", in_features)
        self.in_features = int(in_features)
        self.tasks = task_outputs(tasks)
        self.task_names = [t for t, _ in self.tasks]

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
        record = not self.training and bool(self.gate_experts())
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


class SingleTask(MultiTaskModel):
    """The baseline of independent networks: per task a bottom Dense(B) + ReLU and a tower;
    nothing is shared (the tasks are only trained side by side)."""

    name = "single-task"

    def __init__(self, in_features: int, tasks, *, bottom_units: int = 16, tower_units: int = 8,
                 seed: int = 0, dtype=np.float32, backend: str | None = None):
        super().__init__(in_features, tasks, dtype=dtype, backend=backend)
        kw = dict(rng=np.random.default_rng(seed), dtype=dtype, backend=backend)
        self.bottoms = nn.ModuleList([nn.Linear(in_features, bottom_units, **kw)
                                      for _ in self.tasks])
        self.towers = self._towers(bottom_units, tower_units, **kw)

    def run(self, x: Tensor, gates: bool = False):
        return {t: tower(F.relu(bottom(x))) for t, bottom, tower
                in zip(self.task_names, self.bottoms, self.towers)}, {}

    def describe(self) -> str:
        return f"{len(self.tasks)} networks, bottoms of {self.bottoms[0].out_features}"

    def summary_rows(self, batch: str = "None") -> list[tuple]:
        rows = [("input (Input)", f"({batch}, {self.in_features})", 0, "-", "")]
        for t, bottom in zip(self.task_names, self.bottoms):
            rows.append((f"{t}_bottom (Dense({bottom.out_features}), relu)",
                         f"({batch}, {bottom.out_features})", bottom.num_parameters(), "input",
                         "linear+relu"))
        return rows + self.tower_rows([f"{t}_bottom" for t in self.task_names], batch)


class SharedBottom(MultiTaskModel):
    """One bottom Dense(B) + ReLU shared by every task, then a tower per task."""

    name = "shared-bottom"

    def __init__(self, in_features: int, tasks, *, bottom_units: int = 16, tower_units: int = 8,
                 seed: int = 0, dtype=np.float32, backend: str | None = None):
        super().__init__(in_features, tasks, dtype=dtype, backend=backend)
        kw = dict(rng=np.random.default_rng(seed), dtype=dtype, backend=backend)
        self.bottom = nn.Linear(in_features, bottom_units, **kw)
        self.towers = self._towers(bottom_units, tower_units, **kw)

    def run(self, x: Tensor, gates: bool = False):
        h = F.relu(self.bottom(x))                                  # (N, B)
        return {t: tower(h) for t, tower in zip(self.task_names, self.towers)}, {}

    def describe(self) -> str:
        return f"bottom of {self.bottom.out_features}, {len(self.tasks)} towers"

    def summary_rows(self, batch: str = "None") -> list[tuple]:
        b = self.bottom.out_features
        rows = [("input (Input)", f"({batch}, {self.in_features})", 0, "-", ""),
                (f"bottom (Dense({b}), relu)", f"({batch}, {b})", self.bottom.num_parameters(),
                 "input", "linear+relu")]
        return rows + self.tower_rows(["bottom"] * len(self.tasks), batch)


class _MixtureOfExperts(MultiTaskModel):
    """OMoE and MMoE: E shared experts on x and G gates on x (G = 1 or one per task)."""

    def __init__(self, in_features: int, tasks, gates_per_task: bool, *, experts: int,
                 expert_units: int, tower_units: int, seed: int, dtype, backend):
        super().__init__(in_features, tasks, dtype=dtype, backend=backend)
        kw = dict(rng=np.random.default_rng(seed), dtype=dtype, backend=backend)
        self.experts = Experts(in_features, experts, expert_units, **kw)
        self.gate = Gates(in_features, len(self.tasks) if gates_per_task else 1, experts, **kw)
        self.towers = self._towers(expert_units, tower_units, **kw)

    def gate_experts(self) -> dict[str, list[str]]:
        return {t: [f"expert_{e}" for e in range(self.experts.experts)]
                for t in self.task_names}

    def run(self, x: Tensor, gates: bool = False):
        f = self.experts(x)                                         # (N, E, U)
        g = self.gate(x)                                            # (N, G, E)
        mixed = g @ f                                               # (N, G, U)
        one = self.gate.gates == 1
        logits = {t: tower(mixed[:, 0 if one else i])
                  for i, (t, tower) in enumerate(zip(self.task_names, self.towers))}
        weights = {t: g[:, 0 if one else i] for i, t in enumerate(self.task_names)} \
            if gates else {}
        return logits, weights

    def describe(self) -> str:
        return (f"{self.experts.experts} experts × {self.experts.units} units, "
                f"{self.gate.gates} gate{'s' if self.gate.gates > 1 else ''}, "
                f"towers of {self.towers[0].hidden.out_features}")

    def summary_rows(self, batch: str = "None") -> list[tuple]:
        E, U, G = self.experts.experts, self.experts.units, self.gate.gates
        rows = [("input (Input)", f"({batch}, {self.in_features})", 0, "-", ""),
                (f"experts (Experts: {E} × Dense({U}), relu, one product)",
                 f"({batch}, {E}, {U})", self.experts.num_parameters(), "input", "linear+relu"),
                (f"gate (Gates: {G} × softmax over {E} experts, one product)",
                 f"({batch}, {G}, {E})", self.gate.num_parameters(), "input",
                 "linear+softmax"),
                ("mixture (gate @ experts)", f"({batch}, {G}, {U})", 0, "gate, experts",
                 "matmul")]
        sources = [f"mixture[:, {0 if G == 1 else i}]" for i in range(len(self.tasks))]
        return rows + self.tower_rows(sources, batch)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, experts={self.experts.experts}"


class OMoE(_MixtureOfExperts):
    """One-gate mixture of experts: E experts on x, one softmax gate on x mixing them into
    the single representation every task's tower reads."""

    name = "omoe"

    def __init__(self, in_features: int, tasks, *, experts: int = 8, expert_units: int = 16,
                 tower_units: int = 8, seed: int = 0, dtype=np.float32,
                 backend: str | None = None):
        super().__init__(in_features, tasks, False, experts=experts, expert_units=expert_units,
                         tower_units=tower_units, seed=seed, dtype=dtype, backend=backend)


class MMoE(_MixtureOfExperts):
    """Multi-gate mixture of experts: E experts on x; per task t a softmax gate on x, and
    tower t reads h_t = Σ_e g_t,e(x)·f_e(x)."""

    name = "mmoe"

    def __init__(self, in_features: int, tasks, *, experts: int = 8, expert_units: int = 16,
                 tower_units: int = 8, seed: int = 0, dtype=np.float32,
                 backend: str | None = None):
        super().__init__(in_features, tasks, True, experts=experts, expert_units=expert_units,
                         tower_units=tower_units, seed=seed, dtype=dtype, backend=backend)
