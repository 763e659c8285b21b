"""Census-income (KDD) with the MMoE paper's task groups: single-task, shared-bottom, OMoE,
MMoE and PLE, test AUC per task, mean ± sd over seeds, next to published numbers.

Data as ``minimtl.data.census`` reads it: 199,523 training rows, the test file halved at
random (the seed) into validation and test; 7 continuous columns standardised, 32
categorical columns one-hot encoded (the encoding of the public MMoE runs below);
household columns kept (they carry marital information, hence marital AUCs near 0.99).
Every model gets the same training: Adam (lr 1e-3), batch 1,024, a fixed number of
epochs, no early stopping; the test metrics are those after the last epoch.

Sizes, chosen to be comparable: MMoE and OMoE 8 experts × 16 units, towers of 8 (the
paper's census setup); shared-bottom and single-task one bottom layer of 128 units
(= 8 × 16, what one expert group computes); PLE 2 levels of 4 task + 4 shared experts
of 16 units (each task's gate also mixes 8 experts).

Published numbers (group 1, test AUC income / marital), for comparison:
- PaddleRec's MMoE on census-income (models/multitask/mmoe/readme.md): mean
  0.94465 / 0.99324 (batch 32, 400 epochs).
- The census-income results table of the article with DOI 10.2478/ijanmc-2024-0005
  (2024), with embeddings of size 4 and a (512, 256) DNN, batch 256: single-task
  0.9198 / 0.9748, shared-bottom 0.9148 / 0.9754, MMoE 0.9152 / 0.9756, PLE
  0.9161 / 0.9764.
"""

from __future__ import annotations

import json
import os

from .common import Settings, fmt_mean_sd, progress, train_one

__all__ = ["run", "MODELS", "PUBLISHED"]

MODELS = {"single-task": {"bottom_units": 128, "tower_units": 8},
          "shared-bottom": {"bottom_units": 128, "tower_units": 8},
          "omoe": {"experts": 8, "expert_units": 16, "tower_units": 8},
          "mmoe": {"experts": 8, "expert_units": 16, "tower_units": 8},
          "ple": {"levels": 2, "task_experts": 4, "shared_experts": 4, "expert_units": 16,
                  "tower_units": 8}}

#: group 1 test AUCs (income, marital) reported elsewhere, with their sources (above)
PUBLISHED = {"PaddleRec MMoE (batch 32, 400 epochs)": {"mmoe": (0.94465, 0.99324)},
             "doi 10.2478/ijanmc-2024-0005 (embeddings, DNN 512-256)": {
                 "single-task": (0.9198, 0.9748), "shared-bottom": (0.9148, 0.9754),
                 "mmoe": (0.9152, 0.9756), "ple": (0.9161, 0.9764)}}


def run(out: str, *, group: int = 1, seeds: int = 3, epochs: int = 10, backend: str = "numba",
        models=tuple(MODELS), rows: int | None = None) -> dict:
    """Every model × seed on census group ``group``; returns the results and writes
    ``results.json`` and ``results.md`` into ``out``."""
    from ..sources import load_source

    settings = Settings(epochs=epochs, batch_size=1024, backend=backend)
    runs = []
    for seed in range(seeds):
        source = load_source("census", seed=seed, census_group=group, census_rows=rows)
        for name in models:
            r = train_one(source, name, MODELS[name], seed, settings)
            runs.append(r)
            aucs = ", ".join(f"{t.name} {r['test'][f'{t.name}_auc']:.4f}"
                             for t in source.tasks)
            progress(f"[{len(runs)}/{seeds * len(models)}] seed={seed} {name}: test AUC "
                     f"{aucs} ({r['train_s']:.0f} s)")
    results = {"experiment": "census", "group": group, "tasks": [t.name for t in source.tasks],
               "rows": {"train": len(source.train), "validation": len(source.val),
                        "test": len(source.test)},
               "settings": vars(settings) | {"seeds": seeds, "models": MODELS}, "runs": runs}
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write(table(results))
    return results


def table(results: dict) -> str:
    tasks, runs = results["tasks"], results["runs"]
    from .balancing import delta_m

    single = {r["seed"]: {t: r["test"][f"{t}_auc"] for t in tasks} for r in runs
              if r["architecture"] == "single-task"}
    lines = ["| model | parameters | " + " | ".join(f"test AUC {t}" for t in tasks) +
             " | Δm % | train s / run |", "|---|---|" + "---|" * len(tasks) + "---|---|"]
    for name in dict.fromkeys(r["architecture"] for r in runs):
        mine = [r for r in runs if r["architecture"] == name]
        cells = [fmt_mean_sd([r["test"][f"{t}_auc"] for r in mine]) for t in tasks]
        dm = [delta_m({t: r["test"][f"{t}_auc"] for t in tasks}, single[r["seed"]])
              for r in mine if r["seed"] in single]
        lines.append(f"| {name} | {mine[0]['parameters']:,} | " + " | ".join(cells) +
                     f" | {fmt_mean_sd(dm, 2) if dm else '-'} | "
                     f"{sum(r['train_s'] for r in mine) / len(mine):.0f} |")
    s = results["settings"]
    lines += ["", f"Group {results['group']}, mean ± sd over {s['seeds']} seeds; Adam lr "
              f"{s['lr']}, batch {s['batch_size']}, {s['epochs']} epochs, backend "
              f"{s['backend']}; {results['rows']['train']:,} training rows; Δm %: the mean "
              f"relative change of the AUCs against single-task of the same seed."]
    if results["group"] == 1:
        lines += ["", "Published (group 1, test AUC income / marital):", ""]
        for where, numbers in PUBLISHED.items():
            for model, (a, b) in numbers.items():
                lines.append(f"- {where}: {model} {a:.4f} / {b:.4f}")
    return "\n".join(lines) + "\n"
