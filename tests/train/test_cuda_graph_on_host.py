"""The CUDA-graph training step (minimtl/train/graph.py) on the host emulator, whose
capture and replay follow CUDA's rules (tests/cuda_host_graphs.py): capture records and
changes no memory that existed before it, device reads and host uploads during capture
raise, a replay repeats the recorded launches with their recorded scalars.

What is asserted: replayed steps give exactly the eager steps' losses and parameters; a
step that freezes a host-computed scalar into the graph is caught (the emulator has teeth);
a step that cannot be captured says why once and trains on eagerly with the same numbers;
``fit(cuda_graph=True)`` logs what the eager ``fit`` logs."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from minimtl.data import TASKS, Dataset
from minimtl.models import MultiTaskNet
from minimtl.optim import SGD
from minimtl.train import fit
from minimtl.train.graph import GraphStep
from minimtl.train.loop import _step
from tests.cuda_host import default_cache, patch_cupy_backend

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")

N, L, FEAT = 4, 12, 3


@pytest.fixture
def host_gpu(monkeypatch):
    patch_cupy_backend(monkeypatch, default_cache(), count_launches=True)


def _batches(k, n=N, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(k):
        x = {t: rng.standard_normal((n, L, FEAT)).astype(np.float32) for t in TASKS}
        y = {"user": rng.integers(0, 10, n), "goods": (rng.random((n, 10)) > 0.5) * 1.0,
             "ads": rng.integers(0, 10, n)}
        yield x, y


def _model_and_opt(optimizer=SGD, **kw):
    model = MultiTaskNet(L, FEAT, backend="cupy", seed=0)
    return model, optimizer(list(model.parameters()), lr=0.05, **kw)


def _eager(model, opt):
    def step(x, y):
        batch = _step(model, opt, None, x, y)
        opt.step()
        return batch
    return step


def _losses(batch):
    return [float(batch["sums"][t]) for t in ("user", "goods", "ads")]


def _train(step, k):
    return [_losses(step(x, y)) for x, y in _batches(k)]


def test_replayed_steps_equal_eager_steps(host_gpu):
    eager_model, eager_opt = _model_and_opt(momentum=0.9)
    eager = _train(_eager(eager_model, eager_opt), 5)
    model, opt = _model_and_opt(momentum=0.9)
    said = []
    graph = GraphStep(model, opt, _eager(model, opt), say=said.append)
    replayed = _train(graph, 5)
    assert said == [] and len(graph.captured) == 1      # captured once, replayed 4 times
    np.testing.assert_array_equal(replayed, eager)
    for (name, p), q in zip(model.named_parameters(), eager_model.parameters()):
        np.testing.assert_array_equal(p.numpy(), q.numpy(), err_msg=name)
    assert opt.step_count == eager_opt.step_count == 5


def test_replayed_adam_steps_with_the_step_counter_on_the_device_equal_eager_ones(host_gpu):
    """Adam's bias corrections change every step: with ``device_step`` the graph computes
    them on the device from its own counter, to the same bits as the host's formula."""
    from minimtl.optim import Adam

    eager_model, eager_opt = _model_and_opt(Adam)
    eager = _train(_eager(eager_model, eager_opt), 5)
    model, opt = _model_and_opt(Adam, device_step=True)
    graph = GraphStep(model, opt, _eager(model, opt), say=None)
    replayed = _train(graph, 5)
    assert graph.why_eager is None and len(graph.captured) == 1
    np.testing.assert_array_equal(replayed, eager)
    for (name, p), q in zip(model.named_parameters(), eager_model.parameters()):
        np.testing.assert_array_equal(p.numpy(), q.numpy(), err_msg=name)
    state = opt.state_dict()
    assert state["step"] == 5 and all(state[f"step.{i}"] == 5 for i in range(len(opt.state)))


def test_adam_with_its_step_count_on_the_host_is_not_captured(host_gpu):
    from minimtl.optim import Adam

    model, opt = _model_and_opt(Adam)
    said = []
    GraphStep(model, opt, _eager(model, opt), say=said.append)
    assert len(said) == 1 and "Adam computes its update's scalars on the host" in said[0]


