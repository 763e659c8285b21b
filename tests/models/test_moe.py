"""Multi-task architectures over a shared representation: single-task, shared-bottom, OMoE,
MMoE, CGC, PLE (minimtl/models/moe.py, ple.py)."""

from __future__ import annotations

import collections
import math
from types import SimpleNamespace

import numpy as np
import pytest

import minimtl as mt
from minimtl.gradcheck import gradcheck
from minimtl.models import CGC, PLE, MMoE, OMoE, SharedBottom, SingleTask
from tests.models.test_multitask import _data_path_ops

#: The models add no kernel of their own (linear, relu, softmax, matmul, concat are ops
#: every backend already has), so the host runs of the CUDA kernels are left to the op tests.
BACKENDS = ["numpy", "numba", pytest.param("cupy", marks=pytest.mark.gpu)]

TASKS = [("a", 1), ("b", 3)]

#: tiny configurations of every architecture
TINY = {
    "single-task": lambda **kw: SingleTask(4, TASKS, bottom_units=3, tower_units=2, **kw),
    "shared-bottom": lambda **kw: SharedBottom(4, TASKS, bottom_units=3, tower_units=2, **kw),
    "omoe": lambda **kw: OMoE(4, TASKS, experts=3, expert_units=2, tower_units=2, **kw),
    "mmoe": lambda **kw: MMoE(4, TASKS, experts=3, expert_units=2, tower_units=2, **kw),
    "cgc": lambda **kw: CGC(4, TASKS, task_experts=1, shared_experts=2, expert_units=2,
                            tower_units=2, **kw),
    "ple": lambda **kw: PLE(4, TASKS, levels=2, task_experts=2, shared_experts=1,
                            expert_units=2, tower_units=2, **kw),
    "ple-3-levels": lambda **kw: PLE(4, TASKS + [("c", 2)], levels=3, task_experts=1,
                                     shared_experts=2, expert_units=2, tower_units=2, **kw),
}
GATED = ["omoe", "mmoe", "cgc", "ple", "ple-3-levels"]


def _x(n, d, backend="numpy", dtype=np.float64, seed=0, requires_grad=False):
    v = np.random.default_rng(seed).standard_normal((n, d)).astype(dtype)
    return mt.tensor(v, backend=backend, requires_grad=requires_grad)


def _randomise(model, seed=1, scale=0.7):
    """Weights drawn N(0, scale²), biases U(0.2, 0.8): no parameter has a trivially zero
    gradient, and most ReLUs are active on a few rows."""
    rng = np.random.default_rng(seed)
    model.load_state_dict({k: (rng.uniform(0.2, 0.8, v.shape) if k.endswith("bias") else
                               scale * rng.standard_normal(v.shape))
                           for k, v in model.state_dict().items()})
    return model


# --- shapes ------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("arch", list(TINY))
def test_forward_gives_every_task_its_logits(arch, backend):
    model = TINY[arch](backend=backend)
    out = model(_x(5, 4, backend, np.float32))
    tasks = dict(model.tasks)
    assert list(out) == list(tasks)
    for t, y in out.items():
        assert y.shape == (5, tasks[t]) and y.dtype == np.float32 and y.backend == backend


@pytest.mark.parametrize("arch", list(TINY))
def test_input_of_the_wrong_width_is_rejected_with_the_shapes(arch):
    model = TINY[arch](backend="numpy")
    with pytest.raises(ValueError, match=r"expected x \(N, 4\), got \(5, 3\)"):
        model(_x(5, 3))


def test_tasks_are_pairs_a_dict_or_specs_with_name_and_outputs():
    specs = [SimpleNamespace(name="click", outputs=1, kind="binary"),
             SimpleNamespace(name="genre", outputs=5, kind="multilabel")]
    by_pairs = MMoE(3, [("click", 1), ("genre", 5)], backend="numpy")
    for tasks in ({"click": 1, "genre": 5}, specs, {s.name: s for s in specs}):
        model = MMoE(3, tasks, backend="numpy")
        assert model.tasks == [("click", 1), ("genre", 5)]
        assert model.num_parameters() == by_pairs.num_parameters()
    for bad, needle in (([], "at least one task"), ([("a", 1), ("a", 2)], "distinct"),
                        ([("a", 0)], "outputs of task 'a'"), ([("a", 1.5)], "integer")):
        with pytest.raises(ValueError, match=needle):
            MMoE(3, bad, backend="numpy")


