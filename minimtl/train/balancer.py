"""Balancing inside a training step: the weighted total, each task's gradient on the
shared parameters when something needs it (GradNorm, PCGrad, the conflict diagnostics),
and the per-epoch record of weights and conflicts. The formulas are in ``balancing``.

    balancer = Balancer(model, "gradnorm", pcgrad=True, conflict_every=10)
    fit(model, train, val, balancer=balancer)      # fit builds Adam over its parameters too

Which parameters are shared is read from the gradients of the first batch, not declared:
a parameter is shared when two tasks' losses have a non-zero gradient on one of its
elements (the article's three heads in one product are therefore not shared: each task
reaches only its own columns). The *last shared layer* (GradNorm's W, and what
``conflict_on='last'`` measures) is every shared module that some path from the loss
reaches before any other shared module: the article network's three towers give the last
convolution of each; ``model`` may define ``last_shared_parameters()`` to choose instead.

Cost per step, on top of the plain backward (K tasks): GradNorm walks each task's graph
down to the last shared layer only; PCGrad and a measured step replace the backward by
one walk per task (each task's gradients, summed with the weights), about K - 1 more
backward passes. ``conflict_every=n`` measures one step in n.
"""

from __future__ import annotations

import numpy as np

from ..autograd import topological_order
from ..backend import xp_of
from .balancing import make_weighting, pair_stats, pcgrad

__all__ = ["Balancer", "find_shared"]


def find_shared(model, losses: dict) -> list[tuple[str, object]]:
    """(name, parameter) of the parameters on which two tasks' gradients overlap, from
    this batch's ``losses`` (the graph is kept)."""
    from ..gradients import grad

    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    reached: list[list] = []
    for loss in losses.values():
        gs = grad(loss, [p for _, p in named], retain_graph=True, allow_unused=True)
        reached.append([None if g is None else xp_of(g.backend).abs(g.data) > 0 for g in gs])
    shared = []
    for i, (name, p) in enumerate(named):
        masks = [r[i] for r in reached if r[i] is not None]
        overlap = any(bool((a & b).any()) for j, a in enumerate(masks) for b in masks[j + 1:])
        if overlap:
            shared.append((name, p))
    return shared


def _last_layer(model, total, shared: list[tuple[str, object]]) -> list:
    """The shared parameters of the modules nearest the loss: a shared module is in the
    last shared layer when some path from the loss reaches it without passing another
    shared module (parallel towers: the last layer of each)."""
    if hasattr(model, "last_shared_parameters"):
        return list(model.last_shared_parameters())
    module_of = {id(p): n.rsplit(".", 1)[0] for n, p in shared}
    above: dict[int, frozenset] = {}            # node -> shared modules between it and the loss
    frontier: set[str] = set()
    for node in topological_order(total._node):          # from the loss downwards
        mine = {module_of[id(t)] for t in node.inputs if id(t) in module_of}
        over = above.get(id(node), frozenset())
        if mine and over <= mine:                # nothing shared above but its own module
            frontier |= mine
        below = over | mine
        for t in node.inputs:
            child = getattr(t, "_node", None)
            if child is not None:
                # of several paths to a node, the one through the fewest shared modules
                prev = above.get(id(child))
                above[id(child)] = below if prev is None or len(below) < len(prev) else prev
    return [p for n, p in shared if n.rsplit(".", 1)[0] in frontier]


def _flat(shared, grads):
    """One vector of a task's gradients on the shared parameters (zeros where unused)."""
    xp = xp_of(shared[0][1].backend)
    return xp.concatenate([(xp.zeros_like(p.data) if g is None else g.data).ravel()
                           for (_, p), g in zip(shared, grads)])


