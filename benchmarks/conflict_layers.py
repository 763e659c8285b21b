"""Does the cosine on the last shared layer say what the cosine on every shared parameter
says? Both measured on the same steps of one training run, per task pair: their
correlation over the measured steps, the mean of each, and how often their signs agree.

    python benchmarks/conflict_layers.py [--epochs 5] [--every 5] [--out FILE]

Workloads where the two differ (for shared-bottom and MMoE the shared parameters are one
layer, so the two are the same numbers): the article's network (3 tasks; shared: both
convolutions of its three towers; last: the second convolution of each) and PLE on MMoE
synthetic data at p = 0.5 (shared: both extraction levels' shared experts and gates).
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
from balancing_overhead import workloads


def both_cosines(build, data, batch: int, epochs: int, every: int) -> dict:
    from minimtl.train import Balancer, fit
    from minimtl.train.balancing import pair_stats

    model = build()

    class Both(Balancer):
        """Measures on every shared parameter and, from the same vectors, on the last
        shared layer's part of them."""

        pairs: list = []

        def _record(self, flat):
            super()._record(flat)
            last = {id(p) for p in self.last}
            keep, start = [], 0
            for _, p in self.shared:
                n = p.data.size
                if id(p) in last:
                    keep.append(np.arange(start, start + n))
                start += n
            idx = np.concatenate(keep)
            sub = {k: v[idx] for k, v in flat.items()}
            self.pairs.append((pair_stats(flat), pair_stats(sub)))

    b = Both(model, conflict_every=every)
    fit(model, data, None, epochs=epochs, batch_size=batch, stream=None, balancer=b)
    names = {id(p): n for n, p in model.named_parameters()}
    out = {"shared": [n for n, _ in b.shared], "last": [names[id(p)] for p in b.last],
           "pairs": {}}
    for pair in b.pairs[0][0]:
        full = np.array([f[pair]["cosine"] for f, _ in b.pairs])
        last = np.array([s[pair]["cosine"] for _, s in b.pairs])
        out["pairs"][pair] = {
            "steps": len(full), "mean_shared": float(full.mean()),
            "mean_last": float(last.mean()),
            "correlation": float(np.corrcoef(full, last)[0, 1]),
            "sign_agreement": float(((full < 0) == (last < 0)).mean()),
            "conflict_rate_shared": float((full < 0).mean()),
            "conflict_rate_last": float((last < 0).mean())}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--every", type=int, default=5)
    p.add_argument("--out", default=None)
    a = p.parse_args()
    results = {}
    for name, (build, data, batch) in workloads("ple").items():
        r = results[name] = both_cosines(build, data, batch, a.epochs, a.every)
        print(f"{name}: last shared layer = {', '.join(r['last'])}")
        for pair, st in r["pairs"].items():
            print(f"  {pair:<12} {st['steps']} steps: mean cosine shared {st['mean_shared']:+.3f}"
                  f" last {st['mean_last']:+.3f}, correlation {st['correlation']:.3f}, "
                  f"signs agree {st['sign_agreement']:.0%}, conflict rate "
                  f"{st['conflict_rate_shared']:.0%} / {st['conflict_rate_last']:.0%}",
                  flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"what": __doc__.splitlines()[0], "epochs": a.epochs,
                       "every": a.every, "results": results,
                       "machine": {"python": platform.python_version(),
                                   "processor": platform.processor() or platform.machine()},
                       "date": time.strftime("%Y-%m-%d")}, f, indent=1)


if __name__ == "__main__":
    main()
