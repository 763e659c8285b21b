"""The training step a run times: minimtl's default ``MultiTaskNet`` and the same network
in PyTorch, each on one fixed random batch (forward, three losses, backward, Adam step)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .cases import CLASSES

__all__ = ["TASKS", "minimtl_step", "torch_step"]

TASKS = ("user", "goods", "ads")


def _fixed_batch(batch: int, seq_len: int, features: int, seed: int = 0):
    rng = np.random.default_rng([seed, batch])
    inputs = {t: rng.standard_normal((batch, seq_len, features)).astype(np.float32)
              for t in TASKS}
    targets = {"user": rng.integers(0, CLASSES, batch),
               "goods": (rng.random((batch, CLASSES)) > 0.5).astype(np.float32),
               "ads": rng.integers(0, CLASSES, batch)}
    return inputs, targets


def minimtl_step(backend: str, batch: int, seq_len: int, features: int, graph: bool = False
                 ) -> tuple[Callable[[], None], int]:
    """One training step of the default ``MultiTaskNet`` on a fixed random batch: forward,
    the three losses, backward, Adam step. Returns (step, parameter count).

    ``graph`` (cupy): the step captured once as a CUDA graph (``minimtl.train.graph``) and
    each call one replay on the batch already in its static arrays; raises if the step
    cannot be captured."""
    from ..models import MultiTaskNet
    from ..optim import Adam
    from ..train import to_tensors

    model = MultiTaskNet(seq_len, features, backend=backend, dtype=np.float32)
    opt = Adam(list(model.parameters()), lr=1e-3, device_step=graph)
    if graph:
        return _replayed(model, opt, *_fixed_batch(batch, seq_len, features)), \
            model.num_parameters()
    x, y = to_tensors(model, *_fixed_batch(batch, seq_len, features))

    def step() -> None:
        opt.zero_grad()
        total = model.total_loss(model.losses(model(x), y))
        total.backward()
        opt.step()
    return step, model.num_parameters()


def _replayed(model, opt, inputs, targets) -> Callable[[], None]:
    from ..train.graph import GraphStep
    from ..train.loop import _step

    def eager(x, y):
        batch = _step(model, opt, None, x, y)
        opt.step()
        return batch

    def refuse(line: str) -> None:
        raise RuntimeError(line)

    graph = GraphStep(model, opt, eager, say=refuse)
    graph(inputs, targets)                    # the eager first step, then the capture
    (captured,) = graph.captured.values()
    return lambda: captured.replay(inputs, targets)


def torch_step(torch, device: str, batch: int, seq_len: int, features: int,
               graph: bool = False) -> tuple[Callable[[], None], int]:
    """The same network and step in PyTorch (written to mirror MultiTaskNet's default
    configuration: three conv towers, concatenation, three Linear(…, 10) heads).

    ``graph`` (CUDA): the step captured with ``torch.cuda.graph`` after three warm-up
    steps on a side stream (Adam ``capturable``), each call one replay: PyTorch's own
    whole-network capture."""
    nn, F = torch.nn, torch.nn.functional
    torch.manual_seed(0)
    flat = 128 * (((seq_len - 2) // 2 - 2) // 2)

    def tower():
        return nn.Sequential(nn.Conv1d(features, 64, 3), nn.ReLU(), nn.MaxPool1d(2),
                             nn.Conv1d(64, 128, 3), nn.ReLU(), nn.MaxPool1d(2), nn.Flatten())

    towers = nn.ModuleList([tower() for _ in TASKS]).to(device)
    heads = nn.ModuleList([nn.Linear(3 * flat, CLASSES) for _ in TASKS]).to(device)
    params = [*towers.parameters(), *heads.parameters()]
    opt = torch.optim.Adam(params, lr=1e-3, capturable=graph)
    inputs, targets = _fixed_batch(batch, seq_len, features)
    xs = [torch.from_numpy(inputs[t]).to(device).permute(0, 2, 1) for t in TASKS]
    y = {t: torch.from_numpy(np.asarray(targets[t])).to(device) for t in TASKS}

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        z = torch.cat([tw(x) for tw, x in zip(towers, xs)], dim=1)
        user, goods, ads = (hd(z) for hd in heads)
        loss = (F.cross_entropy(user, y["user"])
                + F.binary_cross_entropy_with_logits(goods, y["goods"])
                + F.cross_entropy(ads, y["ads"]))
        loss.backward()
        opt.step()
    if not graph:
        return step, sum(p.numel() for p in params)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(side)
    captured = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(captured):
        z = torch.cat([tw(x) for tw, x in zip(towers, xs)], dim=1)
        user, goods, ads = (hd(z) for hd in heads)
        (F.cross_entropy(user, y["user"]) + F.binary_cross_entropy_with_logits(
            goods, y["goods"]) + F.cross_entropy(ads, y["ads"])).backward()
        opt.step()
    return captured.replay, sum(p.numel() for p in params)

