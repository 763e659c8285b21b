"""A run's folder (``--out``): what is in it, what ``--resume`` and ``--overwrite`` do with
it, and its JSON files, each written atomically."""

from __future__ import annotations

import json
import os

from .checkpoint import CheckpointError, atomic_write, read_meta

__all__ = ["CLIError", "RUN_SETTINGS", "RUN_FILES", "write_json", "prepare_out", "start_run",
           "remove_empty"]


class CLIError(Exception):
    """An error to report in one line."""


#: the settings that decide a run's numbers: a resumed run must repeat them
RUN_SETTINGS = ("seq_len", "features", "extractor", "rnn", "rnn_hidden", "sharing", "fusion",
                "goods_head", "batch_size", "lr", "samples", "noise", "relatedness", "data",
                "preprocess", "seed", "model", "census_group", "census_rows", "correlation",
                "experts", "expert_units", "tower_units", "bottom_units", "levels",
                "categorical", "weighting", "gradnorm_alpha", "pcgrad", "conflict",
                "output_bias")

#: the files a run writes into --out
RUN_FILES = ("run.json", "checkpoint.npz", "history.json", "test_metrics.json", "curves.png",
             "balance.png")


def _flag(attr: str) -> str:
    return "--" + attr.replace("_", "-")


def write_json(path: str, obj) -> None:
    """Write JSON atomically (``checkpoint.atomic_write``)."""
    atomic_write(path, lambda f: json.dump(obj, f, indent=1), binary=False)


def _checkpoint_epoch(path: str) -> int:
    """The last finished epoch recorded in a checkpoint's metadata."""
    try:
        return int(read_meta(path)["epoch"])
    except CheckpointError as e:
        raise CheckpointError(f"{e}; pass --overwrite to start the run afresh") from None


def prepare_out(a) -> list[str]:
    """Check --out before any work: a run there is resumed (--resume, same settings),
    replaced (--overwrite) or refused; the folder must be writable. Returns the folders this
    call created (removed again if the run fails before writing anything). Nothing is
    written or removed here: ``_start_run`` does that once the data and model are ready."""
    import tempfile

    out = a.out
    ckpt = os.path.join(out, "checkpoint.npz")
    settings = {k: getattr(a, k) for k in RUN_SETTINGS}
    present = [f for f in RUN_FILES if os.path.exists(os.path.join(out, f))]
    # a run.json alone is a run that never finished an epoch: nothing there to lose
    kept = [f for f in present if f != "run.json"]
    if a.resume:
        if not os.path.exists(ckpt):
            raise CLIError(f"--resume: there is no checkpoint at {ckpt}")
        run_file = os.path.join(out, "run.json")
        finished = os.path.exists(os.path.join(out, "test_metrics.json"))
        if os.path.exists(run_file):
            try:
                with open(run_file) as f:
                    run = json.load(f)
                saved, finished = run["settings"], bool(run.get("finished"))
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
                raise CLIError(f"--resume: {run_file} is unreadable ({e})") from None
            diff = [f"{_flag(k)} {saved.get(k)!r} -> {settings[k]!r}" for k in RUN_SETTINGS
                    if k in saved and saved[k] != settings[k]]
            if diff:
                raise CLIError(f"--resume: the run in {out} was trained with other settings "
                               f"({'; '.join(diff)}); repeat them, or start a new run with "
                               f"--overwrite or another --out")
        done = _checkpoint_epoch(ckpt)
        if a.epochs < done or (a.epochs == done and finished):
            raise CLIError(f"--resume: the checkpoint in {out} has already trained {done} "
                           f"epoch(s); --epochs {a.epochs} trains nothing (pass --epochs N "
                           f"with N > {done})")
        # a.epochs == done, unfinished: stopped after the last epoch, before all of the
        # outputs were written; resuming writes them
    elif kept and not a.overwrite:
        raise CLIError(f"{out} already holds a run ({', '.join(present)}); pass --resume to "
                       f"continue it, --overwrite to replace it, or choose another --out")
    created, head = [], os.path.abspath(out)
    while not os.path.exists(head):
        created.append(head)
        head = os.path.dirname(head)
    try:
        os.makedirs(out, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=".write-test-")
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        remove_empty(created)
        raise CLIError(f"--out {out} is not writable ({e.strerror or e})") from None
    return created


def start_run(a) -> None:
    """Just before the first epoch: the temporary files of an interrupted earlier write
    (a killed process leaves them) are removed; --overwrite removes the old run's files, and
    a new run records its settings in OUT/run.json (what --resume compares against)."""
    for name in os.listdir(a.out):
        if name.startswith(".tmp-") or any(name.startswith(f + ".tmp") for f in RUN_FILES):
            os.remove(os.path.join(a.out, name))
    if a.resume:
        return
    for f in RUN_FILES:
        path = os.path.join(a.out, f)
        if os.path.exists(path):
            os.remove(path)
    write_json(os.path.join(a.out, "run.json"),
                {"command": "train", "settings": {k: getattr(a, k) for k in RUN_SETTINGS}})


def remove_empty(folders: list[str]) -> None:
    for d in folders:                      # innermost first
        try:
            os.rmdir(d)
        except OSError:
            return
