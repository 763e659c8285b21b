"""``minimtl bench --plot``: the charts' data from a results file, and the PNGs written."""

import json
from pathlib import Path

import pytest

from minimtl.bench import charts
from minimtl.bench.command import main

RESULTS = {
    "name": "tiny",
    "kernels": [
        {"op": "conv1d", "shape": "32->64 L=64", "batch": 32, "backend": "numba",
         "fwdbwd": {"median_ms": 2.0}, "gflops_fwdbwd": 50.0, "bytes_fwdbwd": 1e6,
         "ratio_fwdbwd": 1.25},
        {"op": "softmax", "shape": "(32, 10)", "batch": 32, "backend": "numba",
         "fwdbwd": {"median_ms": 0.01}, "ratio_fwdbwd": 0.5},
    ],
    "steps": [{"system": "minimtl", "backend": "numba", "device": "cpu", "batch": 32,
               "median_ms": 8.0},
              {"system": "torch", "backend": "torch", "device": "cpu", "batch": 32,
               "median_ms": 10.0}],
    "keras": {"32": 9.0},
    "matmul": [{"gflops": 300.0}],
}


def test_the_charts_read_ratios_steps_and_roofline_points():
    assert charts.kernel_ratios(RESULTS) == {"numba": [("conv1d 32->64 L=64 N=32", 1.25),
                                                       ("softmax (32, 10) N=32", 0.5)]}
    assert charts.step_table(RESULTS) == {"minimtl numba": {32: 8.0},
                                          "PyTorch (cpu)": {32: 10.0}, "Keras": {32: 9.0}}
    ((backend, label, intensity, gflops),) = charts.roofline_points(RESULTS)
    # 50 GFLOP/s for 2 ms = 1e8 FLOPs over 1e6 bytes
    assert (backend, gflops) == ("numba", 50.0) and intensity == pytest.approx(100.0)


def test_bench_plot_writes_three_pngs_next_to_the_results(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(RESULTS))
    assert main(["--plot", str(path)]) == 0
    for kind in ("kernels", "step", "roofline"):
        png = Path(tmp_path / f"tiny-{kind}.png")
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
