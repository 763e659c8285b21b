"""The Balancer inside a step: which parameters it finds shared, that its gradients are
the ones the formulas promise (checked against separate backward passes), what it records,
that it resumes exactly, and its errors."""

import numpy as np
import pytest

from minimtl.data import Dataset
from minimtl.models import MultiTaskNet
from minimtl.models.network import MultiTaskNetwork
from minimtl.objectives import Task
from minimtl.optim import Adam
from minimtl.train import Balancer, fit, to_tensors
from minimtl.train.balancing import pair_stats, pcgrad

TASKS = [Task("y1", "regression", 1), Task("y2", "regression", 1)]


def _data(n=256, seed=0, p=0.5):
    """MMoE synthetic data in float64 (the gradients compared to 1e-12)."""
    from minimtl.sources import mmoe_datasets

    train = mmoe_datasets(p, train=n, val=0, test=0, seed=seed)[0]
    return Dataset({"x": train.inputs["x"].astype(np.float64)},
                   {k: v.astype(np.float64) for k, v in train.targets.items()}, train.meta)


def _model(arch="shared-bottom", seed=0, **sizes):
    sizes = sizes or ({"bottom_units": 8, "tower_units": 4} if arch in
                      ("shared-bottom", "single-task") else
                      {"experts": 3, "expert_units": 4, "tower_units": 4})
    return MultiTaskNetwork({"x": "continuous"}, {"x": (100,)}, TASKS, architecture=arch,
                            seed=seed, backend="numpy", dtype=np.float64, **sizes)


def _losses(model, ds, n=64):
    batch = {k: v[:n] for k, v in ds.inputs.items()}
    targets = {k: v[:n] for k, v in ds.targets.items()}
    x, y = to_tensors(model, batch, targets)
    return model.losses(model(x), y)