# --- gradients ---------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("arch", list(TINY))
def test_gradients_of_every_parameter_and_the_input_match_finite_differences(arch, backend):
    model = _randomise(TINY[arch](backend=backend, dtype=np.float64))
    x = _x(3, 4, backend, requires_grad=True)
    params = list(model.parameters())

    def outputs(*_):                  # gradcheck perturbs x and the parameters in place
        return tuple(model(x).values())

    assert gradcheck(outputs, [x] + params)
    # and a scalar loss, the sum of squares of every output, reaches every parameter
    model.zero_grad()
    loss = None
    for y in model(_x(16, 4, backend, seed=3)).values():
        term = (y * y).sum()
        loss = term if loss is None else loss + term
    loss.backward()
    assert all(p.grad is not None and np.any(p.grad != 0) for p in params)


# --- the equations, in NumPy --------------------------------------------------------------
def _dense(s, name, h):
    return h @ s[f"{name}.weight"].T + s[f"{name}.bias"]


def _softmax_rows(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _experts(s, name, h, experts):
    f = np.maximum(_dense(s, name, h), 0)
    return f.reshape(len(h), experts, -1)                       # (N, E, U)


def _towers(s, hs):
    return [_dense(s, f"towers.{i}.out", np.maximum(_dense(s, f"towers.{i}.hidden", h), 0))
            for i, h in enumerate(hs)]


def _reference(model, x):
    """Each architecture's module-doc equations, written with NumPy on the state dict:
    (logits per task, in order; gate name -> weights (N, E))."""
    s, names = model.state_dict(), model.task_names
    K = len(names)
    if isinstance(model, SingleTask):
        hs = [np.maximum(_dense(s, f"bottoms.{i}", x), 0) for i in range(K)]
        return _towers(s, hs), {}
    if isinstance(model, SharedBottom):
        return _towers(s, [np.maximum(_dense(s, "bottom", x), 0)] * K), {}
    if isinstance(model, (OMoE, MMoE)):
        E = model.experts.experts
        f = _experts(s, "experts", x, E)
        g = _softmax_rows(_dense(s, "gate", x).reshape(len(x), -1, E))   # (N, G, E)
        gates = {t: g[:, 0 if isinstance(model, OMoE) else i] for i, t in enumerate(names)}
        return _towers(s, [np.einsum("ne,neu->nu", gates[t], f) for t in names]), gates
    levels = len(model.levels)
    m_t, m_s = model.levels[0].task_experts[0].experts, model.levels[0].shared_experts.experts
    h = [x] * (K + 1)                                           # tasks', then the shared
    gates = {}
    for j in range(levels):
        top = j == levels - 1
        own = [_experts(s, f"levels.{j}.task_experts.{k}", h[k], m_t) for k in range(K)]
        shared = _experts(s, f"levels.{j}.shared_experts", h[K], m_s)
        nxt = []
        for k in range(K):
            g = _softmax_rows(_dense(s, f"levels.{j}.task_gates.{k}", h[k]))
            gates[names[k] if top else f"{names[k]}@{j + 1}"] = g
            nxt.append(np.einsum("ne,neu->nu", g, np.concatenate([own[k], shared], axis=1)))
        if not top:
            g = _softmax_rows(_dense(s, f"levels.{j}.shared_gate", h[K]))
            gates[f"shared@{j + 1}"] = g
            nxt.append(np.einsum("ne,neu->nu", g, np.concatenate(own + [shared], axis=1)))
        h = nxt
    return _towers(s, h[:K]), gates


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("arch", list(TINY))
def test_forward_matches_the_equations_written_in_numpy(arch, backend):
    model = _randomise(TINY[arch](backend=backend, dtype=np.float64), scale=1.5)
    x = _x(6, 4, backend)
    want, want_gates = _reference(model, x.numpy())
    for y, ref in zip(model(x).values(), want):
        np.testing.assert_allclose(y.numpy(), ref, rtol=1e-12, atol=1e-12)
    gates = model.gates(x)
    assert list(gates) == list(want_gates)
    for name, g in gates.items():
        np.testing.assert_allclose(g.numpy(), want_gates[name], rtol=1e-12, atol=1e-12)


# --- MMoE with one expert is shared-bottom -----------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_mmoe_with_one_expert_equals_shared_bottom_with_the_same_weights(backend):
    """One expert: every gate is softmax of one logit = 1, so each task reads the expert
    itself, a shared bottom of U units."""
    mmoe = _randomise(MMoE(4, TASKS, experts=1, expert_units=5, tower_units=3,
                           dtype=np.float64, backend=backend))
    sb = SharedBottom(4, TASKS, bottom_units=5, tower_units=3, dtype=np.float64,
                      backend=backend)
    state = mmoe.state_dict()
    sb.load_state_dict({"bottom.weight": state["experts.weight"],
                        "bottom.bias": state["experts.bias"],
                        **{k: v for k, v in state.items() if k.startswith("towers.")}})
    x = _x(6, 4, backend)
    got, want = mmoe(x), sb(x)
    for t in dict(TASKS):
        np.testing.assert_allclose(got[t].numpy(), want[t].numpy(), rtol=0, atol=1e-12)
    # the gate has nothing to choose, so it learns nothing: the same gradients elsewhere
    for model, out in ((mmoe, got), (sb, want)):
        model.zero_grad()
        sum((y * y).sum() for y in out.values()).backward()
    sb_grads = dict(sb.named_parameters())
    for name, p in mmoe.named_parameters():
        if name.startswith("gate."):
            assert np.all(p.grad == 0)
            continue
        other = sb_grads[name.replace("experts.", "bottom.")]
        np.testing.assert_allclose(p.grad, other.grad, rtol=0, atol=1e-12)


# --- PLE routing, by hand ----------------------------------------------------------------
def _relu(v):
    return max(v, 0.0)


def _softmax(z):
    m = max(z)
    e = [math.exp(v - m) for v in z]
    return [v / sum(e) for v in e]


#: PLE of 2 tasks (a, b), 1 expert per task and 1 shared, every expert width 1, input
#: width 1, 2 levels, towers Dense(1) + ReLU -> Dense(1); each weight and bias its own value
HAND = {
    "levels.0.task_experts.0": (0.9, 0.1), "levels.0.task_experts.1": (-0.8, 0.2),
    "levels.0.shared_experts": (0.5, 0.3),
    "levels.0.task_gates.0": ([0.4, -0.6], [0.1, 0.0]),
    "levels.0.task_gates.1": ([-0.3, 0.7], [0.0, 0.2]),
    "levels.0.shared_gate": ([0.2, -0.5, 0.9], [0.3, -0.1, 0.0]),
    "levels.1.task_experts.0": (1.3, 0.05), "levels.1.task_experts.1": (0.7, -0.02),
    "levels.1.shared_experts": (-1.1, 0.9),
    "levels.1.task_gates.0": ([0.8, -0.2], [-0.1, 0.4]),
    "levels.1.task_gates.1": ([-0.9, 0.6], [0.2, 0.0]),
    "towers.0.hidden": (1.5, 0.1), "towers.0.out": (-0.7, 0.3),
    "towers.1.hidden": (0.6, 0.2), "towers.1.out": (1.2, -0.4),
}


def _hand_model():
    model = PLE(1, [("a", 1), ("b", 1)], levels=2, task_experts=1, shared_experts=1,
                expert_units=1, tower_units=1, dtype=np.float64, backend="numpy")
    state = {}
    for name, (w, b) in HAND.items():
        state[f"{name}.weight"] = np.reshape(w, (-1, 1))
        state[f"{name}.bias"] = np.reshape(b, (-1,))
    model.load_state_dict(state)
    return model


#: routings that public implementations have used instead of the paper's
SLIPS = ("shared gate mixes only the shared experts", "upper gates read x",
         "upper experts read x")


def _hand_ple(x: float, slip: str | None = None) -> dict[str, float]:
    """The paper's routing with scalars: level 1 reads x everywhere; at level 2 task k's
    expert and gate read h_k, the shared expert reads h_s (the shared gate's mixture of
    ALL three level-1 experts); the towers read the level-2 task mixtures. ``slip``
    computes one of ``SLIPS`` instead."""
    def dense(name, v):
        w, b = HAND[name]
        return [wi * v + bi for wi, bi in zip(w, b)] if isinstance(w, list) else w * v + b

    a1 = _relu(dense("levels.0.task_experts.0", x))
    b1 = _relu(dense("levels.0.task_experts.1", x))
    s1 = _relu(dense("levels.0.shared_experts", x))
    ga = _softmax(dense("levels.0.task_gates.0", x))
    gb = _softmax(dense("levels.0.task_gates.1", x))
    gs = _softmax(dense("levels.0.shared_gate", x))
    h_a = ga[0] * a1 + ga[1] * s1
    h_b = gb[0] * b1 + gb[1] * s1
    h_s = gs[0] * a1 + gs[1] * b1 + gs[2] * s1
    if slip == SLIPS[0]:
        h_s = s1                                # a softmax over one expert is 1
    ex_a, ex_b, ex_s = (x, x, x) if slip == SLIPS[2] else (h_a, h_b, h_s)
    gate_a, gate_b = (x, x) if slip == SLIPS[1] else (h_a, h_b)
    a2 = _relu(dense("levels.1.task_experts.0", ex_a))
    b2 = _relu(dense("levels.1.task_experts.1", ex_b))
    s2 = _relu(dense("levels.1.shared_experts", ex_s))
    ga2 = _softmax(dense("levels.1.task_gates.0", gate_a))
    gb2 = _softmax(dense("levels.1.task_gates.1", gate_b))
    top_a = ga2[0] * a2 + ga2[1] * s2
    top_b = gb2[0] * b2 + gb2[1] * s2
    return {"a": dense("towers.0.out", _relu(dense("towers.0.hidden", top_a))),
            "b": dense("towers.1.out", _relu(dense("towers.1.hidden", top_b)))}


XS = [0.7, -1.3, 2.1]


def test_ple_routing_matches_a_case_computed_by_hand():
    out = _hand_model()(mt.tensor(np.array(XS)[:, None], backend="numpy"))
    for i, x in enumerate(XS):
        want = _hand_ple(x)
        for t in ("a", "b"):
            assert abs(out[t].numpy()[i, 0] - want[t]) <= 1e-12, (x, t)


@pytest.mark.parametrize("slip", SLIPS)
def test_the_hand_case_tells_the_paper_routing_from_a_common_slip(slip):
    """The case above can fail: each slipped routing moves some output by far more than
    the 1e-12 the test allows."""
    out = _hand_model()(mt.tensor(np.array(XS)[:, None], backend="numpy"))
    gaps = [abs(out[t].numpy()[i, 0] - _hand_ple(x, slip)[t])
            for i, x in enumerate(XS) for t in ("a", "b")]
    assert max(gaps) > 1e-3


@pytest.mark.parametrize("tasks,m_t,m_s,levels", [(2, 1, 1, 2), (3, 2, 3, 3), (1, 1, 2, 2)])
def test_ple_gates_choose_among_own_plus_shared_and_the_shared_gate_among_all(
        tasks, m_t, m_s, levels):
    model = PLE(5, [(f"t{k}", 1) for k in range(tasks)], levels=levels, task_experts=m_t,
                shared_experts=m_s, expert_units=4, tower_units=2, backend="numpy")
    for j, level in enumerate(model.levels):
        assert [g.choices for g in level.task_gates] == [m_t + m_s] * tasks
        assert level.shared_experts.experts == m_s
        if j == levels - 1:
            assert level.shared_gate is None
        else:
            assert level.shared_gate.choices == tasks * m_t + m_s
    # parameters by hand: experts D·U + U each, gates D·c + c, towers
    D, U, H = 5, 4, 2
    want = 0
    for j in range(levels):
        d = D if j == 0 else U
        want += (tasks * m_t + m_s) * (d * U + U) + tasks * (d + 1) * (m_t + m_s)
        if j < levels - 1:
            want += (d + 1) * (tasks * m_t + m_s)
    want += tasks * ((U + 1) * H + (H + 1) * 1)
    assert model.num_parameters() == want


def test_cgc_is_ple_with_one_level():
    cgc = CGC(4, TASKS, task_experts=2, shared_experts=1, expert_units=3, seed=5,
              dtype=np.float64, backend="numpy")
    ple = PLE(4, TASKS, levels=1, task_experts=2, shared_experts=1, expert_units=3, seed=5,
              dtype=np.float64, backend="numpy")
    x = _x(4, 4)
    assert all(np.array_equal(cgc(x)[t].numpy(), ple(x)[t].numpy()) for t in dict(TASKS))
    assert cgc.levels[0].shared_gate is None


# --- gates -------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("arch", GATED)
def test_gate_weights_are_rows_that_sum_to_one(arch, backend):
    model = _randomise(TINY[arch](backend=backend, dtype=np.float64), scale=2.0)
    gates = model.gates(_x(7, 4, backend))
    assert set(gates) == set(model.gate_experts())
    for name, g in gates.items():
        w = g.numpy()
        assert w.shape == (7, len(model.gate_experts()[name]))
        assert np.all(w >= 0) and np.all(w <= 1)
        np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=0, atol=1e-12)


