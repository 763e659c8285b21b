"""The models' fused losses (minimtl/models/base.py, targets.pack_targets): a
StackedHeads model computes every task's loss and the total with one head_losses op, with
the per-task path's values and gradients; other models and target forms keep that path;
targets are checked on the host, before their one upload; on the (host-emulated) cupy
backend a step's losses are one launch forward and one backward, with no device read."""

from __future__ import annotations

import importlib
import shutil

import numpy as np
import pytest

from kernels import launches
from minimtl.bench.steps import _fixed_batch
from minimtl.models import MultiTaskNet
from minimtl.models.base import HeadLogits, MultiTaskModel, TaskLosses
from minimtl.objectives import Task
from minimtl.targets import TaskTargets
from minimtl.train import Balancer, to_tensors
from tests._util import bound, rel_err

TASKS3 = [Task("genre", "multiclass", 4, 0.5), Task("tags", "multilabel", 3, 2.0),
          Task("click", "binary", 1, 1.0), Task("watch", "regression", 2, 0.25)]


def _data(n, rng):
    inputs = {k: rng.standard_normal((n, 16, 3)).astype(np.float32) for k in ("a", "b")}
    targets = {"genre": rng.integers(0, 4, n), "tags": (rng.random((n, 3)) > 0.5) * 1.0,
               "click": rng.random(n), "watch": rng.standard_normal((n, 2))}
    return inputs, targets


def _unfused(model, logits, y):
    """The per-task path: each objective's loss on its slice, and the weighted sum."""
    losses = {t.name: t.objective.loss(logits[t.name], y[t.name]) for t in model.tasks}
    return losses, MultiTaskModel.total_loss(model, dict(losses))


def _grads(model):
    return {n: p.grad.copy() for n, p in model.named_parameters()}


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stacked_heads_losses_are_fused_and_equal_the_per_task_path(backend, dtype):
    model = MultiTaskNet(16, 3, tasks=TASKS3, inputs=("a", "b"), backend=backend, dtype=dtype)
    x, y = to_tensors(model, *_data(6, np.random.default_rng(1)))
    assert isinstance(y, TaskTargets) and y.packed is not None
    logits = model(x)
    assert isinstance(logits, HeadLogits)
    losses = model.losses(logits, y)
    assert isinstance(losses, TaskLosses)
    total = model.total_loss(losses)
    assert total is losses.total
    ref_losses, ref_total = _unfused(model, model(x), y)
    tol = bound(dtype, "sum", 6 * 10)
    got = [losses[t].item() for t in model.task_names] + [total.item()]
    want = [ref_losses[t].item() for t in model.task_names] + [ref_total.item()]
    assert rel_err(got, want) <= tol
    model.zero_grad()
    total.backward()
    fused = _grads(model)
    model.zero_grad()
    ref_total.backward()
    for name, g in _grads(model).items():
        assert rel_err(fused[name], g) <= max(tol, 1e-5 if dtype == np.float32 else 0), name


def test_other_models_and_target_forms_keep_the_per_task_path():
    rng = np.random.default_rng(2)
    weighted = MultiTaskNet(16, 3, tasks=TASKS3, inputs=("a", "b"), fusion="weighted")
    x, y = to_tensors(weighted, *_data(4, rng))
    losses = weighted.losses(weighted(x), y)
    assert type(losses) is dict and set(losses) == set(weighted.task_names)
    model = MultiTaskNet(16, 3, tasks=TASKS3, inputs=("a", "b"))
    x, y = to_tensors(model, *_data(4, rng))
    logits = model(x)
    plain = model.losses(logits, dict(y))                  # not packed by to_tensors
    assert type(plain) is dict
    fused = model.losses(logits, y)
    for t in model.task_names:
        assert abs(plain[t].item() - fused[t].item()) <= 1e-6 * max(1.0, abs(plain[t].item()))
    fused["genre"] = plain["genre"]                        # changed: total_loss re-sums
    assert model.total_loss(fused) is not fused.total
    soft = MultiTaskNet(16, 3, tasks=[Task("genre", "multiclass", 4)], inputs=("a", "b"))
    inputs, _ = _data(4, rng)
    _, ys = to_tensors(soft, inputs, {"genre": np.full((4, 4), 0.25)})   # probability rows
    assert ys.packed is None and type(soft.losses(soft(x), ys)) is dict


@pytest.mark.parametrize("targets, message", [
    ({"genre": np.array([0, 4, 1, 2])}, r"the genre task has 4 classes, but its labels "
                                        r"range 0\.\.4"),
    ({"tags": np.full((4, 3), 1.5)}, r"the tags task is multilabel, but its targets are not "
                                     r"all in \[0, 1\]"),
    ({"click": np.array([0.0, np.nan, 1.0, 0.0])}, r"the click task is binary.*not all in"),
    ({"watch": np.full((4, 2), np.inf)}, r"the watch task is regression, but its targets hold"),
])
def test_targets_are_checked_on_the_host_naming_the_task(targets, message):
    model = MultiTaskNet(16, 3, tasks=TASKS3, inputs=("a", "b"))
    inputs, good = _data(4, np.random.default_rng(3))
    with pytest.raises(ValueError, match=message):
        to_tensors(model, inputs, {**good, **targets})


