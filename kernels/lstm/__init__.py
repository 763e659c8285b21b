"""LSTM: a long short-term memory layer over a batch-first sequence (PyTorch's nn.LSTM,
gates i, f, g, o).

Shapes
    x     (N, T, D)    input sequence, batch-first; T ≥ 1
    h0    (N, H)       initial hidden state
    c0    (N, H)       initial cell state
    w_ih  (4H, D)      input weights, row blocks [W_ii; W_if; W_ig; W_io]  (weight_ih_l0)
    w_hh  (4H, H)      hidden weights, row blocks [W_hi; W_hf; W_hg; W_ho] (weight_hh_l0)
    b_ih  (4H,)        input biases
    b_hh  (4H,)        hidden biases
    hs    (N, T, H)    every hidden state h_1 … h_T; the final state is hs[:, -1]
    cs    (N, T, H)    every cell state c_1 … c_T; the final cell is cs[:, -1]
    gates (N, T, 4H)   the post-activation gates [i_t, f_t, g_t, o_t] per step

Forward (σ(a) = 1 / (1 + e^(−a)), ⊙ elementwise, per batch row, vectors as columns,
h_0 = h0, c_0 = c0, t = 1 … T)
    z_t = W_ih x_t + b_ih + W_hh h_{t−1} + b_hh        pre-activations (4H)
    i_t = σ(z_t[i])       input gate
    f_t = σ(z_t[f])       forget gate
    g_t = tanh(z_t[g])    candidate cell
    o_t = σ(z_t[o])       output gate
    c_t = f_t ⊙ c_{t−1} + i_t ⊙ g_t
    h_t = o_t ⊙ tanh(c_t)
where v[i], v[f], v[g], v[o] are the first, second, third and fourth H entries of a
4H-vector v. fwd returns (hs, cs, gates) with hs[:, t−1] = h_t, cs[:, t−1] = c_t and
gates[:, t−1] = [i_t, f_t, g_t, o_t].

Backward
ℓ depends on every h_t and every c_t directly (upstream ghs[:, t−1], gcs[:, t−1]) and
through later steps. Let gh_t = ∂ℓ/∂h_t and gc_t = ∂ℓ/∂c_t be the TOTAL gradients. Walking
t = T … 1 with σ' = σ(1 − σ), tanh' = 1 − tanh²:
  h_{t} reaches the loss directly and through z_{t+1} = … + W_hh h_t:
    gh_t = ghs[:, t−1] + gz_{t+1} W_hh                  (row vectors; gz_{T+1} = 0)
  c_t reaches the loss directly, through h_t = o_t ⊙ tanh(c_t) and through
  c_{t+1} = f_{t+1} ⊙ c_t + …:
    gc_t = gcs[:, t−1] + gh_t ⊙ o_t ⊙ (1 − tanh²(c_t)) + gc_{t+1} ⊙ f_{t+1}   (f_{T+1} ≡ 0)
  the gates, from h_t = o_t ⊙ tanh(c_t) and c_t = f_t ⊙ c_{t−1} + i_t ⊙ g_t:
    go_t = gh_t ⊙ tanh(c_t)
    gi_t = gc_t ⊙ g_t
    gf_t = gc_t ⊙ c_{t−1}
    gg_t = gc_t ⊙ i_t
  the pre-activations, through the gate nonlinearities:
    gz_t = [gi_t ⊙ i_t ⊙ (1 − i_t);  gf_t ⊙ f_t ⊙ (1 − f_t);
            gg_t ⊙ (1 − g_t²);       go_t ⊙ o_t ⊙ (1 − o_t)]            (4H)
tanh(c_t) is recomputed from the saved cs, c_{t−1} is cs[:, t−2] (c0 for t = 1), and the
gates come from the saved post-activations, so no pre-activation is stored. The initial
states get what step 1 sends back, as any h_{t−1}, c_{t−1} would:
    gh0 = gz_1 W_hh,   gc0 = gc_1 ⊙ f_1.
z_t depends on x_t, W_ih, W_hh and both biases linearly, and the weights are shared by all
steps and rows, so their gradients sum over n and t. With the stack gz (N, T, 4H) and
hprev[:, t−1] = h_{t−1} (hprev = [h0, hs[:, :−1]] along T):

bwd(ghs, gcs, x, h0, c0, w_ih, w_hh, hs, cs, gates) computes exactly
    gz, gh0, gc0    by the backward walk above
    gx    = gz · W_ih                          gx[n,t,d]    = Σ_j gz[n,t,j]·w_ih[j,d]
    gw_ih = Σ_{n,t} gz[n,t,:]ᵀ x[n,t,:]        gw_ih[j,d]   = Σ_{n,t} gz[n,t,j]·x[n,t,d]
    gw_hh = Σ_{n,t} gz[n,t,:]ᵀ hprev[n,t,:]    gw_hh[j,k]   = Σ_{n,t} gz[n,t,j]·hprev[n,t,k]
    gb_ih = gb_hh = Σ_{n,t} gz[n,t,:]          (two separate arrays)
and returns (gx, gh0, gc0, gw_ih, gw_hh, gb_ih, gb_hh).

Edge cases and numerics
- σ is evaluated as e/(1 + e) for a < 0 and 1/(1 + e) for a ≥ 0 with e = exp(−|a|), so exp
  never overflows, whatever the pre-activation (reference, CUDA). The Numba backend uses the
  identity σ(a) = ½ + ½·tanh(a/2), so that one vectorised tanh serves all four gates; it
  cannot overflow either, and agrees to rounding.
- T ≥ 1 (the op layer guarantees it); N = 0 gives empty outputs and zero weight gradients.
- gcs is all zeros when only the hidden states are used (the op layer passes zeros).
- Every backend computes the input projection W_ih x_t + b_ih + b_hh of all steps with one
  matrix product before the recurrence, and gx, gw_ih, gw_hh with matrix products after it.

Properties tested (tests/kernels/test_lstm.py, every backend)
- zero weights and biases: i = f = o = ½ and g = 0, so c_t = 0.5ᵗ·c0 and
  h_t = 0.5·tanh(c_t);
- T = 1 equals one cell step written out in the test;
- causality: changing x[:, t+1:] leaves hs[:, :t+1] and cs[:, :t+1] unchanged;
- batch rows are independent (a row's outputs depend on that row's x, h0, c0 only);
- |h_t| ≤ 1 (a gate in (0, 1) times a tanh);
- PyTorch's torch.nn.LSTM(batch_first=True) with the same weights, nonzero h0 and c0: hs,
  final (h, c) and every gradient, float64, to 1e-10.
"""

__all__: list[str] = []
