"""Customized Gate Control (CGC) and Progressive Layered Extraction (PLE): task-specific
plus shared experts (Tang et al., RecSys 2020, "Progressive Layered Extraction (PLE): A
Novel Multi-Task Learning (MTL) Model for Personalized Recommendations").

One extraction level j with K tasks, m_t experts per task, m_s shared experts, reads K + 1
inputs: h_k (task k's) and h_s (the shared one); at level 1 all of them are x::

    E_k = experts_k(h_k)            (N, m_t, U)   task k's own experts
    E_s = experts_s(h_s)            (N, m_s, U)   the shared experts
    h_k' = g_k(h_k) · [E_k; E_s]    task k's gate, softmax over m_t + m_s, reads h_k
    h_s' = g_s(h_s) · [E_1; …; E_K; E_s]
                                    the shared gate, softmax over K·m_t + m_s: every
                                    expert of the level, the other tasks' included

and passes h_1', …, h_K', h_s' to level j + 1. The top level has no shared gate (nothing
above reads h_s'); tower k reads the top level's h_k'. CGC is PLE with one level. This is
the paper's routing (its equation g^{k,j}(x) = w^{k,j}(g^{k,j−1}(x))·S^{k,j}(x): a gate
reads the previous level's output of its own branch, and the shared branch's selection
matrix holds all experts of the level). tests/models/test_moe.py checks it on a case
computed by hand, which also tells it from three other routings (a shared gate over the
shared experts only; upper-level gates, or experts, that read x instead of their branch),
and checks the gates' choice counts: m_t + m_s per task, K·m_t + m_s for the shared gate.

Each group of experts is one product (``Experts``). Gate statistics as in ``blocks.py``;
gates are named after their task at the top level, ``<task>@<j>`` and ``shared@<j>`` at a
lower level j (counted from 1); experts ``<task>_<i>`` and ``shared_<i>`` within a level.
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .. import nn
from ..tensor import Tensor
from .blocks import Architecture, Experts, Gates

__all__ = ["ExtractionLevel", "PLE", "CGC"]


class ExtractionLevel(nn.Module):
    """One PLE level: per task ``task_experts`` experts and a gate over its own and the
    shared experts; ``shared_experts`` shared experts; below the top (``top=False``) a
    shared gate over every expert of the level. ``forward(inputs)`` takes K + 1 tensors
    (N, D) (the tasks', then the shared one) and returns the next level's K (+ 1) inputs
    (N, U) and the gate weights, each (N, 1, choices), in the same order."""

    def __init__(self, in_features: int, tasks: int, task_experts: int, shared_experts: int,
                 units: int, *, top: bool, rng: np.random.Generator, dtype=np.float32,
                 backend: str | None = None):
        super().__init__()
        kw = dict(rng=rng, dtype=dtype, backend=backend)
        self.top = bool(top)
        self.task_experts = nn.ModuleList([Experts(in_features, task_experts, units, **kw)
                                           for _ in range(tasks)])
        self.shared_experts = Experts(in_features, shared_experts, units, **kw)
        self.task_gates = nn.ModuleList([Gates(in_features, 1, task_experts + shared_experts,
                                               **kw) for _ in range(tasks)])
        self.shared_gate = None if self.top else \
            Gates(in_features, 1, tasks * task_experts + shared_experts, **kw)

    def forward(self, inputs: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        K = len(self.task_experts)
        n, units = inputs[0].shape[0], self.shared_experts.units
        own = [experts(h) for experts, h in zip(self.task_experts, inputs[:K])]  # (N, m_t, U)
        shared = self.shared_experts(inputs[K])                                # (N, m_s, U)
        outputs, gates = [], []
        for k in range(K):
            g = self.task_gates[k](inputs[k])                       # (N, 1, m_t + m_s)
            selected = F.concatenate([own[k], shared], axis=1)      # (N, m_t + m_s, U)
            outputs.append((g @ selected).reshape(n, units))
            gates.append(g)
        if not self.top:
            g = self.shared_gate(inputs[K])                         # (N, 1, K·m_t + m_s)
            every = F.concatenate(own + [shared], axis=1)           # (N, K·m_t + m_s, U)
            outputs.append((g @ every).reshape(n, units))
            gates.append(g)
        return outputs, gates

    def extra_repr(self) -> str:
        return f"top={self.top}"


class PLE(Architecture):
    """Progressive Layered Extraction: ``levels`` extraction levels (module doc), then a
    tower per task on the top level's task output.

    Parameters
    ----------
    in_features : int          D of the representation x (N, D)
    tasks                      (name, outputs) pairs, a dict name -> outputs, or task specs
    levels : int               extraction levels (1 is CGC)
    task_experts : int         m_t, experts of each task at every level
    shared_experts : int       m_s, shared experts at every level
    expert_units : int         U, each expert's Dense(U) + ReLU
    tower_units : int          H, each tower's hidden Dense(H) + ReLU
    seed, dtype, backend       initialisation and placement
    """

    name = "ple"

    def __init__(self, in_features: int, tasks, *, levels: int = 2, task_experts: int = 2,
                 shared_experts: int = 2, expert_units: int = 16, tower_units: int = 8,
                 seed: int = 0, dtype=np.float32, backend: str | None = None):
        super().__init__(in_features, tasks, levels=levels, task_experts=task_experts,
                         shared_experts=shared_experts, expert_units=expert_units,
                         tower_units=tower_units, seed=seed)
        kw = dict(rng=np.random.default_rng(seed), dtype=dtype, backend=backend)
        K = len(self.tasks)
        self.levels = nn.ModuleList([
            ExtractionLevel(in_features if j == 0 else expert_units, K, task_experts,
                            shared_experts, expert_units, top=j == levels - 1, **kw)
            for j in range(levels)])
        self.towers = self._towers(expert_units, tower_units, **kw)

    def _level_names(self, j: int) -> list[str]:
        """Gate names of level j (0-based): the tasks', then the shared one below the top."""
        top = j == len(self.levels) - 1
        if top:
            return list(self.task_names)
        return [f"{t}@{j + 1}" for t in self.task_names] + [f"shared@{j + 1}"]

    def gate_experts(self) -> dict[str, list[str]]:
        level = self.levels[0]
        m_t, m_s = level.task_experts[0].experts, level.shared_experts.experts
        shared = [f"shared_{i}" for i in range(m_s)]
        out = {}
        for j in range(len(self.levels)):
            names = self._level_names(j)
            for t, gate in zip(self.task_names, names):
                out[gate] = [f"{t}_{i}" for i in range(m_t)] + shared
            if len(names) > len(self.task_names):
                out[names[-1]] = [f"{t}_{i}" for t in self.task_names
                                  for i in range(m_t)] + shared
        return out

    def run(self, x: Tensor, gates: bool = False):
        inputs = [x] * (len(self.tasks) + 1)
        weights = {}
        for j, level in enumerate(self.levels):
            inputs, g = level(inputs)
            if gates:
                weights.update({name: w[:, 0] for name, w in zip(self._level_names(j), g)})
        logits = {t: tower(h) for t, tower, h in zip(self.task_names, self.towers, inputs)}
        return logits, weights

    def describe(self) -> str:
        level = self.levels[0]
        return (f"{len(self.levels)} level{'s' if len(self.levels) > 1 else ''}, "
                f"{level.task_experts[0].experts} experts per task + "
                f"{level.shared_experts.experts} shared × {level.shared_experts.units} units, "
                f"towers of {self.towers[0].hidden.out_features}")

    def summary_rows(self, batch: str = "None") -> list[tuple]:
        rows = [("input (Input)", f"({batch}, {self.in_features})", 0, "-", "")]
        K = len(self.tasks)
        branches = self.task_names + ["shared"]
        sources = ["input"] * (K + 1)            # what each branch reads at this level
        for j, level in enumerate(self.levels):
            tag = f"L{j + 1}_" if len(self.levels) > 1 else ""
            U = level.shared_experts.units
            groups = list(level.task_experts) + [level.shared_experts]
            for b, experts, src in zip(branches, groups, sources):
                E = experts.experts
                rows.append((f"{tag}{b}_experts (Experts: {E} × Dense({U}), relu, one "
                             f"product)", f"({batch}, {E}, {U})", experts.num_parameters(),
                             src, "linear+relu"))
            gates = list(level.task_gates) + ([] if level.top else [level.shared_gate])
            mixed = []
            for k, (b, gate) in enumerate(zip(branches, gates)):
                picked = (f"{tag}{b}_experts, {tag}shared_experts" if k < K else
                          ", ".join(f"{tag}{c}_experts" for c in branches))
                rows.append((f"{tag}{b}_gate (Gate: softmax over {gate.choices} experts)",
                             f"({batch}, 1, {gate.choices})", gate.num_parameters(),
                             sources[k], "linear+softmax"))
                rows.append((f"{tag}{b}_mix (gate @ its experts, concatenated)",
                             f"({batch}, {U})", 0, f"{tag}{b}_gate, {picked}",
                             "concat+matmul"))
                mixed.append(f"{tag}{b}_mix")
            sources = mixed
        return rows + self.tower_rows(sources[:K], batch)


class CGC(PLE):
    """Customized Gate Control: one extraction level of PLE (task k's gate on x mixes task
    k's experts and the shared experts; tower k reads that mixture)."""

    name = "cgc"

    def __init__(self, in_features: int, tasks, *, task_experts: int = 2,
                 shared_experts: int = 2, expert_units: int = 16, tower_units: int = 8,
                 seed: int = 0, dtype=np.float32, backend: str | None = None):
        super().__init__(in_features, tasks, levels=1, task_experts=task_experts,
                         shared_experts=shared_experts, expert_units=expert_units,
                         tower_units=tower_units, seed=seed, dtype=dtype, backend=backend)
        del self.config["levels"]                # not an argument of CGC