def _task_grads(model, ds):
    """Each task's gradient on every parameter, from its own forward and backward."""
    out = {}
    for t in ("y1", "y2"):
        for p in model.parameters():
            p.grad = None
        _losses(model, ds)[t].backward()
        out[t] = {n: None if p.grad is None else p.grad.copy()
                  for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = None
    return out


@pytest.mark.parametrize("arch, shared", [
    ("shared-bottom", {"body.bottom.weight", "body.bottom.bias"}),
    ("mmoe", {"body.experts.weight", "body.experts.bias"}),
    ("omoe", {"body.experts.weight", "body.experts.bias", "body.gate.weight",
              "body.gate.bias"}),
])
def test_the_shared_parameters_are_those_both_tasks_reach(arch, shared):
    model, ds = _model(arch), _data()
    b = Balancer(model, conflict_every=1)
    b.backward(_losses(model, ds))
    assert {n for n, _ in b.shared} == shared


def test_the_article_heads_in_one_product_are_not_shared_but_its_towers_are():
    from minimtl.data import make_synthetic

    ds = make_synthetic(64, seq_len=16, features=4, seed=0)
    model = MultiTaskNet(16, 4, seed=0, backend="numpy")
    b = Balancer(model, conflict_every=1)
    b.backward(_losses(model, ds, 32))
    names = {n for n, _ in b.shared}
    assert names and all(n.startswith("towers.") for n in names)
    assert any(n.startswith("towers.0.") for n in names)
    # the last shared layer is the last convolution of every one of the parallel towers
    named = {id(p): n for n, p in model.named_parameters()}
    last = sorted(named[id(p)] for p in b.last)
    towers = sorted({n.split(".")[1] for n in names})
    assert len(towers) > 1
    deepest = max(n.split(".")[2] for n in names)
    assert last == sorted(f"towers.{t}.{deepest}.{k}" for t in towers
                          for k in ("bias", "weight"))


def test_on_the_last_layer_the_cosine_is_that_of_its_gradients_and_the_step_unchanged():
    from minimtl.data import make_synthetic

    ds = make_synthetic(64, seq_len=16, features=4, seed=0)
    ref = MultiTaskNet(16, 4, seed=0, backend="numpy", dtype=np.float64)
    names = [n for n, _ in ref.named_parameters()]
    plain = {}
    for t in ("user", "goods"):
        for p in ref.parameters():
            p.grad = None
        _losses(ref, ds, 32)[t].backward()
        plain[t] = {n: p.grad.copy() for n, p in ref.named_parameters()}
    for p in ref.parameters():
        p.grad = None
    model = MultiTaskNet(16, 4, seed=0, backend="numpy", dtype=np.float64)
    b = Balancer(model, conflict_every=1, conflict_on="last")
    losses = _losses(model, ds, 32)
    b.backward(losses)
    total = {n: p.grad.copy() for n, p in model.named_parameters()}
    for p in ref.parameters():
        p.grad = None
    ref.total_loss(_losses(ref, ds, 32)).backward()
    for n, p in ref.named_parameters():
        np.testing.assert_allclose(total[n], p.grad, rtol=1e-12, atol=1e-15)
    named = {id(p): n for n, p in model.named_parameters()}
    last = [named[id(p)] for p in b.last]
    assert set(last) < set(names)
    flat = {t: np.concatenate([plain[t][n].ravel() for n in last]) for t in plain}
    logs = b.epoch_end(dict.fromkeys(b.names, 1.0))
    assert logs["cos_user|goods"] == pytest.approx(pair_stats(flat)["user|goods"]["cosine"],
                                                   rel=1e-10)


def test_a_shared_layer_the_loss_also_reaches_past_the_next_one_is_in_the_last_layer():
    """h = relu(a(x)); z = b(h) + h (a skip around b): a is reached from the loss without
    passing b, so the last shared layer is a and b, where c (below a) is not in it."""
    import minimtl as mt
    import minimtl.functional as F
    from minimtl.nn import Linear, Module
    from minimtl.train.balancer import _last_layer

    rng = np.random.default_rng(0)

    class Skip(Module):
        def __init__(self):
            super().__init__()
            self.c = Linear(4, 5, rng=rng, dtype=np.float64)
            self.a = Linear(5, 5, rng=rng, dtype=np.float64)
            self.b = Linear(5, 5, rng=rng, dtype=np.float64)

    m = Skip()
    x = mt.tensor(rng.standard_normal((6, 4)))
    h = F.relu(m.a(F.relu(m.c(x))))
    z = m.b(h) + h
    total = (z * z).sum()
    shared = list(m.named_parameters())
    last = {n for n, p in shared if any(p is q for q in _last_layer(m, total, shared))}
    assert last == {"a.weight", "a.bias", "b.weight", "b.bias"}


def test_conflict_on_must_be_shared_or_last():
    with pytest.raises(ValueError, match="conflict_on must be 'shared' or 'last'"):
        Balancer(_model(), conflict_every=1, conflict_on="top")


def test_a_model_without_shared_parameters_is_refused_in_one_line():
    model, ds = _model("single-task"), _data()
    b = Balancer(model, pcgrad=True)
    with pytest.raises(ValueError, match="no parameter is shared by two tasks"):
        b.backward(_losses(model, ds))


def test_measuring_changes_no_gradient_and_records_the_true_cosine():
    model, ds = _model(), _data()
    expected = _task_grads(model, ds)
    b = Balancer(model, conflict_every=1)
    b.backward(_losses(model, ds))
    for n, p in model.named_parameters():         # the plain sum of the two tasks
        want = sum(g[n] for g in expected.values() if g[n] is not None)
        np.testing.assert_allclose(p.grad, want, rtol=1e-12, atol=1e-15)
    flat = {t: np.concatenate([expected[t][n].ravel() for n, _ in b.shared])
            for t in expected}
    logs = b.epoch_end({"y1": 1.0, "y2": 1.0})
    st = pair_stats(flat)["y1|y2"]
    assert logs["cos_y1|y2"] == pytest.approx(st["cosine"], rel=1e-10)
    assert logs["magsim_y1|y2"] == pytest.approx(st["magnitude"], rel=1e-10)
    assert logs["conflict_y1|y2"] == float(st["cosine"] < 0)
    assert logs["cosines"] == {"y1|y2": [pytest.approx(st["cosine"], rel=1e-10)]}


def test_pcgrad_sets_the_projected_sum_on_shared_parameters_and_leaves_the_rest():
    model, ds = _model(), _data(p=-0.5)
    expected = _task_grads(model, ds)
    b = Balancer(model, pcgrad=True, seed=3)
    order_rng = np.random.default_rng([3, 2020])        # the balancer's own stream
    b.backward(_losses(model, ds))
    names = [n for n, _ in b.shared]
    flat = [np.concatenate([expected[t][n].ravel() for n in names]) for t in ("y1", "y2")]
    want = pcgrad(flat, order_rng)
    got = np.concatenate([p.grad.ravel() for _, p in b.shared])
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14)
    shared = set(names)
    for n, p in model.named_parameters():
        if n not in shared:
            plain = sum(g[n] for g in expected.values() if g[n] is not None)
            np.testing.assert_allclose(p.grad, plain, rtol=1e-12, atol=1e-15)


