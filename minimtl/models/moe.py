"""Multi-task architectures over a shared representation x (N, D): the single-task
baseline, shared-bottom, OMoE and MMoE (CGC and PLE: ``ple.py``; the forward contract,
tasks and gate statistics: ``blocks.py``).

    SingleTask    x ─ bottom_t ─ tower_t → y_t          one independent network per task
    SharedBottom  x ─ bottom ─┬─ tower_t → y_t          one bottom MLP for every task
    OMoE          x ─ experts f_e ─ Σ_e g_e(x)·f_e(x) ─┬─ tower_t → y_t    one gate
    MMoE          x ─ experts f_e ─ Σ_e g_t,e(x)·f_e(x) ─ tower_t → y_t    a gate per task

with f_e(x) = ReLU(W_e x + b_e) (E experts of U units), g(x) = softmax(W_g x + b_g) over
the E experts, and tower_t(h) = V_t ReLU(A_t h + a_t) + v_t (H hidden units). MMoE: Ma et
al., KDD 2018, "Modeling Task Relationships in Multi-task Learning with Multi-gate
Mixture-of-Experts"; OMoE is its one-gate ablation.

Products: the E experts are one ``linear`` (their weights stacked (E·U, D)), the gates
another ((G·E, D)), and every gate's mixture one batched product g (N, G, E) @ f (N, E, U)
-> (N, G, U). ``summary()`` lists these layers and the ops each one runs.

Constructor arguments: ``in_features`` (D), ``tasks``; ``bottom_units`` (B) for the
bottom's Dense(B) + ReLU, or ``experts`` (E) and ``expert_units`` (U); ``tower_units``
(H) for each tower's hidden Dense(H) + ReLU; ``seed``, ``dtype``, ``backend``.

Gates are named after the task whose mixture they make (OMoE's one gate appears under
every task, as every task reads it), experts ``expert_<e>``.
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .. import nn
from ..tensor import Tensor
from .blocks import Architecture, Experts, Gates

__all__ = ["SingleTask", "SharedBottom", "OMoE", "MMoE"]


class SingleTask(Architecture):
    """The baseline of independent networks: per task a bottom Dense(B) + ReLU and a tower;
    nothing is shared (the tasks are only trained side by side)."""

    name = "single-task"

    def __init__(self, in_features: int, tasks, *, bottom_units: int = 16, tower_units: int = 8,
                 seed: int = 0, dtype=np.float32, backend: str | None = None):
        super().__init__(in_features, tasks, bottom_units=bottom_units, tower_units=tower_units,
                         seed=seed)
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


class SharedBottom(Architecture):
    """One bottom Dense(B) + ReLU shared by every task, then a tower per task."""

    name = "shared-bottom"

    def __init__(self, in_features: int, tasks, *, bottom_units: int = 16, tower_units: int = 8,
                 seed: int = 0, dtype=np.float32, backend: str | None = None):
        super().__init__(in_features, tasks, bottom_units=bottom_units, tower_units=tower_units,
                         seed=seed)
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


class _MixtureOfExperts(Architecture):
    """OMoE and MMoE: E shared experts on x and G gates on x (G = 1 or one per task)."""

    def __init__(self, in_features: int, tasks, gates_per_task: bool, *, experts: int,
                 expert_units: int, tower_units: int, seed: int, dtype, backend):
        super().__init__(in_features, tasks, experts=experts, expert_units=expert_units,
                         tower_units=tower_units, seed=seed)
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
