"""What the GPU pools' kernels share: one view of both layouts, and which windows contain
a position.

``WINDOWS`` is CUDA C that maxpool1d's, avgpool1d's and conv1d_relu_maxpool's ``SOURCE``
start with. Their kernels see every array as (R, n, I), pooled along the middle axis
(channels-first (N, C, n): R = N·C, I = 1; channels-last (N, n, C): R = N, I = C), one
thread per element, and ``split_index`` turns a thread's flat index into (r, position, c).
Their backward kernels are gathers (one thread per input position j, summing over the
windows that contain j, in increasing t), and ``windows_containing`` is the range of those
windows.
math: see the SPECs (kernels/maxpool1d/__init__.py, kernels/avgpool1d/__init__.py).
"""

__all__ = ["WINDOWS"]

WINDOWS = r"""
// Element i = (r*n + p)*I + c of an array seen as (R, n, I).
__device__ __forceinline__ void split_index(long long i, int n, int I, long long& r, int& p,
                                            int& c)
{
    const long long q = i / I;           // r*n + p
    c = (int)(i - q * I);
    r = q / n;
    p = (int)(q - r * n);
}

// The windows t of a pool (size K, stride S, left padding P, Lo windows) that contain
// position j >= 0: t*S - P <= j <= t*S - P + K - 1, i.e.
// t in [ceil((j + P - K + 1) / S), floor((j + P) / S)], cut to [0, Lo); empty when
// t_lo > t_hi.
__device__ __forceinline__ void windows_containing(int j, int K, int S, int P, int Lo,
                                                   int& t_lo, int& t_hi)
{
    const int a = j + P - K + 1;
    t_lo = a > 0 ? (a + S - 1) / S : 0;  // ceil for a > 0; C division truncates
    t_hi = (j + P) / S;                  // j + P >= 0: truncation is floor
    if (t_hi > Lo - 1) t_hi = Lo - 1;
}
"""
