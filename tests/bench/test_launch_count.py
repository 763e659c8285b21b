"""benchmarks/launch_count.py on the host emulator, at a small size: the step's launches
split exactly into its phases, every launch of our kernels belongs to an op, and the count
does not depend on the batch (no launch is data-dependent)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from kernels import launches
from tests.conftest import HOST_CUDA
from tests.cuda_host import FakeCupy, default_cache, patch_cupy_backend

pytestmark = pytest.mark.skipif(not HOST_CUDA, reason="needs g++ and no CUDA GPU")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "launch_count.py"


def _load():
    spec = importlib.util.spec_from_file_location("launch_count", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def script(monkeypatch):
    module = _load()
    module._host_backend(monkeypatch)
    module._tag_ops(monkeypatch)
    return module


class _CupyModule(FakeCupy):
    """NumPy as the ``cupy`` module ``--device`` imports, with the device facts it reads."""

    class cuda(FakeCupy.cuda):  # noqa: N801 - cupy's spelling
        class runtime:  # noqa: N801
            @staticmethod
            def getDeviceProperties(device_id):  # noqa: N802
                return {"name": b"host"}


def _but_the_table_upload(r: dict) -> tuple[dict, int]:
    """The kernels and total less Adam's pointer-table upload, which happens when the
    gradients' addresses are new to its cache (the allocator's doing, not the batch's)."""
    upload = r["by_op_kernel"].get("adam.step", {}).get("cupy.h2d", 0)
    assert upload <= 1
    kernels = dict(r["by_kernel"])
    if upload:
        kernels["cupy.h2d"] -= upload
        kernels = {k: n for k, n in kernels.items() if n}
    return kernels, r["total"] - upload


def test_a_step_counts_per_phase_and_op_and_the_same_at_every_batch(script):
    small = script.count_step(2, steps=2, seq_len=16, features=3)
    large = script.count_step(5, steps=2, seq_len=16, features=3)
    assert _but_the_table_upload(small) == _but_the_table_upload(large)
    assert small["phases"]["adam"]["total"] <= 2              # one launch (+ the table)
    phases = sum(small["phases"][p]["total"] for p in script.PHASES)
    assert small["total"] == phases + small["by_op"].get(launches.UNTAGGED, 0)
    assert small["first_step_total"] >= small["total"]      # Adam's moments created once
    for op, kernels in small["by_op_kernel"].items():
        ours = [k for k in kernels if not k.startswith("cupy.")]
        assert not ours or op.endswith((".forward", ".backward")) or op == "adam.step", op
    assert any(k.startswith("cupy.") for k in small["by_kernel"])    # cupy's counted too
    table = script._table(small)
    assert f"{small['total']} launches in step 2" in table
    json.dumps(small)


def test_the_device_path_counts_our_kernels_alike_and_a_lower_bound_of_cupys(monkeypatch):
    """``--device`` on the host: the emulator's kernels, with NumPy standing for the cupy
    module that ``CountingXp`` wraps (so no array operator or method is seen)."""
    size = dict(steps=2, seq_len=16, features=3)
    module = _load()
    with monkeypatch.context() as mp:
        module._host_backend(mp)
        module._tag_ops(mp)
        emulated = module.count_step(2, **size)
    with monkeypatch.context() as mp:
        patch_cupy_backend(mp, default_cache())
        mp.setitem(sys.modules, "cupy", _CupyModule())
        assert module._device_backend(mp).startswith("host")
        module._tag_ops(mp)
        device = module.count_step(2, **size)

    def split(r):
        ours = {k: n for k, n in r["by_kernel"].items() if not k.startswith("cupy.")}
        return ours, r["total"] - sum(ours.values())

    (ours_e, cupy_e), (ours_d, cupy_d) = split(emulated), split(device)
    assert ours_d == ours_e
    assert 0 < cupy_d < cupy_e
    assert device["by_kernel"]["cupy.concatenate"] >= 1      # a call through the module
