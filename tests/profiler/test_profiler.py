"""The profiler: what it records (rows, counts, FLOPs), its Chrome trace, the CLI command,
and that it leaves the engine exactly as it was when it is off."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import minimtl as mt
from minimtl import autograd, backend, function, gradients, optim
from minimtl.cli import main
from minimtl.function import Function
from minimtl.opcost import call_cost

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / "benchmarks" / "check_trace.py"


def _engine() -> dict:
    """Everything the profiler swaps, as the objects themselves."""
    found, stack = {}, list(Function.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if "backward" in cls.__dict__:
            found[cls] = cls.__dict__["backward"]
    return {"apply": Function.__dict__["apply"], "walk": autograd._walk,
            "grad_walk": gradients._walk,
            "fn_kernels": function.kernel_module, "optim_kernels": optim.kernel_module,
            "step": optim.Optimizer.__dict__["step"], "backwards": found}


def _same(a: dict, b: dict) -> bool:
    return all(a[k] is b[k] for k in a if k != "backwards") and \
        a["backwards"].keys() == b["backwards"].keys() and \
        all(a["backwards"][c] is b["backwards"][c] for c in a["backwards"])


def _tiny_step(x, w, opt):
    """(x·w)·x + w, summed: mul twice, add once, sum once."""
    opt.zero_grad()
    loss = ((x * w) * x + w).sum()
    loss.backward()
    opt.step()


def _tiny():
    x = mt.tensor(np.arange(6.0).reshape(2, 3), backend="numpy")
    w = mt.tensor(np.ones((2, 3)), backend="numpy", requires_grad=True)
    return x, w, mt.optim.SGD([w], lr=0.1)


def test_off_leaves_apply_walk_kernels_and_step_the_originals():
    before = _engine()
    assert function.kernel_module is backend.kernel_module
    with mt.profile() as prof:
        during = _engine()
        _tiny_step(*_tiny())
    assert not _same(before, during)                  # it did swap something in
    assert during["apply"] is not before["apply"] and during["walk"] is not before["walk"]
    assert _same(before, _engine())
    assert prof.rows(roofline=False)


def test_an_exception_in_the_block_or_in_an_op_restores_the_engine():
    before = _engine()
    with pytest.raises(KeyError):
        with mt.profile():
            raise KeyError("inside the block")
    assert _same(before, _engine())
    a = mt.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match="broadcast"):
        with mt.profile():
            a + mt.tensor(np.ones((4, 5)))
    assert _same(before, _engine())
    with mt.profile():                                # and a new profile opens again
        pass


def test_profiles_do_not_nest_and_one_profile_is_used_once():
    before = _engine()
    with mt.profile() as prof:
        with pytest.raises(RuntimeError, match="another profile"):
            with mt.profile():
                pass
        _tiny_step(*_tiny())
    assert _same(before, _engine())
    with pytest.raises(RuntimeError, match="already used"):
        with prof:
            pass
    assert _same(before, _engine())


def test_counts_and_rows_of_a_tiny_graph_over_three_marked_steps():
    x, w, opt = _tiny()
    with mt.profile() as prof:
        for _ in range(3):
            _tiny_step(x, w, opt)
            prof.step()
    assert len(prof.steps()) == 3
    rows = {(r["op"], r["direction"]): r for r in prof.rows(roofline=False)}
    calls = {k: r["calls"] for k, r in rows.items() if r["calls"]}
    assert calls == {("mul", "forward"): 6, ("mul", "backward"): 6, ("add", "forward"): 3,
                     ("add", "backward"): 3, ("sum", "forward"): 3, ("sum", "backward"): 3,
                     ("SGD.step", "step"): 3}
    assert {"autograd walk", "python between ops"} <= {r["op"] for r in rows.values()}
    recorded = {(ev[3].name, ev[0]) for ev in prof.events if ev[0] in ("forward", "backward")}
    assert recorded == {k for k in calls if k[1] != "step"}
    wall = sum(s1 - s0 for s0, s1 in prof.steps()) / 1e6
    assert sum(r["ms"] for r in rows.values()) == pytest.approx(wall, rel=1e-9)
    assert all(r["ms"] >= 0 for r in rows.values())


def test_without_marks_each_optimizer_step_ends_a_step():
    x, w, opt = _tiny()
    with mt.profile() as prof:
        for _ in range(4):
            _tiny_step(x, w, opt)
        (x * w).sum()                                 # after the last step: not in a step
    assert len(prof.steps()) == 4
    rows = {(r["op"], r["direction"]): r["calls"] for r in prof.rows(roofline=False)}
    assert rows[("mul", "forward")] == 8 and rows[("sum", "forward")] == 4


def test_other_threads_ops_are_not_recorded():
    x, w, opt = _tiny()
    with mt.profile() as prof:
        t = threading.Thread(target=lambda: (x * w * w * w).sum())
        t.start()
        t.join()
        (x * w).sum()
    names = [ev[3].name for ev in prof.events if ev[0] == "forward"]
    assert names == ["mul", "sum"]


def test_conv1d_and_linear_flops_match_the_hand_formula():
    # conv1d: x (N=2, C=3, L=10), w (O=4, C, K=3), stride 2 -> Lo = (10 - 3) // 2 + 1 = 4
    n, c, length, o, k, lo = 2, 3, 10, 4, 3, 4
    fwd, bwd = call_cost("conv1d", ((n, c, length), (o, c, k), (o,)), ((n, o, lo),),
                         {"stride": 2}, (True, True, True))
    assert fwd == 2 * n * o * lo * c * k + n * o * lo
    assert bwd == 2 * (2 * n * o * lo * c * k) + n * o * lo
    _, bwd_no_gx = call_cost("conv1d", ((n, c, length), (o, c, k), (o,)), ((n, o, lo),),
                             {"stride": 2}, (False, True, True))
    assert bwd_no_gx == 2 * n * o * lo * c * k + n * o * lo
    # linear: x (N=5, D=7), w (O=3, D)
    fwd, bwd = call_cost("linear", ((5, 7), (3, 7), (3,)), ((5, 3),), {}, (True, True, True))
    assert (fwd, bwd) == (2 * 5 * 7 * 3 + 5 * 3, 2 * (2 * 5 * 7 * 3) + 5 * 3)


def test_the_profiled_conv1d_and_linear_rows_carry_those_flops():
    rng = np.random.default_rng(0)
    x = mt.tensor(rng.standard_normal((2, 3, 10)), backend="numpy", requires_grad=True)
    w = mt.tensor(rng.standard_normal((4, 3, 3)), backend="numpy", requires_grad=True)
    b = mt.tensor(rng.standard_normal(4), backend="numpy", requires_grad=True)
    lw = mt.tensor(rng.standard_normal((5, 16)), backend="numpy", requires_grad=True)
    with mt.profile() as prof:
        y = mt.functional.conv1d(x, w, b, stride=2)               # (2, 4, 4)
        z = mt.functional.linear(y.reshape(2, 16), lw)             # (2, 5), no bias
        z.sum().backward()
    rows = {(r["op"], r["direction"]): r for r in prof.rows(roofline=False)}
    assert rows[("conv1d", "forward")]["flops"] == 2 * 2 * 4 * 4 * 3 * 3 + 2 * 4 * 4
    assert rows[("conv1d", "backward")]["flops"] == 2 * (2 * 2 * 4 * 4 * 3 * 3) + 2 * 4 * 4
    assert rows[("linear", "forward")]["flops"] == 2 * 2 * 16 * 5
    assert rows[("linear", "backward")]["flops"] == 2 * (2 * 2 * 16 * 5)
    conv = rows[("conv1d", "forward")]
    assert conv["bytes"] == (2 * 3 * 10 + 4 * 3 * 3 + 4 + 2 * 4 * 4) * 8
    assert 0 < conv["kernel_ms"] <= conv["ms"]


@pytest.fixture(scope="module")
def article_profile(tmp_path_factory):
    """Two profiled steps of the article's network (small batch, short sequences)."""
    from minimtl.bench.steps import minimtl_step

    step, _ = minimtl_step("numba", 4, 16, 8)
    step()
    with mt.profile() as prof:
        step()
        step()
    path = tmp_path_factory.mktemp("trace") / "trace.json"
    prof.chrome_trace(path)
    return prof, path


