"""bce: binary cross-entropy on probabilities, elementwise (Keras's sigmoid +
binary_crossentropy path; prefer bce_with_logits, which never forms the probability).

Shapes
------
p (any shape, treated as flat) predicted probabilities; y (same shape) targets in [0, 1];
loss (same shape) in the dtype of p. The reduction is the op layer's.

Forward
-------
    p̂    = clip(p, ε, 1 − ε),   ε = 1e-7 (Keras's epsilon), in float64 for every dtype
    loss = −(y·log(p̂) + (1 − y)·log(1 − p̂))

Why the clip: a sigmoid output saturates to exactly 0 or 1 in floating point, and
log(0) = −inf would make the loss and every gradient upstream inf/NaN. Clamping to
[ε, 1 − ε] bounds the loss by −log(ε) ≈ 16.1. log(1 − p̂) is computed as log1p(−p̂) (no
rounding of 1 − p̂ for small p̂). Both terms are ≤ 0 for y in [0, 1], so the loss has no
cancellation.

Backward
--------
Where the clip is inactive (ε ≤ p ≤ 1 − ε, so p̂ = p):
    ∂loss/∂p = −y/p̂ + (1 − y)/(1 − p̂) = (p̂ − y) / (p̂·(1 − p̂))
Where it is active (p < ε or p > 1 − ε) p̂ is constant in p, so the derivative of the
clip, and with it the gradient, is 0. On the boundary p = ε or p = 1 − ε the clip is the
identity to one side; we let the gradient through there (as TensorFlow's clip_by_value
does). So bwd computes
    gp = gloss·(p̂ − y) / (p̂·(1 − p̂))    where ε ≤ p ≤ 1 − ε,    gp = 0 elsewhere
and returns (gp, None): the targets get no gradient.

Precision
---------
All backends compute in float64 (clip, logs and quotient; CUDA included, since log(p̂)
near p̂ = 1 − ε needs the unrounded p̂) and round once to the input dtype.

Edge cases
----------
p = 0 or 1 (saturated sigmoid): finite loss (≤ 16.2), gradient 0. p outside [0, 1] is
clipped the same way. Empty input: empty output.

Properties tested
-----------------
equals bce_with_logits(logit(p), y) for moderate p; finite at p = 0 and 1; agreement with
naive loops, finite differences and PyTorch's F.binary_cross_entropy (away from the clip).
"""

__all__: list[str] = []