def test_conflict_every_n_measures_one_step_in_n():
    model, ds = _model(), _data(n=640)
    b = Balancer(model, conflict_every=3)
    history = fit(model, ds, None, epochs=1, batch_size=64, stream=None, balancer=b)
    assert len(history.epochs[0]["cosines"]["y1|y2"]) == 10 // 3
    assert 0 <= history.epochs[0]["conflict_y1|y2"] <= 1


@pytest.mark.parametrize("weighting", ["uncertainty", "gradnorm", "dwa"])
def test_weights_are_kept_in_the_history(weighting):
    model, ds = _model(), _data(n=512)
    b = Balancer(model, weighting)
    history = fit(model, ds, None, epochs=3, batch_size=64, stream=None, balancer=b)
    w = [history.series(f"weight_{t}") for t in ("y1", "y2")]
    assert all(len(s) == 3 for s in w)
    if weighting != "uncertainty":         # GradNorm and DWA keep the sum at K = 2
        np.testing.assert_allclose(np.add(*w), 2.0, rtol=1e-9)
    if weighting == "dwa":                 # equal for the first two epochs
        assert w[0][:2] == [1.0, 1.0]


def test_uncertainty_needs_its_log_variances_in_the_optimizer():
    model, ds = _model(), _data()
    b = Balancer(model, "uncertainty")
    with pytest.raises(ValueError, match="does not update the uncertainty weighting"):
        fit(model, ds, None, optimizer=Adam(list(model.parameters())), epochs=1,
            stream=None, balancer=b)
    before = b.weighting.log_var.data.copy()
    fit(model, ds, None, epochs=1, batch_size=64, stream=None, balancer=b)
    assert not np.array_equal(before, b.weighting.log_var.data)      # it learned


@pytest.mark.parametrize("weighting, pc", [("gradnorm", True), ("dwa", False),
                                           ("uncertainty", False)])
def test_resuming_repeats_the_uninterrupted_run(tmp_path, weighting, pc):
    ds = _data(n=384)

    def run(epochs, resume=False, ckpt=None):
        model = _model(seed=1)
        b = Balancer(model, weighting, pcgrad=pc, conflict_every=2, seed=5)
        fit(model, ds, None, epochs=epochs, batch_size=64, seed=2, stream=None, balancer=b,
            checkpoint=ckpt, resume=resume)
        return model, b

    ckpt = str(tmp_path / "c.npz")
    run(2, ckpt=ckpt)
    resumed, rb = run(4, resume=True, ckpt=ckpt)
    straight, sb = run(4)
    for (n, p), (_, q) in zip(resumed.named_parameters(), straight.named_parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=n)
    assert rb.weighting.weights() == sb.weighting.weights()


def test_the_cli_trains_with_balancing_and_draws_it(tmp_path):
    from minimtl.cli import main

    out = tmp_path / "run"
    rc = main(["train", "--data", "mmoe-synthetic", "--model", "shared-bottom", "--epochs",
               "2", "--batch-size", "256", "--weighting", "dwa", "--pcgrad", "--conflict",
               "4", "--out", str(out), "--quiet", "--backend", "numpy"])
    assert rc == 0
    import json

    epochs = json.loads((out / "history.json").read_text())["epochs"]
    assert "cos_y1|y2" in epochs[-1] and "weight_y1" in epochs[-1]
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return
    assert (out / "balance.png").stat().st_size > 0


def test_a_measured_step_gives_the_gradient_of_the_weighted_total():
    """The tasks' walks replace the backward on a measured step: their weighted sum (here
    uncertainty's ½·exp(-s) weights and its own log-variance gradient) is the total's."""
    ds = _data()
    plain_model, model = _model(seed=4), _model(seed=4)
    plain = Balancer(plain_model, "uncertainty")
    plain.backward(_losses(plain_model, ds))          # no measuring: the plain backward
    b = Balancer(model, "uncertainty", conflict_every=1)
    b.backward(_losses(model, ds))
    for (n, p), (_, q) in zip(model.named_parameters(), plain_model.named_parameters()):
        np.testing.assert_allclose(p.grad, q.grad, rtol=1e-12, atol=1e-15, err_msg=n)
    np.testing.assert_allclose(b.weighting.log_var.grad, plain.weighting.log_var.grad,
                               rtol=1e-12)
