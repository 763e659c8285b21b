"""RNN: an Elman (tanh) recurrent layer over a batch-first sequence (PyTorch's nn.RNN).

Shapes
    x     (N, T, D)    input sequence, batch-first; T ≥ 1
    h0    (N, H)       initial hidden state
    w_ih  (H, D)       input weights   (PyTorch's weight_ih_l0)
    w_hh  (H, H)       hidden weights  (PyTorch's weight_hh_l0)
    b_ih  (H,)         input bias
    b_hh  (H,)         hidden bias
    hs    (N, T, H)    every hidden state h_1 … h_T; the final state is hs[:, -1]

Forward (per batch row, vectors as columns, h_0 = h0, t = 1 … T)
    a_t = W_ih x_t + b_ih + W_hh h_{t−1} + b_hh        pre-activation (H)
    h_t = tanh(a_t)
fwd returns hs with hs[:, t−1] = h_t. Nothing else is saved: tanh' is a function of h_t.

Backward
Let g_t = ∂ℓ/∂h_t be the total gradient reaching h_t: the upstream ghs[:, t−1] plus what
flows back from step t+1 (nothing for t = T). Walking t = T … 1:
    h_t = tanh(a_t), tanh' = 1 − tanh²   ⇒  ga_t = g_t ⊙ (1 − h_t²)              (H)
    a_t = … + W_hh h_{t−1}               ⇒  h_{t−1} receives ga_t W_hh (row vector)
so  g_T = ghs[:, T−1],  g_{t−1} = ghs[:, t−2] + ga_t W_hh  for t = T … 2,
and the gradient of the initial state is what step 1 sends back: gh0 = ga_1 W_hh.
a_t depends on x_t, W_ih, W_hh and both biases linearly, and the weights are shared by all
steps and rows, so their gradients sum over n and t. With the stack ga (N, T, H) and
hprev[:, t−1] = h_{t−1} (hprev = [h0, hs[:, :−1]] along T):

bwd(ghs, x, h0, w_ih, w_hh, hs) computes exactly
    ga, g_0         by the backward walk above (g_0 = ga_1 W_hh)
    gx    = ga · W_ih                          gx[n,t,d]    = Σ_j ga[n,t,j]·w_ih[j,d]
    gh0   = g_0
    gw_ih = Σ_{n,t} ga[n,t,:]ᵀ x[n,t,:]        gw_ih[j,d]   = Σ_{n,t} ga[n,t,j]·x[n,t,d]
    gw_hh = Σ_{n,t} ga[n,t,:]ᵀ hprev[n,t,:]    gw_hh[j,k]   = Σ_{n,t} ga[n,t,j]·hprev[n,t,k]
    gb_ih = gb_hh = Σ_{n,t} ga[n,t,:]          (two separate arrays)
and returns (gx, gh0, gw_ih, gw_hh, gb_ih, gb_hh).

Edge cases and numerics
- T ≥ 1 (the op layer guarantees it); N = 0 gives empty outputs and zero weight gradients.
- tanh saturates to ±1 for |a| ≳ 9 (float32) or 19 (float64); then 1 − h² = 0 and no
  gradient flows through that unit, as in PyTorch. Nothing overflows.
- Every backend computes the input projection W_ih x_t + b_ih + b_hh of all steps with one
  matrix product before the recurrence, and gx, gw_ih, gw_hh with matrix products after it.

Properties tested (tests/kernels/test_rnn.py, every backend)
- zero weights and biases give h_t = tanh(0) = 0 for every t, whatever x and h0;
- T = 1 equals one cell step written out in the test;
- causality: changing x[:, t+1:] leaves hs[:, :t+1] unchanged;
- batch rows are independent (a row's output depends on that row's x and h0 only);
- |h_t| ≤ 1 (tanh cell; < 1 away from saturation);
- PyTorch's torch.nn.RNN(nonlinearity="tanh", batch_first=True) with the same weights: hs,
  final h and every gradient, float64, to 1e-10.
"""

__all__: list[str] = []
