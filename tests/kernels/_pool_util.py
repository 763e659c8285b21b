"""Scaffolding shared by the pool kernel tests (test_maxpool1d, test_avgpool1d): the dtypes
and fixed parameter cases, Hypothesis case drawing, the fixed input lengths, the
channels-first ↔ channels-last transpose and the argument checks every pool's fwd makes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import strategies as st

from minimtl.testing import arrays, ncl_shapes, pool1d_params

DTYPES = ("float32", "float64")

# (kernel_size, stride, padding): overlapping, non-overlapping, gapped, padded, K = 1
PARAMS = [(2, 2, 0), (3, 1, 1), (3, 2, 0), (2, 1, 1), (4, 3, 2), (5, 2, 2), (1, 1, 0), (3, 5, 1)]


def params(kernel_size, stride, padding):
    """The pool parameters as the keyword arguments of fwd and bwd."""
    return dict(kernel_size=kernel_size, stride=stride, padding=padding)


def overlap(kernel_size, stride):
    """How many windows one input position can belong to (terms of a gradient sum)."""
    return -(-kernel_size // stride)


def fixed_lengths(kernel_size, padding):
    """Input lengths of the fixed cases. L = K − 2P: shorter than the window, only the
    padding makes it fit; L = K with P = 0: a single window; then K + 1 and 13 (odd)."""
    return (max(1, kernel_size - 2 * padding), kernel_size, kernel_size + 1, 13)


# Hypothesis ------------------------------------------------------------------------------


def draw_seed(data):
    """A seed for NumPy's generator (of gy, or of the directions of a finite difference)."""
    return data.draw(st.integers(0, 2**32 - 1))


def draw_shape_and_params(data):
    """An (N, C, L) shape and pool parameters that fit its length L."""
    shape = data.draw(ncl_shapes())
    return shape, data.draw(pool1d_params(shape[2]))


def draw_case(data, channels_last=False):
    """A dtype from DTYPES, an input of it, (N, C, L) or with channels_last (N, L, C), and
    pool parameters that fit its length."""
    dtype = data.draw(st.sampled_from(DTYPES))
    (N, C, L), p = draw_shape_and_params(data)
    return data.draw(arrays((N, L, C) if channels_last else (N, C, L), dtype)), p


# channels last ---------------------------------------------------------------------------


def swap(a):
    """(N, C, ·) ↔ (N, ·, C), contiguous."""
    return np.ascontiguousarray(np.swapaxes(a, 1, 2))


def assert_bitwise(a, b):
    assert a.shape == b.shape and a.dtype == b.dtype and a.flags.c_contiguous
    assert a.tobytes() == np.ascontiguousarray(b).tobytes()


# argument checks ---------------------------------------------------------------------------


def check_fwd_rejects_inconsistent_input(reference, op):
    """The reference's fwd raises a ValueError naming ``op`` on a 2-D x, on padding over
    kernel_size // 2 and on a window longer than the padded input."""
    x = np.zeros((2, 3, 4))
    with pytest.raises(ValueError, match=op):
        reference.fwd(x[0], **params(2, 2, 0))
    with pytest.raises(ValueError, match=op):
        reference.fwd(x, **params(2, 2, 2))  # padding > kernel_size // 2
    with pytest.raises(ValueError, match=op):
        reference.fwd(x, **params(7, 1, 1))  # window longer than the padded input
