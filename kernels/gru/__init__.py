"""GRU: a gated recurrent unit layer over a batch-first sequence (PyTorch's GRU, gates r, z, n).

Shapes
    x     (N, T, D)    input sequence, batch-first; T ≥ 1
    h0    (N, H)       initial hidden state
    w_ih  (3H, D)      input weights, row blocks [W_ir; W_iz; W_in]   (PyTorch's weight_ih_l0)
    w_hh  (3H, H)      hidden weights, row blocks [W_hr; W_hz; W_hn]  (PyTorch's weight_hh_l0)
    b_ih  (3H,)        input biases  [b_ir; b_iz; b_in]
    b_hh  (3H,)        hidden biases [b_hr; b_hz; b_hn]
    hs    (N, T, H)    every hidden state h_1 … h_T; the final state is hs[:, -1]
    gates (N, T, 4H)   what backward needs, per step: [r, z, n, m] (defined below)

Forward (σ(a) = 1 / (1 + e^(−a)), ⊙ elementwise, h_0 = h0, t = 1 … T)
    p_t = W_ih x_t + b_ih                              input projection, all steps at once
    q_t = W_hh h_{t−1} + b_hh                          hidden projection, step by step
    r_t = σ(p_t[r] + q_t[r])                           reset gate
    z_t = σ(p_t[z] + q_t[z])                           update gate
    m_t = q_t[n] = W_hn h_{t−1} + b_hn                 saved: the reset gate multiplies it
    n_t = tanh(p_t[n] + r_t ⊙ m_t)                     candidate state
    h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t−1}
where v[r], v[z], v[n] are the first, second and third H entries of a 3H-vector v.
fwd returns (hs, gates) with hs[:, t−1] = h_t and gates[:, t−1] = [r_t, z_t, n_t, m_t].

Backward
Let g_t = ∂ℓ/∂h_t be the total gradient reaching h_t: the upstream ghs[:, t−1] plus what
flows back from step t+1 (nothing for t = T). Walking t = T … 1, with the chain rule through
one step and the derivatives σ' = σ(1 − σ), tanh' = 1 − tanh²:
    ∂h_t/∂n_t = 1 − z_t          ⇒  gn_t = g_t ⊙ (1 − z_t)
    ∂h_t/∂z_t = h_{t−1} − n_t    ⇒  gz_t = g_t ⊙ (h_{t−1} − n_t)
    n_t = tanh(a_n), a_n = p_t[n] + r_t ⊙ m_t
                                 ⇒  ga_n = gn_t ⊙ (1 − n_t²)
    ∂a_n/∂r_t = m_t              ⇒  gr_t = ga_n ⊙ m_t
    ∂a_n/∂m_t = r_t              ⇒  gm_t = ga_n ⊙ r_t
    r_t = σ(a_r), a_r = p_t[r] + q_t[r]
                                 ⇒  ga_r = gr_t ⊙ r_t ⊙ (1 − r_t)
    z_t = σ(a_z), a_z = p_t[z] + q_t[z]
                                 ⇒  ga_z = gz_t ⊙ z_t ⊙ (1 − z_t)
The pre-activations a_r, a_z, a_n depend on p_t with slope 1, so the gradient of p_t is
    gp_t = [ga_r; ga_z; ga_n]                                   (N, 3H) per step
and q_t enters a_r, a_z with slope 1 and a_n only through m_t = q_t[n], so
    gq_t = [ga_r; ga_z; gm_t]                                   (N, 3H) per step
h_{t−1} reaches the loss directly through z_t ⊙ h_{t−1} and through q_t = W_hh h_{t−1} + b_hh:
    g_{t−1} = ghs[:, t−2] + z_t ⊙ g_t + gq_t W_hh     (row vectors; no ghs term for t = 1)
Finally the weights are shared by all steps, so their gradients sum over n and t; with the
stacks gp (N, T, 3H), gq (N, T, 3H) and hprev[:, t−1] = h_{t−1} (hprev = [h0, hs[:, :−1]]):

bwd(ghs, x, h0, w_ih, w_hh, hs, gates) computes exactly
    gp, gq, g_0      by the backward walk above (g_T = ghs[:, T−1])
    gx    = gp · W_ih                          gx[n,t,d]    = Σ_g gp[n,t,g]·w_ih[g,d]
    gh0   = g_0
    gw_ih = Σ_{n,t} gp[n,t,:]ᵀ x[n,t,:]        gw_ih[g,d]   = Σ_{n,t} gp[n,t,g]·x[n,t,d]
    gw_hh = Σ_{n,t} gq[n,t,:]ᵀ hprev[n,t,:]    gw_hh[g,k]   = Σ_{n,t} gq[n,t,g]·hprev[n,t,k]
    gb_ih = Σ_{n,t} gp[n,t,:]
    gb_hh = Σ_{n,t} gq[n,t,:]
and returns (gx, gh0, gw_ih, gw_hh, gb_ih, gb_hh).

Edge cases and numerics
- σ is evaluated as e/(1 + e) for a < 0 and 1/(1 + e) for a ≥ 0 with e = exp(−|a|), so exp
  never overflows, whatever the pre-activation.
- T ≥ 1 (the op layer guarantees it); N = 0 gives empty outputs and zero weight gradients.
- Every backend computes p_t for all steps with one matrix product before the recurrence,
  and gx, gw_ih, gw_hh with matrix products after it.

Properties tested (tests/kernels/test_gru.py, every backend)
- zero weights and biases: r = z = ½ and n = 0, so h_t = 0.5ᵗ·h0;
- T = 1 equals one cell step written out in the test;
- causality: changing x[:, t+1:] leaves hs[:, :t+1] unchanged;
- batch rows are independent (a row's output depends on that row's x and h0 only);
- |h_t| < 1 when |h0| < 1 (h_t is a convex combination of n_t ∈ (−1, 1) and h_{t−1});
- PyTorch's torch.nn.GRU(batch_first=True) with the same weights: hs, final h and every
  gradient, float64, to 1e-10.
"""

__all__: list[str] = []
