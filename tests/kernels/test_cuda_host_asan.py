"""The AddressSanitizer build of the host emulator (``MINIMTL_CUDA_HOST_ASAN=1``, run by
tests/asan_check.sh): a kernel that reads one element past its input is stopped with a
report naming the kernel, and the same kernel within bounds runs clean. Each case runs in
a subprocess, since the sanitizer must be loaded before Python starts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


def _libasan() -> str | None:
    if shutil.which("g++") is None:
        return None
    path = subprocess.run(["g++", "-print-file-name=libasan.so"], capture_output=True,
                          text=True).stdout.strip()
    return path if os.path.isabs(path) and os.path.exists(path) else None


pytestmark = pytest.mark.skipif(_libasan() is None, reason="needs g++ with libasan")

SOURCE = r"""
template <typename T>
__global__ void shift_sum(const T* x, T* y)
{
    __shared__ T s[32];
    const int i = threadIdx.x;
    s[i] = x[i + 1];                     // thread 31 reads x[32]
    __syncthreads();
    y[i] = s[i] + s[(i + 1) % 32];
}
"""

PROGRAM = f"""
import sys
import numpy as np
from tests.cuda_host import HostModule, default_cache
fn = HostModule({SOURCE!r}, default_cache()).function("shift_sum", np.float32)
x, y = np.arange(int(sys.argv[1]), dtype=np.float32), np.zeros(32, np.float32)
fn((1,), (32,), (x, y))
print("ran", float(y.sum()))
"""


def _run(tmp_path, length: int) -> tuple[subprocess.CompletedProcess, str]:
    """The kernel on an input of ``length`` elements, built and run under the sanitizer:
    (the process, the sanitizer's reports)."""
    env = dict(os.environ, MINIMTL_CUDA_HOST_ASAN="1", LD_PRELOAD=_libasan(),
               MINIMTL_CUDA_HOST_CACHE=str(tmp_path / "cache"),
               ASAN_OPTIONS=f"detect_leaks=0:log_path={tmp_path / 'asan'}")
    res = subprocess.run([sys.executable, "-c", PROGRAM, str(length)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    return res, "".join(p.read_text() for p in tmp_path.glob("asan.*"))


def test_a_kernel_within_its_arrays_runs_clean(tmp_path):
    res, reports = _run(tmp_path, 33)
    assert res.returncode == 0 and "ran" in res.stdout, res.stderr
    assert "ERROR: AddressSanitizer" not in reports


def test_a_read_one_past_the_input_stops_the_run_naming_the_kernel(tmp_path):
    res, reports = _run(tmp_path, 32)
    assert res.returncode != 0 and "ran" not in res.stdout
    assert "ERROR: AddressSanitizer: heap-buffer-overflow" in reports
    assert "READ of size 4" in reports and "shift_sum" in reports
