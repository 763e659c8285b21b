"""Experiments as commands (``minimtl experiment NAME``), each writing its tables, JSON and
pictures into a folder:

- ``mmoe-synthetic``: the MMoE paper's synthetic study (``mmoe_synthetic``);
- ``census``: census-income with the paper's task groups (``census``);
- ``balancing-conflict``, ``balancing-census``, ``balancing-article``: what the conflict
  diagnostic sees as the tasks' correlation changes, and the balancing methods against
  each other and single-task models (``balancing``).
"""

from __future__ import annotations

__all__ = ["EXPERIMENTS", "run"]

EXPERIMENTS = ("mmoe-synthetic", "census", "balancing-conflict", "balancing-census",
               "balancing-article")


def run(a) -> int:
    """Run the experiment the parsed arguments ``a`` name; 0 on success."""
    backend = a.backend
    if backend == "auto":
        from ..backend import available

        backend = "numba" if available("numba") else "numpy"
    out = a.out or f"runs/experiment-{a.name}"
    if a.name.startswith("balancing-"):
        from . import balancing

        if a.name == "balancing-conflict":
            results = balancing.run_conflict(
                out, seeds=a.seeds, epochs=a.epochs or 10, backend=backend,
                correlations=a.correlations or balancing.CORRELATIONS)
            print(balancing.conflict_table(results))
        else:
            results = balancing.run_methods(out, a.name.split("-", 1)[1], seeds=a.seeds,
                                            epochs=a.epochs, backend=backend, rows=a.rows,
                                            output_bias=a.output_bias)
            print(balancing.methods_table(results))
        print(f"wrote {out}: its .json (every run) and .md (the table)")
        return 0
    if a.name == "mmoe-synthetic":
        from . import mmoe_synthetic

        results = mmoe_synthetic.run(out, seeds=a.seeds, epochs=a.epochs or 30,
                                     backend=backend)
        print(mmoe_synthetic.table(results))
    else:
        from . import census

        results = census.run(out, group=a.group, seeds=a.seeds, epochs=a.epochs or 10,
                             backend=backend, rows=a.rows,
                             models=tuple(a.models.split(",")) if a.models else
                             tuple(census.MODELS))
        print(census.table(results))
    print(f"wrote {out}/results.json, results.md and the pictures")
    return 0
