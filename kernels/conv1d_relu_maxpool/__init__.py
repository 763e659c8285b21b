"""conv1d_relu_maxpool: conv1d, bias, ReLU and a max-pool as one op (one block of the
article's towers: Conv1D(relu) → MaxPooling1D), fused into one pass on the CPU in the
channels-last layout and on the GPU in both layouts, a composition of kernels elsewhere
("Where it is fused").

Shapes
------
x (N, C, L), w (O, C, K), b (O,) | None as in conv1d (kernels/conv1d/__init__.py), with its
static parameters stride S, padding_left Pl, padding_right Pr, dilation d, giving the
convolution's length Lc = ⌊(L + Pl + Pr − d·(K−1) − 1) / S⌋ + 1. The pool has window
pool_size Kp, pool_stride Sp and pool_padding Pp, under maxpool1d's rules
(kernels/maxpool1d/__init__.py): 1 ≤ Kp, 1 ≤ Sp, 0 ≤ Pp ≤ ⌊Kp/2⌋, Lc + 2·Pp ≥ Kp, and

    Lp = ⌊(Lc + 2·Pp − Kp) / Sp⌋ + 1.

Outputs: y (N, O, Lp) and argmax (N, O, Lp) int32 (a position along Lc). With
``channels_last=True``: x (N, L, C), y and argmax (N, Lp, O), gy (N, Lp, O), gx (N, L, C);
w stays (O, C, K). Every formula below then holds with the last two axes swapped.
x may also be the transposed view of a C-contiguous array (what the towers feed the first
block: their (N, L, F) input swapped to (N, F, L)); the op layer keeps it a view, the
reference reads it as it is, Numba makes it contiguous, the CUDA kernels read it in place
through its strides (cupy_cuda.py says why that is no slower than the copy).

Forward
-------
    z[n,o,t]  = b[o] + Σ_c Σ_k w[o,c,k]·xp[n,c,t·S+k·d]          (conv1d's SPEC)
    r[n,o,t]  = max(z[n,o,t], 0)                                  (conv1d_relu's SPEC)
    y[n,o,p]  = max_{t ∈ J_p} r[n,o,t],   J_p = {p·Sp − Pp + i : 0 ≤ i < Kp} ∩ [0, Lc)
    argmax[n,o,p] = min {t ∈ J_p : r[n,o,t] = y[n,o,p]}          (the FIRST maximum)

that is, exactly maxpool1d(conv1d_relu(x, w, b)), with maxpool1d's tie and NaN rules
applied to r. The full-length r is never stored: y and argmax are all the backward needs.

Backward
--------
Let gy = ∂ℓ/∂y. Chain the two SPECs:

1. maxpool1d's backward: gr[n,o,t] = Σ_{p : argmax[n,o,p] = t} gy[n,o,p]   (p ascending)
2. conv1d_relu's mask: gz[n,o,t] = gr[n,o,t]·[r[n,o,t] > 0]
3. (gx, gw, gb) = conv1d's backward of gz.

Step 2 needs r only where gr can be non-zero, at t = argmax[n,o,p], and there
r[n,o,t] = y[n,o,p]. So

    gz[n,o,t] = Σ_{p : argmax[n,o,p] = t} gy[n,o,p]·[y[n,o,p] > 0]

(every p that chose t sees the same r, so masking each term equals masking the sum), and
gb[o] = Σ_{n,t} gz[n,o,t] = Σ_{n,p} gy[n,o,p]·[y[n,o,p] > 0]. When every r of a window is
0 (all z ≤ 0), y = 0, argmax is the window's first position and the mask gives 0, as the
composition does.

``bwd(gy, x, w, y, argmax, *, <conv and pool parameters>, need_gx=True,
channels_last=False)`` returns exactly ``(gx, gw, gb)`` of step 3 (gx None without
need_gx, as conv1d).

Where it is fused
-----------------
On the CPU in the channels-last layout and on the GPU in both layouts (the layouts the
network uses there):

- numba, channels-last: fused. conv1d_relu's product X̂ᵀ·W2ᵀ for a chunk of samples goes
  to a buffer that stays in cache; one pass adds the bias, applies the ReLU and pools it
  into y and argmax. Backward, one pass gathers the masked gy into that buffer as Gᵀ
  (zeros elsewhere: the derived form above), then conv1d's products follow. Against
  conv1d_relu followed by maxpool1d this skips writing and re-reading the full-length r
  (forward) and gr (backward).
- numba, channels-first: the composition of the Numba kernels: conv1d_relu, then
  maxpool1d; backward the mask gy·[y > 0] as one NumPy pass, maxpool1d's backward, then
  conv1d's.
- cupy, both layouts: fused, two kernels fewer each way than the composition.
  Forward, one kernel: conv1d_fwd's tiled implicit GEMM (the same reduction order, so z is
  bitwise conv1d_relu's) with its columns taken pool window by pool window, and an epilogue
  that adds the bias, applies the ReLU and pools the tile in shared memory into y and
  argmax (r is never written). Backward, one kernel gathers the derived form above (gz
  from gy, y and argmax: maxpool1d's backward and the mask in one pass), then conv1d's
  backward kernels (the weight gradient and its fixed-order sum of partial sums, and the
  data gradient when needed). Channels-last x is read in place and y written channels-last;
  its backward goes through conv1d's transposes of gz and gx. A pool window wider than the
  forward's column tile (Kp > 128) falls back to conv1d_relu, then maxpool1d.
- numpy (the reference): the composition of the references, the definition.

Edge cases
----------
- Windows of all-negative pre-activations give y = 0 and no gradient.
- NaN: as maxpool1d on r (the ReLU passes NaN where max(z, 0) does: see the backends).
- N = 0 gives empty outputs, gw = 0, gb = 0.

Properties tested (tests/kernels/test_conv1d_relu_maxpool.py)
-------------------------------------------------------------
- equals conv1d_relu followed by maxpool1d on every backend, forward (y and argmax
  bitwise) and backward, in both layouts;
- every backend against the float64 reference, float32 and float64;
- need_gx=False leaves gw, gb unchanged; empty batches; finite differences through the op.
tests/kernels/test_conv1d_relu_maxpool_fused.py, the fused GPU kernels (host emulator):
- the same at shapes that span several column and row blocks (windows across samples,
  idle columns, odd Lc whose last position no window reads: its gradient is 0), overlap,
  padding, the Kp > 128 fallback;
- the masked pool backward equals maxpool1d's backward of gy·[y > 0], bitwise;
- a transposed-view x gives the contiguous x's results bitwise on every backend, costs
  one forward kernel and no copy; gradcheck through the op on that view.
"""

__all__: list[str] = []
