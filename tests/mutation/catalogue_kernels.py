"""Mutants of the kernels: the NumPy references (group ``reference``) and the Numba CPU
kernels with the fused Adam loop (group ``numba``), every one of the 15 kernel families.

Test selections. A reference mutant also breaks the oracle, so its tests are those that
check the reference against something else: naive loops (``test_reference_*``), finite
differences, PyTorch, properties, the composition of other families' references, all on
the ``numpy`` backend (``-k "numpy or test_reference"``); the backend-vs-reference tests of
the numpy backend then compare the mutant with itself and cannot fail, harmlessly. A Numba
mutant runs its family's tests on the ``numba`` backend (``-k numba``): against the float64
reference, properties, PyTorch, and the Numba-only chunk, row-chunk and parallel-path tests.
"""

from __future__ import annotations

from tests.mutation.mutant import edits

K = "tests/kernels/"
REF = "numpy or test_reference"

# tests/kernels/test_kernel_edges.py, written for survivors of this catalogue
EDGES = K + "test_kernel_edges.py::"
E_NAN_WINDOW = EDGES + "test_conv1d_relu_maxpool_equals_the_composition_on_a_nan_window"
E_TINY_LOG_P = EDGES + "test_log_softmax_of_a_confident_row_keeps_its_tiny_log_probability"
E_BCE_BOUNDARY = EDGES + "test_bce_gradient_passes_on_the_clip_boundary_and_stops_just_outside"

# --- reference selections -----------------------------------------------------------------
R_CONV = (K + "test_conv1d.py", K + "test_conv1d_channels_last.py",
          "-k", REF)
R_CONV_RELU = (K + "test_conv1d_relu.py", K + "test_conv1d_channels_last.py",
               K + "test_conv1d_need_gx.py", "-k", REF)
R_CRM = (K + "test_conv1d_relu_maxpool.py", E_NAN_WINDOW, "-k",
         "numpy and not cuda_host")
R_MAXPOOL = (K + "test_maxpool1d.py", "-k",
             f"({REF}) and (maxpool or test_maxpool1d)")
R_AVGPOOL = (K + "test_avgpool1d.py", "-k",
             f"({REF}) and (avgpool or test_avgpool1d)")
R_RNN = (K + "test_rnn.py", "-k", REF)
R_LSTM = (K + "test_lstm.py", "-k", REF)
R_GRU = (K + "test_gru.py", "-k", REF)
R_SOFTMAX = (K + "test_softmax.py", "tests/stability/test_extremes.py",
             "-k", f"({REF}) and softmax and not log_softmax")
R_LOG_SOFTMAX = (K + "test_softmax.py", "tests/stability/test_extremes.py", E_TINY_LOG_P,
                 "-k", f"({REF}) and log_softmax")
R_LOSSES = (K + "test_losses.py", "tests/stability/test_extremes.py", E_BCE_BOUNDARY,
            "-k", "numpy or references or reference_rejects")

# the shared modules under kernels/: every family that imports them
R_SHAPES = (K + "test_conv1d.py", K + "test_conv1d_channels_last.py", K + "test_maxpool1d.py",
            K + "test_avgpool1d.py", "-k", REF)
R_ROWS = (K + "test_softmax.py", K + "test_losses.py", "tests/stability/test_extremes.py",
          E_TINY_LOG_P, "-k", "numpy or test_reference or references")

# --- numba selections ----------------------------------------------------------------------
N_CONV = (K + "test_conv1d.py", K + "test_conv1d_channels_last.py", K + "test_conv1d_relu.py",
          K + "test_conv1d_need_gx.py", "-k", "numba")
N_CRM = (K + "test_conv1d_relu_maxpool.py", E_NAN_WINDOW, "-k",
         "numba and not cuda_host")
N_MAXPOOL = (K + "test_maxpool1d.py", "-k",
             "numba and (maxpool or test_maxpool1d)")
N_AVGPOOL = (K + "test_avgpool1d.py", "-k",
             "numba and (avgpool or test_avgpool1d)")
N_RNN = (K + "test_rnn.py", "-k", "numba")
N_LSTM = (K + "test_lstm.py", "-k", "numba")
N_GRU = (K + "test_gru.py", "-k", "numba")
N_SOFTMAX = (K + "test_softmax.py", "tests/stability/test_extremes.py", E_TINY_LOG_P,
             "-k", "numba and softmax")
N_LOSSES = (K + "test_losses.py", "tests/stability/test_extremes.py", E_BCE_BOUNDARY,
            "-k", "numba")
N_IM2COL = N_CONV[:-2] + (K + "test_conv1d_relu_maxpool.py", "-k", "numba and not cuda_host")
N_ROWS = (K + "test_softmax.py", K + "test_losses.py", "tests/stability/test_extremes.py",
          E_TINY_LOG_P, "-k", "numba")
