"""Experiments as commands (``minimtl experiment NAME``), each writing its tables, JSON and
pictures into a folder:

- ``mmoe-synthetic``: the MMoE paper's synthetic study (``mmoe_synthetic``);
- ``census``: census-income with the paper's task groups (``census``).
"""

from __future__ import annotations

__all__ = ["EXPERIMENTS", "run"]

EXPERIMENTS = ("mmoe-synthetic", "census")


def run(a) -> int:
    """Run the experiment the parsed arguments ``a`` name; 0 on success."""
    backend = a.backend
    if backend == "auto":
        from ..backend import available

        backend = "numba" if available("numba") else "numpy"
    out = a.out or f"runs/experiment-{a.name}"
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