@pytest.mark.parametrize("arch", GATED)
def test_gate_weights_are_the_mean_over_the_eval_rows_since_the_reset(arch):
    model = _randomise(TINY[arch](backend="numpy", dtype=np.float64), scale=2.0)
    x1, x2, x3 = _x(5, 4, seed=1), _x(3, 4, seed=2), _x(4, 4, seed=3)
    model.eval()
    model(x3)
    model.reset_gate_stats()
    with pytest.raises(ValueError, match="no eval-mode forward"):
        model.gate_weights()
    with mt.no_grad():
        model(x1)
        model(x2)
    model.train()
    model(x3)                         # a training forward records nothing
    both = mt.tensor(np.concatenate([x1.numpy(), x2.numpy()]), backend="numpy")
    want = {g: w.numpy().mean(axis=0) for g, w in model.gates(both).items()}
    got = model.gate_weights()
    assert list(got) == list(model.gate_experts())
    for name, by_expert in got.items():
        assert list(by_expert) == model.gate_experts()[name]
        np.testing.assert_allclose(list(by_expert.values()), want[name], rtol=0, atol=1e-12)
        assert abs(sum(by_expert.values()) - 1) < 1e-12


def test_gate_names_say_which_experts_each_gate_mixes():
    ple = PLE(4, TASKS, levels=2, task_experts=2, shared_experts=1, backend="numpy")
    assert ple.gate_experts() == {
        "a@1": ["a_0", "a_1", "shared_0"], "b@1": ["b_0", "b_1", "shared_0"],
        "shared@1": ["a_0", "a_1", "b_0", "b_1", "shared_0"],
        "a": ["a_0", "a_1", "shared_0"], "b": ["b_0", "b_1", "shared_0"]}
    omoe = OMoE(4, TASKS, experts=2, backend="numpy")
    assert omoe.gate_experts() == {"a": ["expert_0", "expert_1"], "b": ["expert_0", "expert_1"]}
    assert SharedBottom(4, TASKS, backend="numpy").gate_weights() == {}


