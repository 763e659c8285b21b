"""Checkpoints and atomic writes.

A checkpoint is one ``.npz`` (no pickle): ``model/<param>``, ``optim/<key>``, extra arrays
(``prep/<key>``) and a JSON ``meta`` string (``epoch``, ``history``, the model's
``config``, and ``partial`` for a run stopped inside an epoch).

Every file is written through ``atomic_write``: into a private temporary file in the same
folder (an unpredictable name, created exclusively, so a planted symlink is never
followed), flushed to disk, then renamed over the target. A crash or kill at any moment
leaves either the old file or the new one, never a mixture; only the temporary file may be
left behind, and the CLI removes those of an earlier run when it starts.

``load_checkpoint`` trusts nothing in the file: a truncated or corrupted archive, metadata
that is not a JSON object with an ``epoch``, arrays of the wrong dtype (bool, integers,
float16, complex, strings) or with NaN/inf, and a checkpoint of another model configuration
are each refused with one ``CheckpointError`` naming the file and the problem, before
anything in the model or optimizer changes.
"""

from __future__ import annotations

import json
import os
import tempfile
import tokenize
import zipfile
import zlib
from collections.abc import Callable
from typing import IO, Any

import numpy as np

__all__ = ["CheckpointError", "atomic_write", "save_checkpoint", "load_checkpoint",
           "read_meta"]


class CheckpointError(ValueError):
    """A checkpoint is unreadable or does not fit the model."""


def atomic_write(path: str | os.PathLike, write: Callable[[IO], None], *,
                 binary: bool = True) -> None:
    """Call ``write(f)`` on a private temporary file next to ``path``, then rename it over
    ``path``; on any error the temporary file is removed and ``path`` is unchanged."""
    path = os.fspath(path)
    name = os.path.basename(path)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=f"{name}.tmp-")
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_checkpoint(path: str | os.PathLike, model, optimizer=None, *,
                    meta: dict[str, Any] | None = None,
                    extra: dict[str, np.ndarray] | None = None) -> None:
    """Write model (and optimizer, extra arrays, JSON ``meta``) to ``path`` atomically."""
    arrays: dict[str, np.ndarray] = {}
    for k, v in model.state_dict().items():
        arrays[f"model/{k}"] = np.asarray(v)
    if optimizer is not None:
        for k, v in optimizer.state_dict().items():
            arrays[f"optim/{k}"] = np.asarray(v)
    for k, v in (extra or {}).items():
        arrays[k] = np.asarray(v)
    arrays["meta"] = np.asarray(json.dumps(meta or {}))
    atomic_write(path, lambda f: np.savez(f, **arrays))


#: what reading a damaged archive raises, from zipfile, zlib and numpy's header parser
_DAMAGE = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError,
           SyntaxError, tokenize.TokenError, MemoryError, UnicodeDecodeError)


def _read(path: str) -> dict[str, np.ndarray]:
    if not os.path.exists(path):
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except _DAMAGE as e:
        raise CheckpointError(f"checkpoint {path} is truncated or corrupted "
                              f"({type(e).__name__}: {e})") from None
    except AttributeError:          # a single .npy array: np.load returned no archive
        raise CheckpointError(f"checkpoint {path} is not an .npz archive") from None


def _meta(path: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    if "meta" not in arrays:
        raise CheckpointError(f"checkpoint {path} has no 'meta' entry: not a minimtl "
                              f"checkpoint")
    try:
        meta = json.loads(str(arrays["meta"]))
    except (json.JSONDecodeError, TypeError) as e:
        raise CheckpointError(f"checkpoint {path}: 'meta' is not JSON ({e})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"checkpoint {path}: 'meta' is a JSON {type(meta).__name__}, "
                              f"not an object")
    epoch = meta.get("epoch")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise CheckpointError(f"checkpoint {path}: 'meta' has no epoch count (got "
                              f"{epoch!r})")
    if not isinstance(meta.get("history", []), list):
        raise CheckpointError(f"checkpoint {path}: 'meta' history is not a list")
    return meta


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The checked metadata of a checkpoint (see the module docstring)."""
    path = os.fspath(path)
    return _meta(path, _read(path))


def _check_values(path: str, arrays: dict[str, np.ndarray], prefix: str) -> None:
    bad = []
    for k, v in arrays.items():
        if not k.startswith(prefix) or (prefix == "optim/" and v.ndim == 0):
            continue                 # optimizer scalars (step, lr, betas) are checked there
        if v.dtype not in (np.float32, np.float64):
            bad.append(f"{k} has dtype {v.dtype}")
        elif not np.all(np.isfinite(v)):
            bad.append(f"{k} holds {int(np.sum(~np.isfinite(v)))} NaN/inf")
    if bad:
        raise CheckpointError(f"checkpoint {path}: arrays that are not finite float32/float64: "
                              + "; ".join(bad))


def _check_config(path: str, saved, cfg) -> None:
    if not (isinstance(saved, dict) and isinstance(cfg, dict)):
        return
    if "flatten" in cfg and saved.get("flatten", "(C, L)") != cfg["flatten"]:
        raise CheckpointError(
            f"checkpoint {path} was written by a model that flattened its features "
            f"{saved.get('flatten', '(C, L)')}; this one flattens {cfg['flatten']}, so "
            f"the heads' weights would be misread: retrain (or load it with the minimtl "
            f"version that wrote it)")
    # the init seed is overwritten by the loaded values; the rest decides what they mean
    differ = [f"{k}: checkpoint {saved[k]!r}, model {cfg[k]!r}" for k in cfg
              if k in saved and k != "seed" and saved[k] != cfg[k]]
    if differ:
        raise CheckpointError(f"checkpoint {path} is of another model configuration ("
                              + "; ".join(differ) + ")")


def load_checkpoint(path: str | os.PathLike, model, optimizer=None) -> dict[str, Any]:
    """Load a checkpoint written by ``save_checkpoint`` into ``model`` (and ``optimizer``).

    Returns ``{"meta": dict, "extra": {name: array}}``. Raises ``CheckpointError`` naming
    the file and the problem (see the module docstring); on error nothing is changed.
    """
    path = os.fspath(path)
    arrays = _read(path)
    meta = _meta(path, arrays)
    _check_config(path, meta.get("config"), getattr(model, "config", None))
    _check_values(path, arrays, "model/")
    model_state = {k[6:]: v for k, v in arrays.items() if k.startswith("model/")}
    optim_state = {k[6:]: v for k, v in arrays.items() if k.startswith("optim/")}
    if optimizer is not None:
        if not optim_state:
            raise CheckpointError(f"checkpoint {path} holds no optimizer state")
        _check_values(path, arrays, "optim/")
    before = {k: np.array(v) for k, v in model.state_dict().items()}
    try:
        model.load_state_dict(model_state)
    except (KeyError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path} does not fit the model: {e}") from None
    if optimizer is not None:
        try:
            optimizer.load_state_dict(optim_state)
        except (KeyError, ValueError, TypeError) as e:
            model.load_state_dict(before)          # nothing changed on error
            raise CheckpointError(f"checkpoint {path}: optimizer state does not fit: {e}") \
                from None
    extra = {k: v for k, v in arrays.items()
             if not k.startswith(("model/", "optim/")) and k != "meta"}
    return {"meta": meta, "extra": extra}
