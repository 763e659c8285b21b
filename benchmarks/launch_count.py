"""Kernel launches of one training step of the default ``MultiTaskNet`` on the cupy
backend: forward (with the three losses), backward and the Adam step, each per op and per
kernel, at batch 32 and 256 (``kernels.launches``).

    python benchmarks/launch_count.py [--batches 32,256] [--out FILE]   # host emulator
    python benchmarks/launch_count.py --device [--out FILE]             # on a GPU

Without ``--device`` the CUDA kernels run on the host emulator (tests/cuda_host.py, needs
g++) with its counting device arrays (tests/cuda_host_launches.py): our kernels and every
kernel cupy would launch for the element-wise ops, reductions, copies, fills and transfers
are counted. With ``--device``, on a GPU, our kernels are counted exactly and cupy's only
where the code calls a function of the cupy module (``kernels.launches.CountingXp``): array
operators and methods are not seen there, so that column is a lower bound.

The step counted is the third (the first two create Adam's moments and warm up); the first
step's total is reported too. Prints a table per batch; ``--out`` writes the numbers as
JSON and the tables next to it (``.md``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))           # tests/cuda_host.py, the emulator

from kernels import launches  # noqa: E402

SEQ_LEN, FEATURES = 64, 32              # the step the benchmarks time (minimtl.bench.steps)
TARGET = 40                             # issue target: launches per default step
PHASES = ("forward", "backward", "adam")


@contextlib.contextmanager
def _patched():
    import pytest

    with pytest.MonkeyPatch.context() as mp:
        yield mp


def _host_backend(mp) -> str:
    from tests.cuda_host import default_cache, patch_cupy_backend

    patch_cupy_backend(mp, default_cache(), count_launches=True)
    return "host emulator (CUDA sources compiled for the CPU; cupy's kernels modelled)"


def _device_backend(mp) -> str:
    """Real cupy, with the cupy module behind ``xp_of`` and every kernel wrapper's
    ``cupy()`` replaced by a ``CountingXp``."""
    import cupy

    import kernels
    import minimtl.backend as backend

    counting = launches.CountingXp(cupy)
    real_xp_of = backend.xp_of

    def xp_of(name):
        return counting if name == "cupy" else real_xp_of(name)

    for name in ("minimtl.optim", "minimtl.train", "minimtl.nn", "minimtl.models"):
        importlib.import_module(name)
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] == "minimtl" and getattr(module, "xp_of", None) is real_xp_of:
            mp.setattr(module, "xp_of", xp_of)
    wrappers = [f"kernels.{op}.cupy_cuda" for op in kernels.FAMILIES]
    for name in (*wrappers, "kernels._rows_cuda", "kernels._recurrent_cuda"):
        module = importlib.import_module(name)
        if hasattr(module, "cupy"):
            mp.setattr(module, "cupy", lambda: counting)
    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    return f"{name} (cupy's kernels: module calls only, a lower bound)"


def _tag_ops(mp) -> None:
    """Every op's forward and backward counted under its own tag (``linear.forward``)."""
    from minimtl.function import Function

    apply = Function.apply.__func__

    def tagged_apply(cls, *inputs, **params):
        with launches.tag(f"{cls.op_name()}.forward"):
            return apply(cls, *inputs, **params)

    mp.setattr(Function, "apply", classmethod(tagged_apply))
    stack = list(Function.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if "backward" not in cls.__dict__:
            continue
        mp.setattr(cls, "backward", staticmethod(_tagged_backward(cls, cls.backward)))


def _tagged_backward(cls, backward):
    def run(ctx, *gys):
        with launches.tag(f"{cls.op_name()}.backward"):
            return backward(ctx, *gys)
    return run


def count_step(batch: int, steps: int = 3, seq_len: int = SEQ_LEN,
               features: int = FEATURES) -> dict:
    """Launches of step ``steps`` (and of the first) at ``batch``, per phase, op, kernel."""
    from minimtl.bench.steps import _fixed_batch
    from minimtl.models import MultiTaskNet
    from minimtl.optim import Adam
    from minimtl.train import to_tensors

    model = MultiTaskNet(seq_len, features, backend="cupy", dtype=np.float32)
    opt = Adam(list(model.parameters()), lr=1e-3)
    x, y = to_tensors(model, *_fixed_batch(batch, seq_len, features))
    first = None
    for _ in range(steps):
        phases = {}
        with launches.count() as whole:
            opt.zero_grad()
            with launches.count() as phases["forward"], launches.tag("model and losses"):
                total = model.total_loss(model.losses(model(x), y))
            with launches.count() as phases["backward"], launches.tag("autograd walk"):
                total.backward()
            with launches.count() as phases["adam"], launches.tag("adam.step"):
                opt.step()
        first = whole.total if first is None else first
    return {"batch": batch, "step": steps, "first_step_total": first, **whole.as_dict(),
            "phases": {p: c.as_dict() for p, c in phases.items()}}


_COUNTED = """\
What is counted: every launch of our CUDA kernels (by kernel name; exact), and the kernels,
memsets and copies cupy launches for the rest: one per element-wise op, reduction, cuBLAS
product, fill, copy or dtype change, one per array of a concatenation of up to 8, none for
views (on the host emulator, tests/cuda_host_launches.py; on a GPU, calls of the cupy
module only). `cupy.h2d`/`cupy.d2h` are host-device transfers; a `d2h` synchronises the
step. Ops are tagged `<op>.forward`/`<op>.backward`; "model and losses", "autograd walk"
and "adam.step" hold what runs outside any op."""


def _table(r: dict) -> str:
    ok = "meets" if r["total"] <= TARGET else "misses"
    lines = [f"batch {r['batch']}: {r['total']} launches in step {r['step']} "
             f"({ok} the target of {TARGET}); first step {r['first_step_total']}",
             "  " + "  ".join(f"{p} {r['phases'][p]['total']}" for p in PHASES),
             f"  {'op':34s} {'kernel':28s} {'launches':>8s}"]
    for op, kernels in r["by_op_kernel"].items():
        for kernel, n in kernels.items():
            lines.append(f"  {op:34s} {kernel:28s} {n:8d}")
    ours = sum(n for k, n in r["by_kernel"].items() if not k.startswith("cupy."))
    lines.append(f"  our kernels {ours}, cupy's {r['total'] - ours}")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", default="32,256")
    p.add_argument("--device", action="store_true", help="count on a GPU (real cupy)")
    p.add_argument("--out", type=Path, default=None,
                   help="JSON file (default: none); the tables go next to it as .md")
    a = p.parse_args()
    with _patched() as mp:
        where = _device_backend(mp) if a.device else _host_backend(mp)
        _tag_ops(mp)
        results = [count_step(int(b)) for b in a.batches.split(",")]
    for r in results:
        print(_table(r), end="\n\n")
    if a.out is not None:
        doc = {"what": __doc__.split("\n\n")[0].replace("\n", " "), "where": where,
               "target": TARGET, "network": f"MultiTaskNet({SEQ_LEN}, {FEATURES}) float32",
               "results": results}
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(doc, indent=1) + "\n")
        tables = "\n\n".join(_table(r) for r in results)
        a.out.with_suffix(".md").write_text(
            f"# Kernel launches of a training step\n\n{doc['network']}, cupy backend, on: "
            f"{where}. Target: at most {TARGET} a step.\n\n{_COUNTED}\n\n"
            f"```\n{tables}\n```\n")


if __name__ == "__main__":
    main()
