"""conv1d_relu: conv1d, bias and ReLU fused into one kernel (the article's conv layers).

Shapes and static parameters are conv1d's (kernels/conv1d/__init__.py): x (N, C, L),
w (O, C, K), b (O,) | None, y (N, O, Lo), keyword-only ints stride S, padding_left Pl,
padding_right Pr, dilation d, with Lo = ⌊(L + Pl + Pr − d·(K−1) − 1) / S⌋ + 1.

Forward
-------
    z[n,o,t] = b[o] + Σ_c Σ_k w[o,c,k]·xp[n,c,t·S+k·d]          (conv1d's SPEC)
    y[n,o,t] = max(z[n,o,t], 0)

Backward
--------
Let gy = ∂ℓ/∂y. ReLU's derivative is [z > 0], taken as 0 at z = 0 (PyTorch's choice);
since y > 0 exactly when z > 0, the saved output y serves as the mask, and z need not be
kept:

1. gz[n,o,t] = gy[n,o,t]·[y[n,o,t] > 0]
2. (gx, gw, gb) = conv1d's backward of gz (conv1d's SPEC, steps 1-4):
       gb[o]     = Σ_{n,t} gz[n,o,t]
       gw[o,c,k] = Σ_{n,t} gz[n,o,t]·xp[n,c,t·S+k·d]
       gx[n,c,j] = Σ_o Σ_k gz[n,o,t]·w[o,c,k]   over t with t·S+k·d = j+Pl, 0 ≤ t < Lo

``bwd(gy, x, w, y, *, stride, padding_left, padding_right, dilation, need_gx=True)``
returns exactly ``(gx, gw, gb)`` of step 2; the mask of step 1 is applied while gy is
read, never stored. ``need_gx=False`` returns gx = None without computing it (as conv1d).

Layouts
-------
``channels_last=True`` (fwd and bwd) takes x (N, L, C) and gives y (N, Lo, O), with gy and
y (N, Lo, O) and gx (N, L, C) in bwd: conv1d's channels-last form (conv1d's SPEC,
"Layouts") followed by the same ReLU and mask, elementwise, so unchanged.

Where it is fused
-----------------
- numba, channels-first: one pass. The ReLU is applied in the loop that moves each chunk's
  product into (N, O, Lo) and adds the bias, the mask y > 0 in the loop that moves gy into
  the product's rows and sums gb (kernels/conv1d/numba_cpu.py, ``relu=True``).
- numba, channels-last: one pass. The ReLU is applied in the in-place bias pass over y,
  the mask in the pass that sums gb; plain conv1d has the same passes without them.
- cupy, channels-first: one kernel. conv1d's tiled kernels take a ``relu`` flag: the ReLU
  as the forward tile is written, the mask as gy is read by both backward kernels.
- cupy, channels-last: the same fused kernels between transposes (copies of x and y
  forward; of gy, x, y and gx backward), since conv1d's kernels index (N, C, L).
- numpy (the reference): the composition conv1d, then max(·, 0); backward conv1d's of
  gy·[y > 0]: the definition, not fused.

Edge cases
----------
- z = 0 exactly (e.g. w = 0, b = 0) passes no gradient.
- Everything else as conv1d: zero padding, N = 0, b = None, fresh outputs of x's dtype.

Properties tested (tests/kernels/test_conv1d_relu.py)
-----------------------------------------------------
- equals conv1d followed by max(·, 0) on every backend, forward, and backward (conv1d's
  bwd of gy·[y > 0]);
- y ≥ 0; gradients vanish where y = 0 (all-negative bias gives zero gradients);
- agreement with naive loops, across backends, with finite differences (inputs kept away
  from the kink) and with PyTorch's ``relu(conv1d(...))``;
- channels-last on every backend against the channels-first reference
  (tests/kernels/test_conv1d_channels_last.py).
"""

__all__: list[str] = []
