"""The ``minimtl`` command: train, summary, gradcheck, bench, info.

    minimtl train                 # the article's setup on the built-in synthetic data
    minimtl train --extractor cnn+rnn --rnn gru --fusion weighted --epochs 5
    minimtl summary --seq-len 64 --features 32
    minimtl gradcheck [OP ...]    # every operator on every available backend
    minimtl bench                 # kernel and training-step benchmarks (see benchmarks/)
    minimtl info                  # versions, backends, GPU

Errors in arguments or inputs print one line (``minimtl: error: …``) and exit with 2
(set ``MINIMTL_DEBUG=1`` for the traceback).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

from .plot import plot_curves
from .runfolder import (
    RUN_SETTINGS,
    CLIError,
    prepare_out,
    remove_empty,
    start_run,
    write_json,
)

__all__ = ["main", "build_parser"]


def _fastest_backend() -> str:
    from .backend import available

    for name in ("cupy", "numba", "numpy"):
        if available(name):
            return name
    return "numpy"


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seq-len", type=int, default=64, help="time steps per sequence (64)")
    p.add_argument("--features", type=int, default=32, help="features per step (32)")
    p.add_argument("--extractor", choices=("cnn", "cnn+rnn"), default="cnn",
                   help="cnn: the Keras listing; cnn+rnn: two conv blocks then an RNN")
    p.add_argument("--rnn", choices=("lstm", "gru", "rnn"), default="lstm",
                   help="recurrent cell for --extractor cnn+rnn (lstm)")
    p.add_argument("--rnn-hidden", type=int, default=64)
    p.add_argument("--sharing", choices=("separate", "shared"), default="separate",
                   help="one tower per input (separate) or one shared tower")
    p.add_argument("--fusion", choices=("concat", "weighted"), default="concat")
    p.add_argument("--goods-head", choices=("sigmoid", "softmax", "linear"), default="sigmoid")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minimtl", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train the multi-task network on synthetic data")
    _model_args(t)
    t.add_argument("--backend", choices=("auto", "numpy", "numba", "cupy"), default="auto",
                   help="auto = fastest available (cupy > numba > numpy)")
    t.add_argument("--layout", choices=("auto", "channels-last", "channels-first"),
                   default="auto", help="the towers' activation layout (auto: channels-last "
                   "on the CPU, channels-first on the GPU); it changes speed, not results")
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (1e-3)")
    t.add_argument("--samples", type=int, default=2400, help="synthetic samples (2400)")
    t.add_argument("--noise", type=float, default=None, help="synthetic noise level")
    t.add_argument("--relatedness", type=float, default=None,
                   help="how often the ad click follows the user's interest, in [0, 1]")
    t.add_argument("--data", default=None, help="train on an .npz file instead (see "
                   "minimtl.data.load_npz for its schema)")
    t.add_argument("--preprocess", default="denoise,standardize",
                   help="comma-separated steps: denoise, standardize, minmax ('' for none)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", default="runs/seed", help="output folder (runs/seed)")
    t.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz "
                   "(the run's settings must be the same; see OUT/run.json)")
    t.add_argument("--overwrite", action="store_true",
                   help="replace a run that OUT already holds (refused otherwise)")
    t.add_argument("--quiet", action="store_true", help="no summary or progress")
    t.add_argument("--threads", type=int, default=None,
                   help="CPU threads for the kernels and BLAS (default: all cores); 1 or 2 "
                   "fewer than the cores when other work runs on the machine")
    t.add_argument("--no-malloc-tuned", dest="malloc_tuned", action="store_false",
                   help="keep glibc's default allocator thresholds (see benchmarks/NOTES.md)")

    t.set_defaults(parser=t)
    s = sub.add_parser("summary", help="print the network's layer table")
    _model_args(s)
    s.set_defaults(parser=s)

    g = sub.add_parser("gradcheck", help="gradient-check operators on every backend")
    g.add_argument("ops", nargs="*", help="operator names (default: all); see --list")
    g.add_argument("--list", action="store_true", help="list the operator cases")
    g.add_argument("--backend", action="append", help="restrict to these backends")
    g.set_defaults(parser=g)

    sub.add_parser("bench", help="kernel and training-step benchmarks (minimtl bench --help)")

    i = sub.add_parser("info", help="versions, available backends, GPU")
    i.set_defaults(parser=i)
    return parser


# --- train -----------------------------------------------------------------------------
def _build_model(a, backend: str):
    from .models import MultiTaskNet

    return MultiTaskNet(a.seq_len, a.features, extractor=a.extractor, rnn=a.rnn,
                        rnn_hidden=a.rnn_hidden, sharing=a.sharing, fusion=a.fusion,
                        heads={"goods": a.goods_head}, seed=getattr(a, "seed", 0),
                        backend=backend,
                        channels_last={"auto": None, "channels-last": True,
                                       "channels-first": False}[getattr(a, "layout", "auto")])


#: flag -> (attribute, smallest value) of the integer flags
_INT_FLAGS = {"--epochs": ("epochs", 1), "--batch-size": ("batch_size", 1),
              "--samples": ("samples", 10), "--seq-len": ("seq_len", 10),
              "--features": ("features", 1), "--rnn-hidden": ("rnn_hidden", 1),
              "--threads": ("threads", 1), "--seed": ("seed", 0)}

#: why a smallest value is what it is, where that is not obvious
_WHY = {"--seq-len": " (each tower's two conv(3)+pool(2) blocks need 10 steps)",
        "--samples": " (10 % of them validate and 10 % test)"}

#: below this many validation or test samples the metrics get a warning
_FEW = 50

def _check_flags(a) -> None:
    """One line per bad flag value, naming the flag (the first one found)."""
    for flag, (attr, lo) in _INT_FLAGS.items():
        value = getattr(a, attr, None)
        if value is not None and value < lo:
            raise CLIError(f"{flag} must be an integer >= {lo}, got {value}{_WHY.get(flag, '')}")
    lr = getattr(a, "lr", None)
    if lr is not None and not (np.isfinite(lr) and lr > 0):
        raise CLIError(f"--lr must be a positive finite number, got {lr}")
    noise = getattr(a, "noise", None)
    if noise is not None and not (np.isfinite(noise) and noise >= 0):
        raise CLIError(f"--noise must be a finite number >= 0, got {noise}")
    rel = getattr(a, "relatedness", None)
    if rel is not None and not 0 <= rel <= 1:
        raise CLIError(f"--relatedness must lie in [0, 1], got {rel}")


def cmd_train(a) -> int:
    _check_flags(a)
    created = prepare_out(a)
    try:
        return _train(a)
    except BaseException:
        run_file = os.path.join(a.out, "run.json")
        if not a.resume and os.path.exists(run_file) and \
                not os.path.exists(os.path.join(a.out, "checkpoint.npz")):
            os.remove(run_file)            # no epoch finished: nothing to resume
        remove_empty(created)             # a failed run leaves no empty folder
        raise


def _train(a) -> int:
    from . import data as D
    from .backend import check_backend
    from .optim import Adam
    from .train import evaluate, fit

    backend = _fastest_backend() if a.backend == "auto" else a.backend
    if a.threads is not None:
        from .backend import set_num_threads

        set_num_threads(a.threads)
    if a.malloc_tuned:
        from .malloc import tune_malloc

        tune_malloc(True)  # reuse freed activation buffers instead of re-faulting pages
    try:
        check_backend(backend)
    except RuntimeError as e:
        raise CLIError(str(e)) from None
    if a.data:
        full = D.load_npz(a.data)
    else:
        kw = {k: v for k, v in (("noise", a.noise), ("relatedness", a.relatedness))
              if v is not None}
        full = D.make_synthetic(samples=a.samples, seq_len=a.seq_len, features=a.features,
                                seed=a.seed, **kw)
    if (full.seq_len, full.features) != (a.seq_len, a.features):
        a.seq_len, a.features = full.seq_len, full.features
    train, val, test = D.train_val_test_split(full, val_fraction=0.1, test_fraction=0.1,
                                              seed=a.seed)
    source = f"the --data file ({a.data})" if a.data else "--samples"
    if len(val) == 0 or len(test) == 0:
        raise CLIError(f"{len(full)} samples from {source} leave no validation or test "
                       f"samples (10 % each): at least 10 are needed, and many more for "
                       f"meaningful metrics")
    if min(len(val), len(test)) < _FEW:
        print(f"warning: only {len(val)} validation and {len(test)} test samples (from "
              f"{len(full)}): accuracies move in steps of 1/{min(len(val), len(test))} and "
              f"an AUC is n/a where a split holds one class only; use more samples",
              file=sys.stderr)
    from .objectives import objective

    try:
        objective(a.goods_head).check_targets("goods", full.targets["goods"])
    except ValueError as e:
        raise CLIError(f"--goods-head {a.goods_head}: {e}") from None
    steps = tuple(s for s in a.preprocess.split(",") if s)
    prep = D.Preprocessor(steps=steps).fit(train)
    train, val, test = prep.transform(train), prep.transform(val), prep.transform(test)

    model = _build_model(a, backend)
    ckpt = os.path.join(a.out, "checkpoint.npz")
    out = None if a.quiet else sys.stdout
    if out:
        print(model.summary())
        print(f"backend {backend}; {len(train)} train / {len(val)} val / {len(test)} test "
              f"samples; preprocessing: {', '.join(steps) or 'none'} (fitted on train)")
    optimizer = Adam(list(model.parameters()), lr=a.lr)
    start_run(a)
    t0 = time.perf_counter()
    history = fit(model, train, val, optimizer=optimizer, epochs=a.epochs,
                  batch_size=a.batch_size, seed=a.seed, checkpoint=ckpt, resume=a.resume,
                  stream=out, extra={f"prep/{k}": v for k, v in prep.state().items()})
    wall = time.perf_counter() - t0
    history.save(os.path.join(a.out, "history.json"))
    metrics = evaluate(model, test)
    best = full.meta.get("best_accuracy", {})
    chance = full.meta.get("chance_accuracy", {})
    print(f"\nTest set ({len(test)} samples), after {len(history.epochs)} epochs "
          f"in {wall:.1f} s:")
    print(_test_table(model, metrics, best, chance))
    fw = model.fusion_weights()
    if fw:
        print("  learned fusion weights (rows: task head; columns: user, goods, ads features):")
        for t, row in fw.items():
            print(f"    {t:<6} " + "  ".join(f"{s}={w:.3f}" for s, w in row.items()))
    write_json(os.path.join(a.out, "test_metrics.json"),
                {"test": metrics, "best_accuracy": best, "chance_accuracy": chance,
                 "wall_s": wall, "backend": backend, "fusion_weights": fw})
    plotted = plot_curves(history, os.path.join(a.out, "curves.png"), best)
    write_json(os.path.join(a.out, "run.json"),
                {"command": "train", "settings": {k: getattr(a, k) for k in RUN_SETTINGS},
                 "finished": True, "epochs": len(history.epochs)})
    print(f"wrote {ckpt}, {os.path.join(a.out, 'history.json')}"
          + (f", {os.path.join(a.out, 'curves.png')}" if plotted else
             " (install the 'plot' extra for curves.png)"))
    return 0


def _test_table(model, metrics: dict[str, float], best: dict, chance: dict) -> str:
    """The test set's per-task table: loss, then accuracy and AUC (classification) or RMSE
    and MAE (regression), and the best achievable and chance accuracies where the data
    knows them (synthetic data)."""
    width = max(6, *(len(t) for t in model.task_names))

    def num(key: str, digits: int = 4) -> str:
        v = metrics.get(key)
        return "-" if v is None else ("n/a" if not np.isfinite(v) else f"{v:.{digits}f}")

    lines = [f"  {'task':<{width}} {'loss':>7} {'accuracy':>9} {'AUC':>6}  "
             f"{'best achievable':>15}  {'chance':>6}"]
    for t in model.tasks:
        n = t.name
        if t.objective.has_accuracy:
            scores = f"{num(f'{n}_accuracy'):>9} {num(f'{n}_auc', 3):>6}"
        else:
            scores = f"{'rmse ' + num(f'{n}_rmse'):>16}"
        b, c = best.get(n), chance.get(n)
        lines.append(f"  {n:<{width}} {metrics[f'{n}_loss']:7.4f} {scores}  "
                     f"{(f'{b:.4f}' if b is not None else '-'):>15}  "
                     f"{(f'{c:.3f}' if c is not None else '-'):>6}")
    return "\n".join(lines)


def cmd_summary(a) -> int:
    _check_flags(a)
    print(_build_model(a, "numpy").summary())
    return 0


def cmd_gradcheck(a) -> int:
    from .backend import available_backends
    from .gradcheck import gradcheck
    from .opcases import CASES, HEAVY
    from .tensor import Tensor

    if a.list:
        print("\n".join(CASES))
        return 0
    names = a.ops or list(CASES)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        raise CLIError(f"unknown operator case(s) {', '.join(unknown)}; see --list")
    backends = a.backend or available_backends()
    failures = 0
    print(f"{'operator':<28} {'backend':<7} {'result':<6} {'time':>8}")
    for name in names:
        fn, make = CASES[name]
        for backend in (backends if name in HEAVY else ["numpy"]):
            xs = [Tensor(v, backend=backend, requires_grad=True)
                  for v in make(np.random.default_rng(7))]
            t0 = time.perf_counter()
            try:
                ok = gradcheck(fn, xs)
                note = ""
            except AssertionError as e:
                ok, note = False, str(e).splitlines()[0]
            failures += not ok
            print(f"{name:<28} {backend:<7} {'ok' if ok else 'FAIL':<6} "
                  f"{(time.perf_counter() - t0) * 1e3:6.0f}ms {note}")
    print(f"{failures} failure(s)")
    return 1 if failures else 0


def cmd_info(a) -> int:
    from . import __version__
    from .backend import BACKENDS, available

    print(f"minimtl {__version__}, Python {platform.python_version()}, "
          f"{platform.machine()}, {os.cpu_count()} CPUs")
    print(f"numpy {np.__version__}")
    for name in BACKENDS:
        print(f"backend {name:<6} {'available' if available(name) else 'not available'}")
    try:
        import numba

        print(f"numba {numba.__version__}, threads {numba.config.NUMBA_NUM_THREADS}")
    except ImportError:
        print("numba not installed")
    if available("cupy"):
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(0)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        print(f"cupy {cupy.__version__}, GPU 0: {name}, "
              f"{props['totalGlobalMem'] / 2**30:.0f} GiB, CUDA runtime "
              f"{cupy.cuda.runtime.runtimeGetVersion()}")
    else:
        print("GPU: none usable (cupy missing, or no CUDA device)")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:
        # the runner parses its own options (argparse.REMAINDER would stop at a leading
        # option such as --quick)
        from . import bench

        return bench.main(argv[1:])
    parser = build_parser()
    a, unknown = parser.parse_known_args(argv)
    if unknown:                # the command's own usage, not the top level's
        a.parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    commands = {"train": cmd_train, "summary": cmd_summary, "gradcheck": cmd_gradcheck,
                "info": cmd_info}
    try:
        return commands[a.command](a)
    except KeyboardInterrupt as e:
        print(f"\nminimtl: {e or 'interrupted'}", file=sys.stderr)
        return 130
    except (CLIError, ValueError, TypeError, RuntimeError, OSError) as e:
        if os.environ.get("MINIMTL_DEBUG"):
            raise
        print(f"minimtl: error: {e}", file=sys.stderr)
        return 2
    except MemoryError as e:
        if os.environ.get("MINIMTL_DEBUG"):
            raise
        print(f"minimtl: error: out of memory ({e or 'no detail'}); use fewer --samples, a "
              f"smaller --batch-size or a smaller model", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
