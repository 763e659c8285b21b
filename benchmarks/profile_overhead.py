"""What profiling costs: the article's training step with the profiler off and on,
alternated block by block in one process, median ms of each side and their ratio.

    python benchmarks/profile_overhead.py [--batches 32,256] [--rounds 8] [--block 10]

Each round runs ``--block`` steps off, then ``--block`` steps inside one profile (the block's
``with minimtl.profile()``, its entry and exit, is outside the timed steps; the table is
not built). "off" after a profile has run is the engine restored: the same objects as
before (tests/profiler), so off costs nothing by construction; the off blocks after the
first show it measured. Wall time and the process's CPU time (all its threads) are both
reported: on a shared machine CPU time moves less with the other work. Same allocator
setting as benchmarks/step_loop.py.
"""

from __future__ import annotations

import argparse
import statistics
import time

import minimtl as mt
from minimtl.bench.steps import minimtl_step
from minimtl.malloc import tune_malloc
from minimtl.threads import chunked_for, set_num_threads


def _block(step, n: int, prof=None) -> tuple[list[float], list[float]]:
    """Wall and CPU ms (the process's, all threads) of each of ``n`` steps."""
    wall, cpu = [], []
    for _ in range(n):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        wall.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
        if prof is not None:
            prof.step()
    return wall, cpu


def _per_op_us(calls: int = 2000, rounds: int = 5) -> tuple[float, float]:
    """µs per recorded op, off and on: a small graph of tiny ops (forward and backward),
    where the profiler's own work is nearly all there is; best of ``rounds``."""
    x = mt.tensor([[1.0, 2.0]], backend="numpy", requires_grad=True)

    def run() -> int:
        y = x
        for _ in range(calls):
            y = y * 1.0
        y.sum().backward()
        return 2 * (calls + 1)                       # forward and backward records

    best = {False: float("inf"), True: float("inf")}
    for _ in range(rounds):
        for on in (False, True):
            t0 = time.perf_counter()
            if on:
                with mt.profile():
                    n = run()
            else:
                n = run()
            best[on] = min(best[on], (time.perf_counter() - t0) / n * 1e6)
    return best[False], best[True]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", default="32,256")
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--block", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    tune_malloc(True)
    set_num_threads(a.threads, chunks=False)
    us_off, us_on = _per_op_us()
    print(f"a tiny op (forward or backward): {us_off:.2f} µs off, {us_on:.2f} µs on: the "
          f"profiler adds {us_on - us_off:.2f} µs a recorded op")
    for batch in (int(b) for b in a.batches.split(",")):
        set_num_threads(a.threads, chunks=chunked_for(batch))     # as `minimtl train`
        step, _ = minimtl_step("numba", batch, 64, 32)
        _block(step, 5)
        sides = {k: ([], [], []) for k in ("wall", "cpu")}      # off, on, round ratios
        for _ in range(a.rounds):
            off = _block(step, a.block)
            with mt.profile() as prof:
                on = _block(step, a.block, prof)
            for j, k in enumerate(sides):
                sides[k][0].extend(off[j])
                sides[k][1].extend(on[j])
                sides[k][2].append(statistics.median(on[j]) / statistics.median(off[j]))
        for k, (off, on, ratios) in sides.items():
            m_off, m_on = statistics.median(off), statistics.median(on)
            print(f"batch {batch} {k:4}: off {m_off:.2f} ms, on {m_on:.2f} ms (medians of "
                  f"{len(off)} steps each), on/off {m_on / m_off:.3f}; per-round ratios "
                  f"{' '.join(f'{r:.2f}' for r in ratios)} "
                  f"(median {statistics.median(ratios):.3f})")
        print(f"batch {batch}: {len(prof.events) // a.block} records a step, ~"
              f"{len(prof.events) // a.block * (us_on - us_off) / 1e3:.2f} ms of them at the "
              f"tiny-op cost")


if __name__ == "__main__":
    main()
