"""avgpool1d: the mean over sliding windows of each channel, zero padding counted.

Shapes
    x (N, C, L) → y (N, C, Lo), with window K = kernel_size, stride S, padding P and
    Lo = ⌊(L + 2·P − K) / S⌋ + 1. The op layer guarantees 1 ≤ K, 1 ≤ S, 0 ≤ P ≤ ⌊K/2⌋ and
    Lo ≥ 1 (PyTorch's rules).

Forward
    Pad x with P zeros on each side: x̃[n,c,i] = x[n,c,i−P] for P ≤ i < P + L, else 0.
    Every window is divided by K, padded zeros included (PyTorch's count_include_pad=True):

        y[n,c,t] = (1/K) · Σ_{k=0}^{K−1} x̃[n,c,t·S + k]
                 = (1/K) · Σ_{j ∈ J_t} x[n,c,j],     J_t = { t·S − P + k : 0 ≤ k < K } ∩ [0, L).

    Every backend adds the window's values in increasing position (padded zeros change
    nothing), in the input dtype, and then divides the sum by K.

Backward
    y is linear in x. Its partial derivatives are constants:
        ∂y[n,c,t] / ∂x[n,c,j] = 1/K if j ∈ J_t (t·S − P ≤ j ≤ t·S − P + K − 1), else 0.
    Chain rule with the upstream gradient gy = ∂ℓ/∂y:
        gx[n,c,j] = Σ_t gy[n,c,t] · ∂y[n,c,t]/∂x[n,c,j]
                  = (1/K) · Σ_{t : j ∈ J_t} gy[n,c,t].
    Solving t·S − P ≤ j ≤ t·S − P + K − 1 for t gives the windows that contain j:
        t ∈ [⌈(j + P − K + 1)/S⌉, ⌊(j + P)/S⌋] ∩ [0, Lo).
    This is what ``bwd(gy, *, length=L, kernel_size, stride, padding)`` computes: the sum of
    gy over those windows, divided by K. A j that no window reaches (the tail of x when
    (L + 2P − K) is not a multiple of S, or gaps when S > K) gets 0. gx does not depend on
    x, so bwd takes no saved array. The backward is the adjoint of the forward:
    ⟨fwd(x), gy⟩ = ⟨x, bwd(gy)⟩ for all x, gy.

Layouts
    fwd and bwd take channels_last (default False, the layout above). channels_last=True is
    the same math on channels-last arrays, x (N, L, C) → y (N, Lo, C), gy (N, Lo, C) →
    gx (N, L, C):
        y[n,t,c]  = (1/K) · Σ_{j ∈ J_t} x[n,j,c]                     (j ascending)
        gx[n,j,c] = (1/K) · Σ_{t : j ∈ J_t} gy[n,t,c]
    i.e. the channels-first result on the transposed arrays, transposed back; the windows
    run along the length axis and the order of the sums is unchanged.

Edge cases
    Windows that overlap padding still divide by K (their mean is pulled towards 0).
    K = 1 (and S = 1) is the identity. N = 0 gives an empty output. L = K (P = 0): Lo = 1,
    the mean of the whole row.

Properties tested (tests/kernels/test_avgpool1d.py)
    naive loops; linearity in x; the adjoint identity above; equality with a depthwise
    convolution whose weights are all 1/K; finite differences; PyTorch's F.avg_pool1d;
    channels_last: the reference equals its transposed channels-first result, every backend
    matches the reference and its own transposed channels-first run.
"""

__all__: list[str] = []
