"""Task balancing, its math checked as properties (Hypothesis): PCGrad's projections,
GradNorm's and DWA's weights, uncertainty weighting's gradients, and the diagnostics'
invariance to a task's loss scale."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import minimtl as mt
from minimtl.gradcheck import gradcheck
from minimtl.objectives import Task
from minimtl.train.balancing import (
    DWA,
    Uncertainty,
    cosine,
    dwa_weights,
    gradnorm_step,
    magnitude_similarity,
    make_weighting,
    pcgrad,
)

finite = st.floats(-10, 10, allow_nan=False, allow_subnormal=False)


def vectors(n_min=2, n_max=8):
    return st.integers(n_min, n_max).flatmap(
        lambda n: st.tuples(st.lists(finite, min_size=n, max_size=n),
                            st.lists(finite, min_size=n, max_size=n)))


@given(vectors(), st.integers(0, 2**31 - 1))
def test_pcgrad_of_a_conflicting_pair_is_orthogonal_and_agrees_with_both(pair, seed):
    g1, g2 = (np.array(v) for v in pair)
    assume(np.linalg.norm(g1) > 1e-3 and np.linalg.norm(g2) > 1e-3)
    rng = np.random.default_rng(seed)
    total = pcgrad([g1, g2], rng)
    if g1 @ g2 < 0:
        p1 = g1 - (g1 @ g2) / (g2 @ g2) * g2          # what PCGrad makes of g1
        assert abs(p1 @ g2) <= 1e-9 * np.linalg.norm(g1) * np.linalg.norm(g2)
    else:
        np.testing.assert_allclose(total, g1 + g2, rtol=1e-12, atol=1e-12)
    # two tasks: the update never points against either task's gradient
    # rounding in the projections is relative to the inputs' sizes, not the result's (for
    # g1 = -g2 the exact update is 0 and the computed one ~1e-16)
    scale = max(np.linalg.norm(g1), np.linalg.norm(g2)) ** 2
    assert total @ g1 >= -1e-9 * scale and total @ g2 >= -1e-9 * scale


@given(st.lists(st.lists(finite, min_size=4, max_size=4), min_size=3, max_size=4),
       st.integers(0, 2**31 - 1))
def test_pcgrad_leaves_gradients_that_conflict_with_nobody_untouched(rows, seed):
    grads = [np.abs(np.array(r)) for r in rows]      # non-negative: no dot product < 0
    np.testing.assert_allclose(pcgrad(grads, np.random.default_rng(seed)), sum(grads),
                               rtol=1e-12, atol=1e-12)


@given(st.lists(st.floats(1e-3, 1e3), min_size=2, max_size=5).flatmap(
    lambda g: st.tuples(st.just(g), st.lists(st.floats(0.01, 10), min_size=len(g),
                                             max_size=len(g)),
                        st.lists(st.floats(0.1, 5), min_size=len(g), max_size=len(g)))),
       st.floats(0, 3), st.integers(1, 20))
def test_gradnorm_weights_stay_positive_and_sum_to_k(args, alpha, steps):
    g, ratio, w = (np.array(v) for v in args)
    w = w * len(w) / w.sum()
    for _ in range(steps):
        w = gradnorm_step(w, g, ratio, alpha, 0.05)
        assert np.all(w > 0) and w.sum() == pytest.approx(len(w), rel=1e-12)


@given(st.lists(st.floats(1e-3, 1e3), min_size=2, max_size=6).flatmap(
    lambda a: st.tuples(st.just(a), st.lists(st.floats(1e-3, 1e3), min_size=len(a),
                                             max_size=len(a)))), st.floats(0.1, 10))
def test_dwa_weights_stay_positive_and_sum_to_k(losses, temperature):
    last, before = (np.array(v) for v in losses)
    w = dwa_weights(last, before, temperature)
    assert np.all(w > 0) and w.sum() == pytest.approx(len(w), rel=1e-12)
    # the task whose loss fell least weighs most
    r = last / before
    assert np.argmax(w) == np.argmax(r) or np.isclose(w.max(), w[np.argmax(r)])


def test_dwa_starts_equal_and_then_follows_the_loss_ratios():
    tasks = [Task("a", "binary"), Task("b", "binary")]
    dwa = DWA(tasks)
    dwa.epoch_end({"a": 1.0, "b": 1.0})
    assert dwa.weights() == {"a": 1.0, "b": 1.0}
    dwa.epoch_end({"a": 0.5, "b": 1.0})          # a halved, b flat: b weighs more
    w = dwa.weights()
    assert w["b"] > w["a"] and w["a"] + w["b"] == pytest.approx(2)
    want_b = 2 * math.exp(1 / 2) / (math.exp(0.5 / 2) + math.exp(1 / 2))
    assert w["b"] == pytest.approx(want_b, rel=1e-12)


def test_uncertainty_weighting_passes_gradcheck(backend):
    if backend == "cuda_host":
        pytest.skip("no kernel of its own")
    tasks = [Task("r", "regression"), Task("c", "multiclass", 3)]
    u = Uncertainty(tasks, dtype=np.float64, backend=backend)
    u.log_var.data[:] = [0.3, -0.7]
    la = mt.tensor(np.array(1.7), backend=backend, requires_grad=True)
    lb = mt.tensor(np.array(0.4), backend=backend, requires_grad=True)
    assert gradcheck(lambda s, a, b: _total(u, s, a, b), [u.log_var, la, lb])


def _total(u, s, a, b):
    u.log_var = s
    return u.total({"r": a, "c": b})


def test_uncertainty_total_is_the_papers_formula():
    tasks = [Task("r", "regression"), Task("c", "binary")]
    u = Uncertainty(tasks, dtype=np.float64, backend="numpy")
    u.log_var.data[:] = [0.5, -1.0]
    total = u.total({"r": mt.tensor(np.array(2.0), backend="numpy"),
                     "c": mt.tensor(np.array(3.0), backend="numpy")}).item()
    want = 0.5 * math.exp(-0.5) * 2.0 + 0.25 + math.exp(1.0) * 3.0 - 0.5
    assert total == pytest.approx(want, rel=1e-13)
    assert u.weights() == pytest.approx({"r": 0.5 * math.exp(-0.5), "c": math.exp(1.0)})


@given(vectors(), st.floats(1e-3, 1e3))
def test_the_cosine_is_invariant_to_scaling_a_tasks_loss(pair, scale):
    g1, g2 = (np.array(v) for v in pair)
    assume(np.linalg.norm(g1) > 1e-6 and np.linalg.norm(g2) > 1e-6)
    # a task's loss scaled by s scales its gradient by s
    assert cosine(scale * g1, g2) == pytest.approx(cosine(g1, g2), abs=1e-9)
    assert magnitude_similarity(g1, g1) == pytest.approx(1.0)


def test_an_unknown_weighting_is_refused():
    with pytest.raises(ValueError, match="unknown weighting 'magic'"):
        make_weighting("magic", [Task("a", "binary")])
