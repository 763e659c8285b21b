"""conv1d: one-dimensional cross-correlation over (N, C, L) inputs, PyTorch's ``conv1d``.

Shapes
------
x  (N, C, L)    input: N samples, C channels, L positions
w  (O, C, K)    weight: O output channels, window of K taps
b  (O,) | None  bias
y  (N, O, Lo)   output
Static parameters (keyword-only ints): stride S ≥ 1, padding_left Pl ≥ 0,
padding_right Pr ≥ 0, dilation d ≥ 1 ('same' padding is resolved by the op layer into a
possibly unequal Pl, Pr).

    Lo = ⌊(L + Pl + Pr − d·(K−1) − 1) / S⌋ + 1          (the op layer guarantees Lo ≥ 1)

Forward
-------
Zero-pad x on the left by Pl and on the right by Pr:

    xp[n,c,i] = x[n,c,i−Pl]  if 0 ≤ i−Pl < L,  else 0          (i = 0 … L+Pl+Pr−1)

    y[n,o,t] = b[o] + Σ_c Σ_k w[o,c,k]·xp[n,c,t·S+k·d]         (no b[o] when b is None)

Backward
--------
Let ℓ be a scalar loss and gy[n,o,t] = ∂ℓ/∂y[n,o,t] (same shape as y). Each y[n,o,t] is
affine in b, in w and in x, so the chain rule only sums gy times the coefficient:

1. ∂y[n,o,t]/∂b[o'] = [o = o']                ⇒  gb[o] = Σ_n Σ_t gy[n,o,t]
2. ∂y[n,o,t]/∂w[o,c,k] = xp[n,c,t·S+k·d]      ⇒  gw[o,c,k] = Σ_n Σ_t gy[n,o,t]·xp[n,c,t·S+k·d]
3. ∂y[n,o,t]/∂xp[n,c,i] = Σ_k w[o,c,k]·[t·S+k·d = i]
                          ⇒  gxp[n,c,i] = Σ_o Σ_k Σ_{t : t·S+k·d = i} w[o,c,k]·gy[n,o,t]
4. xp[n,c,j+Pl] = x[n,c,j] and the padding is constant, so
                              gx[n,c,j] = gxp[n,c,j+Pl]
   i.e. for each tap k the position i = j+Pl−k·d contributes when i ≥ 0, S divides i and
   t = i/S < Lo.

Matrix form (what the fast backends compute). Unfold the padded input into columns,
X̂[(c,k), (n,t)] = xp[n,c,t·S+k·d] (shape (C·K, N·Lo), "im2col"), and flatten
W2[o, (c,k)] = w[o,c,k] (O, C·K) and G[o, (n,t)] = gy[n,o,t] (O, N·Lo). Then

    y  = W2·X̂ + b          (O, N·Lo), reordered to (N, O, Lo)
    gb = G·1               (the row sums of G)
    gw = G·X̂ᵀ              (O, C·K), reshaped to (O, C, K)          (step 2)
    gX̂ = W2ᵀ·G             (C·K, N·Lo)
    gx[n,c,j] = Σ_k gX̂[(c,k), (n,t)] over t with t·S+k·d = j+Pl, 0 ≤ t < Lo
                                                       ("col2im", steps 3 and 4)

``bwd(gy, x, w, *, stride, padding_left, padding_right, dilation, need_gx=True)`` returns
exactly ``(gx, gw, gb)`` as in steps 1-4; gb is always computed (the op layer drops it when
the layer has no bias). With ``need_gx=False`` steps 3-4 are skipped and gx is None: the
op layer passes it when x needs no gradient (the network's first convolution reads data),
which saves the gX̂ product and col2im.

Layouts
-------
``fwd`` and ``bwd`` take ``channels_last`` (default False: the layout above). With
``channels_last=True`` the activations are channels-last, Keras's layout: x (N, L, C),
y and gy (N, Lo, O), gx (N, L, C); w stays (O, C, K). The math is the same with the last
two axes swapped,

    y[n,t,o] = b[o] + Σ_c Σ_k w[o,c,k]·xp[n,t·S+k·d,c],

so every formula above holds after transposing x, y, gy and gx. In the matrix form the
product is simply transposed: y viewed as (N·Lo, O) equals X̂ᵀ·W2ᵀ + b, whose rows (n, t)
are already y's memory order, and gy viewed as (N·Lo, O) is Gᵀ; gw = (X̂·Gᵀ)ᵀ and
gX̂ᵀ = Gᵀ·W2. That is why the CPU runs the network channels-last: no pass reorders a whole
array between the products and the activations.

Edge cases
----------
- Padding positions read as 0 and their gradient is discarded (step 4).
- The window may be wider than L when padding makes room (K·d > L is fine while Lo ≥ 1).
- With S > 1 the last few samples may be covered by no window; their gx is 0.
- N = 0 gives y of shape (0, O, Lo), gx of shape (0, C, L), gw = 0 and gb = 0.
- b = None adds nothing; inputs are never written, outputs are fresh arrays of x's dtype.

Properties tested (tests/kernels/test_conv1d.py)
------------------------------------------------
- y is linear in x and in w (with b = None);
- adjoint identities (b = None): ⟨conv(x, w), v⟩ = ⟨x, gx(v)⟩ = ⟨w, gw(v)⟩ for any v;
- a delta kernel (w[o,c,k] = [o = c][k = k₀], S = 1, no padding, d = 1) returns the
  input shifted by k₀: y[n,c,t] = x[n,c,t+k₀];
- one channel, stride 1, no padding, d = 1 equals ``np.correlate(x, w, 'valid')``;
- the output length follows the formula for Lo above;
- agreement with naive loops, across backends, with finite differences and with PyTorch's
  ``conv1d`` (stride, unequal padding, dilation, with and without bias);
- channels-last on every backend against the channels-first reference
  (tests/kernels/test_conv1d_channels_last.py).
"""

__all__: list[str] = []
