"""The modules that several kernel families share (kernels/_shapes.py, kernels/_im2col.py,
the host side of kernels/_gemm_cuda.py and kernels/_splitk_cuda.py): their small pure-Python
pieces, checked against counting by hand. The kernels built on them
are checked in the families' own tests."""

from __future__ import annotations

import numpy as np
import pytest

from kernels._gemm_cuda import check_offsets
from kernels._im2col import batch_chunks
from kernels._shapes import conv_out_length, pool_out_length, swap_layout
from kernels._splitk_cuda import slices


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


@pytest.mark.parametrize("length", [1, 127, 128, 129, 5000, 100_003])
@pytest.mark.parametrize("tiles", [1, 3, 64, 2000])
@pytest.mark.parametrize("chunk", [1, 16])
def test_slices_cover_the_reduction_in_whole_chunks_near_the_block_target(length, tiles, chunk):
    target = 1024
    pb, splits = slices(length, tiles, chunk, target)
    assert pb % chunk == 0 and pb >= 8 * chunk
    assert (splits - 1) * pb < length <= splits * pb      # every term once, no empty slice
    assert splits <= max(1, target // tiles)              # at most about target blocks
    if pb > 8 * chunk and target // tiles > 1:            # not held up by the minimum slice
        assert splits > (target // tiles) // 2, (pb, splits)


def test_check_offsets_refuses_shapes_past_int32_and_names_the_op():
    check_offsets("conv1d", 2**10, 2**10, 2**10, 2**10, 2**10 - 1)   # 2^30 offsets: fine
    check_offsets("conv1d", 1, 2**15, 2**16 - 1, 1, 1)
    with pytest.raises(ValueError, match=r"conv1d \(cupy\): N=1, C=32768, L=65536"):
        check_offsets("conv1d", 1, 2**15, 2**16, 1, 1)
    with pytest.raises(ValueError, match="conv1d_relu_maxpool .*too large for int32"):
        check_offsets("conv1d_relu_maxpool", 2, 1, 2**10, 2**20, 2**10)
