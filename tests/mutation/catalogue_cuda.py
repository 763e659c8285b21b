"""Mutants of the CUDA kernels (the CUDA C of every ``kernels/<op>/cupy_cuda.py``, what they
share in ``kernels/_gemm_cuda.py``, ``kernels/_splitk_cuda.py`` and ``kernels/_pool_cuda.py``,
and their Python wrappers, and Adam's kernel in
``kernels/adam/cupy_cuda.py``), run on the host through the ``cuda_host`` backend param
(tests/cuda_host.py). Each names the kernel tests of its family plus the host-only tests
(tests/kernels/test_cuda_on_host.py and tests/kernels/test_cuda_host_paths.py);
``-k "cuda_host or host"`` keeps the runs to the host backend (and the host-only modules)."""

from __future__ import annotations

from pathlib import Path

from tests.mutation.mutant import edits

_ROOT = Path(__file__).resolve().parent.parent.parent

_PATHS = "tests/kernels/test_cuda_host_paths.py"   # first: cheap, and it forces the paths
_ON_HOST = "tests/kernels/test_cuda_on_host.py"     # (W_hh in global memory) at small sizes
_K = ("-k", "cuda_host or host")


def _sel(*files):
    return (_PATHS, *files, _ON_HOST, *_K)


_NAN = "tests/kernels/test_nan_propagation.py"
CONV = _sel("tests/kernels/test_conv1d.py", "tests/kernels/test_conv1d_relu.py",
            "tests/kernels/test_conv1d_channels_last.py",
            "tests/kernels/test_conv1d_weight_one_launch_on_host.py", _NAN)
FUSED = _sel("tests/kernels/test_conv1d_relu_maxpool.py",
             "tests/kernels/test_conv1d_relu_maxpool_fused.py")
MAXPOOL = _sel("tests/kernels/test_maxpool1d.py", "tests/kernels/test_conv1d_relu_maxpool.py")
AVGPOOL = _sel("tests/kernels/test_avgpool1d.py")
POOLS = _sel("tests/kernels/test_maxpool1d.py", "tests/kernels/test_avgpool1d.py",
             "tests/kernels/test_conv1d_relu_maxpool.py",
             "tests/kernels/test_conv1d_relu_maxpool_fused.py")
RNN = _sel("tests/kernels/test_rnn.py", "tests/kernels/test_lstm.py")
RECURRENT = _sel("tests/kernels/test_rnn.py", "tests/kernels/test_lstm.py",
                 "tests/kernels/test_gru.py")
LSTM = _sel("tests/kernels/test_lstm.py")
GRU = _sel("tests/kernels/test_gru.py")
SOFTMAX = _sel("tests/kernels/test_softmax.py", "tests/kernels/test_losses.py", _NAN)
LOG_SOFTMAX = _sel("tests/kernels/test_softmax.py", _NAN)
LOSSES = _sel("tests/kernels/test_losses.py")
HEAD_LOSSES = _sel("tests/kernels/test_head_losses.py")
ADAM = ("tests/optim/test_adam_kernels.py", "tests/train/test_cupy_path_on_host.py",
        "-k", "host")
ADAM_MANY = ("tests/optim/test_adam_many.py",)