def test_omoe_gives_every_task_the_same_mixture():
    model = _randomise(TINY["omoe"](backend="numpy", dtype=np.float64))
    g = model.gates(_x(4, 4))
    assert np.array_equal(g["a"].numpy(), g["b"].numpy())


# --- summary and printing ----------------------------------------------------------------
@pytest.mark.parametrize("arch", list(TINY))
def test_summary_parameters_add_up_to_the_model(arch):
    model = TINY[arch](backend="numpy")
    rows = model.summary_rows()
    assert sum(r[2] for r in rows) == model.num_parameters()
    text = model.summary()
    assert f"Total params: {model.num_parameters():,}" in text
    assert all(r[0] in text for r in rows)


@pytest.mark.parametrize("arch", ["mmoe", "ple"])
def test_default_sizes_summary_adds_up(arch):
    model = {"mmoe": MMoE, "ple": PLE}[arch](499, [("income", 1), ("marital", 1)],
                                             backend="numpy")
    assert sum(r[2] for r in model.summary_rows()) == model.num_parameters()


#: ops a summary row stands for; reshapes and slices are plumbing inside a layer
LAYER_OPS = {"linear", "relu", "softmax", "matmul", "concat", "stack"}


@pytest.mark.parametrize("arch", list(TINY))
def test_the_ops_a_forward_records_are_the_ops_the_summary_lists(arch):
    model = TINY[arch](backend="numpy")
    x = _x(3, 4, dtype=np.float32, requires_grad=True)
    recorded = collections.Counter(op for op in _data_path_ops([x], list(model(x).values()))
                                   if op in LAYER_OPS)
    listed = collections.Counter(op for r in model.summary_rows() if r[4]
                                 for op in r[4].split("+"))
    assert recorded == listed


