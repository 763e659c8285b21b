"""Properties of ``make_mmoe_synthetic`` (the MMoE paper's section 3.2 generator).

Expected values come from the paper's construction, not from the code under test: the
geometry of w1, w2 (cosine p, norm c), the label formula recomputed term by term, and the
sampling distribution of a Pearson correlation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from minimtl.data import make_mmoe_synthetic

correlations = st.floats(-1.0, 1.0, allow_nan=False)
scales = st.floats(0.01, 100.0, allow_nan=False)
dims = st.integers(2, 200)
seeds = st.integers(0, 2**32 - 1)


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@given(p=correlations, c=scales, dim=dims, seed=seeds)
@example(p=1.0, c=1.0, dim=100, seed=0)
@example(p=-1.0, c=1.0, dim=100, seed=0)
@example(p=0.0, c=1.0, dim=2, seed=0)
def test_weight_vectors_have_cosine_p_and_norm_c(p, c, dim, seed):
    d = make_mmoe_synthetic(0, p, dim=dim, c=c, seed=seed)
    assert abs(_cos(d.w1, d.w2) - p) <= 1e-12
    assert math.isclose(np.linalg.norm(d.w1), c, rel_tol=1e-12)
    assert math.isclose(np.linalg.norm(d.w2), c, rel_tol=1e-12)


@given(dim=dims, seed=seeds)
def test_u1_u2_are_orthonormal_and_build_the_weights(dim, seed):
    d = make_mmoe_synthetic(0, 0.3, dim=dim, c=2.0, seed=seed)
    assert abs(d.u1 @ d.u2) <= 1e-14
    assert abs(np.linalg.norm(d.u1) - 1.0) <= 1e-14
    assert abs(np.linalg.norm(d.u2) - 1.0) <= 1e-14
    np.testing.assert_allclose(d.w1, 2.0 * d.u1, rtol=0, atol=1e-15)
    np.testing.assert_allclose(d.w2, 2.0 * (0.3 * d.u1 + math.sqrt(1 - 0.09) * d.u2),
                               rtol=0, atol=1e-14)


def _fisher_interval(p: float, n: int, k: float = 6.0) -> tuple[float, float]:
    """Where the sample Pearson r of n bivariate-normal pairs with correlation p lies.

    Fisher: atanh(r) is approximately N(atanh(p) + p/(2(n−1)), 1/(n−3)). The interval is
    atanh(p) ± (k/√(n−3) + 1/(2(n−1))), the bias term bounded by its value at |p| = 1; with
    k = 6 a correct generator falls outside with probability about 2·Φ(−6) ≈ 2e-9 per
    example. At |p| = 1 the interval shrinks to {p}: then y2 = ±y1 exactly.
    """
    z = math.atanh(min(max(p, -1 + 1e-15), 1 - 1e-15))
    half = k / math.sqrt(n - 3) + 1 / (2 * (n - 1))
    return math.tanh(z - half), math.tanh(z + half)


@given(p=correlations, c=scales, seed=seeds)
@example(p=1.0, c=1.0, seed=0)
@example(p=-1.0, c=1.0, seed=0)
@example(p=0.0, c=1.0, seed=0)
@example(p=0.5, c=1.0, seed=0)
def test_linear_noiseless_labels_have_pearson_correlation_p(p, c, seed):
    # y_k = w_kᵀx with x ~ N(0, I): (y1, y2)/c is bivariate normal, unit variances,
    # covariance w1ᵀw2/c² = p; so the sample Pearson r follows Fisher's distribution.
    n = 4000
    d = make_mmoe_synthetic(n, p, c=c, linear=True, noise=0.0, seed=seed, dtype=np.float64)
    r = float(np.corrcoef(d.y1, d.y2)[0, 1])
    lo, hi = _fisher_interval(p, n)
    assert lo - 1e-9 <= r <= hi + 1e-9, (p, r, lo, hi)


def test_fisher_interval_rejects_a_wrong_correlation():
    # The bound can fail: labels built with cosine 0.5 are outside the interval for 0.6.
    d = make_mmoe_synthetic(4000, 0.5, linear=True, noise=0.0, dtype=np.float64)
    r = float(np.corrcoef(d.y1, d.y2)[0, 1])
    lo, hi = _fisher_interval(0.6, 4000)
    assert not lo <= r <= hi


@given(p=correlations, seed=seeds, sines=st.integers(0, 12))
def test_labels_follow_the_paper_formula(p, seed, sines):
    d = make_mmoe_synthetic(50, p, dim=7, sines=sines, noise=0.0, seed=seed, dtype=np.float64)
    assert d.alpha.shape == d.beta.shape == (sines,)
    for w, y in ((d.w1, d.y1), (d.w2, d.y2)):
        expected = []
        for row in d.x:
            z = sum(wi * xi for wi, xi in zip(w, row))
            expected.append(z + sum(math.sin(a * z + b) for a, b in zip(d.alpha, d.beta)))
        np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    lin = make_mmoe_synthetic(50, p, dim=7, sines=sines, noise=0.0, linear=True, seed=seed,
                              dtype=np.float64)
    np.testing.assert_allclose(lin.y1, d.x @ d.w1, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(lin.y2, d.x @ d.w2, rtol=1e-12, atol=1e-12)


def test_noise_is_independent_gaussian_with_standard_deviation_sigma():
    n, sigma = 20000, 0.1
    clean = make_mmoe_synthetic(n, 0.7, noise=0.0, dtype=np.float64)
    noisy = make_mmoe_synthetic(n, 0.7, noise=sigma, dtype=np.float64)
    e1, e2 = noisy.y1 - clean.y1, noisy.y2 - clean.y2
    for e in (e1, e2):
        # mean of n N(0, σ²) draws: within 6σ/√n; sample variance / σ²: within 6·√(2/n)
        assert abs(e.mean()) <= 6 * sigma / math.sqrt(n)
        assert abs(e.var() / sigma**2 - 1) <= 6 * math.sqrt(2 / n)
    assert abs(np.corrcoef(e1, e2)[0, 1]) <= 6 / math.sqrt(n)
    # x and the inputs of the noise-free labels are untouched by the noise stream
    np.testing.assert_array_equal(clean.x, noisy.x)


def test_inputs_are_standard_normal():
    d = make_mmoe_synthetic(5000, 0.5, dim=20, dtype=np.float64)
    m = d.x.size
    assert abs(d.x.mean()) <= 6 / math.sqrt(m)
    assert abs(d.x.var() - 1) <= 6 * math.sqrt(2 / m)


@given(p=correlations, seed=seeds)
def test_same_seed_same_data(p, seed):
    a = make_mmoe_synthetic(30, p, dim=5, seed=seed)
    b = make_mmoe_synthetic(30, p, dim=5, seed=seed)
    for name in ("x", "y1", "y2", "w1", "w2", "u1", "u2", "alpha", "beta"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.meta == b.meta


@given(p=correlations, q=correlations, seed=seeds)
def test_different_correlation_same_seed_same_inputs(p, q, seed):
    a = make_mmoe_synthetic(30, p, dim=5, seed=seed)
    b = make_mmoe_synthetic(30, q, dim=5, seed=seed)
    for name in ("x", "w1", "u1", "u2", "alpha", "beta"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    # and task 1, whose weights do not depend on p, is the same task
    np.testing.assert_array_equal(a.y1, b.y1)


def test_different_seeds_differ():
    a = make_mmoe_synthetic(10, 0.5, dim=5, seed=0)
    b = make_mmoe_synthetic(10, 0.5, dim=5, seed=1)
    assert not np.array_equal(a.x, b.x)
    assert not np.array_equal(a.u1, b.u1)


def test_shapes_dtypes_and_meta():
    d = make_mmoe_synthetic(12, 0.9)
    assert d.x.shape == (12, 100) and d.x.dtype == np.float32
    assert d.y1.shape == d.y2.shape == (12,) and d.y1.dtype == np.float32
    assert d.w1.shape == d.w2.shape == (100,) and d.w1.dtype == np.float64
    assert d.alpha.shape == (10,)
    assert len(d) == 12 and set(d.targets) == {"y1", "y2"}
    assert d.meta["correlation"] == 0.9 and d.meta["noise"] == 0.1 and d.meta["c"] == 1.0
    assert make_mmoe_synthetic(3, 0.1, dtype=np.float64).x.dtype == np.float64


@pytest.mark.parametrize("kwargs", [dict(correlation=1.01), dict(correlation=-1.5),
                                    dict(correlation=float("nan")), dict(c=0.0),
                                    dict(noise=-0.1), dict(dim=1), dict(sines=-1)])
def test_bad_arguments_raise(kwargs):
    args = dict(n=5, correlation=0.5) | kwargs
    with pytest.raises(ValueError, match="make_mmoe_synthetic"):
        make_mmoe_synthetic(args.pop("n"), args.pop("correlation"), **args)