MUTANTS = (
    edits("kernels/conv1d/cupy_cuda.py", "cuda_host", CONV, [
        # forward: the left padding added instead of subtracted (shows only with pl > 0)
        ("xpos[pp] = t * S - pl;", "xpos[pp] = t * S + pl;"),
        # forward: the stride dropped from the window start (shows only with S > 1)
        ("xpos[pp] = t * S - pl;", "xpos[pp] = t - pl;"),
        # the ReLU turns NaN into 0 again (fmax's rule)
        ("if (relu && v < T(0)) v = T(0);", "if (relu && !(v >= T(0))) v = T(0);"),
        # forward: the bias of the block's first row for every row
        ("T v = acc[i][j] + (has_bias ? b[o] : T(0));",
         "T v = acc[i][j] + (has_bias ? b[m0] : T(0));"),
        # data gradient: the padding on the wrong side of the tap position
        ("gpos[pp] = j + pl;", "gpos[pp] = j - pl;"),
        # data gradient: the tap offset added instead of subtracted
        ("const int i = gpos[pp] - rpos[rr];", "const int i = gpos[pp] + rpos[rr];"),
        # data gradient: the dilation dropped (shows only with d > 1)
        ("rpos[tid] = k * d;", "rpos[tid] = k;", 0),
        # data gradient: positions between two strided taps taken as taps (S > 1)
        ("&& t * S == i && t < Lo;", "&& t * S <= i && t < Lo;"),
        # data gradient: the output position divided out only for one stride
        ("const int t = S == 1 ? i : i / S;", "const int t = S == 3 ? i / S : i;"),
        # data gradient: the last output position t = Lo - 1 dropped
        ("&& t * S == i && t < Lo;", "&& t * S == i && t < Lo - 1;"),
        # data gradient: the tap k dropped from the weight offset (every tap reads k = 0)
        ("woff[tid] = o * C * K + k;", "woff[tid] = o * C * K;"),
        # data gradient of conv1d_relu: the mask lets y = 0 (clipped outputs) through
        ("if (relu && !(y[at] > T(0))) g = T(0);", "if (relu && !(y[at] >= T(0))) g = T(0);",
         0),
        # weight gradient: the padding on the wrong side
        ("xpos[tid] = t * S - pl;", "xpos[tid] = t * S + pl;"),
        # weight gradient: the dilation dropped
        ("rpos[tid] = k * d;", "rpos[tid] = k;", 1),
        # weight gradient of conv1d_relu: the mask lets clipped outputs through
        ("if (relu && !(y[at] > T(0))) g = T(0);", "if (relu && !(y[at] >= T(0))) g = T(0);",
         1),
        # weight gradient: the bias gradient drops the last position of each chunk
        ("for (int q = 0; q < TRW; ++q) gbacc += Gs[q][tid];",
         "for (int q = 0; q < TRW - 1; ++q) gbacc += Gs[q][tid];"),
        # weight gradient split across blocks: the workspace stride of a slice without gb
        ("const long long stride = (long long)O * R + O;",
         "const long long stride = (long long)O * R;"),
        # one counter for all row tiles (shows only with O > 64)
        ("last_of_tile(tickets, blockIdx.y * gridDim.x + blockIdx.x)",
         "last_of_tile(tickets, blockIdx.x)"),
        # the last block sums only its first 32 rows of gw
        ("for (int mm = 0; mm < 64 && m0 + mm < O; ++mm) {",
         "for (int mm = 0; mm < 32 && m0 + mm < O; ++mm) {"),
        # the bias gradient of the row tile read from the wrong rows
        ("gb[m0 + tid] = sum_slices(done + (long long)O * R + m0 + tid, splits, stride);",
         "gb[m0 + tid] = sum_slices(done + (long long)O * R + tid, splits, stride);"),
        # the slice end clamped to the slice instead of P: a chunk never crosses a slice's
        # end (pb is a multiple of the chunk TRW and every slice starts at a multiple of
        # pb), and only the last slice ends at P
        ("gbase[tid] = p < pend ? n * O * Lo + t : -1;",
         "gbase[tid] = p < P ? n * O * Lo + t : -1;", None,
         "pb is a multiple of TRW and slices start at multiples of pb, so no chunk crosses "
         "a slice end other than P: p < pend and p < P agree on every p a chunk visits"),
    ]),
    # the forward's tiles (kernels/_gemm_cuda.py, gemm_tiles), run by conv1d_fwd and by the
    # fused block's forward
    edits("kernels/_gemm_cuda.py", "cuda_host", CONV, [
        # forward: the dilation dropped from the tap offset (shows only with d > 1)
        ("rpos[tid] = k * d;", "rpos[tid] = k;", 0),
        # forward: the right bound off by one (reads x[L], shows only with right padding)
        ("i >= 0 && i < L;", "i >= 0 && i <= L;", 0),
        # forward: the left bound off by one (position 0 treated as padding)
        ("i >= 0 && i < L;", "i > 0 && i < L;", 0),
        # forward: no barrier between loading the tiles and multiplying them
        ("        __syncthreads();\n        mac_chunk<T, TR, 129, MAXTP + 1>(As, Bs, acc, tx, ty, "
         "txn, tyn);", "        mac_chunk<T, TR, 129, MAXTP + 1>(As, Bs, acc, tx, ty, txn, tyn);",
         0),
        # forward: no barrier after the multiply. Between chunks the loop's first barrier
        # would do, but after the last chunk the fused block's epilogue writes Es, which
        # aliases Bs, while slower threads may still multiply from it
        ("mac_chunk<T, TR, 129, MAXTP + 1>(As, Bs, acc, tx, ty, txn, tyn);\n        "
         "__syncthreads();\n", "mac_chunk<T, TR, 129, MAXTP + 1>(As, Bs, acc, tx, ty, txn, tyn);\n",
         0),
    ]),
    edits("kernels/_gemm_cuda.py", "cuda_host", FUSED, [
        # a transposed x read as if channels-first
        ("(long long)i * sL] : T(0);", "(long long)i] : T(0);"),
    ]),
    edits("kernels/_gemm_cuda.py", "cuda_host", ("tests/kernels/test_shared_modules.py",), [
        # the int32 limit off by one: offsets up to 2^31 - 1 fit, 2^31 does not
        ("if N * max(L, Lo) * max(C, O) >= 2**31:", "if N * max(L, Lo) * max(C, O) > 2**31:"),
    ]),
    # the split reduction's ticket and fixed-order sum (kernels/_splitk_cuda.py), run by
    # conv1d_bwd_weight
    edits("kernels/_splitk_cuda.py", "cuda_host", CONV, [
        # the last block's sum skips the last slice
        ("if (z0 + l < splits) lane[l] += part", "if (z0 + l < splits - 1) lane[l] += part"),
        # ... or the eight lane sums are added only in part
        ("for (int l = 0; l < 8; ++l) total += lane[l];",
         "for (int l = 0; l < 4; ++l) total += lane[l];"),
        # ... or the slices are taken 16 at a time, 8 of them skipped (shows only with more
        # than 8 slices, a GPU's case: about 1,024 blocks)
        ("for (int z0 = 0; z0 < splits; z0 += 8) {", "for (int z0 = 0; z0 < splits; z0 += 16) {"),
        # the last ticket off by one: no block sums the tile, the counter never resets
        ("last = atomicAdd(tickets + tile, 1) == (int)gridDim.z - 1;",
         "last = atomicAdd(tickets + tile, 1) == (int)gridDim.z;"),
        # the counter is not put back to 0: the next launch's tickets are off
        ("if (last) tickets[tile] = 0;", "if (last) tickets[tile] = 1;"),
        # host: the number of slices rounded down (the last partial slice dropped)
        ("return pb, -(-length // pb)", "return pb, length // pb"),
    ]),
    edits("kernels/conv1d_relu/cupy_cuda.py", "cuda_host", CONV, [
        # channels-last backward: the ReLU mask in the wrong layout
        ("backward(swap_layout(gy), swap_layout(x), w, swap_layout(y), *p)",
         "backward(swap_layout(gy), swap_layout(x), w, y, *p)"),
        # the channels-first forward without its ReLU
        ("    return forward(x, w, b, *p, True)", "    return forward(x, w, b, *p, False)"),
    ]),
    edits("kernels/conv1d_relu_maxpool/cupy_cuda.py", "cuda_host", FUSED, [
        # the mask y > 0 of the pooled output lets clipped windows through
        ("if (argmax[o] == j && y[o] > T(0))", "if (argmax[o] == j && y[o] >= T(0))"),
        # forward: the last tap of each window skipped by the max
        ("for (int k = k0 + 1; k < Kp; ++k) {", "for (int k = k0 + 1; k < Kp - 1; ++k) {"),
        # forward: blocks overlap by a window (the last windows of the grid never written)
        ("const int g0 = blockIdx.x * W, m0", "const int g0 = blockIdx.x * (W - 1), m0"),
        # forward: the pool padding dropped from the window's first position
        ("const int t = q * Sp - Pp + (pp - wi * Kp);", "const int t = q * Sp + (pp - wi * Kp);"),
    ]),
    edits("kernels/conv1d_relu_maxpool/cupy_cuda.py", "cuda_host", FUSED, [
        # backward: the pool's size passed as its stride
        ("*i32(Lc, Lp, I, Kp, Sp, Pp)", "*i32(Lc, Lp, I, Kp, Kp, Pp)"),
        # backward: the pool's padding forgotten
        ("*i32(Lc, Lp, I, Kp, Sp, Pp)", "*i32(Lc, Lp, I, Kp, Sp, 0)"),
    ]),
    # the pools' shared device functions (kernels/_pool_cuda.py): the (R, n, I) view of
    # every pool kernel, and the windows containing a position of the backward gathers
    edits("kernels/_pool_cuda.py", "cuda_host", POOLS, [
        # the (R, n, I) view: the channel index lost (shows only channels-last, I > 1)
        ("c = (int)(i - q * I);", "c = (int)(i - q);"),
        # ... or the position taken without the row's offset (shows from the second row)
        ("p = (int)(q - r * n);", "p = (int)(q - r);"),
        # the first window containing j rounded up once too often
        ("t_lo = a > 0 ? (a + S - 1) / S : 0;", "t_lo = a > 0 ? (a + S) / S : 0;"),
        # the first window rounded down (one window that does not contain j: max-pool's
        # argmax test rejects it, average pooling adds its gradient)
        ("t_lo = a > 0 ? (a + S - 1) / S : 0;", "t_lo = a > 0 ? a / S : 0;"),
        # the last window cut one too early
        ("if (t_hi > Lo - 1) t_hi = Lo - 1;", "if (t_hi > Lo - 2) t_hi = Lo - 2;"),
        # the padding on the wrong side
        ("const int a = j + P - K + 1;", "const int a = j - P - K + 1;"),
        # the last window floor((j + P)/S) missed by one
        ("t_hi = (j + P) / S;", "t_hi = (j + P - 1) / S;"),
    ]),
    edits("kernels/maxpool1d/cupy_cuda.py", "cuda_host", MAXPOOL, [
        # forward: the padding on the wrong side
        ("int start = t * S - P;", "int start = t * S + P;"),
        # forward: ties go to the last maximum
        ("bool take = (v > best) ||", "bool take = (v >= best) ||"),
        # forward: the right clamp off by one (reads x[L] under right padding)
        ("j = j < 0 ? 0 : (j > L - 1 ? L - 1 : j);", "j = j < 0 ? 0 : (j > L ? L : j);"),
        # forward, channels-last: the row stride without the channel count
        ("const T* xr = x + r * L * I + c;", "const T* xr = x + r * L + c;"),
        # backward, channels-last: the argmax row stride without the channel count
        ("const int* ar = argmax + r * Lo * I + c;", "const int* ar = argmax + r * Lo + c;"),
    ]),
    edits("kernels/avgpool1d/cupy_cuda.py", "cuda_host", AVGPOOL, [
        # forward: the padding on the wrong side
        ("int start = t * S - P;", "int start = t * S + P;"),
        # forward: divided by the real positions (count_include_pad=False), not by K
        ("y[i] = s / (T)K;", "y[i] = s / (T)(hi - lo);"),
        # forward: the window's end clamp: start + K == L gives L either way
        ("int hi = start + K < L ? start + K : L;", "int hi = start + K <= L ? start + K : L;",
         None, "at start + K == L both branches give hi = L"),
        # forward: the window's first real position skipped
        ("for (int j = lo + 1; j < hi; ++j)", "for (int j = lo + 2; j < hi; ++j)"),
        # backward, channels-last: the row stride of gy without the channel count
        ("const T* gyr = gy + r * Lo * I + c;", "const T* gyr = gy + r * Lo + c;"),
    ]),
    edits("kernels/rnn/cupy_cuda.py", "cuda_host", RNN, [
        # forward, rows per block > 1: every row reads the block's first row's state
        ("const T* hr = h + r * H;", "const T* hr = h;"),
        # backward, rows per block > 1: every row's product reads the first row's gradient
        ("const T* gr = gas + r * H;", "const T* gr = gas;"),
        # backward: tanh' = 1 - h² with the wrong sign
        ("* (T(1) - h * h);", "* (T(1) + h * h);"),
        # backward: W_hh transposed in the recurrent product
        ("s += gr[j] * W[j * H + k];", "s += gr[j] * W[k * H + j];"),
        # backward: the upstream gradient of the step dropped
        ("const T v = (ghs[at] + g_next[q])", "const T v = (g_next[q])"),
        # backward: no barrier between the step's gradients and the product that reads them
        ("            ga[at] = v;\n        }\n        __syncthreads();\n",
         "            ga[at] = v;\n        }\n"),

        # forward with W_hh in global memory: the weights read from the state buffer
        ("const T* W = w_hhT;\n    T* h = sm;", "const T* W = sm;\n    T* h = sm;"),
        # the second state buffer right after the first live rows: a partial block uses
        # only nr rows of each buffer, so the buffers still do not overlap
        ("T* hn = h + rows * H;", "T* hn = h + nr * H;", None,
         "a block touches only nr·H entries of each buffer, so h[0, nr·H) and "
         "hn[nr·H, 2·nr·H) still never overlap"),
    ]),
    edits("kernels/_recurrent_cuda.py", "cuda_host", RECURRENT, [
        # launch: the partial last block not launched (N not a multiple of rows)
        ("grid = (N + rows - 1) // rows", "grid = N // rows"),
        # W_hh in global memory, but its bytes still requested as shared memory
        ("smem = state + w_bytes if w_in_smem else state",
         "smem = state + w_bytes if w_in_smem else state + w_bytes"),
        # the products after the walk: h_{t-1} taken as h_t
        ("hs[:, :-1]], axis=1)", "hs[:, 1:]], axis=1)"),
        # ... or gw_hh from the input projection's gradient (the GRU's differ)
        ("gw_hh = g_rec.reshape(N * steps, g_rec.shape[2]).T",
         "gw_hh = g_in.reshape(N * steps, g_in.shape[2]).T"),
    ]),
    edits("kernels/lstm/cupy_cuda.py", "cuda_host", LSTM, [
        # the upstream gradient of the cell states ignored
        ("const T gc = gcs[at] + gh * o", "const T gc = gh * o"),
        # forward: the g gate's range one unit too wide (o's first unit through tanh)
        ("(j >= 2 * H && j < 3 * H) ? tanh(z)", "(j >= 2 * H && j <= 3 * H) ? tanh(z)"),
        # forward: no barrier between the gates (phase 1) and the cell update that reads them
        ("            gates[at] = a;\n        }\n        __syncthreads();\n",
         "            gates[at] = a;\n        }\n"),
        # forward: input and forget gates swapped in the cell update
        ("ar[H + k] * c[q] + ar[k] * ar[2 * H + k]", "ar[k] * c[q] + ar[H + k] * ar[2 * H + k]"),
        # forward, rows per block > 1: every row reads the first row's h
        ("const T* hr = h + r * H;", "const T* hr = h;"),
        # backward, rows per block > 1: the gate gradients of row r at the wrong stride
        ("const T* gr = gzs + r * G;", "const T* gr = gzs + r * H;"),
        # backward: the previous cell state off by one step (c0 also used at t = 1)
        ("const T cp = t > 0 ? cs[at - H]", "const T cp = t > 1 ? cs[at - H]"),
        # backward: the output gate's gradient from gc instead of gh
        ("const T zo = gh * tc * o * (T(1) - o);", "const T zo = gc * tc * o * (T(1) - o);"),
        # backward: the cell gradient passed back without the forget gate
        ("gc_next[q] = gc * f;", "gc_next[q] = gc;"),
        # backward with W_hh in global memory: the weights read from the state buffer
        ("const T* W = w_hh;\n    T* gh_next = sm;", "const T* W = sm;\n    T* gh_next = sm;"),
        # backward with W_hh in shared memory: the state buffers laid over the weights
        ("gh_next = sm + G * H;", "gh_next = sm + H * H;"),
    ]),
    edits("kernels/gru/cupy_cuda.py", "cuda_host", GRU, [
        # forward: the reset gate dropped from the candidate
        ("const T c = tanh(pt[2 * H + j] + rg * m);", "const T c = tanh(pt[2 * H + j] + m);"),
        # forward: z and 1 - z swapped
        ("const T hn = (T(1) - zg) * c + zg * h[e];", "const T hn = zg * c + (T(1) - zg) * h[e];"),
        # forward, several rows per block: every row's product reads the first row's h
        ("acc[r] += wkj * h[r * H + k];", "acc[r] += wkj * h[k];"),
        # backward: the update gate's gradient with the wrong sign of (h_{t-1} - n)
        ("const T ga_z = gj * (hprev - c) * zg", "const T ga_z = gj * (c - hprev) * zg"),
        # backward: the n gate's hidden-projection gradient without the reset gate
        ("gqt[2 * H + j] = ga_n * rg;", "gqt[2 * H + j] = ga_n;"),
        # backward: h_{t-1} read at step t
        ("hs[(row - 1) * H + j]", "hs[row * H + j]"),
        # backward, several rows per block: the gather reads the first row's gq
        ("acc[r] += gqs[r * H3 + i] * wik;", "acc[r] += gqs[i] * wik;"),
        # wrapper: gb_hh from the input projection's gradient
        ("column_sums(gq.reshape(N * T, 3 * H))", "column_sums(gp.reshape(N * T, 3 * H))"),
        # backward with W_hh in global memory: the weights read from the shared copy's place
        ("const T* w = w_in_shared ? ws : w_hh;", "const T* w = ws;"),
        # backward, partial last block: gq of the missing rows left as the previous block's
        # values; their accumulators only feed g of rows >= rows, which nothing reads
        ("for (int e = threadIdx.x; e < GRU_ROWS * H3; e += blockDim.x) gqs[e] = T(0);",
         "for (int e = threadIdx.x; e < rows * H3; e += blockDim.x) gqs[e] = T(0);", None,
         "acc[r] of a missing row r >= rows only reaches g[r·H + k], which no thread of the "
         "block ever reads or writes out"),
    ]),
    edits("kernels/_rows_cuda.py", "cuda_host", SOFTMAX, [
        # the shared exp helper without its float accuracy correction exp(h)·l
        ("return e + e * (double)l;", "return e;"),
        # ... or without its early return for exp(-inf) = 0 (a masked logit: l = NaN)
        ("    if (e == 0.0) return 0.0;\n", ""),
        # ... or with the correction's sign flipped
        ("float l = (float)(d - (double)h);", "float l = (float)((double)h - d);"),
        # the group sum skips its widest butterfly step (shows only with G >= 2, K >= 5)
        ("for (int off = G >> 1; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);\n"
         "    return v;\n}\n__device__ __forceinline__ int",
         "for (int off = G >> 2; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);\n"
         "    return v;\n}\n__device__ __forceinline__ int"),
        # the group max shuffles with the lane one group over (wrong for every K)
        ("for (int off = G >> 1; off > 0; off >>= 1) v = max_nan(",
         "for (int off = G; off > 0; off >>= 1) v = max_nan("),
        # the row max drops a NaN again (fmax's rule): a finite row out of a NaN logit
        ("return (a != a || a >= b) ? a : b;", "return (a >= b) ? a : b;"),
        # row_max_logsum: ties of the maximum also counted below it
        ("if (v < m) below +=", "if (v <= m) below +="),
        # row_max_logsum: the maximum's own 1 not taken out of the tie count
        ("L = log1p(below + (double)(ties - 1));", "L = log1p(below + (double)ties);"),
        # lanes per row: a wider group, still a power of two: the row kernels are correct
        # for every power of two G <= 32 (each lane strides by G over the row)
        ("while g < 32 and 4 * g < K:", "while g < 32 and 2 * g < K:", None,
         "every row kernel is correct for any power-of-two G <= 32 (lanes stride by G and the "
         "group reductions combine exactly G lanes); only the speed changes"),
    ]),
    edits("kernels/softmax/cupy_cuda.py", "cuda_host", SOFTMAX, [
        # softmax forward: the row minimum instead of the maximum (overflows for large logits)
        ("if (live) for (int k = j; k < K; k += G) m = max_nan(m, x[row + k]);",
         "if (live) for (int k = j; k < K; k += G) m = fmin(m, x[row + k]);"),
        # softmax backward: Σ gy·y not combined across the group (G >= 2)
        ("    s = group_sum(s, G);\n    if (live)\n        for",
         "    if (live)\n        for"),
        # softmax backward: the wrong sign
        ("gx[row + k] = (T)((double)y[row + k] * ((double)gy[row + k] - s));",
         "gx[row + k] = (T)((double)y[row + k] * ((double)gy[row + k] + s));"),
    ]),
    edits("kernels/log_softmax/cupy_cuda.py", "cuda_host", LOG_SOFTMAX, [
        # forward: L added instead of subtracted
        ("((double)x[row + k] - (double)m) - L)", "((double)x[row + k] - (double)m) + L)"),
        # backward: y instead of softmax = exp(y)
        ("(double)exp(y[row + k]) * S", "(double)y[row + k] * S"),
        # backward: Σ gy not combined across the group (G >= 2)
        ("    S = group_sum(S, G);\n", "\n"),
    ]),
    edits("kernels/cross_entropy/cupy_cuda.py", "cuda_host", LOSSES, [
        # forward: loss and lse written by lane 1 (none exists when G = 1, K < 5)
        ("if (live && j == 0) {", "if (live && j == 1) {"),
        # backward: the label's entry written by lane 1 (none when G = 1, K < 5)
        ("if (live && j == 0) gx[row + y]", "if (live && j == 1) gx[row + y]"),
        # forward: the lse without the row maximum
        ("lse[i] = (T)((double)m + L);", "lse[i] = (T)(L);"),
        # backward: the off-label sum not combined across the group (G >= 2)
        ("    off_label = group_sum(off_label, G);\n", "\n"),
        # backward: the label's entry with the wrong sign
        ("gx[row + y] = (T)(-g * off_label);", "gx[row + y] = (T)(g * off_label);"),
        # backward: exp of the logit minus the max instead of minus the lse
        ("double s = exp_acc((double)x[row + k] - l, T(0));",
         "double s = exp_acc((double)x[row + k], T(0));"),
    ]),
    edits("kernels/soft_cross_entropy/cupy_cuda.py", "cuda_host", LOSSES, [
        # forward: the weighted sum not combined across the group (G >= 2)
        ("    acc = group_sum(acc, G);\n", "\n"),
        # forward: loss and lse written by lane 1 (none when K < 5)
        ("if (live && j == 0) {", "if (live && j == 1) {"),
        # backward: Σ p dropped (right only when the targets sum to 1)
        ("(exp_acc(v - l, T(0)) * P - (double)p[row + k])",
         "(exp_acc(v - l, T(0)) - (double)p[row + k])"),
        # backward: the target gradient with the wrong sign
        ("gp[row + k] = (T)(g * (l - v));", "gp[row + k] = (T)(g * (v - l));"),
        # backward: Σ p not combined across the group (G >= 2)
        ("    P = group_sum(P, G);\n", "\n"),
    ]),
    edits("kernels/bce/cupy_cuda.py", "cuda_host", LOSSES, [
        # forward: the upper clip dropped (log(0) at p = 1, y = 0)
        ("fmin(fmax((double)p[i], BCE_EPS), 1.0 - BCE_EPS)", "fmax((double)p[i], BCE_EPS)"),
        # forward: the upper clip at the wrong bound
        ("fmin(fmax((double)p[i], BCE_EPS), 1.0 - BCE_EPS)",
         "fmin(fmax((double)p[i], BCE_EPS), 1.0 - 2 * BCE_EPS)"),
        # forward: the lower clip dropped
        ("fmin(fmax((double)p[i], BCE_EPS), 1.0 - BCE_EPS)",
         "fmin((double)p[i], 1.0 - BCE_EPS)"),
        # backward: the upper clip's flat region dropped
        ("if (pi >= BCE_EPS && pi <= 1.0 - BCE_EPS)", "if (pi >= BCE_EPS)"),
        # backward: the upper bound itself taken as clipped
        ("if (pi >= BCE_EPS && pi <= 1.0 - BCE_EPS)", "if (pi >= BCE_EPS && pi < 1.0 - BCE_EPS)"),
        # backward: the lower bound itself taken as clipped
        ("if (pi >= BCE_EPS && pi <= 1.0 - BCE_EPS)", "if (pi > BCE_EPS && pi <= 1.0 - BCE_EPS)"),
        # backward: p(1 - p) with the wrong factor
        ("/ (pi * (1.0 - pi))", "/ (pi * (1.0 + pi))"),
    ]),
    edits("kernels/bce_with_logits/cupy_cuda.py", "cuda_host", LOSSES, [
        # forward: the linear part of z < 0 with the wrong sign
        ("zi * (T(1) - yi) : -zi * yi;", "zi * (T(1) - yi) : zi * yi;"),
        # forward: exp(-z) instead of exp(-|z|)
        ("loss[i] = linear + log1p(exp(-fabs(zi)));", "loss[i] = linear + log1p(exp(-zi));"),
        # backward: σ(|z|) instead of σ(-|z|)
        ("T r = e / (T(1) + e);", "T r = T(1) / (T(1) + e);"),
        # backward: r added instead of subtracted for z >= 0
        ("(T(1) - yi) - r : r - yi;", "(T(1) - yi) + r : r - yi;"),
    ]),
    edits("kernels/mse/cupy_cuda.py", "cuda_host", LOSSES, [
        # forward: |a - b| instead of (a - b)²
        ("loss[i] = d * d;", "loss[i] = fabs(d);"),
        # backward: the upstream gradient dropped
        ("T g = T(2) * (a[i] - b[i]) * gloss[i];", "T g = T(2) * (a[i] - b[i]);"),
        # backward: gb = ga
        ("gb[i] = -g;", "gb[i] = g;"),
    ]),
    edits("kernels/adam/cupy_cuda.py", "cuda_host", ADAM, [
        # v updated with β1's weight
        ("mul_rn(mul_rn(gi, gi), one_m_b2)", "mul_rn(mul_rn(gi, gi), one_m_b1)"),
        # the bias correction of v multiplied instead of divided
        ("T d = add_rn(div_rn(sqrt_rn(vi), c2), eps);",
         "T d = add_rn(mul_rn(sqrt_rn(vi), c2), eps);"),
        # the step ascends
        ("p[i] = sub_rn(p[i],", "p[i] = add_rn(p[i],"),
        # the first moment not stored back
        ("m[i] = mi;", "m[i] = m[i];"),
        # wrapper: β1 and 1 − β1 swapped
        ("t(1 - b1), t(b1),", "t(b1), t(1 - b1),"),
    ]),
    edits("kernels/adam/cupy_cuda.py", "cuda_host", ADAM_MANY, [
        # multi-tensor: the search keeps the tensor before the block's own at its first block
        ("if (first[mid] <= b) lo = mid;", "if (first[mid] < b) lo = mid;"),
        # multi-tensor: the element index ignores the tensor's first block
        ("const long long i = (b - first[lo]) * blockDim.x + threadIdx.x;",
         "const long long i = b * blockDim.x + threadIdx.x;"),
        # the device step: the counter not stored back (a graph replay repeats t)
        ("counter[0] = t;", "counter[0] = t - 1;"),
        # the device step: the bias term of β1 read for β2
        ("d2 = bias[j + 1];", "d2 = bias[j];"),
        # the device step: the last table entry read one step early
        ("if (t <= n_bias || exact_tail)", "if (t < n_bias || exact_tail)"),
        # wrapper: the pointer table keyed without the sizes (a shorter view reuses it)
        ("quad[0].size) for quad in arrays)", "0) for quad in arrays)"),
        # wrapper: the cache forgets the use order (evicts a table just used)
        ("_tables.move_to_end(key)", "pass"),
    ]),
)

