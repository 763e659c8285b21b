"""The CUDA C of conv1d's GPU kernels, one source string of ``template <typename T>``
kernels: the forward and the two gradients as implicit GEMMs (the weight gradient's last
block of each tile adding up the tile's partial sums in a fixed order), after the tiles
they share with the fused block (``TILES``, kernels/_gemm_cuda.py). Each kernel opens with
its thread -> index map; what each computes and the launches are in cupy_cuda.py, which
compiles this source (conv1d_relu runs the same kernels, conv1d_relu_maxpool their
backward).
math: see SPEC (kernels/conv1d/__init__.py).
"""

from kernels._gemm_cuda import TILES

__all__ = ["SOURCE", "KERNELS"]

SOURCE = TILES + r"""
#define TRW 16         // reduction chunk of conv1d_bwd_weight

// Thread -> index map: block (blockIdx.x, blockIdx.y) owns the output columns
// p = n*Lo + t in [p0, p0 + tp) and the rows o in [m0, m0 + tm), with
// (tm, tp, threads) = (32, 256, 128), (64, 256, 256) or (128, 128, 256); thread tid =
// (tx, ty), tx = tid % (tp/8), ty = tid / (tp/8), owns rows m0 + ty + (tm/8)*i and columns
// p0 + tx + (tp/8)*j, i, j < 8. The reduction r = c*K + k runs in chunks of TR; the tiles
// are filled by all threads in turn (element e -> row e / tp, column e % tp).
template <typename T>
__global__ void __launch_bounds__(256, MINBLOCKS)
conv1d_fwd(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b,
           T* __restrict__ y, int N, int C, int L, int O, int K, int Lo,
           int S, int pl, int d, int has_bias, int relu, int tm, int tp)
{
    __shared__ T As[TR][128 + 1];            // As[rr][mm] = w[m0+mm, r0+rr]
    __shared__ T Bs[TR][MAXTP + 1];          // Bs[rr][pp] = Xc[r0+rr, p0+pp]
    __shared__ int xbase[MAXTP], xpos[MAXTP], yoff[MAXTP];   // per column p0+pp
    __shared__ int roff[TR], rpos[TR];       // per row r0+rr: c*L and k*d (roff -1: r >= R)
    const int tid = threadIdx.x, nt = blockDim.x;
    const int txn = tp / RT, tyn = tm / RT, tx = tid % txn, ty = tid / txn;
    const int tsh = __ffs(tp) - 1;           // tp is a power of two
    const int R = C * K, P = N * Lo;
    const int p0 = blockIdx.x * tp, m0 = blockIdx.y * tm;
    for (int pp = tid; pp < tp; pp += nt) {
        const int p = p0 + pp, n = p / Lo, t = p - n * Lo;
        xbase[pp] = p < P ? n * C * L : -1;
        xpos[pp] = t * S - pl;
        yoff[pp] = n * O * Lo + t;
    }
    T acc[RT][RT];
    gemm_tiles(x, w, As, Bs, xbase, xpos, roff, rpos, acc, R, K, L, O, d, L, 1, m0, tm, tp,
               tsh, tid, nt, tx, ty, txn, tyn);
#pragma unroll
    for (int j = 0; j < RT; ++j) {
        const int pp = tx + txn * j;
        if (xbase[pp] < 0) continue;
#pragma unroll
        for (int i = 0; i < RT; ++i) {
            const int o = m0 + ty + tyn * i;
            if (o >= O) continue;
            T v = acc[i][j] + (has_bias ? b[o] : T(0));
            if (relu && v < T(0)) v = T(0);     // NaN stays NaN, as max(z, 0) in the SPEC
            y[(long long)yoff[pp] + (long long)o * Lo] = v;
        }
    }
}

// Thread -> index map: as conv1d_fwd with rows m = c (tile tm) and columns p = n*L + j
// (tile tp); the reduction r = o*K + k. Gc[r, p] = gy[n,o,t] (times [y > 0] when relu)
// where t*S + k*d = j + pl, 0 <= t < Lo, else 0: a gather of the taps that read x[n,c,j].
template <typename T>
__global__ void __launch_bounds__(256, MINBLOCKS)
conv1d_bwd_data(const T* __restrict__ gy, const T* __restrict__ y, const T* __restrict__ w,
                T* __restrict__ gx, int N, int C, int L, int O, int K, int Lo,
                int S, int pl, int d, int relu, int tm, int tp)
{
    __shared__ T As[TR][128 + 1];            // As[rr][mm] = w[o, m0+mm, k], r0+rr = o*K + k
    __shared__ T Bs[TR][MAXTP + 1];          // Bs[rr][pp] = Gc[r0+rr, p0+pp]
    __shared__ int gbase[MAXTP], gpos[MAXTP], xoff[MAXTP];   // per column p0+pp
    __shared__ int roff[TR], rpos[TR], woff[TR];  // per row: o*Lo (-1: r >= R), k*d, o*C*K + k
    const int tid = threadIdx.x, nt = blockDim.x;
    const int txn = tp / RT, tyn = tm / RT, tx = tid % txn, ty = tid / txn;
    const int tsh = __ffs(tp) - 1;
    const int R = O * K, P = N * L;
    const int p0 = blockIdx.x * tp, m0 = blockIdx.y * tm;
    for (int pp = tid; pp < tp; pp += nt) {
        const int p = p0 + pp, n = p / L, j = p - n * L;
        gbase[pp] = p < P ? n * O * Lo : -1;
        gpos[pp] = j + pl;
        xoff[pp] = n * C * L + j;
    }
    T acc[RT][RT];
    zero_tile(acc);
    for (int r0 = 0; r0 < R; r0 += TR) {
        if (tid < TR) {
            const int r = r0 + tid, o = r / K, k = r - o * K;
            roff[tid] = r < R ? o * Lo : -1;
            rpos[tid] = k * d;
            woff[tid] = o * C * K + k;
        }
        __syncthreads();
        for (int e = tid; e < TR * tm; e += nt) {
            const int rr = e % TR, mm = e / TR, c = m0 + mm;
            As[rr][mm] = (c < C && roff[rr] >= 0) ? w[(long long)woff[rr] + c * K] : T(0);
        }
        for (int e = tid; e < TR * tp; e += nt) {
            const int rr = e >> tsh, pp = e & (tp - 1);
            const int i = gpos[pp] - rpos[rr];    // padded position read by tap k
            int t = i;
            bool ok = gbase[pp] >= 0 && roff[rr] >= 0 && i >= 0;
            if (S != 1) {
                t = i / S;
                ok = ok && t * S == i;
            }
            ok = ok && t < Lo;
            T g = T(0);
            if (ok) {
                const long long at = (long long)gbase[pp] + roff[rr] + t;
                g = gy[at];
                if (relu && !(y[at] > T(0))) g = T(0);
            }
            Bs[rr][pp] = g;
        }
        __syncthreads();
        mac_chunk<T, TR, 129, MAXTP + 1>(As, Bs, acc, tx, ty, txn, tyn);
        __syncthreads();
    }
#pragma unroll
    for (int j = 0; j < RT; ++j) {
        const int pp = tx + txn * j;
        if (gbase[pp] < 0) continue;
#pragma unroll
        for (int i = 0; i < RT; ++i) {
            const int c = m0 + ty + tyn * i;
            if (c < C) gx[(long long)xoff[pp] + (long long)c * L] = acc[i][j];
        }
    }
}

// The fixed order in which the slices' partial sums of one entry are added (part: the
// entry in slice 0, stride: the distance between slices): as eight lanes, lane l adding the
// slices z = l, l + 8, ... in turn, then the eight lane sums added in lane order. (The eight
// lanes were once eight threads; the order is kept, so the bits are those of that sum.)
template <typename T>
__device__ __forceinline__ T sum_slices(const volatile T* part, int splits, long long stride)
{
    T lane[8];
#pragma unroll
    for (int l = 0; l < 8; ++l) lane[l] = T(0);
    for (int z0 = 0; z0 < splits; z0 += 8) {
#pragma unroll
        for (int l = 0; l < 8; ++l)
            if (z0 + l < splits) lane[l] += part[(long long)(z0 + l) * stride];
    }
    T total = T(0);
#pragma unroll
    for (int l = 0; l < 8; ++l) total += lane[l];
    return total;
}

// Thread -> index map: 64 threads a block. Block (blockIdx.x, blockIdx.y, blockIdx.z) owns
// gw rows o in [m0, m0+64), columns r = c*K + k in [r0, r0+64), and the slice
// p = n*Lo + t in [z*pb, min(P, (z+1)*pb)) of the reduction, in chunks of TRW; thread
// (tx, ty) = (tid % 8, tid / 8) owns rows m0 + ty + 8*i and columns r0 + tx + 8*j, i, j < 8.
// Blocks with blockIdx.x == 0 also sum G over the slice for gb (thread tid: row m0 + tid).
// Each block writes its partial sums to part[z, :] = (gw partial (O*R), gb partial (O)),
// then takes a ticket from its tile's counter tickets[blockIdx.y*gridDim.x + blockIdx.x];
// the block that draws the last ticket (gridDim.z - 1; any z: blocks finish in no set
// order) puts the counter back to 0 and adds up the tile's slices with sum_slices, thread
// tid the column r0 + tid of every row, and row m0 + tid of gb when blockIdx.x == 0.
// x[n, c, i] is read at n*sN + c*sC + i*sL: channels-first (sN, sC, sL) = (C*L, L, 1), or
// the transposed view of a channels-last buffer, (L*C, 1, C) (conv1d_relu_maxpool's input).
template <typename T>
__global__ void conv1d_bwd_weight(const T* __restrict__ gy, const T* __restrict__ y,
                                  const T* __restrict__ x, T* __restrict__ part,
                                  T* __restrict__ gw, T* __restrict__ gb,
                                  int* __restrict__ tickets,
                                  int N, int C, int L, int O, int K, int Lo,
                                  int S, int pl, int d, int relu, int pb,
                                  int sN, int sC, int sL)
{
    __shared__ T Gs[TRW][64 + 1];            // Gs[q][mm] = G[m0+mm, pc+q]
    __shared__ T Xs[TRW][64 + 1];            // Xs[q][rr] = Xc[r0+rr, pc+q]
    __shared__ int roff[64], rpos[64];       // per column r0+rr: c*L (-1: r >= R), k*d
    __shared__ int gbase[TRW], xbase[TRW], xpos[TRW];   // per p = pc+q (gbase -1: p out)
    __shared__ int last;                     // this block drew its tile's last ticket
    const int tid = threadIdx.x, tx = tid % 8, ty = tid / 8;
    const int R = C * K, P = N * Lo;
    const int r0 = blockIdx.x * 64, m0 = blockIdx.y * 64;
    const int pbeg = blockIdx.z * pb;
    const int pend = min(P, pbeg + pb);
    {
        const int r = r0 + tid, c = r / K, k = r - c * K;
        roff[tid] = r < R ? c * sC : -1;
        rpos[tid] = k * d;
    }
    T acc[RT][RT];
    zero_tile(acc);
    T gbacc = T(0);
    for (int pc = pbeg; pc < pend; pc += TRW) {
        if (tid < TRW) {
            const int p = pc + tid, n = p / Lo, t = p - n * Lo;
            gbase[tid] = p < pend ? n * O * Lo + t : -1;
            xbase[tid] = n * sN;
            xpos[tid] = t * S - pl;
        }
        __syncthreads();
        for (int e = tid; e < TRW * 64; e += 64) {
            const int q = e % TRW, mm = e / TRW, o = m0 + mm;
            T g = T(0);
            if (gbase[q] >= 0 && o < O) {
                const long long at = (long long)gbase[q] + (long long)o * Lo;
                g = gy[at];
                if (relu && !(y[at] > T(0))) g = T(0);
            }
            Gs[q][mm] = g;
            const int rr = mm, i = xpos[q] + rpos[rr];
            const bool ok = gbase[q] >= 0 && roff[rr] >= 0 && i >= 0 && i < L;
            Xs[q][rr] = ok ? x[(long long)xbase[q] + roff[rr] + (long long)i * sL] : T(0);
        }
        __syncthreads();
        mac_chunk<T, TRW, 65, 65>(Gs, Xs, acc, tx, ty, 8, 8);
        if (blockIdx.x == 0) {
#pragma unroll
            for (int q = 0; q < TRW; ++q) gbacc += Gs[q][tid];
        }
        __syncthreads();
    }
    const long long stride = (long long)O * R + O;   // one slice of part
    T* out = part + (long long)blockIdx.z * stride;
#pragma unroll
    for (int i = 0; i < RT; ++i) {
        const int o = m0 + ty + 8 * i;
#pragma unroll
        for (int j = 0; j < RT; ++j) {
            const int r = r0 + tx + 8 * j;
            if (o < O && r < R) out[(long long)o * R + r] = acc[i][j];
        }
    }
    if (blockIdx.x == 0 && m0 + tid < O) out[(long long)O * R + m0 + tid] = gbacc;
    // the last block done: every thread's partials are visible device-wide (fence) before
    // thread 0 takes the block's ticket (after the barrier)
    __threadfence();
    __syncthreads();
    if (tid == 0) {
        int* ticket = tickets + blockIdx.y * gridDim.x + blockIdx.x;
        last = atomicAdd(ticket, 1) == (int)gridDim.z - 1;
        if (last) *ticket = 0;               // every block of the tile has drawn: reset
    }
    __syncthreads();
    if (!last) return;
    __threadfence();                         // the other blocks' partials, read after the ticket
    const volatile T* done = part;           // volatile: read from L2, never a stale L1 line
    const int r = r0 + tid, splits = gridDim.z;
    if (r < R)
        for (int mm = 0; mm < 64 && m0 + mm < O; ++mm) {
            const long long e = (long long)(m0 + mm) * R + r;
            gw[e] = sum_slices(done + e, splits, stride);
        }
    if (blockIdx.x == 0 && m0 + tid < O)
        gb[m0 + tid] = sum_slices(done + (long long)O * R + m0 + tid, splits, stride);
}
"""

KERNELS = ("conv1d_fwd", "conv1d_bwd_data", "conv1d_bwd_weight")