def test_the_trace_of_a_real_step_validates_and_nests(article_profile):
    prof, path = article_profile
    run = subprocess.run([sys.executable, str(CHECK), str(path)], capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    events = [e for e in json.loads(path.read_text())["traceEvents"] if e["ph"] == "X"]
    by_cat: dict[str, list] = {}
    for e in events:
        by_cat.setdefault(e["cat"], []).append((e["ts"], e["ts"] + e["dur"]))

    def inside(span, parents):
        return any(a - 1e-3 <= span[0] and span[1] <= b + 1e-3 for a, b in parents)

    assert len(by_cat["step"]) == 2
    ops = by_cat["forward"] + by_cat["backward"] + by_cat["optimizer"]
    assert all(inside(s, by_cat["step"]) for s in ops + by_cat["autograd"])
    assert all(inside(s, ops) for s in by_cat["kernel"])
    assert all(inside(s, by_cat["autograd"]) for s in by_cat["backward"])
    names = {e["name"] for e in events}
    assert {"conv1d_relu_maxpool", "conv1d_relu_maxpool backward", "linear",
            "conv1d_relu_maxpool.fwd", "conv1d_relu_maxpool.bwd", "adam.update_many",
            "Adam.step", "backward"} <= names


def test_the_checker_rejects_broken_traces(tmp_path):
    sys.path.insert(0, str(CHECK.parent))
    try:
        import check_trace
    finally:
        sys.path.remove(str(CHECK.parent))
    ok = {"name": "a", "ph": "X", "ts": 0, "dur": 10, "pid": 1, "tid": 1}
    assert check_trace.problems({"traceEvents": [ok]}) == []
    overlap = dict(ok, name="b", ts=5, dur=10)
    assert "without nesting" in check_trace.problems([ok, overlap])[0]
    assert "dur" in check_trace.problems([dict(ok, dur=-1)])[0]
    assert "ph" in check_trace.problems([dict(ok, ph="Q")])[0]
    assert "pid" in check_trace.problems([{k: v for k, v in ok.items() if k != "pid"}])[0]
    assert check_trace.problems({"events": []}) == ["no traceEvents list at the top level"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([ok, overlap]))
    assert subprocess.run([sys.executable, str(CHECK), str(bad)],
                          capture_output=True).returncode == 1


def test_the_table_lists_every_recorded_op_and_a_roofline(article_profile):
    prof, _ = article_profile
    table = prof.table()
    rows = prof.rows()
    recorded = {(ev[3].name, ev[0]) for ev in prof.events if ev[0] in ("forward", "backward")}
    assert {(r["op"], r["direction"]) for r in rows if r["direction"] in
            ("forward", "backward")} == recorded
    for name, _ in recorded:
        assert name in table
    assert "python between ops" in table and "Adam.step" in table
    conv = next(r for r in rows if r["op"] == "conv1d_relu_maxpool")
    assert conv["gflops"] > 0 and 0 < conv["roofline"]
    peaks = prof.peaks()
    assert peaks["gflops"] > 0 and peaks["gbps"] > 0


def test_plot_writes_a_png(article_profile, tmp_path):
    pytest.importorskip("matplotlib")
    prof, _ = article_profile
    assert prof.plot(tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_profile_command_on_the_article_data(tmp_path, capsys):
    out = tmp_path / "prof"
    assert main(["profile", "--samples", "200", "--steps", "2", "--warmup", "1",
                 "--seq-len", "16", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "2 step(s)" in text and "conv1d_relu_maxpool" in text and "Adam.step" in text
    run = subprocess.run([sys.executable, str(CHECK), str(out / "trace.json")],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout
    with pytest.raises(SystemExit):
        main(["profile", "--epochs", "3"])            # a run's option, not the profile's


def test_a_profiled_fit_gets_one_step_per_batch_without_marks():
    from minimtl.data import make_synthetic
    from minimtl.models import MultiTaskNet
    from minimtl.train import fit

    ds = make_synthetic(samples=40, seq_len=16, features=4, seed=0)
    model = MultiTaskNet(16, 4, backend="numpy")
    with mt.profile() as prof:
        fit(model, ds, epochs=1, batch_size=16, stream=None)
    assert len(prof.steps()) == 3                     # 40 samples, batches of 16
    rows = {(r["op"], r["direction"]): r["calls"] for r in prof.rows(roofline=False)}
    assert rows[("Adam.step", "step")] == 3


# --- kernel launches per op (the GPU's count, on the host emulator) ----------------------
def test_launches_per_row_add_up_to_the_steps_count_on_the_host_gpu(monkeypatch):
    """On the cupy backend each row says how many kernels its op launched in a step; with
    the emulator's counting arrays (cupy's own kernels seen too) the rows sum to what
    ``kernels.launches.count`` sees around the whole step, and the table shows them."""
    import shutil

    from kernels import launches
    from minimtl.models import MultiTaskNet
    from minimtl.optim import Adam
    from tests.cuda_host import default_cache, patch_cupy_backend

    if shutil.which("g++") is None:
        pytest.skip("g++ not installed")
    patch_cupy_backend(monkeypatch, default_cache(), count_launches=True)
    rng = np.random.default_rng(0)
    model = MultiTaskNet(12, 3, backend="cupy", seed=0)
    opt = Adam(list(model.parameters()), lr=1e-3)
    x = {t: mt.tensor(rng.standard_normal((4, 12, 3)).astype(np.float32), backend="cupy")
         for t in ("user", "goods", "ads")}
    y = {"user": rng.integers(0, 10, 4), "goods": (rng.random((4, 10)) > 0.5) * 1.0,
         "ads": rng.integers(0, 10, 4)}

    def step():
        opt.zero_grad()
        model.total_loss(model.losses(model(x), y)).backward()
        opt.step()

    step()                                   # Adam's moments exist from here on
    # one step seen both ways: two steps may differ by the Adam pointer table's upload,
    # which happens only when the gradients land at other addresses than the step before
    with launches.count() as whole, mt.profile(sync=False) as prof:
        step()
    rows = prof.rows(roofline=False)
    assert sum(r["launches"] for r in rows) == whole.total > 0
    conv = [r for r in rows if r["op"] == "conv1d_relu_maxpool" and r["direction"] ==
            "forward"]
    assert conv and conv[0]["launches"] == 6        # one fused kernel per block
    table = prof.table(roofline=False)
    assert f"{whole.total} kernel launches a step" in table and "launch" in \
        table.splitlines()[1]