@pytest.mark.parametrize("arch", list(TINY))
def test_print_shows_the_tasks_and_every_layer(arch):
    model = TINY[arch](backend="numpy")
    text = repr(model)
    assert text.startswith(f"{type(model).__name__}(in_features=4, tasks={{a: 1, b: 3")
    assert "Parameter(" not in text and "TaskTower(" in text


@pytest.mark.parametrize("arch", list(TINY))
def test_config_rebuilds_the_same_model(arch):
    model = TINY[arch](backend="numpy", seed=3)
    again = type(model)(**model.config, backend="numpy")
    assert again.config == model.config
    state = again.state_dict()
    assert all(np.array_equal(v, state[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("cls,kw,needle", [
    (MMoE, {"experts": 0}, "MMoE: experts must be an integer >= 1"),
    (OMoE, {"expert_units": 2.5}, "OMoE: expert_units"),
    (PLE, {"levels": 0}, "PLE: levels"),
    (CGC, {"shared_experts": 0}, "CGC: shared_experts"),
    (SharedBottom, {"bottom_units": -1}, "SharedBottom: bottom_units"),
    (SingleTask, {"tower_units": True}, "SingleTask: tower_units"),
])
def test_bad_sizes_are_rejected_naming_the_model_and_the_argument(cls, kw, needle):
    with pytest.raises(ValueError, match=needle):
        cls(4, TASKS, backend="numpy", **kw)
