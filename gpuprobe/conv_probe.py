import faulthandler, sys
faulthandler.enable()
import numpy as np, cupy as cp
from kernels.conv1d import cupy_cuda as k, reference as r
rng = np.random.default_rng(0)
for dt in (np.float32, np.float64):
    for (N, C, L, O, K) in [(2, 3, 9, 4, 3), (32, 32, 64, 64, 3)]:
        x = rng.standard_normal((N, C, L)).astype(dt); w = rng.standard_normal((O, C, K)).astype(dt)
        b = rng.standard_normal(O).astype(dt)
        print("fwd", dt.__name__, N, C, L, O, K, flush=True)
        y = k.fwd(cp.asarray(x), cp.asarray(w), cp.asarray(b), stride=1, padding_left=0, padding_right=0, dilation=1)
        cp.cuda.runtime.deviceSynchronize()
        ref = r.fwd(x, w, b, stride=1, padding_left=0, padding_right=0, dilation=1)
        print("  err", float(np.abs(y.get() - ref).max()), flush=True)
        gy = rng.standard_normal(ref.shape).astype(dt)
        g = k.bwd(cp.asarray(gy), cp.asarray(x), cp.asarray(w), stride=1, padding_left=0, padding_right=0, dilation=1)
        cp.cuda.runtime.deviceSynchronize()
        gr = r.bwd(gy, x, w, stride=1, padding_left=0, padding_right=0, dilation=1)
        print("  bwd err", [float(np.abs(a.get() - c).max()) for a, c in zip(g, gr)], flush=True)
