"""The public Hypothesis strategies draw what they promise."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from minimtl.testing import arrays, conv1d_params, distinct_arrays, pool1d_params


@given(arrays((4, 5), "float32", 0.01, 0.99))
def test_float32_bounds_need_not_be_representable(a):
    assert a.dtype == np.float32 and np.all(a >= 0.01) and np.all(a <= 0.99)


@given(arrays((50,), "float32", -1.0, 1.0, min_magnitude=1e-6))
def test_min_magnitude_flushes_tiny_values_to_zero(a):
    nonzero = a[a != 0]
    assert np.all(np.abs(nonzero) >= 1e-6)
    assert np.all(np.isfinite(a))


@given(distinct_arrays((3, 4), gap=0.01))
def test_distinct_arrays_keep_their_gap(a):
    v = np.sort(a.ravel())
    assert np.all(np.diff(v) >= 0.01 - 1e-12)


@given(st.data())
def test_conv_and_pool_parameters_fit_the_length(data):
    length = data.draw(st.integers(1, 16))
    k = data.draw(st.integers(1, 5))
    p = data.draw(conv1d_params(length=length, kernel_size=k))
    span = length + 2 * p["padding"]
    assert p["dilation"] * (k - 1) + 1 <= span and p["stride"] >= 1
    q = data.draw(pool1d_params(length=length))
    assert q["kernel_size"] <= length + 2 * q["padding"]
    assert q["padding"] <= q["kernel_size"] // 2
