"""Shapes that several kernel families share: the output lengths of conv1d and the pools,
and the swap between the two layouts.

Plain Python on ints and array methods, so the same function serves the NumPy references,
the Numba wrappers and the CuPy wrappers (a NumPy or a CuPy array alike).
"""

from __future__ import annotations

__all__ = ["conv_out_length", "pool_out_length", "swap_layout"]


def conv_out_length(L: int, K: int, stride: int, padding_left: int, padding_right: int,
                    dilation: int) -> int:
    """Lo = ⌊(L + Pl + Pr − d·(K−1) − 1) / S⌋ + 1 (conv1d's SPEC); below 1 when the dilated
    window does not fit the padded input (the caller names the op in its error)."""
    return (L + padding_left + padding_right - dilation * (K - 1) - 1) // stride + 1


def pool_out_length(op: str, length: int, kernel_size: int, stride: int, padding: int) -> int:
    """Lo = ⌊(L + 2·P − K) / S⌋ + 1 of the pool ``op`` (maxpool1d, avgpool1d), checked
    against the rules of their SPECs: K ≥ 1, S ≥ 1, 0 ≤ P ≤ ⌊K/2⌋, L + 2·P ≥ K."""
    if kernel_size < 1 or stride < 1 or not 0 <= padding <= kernel_size // 2:
        raise ValueError(
            f"{op}: need kernel_size ≥ 1, stride ≥ 1, 0 ≤ padding ≤ kernel_size // 2; "
            f"got kernel_size={kernel_size}, stride={stride}, padding={padding}"
        )
    if length + 2 * padding < kernel_size:
        raise ValueError(
            f"{op}: window {kernel_size} is longer than the padded input "
            f"(length {length} + 2·padding {padding})"
        )
    return (length + 2 * padding - kernel_size) // stride + 1


def swap_layout(a):
    """(N, C, L) ↔ (N, L, C): the last two axes swapped, as a fresh C-contiguous copy of
    ``a`` (a NumPy or a CuPy array). The channels-last adapter of kernels that index one
    layout only."""
    return a.swapaxes(1, 2).copy()
