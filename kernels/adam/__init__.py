"""Adam's update of one parameter, with bias correction (PyTorch's formula).

This family is an optimizer update, not an operator: there is no forward to differentiate
and no backward. Each backend exports ``update`` and ``update_many`` (instead of
``fwd``/``bwd``) with the reference's signatures; ``minimtl.optim.Adam`` and ``AdamW`` call
them through ``kernels.get("adam", backend)``: ``update_many`` once per step when every
parameter has a gradient at the same step t, else ``update`` once per parameter.

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

Many parameters at once: ``update_many``
----------------------------------------
``update_many(ps, gs, ms, vs, *, b1, b2, eps, c2=None, step=None, counter=None, lr=None)``
is ``update`` of each (p, g, m, v) of the four lists in turn, with the same bits, at one
step t: pass c2 and step as for ``update``, or ``counter`` and lr. The reference and Numba
loop over their ``update``; CUDA launches ONE kernel for all of them: a table of int64 on
the device lists each tensor's four addresses, its size and its first block, and each block
of 256 threads finds its tensor and updates one chunk of it with ``update``'s per-element
code. The table is cached by the tuple of addresses and sizes and uploaded (one
host-to-device copy) only when that tuple is new, so a loop whose arrays keep their
addresses (cupy's memory pool hands them back) uploads nothing. If the arrays are not all
C-contiguous and of one dtype, CUDA falls back to ``update`` per parameter. Empty arrays
are skipped.

Step on the device: ``counter``
-------------------------------
``counter`` is an int64 array of one element (on the arrays' device) holding the t of the
previous step. ``update_many`` advances it to t and uses c2 = √(1 − β2ᵗ) and
step = lr/(1 − β1ᵗ) of that t. The reference and Numba compute them on the host with the
optimizer's formula (Python floats: ``math.sqrt(1 - b2**t)``, ``lr / (1 - b1**t)``). CUDA
computes them ON THE DEVICE, in a one-thread kernel launched before the update (which reads
them from a small device buffer), so a captured CUDA graph advances t on every replay; lr
is a kernel argument, fixed in a graph at capture. Bits: the device takes 1 − β1ᵗ and
1 − β2ᵗ from a table computed once on the host with Python's ``**`` (``bias_table``, up to
2¹⁶ steps, uploaded once per (β1, β2)) and finishes with the correctly rounded double sqrt
and division and a round-to-nearest cast to the dtype, exactly the host's operations: the
same bits for every t in the table, and for every later t when both terms reached exactly 1
inside it (β1 = 0.9, β2 = 0.999: from t = 37,412 on). Otherwise (β2 closer to 1), steps
past 2¹⁶ use the device's double ``pow``, which is not correctly rounded (CUDA documents
2 ulp) and may differ from the host's in the last bits of 1 − β2ᵗ, hence of c2 and p.

Edge cases
----------
eps = 0 with v = 0 gives 0/0 = NaN, as NumPy does (the Numba loop uses NumPy's error model
rather than raising). A parameter whose gradient is None is not updated and its t does not
advance (the optimizer's rule).

Properties tested (tests/optim): the Numba loop and the CUDA kernel (on the host through
tests/cuda_host.py, and on a GPU) are bitwise the reference over several steps in float32
and float64; ``update_many`` is bitwise ``update`` per parameter on every backend (mixed
sizes, 1 and sizes that are not multiples of 256 included), with host scalars and with a
counter; the pointer table is uploaded once per set of addresses; the optimizers match
torch.optim.
"""
