"""cross_entropy with integer class labels, fused with log-softmax and stable.

Shapes
------
x (M, K) logits (the op layer moves the class axis last and flattens the rest into M);
labels (M,) int64 in [0, K); loss (M,) and lse (M,) in the dtype of x. K ≥ 1; M may be
0. The reduction to a mean or sum is the op layer's.

Forward
-------
    lse[i]  = log Σ_k exp(x[i,k])                  (logsumexp of the row)
    loss[i] = −log softmax(x)[i, y_i] = lse[i] − x[i, y_i],     y_i = labels[i]

With the row maximum m[i] and L[i] = log Σ_k exp(x[i,k] − m[i]) computed exactly as in
log_softmax's SPEC (log1p with the maximum taken out of the sum):

    lse[i]  = m[i] + L[i]
    loss[i] = (m[i] − x[i, y_i]) + L[i]

Both terms of the loss are ≥ 0, so it has full relative accuracy even for a confident,
correct row (x = [10, −10], label 0: loss = log(1 + e⁻²⁰) ≈ 2.06e-9, which lse − x[i,y]
would round to 0 in float32). lse is returned for the backward pass.

Backward
--------
For one row (drop i), with s[k] = softmax(x)[k] = exp(x[k] − lse):
    ∂loss/∂x[k] = ∂lse/∂x[k] − δ[k,y] = s[k] − δ[k,y]
so gx = gloss·(softmax(x) − onehot(y)). Since Σ_k s[k] = 1, the label's entry is
    s[y] − 1 = −Σ_{k≠y} s[k],
a sum of positive terms: it keeps its accuracy where s[y] ≈ 1 (the 1 − s[y] form would
cancel to 0). So bwd computes, from the saved lse,
    s[i,k]     = exp(x[i,k] − lse[i])                       for k ≠ y_i
    gx[i,k]    = gloss[i]·s[i,k]                              for k ≠ y_i
    gx[i,y_i]  = −gloss[i]·Σ_{k≠y_i} s[i,k]
and returns (gx, None): labels have no gradient. Each row of gx sums to 0 (up to
rounding), as softmax − onehot does.

Precision
---------
Every backend forms sums and differences in float64 and rounds the results to the input
dtype (the CUDA float path takes exp in float of an unrounded float64 argument, a few
ulps).

Edge cases
----------
K = 1: loss = 0, gx = 0. M = 0: empty outputs. The reference raises ValueError naming
the op when a label is outside [0, K) (the other backends assume valid labels). Logits
up to ±1e4 stay finite: every exponent is ≤ 0.

Properties tested
-----------------
loss = logsumexp(x) − x[y] and loss ≥ 0; lse = logsumexp(x); gx = softmax − onehot, rows
of gx sum to 0; agreement with naive loops, finite differences and PyTorch's
F.cross_entropy(reduction='none'); soft_cross_entropy with one-hot targets equals it.
"""

__all__: list[str] = []
