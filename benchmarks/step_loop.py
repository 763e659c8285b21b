"""Quick A/B timing of the training step: PyTorch's step, then minimtl's, in one process,
median ms of each and the ratio. For checking one change in a minute; the full runner
(``python -m minimtl.bench``) is what results are committed from.

    python benchmarks/step_loop.py [--batches 32,256] [--repeats 40] [--profile]

Same allocator setting (glibc thresholds raised) and 2 threads on both sides (minimtl's
through ``set_num_threads``, as ``minimtl train`` sets them); torch runs first because
starting Numba's thread pool can change torch's thread count.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import time

from minimtl.bench.steps import minimtl_step, torch_step
from minimtl.malloc import tune_malloc
from minimtl.threads import chunked_for, set_num_threads


def _median_ms(step, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", default="32,256")
    p.add_argument("--repeats", type=int, default=40)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--profile", action="store_true", help="cProfile 20 minimtl steps")
    a = p.parse_args()
    tune_malloc(True)
    import torch

    for batch in (int(b) for b in a.batches.split(",")):
        torch.set_num_threads(a.threads)
        t_step, _ = torch_step(torch, "cpu", batch, 64, 32)
        set_num_threads(a.threads, chunks=chunked_for(batch))
        m_step, _ = minimtl_step("numba", batch, 64, 32)
        for _ in range(5):
            t_step()
            m_step()
        torch.set_num_threads(a.threads)
        t_ms = _median_ms(t_step, a.repeats)
        m_ms = _median_ms(m_step, a.repeats)
        print(f"batch {batch}: minimtl {m_ms:.2f} ms, torch {t_ms:.2f} ms "
              f"(threads {torch.get_num_threads()}), ratio {t_ms / m_ms:.3f}")
        if a.profile:
            prof = cProfile.Profile()
            prof.enable()
            for _ in range(20):
                m_step()
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    main()
