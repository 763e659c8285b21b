"""An exact symmetry of the conflict diagnostics, checked as a property (Hypothesis).

Negate one regression task's labels and, with them, the initial weights and bias of that
task's output layer: the task's predictions, residuals and losses change sign or stay
put exactly (negation is exact in floating point), so every gradient on the other layers,
every loss weighting, PCGrad's choices and every measured cosine are the same bits, and the
output layer stays the negation of the original run's through Adam. The cosine of two
tasks' gradients on the shared layers therefore cannot tell a task from its negation once
averaged over initialisations: it is no signed measure of how the labels correlate
(benchmarks/conflict_sign.py measures what it does follow; README, "What the numbers
mean").
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from minimtl.data import Dataset
from minimtl.models.network import MultiTaskNetwork
from minimtl.objectives import Task
from minimtl.train import Balancer, fit
from minimtl.train.balancing import WEIGHTINGS

TASKS = [Task("y1", "regression", 1), Task("y2", "regression", 1)]
SIZES = {"shared-bottom": {"bottom_units": 6, "tower_units": 4},
         "mmoe": {"experts": 2, "expert_units": 4, "tower_units": 3}}


def _train(arch, weighting, pcgrad, seed, flip):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(96, 12))
    y1 = x[:, :4].sum(1, keepdims=True) + 0.1 * rng.normal(size=(96, 1))
    y2 = x[:, 2:6].sum(1, keepdims=True) + 0.1 * rng.normal(size=(96, 1))
    ds = Dataset({"x": x}, {"y1": y1, "y2": -y2 if flip else y2})
    model = MultiTaskNetwork({"x": "continuous"}, {"x": (12,)}, TASKS, architecture=arch,
                             seed=seed, backend="numpy", dtype=np.float64, **SIZES[arch])
    head = [p for n, p in model.named_parameters() if n.startswith("body.towers.1.out.")]
    assert len(head) == 2                               # the weight and the bias
    if flip:
        for p in head:
            p.data[...] = -p.data
    balancer = Balancer(model, weighting, pcgrad=pcgrad, conflict_every=1, seed=seed)
    history = fit(model, ds, None, epochs=2, batch_size=32, seed=seed, stream=None,
                  balancer=balancer)
    return history, dict(model.named_parameters())


@settings(max_examples=12, deadline=None)
@given(st.sampled_from(sorted(SIZES)), st.sampled_from(sorted(WEIGHTINGS)), st.booleans(),
       st.integers(0, 2**16))
def test_negating_a_tasks_labels_and_its_head_changes_no_measured_bit(arch, weighting,
                                                                      pcgrad, seed):
    plain, p_params = _train(arch, weighting, pcgrad, seed, flip=False)
    flipped, f_params = _train(arch, weighting, pcgrad, seed, flip=True)
    for a, b in zip(plain.epochs, flipped.epochs):
        a, b = ({k: v for k, v in e.items() if k != "time_s"} for e in (a, b))
        assert a == b                        # losses, weights, cosines: exactly equal
        assert len(a["cosines"]["y1|y2"]) == 3
    for name, p in p_params.items():
        sign = -1 if name.startswith("body.towers.1.out.") else 1
        np.testing.assert_array_equal(f_params[name].data, sign * p.data, err_msg=name)


def test_the_symmetry_needs_the_head_negated_too():
    """Negating the labels alone is a different run (the check above can fail)."""
    plain, _ = _train("shared-bottom", "fixed", False, 0, flip=False)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 12))
    y1 = x[:, :4].sum(1, keepdims=True) + 0.1 * rng.normal(size=(96, 1))
    y2 = x[:, 2:6].sum(1, keepdims=True) + 0.1 * rng.normal(size=(96, 1))
    model = MultiTaskNetwork({"x": "continuous"}, {"x": (12,)}, TASKS,
                             architecture="shared-bottom", seed=0, backend="numpy",
                             dtype=np.float64, **SIZES["shared-bottom"])
    labels_only = fit(model, Dataset({"x": x}, {"y1": y1, "y2": -y2}), None, epochs=2,
                      batch_size=32, stream=None,
                      balancer=Balancer(model, "fixed", conflict_every=1))
    assert labels_only.epochs[0]["cosines"] != plain.epochs[0]["cosines"]
