"""Benchmark runner: every kernel, the whole training step, PyTorch in the same process.

    python -m minimtl.bench                         # CPU: kernels and training step
    python -m minimtl.bench --ops conv1d,lstm --batches 256 --no-step
    python -m minimtl.bench --gpu-only              # CuPy kernels and step, torch on CUDA
    python -m minimtl.bench --summary benchmarks/results/cpu-2core.json

What is measured (how to read the tables: ``benchmarks/README.md``):

1. Kernels: each operator's kernel module called directly (``kernels.get(op, backend)``)
   at the article's shapes, float32: forward, and forward then backward with a fixed
   random upstream gradient. Medians after warm-up; the first call (Numba compile or cache
   load, CUDA compile) is reported on its own; GFLOP/s for conv and the RNNs next to a
   float32 matmul timed in the same run.
2. The training step of ``MultiTaskNet`` (forward, three losses, backward, Adam step) on
   one fixed random batch: 10 warm-up steps, median of 60.
3. PyTorch's equivalents, timed in the same process and before minimtl (Numba's thread
   pool can change torch's thread count); ratio = torch ms / minimtl ms (> 1: minimtl
   faster). Keras numbers measured elsewhere can be passed in; memory over many steps.
4. GPU (cupy backend): CUDA-event timings, device copy bandwidth and the bandwidth the
   memory-bound kernels reach, torch on CUDA (cuDNN) beside them.

An operator whose kernel fails to import or to run is recorded under ``errors`` and
skipped; the run goes on. Results: ``<out>/<name>.json`` (every number, the machine) and
``<out>/<name>.md`` (tables, also printed on stdout); progress lines go to stderr.

Where each part lives: ``machine`` (facts about the machine), ``timing`` (samplers,
``measure``, devices), ``cases`` (the kernel calls and their shapes), ``steps`` (the training
step, minimtl's and torch's), ``probe`` (the child process that finds crashing kernels),
``runner`` (the phases of a run), ``progress`` (its stderr lines), ``results`` (records,
ratios, the JSON file), ``report`` (the markdown tables and the summary), ``command``
(options and ``main``).
"""

from __future__ import annotations

from ..malloc import tune_malloc  # its home is minimtl.malloc; re-exported for old imports
from .cases import Case, kernel_cases
from .command import build_parser, main
from .machine import rss_mib
from .report import summary, to_markdown
from .results import add_keras
from .runner import Run, run
from .steps import minimtl_step, torch_step
from .timing import Device, Sampler, bench_kernel, bench_torch_kernel, measure

__all__ = ["main", "build_parser", "run", "Run", "to_markdown", "summary", "add_keras",
           "kernel_cases", "Case", "measure", "Sampler", "Device", "bench_kernel",
           "bench_torch_kernel", "minimtl_step", "torch_step", "rss_mib", "tune_malloc"]
