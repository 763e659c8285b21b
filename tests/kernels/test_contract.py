"""The kernel contract, checked for every operator in ``kernels.OPS``: three backend
modules with identical ``fwd``/``bwd`` signatures, a SPEC docstring, and CUDA sources that
compile with nvcc for float and double (where nvcc exists). These checks live here once
for every operator; the per-operator test files check the numbers."""

from __future__ import annotations

import importlib
import inspect
import shutil
import subprocess

import pytest

import kernels
from kernels._cuda import nvcc_unit

MODULES = ("reference", "numba_cpu", "cupy_cuda")


@pytest.mark.parametrize("op", kernels.OPS)
def test_every_backend_has_the_reference_signatures(op):
    ref = importlib.import_module(f"kernels.{op}.reference")
    for name in MODULES[1:]:
        mod = importlib.import_module(f"kernels.{op}.{name}")  # must import without cupy
        for fn in ("fwd", "bwd"):
            assert inspect.signature(getattr(mod, fn)) == inspect.signature(getattr(ref, fn)), (
                f"kernels.{op}.{name}.{fn} differs from the reference")


@pytest.mark.parametrize("op", kernels.OPS)
def test_static_parameters_are_keyword_only(op):
    """Arrays are positional; static parameters are keyword-only and explicit, except
    boolean switches that skip work (``need_gx``), which default to doing it, and the
    layout switch ``channels_last``, which defaults to PyTorch's (N, C, L)."""
    ref = importlib.import_module(f"kernels.{op}.reference")
    for fn in ("fwd", "bwd"):
        for p in inspect.signature(getattr(ref, fn)).parameters.values():
            assert p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            if p.kind is p.KEYWORD_ONLY and p.default is not p.empty:
                assert ((p.default is True and p.name.startswith("need_"))
                        or (p.default is False and p.name == "channels_last")), (
                    f"{op}.{fn}: static {p.name} must be explicit")


@pytest.mark.parametrize("op", kernels.OPS)
def test_spec_docstring_derives_the_backward(op):
    doc = importlib.import_module(f"kernels.{op}").__doc__ or ""
    assert len(doc) > 400, f"kernels/{op}/__init__.py needs its SPEC docstring"
    low = doc.lower()
    assert "backward" in low and "forward" in low and "shape" in low


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
@pytest.mark.parametrize("op", kernels.OPS)
def test_cuda_source_compiles_with_nvcc_for_float_and_double(op, tmp_path):
    mod = importlib.import_module(f"kernels.{op}.cupy_cuda")
    src = tmp_path / f"{op}.cu"
    src.write_text(nvcc_unit(mod.SOURCE, mod.KERNELS))
    res = subprocess.run(["nvcc", "-std=c++14", "-arch=sm_90", "-c", str(src), "-o",
                          str(tmp_path / f"{op}.o")], capture_output=True, text=True,
                         timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
