"""Module bookkeeping: registration, names, modes, state dicts, moving, printing."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from minimtl import nn
from minimtl.backend import available
from minimtl.tensor import Tensor


def _param(*shape: int, value: float = 0.0) -> nn.Parameter:
    return nn.Parameter(np.full(shape, value), backend="numpy")


class Tower(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Linear(3, 4, rng=np.random.default_rng(0), backend="numpy")
        self.drop = nn.Dropout(0.5, rng=np.random.default_rng(1))
        self.conv2 = nn.Linear(4, 2, bias=False, rng=np.random.default_rng(2),
                               backend="numpy")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = _param(1, value=2.0)
        self.towers = nn.ModuleList([Tower(), Tower()])
        self.head = nn.Sequential(nn.Linear(2, 1, backend="numpy"), nn.Sigmoid())
        self.note = "not registered"


NET_NAMES = [
    "scale",
    "towers.0.conv1.weight", "towers.0.conv1.bias", "towers.0.conv2.weight",
    "towers.1.conv1.weight", "towers.1.conv1.bias", "towers.1.conv2.weight",
    "head.0.weight", "head.0.bias",
]


def test_parameter_is_a_leaf_that_requires_grad():
    p = nn.Parameter(np.zeros((2, 3), dtype=np.float32), backend="numpy")
    assert isinstance(p, Tensor) and p.requires_grad and p.is_leaf
    assert p.shape == (2, 3) and p.dtype == np.float32 and p.backend == "numpy"


def test_registration_follows_assignment_order_with_dotted_names():
    net = Net()
    assert [name for name, _ in net.named_parameters()] == NET_NAMES
    assert list(net.parameters()) == [p for _, p in net.named_parameters()]
    assert list(net.children()) == [net.towers, net.head]
    assert [name for name, _ in net.named_modules()] == [
        "", "towers", "towers.0", "towers.0.conv1", "towers.0.drop", "towers.0.conv2",
        "towers.1", "towers.1.conv1", "towers.1.drop", "towers.1.conv2",
        "head", "head.0", "head.1",
    ]
    assert net.note == "not registered" and "note" not in net._parameters


def test_reassigning_an_attribute_replaces_its_registration():
    net = Net()
    net.head = "gone"                     # a module slot becomes a plain attribute
    assert "head" not in net._modules and net.head == "gone"
    net.scale = _param(3)                 # a parameter slot gets the new parameter
    assert net.scale.shape == (3,)
    del net.towers
    assert [n for n, _ in net.named_parameters()] == ["scale"]
    with pytest.raises(AttributeError):
        _ = net.towers


def test_assignment_before_super_init_is_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.w = _param(1)

    with pytest.raises(AttributeError, match="super"):
        Broken()


def test_shared_parameters_and_modules_are_listed_once():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(2, 2, backend="numpy")
            self.b = self.a
            self.extra = self.a.weight

    t = Tied()
    # A module's own parameters come before its children's; the weight keeps its first name.
    assert [n for n, _ in t.named_parameters()] == ["extra", "a.bias"]
    assert [n for n, _ in t.named_modules()] == ["", "a"]
    assert t.num_parameters() == 4 + 2


def test_num_parameters_counts_every_scalar():
    assert Net().num_parameters() == 1 + 2 * (3 * 4 + 4 + 4 * 2) + (2 + 1)


def test_train_and_eval_reach_every_descendant_and_dropout():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    drop = net.towers[0].drop
    x = Tensor(np.ones((50, 40)), backend="numpy")
    assert np.array_equal(drop(x).numpy(), x.numpy())
    net.train()
    assert all(m.training for m in net.modules())
    y = drop(x).numpy()
    assert set(np.unique(y)) == {0.0, 2.0}  # dropped, or kept and scaled by 1/(1 − p)


def test_zero_grad_clears_every_gradient():
    net = Net()
    for p in net.parameters():
        p.grad = np.ones(p.shape)
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_state_dict_holds_numpy_copies():
    net = Net()
    sd = net.state_dict()
    assert list(sd) == NET_NAMES
    assert all(type(v) is np.ndarray for v in sd.values())
    sd["scale"][0] = 99.0
    assert net.scale.numpy()[0] == 2.0


def test_state_dict_round_trip_restores_values_in_place():
    src, dst = Net(), Net()
    rng = np.random.default_rng(5)
    for p in src.parameters():
        p.data[...] = rng.standard_normal(p.shape)
    before = list(dst.parameters())
    missing, unexpected = dst.load_state_dict(src.state_dict())
    assert missing == [] and unexpected == []
    assert list(dst.parameters()) == before  # same objects: optimizers stay valid
    for (name, a), (_, b) in zip(src.named_parameters(), dst.named_parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)


def test_load_state_dict_names_every_problem_and_changes_nothing():
    net = Net()
    before = net.state_dict()
    sd = net.state_dict()
    del sd["towers.1.conv2.weight"]
    del sd["head.0.bias"]
    sd["towers.2.conv1.weight"] = np.zeros((4, 3))
    sd["towers.0.conv1.weight"] = np.zeros((3, 4))
    sd["scale"] = np.full(1, 7.0)  # valid, but must not be written either
    with pytest.raises(ValueError) as err:
        net.load_state_dict(sd)
    msg = str(err.value)
    for needle in ("missing", "towers.1.conv2.weight", "head.0.bias", "unexpected",
                   "towers.2.conv1.weight", "shape mismatch", "towers.0.conv1.weight",
                   "(3, 4)", "(4, 3)"):
        assert needle in msg, needle
    after = net.state_dict()
    for name in before:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)


def test_load_state_dict_non_strict_reports_but_still_rejects_shapes():
    net = Net()
    sd = {"scale": np.full(1, 3.0), "other": np.zeros(2)}
    missing, unexpected = net.load_state_dict(sd, strict=False)
    assert net.scale.numpy()[0] == 3.0
    assert missing == NET_NAMES[1:] and unexpected == ["other"]
    with pytest.raises(ValueError, match="scale"):
        net.load_state_dict({"scale": np.zeros(2)}, strict=False)


def test_load_state_dict_casts_to_the_parameter_dtype():
    lin = nn.Linear(2, 2, backend="numpy")  # float32
    lin.load_state_dict({"weight": np.full((2, 2), 0.5), "bias": np.arange(2)})
    assert lin.weight.dtype == np.float32 and lin.bias.dtype == np.float32
    np.testing.assert_array_equal(lin.bias.numpy(), [0.0, 1.0])


@pytest.mark.skipif(not available("numba"), reason="needs numba")
def test_to_replaces_moved_parameters_and_keeps_sharing():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(2, 2, backend="numpy")
            self.b = nn.Linear(2, 2, backend="numba")
            self.a2 = self.a

    t = Tied()
    old_a, old_b = t.a.weight, t.b.weight
    old_a.grad = np.ones((2, 2), dtype=np.float32)
    assert t.to("numba") is t
    assert t.b.weight is old_b                        # already there: untouched
    assert t.a.weight is not old_a and t.a.weight.backend == "numba"
    assert isinstance(t.a.weight, nn.Parameter) and t.a.weight.grad is None
    assert t.a2.weight is t.a.weight                  # still shared
    np.testing.assert_array_equal(t.a.weight.numpy(), old_a.numpy())
    assert not np.shares_memory(t.a.weight.data, old_a.data)
    assert old_a.backend == "numpy"                   # the old object is left as it was
    assert {p.backend for p in t.parameters()} == {"numba"}


def test_to_an_unknown_backend_is_an_error():
    with pytest.raises(ValueError, match="unknown backend"):
        Net().to("tpu")


def test_sequential_and_module_list_index_iterate_and_slice():
    a, b, c = nn.ReLU(), nn.Tanh(), nn.Sigmoid()
    seq = nn.Sequential(a, b, c)
    assert len(seq) == 3 and list(seq) == [a, b, c] and seq[-1] is c
    assert isinstance(seq[1:], nn.Sequential) and list(seq[1:]) == [b, c]
    x = Tensor(np.array([-1.0, 0.5]), backend="numpy")
    np.testing.assert_allclose(seq(x).numpy(), 1 / (1 + np.exp(-np.tanh([0.0, 0.5]))))
    ml = nn.ModuleList([a]).append(b)
    assert list(ml) == [a, b] and isinstance(ml[:1], nn.ModuleList)
    with pytest.raises(TypeError, match="Module"):
        ml.append("relu")


def test_repr_is_an_indented_tree():
    text = repr(Net())
    assert text.startswith("Net(\n  (towers): ModuleList(\n    (0): Tower(\n")
    assert "      (conv1): Linear(3, 4, bias=True)\n" in text
    assert "      (conv2): Linear(4, 2, bias=False)\n" in text
    assert "    (1): Sigmoid()\n  )\n)" in text


def test_deepcopy_gives_independent_parameters():
    net = Net()
    twin = copy.deepcopy(net)
    twin.scale.data[...] = 5.0
    assert net.scale.numpy()[0] == 2.0
    assert [n for n, _ in twin.named_parameters()] == NET_NAMES


@pytest.mark.gpu
def test_to_cupy_keeps_values_and_state_dict_comes_back_to_the_host():
    import cupy

    net = Net()
    host = net.state_dict()
    net.to("cupy")
    assert all(p.backend == "cupy" and isinstance(p.data, cupy.ndarray)
               for p in net.parameters())
    on_gpu = net.state_dict()
    assert all(type(v) is np.ndarray for v in on_gpu.values())
    for name in host:
        np.testing.assert_array_equal(on_gpu[name], host[name], err_msg=name)
    changed = {k: v + 1 for k, v in host.items()}
    net.load_state_dict(changed)
    y = net.head(Tensor(cupy.ones((3, 2), dtype=cupy.float32), backend="cupy"))
    assert y.backend == "cupy" and y.shape == (3, 1)
    net.to("numpy")
    for name, p in net.named_parameters():
        assert p.backend == "numpy"
        np.testing.assert_array_equal(p.numpy(), changed[name], err_msg=name)
