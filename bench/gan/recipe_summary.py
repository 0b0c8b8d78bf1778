#!/usr/bin/env python3
"""Summarise the score tables of bench/gan/recipe.sh over seeds.

Reads the markdown tables that `backprop eval` (OUT/DATASET/eval.md) and
independent_classifier.py (OUT/DATASET/independent.md) print, whose rows are
named "RUN-sSEED epoch E WEIGHTS=...", groups them by run, epoch and weights
(ema or trained) and prints one row per group: the number of seeds, the mean and
sample standard deviation over seeds of the Inception Score and the Fréchet
distance, the range of the class shares (%) and the lowest per-class precision
(%) over the seeds and classes.

    python3 bench/gan/recipe_summary.py OUT/mnist/eval.md [OUT/mnist/independent.md ...]

Standard library only.
"""

import re
import statistics
import sys
from collections import OrderedDict

ROW = re.compile(r"^\| (?P<name>\S+)-s(?P<seed>\d+) epoch (?P<epoch>\d+) (?P<w>ema|trained) \| (?P<n>\d+) \| "
                 r"(?P<is>[\d.]+) ± [\d.]+ \| (?P<fd>[\d.]+) \| (?P<hist>[\d ]+) \| [^|]+\| (?P<prec>[^|]+) \|")


def summarise(path):
    groups = OrderedDict()
    with open(path) as f:
        for line in f:
            m = ROW.match(line.strip())
            if not m:
                continue
            hist = [int(x) for x in m["hist"].split()]
            share = [100 * h / sum(hist) for h in hist]
            prec = [float(x) for x in m["prec"].split() if x not in ("–", "-")]
            key = (m["name"], int(m["epoch"]), m["w"])
            groups.setdefault(key, []).append((int(m["seed"]), float(m["is"]), float(m["fd"]), share, prec))
    print(f"\n{path}\n")
    print("| run | epoch | G | seeds | IS mean ± sd | FD mean ± sd | class shares (%) min–max | lowest precision (%) |")
    print("|---|---:|---|---:|---:|---:|---|---:|")
    for (name, epoch, w), rows in groups.items():
        iss = [r[1] for r in rows]
        fds = [r[2] for r in rows]
        shares = [s for r in rows for s in r[3]]
        precs = [p for r in rows for p in r[4]]
        sd = lambda xs: statistics.stdev(xs) if len(xs) > 1 else 0.0  # noqa: E731
        low = f"{min(precs):.1f}" if precs else "–"
        print(f"| {name} | {epoch} | {w} | {len(rows)} | {statistics.mean(iss):.3f} ± {sd(iss):.3f} | "
              f"{statistics.mean(fds):.2f} ± {sd(fds):.2f} | {min(shares):.1f}–{max(shares):.1f} | {low} |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for p in sys.argv[1:]:
        summarise(p)