N_THREADS = N_IM2COL[:-2] + (K + "test_chunk_threads.py", "-k", "(numba and not cuda_host) "
                                                             "or chunk or thread or matmul "
                                                             "or dense or helper")
N_ADAM = ("tests/optim/test_adam_kernels.py", "tests/optim/test_optim.py", "-k", "numba")


def ref(op: str) -> str:
    return f"kernels/{op}/reference.py"


def nb(op: str) -> str:
    return f"kernels/{op}/numba_cpu.py"


MUTANTS = [
    # ================================================================ reference group
    *edits(ref("conv1d"), "reference", R_CONV, [
        ("if Lo < 1:", "if Lo < 0:"),
        ("(padding_left, padding_right)))", "(padding_right, padding_left)))"),
        ("np.arange(Lo)[:, None] * stride + np.arange(K)[None, :] * dilation",
         "np.arange(Lo)[:, None] * dilation + np.arange(K)[None, :] * stride"),
        ('np.einsum("nctk,ock->not", cols, w)', 'np.einsum("nctk,ock->not", cols, w[:, :, ::-1])'),
        ("y = y + b[None, :, None]", "y = y - b[None, :, None]"),
        ("gb = gy.sum(axis=(0, 2))", "gb = gy[:, :, 1:].sum(axis=(0, 2))"),
        ('np.einsum("not,nctk->ock", gy, cols)',
         'np.einsum("not,nctk->ock", gy, cols[:, :, ::-1])'),
        ("gxp[:, :, k * dilation:k * dilation + last:stride]", "gxp[:, :, k:k + last:stride]"),
        ("gx = gxp[:, :, padding_left:padding_left + L]",
         "gx = gxp[:, :, padding_right:padding_right + L]"),
    ]),
    *edits(ref("conv1d_relu"), "reference", R_CONV_RELU, [
        ("return np.maximum(z, 0)", "return np.abs(z)"),
        ("gz = np.where(y > 0, gy, 0)", "gz = np.where(y >= 0, gy, 0)"),
        ("need_gx=need_gx,", "need_gx=True,"),
    ]),
    *edits(ref("conv1d_relu_maxpool"), "reference", R_CRM, [
        ("masked = np.where(y > 0, gy, 0)", "masked = np.where(y >= 0, gy, 0)"),
        ("padding=pool_padding,\n                         channels_last",
         "padding=0,\n                         channels_last"),
        ("length_axis = 1 if channels_last else 2", "length_axis = 2"),
        ("stride=pool_stride, padding=pool_padding,\n                          channels_last",
         "stride=pool_size, padding=pool_padding,\n                          channels_last"),
    ]),
    *edits(ref("maxpool1d"), "reference", R_MAXPOOL, [
        ("lo = max(t * stride - padding, 0)", "lo = max(t * stride - padding, 1)"),
        ("hi = min(t * stride - padding + kernel_size, L)",
         "hi = min(t * stride - padding + kernel_size - 1, L)"),
        ("k = np.argmax(window, axis=2)",
         "k = window.shape[2] - 1 - np.argmax(window[:, :, ::-1], axis=2)"),
        ("argmax[:, :, t] = lo + k", "argmax[:, :, t] = k"),
        ("np.add.at(gx, (n, c, argmax), gy)", "gx[n, c, argmax] += gy"),
        ("return swap_layout(y), swap_layout(argmax)",
         "return swap_layout(y), swap_layout(argmax)[:, ::-1]"),
    ]),
    *edits(ref("avgpool1d"), "reference", R_AVGPOOL, [
        ("xp = np.pad(x, ((0, 0), (0, 0), (P, P)))",
         "xp = np.pad(x, ((0, 0), (0, 0), (0, 2 * P)))"),
        ("for k in range(K):\n        total", "for k in range(1, K):\n        total"),
        ("return total / x.dtype.type(K)", "return total / x.dtype.type(S)"),
        ("for k in range(K):\n        gxp", "for k in range(K - 1):\n        gxp"),
        ("return (gxp[:, :, P : P + length] / gy.dtype.type(K),)",
         "return (gxp[:, :, 0 : length] / gy.dtype.type(K),)"),
        ("gxp = np.zeros((N, C, length + 2 * P), dtype=gy.dtype)",
         "gxp = np.zeros((N, C, length + 2 * P), dtype=np.float32)"),
    ]),
    *edits(ref("rnn"), "reference", R_RNN, [
        ("p = x @ w_ih.T + b_ih + b_hh", "p = x @ w_ih.T + b_ih - b_hh"),
        ("h = np.tanh(p[:, t] + h @ w_hh.T)", "h = np.tanh(p[:, t] + h @ w_hh)"),
        ("* (1 - hs[:, t] ** 2)", "* (1 - hs[:, t])"),
        ("g = ga[:, t] @ w_hh", "g = ga[:, t] @ w_hh.T"),
        ("hs[:, :-1]], axis=1)", "hs[:, 1:]], axis=1)"),
        ('gw_ih = np.einsum("ntj,ntd->jd", ga, x)',
         'gw_ih = np.einsum("ntj,ntd->jd", ga[:, ::-1], x)'),
    ]),
    *edits(ref("lstm"), "reference", R_LSTM, [
        ("np.where(a >= 0, 1 / (1 + e), e / (1 + e))",
         "np.where(a >= 0, 1 / (1 + e), 1 / (1 + e))"),
        ("c = f * c + i * g", "c = i * c + f * g"),
        ("h = o * np.tanh(c)", "h = o * c"),
        ("gc = gcs[:, t] + gh * o[:, t] * (1 - tc**2) + gc_next",
         "gc = gcs[:, t] + gh * o[:, t] * (1 - tc**2)"),
        ("gf = gc * cprev[:, t]", "gf = gc * cs[:, t]"),
        ("gc_next = gc * f[:, t]", "gc_next = gc * i[:, t]"),
        ("go = gh * tc", "go = gh * cs[:, t]"),
        ("gg * (1 - g[:, t] ** 2)", "gg * (1 - g[:, t])"),
        ("cprev = np.concatenate([c0[:, None, :]", "cprev = np.concatenate([h0[:, None, :]"),
    ]),
    *edits(ref("gru"), "reference", R_GRU, [
        ("p = x @ w_ih.T + b_ih  #", "p = x @ w_ih.T  #"),
        ("n = np.tanh(p[:, t, 2 * H :] + r * m)", "n = np.tanh(p[:, t, 2 * H :] + m)"),
        ("h = (1 - z) * n + z * h", "h = z * n + (1 - z) * h"),
        ("ga_z = g * (hprev[:, t] - n[:, t])", "ga_z = g * (n[:, t] - hprev[:, t])"),
        ("[ga_r, ga_z, ga_n * r[:, t]]", "[ga_r, ga_z, ga_n]"),
        ("g = z[:, t] * g + gq[:, t] @ w_hh", "g = (1 - z[:, t]) * g + gq[:, t] @ w_hh"),
        ("gb_hh = gq.sum(axis=(0, 1))", "gb_hh = gp.sum(axis=(0, 1))"),
    ]),
    *edits(ref("softmax"), "reference", R_SOFTMAX, [
        ("np.exp(x64 - x64.max(axis=1, keepdims=True))",
         "np.exp(x64 - x64.min(axis=1, keepdims=True))"),
        ("y = e / e.sum(axis=1, keepdims=True)", "y = e / e.sum(axis=0, keepdims=True)"),
        ("gx = y64 * (gy64 - s)", "gx = y64 * (gy64 + s)"),
        ("s = (gy64 * y64).sum(axis=1, keepdims=True)", "s = gy64.sum(axis=1, keepdims=True)"),
    ]),
    *edits(ref("log_softmax"), "reference", R_LOG_SOFTMAX, [
        ("y = (x64 - m) - L", "y = (x64 - m) + L"),
        ("gx = gy64 - np.exp(y.astype(np.float64)) * S", "gx = gy64 - y.astype(np.float64) * S"),
        ("S = gy64.sum(axis=1, keepdims=True)", "S = gy64.sum(axis=0, keepdims=True)"),
    ]),
    *edits(ref("cross_entropy"), "reference", R_LOSSES, [
        ("loss = (m - x_label) + L", "loss = (m - x_label) - L"),
        ("lse = m + L", "lse = m"),
        ("s[rows, labels] = -s.sum(axis=1)", "s[rows, labels] = 1 - s.sum(axis=1)"),
        ("s[rows, labels] = 0.0\n", "s[rows, labels] = s[rows, labels]\n"),
        ("labels.max() >= x.shape[1]", "labels.max() > x.shape[1]"),
    ]),
    *edits(ref("soft_cross_entropy"), "reference", R_LOSSES, [
        ("((m - x64) + L)", "((m - x64) - L)"),
        ("gx = g * (s * p64.sum(axis=1, keepdims=True) - p64)", "gx = g * (s - p64)"),
        ("gp = g * (lse64 - x64)", "gp = g * (x64 - lse64)"),
    ]),
    *edits(ref("bce"), "reference", R_LOSSES, [
        ("p_hat = np.clip(p.astype(np.float64), EPS, 1.0 - EPS)",
         "p_hat = np.clip(p.astype(np.float64), EPS, 1.0)"),
        ("p_hat = np.clip(p.astype(np.float64), EPS, 1.0 - EPS)",
         "p_hat = np.clip(p.astype(np.float64), 0.0, 1.0 - EPS)"),
        ("inside = (p64 >= EPS) & (p64 <= 1.0 - EPS)", "inside = (p64 >= EPS) & (p64 <= 1.0)"),
        ("inside = (p64 >= EPS) & (p64 <= 1.0 - EPS)", "inside = (p64 > EPS) & (p64 <= 1.0 - EPS)"),
        ("/ (p_hat * (1.0 - p_hat))", "/ (1.0 - p_hat)"),
        ("EPS = 1e-7", "EPS = 1e-8"),
    ]),
    *edits(ref("bce_with_logits"), "reference", R_LOSSES, [
        ("-z64 * y64)", "z64 * y64)"),
        ("np.log1p(np.exp(-np.abs(z64)))", "np.log1p(np.exp(-z64))"),
        ("r = e / (1.0 + e)", "r = 1.0 / (1.0 + e)"),
        ("(1.0 - y64) - r, r - y64)", "(1.0 - y64) - r, r + y64)"),
    ]),
    *edits(ref("mse"), "reference", R_LOSSES, [
        ("return (d * d).astype(a.dtype)", "return (d * np.abs(d)).astype(a.dtype)"),
        ("ga = 2.0 * d * gloss.astype(np.float64)", "ga = d * gloss.astype(np.float64)"),
        ("(-ga).astype(a.dtype)", "(ga).astype(a.dtype)"),
    ]),

    *edits("kernels/_shapes.py", "reference", R_SHAPES, [
        # conv1d's output length (the references' and every backend's)
        ("dilation * (K - 1) - 1) // stride + 1", "dilation * (K - 1)) // stride + 1"),
        # the pools' padding rule and output length
        ("0 <= padding <= kernel_size // 2", "0 <= padding <= kernel_size"),
        ("return (length + 2 * padding - kernel_size) // stride + 1",
         "return (length + padding - kernel_size) // stride + 1"),
        # the layout swap of the channels-last adapters
        ("return a.swapaxes(1, 2).copy()", "return a.swapaxes(1, 2)[:, :, ::-1].copy()"),
    ]),
    *edits("kernels/_rows.py", "reference", R_ROWS, [
        ("np.where(x64 < m, np.exp(x64 - m), 0.0)", "np.where(x64 <= m, np.exp(x64 - m), 0.0)"),
        ("np.log1p(below + (ties - 1))", "np.log1p(below + ties)"),
    ]),

    # ================================================================ numba group
    *edits(nb("conv1d"), "numba", N_CONV, [
        ("y[n, o, t] = prod[o, row + t] + bo", "y[n, o, t] = prod[o, row + t] - bo"),
        ("y[n, o, t] = max(prod[o, row + t] + bo, 0.0)", "y[n, o, t] = max(prod[o, row + t], 0.0)"),
        ("g = gy[n, o, t] if y[n, o, t] > 0.0 else 0.0",
         "g = gy[n, o, t] if y[n, o, t] >= 0.0 else 0.0"),
        ("gb[o] += part.sum()", "gb[o] = part.sum()"),
        ("y[r, o] = max(y[r, o] + b[o], zero)", "y[r, o] = max(y[r, o], zero)"),
        ("G[r, o] = gy[r, o] if y[r, o] > zero else zero",
         "G[r, o] = gy[r, o] if y[r, o] >= zero else zero"),
        ("        gb[o] += part[o]", "        gb[o] = part[o]", None,
         "each chunk's gb is its own zeroed row of gb_parts, which _mask_nlc adds to once"),
        ("gw += np.matmul(G, cols.T, out=gw_chunk)", "gw = np.matmul(G, cols.T, out=gw_chunk)"),
        ("im2col(x[n0:n1], K, stride, padding_left, dilation, Lo, cols)        #",
         "im2col(x[0:n1 - n0], K, stride, padding_left, dilation, Lo, cols)        #"),
    ]),
    *edits("kernels/_im2col.py", "numba", N_IM2COL, [
        # im2col: the padding on the wrong side; position 0 taken as padding
        ("i = t * S + k * d - pl\n                cols[ck",
         "i = t * S + k * d + pl\n                cols[ck"),
        ("x[n, c, i] if 0 <= i < L else 0.0", "x[n, c, i] if 0 < i < L else 0.0"),
        # col2im: position 0 never receives its gradient
        ("if 0 <= i < L:\n                        gx[n, c, i]",
         "if 0 < i < L:\n                        gx[n, c, i]"),
        # im2col_nlc: the dilation dropped
        ("i = t * S + k * d - pl\n                if 0 <= i < L:\n                    for c",
         "i = t * S + k - pl\n                if 0 <= i < L:\n                    for c"),
        # col2im_nlc: overlapping taps overwrite instead of adding
        ("gx[n, i, c] += gcols[r, k * C + c]", "gx[n, i, c] = gcols[r, k * C + c]"),
        # the channels-last weight matrix and its inverse in the wrong order
        ("w.transpose(2, 1, 0)).reshape(K * C, O)", "w.transpose(1, 2, 0)).reshape(K * C, O)"),
        ("np.ascontiguousarray(wm.reshape(K, C, O).transpose(2, 1, 0))",
         "np.ascontiguousarray(wm.reshape(C, K, O).transpose(2, 0, 1))"),
        # the chunks: the last sample left out
        ("[(n0, min(N, n0 + nb)) for n0 in range(0, N, nb)]",
         "[(n0, min(N - 1, n0 + nb)) for n0 in range(0, N, nb)]"),
        # a chunk's weight gradient from the rows in reverse (a wrong pairing of X̂ and G)
        ("np.matmul(cols.T, G, out=gw_part)", "np.matmul(cols.T, G[::-1], out=gw_part)"),
    ]),
    *edits("kernels/_threads.py", "numba", N_THREADS, [
        # the chunks' partial gradients: only the last one kept
        ("        total += part", "        total = part + 0"),
        # one thread: every chunk's partial written to slot 0's index
        ("            work(0, i, n0, n1)\n        return 1", "            work(0, 0, n0, n1)\n"
         "        return 1"),
        # threads: every chunk's partial written to the first one's index
        ("            i, (n0, n1) = item", "            i, (n0, n1) = 0, item[1]"),
        # the blocked product: the last row (or column) of the output never written
        ("blocks = [(i, min(size, i + step)) for i in range(0, size, step)]",
         "blocks = [(i, min(size - 1, i + step)) for i in range(0, size, step)]"),
        # a column block multiplied with the wrong columns
        ("np.matmul(a, b[:, lo:hi], out=out[:, lo:hi])",
         "np.matmul(a, b[:, lo - lo:hi - lo], out=out[:, lo:hi])"),
    ]),
    *edits(nb("conv1d_relu"), "numba", N_CONV, [
        ("int(dilation),\n                True)", "int(dilation),\n                False)"),
        ("impl(gy, x, w, y, int(stride)", "impl(gy, x, w, None, int(stride)"),
    ]),
    *edits(nb("conv1d_relu_maxpool"), "numba", N_CRM, [
        ("start = p * Sp - Pp", "start = p * Sp + Pp"),
        ("hi = min(start + Kp, Lc)", "hi = min(start + Kp - 1, Lc)"),
        ("y[n, p, o] = max(z[n, lo, o] + b[o], 0.0)", "y[n, p, o] = max(z[n, lo, o], 0.0)"),
        ("take = (v > best) | ((v != v) & (best == best))",
         "take = (v >= best) | ((v != v) & (best == best))"),
        ("p_lo = (a + Sp - 1) // Sp if a > 0 else 0", "p_lo = (a + Sp - 1) // Sp if a > 0 else 1"),
        ("p_hi = min((t + Pp) // Sp, Lp - 1)", "p_hi = min((t + Pp) // Sp, Lp - 2)"),
        ("take = (argmax[n, p, o] == t) & (y[n, p, o] > 0.0)",
         "take = (argmax[n, p, o] == t) & (y[n, p, o] >= 0.0)"),
        ("gb[o] += gy[n, p, o] if y[n, p, o] > 0.0 else 0.0", "gb[o] += gy[n, p, o]"),
        ("take = (v > u) | ((v != v) & (u == u))", "take = (v >= u) | ((v != v) & (u == u))"),
        ("u = max(z[n, 2 * p, o] + b[o], zero)", "u = z[n, 2 * p, o] + b[o]"),
        ("g = gy[n, p, o] if y[n, p, o] > zero else zero\n                G[n, t + 1, o]",
         "g = gy[n, p, o]\n                G[n, t + 1, o]"),
        ("pairs = Kp == 2 and Sp == 2 and Pp == 0", "pairs = Kp == 2 and Sp == 2"),
        ("argmax[n0:n1], Kp, Sp, Pp, G, gb_parts[i])",
         "argmax[n0:n1], Kp, Sp, 0, G, gb_parts[i])"),
        # the bias gradient of the first chunk only
        ("    gb = sum_in_order(gb_parts, np.float64)", "    gb = gb_parts[0].copy()"),
        ("im2col_nlc(x[n0:n1], K, S, pl, d, Lc, cols)",
         "im2col_nlc(x[0:n1 - n0], K, S, pl, d, Lc, cols)"),
        ("chunk_products_nlc(x[n0:n1], G.reshape", "chunk_products_nlc(x[0:n1 - n0], G.reshape"),
        ("masked = np.where(y > 0, gy, 0)", "masked = np.where(y >= 0, gy, 0)"),
    ]),
    *edits(nb("maxpool1d"), "numba", N_MAXPOOL, [
        ("take = (v > best) | ((v != v) & (best == best))",
         "take = (v >= best) | ((v != v) & (best == best))", 0),
        ("take = (v > best) | ((v != v) & (best == best))", "take = (v > best) | (v != v)", 0),
        ("j = min(max(start + k, 0), L - 1)", "j = min(max(start + k, 0), L - 2)"),
        ("for k in range(1, kernel_size):", "for k in range(2, kernel_size):"),
        ("take = (b > a) | ((b != b) & (a == a))", "take = (b >= a) | ((b != b) & (a == a))", 0),
        ("gx[r, argmax[r, t]] += gy[r, t]", "gx[r, argmax[r, t]] = gy[r, t]"),
        ("hi = min(start + kernel_size, L)", "hi = min(start + kernel_size - 1, L)"),
        ("take = (v > best) | ((v != v) & (best == best))",
         "take = (v >= best) | ((v != v) & (best == best))", 1),
        ("take = (b > a) | ((b != b) & (a == a))", "take = (b >= a) | ((b != b) & (a == a))", 1),
        ("t_lo = (a + stride - 1) // stride if a > 0 else 0",
         "t_lo = (a + stride - 1) // stride if a > 0 else 1"),
        ("t_hi = min((j + padding) // stride, Lo - 1)",
         "t_hi = min((j + padding) // stride, Lo - 2)"),
        ("gx[n, j, c] = s + g if argmax[n, t, c] == j else s",
         "gx[n, j, c] = s + g if argmax[n, t, c] >= j else s"),
        ("pairs = kernel_size == 2 and stride == 2 and padding == 0",
         "pairs = stride == 2 and padding == 0"),
        ("_bwd_last(gy, argmax, gx, int(kernel_size), int(stride), int(padding))",
         "_bwd_last(gy, argmax, gx, int(kernel_size), int(stride), 0)"),
    ]),
    *edits(nb("avgpool1d"), "numba", N_AVGPOOL, [
        ("y[r, t] = s / kernel_size", "y[r, t] = s / (hi - lo)"),
        ("y[r, t] = (x[r, 2 * t] + x[r, 2 * t + 1]) / 2",
         "y[r, t] = (x[r, 2 * t] + x[r, 2 * t]) / 2"),
        ("hi = min(t * stride - padding + kernel_size, L)",
         "hi = min(t * stride - padding + kernel_size - 1, L)", 1),
        ("gx[r, j] /= kernel_size", "gx[r, j] /= stride"),
        ("g = gy[r, t] / 2", "g = gy[r, t]"),
        ("y[n, t, c] /= kernel_size", "y[n, t, c] /= hi - lo"),
        ("t_hi = min((j + padding) // stride, Lo - 1)",
         "t_hi = min((j - padding) // stride, Lo - 1)"),
        ("t_lo = (a + stride - 1) // stride if a > 0 else 0", "t_lo = a // stride if a > 0 else 0"),
        ("gx[n, j, c] = gy[n, t, c] / 2", "gx[n, j, c] = gy[n, t, c]"),
        ("pairs = kernel_size == 2 and stride == 2 and padding == 0",
         "pairs = kernel_size == 2 and stride == 2", 0),
        ("_bwd_last(gy, gx, int(kernel_size), int(stride), int(padding))",
         "_bwd_last(gy, gx, int(kernel_size), int(stride), 0)"),
    ]),
    *edits(nb("rnn"), "numba", N_RNN, [
        ("(one - h * h)", "(one - h)"),
        ("(g[n, j] + ghs[n, t, j])", "(g[n, j] - ghs[n, t, j])"),
        ("p += b_ih + b_hh", "p += b_ih - b_hh"),
        ("np.matmul(h, w_hhT, out=a)", "np.matmul(h, w_hh, out=a)"),
        ("np.matmul(ga[:, t], w_hh, out=g)", "np.matmul(ga[:, t], w_hh.T, out=g)"),
        ("hs[:, :-1]], axis=1)", "hs[:, 1:]], axis=1)"),
        ("gb = ga2.sum(axis=0)", "gb = ga2[1:].sum(axis=0)"),
    ]),
    *edits(nb("lstm"), "numba", N_LSTM, [
        ("c[n, j] = f * c[n, j] + i * g", "c[n, j] = f * c[n, j] - i * g"),
        ("f = half + half * a[n, H + j]", "f = half - half * a[n, H + j]"),
        ("gct = gcs[n, t, j] + ght * o * (one - tc * tc) + gc[n, j]",
         "gct = gcs[n, t, j] + ght * o * (one - tc * tc)"),
        ("gct = gcs[n, t, j] + ght * o * (one - tc * tc) + gc[n, j]",
         "gct = ght * o * (one - tc * tc) + gc[n, j]"),
        ("cp = c0[n, j] if t == 0 else cs[n, t - 1, j]",
         "cp = c0[n, j] if t == 0 else cs[n, t, j]"),
        ("gz[n, t, 3 * H + j] = ght * tc * o * (one - o)",
         "gz[n, t, 3 * H + j] = ght * o * (one - o)"),
        ("gc[n, j] = gct * f", "gc[n, j] = gct * i"),
        ("gz[n, t, 2 * H + j] = gct * i * (one - g * g)",
         "gz[n, t, 2 * H + j] = gct * i * (one - g)"),
        ("s[2 * H : 3 * H] = 1", "s[3 * H :] = 1"),
        ("xh[:, 1:, D:] = hs[:, :-1]", "xh[:, 1:, D:] = hs[:, 1:]"),
        ("p += (b_ih + b_hh) * s", "p += b_ih + b_hh"),
    ]),
    *edits(nb("gru"), "numba", N_GRU, [
        ("numerator = one if a >= 0 else e", "numerator = one if a > 0 else e", None,
         "at a = 0 (or -0.0) e = exp(-|a|) = 1 = one, so both branches give 1/(1 + 1); NaN "
         "takes the e branch either way"),
        ("return np.copysign((1.0 - e) / (1.0 + e), a)", "return (1.0 - e) / (1.0 + e)"),
        ("(w2[j] * a2 + w3[j] * a3)", "(w2[j] * a2 + w3[j] * a2)"),
        ("for k in range(k4, H):", "for k in range(k4 + 1, H):"),
        ("h[j] = (1.0 - z) * c + z * h[j]", "h[j] = z * c + (1.0 - z) * h[j]"),
        ("hprev = h0[n] if t == 0 else hs[n, t - 1]", "hprev = h0[n] if t == 0 else hs[n, t]"),
        ("ga_z = gj * (hprev[j] - c) * z * (1.0 - z)",
         "ga_z = gj * (c - hprev[j]) * z * (1.0 - z)"),
        ("gq[n, t, 2 * H + j] = ga_n * r", "gq[n, t, 2 * H + j] = ga_n"),
        ("g[j] = z * gj", "g[j] = gj"),
        ("(a2 * w2[k] + a3 * w3[k])", "(a2 * w2[k] + a3 * w2[k])"),
        ("for i in range(i4, 3 * H):", "for i in range(i4, 3 * H - 1):"),
        ("p += b_ih  #", "p -= b_ih  #"),
        ("gp2.sum(axis=0), gq2.sum(axis=0)", "gp2.sum(axis=0), gp2.sum(axis=0)"),
    ]),
    *edits(nb("softmax"), "numba", N_SOFTMAX, [
        ("m = max(m, np.float64(x[i, k]))", "m = min(m, np.float64(x[i, k]))"),
        ("inv = 1.0 / s", "inv = 1.0 / (s + 1e-7)"),
        ("gx[i, k] = np.float64(y[i, k]) * (np.float64(gy[i, k]) - s)",
         "gx[i, k] = np.float64(y[i, k]) * (np.float64(gy[i, k]) + s)"),
        ("s += np.float64(gy[i, k]) * np.float64(y[i, k])", "s += np.float64(gy[i, k])"),
        ("_fwd_rows(x, y, i, i + 1)", "_fwd_rows(x[::-1], y, i, i + 1)"),
        ("_bwd_rows(gy, y, gx, i, i + 1)", "_bwd_rows(gy[::-1], y, gx, i, i + 1)"),
    ]),
    *edits(nb("log_softmax"), "numba", N_SOFTMAX, [
        ("y[i, k] = (np.float64(x[i, k]) - m) - L", "y[i, k] = (np.float64(x[i, k]) - m) + L"),
        ("- np.exp(np.float64(y[i, k])) * S", "- np.float64(y[i, k]) * S"),
        ("_fwd_rows(x, y, i, i + 1)", "_fwd_rows(x[::-1], y, i, i + 1)"),
        ("_bwd_rows(gy, y, gx, i, i + 1)", "_bwd_rows(gy, y[::-1], gx, i, i + 1)"),
    ]),
    *edits(nb("cross_entropy"), "numba", N_LOSSES, [
        ("np.float64(x[i, labels[i]])", "np.float64(x[i, labels[i] - 1])"),
        ("lse[i] = m + L", "lse[i] = m"),
        ("gx[i, y] = -g * off_label", "gx[i, y] = g * off_label"),
        ("off_label += s", "off_label += g * s"),
        ("_fwd_rows(x, labels, loss, lse, i, i + 1)",
         "_fwd_rows(x, labels[::-1], loss, lse, i, i + 1)"),
        ("_bwd_rows(gloss, x, labels, lse, gx, i, i + 1)",
         "_bwd_rows(gloss[::-1], x, labels, lse, gx, i, i + 1)"),
        ("PARALLEL_MIN, x.size, x, labels, loss, lse)",
         "PARALLEL_MIN, x.size, x[::-1], labels[::-1], loss, lse)"),
    ]),
    *edits(nb("soft_cross_entropy"), "numba", N_LOSSES, [
        ("((m - np.float64(x[i, k])) + L)", "((m - np.float64(x[i, k])) - L)"),
        ("gx[i, k] = g * (np.exp(v - l) * P - np.float64(p[i, k]))",
         "gx[i, k] = g * (np.exp(v - l) - np.float64(p[i, k]))"),
        ("gp[i, k] = g * (l - v)", "gp[i, k] = g * (v - l)"),
        ("_bwd_rows(gloss, x, p, lse, gx, gp, i, i + 1)",
         "_bwd_rows(gloss[::-1], x, p, lse, gx, gp, i, i + 1)"),
        ("_fwd_rows(x, p, loss, lse, i, i + 1)", "_fwd_rows(x, p[::-1], loss, lse, i, i + 1)"),
    ]),
    *edits("kernels/_rows_numba.py", "numba", N_ROWS, [
        # row_max_logsum (log_softmax and the cross-entropies)
        ("if v < m:", "if v <= m:"),
        ("m = -np.inf", "m = 0.0"),
        ("np.log1p(below + (ties - 1))", "np.log1p(below + ties)"),
        # the serial path skips the last row
        ("rows(*arrays, 0, arrays[0].shape[0])", "rows(*arrays, 0, arrays[0].shape[0] - 1)"),
        ("if size < parallel_min:", "if size < 0:", None,
         "every row kernel's prange loop runs its serial row function on each row, so both "
         "paths compute the same values"),
    ]),
    *edits(nb("bce"), "numba", N_LOSSES, [
        ("p_hat = min(max(np.float64(p[i]), EPS), 1.0 - EPS)",
         "p_hat = min(max(np.float64(p[i]), EPS), 1.0)"),
        ("p_hat = min(max(np.float64(p[i]), EPS), 1.0 - EPS)",
         "p_hat = min(max(np.float64(p[i]), 0.0), 1.0 - EPS)"),
        ("if EPS <= pi <= 1.0 - EPS:", "if EPS < pi <= 1.0 - EPS:"),
        ("if EPS <= pi <= 1.0 - EPS:", "if EPS <= pi <= 1.0:"),
        ("/ (pi * (1.0 - pi))", "/ (pi * (1.0 + pi))"),
        ("EPS = 1e-7", "EPS = 1e-8"),
    ]),
    *edits(nb("bce_with_logits"), "numba", N_LOSSES, [
        ("else -zi * yi", "else zi * yi"),
        ("loss[i] = linear + np.log1p(np.exp(-abs(zi)))",
         "loss[i] = linear + np.log1p(np.exp(-zi))"),
        ("r = e / (1.0 + e)", "r = 1.0 / (1.0 + e)"),
        ("else r - yi", "else r + yi"),
        ("gz[i] = np.float64(gloss[i]) * diff", "gz[i] = diff"),
    ]),
    *edits(nb("mse"), "numba", N_LOSSES, [
        ("loss[i] = d * d", "loss[i] = d * abs(d)"),
        ("2.0 * (np.float64(a[i]) - np.float64(b[i]))",
         "2.0 * (np.float64(a[i]) + np.float64(b[i]))"),
        ("gb[i] = -g", "gb[i] = g"),
    ]),
    *edits("kernels/adam/numba_cpu.py", "numba", N_ADAM, [
        ("mi = m[i] * b1 + gi * one_m_b1", "mi = m[i] * b1 + gi"),
        ("vi = v[i] * b2 + (gi * gi) * one_m_b2", "vi = v[i] * b2 + gi * one_m_b2"),
        ("d = np.sqrt(vi) / c2 + eps", "d = np.sqrt(vi) * c2 + eps"),
        ("d = np.sqrt(vi) / c2 + eps", "d = np.sqrt(vi + eps) / c2"),
        ("d = np.sqrt(vi) / c2 + eps", "d = np.sqrt(vi) / c2"),
        ("p[i] -= (mi / d) * step", "p[i] += (mi / d) * step"),
        ("m[i] = mi", "m[i] = m[i]"),
        ("t(1 - b2), t(b2)", "t(1 - b2), t(b1)"),
    ]),
]
