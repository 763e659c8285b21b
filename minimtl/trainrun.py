"""``minimtl train``, ``minimtl profile`` and ``minimtl summary``: a data source, a model,
``fit``, the test table and the run's files; or a few of the same training steps profiled.

    minimtl train                                   # the article's network on its data
    minimtl train --data census --model mmoe        # census-income, group 1
    minimtl train --data mmoe-synthetic --correlation 0.5 --model omoe
    minimtl train --data mine.npz --model ple       # your own tasks (README)
    minimtl profile --batch-size 256 --steps 5      # the per-op table, trace.json, PNG
"""

from __future__ import annotations

import contextlib
import os
import sys
import time

import numpy as np

from .plot import plot_balance, plot_curves
from .runfolder import RUN_SETTINGS, CLIError, prepare_out, remove_empty, start_run, write_json

__all__ = ["cmd_train", "cmd_profile", "cmd_summary", "MODELS", "build_model"]

#: ``--model`` choices: the article's network, or an architecture over encoded inputs
MODELS = ("auto", "article", "single-task", "shared-bottom", "omoe", "mmoe", "cgc", "ple")

#: flag -> (attribute, smallest value) of the integer flags
_INT_FLAGS = {"--epochs": ("epochs", 1), "--batch-size": ("batch_size", 1),
              "--samples": ("samples", 10), "--seq-len": ("seq_len", 10),
              "--features": ("features", 1), "--rnn-hidden": ("rnn_hidden", 1),
              "--threads": ("threads", 1), "--seed": ("seed", 0),
              "--experts": ("experts", 1), "--expert-units": ("expert_units", 1),
              "--tower-units": ("tower_units", 1), "--bottom-units": ("bottom_units", 1),
              "--levels": ("levels", 1), "--census-rows": ("census_rows", 20),
              "--conflict": ("conflict", 0), "--steps": ("steps", 1),
              "--warmup": ("warmup", 0)}

#: why a smallest value is what it is, where that is not obvious
_WHY = {"--seq-len": " (each tower's two conv(3)+pool(2) blocks need 10 steps)",
        "--samples": " (10 % of them validate and 10 % test)",
        "--census-rows": " (each file's first rows; the test file is halved)"}

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
    alpha = getattr(a, "gradnorm_alpha", None)
    if alpha is not None and not (np.isfinite(alpha) and alpha >= 0):
        raise CLIError(f"--gradnorm-alpha must be a finite number >= 0, got {alpha}")
    timeout = getattr(a, "timeout", None)
    if timeout is not None and not (np.isfinite(timeout) and timeout > 0):
        raise CLIError(f"--timeout must be a positive finite number of seconds, got {timeout}")
    p = getattr(a, "correlation", None)
    if p is not None and not -1 <= p <= 1:
        raise CLIError(f"--correlation must lie in [-1, 1], got {p}")
    if getattr(a, "cuda_graph", False) and (
            getattr(a, "weighting", "fixed") not in (None, "fixed") or getattr(a, "pcgrad", False)
            or getattr(a, "conflict", 0)):
        raise CLIError("--cuda-graph trains with the plain backward: it cannot go with "
                       "--weighting, --pcgrad or --conflict")


def _sizes(a, architecture: str) -> dict[str, int]:
    """The architecture's size flags that apply to it."""
    names = {"single-task": ("bottom_units", "tower_units"),
             "shared-bottom": ("bottom_units", "tower_units"),
             "omoe": ("experts", "expert_units", "tower_units"),
             "mmoe": ("experts", "expert_units", "tower_units"),
             "cgc": ("expert_units", "tower_units"),
             "ple": ("levels", "expert_units", "tower_units")}[architecture]
    return {k: getattr(a, k) for k in names if getattr(a, k, None) is not None}


def _article_model(a, backend: str, tasks=None, inputs=None):
    from .data import TASKS
    from .models import MultiTaskNet

    kw = dict(tasks=tasks, inputs=inputs or TASKS) if tasks is not None else \
        dict(heads={"goods": a.goods_head})
    return MultiTaskNet(a.seq_len, a.features, extractor=a.extractor, rnn=a.rnn,
                        rnn_hidden=a.rnn_hidden, sharing=a.sharing, fusion=a.fusion,
                        seed=getattr(a, "seed", 0), backend=backend,
                        channels_last={"auto": None, "channels-last": True,
                                       "channels-first": False}[getattr(a, "layout", "auto")],
                        **kw)


