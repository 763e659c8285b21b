"""The modules that several kernel families share (kernels/_shapes.py, kernels/_im2col.py):
their small pure-Python pieces, checked against counting by hand. The kernels built on them
are checked in the families' own tests."""

from __future__ import annotations

import numpy as np
import pytest

from kernels._im2col import batch_chunks
from kernels._shapes import conv_out_length, pool_out_length, swap_layout


@pytest.mark.parametrize("shape", [(2, 3, 5), (2, 1, 5), (2, 4, 1), (0, 3, 4)])
def test_swap_layout_is_a_fresh_contiguous_copy_with_the_last_axes_swapped(shape):
    a = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    b = swap_layout(a)
    assert b.shape == (shape[0], shape[2], shape[1]) and b.dtype == a.dtype
    assert b.flags.c_contiguous and not np.shares_memory(a, b)   # also where C or L is 1
    np.testing.assert_array_equal(b, np.transpose(a, (0, 2, 1)))
    np.testing.assert_array_equal(swap_layout(b), a)


def test_conv_out_length_counts_the_windows_that_fit():
    for L in range(1, 9):
        for K in range(1, 4):
            for S in range(1, 4):
                for pl in range(3):
                    for pr in range(3):
                        for d in range(1, 3):
                            span = d * (K - 1) + 1
                            starts = [t for t in range(L + pl + pr) if t % S == 0
                                      and t + span <= L + pl + pr]
                            got = conv_out_length(L, K, S, pl, pr, d)
                            assert max(got, 0) == len(starts), (L, K, S, pl, pr, d)


def test_pool_out_length_counts_the_windows_and_names_the_op_on_bad_parameters():
    for L in range(1, 9):
        for K in range(1, 5):
            for S in range(1, 4):
                for P in range(K // 2 + 1):
                    if L + 2 * P < K:
                        continue
                    want = len(range(0, L + 2 * P - K + 1, S))
                    assert pool_out_length("maxpool1d", L, K, S, P) == want
    with pytest.raises(ValueError, match="avgpool1d: need kernel_size"):
        pool_out_length("avgpool1d", 8, 2, 1, 2)
    with pytest.raises(ValueError, match="maxpool1d: window 5 is longer"):
        pool_out_length("maxpool1d", 4, 5, 1, 0)


@pytest.mark.parametrize("N", [0, 1, 5, 17])
@pytest.mark.parametrize("Lo", [1, 3, 10])
@pytest.mark.parametrize("per_chunk", [1, 7, 64])
def test_batch_chunks_cover_the_batch_once_in_order(N, Lo, per_chunk):
    nb, chunks = batch_chunks(N, Lo, per_chunk)
    assert nb >= 1
    covered = [n for n0, n1 in chunks for n in range(n0, n1)]
    assert covered == list(range(N))
    assert all(0 < n1 - n0 <= nb for n0, n1 in chunks)