# Every __syncthreads() of the CUDA sources, removed one at a time (occurrence k of the
# file; _gemm_cuda.py's two inside the chunk loop are named above). The natural thread
# order of the emulator sees a missing barrier when a reader runs before the writer;
# thread_order (tests/cuda_host.py) and poisoned empty arrays show the rest. The ones the
# tests cannot kill are redundant, for the reason given; one more, the barrier before
# last_of_tile's ticket in kernels/_splitk_cuda.py, only orders this block's partial sums
# before another block reads them, which only concurrent blocks show: it is left out.
_BARRIERS = {
    "kernels/conv1d/cupy_cuda.py": CONV,
    "kernels/conv1d_relu_maxpool/cupy_cuda.py": FUSED,
    "kernels/rnn/cupy_cuda.py": RNN,
    "kernels/lstm/cupy_cuda.py": LSTM,
    "kernels/gru/cupy_cuda.py": GRU,
    "kernels/_recurrent_cuda.py": RECURRENT,
    "kernels/head_losses/cupy_cuda.py": HEAD_LOSSES,
    "kernels/_splitk_cuda.py": CONV,
}
_CHUNK_END = ("the barrier at the end of a chunk: the next chunk's first writes are the small "
              "index tables, which the multiply does not read, and its tiles are written only "
              "after the next chunk's first barrier, which every thread reaches after its "
              "multiply")
