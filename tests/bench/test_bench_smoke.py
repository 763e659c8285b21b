"""Smoke test of the benchmark runner: tiny shapes, one repeat, files written and readable.

Runs on the numpy backend only (no Numba compilation), so it stays fast in CI.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

import kernels
from minimtl import bench

OPS = ("conv1d", "maxpool1d", "lstm", "softmax", "cross_entropy")
BATCHES = (4, 32)


def _strict_json(text: str):
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


def _tables_are_rectangular(md: str) -> None:
    """Every markdown table row has as many cells as its header."""
    width = None
    for line in md.splitlines():
        if line.startswith("|"):
            cells = line.count("|")
            width = cells if width is None else width
            assert cells == width, f"ragged table row: {line}"
        else:
            width = None


def _accounted(r: dict, op: str, batch: int) -> bool:
    timed = [k for k in r["kernels"] if k["op"] == op and k["batch"] == batch]
    failed = [e for e in r["errors"] if e.get("op") == op
              and (e["where"] == "kernel import" or e.get("batch") == batch)]
    return bool(timed or failed)


def test_runner_writes_json_and_markdown_for_tiny_shapes(tmp_path, capsys):
    argv = ["--quick", "--backends", "numpy", "--batches", ",".join(map(str, BATCHES)),
            "--seq-len", "12", "--features", "3", "--ops", ",".join(OPS),
            "--out", str(tmp_path), "--name", "smoke", "--memory-steps", "2",
            "--memory-every", "1", "--keras-ms-32", "9.5", "--threads", "1"]
    assert bench.main(argv) == 0
    stdout = capsys.readouterr().out
    r = _strict_json((tmp_path / "smoke.json").read_text())
    md = (tmp_path / "smoke.md").read_text()

    assert r["name"] == "smoke" and r["settings"]["ops"] == list(OPS)
    assert r["machine"]["cores"] >= 1 and r["machine"]["numpy"] == np.__version__
    assert "malloc_tuned" in r["allocator"]
    assert r["matmul"][0]["gflops"] > 0
    for op in OPS:
        for batch in BATCHES:
            assert _accounted(r, op, batch), f"{op} at batch {batch}: no timing, no error"
    assert r["kernels"], "no kernel was timed at all"
    for k in r["kernels"]:
        for part in ("fwd", "fwdbwd"):
            assert k[part]["repeats"] == 1
            assert math.isfinite(k[part]["median_ms"]) and k[part]["median_ms"] > 0
        if "torch_fwdbwd_ms" in k:
            assert k["ratio_fwdbwd"] == pytest.approx(
                k["torch_fwdbwd_ms"] / k["fwdbwd"]["median_ms"], rel=1e-4)
        if k["op"] == "conv1d":
            n, c, o, lo = k["batch"], *((3, 64, 10) if "L=12" in k["shape"] else (64, 128, 3))
            assert k["flops_fwd"] == 2 * n * o * c * 3 * lo
            assert k["gflops_fwdbwd"] == pytest.approx(
                3 * k["flops_fwd"] / k["fwdbwd"]["median_ms"] / 1e6, rel=1e-4)

    steps = [s for s in r["steps"] if s["system"] == "minimtl"]
    for batch in BATCHES:
        ok = [s for s in steps if s["batch"] == batch and s["backend"] == "numpy"]
        failed = [e for e in r["errors"] if e["where"] == "step" and e.get("batch") == batch
                  and e.get("backend") == "numpy"]
        assert ok or failed, f"training step at batch {batch}: no timing, no error"
        for s in ok:
            assert s["samples_per_s"] == pytest.approx(batch / s["median_ms"] * 1e3, rel=1e-4)
            if batch == 32:
                assert s["ratio_keras"] == pytest.approx(9.5 / s["median_ms"], rel=1e-4)
    if "memory" in r:
        assert [i for i, _ in r["memory"]["samples"]] == [0, 1, 2]
        assert r["memory"]["first_mib"] > 0
    else:
        assert any(e["where"] == "memory" for e in r["errors"])

    assert md.startswith("# minimtl benchmarks: smoke")
    assert "## Kernels" in md and md in stdout
    _tables_are_rectangular(md)

    assert bench.main(["--summary", str(tmp_path / "smoke.json")]) == 0
    assert "smoke" in capsys.readouterr().out

    # Keras's times measured afterwards by the reference script, added to the same files
    assert bench.main(["--add-keras", str(tmp_path / "smoke.json"), "--keras-ms-32", "7.0",
                       "--keras-ms-256", "30.0"]) == 0
    r2 = _strict_json((tmp_path / "smoke.json").read_text())
    assert r2["keras"] == {"32": 7.0, "256": 30.0}
    for s in r2["steps"]:
        if s["system"] == "minimtl" and s["batch"] == 32 and s["device"] == "cpu":
            assert s["ratio_keras"] == pytest.approx(7.0 / s["median_ms"], rel=1e-4)
    assert "| 7.00 |" in (tmp_path / "smoke.md").read_text()


def test_a_kernel_that_fails_to_import_is_recorded_and_skipped(tmp_path, monkeypatch):
    original = kernels.get

    class FakeSoftmax:
        @staticmethod
        def fwd(x):
            e = np.exp(x - x.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)

        @staticmethod
        def bwd(gy, y):
            return (y * (gy - (gy * y).sum(axis=1, keepdims=True)),)

    def get(op, backend):
        if op == "maxpool1d":
            raise ImportError("planted import failure")
        if op == "softmax":
            return FakeSoftmax
        return original(op, backend)

    monkeypatch.setattr(kernels, "get", get)
    argv = ["--quick", "--backends", "numpy", "--batches", "3", "--ops", "maxpool1d,softmax",
            "--no-step", "--no-torch", "--out", str(tmp_path), "--name", "fail"]
    assert bench.main(argv) == 0
    r = _strict_json((tmp_path / "fail.json").read_text())
    assert [e["op"] for e in r["errors"] if e["where"] == "kernel import"] == ["maxpool1d"]
    assert "planted import failure" in r["errors"][0]["error"]
    assert [(k["op"], k["batch"]) for k in r["kernels"]] == [("softmax", 3)]
    assert "planted import failure" in (tmp_path / "fail.md").read_text()


def test_unknown_operator_is_a_usage_error(tmp_path):
    assert bench.main(["--ops", "conv2d", "--out", str(tmp_path)]) == 2
    assert not list(tmp_path.iterdir())


_PLANTED_CRASH = '''
import ctypes

import kernels

_get = kernels.get


class _Crash:
    @staticmethod
    def fwd(*args, **kwargs):
        ctypes.string_at(0)          # reads address 0: the process dies of SIGSEGV

    bwd = fwd


def get(op, backend):
    return _Crash if op == "maxpool1d" else _get(op, backend)


kernels.get = get
'''


def test_a_kernel_that_crashes_its_process_is_found_by_the_probe(tmp_path, monkeypatch):
    # the planted crash lives only in child processes (through sitecustomize), so if the
    # probe missed it the main process would time the real kernel and the test would fail
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_PLANTED_CRASH)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p))
    argv = ["--quick", "--backends", "numpy", "--probe", "--batches", "3", "--no-step",
            "--no-torch", "--ops", "maxpool1d,softmax", "--out", str(tmp_path), "--name", "crash"]
    assert bench.main(argv) == 0
    r = _strict_json((tmp_path / "crash.json").read_text())
    crashed = [e for e in r["errors"] if e.get("op") == "maxpool1d"]
    assert len(crashed) == 1 and "crashed its process" in crashed[0]["error"]
    assert "maxpool1d" not in {k["op"] for k in r["kernels"]}
    assert r["complete"] is True