def test_a_host_scalar_frozen_into_the_graph_is_caught(host_gpu, monkeypatch):
    """A step whose learning rate the host changes every step (a schedule read on the host)
    diverges when replayed: the graph keeps the scalar it was captured with."""
    def decaying(opt):
        real = opt.step

        def step():
            opt.lr = 0.05 / (1 + opt.step_count)
            real()
        opt.step = step
        return opt

    eager_model, eager_opt = _model_and_opt()
    eager = _train(_eager(eager_model, decaying(eager_opt)), 4)
    model, opt = _model_and_opt()
    replayed = _train(GraphStep(model, decaying(opt), _eager(model, opt), say=None), 4)
    np.testing.assert_array_equal(replayed[:2], eager[:2])  # eager warm-up, first replay
    assert replayed[3] != eager[3]


def test_a_step_that_reads_the_device_falls_back_to_eager_with_one_message(host_gpu):
    eager_model, eager_opt = _model_and_opt()
    eager = _train(_eager(eager_model, eager_opt), 3)
    model, opt = _model_and_opt()
    forward = model.forward

    def reads(inputs):                     # float() of a device value: a synchronisation
        out = forward(inputs)
        float(out["user"].data[0, 0])
        return out

    model.forward = reads
    said = []
    graph = GraphStep(model, opt, _eager(model, opt), say=said.append)
    got = _train(graph, 3)
    assert len(said) == 1 and "device-to-host read" in said[0] and "eagerly" in said[0]
    assert graph.why_eager is not None and not graph.captured
    np.testing.assert_array_equal(got, eager)
    assert opt.step_count == 3                  # the failed capture advanced nothing


def test_an_optimizer_that_is_not_capturable_trains_eagerly(host_gpu):
    model, opt = _model_and_opt()
    opt.capturable = False
    said = []
    GraphStep(model, opt, _eager(model, opt), say=said.append)
    assert len(said) == 1 and "not capturable" in said[0]


def test_fit_with_cuda_graph_logs_what_eager_fit_logs(host_gpu):
    data = list(_batches(1, n=10, seed=3))[0]
    logs = {}
    for graph in (False, True):                 # fit's own Adam (device_step with graphs)
        model = MultiTaskNet(L, FEAT, backend="cupy", seed=0)
        logs[graph] = fit(model, Dataset(*data), epochs=2, batch_size=4, stream=None,
                          cuda_graph=graph).epochs
    for e_eager, e_graph in zip(logs[False], logs[True]):
        for key, v in e_eager.items():
            if key != "time_s":
                assert e_graph[key] == v, (key, e_eager, e_graph)


def test_cuda_graph_needs_the_cupy_backend():
    model = MultiTaskNet(L, FEAT, backend="numpy", seed=0)
    with pytest.raises(ValueError, match="cuda_graph needs the cupy backend"):
        fit(model, Dataset(*list(_batches(1))[0]), epochs=1, stream=None, cuda_graph=True)


def test_the_benchmarks_replayed_step_trains(host_gpu):
    """``minimtl_step(graph=True)`` (benchmarks/gpu_graph_step.py) is a replay of a captured
    step: each call runs the graph once and the loss falls on its fixed batch."""
    from minimtl.bench.steps import minimtl_step

    step, n_params = minimtl_step("cupy", N, L, FEAT, graph=True)
    totals = [sum(_losses(step())) for _ in range(6)]
    assert n_params > 0 and totals[-1] < totals[0]


# --- the same on a GPU ---------------------------------------------------------------------
@pytest.mark.gpu
def test_on_a_gpu_replayed_adam_steps_follow_the_eager_ones():
    """Real CuPy stream capture: the replayed steps' losses and parameters track the eager
    steps' (the same kernels in the same order; cuBLAS may pick another algorithm under
    capture, so within float32 rounding rather than bitwise), and nothing fell back."""
    from minimtl.optim import Adam

    eager_model, eager_opt = _model_and_opt(Adam)
    eager = _train(_eager(eager_model, eager_opt), 6)
    model, opt = _model_and_opt(Adam, device_step=True)
    said = []
    graph = GraphStep(model, opt, _eager(model, opt), say=said.append)
    replayed = _train(graph, 6)
    assert said == [] and len(graph.captured) == 1
    np.testing.assert_allclose(replayed, eager, rtol=1e-4)
    for (name, p), q in zip(model.named_parameters(), eager_model.parameters()):
        np.testing.assert_allclose(p.numpy(), q.numpy(), rtol=1e-3, atol=1e-5, err_msg=name)
    assert opt.state_dict()["step.0"] == 6
