"""What the gradient cosine on shared layers sees when two tasks are linear with planted
correlation p: y1 = w1·x/√d + ε, y2 = w2·x/√d + ε with cos(w1, w2) = p exactly (no sine
terms, unlike the MMoE generator), a shared-bottom network, the cosine measured every 5
steps, per epoch, mean over seeds.

    python benchmarks/conflict_sign.py [--seeds 3] [--epochs 3] [--out FILE]

Question it answers: is the measured cosine's failure to rise with p on the MMoE data
(benchmarks/experiments/balancing/conflict.md) the generator's doing or the diagnostic's?

Per seed it also records the two heads' alignment at initialisation, before any label is
seen: the cosine of ∂ŷ1/∂h and ∂ŷ2/∂h (h the shared bottom's output, through its ReLU,
averaged over the training rows). Early in training a task's residual is about minus its
label, so task k's gradient on the bottom is about -E[y_k · that derivative · x], and the
two tasks' cosine about p times the heads' alignment: the sign the first steps see is the
initialisation's, times p.

The same seed gives the same network and inputs at every p, and at -p the labels of task 2
at p negated: that run is, bit for bit, the one at p with head 2's initial output weights
negated (tests/train/test_conflict_symmetry.py). So the mean over seeds of the cosine at p
and at -p, the even part, is the cosine with the heads' initial sign averaged out; the
difference, the odd part, is what that sign adds.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

P_VALUES = (-1.0, -0.5, 0.0, 0.5, 1.0)


def head_alignment(model, x: np.ndarray) -> float:
    """cos(E[∂ŷ1/∂z], E[∂ŷ2/∂z]) at the model's current weights, z the shared bottom's
    pre-activation (so the mean counts only the rows where its ReLU lets a gradient
    through); a shared-bottom MultiTaskNetwork with a continuous input ``x``."""
    import minimtl as mt
    import minimtl.functional as F

    body = model.body
    backend = body.bottom.weight.backend
    z = body.bottom(model.encoder({"x": mt.Tensor(x, backend=backend)}))
    z = mt.Tensor(z.data, requires_grad=True, backend=z.backend)
    h = F.relu(z)
    v = [mt.grad(tower(h).sum(), [z], retain_graph=True)[0].data.mean(axis=0)
         for tower in body.towers]
    return float(v[0] @ v[1] / (np.linalg.norm(v[0]) * np.linalg.norm(v[1])))


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
    y1 = x @ u1 / np.sqrt(d) + 0.1 * rng.normal(size=n)
    # y2 at -p is exactly y2 at p negated (w2 = ±(|p| u1 + √(1-p²) u2), noise included):
    # the same distribution as drawing at -p afresh, but paired, so one seed at p and at -p
    # differ only by the sign of task 2's labels
    sign = -1.0 if p < 0 else 1.0
    w2 = abs(p) * u1 + np.sqrt(1 - p * p) * u2
    y2 = sign * (x @ w2 / np.sqrt(d) + 0.1 * rng.normal(size=n))
    ds = Dataset({"x": x}, {"y1": y1[:, None].astype(np.float32),
                            "y2": y2[:, None].astype(np.float32)})
    tasks = [Task("y1", "regression", 1), Task("y2", "regression", 1)]
    m = MultiTaskNetwork({"x": "continuous"}, {"x": (d,)}, tasks,
                         architecture="shared-bottom", seed=seed, backend="numba",
                         bottom_units=64, tower_units=8)
    alignment = head_alignment(m, x)
    h = fit(m, ds, None, epochs=epochs, batch_size=128, stream=None,
            balancer=Balancer(m, conflict_every=5))
    return {"label_correlation": float(np.corrcoef(y1, y2)[0, 1]),
            "head_alignment_at_init": alignment,
            "first_step_cosine": h.epochs[0]["cosines"]["y1|y2"][0],
            "cosine_per_epoch": [e["cos_y1|y2"] for e in h.epochs]}


def _mean_se(a) -> str:
    a = np.asarray(a, dtype=float)
    return f"{a.mean():+.3f} ± {a.std(ddof=1) / np.sqrt(len(a)):.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    results = {}
    for p in P_VALUES:
        runs = [run(p, s, a.epochs) for s in range(a.seeds)]
        cos = np.array([r["cosine_per_epoch"] for r in runs])
        results[str(p)] = runs
        print(f"p {p:+.1f}: label correlation "
              f"{np.mean([r['label_correlation'] for r in runs]):+.2f}, cosine per epoch "
              "(mean ± sd) " + " ".join(f"{m:+.3f} ± {s:.3f}"
                                        for m, s in zip(cos.mean(0), cos.std(0))),
              flush=True)
    align = np.array([r["head_alignment_at_init"] for r in results["1.0"]])
    print(f"heads' alignment at init: mean {_mean_se(align)} (± standard error), "
          f"negative in {int((align < 0).sum())} of {a.seeds} seeds "
          f"(seeds 0-4: {' '.join(f'{v:+.3f}' for v in align[:5])})")
    pairs = [(p * al, r["first_step_cosine"], r["cosine_per_epoch"][0])
             for p in P_VALUES if p != 0 for al, r in zip(align, results[str(p)])]
    pa, first, epoch1 = (np.array(c) for c in zip(*pairs))
    print(f"over seeds and p != 0: correlation of p·alignment with the first step's cosine "
          f"{np.corrcoef(pa, first)[0, 1]:.3f}, with the first epoch's "
          f"{np.corrcoef(pa, epoch1)[0, 1]:.3f}; same sign as the first step's in "
          f"{np.mean(np.sign(pa) == np.sign(first)):.0%}")
    for e in range(a.epochs):
        c = {p: np.array([r["cosine_per_epoch"][e] for r in results[str(p)]]) for p in P_VALUES}
        print(f"epoch {e + 1}, mean ± standard error over seeds: " + ", ".join(
            f"p {p:+.1f} {_mean_se(c[p])}" for p in P_VALUES))
        print("    even part (c(p) + c(-p)) / 2: " + ", ".join(
            f"|p| {p:.1f} {_mean_se((c[p] + c[-p]) / 2)}" for p in P_VALUES if p >= 0)
            + "; odd part (c(p) - c(-p)) / 2 against p·alignment: correlation " + ", ".join(
            f"p {p:.1f} {np.corrcoef((c[p] - c[-p]) / 2, p * align)[0, 1]:.2f}"
            for p in P_VALUES if p > 0))
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"what": __doc__.splitlines()[0], "seeds": a.seeds, "epochs": a.epochs,
                       "results": results, "date": time.strftime("%Y-%m-%d")}, f, indent=1)


if __name__ == "__main__":
    main()
