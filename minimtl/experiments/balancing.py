"""Task balancing, measured: what the conflict diagnostic sees, and what each balancing
method does to the tasks' test metrics.

``conflict`` (MMoE synthetic data, p in {-1, -0.9, -0.5, 0, 0.5, 0.9, 1}): a shared-bottom model
(one bottom layer of 113 units, towers of 8, as in ``mmoe_synthetic``) trained with the
diagnostics on; the mean cosine between the two tasks' gradients on the bottom layer
over all measured steps, per run. The generator plants the tasks' correlation p; the
diagnostic should see it rise with p.

``census`` (group 1, MMoE 8 × 16) and ``article`` (the article's network on its synthetic
data): fixed equal weights, uncertainty, GradNorm, DWA and PCGrad (with equal weights),
each as ``minimtl train --weighting/--pcgrad`` runs it, against single-task models of the
same shape (``single-task`` on census; on the article's data the article's network with
one head); per-task test metrics (AUC on census, accuracy on the article's data) and
Δm % = (1/K) Σ_k (M_k − M_k,single) / M_k,single × 100 (Maninis et al., CVPR 2019; every
metric here is higher-is-better), mean ± sd over seeds. Every method gets the same
training (Adam 1e-3, a fixed number of epochs) and its default settings; nothing is tuned
per method.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np

from .common import fmt_mean_sd, mean_sd, progress

__all__ = ["run_conflict", "run_methods", "METHODS", "CORRELATIONS", "conflict_table",
           "methods_table"]

#: the target's five values of p, and -1 and -0.9 to tell p from |p| (see conflict_table)
CORRELATIONS = (-1.0, -0.9, -0.5, 0.0, 0.5, 0.9, 1.0)
TARGET_P = (-0.5, 0.0, 0.5, 0.9, 1.0)
#: name -> (weighting, pcgrad)
METHODS = {"equal": ("fixed", False), "uncertainty": ("uncertainty", False),
           "gradnorm": ("gradnorm", False), "dwa": ("dwa", False), "pcgrad": ("fixed", True)}


def _fit(model, source, epochs, batch, seed, lr, weighting="fixed", pcgrad=False,
         conflict_every=0):
    from ..optim import Adam
    from ..train import Balancer, evaluate, fit

    balancer = Balancer(model, weighting, pcgrad=pcgrad, conflict_every=conflict_every,
                        seed=seed)
    balancer = balancer if balancer.active else None
    params = list(model.parameters()) + (balancer.parameters() if balancer else [])
    t0 = time.perf_counter()
    history = fit(model, source.train, None, optimizer=Adam(params, lr=lr), epochs=epochs,
                  batch_size=batch, seed=seed, stream=None, balancer=balancer)
    wall = time.perf_counter() - t0
    return history, evaluate(model, source.test, 4096), wall


def run_conflict(out: str, *, seeds: int = 3, epochs: int = 10, every: int = 10,
                 correlations=CORRELATIONS, backend: str = "numba",
                 sizes=(10_000, 1_000, 1_000)) -> dict:
    """Shared-bottom on MMoE synthetic data at each p with the conflict diagnostic on."""
    from ..models.network import MultiTaskNetwork
    from ..sources import load_source

    runs = []
    for p in correlations:
        for seed in range(seeds):
            src = load_source("mmoe-synthetic", seed=seed, correlation=p, mmoe_sizes=sizes)
            model = MultiTaskNetwork(src.inputs, src.shapes, src.tasks,
                                     architecture="shared-bottom", bottom_units=113,
                                     tower_units=8, seed=seed, backend=backend)
            history, test, wall = _fit(model, src, epochs, 128, seed, 1e-3,
                                       conflict_every=every)
            cos = [c for e in history.epochs for c in e["cosines"]["y1|y2"]]
            runs.append({"correlation": p, "seed": seed, "mean_cosine": float(np.mean(cos)),
                         "conflict_rate": float(np.mean(np.asarray(cos) < 0)),
                         "epoch_cosine": history.series("cos_y1|y2"), "measured": len(cos),
                         "test": test, "train_s": wall})
            progress(f"[conflict {len(runs)}/{len(correlations) * seeds}] p={p} seed={seed}: "
                     f"mean cosine {runs[-1]['mean_cosine']:+.3f} ({wall:.0f} s)")
    results = {"experiment": "balancing-conflict", "runs": runs,
               "settings": {"model": "shared-bottom 113, towers 8", "epochs": epochs,
                            "batch_size": 128, "lr": 1e-3, "every": every, "seeds": seeds,
                            "backend": backend, "correlations": list(correlations)}}
    _write(out, "conflict", results, conflict_table(results))
    return results


def conflict_table(results: dict) -> str:
    ps = results["settings"]["correlations"]
    rows = ["| p | mean cosine (y1, y2) | steps with cosine < 0 | test loss |",
            "|---|---|---|---|"]
    means = []
    for p in ps:
        rs = [r for r in results["runs"] if r["correlation"] == p]
        means.append(mean_sd(r["mean_cosine"] for r in rs)[0])
        rows.append(f"| {p:g} | {fmt_mean_sd([r['mean_cosine'] for r in rs], 3)} | "
                    f"{fmt_mean_sd([100 * r['conflict_rate'] for r in rs], 1)} % | "
                    f"{fmt_mean_sd([r['test']['loss'] for r in rs], 3)} |")
    by_p = dict(zip(ps, means))
    target = [by_p[p] for p in TARGET_P if p in by_p]
    monotone = all(a < b for a, b in zip(target, target[1:]))
    s = results["settings"]
    rows += ["", f"Mean ± sd over {s['seeds']} seeds; {s['model']}, {s['epochs']} epochs, "
             f"batch {s['batch_size']}, cosine measured every {s['every']} steps on the bottom "
             f"layer. Over p = {', '.join(f'{p:g}' for p in TARGET_P if p in by_p)} the mean "
             f"cosine {'rises' if monotone else 'does NOT rise'} monotonically."]
    mirrored = [(p, -p) for p in ps if p > 0 and -p in by_p]
    if mirrored:
        rows.append("Mirrored p (p: cosine at p / at -p): " + "; ".join(
            f"{p:g}: {by_p[p]:+.3f} / {by_p[q]:+.3f}" for p, q in mirrored) + ".")
    return "\n".join(rows)


def _census_models(src, seed, backend, single: str | None):
    from ..models.network import MultiTaskNetwork

    tasks = src.tasks if single is None else [t for t in src.tasks if t.name == single]
    arch = "mmoe" if single is None else "single-task"
    sizes = {"experts": 8, "expert_units": 16, "tower_units": 8} if single is None else \
        {"bottom_units": 128, "tower_units": 8}
    return MultiTaskNetwork(src.inputs, src.shapes, tasks, architecture=arch,
                            vocab=src.vocab, seed=seed, backend=backend, **sizes)


def _article_models(src, seed, backend, single: str | None):
    from ..models import MultiTaskNet

    (shape,) = set(map(tuple, src.shapes.values()))
    tasks = src.tasks if single is None else [t for t in src.tasks if t.name == single]
    return MultiTaskNet(shape[0], shape[1], tasks=tasks, inputs=tuple(src.inputs), seed=seed,
                        backend=backend)


def run_methods(out: str, data: str, *, seeds: int = 3, epochs: int | None = None,
                methods=tuple(METHODS), backend: str = "numba", rows: int | None = None,
                output_bias: str = "zero") -> dict:
    """Every method × seed on ``data`` ('census' or 'article'), plus the single-task
    baselines, with the conflict diagnostic on (every 10 steps). ``rows``: census, each
    file's first rows; article, the number of samples (quick runs). ``output_bias``:
    'zero', or 'prior' (every model's heads start from the training targets' priors,
    ``MultiTaskModel.init_output_bias``)."""
    from ..sources import load_source

    epochs = epochs or (10 if data == "census" else 10)
    batch = 1024 if data == "census" else 32
    models = _census_models if data == "census" else _article_models

    def build(src, seed, single):
        model = models(src, seed, backend, single)
        if output_bias == "prior":
            model.init_output_bias(src.train.targets)
        return model

    metric = "auc" if data == "census" else "accuracy"
    runs = []
    for seed in range(seeds):
        kw = {"census_rows": rows} if data == "census" else \
            ({"samples": rows} if rows else {})
        src = load_source(data, seed=seed, **kw)
        names = [t.name for t in src.tasks]
        for task in names:
            model = build(src, seed, task)
            _, test, wall = _fit(model, src, epochs, batch, seed, 1e-3)
            runs.append({"method": "single-task", "task": task, "seed": seed,
                         "metric": test[f"{task}_{metric}"], "train_s": wall})
            progress(f"[{data} seed={seed}] single-task {task}: {metric} "
                     f"{runs[-1]['metric']:.4f} ({wall:.0f} s)")
        for name in methods:
            weighting, pc = METHODS[name]
            model = build(src, seed, None)
            history, test, wall = _fit(model, src, epochs, batch, seed, 1e-3, weighting, pc,
                                       conflict_every=10)
            last = history.epochs[-1]
            runs.append({"method": name, "seed": seed, "train_s": wall,
                         "metrics": {t: test[f"{t}_{metric}"] for t in names},
                         "weights": {t: last.get(f"weight_{t}", 1.0) for t in names},
                         "cosine": {k[4:]: v for k, v in last.items() if k.startswith("cos_")},
                         "conflict_rate": {k[9:]: v for k, v in last.items()
                                           if k.startswith("conflict_")}})
            progress(f"[{data} seed={seed}] {name}: " + ", ".join(
                f"{t} {v:.4f}" for t, v in runs[-1]["metrics"].items()) + f" ({wall:.0f} s)")
    results = {"experiment": f"balancing-{data}", "runs": runs, "tasks": names,
               "metric": metric,
               "settings": {"data": data, "epochs": epochs, "batch_size": batch, "lr": 1e-3,
                            "seeds": seeds, "backend": backend, "methods": list(methods),
                            "output_bias": output_bias,
                            "model": "mmoe 8x16, towers 8" if data == "census" else
                            "the article's network"}}
    _write(out, data, results, methods_table(results))
    return results


def delta_m(metrics: dict[str, float], single: dict[str, float]) -> float:
    """Δm % against the single-task metrics (all higher-is-better)."""
    return float(np.mean([(metrics[t] - single[t]) / single[t] for t in single]) * 100)


def methods_table(results: dict) -> str:
    tasks, metric = results["tasks"], results["metric"]
    runs = results["runs"]
    seeds = sorted({r["seed"] for r in runs})
    single = {s: {r["task"]: r["metric"] for r in runs
                  if r["method"] == "single-task" and r["seed"] == s} for s in seeds}
    head = " | ".join(f"{t} {metric}" for t in tasks)
    pairs = list(dict.fromkeys(p for r in runs if "cosine" in r for p in r["cosine"]))
    cos_head = " | ".join(f"cos({p.replace('|', ', ')}), last epoch" for p in pairs)
    rows = [f"| method | {head} | Δm % | {cos_head} |",
            "|---" * (2 + len(tasks) + len(pairs)) + "|"]
    rows.append("| single-task | " + " | ".join(
        fmt_mean_sd([single[s][t] for s in seeds]) for t in tasks) + " | 0 |"
        + " |" * len(pairs))
    for name in results["settings"]["methods"]:
        rs = [r for r in runs if r["method"] == name]
        dm = [delta_m(r["metrics"], single[r["seed"]]) for r in rs]
        rows.append(f"| {name} | " + " | ".join(
            fmt_mean_sd([r["metrics"][t] for r in rs]) for t in tasks)
            + f" | {fmt_mean_sd(dm, 2)} | "
            + " | ".join(fmt_mean_sd([r["cosine"].get(p, float('nan')) for r in rs], 3)
                         for p in pairs) + " |")
    s = results["settings"]
    rows += ["", f"{s['data']}: {s['model']}, mean ± sd over {s['seeds']} seeds; Adam lr "
             f"{s['lr']}, batch {s['batch_size']}, {s['epochs']} epochs, backend {s['backend']}; "
             f"Δm % against the single-task models of the same seed"
             + ("; every head's bias starts from its training targets' prior."
                if s.get("output_bias") == "prior" else ".")]
    return "\n".join(rows)


def _write(out: str, name: str, results: dict, table: str) -> None:
    from ..checkpoint import atomic_write

    os.makedirs(out, exist_ok=True)
    text = json.dumps(results, indent=1)
    atomic_write(os.path.join(out, f"{name}.json"), lambda f: f.write(text), binary=False)
    atomic_write(os.path.join(out, f"{name}.md"), lambda f: f.write(table + "\n"),
                 binary=False)
