"""What each rank runs under ``mpiexec`` for tests/distributed: ``python -m
tests.distributed.ranks SCENARIO OUT [...]``. The data, the models and the fits are
defined here once, so that the single-process references the tests compute are the same
calls with ``dist=None``."""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import numpy as np

from minimtl.data import Dataset
from minimtl.objectives import Task
from minimtl.optim import Adam

TASKS = [Task("click", "binary", 1), Task("spend", "regression", 1)]
#: an odd global batch: the shards of 2 ranks differ in size (8 and 7, last batch 4/4)
BATCH = 15
ROWS = 98


def data(n: int = ROWS, dtype=np.float64, seed: int = 0) -> Dataset:
    """Two related tasks on 12 features: a click (binary) and a spend (regression)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 12))
    z = x[:, :6] @ rng.normal(size=6)
    click = (z + 0.5 * rng.normal(size=n) > 0).astype(np.float64)
    spend = np.tanh(z) + 0.1 * rng.normal(size=n)
    return Dataset({"x": x.astype(dtype)}, {"click": click.astype(dtype),
                                            "spend": spend[:, None].astype(dtype)})


def model(seed: int = 0, dtype=np.float64):
    from minimtl.models.network import MultiTaskNetwork

    return MultiTaskNetwork({"x": "continuous"}, {"x": (12,)}, TASKS, architecture="mmoe",
                            experts=3, expert_units=6, tower_units=4, seed=seed,
                            backend="numpy", dtype=dtype)


def train(dist=None, *, dtype=np.float64, epochs: int = 2, seed: int = 0, checkpoint=None,
          resume=False, stream=None):
    """The fit every equivalence test compares: Adam, the odd batch, two epochs."""
    from minimtl.train import fit

    m = model(seed, dtype)
    opt = Adam(list(m.parameters()), lr=1e-2)
    history = fit(m, data(dtype=dtype), data(40, dtype, seed=1), optimizer=opt,
                  epochs=epochs, batch_size=BATCH, seed=3, checkpoint=checkpoint,
                  resume=resume, stream=stream, dist=dist)
    return m, opt, history


def params(m) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in m.state_dict().items()}


def _equivalence(dist, out: str) -> None:
    """Fits in float64 (with the all-reduce overlapping the backward, and after it) and
    float32 (each rank starting from a different init: rank 0's is broadcast), an
    evaluate, the checkpoint writes counted, and resumes in both directions of a change in
    the number of ranks."""
    import minimtl.train.loop as loop
    from minimtl.train import evaluate

    writes = []
    real_save = loop.save_checkpoint

    def counting_save(path, *a, **kw):
        writes.append(os.path.basename(path))
        return real_save(path, *a, **kw)

    loop.save_checkpoint = counting_save
    r = dist.rank
    with open(os.path.join(out, f"log-{r}.txt"), "w") as log:
        m64, _, h64 = train(dist, seed=10 + r, checkpoint=os.path.join(out, "two.npz"),
                            stream=log)
    buckets = {"early": dist.buckets_early, "total": dist.buckets_total}
    dist.overlap = False             # the same fit with the all-reduce after the walk
    m_after, _, _ = train(dist, seed=10 + r)
    dist.overlap = True
    m32, _, _ = train(dist, dtype=np.float32, seed=10 + r)
    metrics = evaluate(m64, data(40, seed=1), batch_size=7, dist=dist)
    gates = m64.gate_weights()
    # resume: a checkpoint of epoch 1 written by one process (the test wrote it) -> 2 ranks
    m_resumed, _, _ = train(dist, checkpoint=os.path.join(out, "one-rank.npz"), resume=True)
    # ... and one epoch on 2 ranks, which the test resumes in one process
    train(dist, epochs=1, checkpoint=os.path.join(out, "epoch1-two-ranks.npz"))
    np.savez(os.path.join(out, f"rank{r}.npz"),
             **{f"f64/{k}": v for k, v in params(m64).items()},
             **{f"f32/{k}": v for k, v in params(m32).items()},
             **{f"after/{k}": v for k, v in params(m_after).items()},
             **{f"resumed/{k}": v for k, v in params(m_resumed).items()})
    with open(os.path.join(out, f"rank{r}.json"), "w") as f:
        json.dump({"history": h64.epochs, "metrics": metrics, "gates": gates,
                   "writes": writes, "buckets": buckets}, f)


def fault_fit(m, **kw):
    """The fit the fault scenarios run (and a test resumes)."""
    from minimtl.train import fit

    return fit(m, data(), None, optimizer=Adam(list(m.parameters()), lr=1e-2), epochs=3,
               batch_size=BATCH, seed=3, stream=None, **kw)


def _fault(dist, out: str, how: str) -> None:
    """Rank 1 raises (``raise``), is killed (``die``), stops answering (``hang``) or gets
    a Ctrl-C (``interrupt``) in the 3rd step of epoch 2; every rank records what it
    raised."""
    if dist.rank == 1:
        calls = {"n": 0}
        per_epoch = -(-ROWS // BATCH)
        m = model()
        real = m.losses

        def failing(logits, y):
            calls["n"] += 1
            if calls["n"] == per_epoch + 3:
                if how == "raise":
                    raise RuntimeError("planted failure on rank 1")
                if how == "die":
                    os.kill(os.getpid(), signal.SIGKILL)
                if how == "interrupt":         # this rank alone: fit's handler notes it
                    os.kill(os.getpid(), signal.SIGINT)
                    return real(logits, y)
                time.sleep(600)
            return real(logits, y)

        m.losses = failing
    else:
        m = model()
    t0 = time.monotonic()
    try:
        fault_fit(m, checkpoint=os.path.join(out, "fault.npz"), dist=dist)
        outcome = "finished"
    except (Exception, KeyboardInterrupt) as e:
        outcome = f"{type(e).__name__}: {e}"
    with open(os.path.join(out, f"fault-{dist.rank}.json"), "w") as f:
        json.dump({"outcome": outcome, "seconds": time.monotonic() - t0}, f)
    dist.leave(3)              # as the minimtl command does after a failure


def main(argv: list[str]) -> None:
    from minimtl.distributed import ProcessGroup

    scenario, out = argv[0], argv[1]
    if scenario == "equivalence":
        _equivalence(ProcessGroup(timeout=60, bucket_bytes=512), out)
    else:
        _fault(ProcessGroup(timeout=float(argv[2])), out, scenario)


if __name__ == "__main__":
    main(sys.argv[1:])
