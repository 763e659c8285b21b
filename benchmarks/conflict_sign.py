"""What the gradient cosine on shared layers sees when two tasks are linear with planted
correlation p: y1 = w1·x/√d + ε, y2 = w2·x/√d + ε with cos(w1, w2) = p exactly (no sine
terms, unlike the MMoE generator), a shared-bottom network, the cosine measured every 5
steps, per epoch, mean over seeds.

    python benchmarks/conflict_sign.py [--seeds 3] [--epochs 3] [--out FILE]

Question it answers: is the measured cosine's failure to rise with p on the MMoE data
(benchmarks/experiments/balancing/conflict.md) the generator's doing or the diagnostic's?
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def run(p: float, seed: int, epochs: int) -> dict:
    from minimtl.data import Dataset
    from minimtl.models.network import MultiTaskNetwork
    from minimtl.objectives import Task
    from minimtl.train import Balancer, fit

    rng = np.random.default_rng(seed)
    n, d = 4000, 100
    x = rng.normal(size=(n, d)).astype(np.float32)
    u1, u2 = rng.normal(size=d), rng.normal(size=d)
    u2 -= u2 @ u1 / (u1 @ u1) * u1                   # orthogonal, same length
    u2 *= np.linalg.norm(u1) / np.linalg.norm(u2)
    w2 = p * u1 + np.sqrt(1 - p * p) * u2
    y1 = x @ u1 / np.sqrt(d) + 0.1 * rng.normal(size=n)
    y2 = x @ w2 / np.sqrt(d) + 0.1 * rng.normal(size=n)
    ds = Dataset({"x": x}, {"y1": y1[:, None].astype(np.float32),
                            "y2": y2[:, None].astype(np.float32)})
    tasks = [Task("y1", "regression", 1), Task("y2", "regression", 1)]
    m = MultiTaskNetwork({"x": "continuous"}, {"x": (d,)}, tasks,
                         architecture="shared-bottom", seed=seed, backend="numba",
                         bottom_units=64, tower_units=8)
    h = fit(m, ds, None, epochs=epochs, batch_size=128, stream=None,
            balancer=Balancer(m, conflict_every=5))
    return {"label_correlation": float(np.corrcoef(y1, y2)[0, 1]),
            "cosine_per_epoch": [e["cos_y1|y2"] for e in h.epochs]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    results = {}
    for p in (-1.0, -0.5, 0.0, 0.5, 1.0):
        runs = [run(p, s, a.epochs) for s in range(a.seeds)]
        cos = np.array([r["cosine_per_epoch"] for r in runs])
        results[str(p)] = runs
        print(f"p {p:+.1f}: label correlation "
              f"{np.mean([r['label_correlation'] for r in runs]):+.2f}, cosine per epoch "
              + " ".join(f"{m:+.3f} ± {s:.3f}" for m, s in zip(cos.mean(0), cos.std(0))),
              flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"what": __doc__.splitlines()[0], "seeds": a.seeds, "epochs": a.epochs,
                       "results": results, "date": time.strftime("%Y-%m-%d")}, f, indent=1)


if __name__ == "__main__":
    main()
