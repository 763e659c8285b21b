"""``.npz`` files in the schema of ``minimtl.data`` (README: "Your own data")."""

from __future__ import annotations

import json
import os
import tokenize
import zipfile
import zlib
from typing import Any

import numpy as np

from .dataset import TASKS, Dataset

__all__ = ["load_npz", "save_npz"]

_LABEL_KEYS = {"user": "user_labels", "goods": "goods_labels", "ads": "ads_labels"}


def save_npz(ds: Dataset, path: str | os.PathLike) -> None:
    """Write ``ds`` in the schema of ``load_npz`` (uncompressed ``np.savez``): the article's
    (``user``, ``user_labels``, ...) or, when ``ds.meta`` declares ``tasks``, the declared
    one (``tasks``, ``x_<input>``, ``y_<task>``).

    Also writes ``meta`` (JSON string) and the latents as ``latent_<name>``.
    """
    arrays: dict[str, np.ndarray] = {}
    if "tasks" in ds.meta:
        arrays["tasks"] = np.array(json.dumps(ds.meta["tasks"]))
        arrays.update({f"x_{k}": v for k, v in ds.inputs.items()})
        arrays.update({f"y_{k}": v for k, v in ds.targets.items()})
    else:
        for task in TASKS:
            arrays[task] = ds.inputs[task]
            arrays[_LABEL_KEYS[task]] = ds.targets[task]
    for name, value in ds.latents.items():
        arrays[f"latent_{name}"] = value
    arrays["meta"] = np.array(json.dumps(ds.meta, default=_json_default))
    np.savez(path, **arrays)


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.ndarray, np.generic)):
        return o.tolist()
    raise TypeError(f"save_npz: meta value of type {type(o).__name__} is not JSON-serialisable")


#: what np.load and reading a member raise on a file that is not a well-formed .npz
_NPZ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError,
               SyntaxError, tokenize.TokenError, MemoryError)


def _read_npz(path: str | os.PathLike, where: str, required: list[str]) -> dict[str, np.ndarray]:
    """The members of an .npz that ``load_npz`` uses (the required ones, ``meta`` and the
    ``latent_*``), read one by one (an unused member is never decompressed); one
    ``ValueError`` naming the file, and the member where there is one, for anything
    unreadable: not a zip, truncated, a bad CRC, a corrupt .npy header, pickled objects."""
    if not os.path.exists(path):
        raise ValueError(f"{where}: no such file")
    try:
        f = np.load(path, allow_pickle=False)
    except _NPZ_ERRORS as e:
        raise ValueError(f"{where}: not a readable .npz archive (a zip of .npy arrays, as "
                         f"np.savez writes): {type(e).__name__}") from None
    if not isinstance(f, np.lib.npyio.NpzFile):
        raise ValueError(f"{where}: holds a single .npy array, not an .npz archive of named "
                         f"arrays (save with np.savez(path, user=..., ...))")
    with f:
        names = set(f.files)
        if "tasks" in names:       # a file that declares its own tasks
            required = ["tasks"]
        missing = [k for k in required if k not in names]
        if missing:
            raise ValueError(f"{where}: missing key(s) {missing}; keys found: "
                             f"{sorted(names)}; required: {required}")
        data = {}
        for k in sorted(names):
            if k in required or k == "meta" or k.startswith(("latent_", "x_", "y_")):
                try:
                    data[k] = f[k]
                except ValueError as e:
                    if "pickle" not in str(e):
                        raise ValueError(f"{where}: member {k!r} is truncated or corrupted "
                                         f"(ValueError)") from None
                    raise ValueError(f"{where}: member {k!r} holds Python objects "
                                     f"(pickled), which are never loaded: store numeric "
                                     f"arrays") from None
                except _NPZ_ERRORS as e:
                    raise ValueError(f"{where}: member {k!r} is truncated or corrupted "
                                     f"({type(e).__name__})") from None
    return data


def _json_member(data: dict, key: str, where: str, kind: type, what: str):
    """The JSON value of a 0-d string member (``kind()`` when the member is absent)."""
    if key not in data:
        return kind()
    try:
        value = json.loads(str(data[key]))
    except (json.JSONDecodeError, TypeError) as err:
        raise ValueError(f"{where}: key {key!r} is not a JSON string: {err}") from None
    if not isinstance(value, kind):
        raise ValueError(f"{where}: key {key!r} must hold {what}")
    return value


