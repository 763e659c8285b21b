"""Adam's update of one parameter, with bias correction (PyTorch's formula).

This family is an optimizer update, not an operator: there is no forward to differentiate
and no backward. Each backend exports ``update`` (instead of ``fwd``/``bwd``) with the
reference's signature; ``minimtl.optim.Adam`` and ``AdamW`` call it through
``kernels.get("adam", backend)`` once per parameter and step.

Shapes
------
p, g, m, v: the same shape (any), the same float dtype (float32 or float64): the parameter,
its gradient, and the first and second moment estimates kept by the optimizer.

Formula (step t ≥ 1, per element)
---------------------------------
    m ← β1·m + (1 − β1)·g
    v ← β2·v + (1 − β2)·g²
    p ← p − lr/(1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + eps)

that is  p ← p − lr · m̂ / (√v̂ + eps)  with the bias-corrected m̂ = m/(1 − β1ᵗ) and
v̂ = v/(1 − β2ᵗ), eps added to √v̂ as in PyTorch and the Adam paper. The caller folds the
step into two scalars: ``c2 = √(1 − β2ᵗ)`` and ``step = lr/(1 − β1ᵗ)``; weight decay (L2 into
g for Adam, p·(1 − lr·wd) before the call for AdamW) is the optimizer's business.

Exactly what ``update`` computes
--------------------------------
The reference's passes over the arrays, in this order, each operation rounded on its own
in the arrays' dtype (Python-float scalars cast to that dtype first, as NumPy does):

    tmp = g·(1 − β1);  m = m·β1;  m = m + tmp
    tmp = g·g;  tmp = tmp·(1 − β2);  v = v·β2;  v = v + tmp
    tmp = √v;  tmp = tmp / c2;  tmp = tmp + eps
    tmp = m / tmp;  tmp = tmp·step;  p = p − tmp

The Numba loop and the CUDA kernel apply the same operations to each element in the same
order, with no contraction into fused multiply-adds, so every backend gives the same bits.

Writes in place
---------------
``update`` returns nothing: it writes p, m and v in place and only reads g. This is the one
allowed exception to "kernels never write their inputs": an optimizer step exists to change
the parameter that every module and tensor already holds (``p.data`` is updated in place by
every optimizer here, as in PyTorch), and m and v are the optimizer's own state, which no
one else holds; fresh outputs would cost three allocations per parameter and step and a
re-binding of every parameter. The fused paths need p, m and v C-contiguous (they write
through flat views; g is copied to C order if it is not); other layouts take the
reference's passes, with the same result.

Edge cases
----------
eps = 0 with v = 0 gives 0/0 = NaN, as NumPy does (the Numba loop uses NumPy's error model
rather than raising). A parameter whose gradient is None is not updated and its t does not
advance (the optimizer's rule).

Properties tested (tests/optim): the Numba loop and the CUDA kernel (on the host through
tests/cuda_host.py, and on a GPU) are bitwise the reference over several steps in float32
and float64; the optimizers match torch.optim.
"""