def test_the_packed_targets_are_the_per_task_arrays_the_objectives_make():
    model = MultiTaskNet(16, 3, tasks=TASKS3, inputs=("a", "b"), dtype=np.float64)
    inputs, targets = _data(5, np.random.default_rng(4))
    _, y = to_tensors(model, inputs, targets)
    for t in model.tasks:
        want = t.objective.target_array(t.name, targets[t.name], np, np.float64)
        assert y[t.name].shape == want.shape and y[t.name].dtype == want.dtype
        np.testing.assert_array_equal(y[t.name], want)
    labels, flat, spec, weights = y.packed
    np.testing.assert_array_equal(spec, [(0, 0, 4, 0), (1, 4, 3, 0), (1, 7, 1, 3),
                                         (2, 8, 2, 4)])
    np.testing.assert_array_equal(weights, [0.5, 2.0, 1.0, 0.25])
    np.testing.assert_array_equal(labels, targets["genre"][None])
    assert flat.size == 5 * (3 + 1 + 2)


def test_a_balancer_backward_goes_through_the_fused_op():
    model = MultiTaskNet(16, 3, tasks=TASKS3, inputs=("a", "b"), dtype=np.float64)
    x, y = to_tensors(model, *_data(5, np.random.default_rng(6)))
    balancer = Balancer(model, weighting="gradnorm", pcgrad=True, conflict_every=1)
    logits = model(x)
    losses = model.losses(logits, y)
    assert isinstance(losses, TaskLosses)
    model.zero_grad()
    balancer.backward(losses)
    fused = _grads(model)
    ref_losses, _ = _unfused(model, model(x), y)
    model.zero_grad()
    Balancer(model, weighting="gradnorm", pcgrad=True, conflict_every=1).backward(ref_losses)
    for name, g in _grads(model).items():
        assert rel_err(fused[name], g) <= 1e-10, name


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")
def test_cupy_step_losses_are_one_launch_each_way_and_read_nothing_back(monkeypatch):
    from minimtl.targets import pack_targets
    from tests.cuda_host import default_cache, patch_cupy_backend

    patch_cupy_backend(monkeypatch, default_cache(), count_launches=True)
    model = MultiTaskNet(16, 3, backend="cupy")
    inputs, targets = _fixed_batch(4, 16, 3)
    xp = importlib.import_module("minimtl.train.evaluate").xp_of("cupy")   # the patched one
    with launches.count() as upload:
        y = pack_targets(model.tasks, targets, xp, np.float32)
    assert dict(upload.by_kernel) == {"cupy.h2d": 1}        # every target in one copy
    x, _ = to_tensors(model, inputs, targets)
    logits = model(x)
    with launches.count() as fwd:
        total = model.total_loss(model.losses(logits, y))
    assert dict(fwd.by_kernel) == {"head_losses_fwd": 1}
    with launches.count() as both:
        total.backward()
    assert both.by_kernel["head_losses_bwd"] == 1
    assert not any(k in both.by_kernel for k in ("cupy.d2h", "cross_entropy_bwd",
                                                 "cupy.setitem"))


@pytest.mark.parametrize("fusion", ["concat", "weighted"])
def test_loss_values_and_logits_numpy_read_what_the_tensors_hold(fusion):
    model = MultiTaskNet(16, 3, tasks=TASKS3, inputs=("a", "b"), fusion=fusion)
    x, y = to_tensors(model, *_data(3, np.random.default_rng(8)))
    logits = model(x)
    losses = model.losses(logits, y)
    assert model.loss_values(losses) == {t: float(losses[t].item()) for t in model.task_names}
    host = model.logits_numpy(logits)
    assert list(host) == list(model.task_names)
    for t in model.task_names:
        np.testing.assert_array_equal(host[t], logits[t].numpy())


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")
def test_loss_values_and_logits_are_one_transfer_each_on_cupy(monkeypatch):
    from tests.cuda_host import default_cache, patch_cupy_backend

    patch_cupy_backend(monkeypatch, default_cache(), count_launches=True)
    model = MultiTaskNet(16, 3, backend="cupy")
    x, y = to_tensors(model, *_fixed_batch(4, 16, 3))
    logits = model(x)
    losses = model.losses(logits, y)
    with launches.count() as reads:
        values = model.loss_values(losses)
        host = model.logits_numpy(logits)
    assert dict(reads.by_kernel) == {"cupy.d2h": 2}
    assert values == {t: float(losses[t].item()) for t in model.task_names}
    for t in model.task_names:
        np.testing.assert_array_equal(host[t], logits[t].numpy())


def test_replaced_targets_are_not_trusted():
    model = MultiTaskNet(16, 3, tasks=TASKS3, inputs=("a", "b"))
    x, y = to_tensors(model, *_data(4, np.random.default_rng(9)))
    assert y.checked and y.unchanged(model.tasks)
    y["genre"] = np.array([0, 1, 2, 9])                    # out of range, never checked
    assert not y.unchanged(model.tasks)
    with pytest.raises(ValueError, match=r"cross_entropy: labels must lie in \[0, 4\)"):
        model.losses(model(x), y)                          # per-task path, checked there


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")
def test_per_task_losses_read_nothing_back_when_the_targets_were_checked(monkeypatch):
    """A model without StackedHeads (weighted fusion) keeps its per-task losses, but labels
    checked on the host are not checked again on the device (no d2h, no max/min)."""
    from tests.cuda_host import default_cache, patch_cupy_backend

    patch_cupy_backend(monkeypatch, default_cache(), count_launches=True)
    model = MultiTaskNet(16, 3, backend="cupy", fusion="weighted")
    x, y = to_tensors(model, *_fixed_batch(4, 16, 3))
    logits = model(x)
    with launches.count() as fwd:
        losses = model.losses(logits, y)
    assert type(losses) is dict and fwd.by_kernel["cross_entropy_fwd"] == 2
    assert not {"cupy.d2h", "cupy.max", "cupy.min"} & set(fwd.by_kernel)
    with launches.count() as unchecked:
        model.losses(logits, dict(y))                      # a plain dict: checked on device
    assert unchecked.by_kernel["cupy.d2h"] == 4