def build_model(a, backend: str, source=None):
    """The model ``--model`` names for ``source`` (None: the article's network from the
    flags alone). ``auto`` is the article's network on sequence data, MMoE otherwise."""
    if source is None:
        return _article_model(a, backend)
    choice = getattr(a, "model", "auto")
    if choice == "auto":
        choice = "article" if source.sequences_only else "mmoe"
    if choice == "article":
        if not source.sequences_only:
            kinds = ", ".join(f"{k} ({v})" for k, v in source.inputs.items())
            raise CLIError(f"--model article reads sequence inputs (N, L, F) of one shape; "
                           f"the data has {kinds}: choose --model {'|'.join(MODELS[2:])}")
        ((a.seq_len, a.features),) = set(source.shapes.values())
        article = [(t.name, t.kind, t.outputs) for t in source.tasks] == [
            ("user", "multiclass", 10), ("goods", _kind(a.goods_head), 10),
            ("ads", "multiclass", 10)]
        if article and tuple(source.inputs) == ("user", "goods", "ads"):
            return _article_model(a, backend)    # the article's own configuration
        return _article_model(a, backend, source.tasks, tuple(source.inputs))
    from .models.network import MultiTaskNetwork

    return MultiTaskNetwork(source.inputs, source.shapes, source.tasks, architecture=choice,
                            vocab=source.vocab, categorical=a.categorical, seed=a.seed,
                            backend=backend, **_sizes(a, choice))


def _kind(head: str) -> str:
    from .objectives import objective

    return objective(head).kind


def _balancer(a, model):
    """The --weighting / --pcgrad / --conflict Balancer, or None when all are off."""
    from .train import Balancer

    kw = {"alpha": a.gradnorm_alpha} if a.weighting == "gradnorm" else {}
    balancer = Balancer(model, a.weighting, pcgrad=a.pcgrad, conflict_every=a.conflict,
                        conflict_on=a.conflict_on, seed=a.seed, **kw)
    return balancer if balancer.active else None


def _group(a):
    """The data-parallel ranks when ``mpiexec`` started several (``minimtl.distributed``),
    else None. On the cupy backend the gradients travel by NCCL, on the device."""
    from .distributed import launched_size, mpi_available

    if launched_size() < 2:
        return None
    ok, why = mpi_available()
    if not ok:
        raise CLIError(f"mpiexec started {launched_size()} ranks, but {why}")
    from .distributed import ProcessGroup

    dist = ProcessGroup(timeout=a.timeout)
    if a.backend == "cupy":
        from .distributed.nccl import NcclTransport

        dist.transport = NcclTransport(dist)
    return dist


def cmd_train(a) -> int:
    _check_flags(a)
    dist = a.dist = _group(a)
    if dist is not None and not dist.is_root:     # computes its shard, prints and writes
        with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
            try:
                return _train(a)
            except BaseException as e:
                dist.notify_failure(e)
                raise
    try:
        created = prepare_out(a)
    except BaseException as e:
        if dist is not None:
            dist.notify_failure(e)
        raise
    try:
        return _train(a)
    except BaseException as e:
        if dist is not None:
            dist.notify_failure(e)
        run_file = os.path.join(a.out, "run.json")
        if not a.resume and os.path.exists(run_file) and \
                not os.path.exists(os.path.join(a.out, "checkpoint.npz")):
            os.remove(run_file)            # no epoch finished: nothing to resume
        remove_empty(created)             # a failed run leaves no empty folder
        raise