class Balancer:
    """Loss weighting, gradient surgery and conflict diagnostics for ``fit``.

    Parameters
    ----------
    model           a multi-task model (``tasks``, ``named_parameters``)
    weighting       'fixed' | 'uncertainty' | 'gradnorm' | 'dwa' (``balancing``)
    pcgrad          project conflicting task gradients on the shared parameters
    conflict_every  measure cosines and magnitude similarity every n steps (0: never)
    conflict_on     'shared': the tasks' gradients on every shared parameter (K walks of
                    the whole graph on a measured step, in place of the backward);
                    'last': on the last shared layer only (K walks pruned to it, then the
                    usual backward: far cheaper, and the layer GradNorm reads)
    seed            PCGrad's random task order
    **kw            the weighting's own settings (``alpha``, ``lr``, ``temperature``)
    """

    def __init__(self, model, weighting: str = "fixed", *, pcgrad: bool = False,
                 conflict_every: int = 0, conflict_on: str = "shared", seed: int = 0,
                 **kw) -> None:
        if conflict_every < 0:
            raise ValueError(f"Balancer: conflict_every must be >= 0, got {conflict_every}")
        if conflict_on not in ("shared", "last"):
            raise ValueError(f"Balancer: conflict_on must be 'shared' or 'last', got "
                             f"{conflict_on!r}")
        self.conflict_on = conflict_on
        if weighting == "uncertainty":
            p = next(iter(model.parameters()))
            kw = {"backend": p.backend, "dtype": p.data.dtype} | kw
        self.model = model
        self.weighting = make_weighting(weighting, model.tasks, **kw)
        self.use_pcgrad = bool(pcgrad)
        self.every = int(conflict_every)
        self.rng = np.random.default_rng([seed, 2020])
        self.names = [t.name for t in model.tasks]
        self.shared: list | None = None
        self.last: list | None = None
        self.step_count = 0
        self._reset()

    @property
    def active(self) -> bool:
        """False when it changes nothing (fixed weights, no PCGrad, no measuring)."""
        return self.weighting.name != "fixed" or self.use_pcgrad or self.every > 0

    def parameters(self) -> list:
        """The weighting's learned parameters (uncertainty's log-variances)."""
        return self.weighting.parameters()

    def _reset(self) -> None:
        self._pairs: dict[str, dict[str, list[float]]] = {}

    def backward(self, losses: dict) -> object:
        """The weighted total of ``losses``, with every parameter's ``.grad`` set for it
        (PCGrad's update on the shared ones when asked); returns the total.

        On a step that needs each task's gradient (PCGrad, a measured step) the tasks'
        walks cover every parameter and their weighted sum is the gradient: K walks in
        all, not K plus the plain backward."""
        from ..gradients import grad

        self.step_count += 1
        w = self.weighting.weights()                     # the weights this total uses
        total = self.weighting.total(losses)
        measure = self.every > 0 and self.step_count % self.every == 0
        needs = self.weighting.needs_task_gradients or self.use_pcgrad or measure
        if needs and self.shared is None:
            self.shared = find_shared(self.model, losses)
            self.last = _last_layer(self.model, total, self.shared)
            if not self.shared:
                raise ValueError(f"{type(self.model).__name__}: no parameter is shared by "
                                 f"two tasks, so there is nothing to balance or measure "
                                 f"(PCGrad, GradNorm and --conflict need shared layers)")
            self.params = [p for _, p in self.model.named_parameters() if p.requires_grad]
            where = {id(p): i for i, p in enumerate(self.params)}
            self._shared_at = [where[id(p)] for _, p in self.shared]
        on_last = measure and self.conflict_on == "last"
        task_grads = last_grads = None
        if self.use_pcgrad or (measure and not on_last):
            task_grads = {k: grad(losses[k], self.params, retain_graph=True,
                                  allow_unused=True) for k in self.names}
            last = {id(p) for p in self.last}
            last_grads = {k: [task_grads[k][i] for i in self._shared_at
                              if id(self.params[i]) in last] for k in self.names}
        elif self.weighting.needs_task_gradients or on_last:   # walks down to it only
            last_grads = {k: grad(losses[k], self.last, retain_graph=True,
                                  allow_unused=True) for k in self.names}
        if self.weighting.needs_task_gradients:
            norms = {}
            for k in self.names:
                gs = [g for g in last_grads[k] if g is not None]
                norms[k] = float(np.sqrt(sum(float((g.data * g.data).sum()) for g in gs)))
            self.weighting.task_gradients(norms, {k: float(losses[k].item())
                                                  for k in self.names})
        if on_last:
            last_pairs = [(None, p) for p in self.last]
            self._record({k: _flat(last_pairs, last_grads[k]) for k in self.names})
        if task_grads is None:
            total.backward()
            return total
        own = self.weighting.parameters()               # uncertainty's log-variances
        for p, g in zip(own, grad(total, own) if own else ()):
            _accumulate(p, g.data)
        surgery = set(self._shared_at) if self.use_pcgrad else set()
        for i, p in enumerate(self.params):
            if i in surgery:                            # PCGrad's update below instead
                continue
            parts = [task_grads[k][i].data * float(w[k]) for k in self.names
                     if task_grads[k][i] is not None]
            if parts:
                _accumulate(p, sum(parts[1:], parts[0]))
        flat = {k: _flat(self.shared, [task_grads[k][i] for i in self._shared_at])
                for k in self.names}
        if measure and not on_last:
            self._record(flat)
        if self.use_pcgrad:
            update = pcgrad([flat[k] * float(w[k]) for k in self.names], self.rng)
            start = 0
            for _, p in self.shared:
                n = p.data.size
                _accumulate(p, update[start:start + n].reshape(p.data.shape).astype(
                    p.data.dtype, copy=False))
                start += n
        return total

    def _record(self, flat: dict) -> None:
        """One measured step's pairwise cosines and magnitude similarities."""
        for pair, st in pair_stats(flat).items():
            rec = self._pairs.setdefault(pair, {"cosine": [], "magnitude": []})
            rec["cosine"].append(st["cosine"])
            rec["magnitude"].append(st["magnitude"])

    def epoch_end(self, mean_losses: dict[str, float]) -> dict:
        """The epoch's logs: ``weight_<task>`` (the weights used in the epoch's last step)
        and, when measured, ``cos_<a>|<b>`` (mean cosine), ``conflict_<a>|<b>`` (share of
        measured steps with a negative cosine), ``magsim_<a>|<b>``, plus ``cosines``
        ({pair: every measured cosine}) for the pictures."""
        logs: dict = {}
        if self.weighting.name != "fixed":
            logs.update({f"weight_{k}": v for k, v in self.weighting.weights().items()})
        for pair, rec in self._pairs.items():
            c = np.asarray(rec["cosine"])
            logs[f"cos_{pair}"] = float(c.mean())
            logs[f"conflict_{pair}"] = float((c < 0).mean())
            logs[f"magsim_{pair}"] = float(np.mean(rec["magnitude"]))
        if self._pairs:
            logs["cosines"] = {pair: list(rec["cosine"]) for pair, rec in self._pairs.items()}
        self.weighting.epoch_end(mean_losses)
        self._reset()
        return logs

    def state(self) -> dict:
        """What a checkpoint keeps to resume (JSON-able)."""
        return {"weighting": self.weighting.name, "step": self.step_count,
                "scheme": self.weighting.state(),
                "rng": self.rng.bit_generator.state}

    def load_state(self, state: dict) -> None:
        if state.get("weighting") != self.weighting.name:
            raise ValueError(f"the checkpoint was trained with weighting "
                             f"{state.get('weighting')!r}, not {self.weighting.name!r}")
        self.step_count = int(state["step"])
        self.weighting.load_state(state["scheme"])
        self.rng.bit_generator.state = state["rng"]


def _accumulate(p, g) -> None:
    p.grad = g if p.grad is None else p.grad + g
