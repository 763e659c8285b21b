"""Data sources by name, each as train / validation / test ``Dataset`` splits together with
what a model needs to know of them: the tasks, the inputs' kinds and shapes, vocabularies.

============================  ================================================================
``article``                   the built-in synthetic user/goods/ads sequences (``make_synthetic``),
                              split 80/10/10; tasks user (multiclass), goods (the goods head's
                              kind), ads (multiclass)
``census``                    census-income (KDD), the MMoE paper's real data set: the
                              training file, the test file halved into validation and test;
                              group 1 (income, marital) or 2 (education, marital), binary tasks
``mmoe-synthetic``            the MMoE paper's two regression tasks of correlation p
                              (``make_mmoe_synthetic``), one draw split into the three sets
``FILE.npz``                  your own data: the article's schema or one that declares its
                              tasks (``minimtl.data.tasks_npz``), split 80/10/10
============================  ================================================================
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from . import data as D
from .objectives import Task

__all__ = ["Source", "load_source", "SOURCES", "census_datasets", "mmoe_datasets"]

SOURCES = ("article", "census", "mmoe-synthetic")


@dataclass
class Source:
    """A data source's three splits and its description.

    Attributes
    ----------
    name : str
    train, val, test : Dataset
    tasks : tuple[Task, ...]
    inputs : dict[str, str]          input name -> 'sequence' | 'continuous' | 'categorical'
    shapes : dict[str, tuple]        input name -> shape without N
    vocab : dict[str, list[int]]     categorical input -> vocabulary size per column
    meta : dict                      the full data set's meta (best/chance accuracies of
                                     synthetic data, the source's description)
    """

    name: str
    train: D.Dataset
    val: D.Dataset
    test: D.Dataset
    tasks: tuple[Task, ...]
    inputs: dict[str, str]
    shapes: dict[str, tuple]
    vocab: dict[str, list[int]] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    @property
    def sequences_only(self) -> bool:
        """Every input a sequence of one shape: the article's network can read it."""
        return all(k == "sequence" for k in self.inputs.values()) and \
            len(set(self.shapes.values())) == 1


def _kinds_and_shapes(ds: D.Dataset) -> tuple[dict[str, str], dict[str, tuple]]:
    kinds = dict(ds.meta.get("inputs") or {})
    for name, a in ds.inputs.items():
        if name not in kinds:
            kinds[name] = ("sequence" if a.ndim == 3 else
                           "categorical" if np.issubdtype(a.dtype, np.integer) else
                           "continuous")
    return kinds, {name: tuple(a.shape[1:]) for name, a in ds.inputs.items()}


def _article_tasks(ds: D.Dataset, goods_head: str) -> tuple[Task, ...]:
    classes = int(ds.meta.get("classes", 10))
    goods = ds.targets["goods"].shape[1]
    return (Task("user", "softmax", classes), Task("goods", goods_head, goods),
            Task("ads", "softmax", classes))


def census_datasets(group: int = 1, *, seed: int = 0, rows: int | None = None
                    ) -> tuple[D.Dataset, D.Dataset, D.Dataset, dict]:
    """Census-income as three Datasets with inputs ``continuous`` (N, Dc) float32 and
    ``categorical`` (N, Dk) int64, binary targets per task; and the shared meta."""
    from .data.census import load_census

    c = load_census(group, seed=seed, rows=rows)
    meta = dict(c.meta, tasks=[Task(t, "binary").to_json() for t in c.tasks],
                inputs={"continuous": "continuous", "categorical": "categorical"},
                vocab={"categorical": list(c.vocab_sizes)},
                description=f"census-income (KDD), group {group}: tasks {', '.join(c.tasks)}")

    def one(split) -> D.Dataset:
        return D.Dataset({"continuous": split.continuous, "categorical": split.categorical},
                         {t: split.targets[t] for t in c.tasks}, dict(meta))

    return one(c.train), one(c.validation), one(c.test), meta


def mmoe_datasets(correlation: float, *, train: int = 10_000, val: int = 1_000,
                  test: int = 1_000, seed: int = 0) -> tuple[D.Dataset, D.Dataset,
                                                              D.Dataset, dict]:
    """One draw of the MMoE paper's synthetic data (correlation p) split in order into
    train / validation / test Datasets with input ``x`` and regression targets y1, y2."""
    from .data.mmoe import make_mmoe_synthetic

    d = make_mmoe_synthetic(train + val + test, correlation, seed=seed)
    meta = dict(d.meta, tasks=[Task("y1", "regression").to_json(),
                               Task("y2", "regression").to_json()],
                inputs={"x": "continuous"},
                description=f"MMoE synthetic regression, correlation {correlation}")
    full = D.Dataset({"x": d.x}, {"y1": d.y1, "y2": d.y2}, meta)
    cuts = np.cumsum([0, train, val, test])
    return (*(full.subset(slice(a, b)) for a, b in zip(cuts[:-1], cuts[1:])), meta)


def load_source(spec: str, *, seed: int = 0, goods_head: str = "sigmoid",
                samples: int = 2400, seq_len: int = 64, features: int = 32,
                synthetic: dict | None = None, census_group: int = 1,
                census_rows: int | None = None, correlation: float = 0.5,
                mmoe_sizes: tuple[int, int, int] = (10_000, 1_000, 1_000)) -> Source:
    """The source named ``spec`` (one of ``SOURCES`` or a path to an .npz file)."""
    if spec == "census":
        train, val, test, meta = census_datasets(census_group, seed=seed, rows=census_rows)
    elif spec == "mmoe-synthetic":
        train, val, test, meta = mmoe_datasets(correlation, train=mmoe_sizes[0],
                                               val=mmoe_sizes[1], test=mmoe_sizes[2],
                                               seed=seed)
    elif spec == "article" or spec.endswith(".npz") or os.path.exists(spec):
        if spec == "article":
            full = D.make_synthetic(samples=samples, seq_len=seq_len, features=features,
                                    seed=seed, **(synthetic or {}))
        else:
            full = D.load_npz(spec)
        train, val, test = D.train_val_test_split(full, val_fraction=0.1, test_fraction=0.1,
                                                  seed=seed)
        meta = full.meta
    else:
        raise ValueError(f"--data: {spec!r} is neither a source ({', '.join(SOURCES)}) nor "
                         f"an .npz file")
    if "tasks" in meta:
        from .objectives import tasks_from_json

        tasks = tasks_from_json(meta["tasks"])
    else:
        tasks = _article_tasks(train, goods_head)
    kinds, shapes = _kinds_and_shapes(train)
    return Source(spec if spec in SOURCES else os.path.basename(spec), train, val, test,
                  tasks, kinds, shapes, dict(meta.get("vocab", {})), dict(meta))
