"""head_losses: every task's mean loss and their weighted total, from the stacked logits of
all heads, in one pass (and the logits' gradient in one pass back).

Shapes
------
x (N, W) logits: the heads' outputs side by side (``StackedHeads``), in x's dtype;
spec (T, 4) int64, one row per task: (kind, start, K, j): the task's logits are the columns
start .. start + K − 1 of x; the tasks tile the columns in order (start₀ = 0,
start_{t+1} = start_t + K_t, start_{T−1} + K_{T−1} = W);
labels (Tm, N) int64: row j holds the class labels of the multiclass task with j = spec's j;
targets (S,) in x's dtype: the float targets of the other tasks, task t's (N, K) block
row-major at [N·j, N·(j + K)) (j = spec's j counts the float columns before it);
weights (T,) float64: the tasks' loss weights.
Outputs: losses (T + 1,) in x's dtype, losses[0] = the weighted total, losses[1 + t] = L_t;
lse (Tm, N) in x's dtype, the row log-sum-exp of each multiclass task, for backward.
kind 0: softmax cross-entropy with labels; kind 1: sigmoid binary cross-entropy with logits
(multilabel and binary tasks); kind 2: squared error (regression). N may be 0, T ≥ 1.

Forward
-------
Per task t, on its columns z = x[:, start : start + K]:

    kind 0:  ℓ[i] = lse(z[i]) − z[i, y_i]                 (kernels/cross_entropy SPEC)
             L_t = (1/N) Σ_i ℓ[i]                         (the mean over the rows)
    kind 1:  ℓ[i,k] = max(z, 0) − z·y + log1p(e^−|z|)      (kernels/bce_with_logits SPEC)
             L_t = (1/(N·K)) Σ_{i,k} ℓ[i,k]               (the mean over all elements)
    kind 2:  ℓ[i,k] = (z[i,k] − y[i,k])²                   (kernels/mse SPEC)
             L_t = (1/(N·K)) Σ_{i,k} ℓ[i,k]
    total   = Σ_t w_t·L_t

each row term computed in the stable forms of those SPECs. These are exactly the per-task
losses ``F.cross_entropy``, ``F.binary_cross_entropy_with_logits`` and ``F.mse_loss`` with
reduction 'mean' give, and the total of ``MultiTaskModel.total_loss``. Write c_t for the
count the mean divides by: N (kind 0) or N·K (kinds 1, 2).

Backward
--------
The upstream gradient g is (1,) (only the total is used: g = (g_total,)) or (T + 1,)
(g_total, then g_t of each L_t, e.g. a balancer's per-task backward). L_t reaches the
output both directly and through the total, so by the chain rule

    ∂out/∂L_t = g_total·w_t + g_t =: a_t        (g_t = 0 when g is (1,))

and every element of task t's mean gets the same factor a_t / c_t. The per-element
derivatives are those of the three SPECs, so bwd computes, with b_t = a_t / c_t:

    kind 0:  s[i,k] = exp(z[i,k] − lse[i]),  gx[i,k] = b_t·s[i,k] (k ≠ y_i),
             gx[i,y_i] = −b_t·Σ_{k≠y_i} s[i,k]      (softmax − onehot, off-label sum form)
    kind 1:  gx = b_t·((1 − y) − σ(−|z|)) (z ≥ 0),   gx = b_t·(σ(−|z|) − y) (z < 0)
    kind 2:  gx = b_t·2·(z − y)

written into task t's columns of gx (N, W); labels, targets, spec and weights get no
gradient: bwd returns (gx, None, None, None, None).

Precision
---------
Every backend computes the terms, the sums and the means in float64 and rounds the outputs
(losses, lse, gx) once to x's dtype; only the order of the float64 sums differs between
backends (the reference sums with NumPy's pairwise sum, Numba row by row, CUDA per thread
then in a fixed order over threads and blocks: deterministic, run to run).

Edge cases
----------
N = 0: every L_t = 0/0 = NaN (the mean of nothing, as a 'mean' reduction gives) and gx is
(0, W). K = 1 in kind 0: ℓ = 0, gx = 0. The reference raises ValueError naming the op for a
spec that does not tile the columns, a label outside [0, K) or inconsistent shapes; Numba
and CUDA assume a valid spec (the op checks what it can on the host) and turn a label
outside [0, K) into a NaN loss and NaN gradients for its row, never reading out of bounds.

Properties tested
-----------------
every L_t equals the per-task loss of the existing families (cross_entropy, bce_with_logits,
mse) reduced by the mean; total = Σ_t w_t·L_t; gx equals the per-task gradients scaled by
a_t / c_t; agreement of every backend with the reference (f32 and f64, g of shape (1,) and
(T + 1,)), finite differences, and a balancer's per-task backward through the op.
"""

__all__ = ["KINDS"]

#: spec's kind codes, by the family whose per-row loss each kind is
KINDS = {"cross_entropy": 0, "bce_with_logits": 1, "mse": 2}
