"""The ``minimtl`` command: train, profile, summary, gradcheck, bench, info.

    minimtl train                 # the article's setup on the built-in synthetic data
    minimtl train --extractor cnn+rnn --rnn gru --fusion weighted --epochs 5
    minimtl train --data census --model mmoe      # any multi-task problem (README)
    minimtl graph                 # the article's network's autograd graph (DOT, SVG)
    minimtl profile --batch-size 256   # where a training step's time goes (table, trace)
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

from .experiments import EXPERIMENTS
from .runfolder import CLIError
from .trainrun import MODELS, build_model, cmd_profile, cmd_summary, cmd_train

__all__ = ["main", "build_parser"]


def _floats(text: str) -> tuple[float, ...]:
    """``--correlations``: comma-separated numbers in [-1, 1]."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"want comma-separated numbers, got {text!r}") from None
    bad = [v for v in values if not -1 <= v <= 1]
    if bad:
        raise argparse.ArgumentTypeError(f"each p must lie in [-1, 1], got {bad[0]:g}")
    return values


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


def _train_args(t: argparse.ArgumentParser, run: bool = True) -> None:
    """The options of ``train``: the data, the model, the backend (and with ``run`` the
    run's own: epochs, output folder, resume); ``profile`` takes all but the run's."""
    _model_args(t)
    t.add_argument("--backend", choices=("auto", "numpy", "numba", "cupy"), default="auto",
                   help="auto = fastest available (cupy > numba > numpy)")
    t.add_argument("--layout", choices=("auto", "channels-last", "channels-first"),
                   default="auto", help="the towers' activation layout (auto: channels-last "
                   "on the CPU, channels-first on the GPU); it changes speed, not results")
    if run:
        t.add_argument("--epochs", type=int, default=10)
        t.add_argument("--cuda-graph", action="store_true",
                       help="cupy backend: capture each step once per batch shape as a CUDA "
                       "graph and replay it (falls back to eager steps, saying why, where "
                       "capture fails)")
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (1e-3)")
    t.add_argument("--samples", type=int, default=2400, help="synthetic samples (2400)")
    t.add_argument("--noise", type=float, default=None, help="synthetic noise level")
    t.add_argument("--relatedness", type=float, default=None,
                   help="how often the ad click follows the user's interest, in [0, 1]")
    t.add_argument("--data", default=None, help="article (default: the built-in synthetic "
                   "sequences), census, mmoe-synthetic, or FILE.npz (the README's schemas)")
    t.add_argument("--model", choices=MODELS, default="auto",
                   help="article: the article's network; or an architecture over the "
                   "encoded inputs (auto: article on sequence data, else mmoe)")
    t.add_argument("--census-group", type=int, choices=(1, 2), default=1,
                   help="census tasks: 1 income+marital, 2 education+marital")
    t.add_argument("--census-rows", type=int, default=None,
                   help="read only each census file's first rows (quick runs)")
    t.add_argument("--correlation", type=float, default=0.5,
                   help="mmoe-synthetic: the tasks' correlation p in [-1, 1] (0.5)")
    for flag, what in (("--experts", "experts of omoe/mmoe (8)"),
                       ("--expert-units", "units per expert (16)"),
                       ("--tower-units", "units of each task tower (8)"),
                       ("--bottom-units", "shared-bottom/single-task bottom width (16)"),
                       ("--levels", "ple extraction levels (2)")):
        t.add_argument(flag, type=int, default=None, help=what)
    t.add_argument("--categorical", choices=("onehot", "embedding"), default="onehot",
                   help="how categorical columns are encoded (onehot)")
    t.add_argument("--weighting", choices=("fixed", "uncertainty", "gradnorm", "dwa"),
                   default="fixed", help="how the task losses are weighed: the declared "
                   "weights, uncertainty (Kendall 2018), GradNorm (Chen 2018), DWA (Liu 2019)")
    t.add_argument("--gradnorm-alpha", type=float, default=1.5,
                   help="GradNorm's asymmetry alpha (1.5)")
    t.add_argument("--pcgrad", action="store_true", help="PCGrad (Yu 2020): project "
                   "conflicting task gradients on the shared parameters")
    t.add_argument("--conflict", type=int, nargs="?", const=20, default=0, metavar="N",
                   help="measure the tasks' gradient cosines on the shared parameters every "
                   "N steps (--conflict alone: every 20; 0: off); in the epoch line, "
                   "history.json and balance.png")
    t.add_argument("--conflict-on", choices=("shared", "last"), default="shared",
                   help="measure on every shared parameter (shared: about K backward "
                   "passes a measured step) or on the last shared layer only (last: K "
                   "short walks to it)")
    t.add_argument("--output-bias", choices=("zero", "prior"), default="zero",
                   help="the heads' initial biases: zero (Keras's default) or prior, from "
                   "the training targets (each label's log-odds, the log class frequencies, "
                   "the mean), so that no first step pushes a rare label's tower to zero")
    t.add_argument("--preprocess", default="denoise,standardize",
                   help="comma-separated steps: denoise, standardize, minmax ('' for none)")
    t.add_argument("--seed", type=int, default=0)
    if run:
        t.add_argument("--out", default="runs/seed", help="output folder (runs/seed)")
        t.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz "
                       "(the run's settings must be the same; see OUT/run.json)")
        t.add_argument("--overwrite", action="store_true",
                       help="replace a run that OUT already holds (refused otherwise)")
        t.add_argument("--quiet", action="store_true", help="no summary or progress")
    t.add_argument("--threads", type=int, default=None,
                   help="CPU threads for the kernels and BLAS (default: all cores, shared "
                   "out among the ranks of a node under mpiexec); 1 or 2 "
                   "fewer than the cores when other work runs on the machine")
    t.add_argument("--timeout", type=float, default=120.0, help="under mpiexec: seconds a "
                   "rank waits for the others before it names the ones that do not answer")
    t.add_argument("--no-malloc-tuned", dest="malloc_tuned", action="store_false",
                   help="keep glibc's default allocator thresholds (see benchmarks/NOTES.md)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minimtl", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train the multi-task network on synthetic data")
    _train_args(t)
    t.set_defaults(parser=t)
    pr = sub.add_parser("profile", help="profile a few training steps of train's model and "
                        "data: a per-op table, a Chrome trace and a PNG")
    _train_args(pr, run=False)
    pr.add_argument("--steps", type=int, default=5, help="steps profiled (5)")
    pr.add_argument("--warmup", type=int, default=2,
                    help="steps run first, not profiled (compilation, caches) (2)")
    pr.add_argument("--out", default="runs/profile",
                    help="folder for trace.json and profile.png (runs/profile)")
    pr.set_defaults(parser=pr)
    s = sub.add_parser("summary", help="print the network's layer table")
    _model_args(s)
    s.set_defaults(parser=s)

    g = sub.add_parser("gradcheck", help="gradient-check operators on every backend")
    g.add_argument("ops", nargs="*", help="operator names (default: all); see --list")
    g.add_argument("--list", action="store_true", help="list the operator cases")
    g.add_argument("--backend", action="append", help="restrict to these backends")
    g.set_defaults(parser=g)

    sub.add_parser("bench", help="kernel and training-step benchmarks (minimtl bench --help)")

    e = sub.add_parser("experiment", help="the MMoE paper's experiments and the task "
                       "balancing ones: " + ", ".join(EXPERIMENTS) + " (tables, JSON, "
                       "pictures)")
    e.add_argument("name", choices=EXPERIMENTS)
    e.add_argument("--seeds", type=int, default=3, help="seeds per setting (3)")
    e.add_argument("--epochs", type=int, default=None,
                   help="epochs per run (mmoe-synthetic 30, census 10)")
    e.add_argument("--group", type=int, choices=(1, 2), default=1, help="census task group")
    e.add_argument("--rows", type=int, default=None,
                   help="census: each file's first rows only (quick runs)")
    e.add_argument("--models", default=None, help="census: comma-separated architectures")
    e.add_argument("--correlations", default=None, type=_floats,
                   help="balancing-conflict: comma-separated values of p "
                        "(-1,-0.9,-0.5,0,0.5,0.9,1)")
    e.add_argument("--output-bias", choices=("zero", "prior"), default="zero",
                   help="balancing-census, balancing-article: the heads' initial biases "
                   "(as minimtl train --output-bias)")
    e.add_argument("--backend", choices=("auto", "numpy", "numba"), default="auto")
    e.add_argument("--out", default=None, help="output folder (runs/experiment-NAME)")
    e.set_defaults(parser=e)

    gr = sub.add_parser("graph", help="the article's network's autograd graph (DOT, SVG)")
    _model_args(gr)
    gr.add_argument("--out", default="graph.dot", help="DOT file to write (graph.dot); an "
                    "SVG beside it when Graphviz is installed")
    gr.set_defaults(parser=gr)

    i = sub.add_parser("info", help="versions, available backends, GPU")
    i.set_defaults(parser=i)
    return parser


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


def cmd_experiment(a) -> int:
    from .experiments import run

    for flag, value in (("--seeds", a.seeds), ("--epochs", a.epochs), ("--rows", a.rows)):
        if value is not None and value < 1:
            raise CLIError(f"{flag} must be an integer >= 1, got {value}")
    return run(a)


def cmd_graph(a) -> int:
    """One training step's graph of the article's network (batch 2), as DOT text."""
    from . import viz
    from .data import make_synthetic
    from .train import to_tensors

    model = build_model(a, "numpy")
    ds = make_synthetic(samples=2, seq_len=a.seq_len, features=a.features, seed=0)
    x, y = to_tensors(model, ds.inputs, ds.targets)
    loss = model.total_loss(model.losses(model(x), y))
    dot = viz.graph(loss, model=model, title=model.summary_title().split(" ", 1)[1])
    from .checkpoint import atomic_write

    atomic_write(a.out, lambda f: f.write(dot), binary=False)
    print(f"wrote {a.out} ({dot.count(' -> ')} edges)")
    try:
        svg = viz.render(dot, os.path.splitext(a.out)[0] + ".svg")
        print(f"wrote {svg}")
    except viz.RenderError as e:
        print(str(e).replace("render: ", "no SVG: "))
    return 0


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
                "info": cmd_info, "graph": cmd_graph, "experiment": cmd_experiment,
                "profile": cmd_profile}
    try:
        return commands[a.command](a)
    except KeyboardInterrupt as e:
        print(f"\nminimtl: {e or 'interrupted'}", file=sys.stderr)
        return 130
    except (CLIError, ValueError, TypeError, RuntimeError, OSError) as e:
        if os.environ.get("MINIMTL_DEBUG"):
            raise
        dist = getattr(a, "dist", None)
        rank = f" (rank {dist.rank} of {dist.size})" if dist is not None else ""
        print(f"minimtl: error{rank}: {e}", file=sys.stderr)
        if dist is not None:
            dist.leave(2)         # collectives may be in flight: no MPI_Finalize
        return 2
    except MemoryError as e:
        if os.environ.get("MINIMTL_DEBUG"):
            raise
        print(f"minimtl: error: out of memory ({e or 'no detail'}); use fewer --samples, a "
              f"smaller --batch-size or a smaller model", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