def load_npz(path: str | os.PathLike, classes: int | None = None) -> Dataset:
    """Load user data from an .npz file (``allow_pickle=False``) and check it.

    Schema
    ------
    Required keys:

    - ``user``, ``goods``, ``ads``: (N, L, F) real arrays, all three of identical shape,
      finite (no NaN/inf); loaded as float32.
    - ``user_labels``: (N,) integers in [0, classes); loaded as int64.
    - ``goods_labels``: (N, G) values in {0, 1} (bool, int or float); loaded as float32.
    - ``ads_labels``: (N,) integers in [0, classes); loaded as int64.

    Optional keys: ``meta`` (0-d string holding a JSON object, merged into ``Dataset.meta``)
    and ``latent_<name>`` arrays with first axis N (into ``Dataset.latents``). Other keys
    are ignored. Integer-valued float labels are accepted.

    Parameters
    ----------
    path : str or PathLike
    classes : int, optional
        K, the number of classes of the two softmax tasks. Default: ``meta["classes"]``
        when the file has it, else ``1 + max`` of user and ads labels.

    Returns
    -------
    Dataset
        With ``meta["source"] = str(path)`` and ``meta["classes"]``.

    Raises
    ------
    ValueError
        Naming the key and the problem: missing keys (with the keys found), wrong shape
        (expected and actual), mismatched N, non-numeric or non-finite values (with the
        count), labels that are not integers / not 0 or 1, labels out of range.
    """
    where = f"load_npz({os.fspath(path)!r})"
    required = list(TASKS) + [_LABEL_KEYS[t] for t in TASKS]
    data = _read_npz(path, where, required)
    meta = _json_member(data, "meta", where, dict, "a JSON object")
    if "tasks" in data:
        from .tasks_npz import load_declared

        return load_declared(data, meta, path, where)

    # Inputs: 'user' fixes (N, L, F); the other two must match it.
    inputs: dict[str, np.ndarray] = {}
    for task in TASKS:
        a = data[task]
        if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool) or np.iscomplexobj(a):
            raise ValueError(f"{where}: key {task!r} must be a real numeric array, "
                             f"got dtype {a.dtype}")
        if a.ndim != 3:
            raise ValueError(f"{where}: key {task!r} must have shape (N, L, F), "
                             f"got shape {a.shape}")
        inputs[task] = a
    n, length, f = inputs["user"].shape
    for task in ("goods", "ads"):
        shape = inputs[task].shape
        if shape[0] != n:
            raise ValueError(f"{where}: mismatched N: key {task!r} has N={shape[0]}, "
                             f"key 'user' has N={n}")
        if shape != (n, length, f):
            raise ValueError(f"{where}: key {task!r} has shape {shape}, expected "
                             f"{(n, length, f)} (identical to 'user')")
    for task in TASKS:
        bad = int(np.count_nonzero(~np.isfinite(inputs[task])))
        if bad:
            raise ValueError(f"{where}: key {task!r} contains {bad} NaN/inf value(s)")
        with np.errstate(over="ignore"):
            inputs[task] = inputs[task].astype(np.float32)
        bad = int(np.count_nonzero(~np.isfinite(inputs[task])))   # beyond float32's range
        if bad:
            raise ValueError(f"{where}: key {task!r} has {bad} value(s) beyond float32's "
                             f"range (|x| > 3.4e38): they would train as inf")

    # Labels.
    labels = {t: data[_LABEL_KEYS[t]] for t in TASKS}
    for task, ndim, expected in (("user", 1, "(N,)"), ("goods", 2, "(N, G)"),
                                 ("ads", 1, "(N,)")):
        key, a = _LABEL_KEYS[task], labels[task]
        if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool) or np.iscomplexobj(a):
            raise ValueError(f"{where}: key {key!r} must be a real numeric array, "
                             f"got dtype {a.dtype}")
        if a.ndim != ndim:
            raise ValueError(f"{where}: key {key!r} must have shape {expected} with N={n}, "
                             f"got shape {a.shape}")
        if a.shape[0] != n:
            raise ValueError(f"{where}: mismatched N: key {key!r} has N={a.shape[0]}, "
                             f"key 'user' has N={n}")
        bad = int(np.count_nonzero(~np.isfinite(a))) if a.dtype.kind == "f" else 0
        if bad:
            raise ValueError(f"{where}: key {key!r} contains {bad} NaN/inf value(s)")
    for task in ("user", "ads"):
        key, a = _LABEL_KEYS[task], labels[task]
        if a.dtype.kind == "f" and not np.all(a == np.round(a)):
            bad = int(np.count_nonzero(a != np.round(a)))
            raise ValueError(f"{where}: key {key!r} must hold integer class labels, "
                             f"{bad} value(s) are not integers")
    g_bad = int(np.count_nonzero((labels["goods"] != 0) & (labels["goods"] != 1)))
    if g_bad:
        raise ValueError(f"{where}: key 'goods_labels' must hold 0 or 1, "
                         f"{g_bad} value(s) are neither")

    if classes is None:
        classes = meta.get("classes")
    if classes is None:
        classes = 1 + int(max(labels["user"].max(initial=0), labels["ads"].max(initial=0)))
    classes = int(classes)
    for task in ("user", "ads"):
        key, a = _LABEL_KEYS[task], labels[task]
        out = (a < 0) | (a >= classes)
        if np.any(out):
            first = a[out][0]
            raise ValueError(
                f"{where}: key {key!r} has {int(np.count_nonzero(out))} label(s) out of range "
                f"[0, {classes}) (e.g. {first.item()})"
            )

    latents: dict[str, np.ndarray] = {}
    for key, a in data.items():
        if key.startswith("latent_"):
            if a.ndim == 0 or a.shape[0] != n:
                raise ValueError(f"{where}: mismatched N: key {key!r} has shape {a.shape}, "
                                 f"expected first axis N={n}")
            latents[key[len("latent_"):]] = a

    meta = dict(meta)
    meta["source"] = os.fspath(path)
    meta["classes"] = classes
    meta["samples"] = int(n)
    meta.setdefault("description", f"user data loaded from {os.path.basename(path)}")
    targets = {
        "user": labels["user"].astype(np.int64),
        "goods": labels["goods"].astype(np.float32),
        "ads": labels["ads"].astype(np.int64),
    }
    return Dataset(inputs, targets, meta, latents)
