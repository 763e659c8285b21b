"""mse: squared error, elementwise.

Shapes
------
a, b (any shape, treated as flat; the same shape), loss (same shape) in their dtype.
The reduction (mean or sum) is the op layer's.

Forward
-------
    loss = (a − b)²

Backward
--------
    ∂loss/∂a = 2(a − b),   ∂loss/∂b = −2(a − b)
so bwd computes
    d  = a − b
    ga = 2·d·gloss,   gb = −2·d·gloss
and returns (ga, gb): both inputs are differentiable (a prediction and a target that may
itself be computed).

Precision
---------
Reference and Numba compute in float64 and round once; CUDA computes in the input dtype
(a − b is one correctly rounded subtraction, so the result is accurate to a few ulps).

Edge cases
----------
a = b: loss 0 and zero gradients. Empty input: empty output.

Properties tested
-----------------
loss ≥ 0 and 0 exactly where a = b; symmetric in a and b; ga = −gb; agreement with naive
loops, finite differences and PyTorch's F.mse_loss(reduction='none').
"""

__all__: list[str] = []