def _backend(a) -> str:
    from .backend import available, check_backend

    backend = a.backend
    if backend == "auto":
        backend = next((b for b in ("cupy", "numba") if available(b)), "numpy")
    threads = a.threads
    if threads is None:
        # all cores this process may use, shared out among the ranks of one node (threads
        # that wait by spinning would fight); numba may have started with fewer
        from .threads import cores

        ranks = a.dist.local_size if getattr(a, "dist", None) is not None else 1
        threads = max(1, cores() // ranks)
        if available("numba"):
            import numba

            threads = min(threads, numba.config.NUMBA_NUM_THREADS)
    from .threads import chunked_for, set_num_threads

    set_num_threads(threads, chunks=chunked_for(getattr(a, "batch_size", 32)))
    if a.malloc_tuned:
        from .malloc import tune_malloc

        tune_malloc(True)  # reuse freed activation buffers instead of re-faulting pages
    try:
        check_backend(backend)
    except RuntimeError as e:
        raise CLIError(str(e)) from None
    return backend


def _source(a):
    """The --data source, checked: enough validation and test samples, targets that fit."""
    from .sources import load_source

    spec = a.data or "article"
    synthetic = {k: v for k, v in (("noise", a.noise), ("relatedness", a.relatedness))
                 if v is not None}
    try:
        src = load_source(spec, seed=a.seed, goods_head=a.goods_head, samples=a.samples,
                          seq_len=a.seq_len, features=a.features, synthetic=synthetic,
                          census_group=a.census_group, census_rows=a.census_rows,
                          correlation=a.correlation)
    except FileNotFoundError as e:
        raise CLIError(f"--data {spec}: {e}") from None
    n = len(src.train) + len(src.val) + len(src.test)
    what = {"article": "--samples", "census": "the census files",
            "mmoe-synthetic": "the generator"}.get(spec, f"the --data file ({spec})")
    if len(src.val) == 0 or len(src.test) == 0:
        raise CLIError(f"{n} samples from {what} leave no validation or test samples (10 % "
                       f"each): at least 10 are needed, and many more for meaningful metrics")
    if min(len(src.val), len(src.test)) < _FEW and _root(a):
        print(f"warning: only {len(src.val)} validation and {len(src.test)} test samples "
              f"(from {n}): accuracies move in steps of 1/{min(len(src.val), len(src.test))} "
              f"and an AUC is n/a where a split holds one class only; use more samples",
              file=sys.stderr)
    if "goods" in src.train.targets and "tasks" not in src.meta:
        from .objectives import objective

        goods = np.concatenate([d.targets["goods"] for d in (src.train, src.val, src.test)])
        try:
            objective(a.goods_head).check_targets("goods", goods)
        except ValueError as e:
            raise CLIError(f"--goods-head {a.goods_head}: {e}") from None
    return src


def _root(a) -> bool:
    return getattr(a, "dist", None) is None or a.dist.is_root


def _train(a) -> int:
    from . import data as D
    from .optim import Adam
    from .train import evaluate, fit

    backend = _backend(a)
    if getattr(a, "cuda_graph", False) and backend != "cupy":
        raise CLIError(f"--cuda-graph needs the cupy backend (a GPU), not {backend}")
    src = _source(a)
    steps = tuple(s for s in a.preprocess.split(",") if s)
    prep = D.Preprocessor(steps=steps).fit(src.train)
    train, val, test = (prep.transform(d) for d in (src.train, src.val, src.test))
    model = build_model(a, backend, src)
    priors = model.init_output_bias(train.targets) if a.output_bias == "prior" and \
        not a.resume else None
    ckpt = os.path.join(a.out, "checkpoint.npz")
    out = None if a.quiet else sys.stdout
    if out:
        print(model.summary())
        if priors:
            print("output biases from the training targets: " + "; ".join(
                f"{t} " + " ".join(f"{v:+.3f}" for v in b) for t, b in priors.items()))
        applied = ", ".join(steps) if steps and prep.fitted else "none"
        print(f"backend {backend}; {len(train)} train / {len(val)} val / {len(test)} test "
              f"samples; preprocessing: {applied} (fitted on train)")
        if a.dist is not None:
            print(f"data-parallel on {a.dist.size} ranks ("
                  f"{'NCCL' if a.dist.transport else 'MPI'}): each takes its shard of the "
                  f"global batch of {a.batch_size}")
    balancer = _balancer(a, model)
    extra_params = balancer.parameters() if balancer is not None else []
    optimizer = Adam(list(model.parameters()) + extra_params, lr=a.lr,
                     device_step=getattr(a, "cuda_graph", False))
    if _root(a):
        start_run(a)
    t0 = time.perf_counter()
    history = fit(model, train, val, optimizer=optimizer, epochs=a.epochs,
                  batch_size=a.batch_size, seed=a.seed, checkpoint=ckpt, resume=a.resume,
                  stream=out, extra={f"prep/{k}": v for k, v in prep.state().items()},
                  balancer=balancer, dist=a.dist, cuda_graph=getattr(a, "cuda_graph", False))
    wall = time.perf_counter() - t0
    metrics = evaluate(model, test, dist=a.dist)
    if not _root(a):
        return 0
    history.save(os.path.join(a.out, "history.json"))
    gates = model.gate_weights() if hasattr(model, "gate_weights") else None
    best = src.meta.get("best_accuracy", {})
    chance = src.meta.get("chance_accuracy", {})
    print(f"\nTest set ({len(test)} samples), after {len(history.epochs)} epochs "
          f"in {wall:.1f} s:")
    print(_test_table(model, metrics, best, chance))
    fw = model.fusion_weights() if hasattr(model, "fusion_weights") else None
    if fw:
        print("  learned fusion weights (rows: task head; columns: the inputs' features):")
        for t, row in fw.items():
            print(f"    {t:<6} " + "  ".join(f"{s}={w:.3f}" for s, w in row.items()))
    if gates:
        print("  gate utilisation on the test set (mean weight per expert):")
        for g, row in gates.items():
            print(f"    {g:<10} " + " ".join(f"{w:.2f}" for w in row.values()))
    write_json(os.path.join(a.out, "test_metrics.json"),
               {"test": metrics, "best_accuracy": best, "chance_accuracy": chance,
                "wall_s": wall, "backend": backend, "fusion_weights": fw, "gates": gates,
                "data": src.name, "tasks": [t.to_json() for t in model.tasks]})
    plotted = plot_curves(history, os.path.join(a.out, "curves.png"), best,
                          tasks=model.task_names)
    if balancer is not None and plotted:
        plot_balance(history, os.path.join(a.out, "balance.png"), model.task_names)
    write_json(os.path.join(a.out, "run.json"),
               {"command": "train", "settings": {k: getattr(a, k) for k in RUN_SETTINGS},
                "finished": True, "epochs": len(history.epochs)})
    print(f"wrote {ckpt}, {os.path.join(a.out, 'history.json')}"
          + (f", {os.path.join(a.out, 'curves.png')}" if plotted else
             " (install the 'plot' extra for curves.png)"))
    return 0


def _test_table(model, metrics: dict[str, float], best: dict, chance: dict) -> str:
    """The test set's per-task table: loss, then accuracy and AUC (classification) or RMSE
    (regression), and the best achievable and chance accuracies where the data knows them
    (synthetic data)."""
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


def cmd_profile(a) -> int:
    """``train``'s model and data, ``--warmup`` training steps (compilation, caches), then
    ``--steps`` steps profiled: the table on stdout, ``trace.json`` and ``profile.png`` in
    ``--out``. A step is ``fit``'s: tensors of a batch, forward, losses, backward, the
    losses read back, Adam."""
    from . import data as D
    from .optim import Adam
    from .profiler import profile
    from .train import to_tensors

    _check_flags(a)
    backend = _backend(a)
    src = _source(a)
    prep = D.Preprocessor(steps=tuple(s for s in a.preprocess.split(",") if s)).fit(src.train)
    train = prep.transform(src.train)
    model = build_model(a, backend, src)
    model.train()
    optimizer = Adam(list(model.parameters()), lr=a.lr)

    def batches():
        epoch = 0
        while True:
            epoch += 1
            yield from D.iterate_batches(train, a.batch_size, shuffle=True,
                                         rng=np.random.default_rng([a.seed, epoch]))

    def step(inputs, targets) -> list[float]:
        x, y = to_tensors(model, inputs, targets)
        losses = model.losses(model(x), y)
        total = model.total_loss(losses)
        optimizer.zero_grad()
        total.backward()
        values = [float(v.item()) for v in losses.values()]       # as fit reads them
        optimizer.step()
        return values

    feed = batches()
    for _ in range(a.warmup):
        step(*next(feed))
    with profile() as prof:
        for _ in range(a.steps):
            step(*next(feed))
    print(f"{model.summary_title()}; backend {backend}, batch {a.batch_size}, "
          f"{a.warmup} warm-up step(s)")
    print(prof.table())
    os.makedirs(a.out, exist_ok=True)
    trace = prof.chrome_trace(os.path.join(a.out, "trace.json"))
    png = os.path.join(a.out, "profile.png")
    plotted = prof.plot(png)
    print(f"wrote {trace} (open in https://ui.perfetto.dev or chrome://tracing)"
          + (f", {png}" if plotted else " (install the 'plot' extra for profile.png)"))
    return 0


def cmd_summary(a) -> int:
    _check_flags(a)
    print(build_model(a, "numpy").summary())
    return 0
