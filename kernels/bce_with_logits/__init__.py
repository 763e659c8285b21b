"""bce_with_logits: binary cross-entropy on logits, elementwise, fused with the sigmoid.

Shapes
------
z (any shape, treated as flat) logits; y (same shape) targets in [0, 1] (hard 0/1 or
soft); loss (same shape) in the dtype of z. The reduction is the op layer's.

Forward
-------
With σ(z) = 1 / (1 + exp(−z)):
    loss = −(y·log σ(z) + (1 − y)·log(1 − σ(z)))
Using log σ(z) = −log(1 + exp(−z)) and log(1 − σ(z)) = −z − log(1 + exp(−z)):
    loss = z − z·y + log(1 + exp(−z)) = max(z, 0) − z·y + log1p(exp(−|z|))
(the last step adds and removes z for z < 0, so exp never sees a positive argument and
cannot overflow: finite for |z| = 100 and 1e4). Splitting max(z, 0) − z·y by the sign of z,
    loss = z·(1 − y) + log1p(exp(−|z|))      for z ≥ 0
    loss = −z·y     + log1p(exp(−|z|))      for z < 0
every term is ≥ 0 for y in [0, 1], so the loss keeps full relative accuracy (z·y would
otherwise round at the scale of z and cancel against max(z, 0)). That is what fwd computes.

Backward
--------
    ∂loss/∂z = σ(z) − y                          (differentiate z − z·y + log(1 + exp(−z)))
with a stable σ built from r = σ(−|z|) = e / (1 + e), e = exp(−|z|) ∈ (0, 1]:
    σ(z) − y = (1 − y) − r      for z ≥ 0       (σ(z) = 1 − σ(−z))
    σ(z) − y = r − y            for z < 0
(exact for hard targets: y = 1 with z ≥ 0 gives −r, no 1 − σ(z) cancellation). bwd computes
    gz = gloss·((1 − y) − r)  (z ≥ 0),   gz = gloss·(r − y)  (z < 0)
and returns (gz, None): the targets get no gradient.

Precision
---------
Reference and Numba compute in float64 and round once; CUDA computes in the input dtype
(all forward terms are ≥ 0, so float arithmetic is accurate to a few ulps). gz vanishes
where y = σ(z); there its error is relative to |gloss|·(|1 − y| + r + |y|).

Edge cases
----------
z = 0: loss = log 2, gz = gloss·(0.5 − y). |z| large: loss → relu(z) − z·y, σ → 0 or 1.
Empty input: empty output.

Properties tested
-----------------
equals max(z, 0) − z·y + log1p(exp(−|z|)); finite at |z| = 100 and 1e4; BCE(z, y) =
BCE(−z, 1 − y); gz = σ(z) − y; agreement with naive loops, finite differences and
PyTorch's F.binary_cross_entropy_with_logits.
"""

__all__: list[str] = []
