"""maxpool1d: the maximum over sliding windows of each channel, with the index it came from.

Shapes
    x (N, C, L) → y (N, C, Lo) and argmax (N, C, Lo) int32, with window K = kernel_size,
    stride S, padding P and Lo = ⌊(L + 2·P − K) / S⌋ + 1. The op layer guarantees
    1 ≤ K, 1 ≤ S, 0 ≤ P ≤ ⌊K/2⌋ and Lo ≥ 1 (PyTorch's rules).

Forward
    Output t looks at the K positions j = t·S − P + k, k = 0 … K−1, of the input padded with
    P values −∞ on each side. Padding is −∞, so it never beats a real value, and the rules
    above leave at least one real position in every window. So only the real ones count:

        J_t       = { t·S − P + k : 0 ≤ k < K } ∩ [0, L)            (never empty)
        y[n,c,t]  = max_{j ∈ J_t} x[n,c,j]
        argmax[n,c,t] = min { j ∈ J_t : x[n,c,j] = y[n,c,t] }     (the FIRST maximum)

    argmax indexes the unpadded input, in [0, L), as PyTorch's return_indices does.

Backward
    y[n,c,t] = x[n,c,argmax[n,c,t]] where the maximum is unique, so y is locally a copy of one
    input element and
        ∂y[n,c,t] / ∂x[n,c,j] = [j = argmax[n,c,t]]                 (1 if equal, else 0).
    Chain rule with the upstream gradient gy = ∂ℓ/∂y:
        gx[n,c,j] = Σ_t gy[n,c,t] · ∂y[n,c,t]/∂x[n,c,j]
                  = Σ_{t : argmax[n,c,t] = j} gy[n,c,t].
    This is what ``bwd(gy, argmax, *, length=L, kernel_size, stride, padding)`` computes:
    a scatter-add of gy into gx at argmax. When S < K windows overlap, one j can be the
    maximum of several windows and receives the sum of their gy; a j that no window
    chose gets 0. Both ways of computing it add the terms in increasing t, starting from 0:
      - scatter (reference, Numba): gx = 0; for t ascending: gx[argmax[t]] += gy[t];
      - gather (CUDA, no atomics): gx[j] = Σ over the windows t that contain j, t ascending,
        of gy[t]·[argmax[t] = j]; the windows containing j are
        t ∈ [⌈(j + P − K + 1)/S⌉, ⌊(j + P)/S⌋] ∩ [0, Lo).
    kernel_size, stride and padding are passed to bwd for that gather.

Layouts
    fwd and bwd take channels_last (default False, the layout above). channels_last=True is
    the same math on channels-last arrays, x (N, L, C) → y and argmax (N, Lo, C), gy
    (N, Lo, C) → gx (N, L, C):
        y[n,t,c]      = max_{j ∈ J_t} x[n,j,c]
        argmax[n,t,c] = min { j ∈ J_t : x[n,j,c] = y[n,t,c] }
        gx[n,j,c]     = Σ_{t : argmax[n,t,c] = j} gy[n,t,c]            (t ascending)
    i.e. the channels-first result on the transposed arrays, transposed back. argmax still
    indexes the length axis, in [0, L). Ties, NaN and the order of the sums are unchanged.

Edge cases
    Ties: the first (leftmost) maximum wins, in y's index and so in the gradient; at a tie
    the true derivative does not exist and this is the usual subgradient choice.
    NaN: counts as larger than every number, so a window holding NaN gives y = NaN and
    argmax = its first NaN (what NumPy's argmax and PyTorch do).
    A window whose real values are all −∞ gives y = −∞ and argmax = its first real position.
    N = 0 gives empty outputs. L = K (with P = 0) gives Lo = 1.

Properties tested (tests/kernels/test_maxpool1d.py)
    y is the window maximum and argmax its first position (naive loops, crafted ties);
    pool(x + c) = pool(x) + c; pool(a·x) = a·pool(x) for a > 0; the gradient goes to the
    argmax only; with S ≥ K each window's gradient sums to its gy; y and argmax bitwise
    equal across backends; finite differences; PyTorch's F.max_pool1d(return_indices=True);
    channels_last: the reference equals its transposed channels-first result, every backend
    matches the reference (y and argmax bitwise) and its own transposed channels-first run.
"""

__all__: list[str] = []
