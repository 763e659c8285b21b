"""The ``minimtl bench`` command: its options, their defaults (some depend on ``--quick``
and on the machine), and ``main``, which runs the benchmarks or one of the side jobs
(``--summary``, ``--add-keras``, a probe child)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .machine import cores
from .probe import probe_child
from .progress import log
from .report import summary, to_markdown
from .results import add_keras
from .runner import run

__all__ = ["DESCRIPTION", "build_parser", "main"]

DESCRIPTION = ("Benchmark runner: every kernel, the whole training step, PyTorch in the same "
               "process.")


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="minimtl bench", description=DESCRIPTION)
    a = p.add_argument
    a("--out", default=str(Path("benchmarks") / "results"), help="output folder")
    a("--name", default=None, help="file name stem (default: cpu-<cores>core, or the "
      "GPU's name with --gpu-only)")
    a("--batches", type=_ints, default=[32, 256, 1024], help="CPU batch sizes (32,256,1024)")
    a("--gpu-batches", type=_ints, default=[32, 256, 4096],
      help="GPU batch sizes (32,256,4096)")
    a("--seq-len", type=int, default=64, help="sequence length (64)")
    a("--features", type=int, default=32, help="features per step (32)")
    a("--ops", default=None, help="comma-separated operators (default: all of kernels.OPS)")
    a("--backends", default=None,
      help="comma-separated minimtl backends (default: every available one)")
    a("--threads", type=int, default=None,
      help="threads for Numba and torch (default: the CPU cores this process may use)")
    a("--repeats", type=int, default=None, help="timed kernel calls (20)")
    a("--warmup", type=int, default=None, help="warm-up kernel calls (3)")
    a("--budget", type=float, default=None,
      help="stop a kernel measurement after this many seconds of samples (2)")
    a("--step-repeats", type=int, default=None, help="timed training steps (60)")
    a("--step-warmup", type=int, default=None, help="warm-up training steps (10)")
    a("--reference-repeats", type=int, default=None,
      help="timed steps on the slow numpy reference backend (10)")
    a("--no-kernels", dest="kernels", action="store_false", help="skip the kernels")
    a("--no-step", dest="step", action="store_false", help="skip the training step")
    a("--no-torch", action="store_true", help="do not time PyTorch")
    a("--gpu-only", action="store_true", help="only the cupy backend and torch on CUDA")
    a("--quick", action="store_true", help="one repeat, no warm-up, small matmul (smoke)")
    a("--keras-ms-32", type=float, default=None,
      help="Keras ms/step at batch 32, measured with the Keras reference script")
    a("--keras-ms-256", type=float, default=None, help="the same at batch 256")
    a("--keras-ms-1024", type=float, default=None, help="the same at batch 1024")
    a("--memory-steps", type=int, default=0,
      help="run this many steps at batch 32 and record resident memory (0: off)")
    a("--memory-every", type=int, default=100, help="record memory every this many steps")
    a("--malloc-tuned", action=argparse.BooleanOptionalAction, default=True,
      help="raise glibc's mmap/trim thresholds for the whole process (default on)")
    a("--numba-cold", action="store_true",
      help="compile Numba kernels into a fresh cache folder, so first calls are compiles")
    a("--matmul-n", type=int, default=None, help="matmul peak size on the CPU (2048)")
    a("--copy-mib", type=int, default=None, help="GPU copy size in MiB (1024)")
    a("--probe", action=argparse.BooleanOptionalAction, default=None,
      help="call each kernel and step once in a child process first, so one that crashes "
      "its process is skipped (default: numba and cupy; --probe: numpy too)")
    a("--probe-timeout", type=float, default=600.0, help="seconds a probe child may take")
    a("--probe-child", default=None, help=argparse.SUPPRESS)
    a("--probe-items", default="", help=argparse.SUPPRESS)
    a("--plot", metavar="JSON", nargs="?", const="", default=None,
      help="write PNG charts (kernels against PyTorch, the step per batch size, a roofline) "
      "next to the results; with a results file, chart that one and exit")
    a("--summary", metavar="JSON", default=None,
      help="print the short summary of an earlier results file and exit")
    a("--add-keras", metavar="JSON", default=None,
      help="put the Keras times given by --keras-ms-32/-256/-1024 (measured by the "
      "reference script in the same sitting) next to an earlier results file's steps, "
      "rewrite its .json and .md, and exit")
    return p



def _resolve(cfg: argparse.Namespace) -> argparse.Namespace:
    """Fill defaults that depend on --quick and on the machine; validate names."""
    import kernels

    quick = cfg.quick
    for name, normal, fast in (("repeats", 20, 1), ("warmup", 3, 0), ("budget", 2.0, 2.0),
                               ("step_repeats", 60, 1), ("step_warmup", 10, 0),
                               ("reference_repeats", 10, 1), ("matmul_n", 2048, 256),
                               ("copy_mib", 1024, 64)):
        if getattr(cfg, name) is None:
            setattr(cfg, name, fast if quick else normal)
    cfg.threads = cfg.threads or cores()
    ops = cfg.ops.split(",") if cfg.ops else list(kernels.OPS)
    unknown = [o for o in ops if o not in kernels.OPS]
    if unknown:
        raise ValueError(f"unknown operator(s) {', '.join(unknown)}; known: "
                         f"{', '.join(kernels.OPS)}")
    cfg.ops = ops
    if cfg.gpu_only:
        cfg.backends = ["cupy"]
    elif cfg.backends:
        cfg.backends = cfg.backends.split(",")
        bad = [b for b in cfg.backends if b not in ("numpy", "numba", "cupy")]
        if bad:
            raise ValueError(f"unknown backend(s) {', '.join(bad)}")
    else:
        from ..backend import available_backends

        cfg.backends = available_backends()
    if cfg.seq_len < 10 or cfg.features < 1:
        raise ValueError("--seq-len must be >= 10 (two conv(3)+pool(2) blocks) and "
                         "--features >= 1")
    return cfg



def _plot_results(results: dict, out: str) -> int:
    from .charts import plot

    paths = plot(results, out)
    if not paths:
        log("--plot: nothing drawn (install the 'plot' extra for matplotlib)")
        return 1
    log("wrote " + ", ".join(paths))
    return 0


def _plot(path: str, out: str) -> int:
    with open(path) as f:
        return _plot_results(json.load(f), out)


def main(argv: list[str] | None = None) -> int:
    """``minimtl bench ARGS``: run the benchmarks, write ``<out>/<name>.json`` and ``.md``,
    print the tables. Returns the exit status (0, or 2 for bad arguments)."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--"]:          # ``minimtl bench -- --quick``: the CLI passes "--" on
        argv = argv[1:]
    cfg = parser.parse_args(argv)
    if cfg.summary:
        with open(cfg.summary) as f:
            print(summary(json.load(f)))
        return 0
    if cfg.plot:
        return _plot(cfg.plot, str(Path(cfg.plot).parent))
    if cfg.add_keras:
        print(summary(add_keras(cfg.add_keras, cfg)))
        return 0
    if cfg.probe_child:
        return probe_child(cfg)
    try:
        cfg = _resolve(cfg)
    except ValueError as e:
        parser.print_usage(sys.stderr)
        print(f"minimtl bench: error: {e}", file=sys.stderr)
        return 2
    r = run(cfg)
    print(to_markdown(r))
    log(f"wrote {Path(cfg.out) / r['name']}.json and .md in {r['wall_s']:.0f} s")
    if cfg.plot is not None:
        _plot_results(r, cfg.out)
    if cfg.gpu_only and "gpu" not in r:
        log("--gpu-only: no usable GPU (cupy and a CUDA device are needed)")
        return 1
    return 0
