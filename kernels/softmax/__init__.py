"""softmax over the last axis of a 2-D array.

Shapes
------
x (M, K): M independent rows of K class scores (the op layer moves the class axis last
and flattens the others into M). y (M, K). K ≥ 1; M may be 0.

Forward
-------
    m[i]   = max_k x[i,k]                       (the row maximum)
    y[i,k] = exp(x[i,k] − m[i]) / Σ_j exp(x[i,j] − m[i])

Subtracting m does not change y (the factor exp(−m) cancels between numerator and
denominator) but keeps every exponent ≤ 0, so nothing overflows and the denominator is
≥ 1 (the maximum contributes exp(0) = 1), so nothing divides by zero.

Backward
--------
Given gy = ∂L/∂y, for one row (drop i):
    ∂y[k]/∂x[j] = y[k]·(δ[k,j] − y[j])        (quotient rule on exp(x[k]) / Σ exp)
    gx[j] = Σ_k gy[k]·∂y[k]/∂x[j]
          = Σ_k gy[k]·y[k]·δ[k,j] − y[j]·Σ_k gy[k]·y[k]
          = y[j]·gy[j] − y[j]·s                  with s = Σ_k gy[k]·y[k]
so bwd computes, from the saved output y,
    s[i]    = Σ_k gy[i,k]·y[i,k]
    gx[i,j] = y[i,j]·(gy[i,j] − s[i])
and returns (gx,).

Precision
---------
Every backend forms sums and differences in float64 and rounds the results to the input
dtype, so float32 results are within about an ulp of the float64 ones (float32 is a
storage format here; the CUDA float path takes exp in float of an unrounded float64
argument, a few ulps). gx is a difference of two terms: where gy is (nearly) constant
along a row, or where one y[i,j] ≈ 1, gy[i,j] − s[i] cancels and gx is small; its error is
then relative to the terms y·|gy|, not to gx itself (which is what the tests measure).

Edge cases
----------
K = 1: y = 1 and gx = 0. M = 0: empty outputs. Ties need no care (the max is a value).
Logits up to ±1e4 in float32 stay finite. Non-finite inputs give non-finite rows.

Properties tested
-----------------
values in [0, 1]; rows sum to 1; softmax(x + c) = softmax(x) for a per-row constant c;
argmax preserved; finite for |x| up to 1e4 (float32); a constant upstream gradient gives
gx = 0; agreement with naive loops, finite differences and PyTorch's F.softmax.
"""

__all__: list[str] = []
