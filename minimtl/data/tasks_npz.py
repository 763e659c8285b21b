"""``.npz`` files that declare their own tasks: any inputs, any tasks (README: "Your own
multi-task data").

Schema
------
- ``tasks``: a 0-d string holding a JSON list, one object per task:
  ``{"name": "click", "kind": "binary", "outputs": 1, "weight": 1.0}``; ``kind`` is one of
  ``multiclass``, ``multilabel``, ``binary``, ``regression`` (or the head types
  ``softmax``, ``sigmoid``, ``linear``); ``outputs`` (optional) is the head's width, taken
  from the targets when absent (1 + the largest class label, the number of label columns);
  ``weight`` (optional, default 1) is the task's loss weight.
- ``y_<task>``: the targets of each declared task, first axis N: class labels (N,) int (or
  probability rows (N, K)) for ``multiclass``; (N, K) in [0, 1] for ``multilabel``; (N,) or
  (N, 1) in [0, 1] for ``binary``; (N,) or (N, K) real for ``regression``.
- ``x_<input>``: the inputs, first axis N, at least one: a float (N, L, F) array is a
  sequence (through the article's towers), a float (N, D) array continuous columns, an
  integer (N, D) array categorical columns as codes 0, 1, … (their vocabulary sizes are
  ``1 + max`` per column, or ``meta["vocab"][input]``, a list of D sizes).
- ``meta`` (optional): a 0-d JSON string of an object, merged into ``Dataset.meta``.

Every problem is one ``ValueError`` naming the file and the key: a malformed declaration,
a declared task without ``y_<task>`` or a ``y_`` array no task declares, targets that do
not fit their task's kind or declared width, N that differs between arrays, non-finite or
non-numeric inputs, negative or too large codes.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from .dataset import Dataset

__all__ = ["load_declared", "INPUT_KINDS"]

#: how an input array is read, by its dtype and rank
INPUT_KINDS = ("sequence", "continuous", "categorical")


def _input_kind(where: str, key: str, a: np.ndarray) -> str:
    if a.dtype == bool or np.iscomplexobj(a) or not np.issubdtype(a.dtype, np.number):
        raise ValueError(f"{where}: key {key!r} must be a real numeric array, got dtype "
                         f"{a.dtype}")
    if np.issubdtype(a.dtype, np.integer):
        if a.ndim != 2:
            raise ValueError(f"{where}: key {key!r} holds integers, so categorical codes "
                             f"(N, D), but has shape {a.shape}")
        return "categorical"
    if a.ndim == 3:
        return "sequence"
    if a.ndim == 2:
        return "continuous"
    raise ValueError(f"{where}: key {key!r} must be (N, L, F) (a sequence) or (N, D) "
                     f"(columns), got shape {a.shape}")


def _declared_task(item: dict, i: int, where: str):
    """The declaration of entry ``i`` checked on its own (a placeholder width where the data
    will give it)."""
    from ..objectives import Task, objective

    try:
        kind = objective(item["kind"]).kind
        width = item.get("outputs", 1 if kind == "binary" else 2)
        return Task(item["name"], kind, width, item.get("weight", 1.0))
    except ValueError as e:
        raise ValueError(f"{where}: key 'tasks', entry {i}: {e}") from None


def load_declared(data: dict[str, np.ndarray], meta: dict[str, Any], path, where: str
                  ) -> Dataset:
    """The data set of a file with a ``tasks`` member (see the module docstring); ``data``
    holds its members, ``meta`` its parsed ``meta``."""
    from ..objectives import Task

    try:
        declared = json.loads(str(data["tasks"]))
    except (json.JSONDecodeError, TypeError) as err:
        raise ValueError(f"{where}: key 'tasks' is not a JSON string: {err}") from None
    if not isinstance(declared, list) or not declared:
        raise ValueError(f"{where}: key 'tasks' must hold a non-empty JSON list of task "
                         f"objects")
    for i, item in enumerate(declared):
        if not isinstance(item, dict) or not {"name", "kind"} <= set(item) or \
                set(item) - {"name", "kind", "outputs", "weight"}:
            raise ValueError(f"{where}: key 'tasks', entry {i}: expected {{name, kind, "
                             f"outputs?, weight?}}, got {item!r}")
    names = [str(item["name"]) for item in declared]
    if len(set(names)) != len(names):
        raise ValueError(f"{where}: key 'tasks': task names repeat ({', '.join(names)})")
    x_keys = sorted(k for k in data if k.startswith("x_"))
    y_keys = {k[2:] for k in data if k.startswith("y_")}
    if not x_keys:
        raise ValueError(f"{where}: no inputs: store each as 'x_<name>' (keys found: "
                         f"{sorted(data)})")
    missing = [t for t in names if t not in y_keys]
    if missing:
        raise ValueError(f"{where}: task(s) {missing} are declared but have no 'y_<task>' "
                         f"targets (found {sorted('y_' + k for k in y_keys)})")
    extra = sorted(y_keys - set(names))
    if extra:
        raise ValueError(f"{where}: targets {['y_' + k for k in extra]} belong to no declared "
                         f"task (declared: {names})")
    first = x_keys[0]
    n = int(data[first].shape[0]) if data[first].ndim else 0
    for key in x_keys + ["y_" + t for t in names] + [k for k in data if
                                                      k.startswith("latent_")]:
        a = data[key]
        if a.ndim == 0 or a.shape[0] != n:
            raise ValueError(f"{where}: mismatched N: key {key!r} has shape {a.shape}, key "
                             f"{first!r} has N={n}")

    inputs, kinds, vocab = {}, {}, dict(meta.get("vocab", {}))
    for key in x_keys:
        name, a = key[2:], data[key]
        kind = _input_kind(where, key, a)
        if kind == "categorical":
            if a.size and a.min() < 0:
                raise ValueError(f"{where}: key {key!r} has negative codes (min {a.min()})")
            sizes = vocab.get(name) or [int(v) + 1 for v in a.max(axis=0, initial=0)]
            if len(sizes) != a.shape[1] or any(a.shape[0] and int(a[:, j].max()) >= sizes[j]
                                               for j in range(a.shape[1])):
                raise ValueError(f"{where}: key {key!r}: codes beyond the vocabulary sizes "
                                 f"{sizes} of meta['vocab'][{name!r}]")
            vocab[name] = [int(v) for v in sizes]
            inputs[name] = a.astype(np.int64)
        else:
            bad = int(np.count_nonzero(~np.isfinite(a)))
            if bad:
                raise ValueError(f"{where}: key {key!r} contains {bad} NaN/inf value(s)")
            inputs[name] = a.astype(np.float32)
        kinds[name] = kind

    targets, tasks = {}, []
    for i, item in enumerate(declared):
        name, key = names[i], "y_" + names[i]
        spec = _declared_task(item, i, where)
        y = data[key]
        if not (np.issubdtype(y.dtype, np.number) or y.dtype == bool) or np.iscomplexobj(y):
            raise ValueError(f"{where}: key {key!r} must be a real numeric array, got dtype "
                             f"{y.dtype}")
        labels = spec.kind == "multiclass" and y.ndim == 1
        if labels and y.dtype.kind == "f":
            if not np.all(y == np.round(y)):
                raise ValueError(f"{where}: key {key!r}: the {name} task is multiclass, but "
                                 f"its labels are not integers")
            y = y.astype(np.int64)
        try:
            task = Task.from_data(name, spec.kind, y, spec.weight, outputs=item.get("outputs"))
        except ValueError as e:
            raise ValueError(f"{where}: key {key!r}: {e}") from None
        tasks.append(task)
        targets[name] = y.astype(np.int64) if labels else y.astype(np.float32)

    latents = {k[len("latent_"):]: a for k, a in data.items() if k.startswith("latent_")}
    meta = dict(meta)
    meta.update(source=os.fspath(path), samples=n, tasks=[t.to_json() for t in tasks],
                inputs=kinds, vocab=vocab)
    meta.setdefault("description", f"user data loaded from {os.path.basename(path)}")
    return Dataset(inputs, targets, meta, latents)

