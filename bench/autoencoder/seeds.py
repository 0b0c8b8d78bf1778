#!/usr/bin/env python3
"""Summarises a directory of seeds.sh logs: the auto-encoder's test error after the last
epoch, per engine, over all seeds that every engine finished.

    python3 bench/autoencoder/seeds.py DIR [--rows]

Prints, as markdown: mean, standard deviation, standard error and range per engine
(backprop, PyTorch with its own random numbers, PyTorch with backprop's), the difference
of backprop's mean from each PyTorch mean with its standard error, and how many seeds
backprop ends lower on. The comparison with `--go-rng` runs is paired (same seed = same
initial weights and batches), so its standard error is that of the per-seed differences.
--rows adds one row per seed. Standard library only.
"""

import glob
import math
import os
import re
import statistics as st
import sys

ENGINES = [("bp", "backprop"), ("torch", "PyTorch, own random numbers"), ("tgo", "PyTorch, backprop's random numbers")]
LAST = re.compile(r"^epoch (\d+)/(\d+): .*?test error ([0-9.]+)", re.M)


def final_errors(directory, prefix):
    """seed -> test error after the final epoch, for the logs PREFIX-SEED.log that finished."""
    out = {}
    for path in glob.glob(os.path.join(directory, prefix + "-*.log")):
        m = re.fullmatch(re.escape(prefix) + r"-(\d+)\.log", os.path.basename(path))
        if not m:
            continue
        with open(path) as f:
            epochs = LAST.findall(f.read())
        if epochs and epochs[-1][0] == epochs[-1][1]:
            out[int(m.group(1))] = float(epochs[-1][2])
    return out


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 1:
        sys.exit(__doc__)
    runs = {p: final_errors(args[0], p) for p, _ in ENGINES}
    engines = [(p, name) for p, name in ENGINES if runs[p]]
    if not engines or "bp" not in runs or not runs["bp"]:
        sys.exit(f"{args[0]}: no finished bp-SEED.log")
    seeds = sorted(set.intersection(*(set(runs[p]) for p, _ in engines)))
    n = len(seeds)
    if n < 2:
        sys.exit(f"{args[0]}: {n} seed(s) finished by every engine; need 2")
    print(f"Test error after 3 epochs (mean per-image SSE, MNIST test set), {n} seeds "
          f"({seeds[0]}…{seeds[-1]}) per engine\n")
    print("| engine | mean | sd | standard error | lowest | highest |")
    print("|---|---:|---:|---:|---:|---:|")
    for p, name in engines:
        v = [runs[p][s] for s in seeds]
        print(f"| {name} | {st.mean(v):.4f} | {st.stdev(v):.4f} | {st.stdev(v) / math.sqrt(n):.4f} | {min(v):.4f} | {max(v):.4f} |")
    print("\n| comparison | backprop − PyTorch | standard error | in standard errors | backprop lower on |")
    print("|---|---:|---:|---:|---:|")
    bp = [runs["bp"][s] for s in seeds]
    for p, name in engines[1:]:
        other = [runs[p][s] for s in seeds]
        d = [a - b for a, b in zip(bp, other)]
        if p == "tgo":  # paired: same initial weights and batches per seed
            se, kind = st.stdev(d) / math.sqrt(n), "paired"
        else:
            se, kind = math.sqrt(st.variance(bp) / n + st.variance(other) / n), "independent"
        lower = sum(x < 0 for x in d)
        print(f"| vs {name} ({kind}) | {st.mean(d):+.4f} | {se:.4f} | {st.mean(d) / se:+.2f} | {lower} of {n} |")
    if "--rows" in sys.argv:
        print("\n| seed | " + " | ".join(name for _, name in engines) + " |")
        print("|---:|" + "---:|" * len(engines))
        for s in seeds:
            print(f"| {s} | " + " | ".join(f"{runs[p][s]:.4f}" for p, _ in engines) + " |")


if __name__ == "__main__":
    main()
