"""log_softmax over the last axis of a 2-D array.

Shapes
------
x (M, K): M independent rows of K class scores (the op layer moves the class axis last
and flattens the others into M). y (M, K). K ≥ 1; M may be 0.

Forward
-------
    y[i,k] = x[i,k] − lse[i],     lse[i] = log Σ_j exp(x[i,j])

computed stably with the row maximum m[i] = max_j x[i,j]:

    lse[i] = m[i] + L[i],         L[i] = log Σ_j exp(x[i,j] − m[i])  (every exponent ≤ 0)
    y[i,k] = (x[i,k] − m[i]) − L[i]

The sum inside L contains exp(0) = 1 for the maximum, so it is 1 + (something small) when
one logit dominates, and log(1 + tiny) would lose the tiny part to rounding. We take the
maximum out and use log1p:

    L[i] = log1p( Σ_{j: x[i,j] < m[i]} exp(x[i,j] − m[i])  +  (t[i] − 1) ),
    t[i] = #{j : x[i,j] = m[i]}          (ties at the maximum each contribute exp(0) = 1)

so L (and the cross-entropy built on it) keeps its relative accuracy even when it is
≈ 1e-9. Both terms of y are ≤ 0, so y has no cancellation either. The cross-entropy
kernels use this same (m, L) computation.

Backward
--------
For one row (drop i), y[k] = x[k] − lse and ∂lse/∂x[j] = exp(x[j] − lse) = exp(y[j]):
    ∂y[k]/∂x[j] = δ[k,j] − exp(y[j])
    gx[j] = Σ_k gy[k]·(δ[k,j] − exp(y[j])) = gy[j] − exp(y[j])·Σ_k gy[k]
so bwd computes, from the saved output y,
    S[i]    = Σ_k gy[i,k]
    gx[i,j] = gy[i,j] − exp(y[i,j])·S[i]
and returns (gx,).

Precision
---------
Every backend forms sums and differences in float64 and rounds the results to the input
dtype (the CUDA float path takes exp in float of an unrounded float64 argument, a few
ulps). gx is a difference
of two terms; where they cancel its error is relative to |gy| + exp(y)·|S|.

Edge cases
----------
K = 1: y = 0, gx = 0. M = 0: empty outputs. [[-1000, 1]] gives [[-1001, 0]] exactly
(exp(−1001) underflows to 0 and log1p(0) = 0). Logits −inf give y = −inf (masking);
other non-finite inputs give non-finite rows.

Properties tested
-----------------
logsumexp of every output row is 0; y ≤ 0; [[-1000, 1]] finite and exact; equals
log(softmax(x)) for moderate inputs; agreement with naive loops, finite differences and
PyTorch's F.log_softmax.
"""

__all__: list[str] = []
