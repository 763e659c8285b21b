"""What the conflict diagnostics (and PCGrad, GradNorm) cost: whole training epochs
through ``minimtl.train.fit`` with a ``Balancer`` against the plain step, alternated in
one process, median epoch times and their ratios.

    python benchmarks/balancing_overhead.py [--repeats 5] [--every 20] [--variants ...]
                                            [--out FILE]
    python benchmarks/balancing_overhead.py --per-step [--rounds 40] [--out FILE]

Two workloads: the article's network on its synthetic data (batch 32, 60 steps an
epoch) and MMoE on MMoE-synthetic data (batch 128, 79 steps). Variants: ``off`` (no
balancer, the default step), ``conflict`` (cosines on every shared parameter every
``--every`` steps; 20 is the CLI's default interval), ``conflict-last`` (the same on the
last shared layer only, ``--conflict-on last``), ``pcgrad`` and ``gradnorm`` (every step:
the price of the method). Besides the ratios of the medians, the median of the
per-round ratios (each variant against the ``off`` epoch of the same round) is kept.

``--per-step`` times the steps themselves, which whole epochs of half a second cannot
resolve on a shared machine: on one fixed batch, rounds of 5 plain steps (forward,
backward, Adam) alternate with rounds of 5 measured steps (``conflict_every=1``, on every
shared parameter, and on the last shared layer); the median round of each gives the cost
of one measured step, c = t_measured / t_plain − 1, and measuring every n steps adds c / n.
Medians and minima of the epoch times are both kept: on a machine other work shares, a
whole epoch can take ten times its quiet time, and the minimum is then the steadier
estimate of what the code costs.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time


def workloads(architecture: str = "mmoe"):
    """The article's network on its data (batch 32) and ``architecture`` on MMoE-synthetic
    data at p = 0.5 (batch 128), each as (build, train set, batch)."""
    from minimtl.models import MultiTaskNet
    from minimtl.models.network import MultiTaskNetwork
    from minimtl.sources import load_source

    art = load_source("article", seed=0)
    syn = load_source("mmoe-synthetic", seed=0, correlation=0.5)
    (shape,) = set(map(tuple, art.shapes.values()))
    second = "mmoe synthetic (batch 128)" if architecture == "mmoe" else \
        f"{architecture}, mmoe synthetic p=0.5 (batch 128)"
    return {
        "article (batch 32)": (lambda: MultiTaskNet(shape[0], shape[1], seed=0,
                                                    backend="numba"), art.train, 32),
        second: (lambda: MultiTaskNetwork(syn.inputs, syn.shapes, syn.tasks,
                                          architecture=architecture, seed=0,
                                          backend="numba"), syn.train, 128),
    }


def epoch_time(build, data, batch, variant: str, every: int) -> float:
    from minimtl.train import Balancer, fit

    model = build()
    balancer = {"off": None,
                "conflict": lambda: Balancer(model, conflict_every=every),
                "conflict-last": lambda: Balancer(model, conflict_every=every,
                                                  conflict_on="last"),
                "pcgrad": lambda: Balancer(model, pcgrad=True),
                "gradnorm": lambda: Balancer(model, "gradnorm")}[variant]
    balancer = balancer() if balancer else None
    fit(model, data, None, epochs=1, batch_size=batch, stream=None, balancer=balancer)
    t0 = time.perf_counter()               # the second epoch: compiled, shared params found
    fit(model, data, None, epochs=1, batch_size=batch, stream=None, balancer=balancer,
        seed=1)
    return time.perf_counter() - t0


def per_step(rounds: int) -> dict:
    """Median seconds of a plain and of a measured step per workload (see the docstring)."""
    from minimtl.data import iterate_batches
    from minimtl.optim import Adam
    from minimtl.train import Balancer, to_tensors

    out = {}
    for name, (build, data, batch) in workloads().items():
        model = build()
        opt = Adam(list(model.parameters()), lr=1e-3)
        inputs, targets = next(iter(iterate_batches(data, batch, shuffle=False)))
        x, y = to_tensors(model, inputs, targets)
        kinds = {"plain": None, "shared": Balancer(model, conflict_every=1),
                 "last": Balancer(model, conflict_every=1, conflict_on="last")}

        def step(balancer, model=model, opt=opt, x=x, y=y):
            losses = model.losses(model(x), y)
            opt.zero_grad()
            if balancer is None:
                model.total_loss(losses).backward()
            else:
                balancer.backward(losses)
            opt.step()

        times = {k: [] for k in kinds}
        for r in range(rounds + 1):
            for k in (kinds if r % 2 == 0 else list(kinds)[::-1]):
                t0 = time.perf_counter()
                for _ in range(5):
                    step(kinds[k])
                if r:                                   # round 0 warms up
                    times[k].append((time.perf_counter() - t0) / 5)
        med = {k: statistics.median(v) for k, v in times.items()}
        out[name] = {"step_s": med, "rounds": times,
                     "cost_of_a_measured_step": {k: med[k] / med["plain"] - 1
                                                 for k in ("shared", "last")}}
        c = out[name]["cost_of_a_measured_step"]
        print(f"{name}: plain {med['plain'] * 1e3:.2f} ms, measured on all shared "
              f"{med['shared'] * 1e3:.2f} ms (+{c['shared']:.0%}; every 20: "
              f"+{c['shared'] / 20:.1%}), on the last shared layer {med['last'] * 1e3:.2f} ms "
              f"(+{c['last']:.0%}; every 20: +{c['last'] / 20:.1%})", flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--every", type=int, default=20)
    p.add_argument("--variants", default="off,conflict,conflict-last,pcgrad,gradnorm")
    p.add_argument("--out", default=None)
    p.add_argument("--per-step", action="store_true")
    p.add_argument("--rounds", type=int, default=40)
    a = p.parse_args()
    from minimtl.malloc import tune_malloc

    tune_malloc(True)
    if a.per_step:
        results = per_step(a.rounds)
        if a.out:
            with open(a.out, "w") as f:
                json.dump({"what": "per-step cost of measuring", "rounds": a.rounds,
                           "results": results,
                           "machine": {"python": platform.python_version(),
                                       "processor": platform.processor() or
                                       platform.machine()},
                           "date": time.strftime("%Y-%m-%d")}, f, indent=1)
        return
    variants = tuple(a.variants.split(","))
    if variants[0] != "off":
        p.error("--variants must start with off (the baseline)")
    results = {}
    for name, (build, data, batch) in workloads().items():
        times = {v: [] for v in variants}
        for r in range(a.repeats):
            order = variants if r % 2 == 0 else variants[::-1]
            for v in order:
                times[v].append(epoch_time(build, data, batch, v, a.every))
        med = {v: statistics.median(t) for v, t in times.items()}
        best = {v: min(t) for v, t in times.items()}
        results[name] = {"epoch_s": times, "median_s": med, "min_s": best,
                         "ratio_to_off": {v: med[v] / med["off"] for v in variants},
                         "min_ratio_to_off": {v: best[v] / best["off"] for v in variants},
                         "paired_ratio_to_off": {v: statistics.median(
                             x / y for x, y in zip(times[v], times["off"])) for v in variants}}
        print(f"{name}: " + ", ".join(
            f"{v} median {med[v] * 1e3:.0f} ms ({med[v] / med['off']:.2f}x, per round "
            f"{results[name]['paired_ratio_to_off'][v]:.2f}x), best {best[v] * 1e3:.0f} ms "
            f"({best[v] / best['off']:.2f}x)" for v in variants), flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"what": __doc__.splitlines()[0], "every": a.every,
                       "repeats": a.repeats, "results": results,
                       "machine": {"python": platform.python_version(),
                                   "processor": platform.processor() or platform.machine()},
                       "date": time.strftime("%Y-%m-%d")}, f, indent=1)


if __name__ == "__main__":
    main()
