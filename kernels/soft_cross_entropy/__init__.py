"""soft_cross_entropy: cross-entropy against probability (or one-hot) targets, fused
with log-softmax and stable.

Shapes
------
x (M, K) logits (the op layer moves the class axis last and flattens the rest into M);
p (M, K) targets in the dtype of x, meant to be probabilities (p ≥ 0; rows need not sum
to 1, e.g. label smoothing or a weighted mixture); loss (M,) and lse (M,). K ≥ 1; M may
be 0. The reduction to a mean or sum is the op layer's.

Forward
-------
    lse[i]  = log Σ_k exp(x[i,k])
    loss[i] = −Σ_k p[i,k]·log softmax(x)[i,k] = Σ_k p[i,k]·(lse[i] − x[i,k])

With m[i] and L[i] exactly as in log_softmax's SPEC (lse = m + L, L by log1p):

    loss[i] = Σ_k p[i,k]·((m[i] − x[i,k]) + L[i])

Every bracket is ≥ 0, so for p ≥ 0 the loss is a sum of non-negative terms (no
cancellation). lse is returned for the backward pass.

Backward
--------
For one row (drop i), with s[k] = softmax(x)[k] = exp(x[k] − lse) and ∂lse/∂x[j] = s[j]:
    ∂loss/∂x[j] = Σ_k p[k]·(s[j] − δ[k,j]) = s[j]·Σ_k p[k] − p[j]
    ∂loss/∂p[k] = lse − x[k]
so bwd computes, from the saved lse,
    P[i]     = Σ_k p[i,k]
    gx[i,k]  = gloss[i]·(exp(x[i,k] − lse[i])·P[i] − p[i,k])
    gp[i,k]  = gloss[i]·(lse[i] − x[i,k])
and returns (gx, gp).

Precision
---------
Every backend forms sums and differences in float64 and rounds the results to the input
dtype (the CUDA float path takes exp in float of an unrounded float64 argument). gx is a
difference that vanishes at the optimum p = softmax(x)·P; there its error is relative to
the terms |gloss|·(s·P + p), not to gx itself (which is what the tests measure).

Edge cases
----------
K = 1: loss = 0·p = 0, gx = gloss·(P − p) = 0. M = 0: empty outputs. With one-hot p the
loss equals cross_entropy's with the matching labels (and gx its gradient up to rounding).

Properties tested
-----------------
loss = Σ_k p·(logsumexp(x) − x) and loss ≥ 0; one-hot targets give cross_entropy's loss
and gradient; agreement with naive loops, finite differences (in x and in p) and
PyTorch's F.cross_entropy with probability targets.
"""

__all__: list[str] = []
