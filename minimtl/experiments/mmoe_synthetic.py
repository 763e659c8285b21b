"""The MMoE paper's synthetic study (Ma et al., KDD 2018, §5.1-5.3): shared-bottom, OMoE
and MMoE on two regression tasks whose correlation p is set by the generator.

Models as the paper sizes them, with comparable parameter counts: shared-bottom with one
bottom layer of 113 units, OMoE and MMoE with 8 experts of 16 units; task towers of 8
units. Every model and seed gets the same training: Adam (lr 1e-3), batch 128, a fixed
number of epochs over 10,000 training examples; 1,000 validation and 1,000 test examples
from the same draw (seed s draws data set s). The loss is the sum of the two tasks' MSE.

The paper's findings this checks, as stated there: (1) every model does better as p rises;
(2) at lower p the gap between MMoE and the others grows (at p = 0.5 MMoE's mean final
loss is the lowest); (3) trainability: over many seeds MMoE's final losses vary least, and
its spread between p = 1 and p = 0.5 is the smallest. Nothing is tuned to make a finding
appear: the settings above are fixed before the runs.

Writes ``results.json`` (every run: curves, final losses, gates), ``results.md`` (the
table), ``curves.png`` (mean test loss per epoch per model, one panel per p) and
``histogram.png`` (final test losses per model, the paper's Figure 5).
"""

from __future__ import annotations

import json
import os

import numpy as np

from .common import Settings, fmt_mean_sd, mean_sd, progress, train_one

__all__ = ["run", "MODELS", "CORRELATIONS"]

MODELS = {"shared-bottom": {"bottom_units": 113, "tower_units": 8},
          "omoe": {"experts": 8, "expert_units": 16, "tower_units": 8},
          "mmoe": {"experts": 8, "expert_units": 16, "tower_units": 8}}
CORRELATIONS = (0.5, 0.9, 1.0)


def _loss(metrics: dict) -> float:
    return float(metrics["y1_loss"] + metrics["y2_loss"])


def run(out: str, *, seeds: int = 3, epochs: int = 30, correlations=CORRELATIONS,
        backend: str = "numba", sizes=(10_000, 1_000, 1_000)) -> dict:
    """Every model × correlation × seed; returns the results dict and writes the files."""
    from ..sources import load_source

    settings = Settings(epochs=epochs, batch_size=128, backend=backend)
    runs = []
    total = len(correlations) * seeds * len(MODELS)
    for p in correlations:
        for seed in range(seeds):
            source = load_source("mmoe-synthetic", seed=seed, correlation=p, mmoe_sizes=sizes)
            for name, model_sizes in MODELS.items():
                r = train_one(source, name, model_sizes, seed, settings)
                r.update(correlation=p, final_loss=_loss(r["test"]),
                         loss_curve=[_loss(m) for m in r["curve"]])
                del r["curve"]
                runs.append(r)
                progress(f"[{len(runs)}/{total}] p={p} seed={seed} {name}: test loss "
                         f"{r['final_loss']:.4f} ({r['train_s']:.1f} s)")
    results = {"experiment": "mmoe-synthetic", "settings": vars(settings) | {
        "seeds": seeds, "train/val/test": list(sizes), "correlations": list(correlations),
        "models": MODELS}, "runs": runs}
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(table(results))
    _plots(results, out)
    return results


def table(results: dict) -> str:
    runs, ps = results["runs"], results["settings"]["correlations"]
    lines = ["| model | parameters | " + " | ".join(f"p = {p}" for p in ps) +
             " | spread p=1 vs p=0.5 (mean) |", "|---|---|" + "---|" * len(ps) + "---|"]
    for name in MODELS:
        mine = [r for r in runs if r["architecture"] == name]
        cells = [fmt_mean_sd([r["final_loss"] for r in mine if r["correlation"] == p])
                 for p in ps]
        means = {p: mean_sd([r["final_loss"] for r in mine if r["correlation"] == p])[0]
                 for p in ps}
        spread = f"{means[0.5] - means[1.0]:.4f}" if {0.5, 1.0} <= set(ps) else "-"
        lines.append(f"| {name} | {mine[0]['parameters']:,} | " + " | ".join(cells) +
                     f" | {spread} |")
    s = results["settings"]
    lines += ["", f"Final test loss (MSE of y1 + MSE of y2), mean ± sd over {s['seeds']} "
              f"seeds; Adam lr {s['lr']}, batch {s['batch_size']}, {s['epochs']} epochs, "
              f"{s['train/val/test'][0]:,} training examples, backend {s['backend']}."]
    return "\n".join(lines) + "\n"


def _plots(results: dict, out: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    runs, ps = results["runs"], results["settings"]["correlations"]
    fig, axes = plt.subplots(1, len(ps), figsize=(4.2 * len(ps), 3.6), sharey=True)
    for ax, p in zip(np.atleast_1d(axes), ps):
        for name in MODELS:
            curves = np.array([r["loss_curve"] for r in runs
                               if r["architecture"] == name and r["correlation"] == p])
            epochs = np.arange(1, curves.shape[1] + 1)
            ax.plot(epochs, curves.mean(axis=0), "o-", ms=2, label=name)
        ax.set(title=f"correlation p = {p}", xlabel="epoch", yscale="log")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("mean test loss")
    np.atleast_1d(axes)[-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "curves.png"), dpi=100)
    plt.close(fig)
    fig, axes = plt.subplots(1, len(MODELS), figsize=(4.2 * len(MODELS), 3.4), sharey=True)
    for ax, name in zip(axes, MODELS):
        for p in ps:
            ax.hist([r["final_loss"] for r in runs if r["architecture"] == name and
                     r["correlation"] == p], bins=12, alpha=0.6, label=f"p = {p}")
        ax.set(title=name, xlabel="final test loss")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("runs")
    axes[-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "histogram.png"), dpi=100)
    plt.close(fig)
    return True
