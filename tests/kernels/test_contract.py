"""The kernel contract, checked for every family in ``kernels.FAMILIES``: three backend
modules with the reference's signatures (``fwd``/``bwd`` for an operator, ``update`` for an
optimizer update, which has no backward), a SPEC docstring, and CUDA sources that compile
with nvcc for float and double (where nvcc exists). These checks live here once for every
family; the per-family test files check the numbers."""

from __future__ import annotations

import importlib
import inspect
import shutil
import subprocess
from pathlib import Path

import pytest

import kernels
from kernels._cuda import nvcc_unit

MODULES = ("reference", "numba_cpu", "cupy_cuda")


def _functions(op: str) -> tuple[str, ...]:
    return ("update",) if op in kernels.UPDATES else ("fwd", "bwd")


def test_every_family_is_an_operator_or_an_update():
    assert kernels.FAMILIES == kernels.OPS + kernels.UPDATES
    assert not set(kernels.OPS) & set(kernels.UPDATES)


@pytest.mark.parametrize("op", kernels.FAMILIES)
def test_a_family_is_its_spec_and_its_three_backends_nothing_else(op):
    # so a learner follows an op to its SPEC and kernels in four files of the family (what
    # several families share lives in the named kernels/_*.py modules)
    folder = Path(kernels.__file__).parent / op
    assert sorted(p.name for p in folder.glob("*.py")) == sorted(
        ("__init__.py", *(m + ".py" for m in MODULES))), op


@pytest.mark.parametrize("op", kernels.FAMILIES)
def test_every_backend_has_the_reference_signatures(op):
    ref = importlib.import_module(f"kernels.{op}.reference")
    for name in MODULES[1:]:
        mod = importlib.import_module(f"kernels.{op}.{name}")  # must import without cupy
        for fn in _functions(op):
            assert inspect.signature(getattr(mod, fn)) == inspect.signature(getattr(ref, fn)), (
                f"kernels.{op}.{name}.{fn} differs from the reference")


@pytest.mark.parametrize("op", kernels.FAMILIES)
def test_static_parameters_are_keyword_only(op):
    """Arrays are positional; static parameters are keyword-only and explicit, except
    boolean switches that skip work (``need_gx``), which default to doing it, and the
    layout switch ``channels_last``, which defaults to PyTorch's (N, C, L)."""
    ref = importlib.import_module(f"kernels.{op}.reference")
    for fn in _functions(op):
        for p in inspect.signature(getattr(ref, fn)).parameters.values():
            assert p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            if p.kind is p.KEYWORD_ONLY and p.default is not p.empty:
                assert ((p.default is True and p.name.startswith("need_"))
                        or (p.default is False and p.name == "channels_last")), (
                    f"{op}.{fn}: static {p.name} must be explicit")


@pytest.mark.parametrize("op", kernels.FAMILIES)
def test_spec_docstring_derives_the_backward(op):
    """An operator's SPEC derives its backward; an update's says what it writes in place."""
    doc = importlib.import_module(f"kernels.{op}").__doc__ or ""
    assert len(doc) > 400, f"kernels/{op}/__init__.py needs its SPEC docstring"
    low = doc.lower()
    words = ("update", "in place", "shape") if op in kernels.UPDATES else (
        "backward", "forward", "shape")
    assert all(w in low for w in words), (op, words)


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
@pytest.mark.parametrize("op", kernels.FAMILIES)
def test_cuda_source_compiles_with_nvcc_for_float_and_double(op, tmp_path):
    mod = importlib.import_module(f"kernels.{op}.cupy_cuda")
    src = tmp_path / f"{op}.cu"
    src.write_text(nvcc_unit(mod.SOURCE, mod.KERNELS))
    res = subprocess.run(["nvcc", "-std=c++14", "-arch=sm_90", "-c", str(src), "-o",
                          str(tmp_path / f"{op}.o")], capture_output=True, text=True,
                         timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