_REDUNDANT = {
    ("kernels/conv1d/cupy_cuda.py", 2): "conv1d_bwd_data: " + _CHUNK_END,
    ("kernels/conv1d/cupy_cuda.py", 5): "conv1d_bwd_weight: " + _CHUNK_END,
    ("kernels/rnn/cupy_cuda.py", 2): (
        "the barrier before the backward's time loop: each thread zeroed the g_next entries "
        "it alone reads in the loop's first phase (same q), and W (in shared memory) is "
        "read only after that phase's barrier"),
    ("kernels/lstm/cupy_cuda.py", 3): (
        "the barrier before the backward's time loop: each thread zeroed the gh_next and "
        "gc_next entries it alone reads in the loop's first phase (same q), and W is read "
        "only after that phase's barrier"),
    ("kernels/head_losses/cupy_cuda.py", 1): (
        "the barrier between the fixed-order sums and part[t] = sum: thread t < n_tasks "
        "reads part[r] only for r = t (mod n_tasks), so no other summing thread reads the "
        "entry t < n_tasks that thread t then writes"),
}
_LEFT_OUT = {("kernels/_splitk_cuda.py", 0)}


def _barrier_mutants():
    out = []
    for file, tests in _BARRIERS.items():
        n = (_ROOT / file).read_text().count("__syncthreads();")
        out += edits(file, "cuda_host", tests, [
            ("__syncthreads();", "/* no barrier */;", k, _REDUNDANT.get((file, k)))
            for k in range(n) if (file, k) not in _LEFT_OUT])
    return out


MUTANTS = (*MUTANTS, _barrier_mutants(), edits("kernels/_gemm_cuda.py", "cuda_host", CONV, [
    # the barrier between the row tables and the tiles that read them
    ("            rpos[tid] = k * d;\n        }\n        __syncthreads();",
     "            rpos[tid] = k * d;\n        }\n", 0),
]), edits("kernels/head_losses/cupy_cuda.py", "cuda_host", HEAD_LOSSES, [
    # binary cross-entropy's log(1 + e^-|z|) without the absolute value (wrong for z < 0)
    ("log1p(exp(-fabs(v)));", "log1p(exp(-v));"),
    # the elementwise losses averaged over rows only, not over the row's K entries
    ("(double)N : (double)N * (double)spec[4 * t + 2];", "(double)N : (double)N;"),
    # the total ignores the task weights
    ("total += weights[t] * mean;", "total += mean;"),
    # the block's fixed-order sum drops the last group of threads
    ("for (int r = q; r < P; r += n_tasks) s += part[r];",
     "for (int r = q; r < P - n_tasks; r += n_tasks) s += part[r];"),
    # a thread's rows step by the threads, not by the rows they cover together
    ("i < hi; i += P / n_tasks)", "i < hi; i += P)"),
    # several blocks: the second kernel skips the last block's partial sums
    ("for (int b = 0; b < blocks; ++b) s += partial", "for (int b = 0; b < blocks - 1; ++b) "
     "s += partial"),
    # backward: each task's own gradient g[1 + t] read one task early
    ("(G > 1 ? (double)g[1 + t] : 0.0)", "(G > 1 ? (double)g[t] : 0.0)"),
    # backward: softmax cross-entropy's label entry with the wrong sign
    ("gz[y] = (T)(-b * off_label);", "gz[y] = (T)(b * off_label);"),
    # backward: binary cross-entropy's negative-logit branch taken for every logit
    ("(v >= 0.0 ? (1.0 - y) - r : r - y)", "((1.0 - y) - r)"),
    # backward: the factor 2 of the squared error dropped
    ("gz[k] = (T)(b * 2.0 * (v - y));", "gz[k] = (T)(b * (v - y));"),
    # backward: a label equal to K read as a class (one past the row)
    ("if (y < 0 || y >= K) {", "if (y < 0 || y > K) {", 1),
]))
MUTANTS = [m for group in MUTANTS for m in group]
