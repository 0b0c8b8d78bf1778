#!/usr/bin/env python3
"""Summarises a directory of seeds.sh logs: the auto-encoder's test error after the last
epoch, per engine and random-number source, over many seeds.

    python3 bench/autoencoder/seeds.py DIR [--rows]

Log names are PREFIX-SEED.log, PREFIX one of
    bp     backprop train autoencoder --seed SEED
    torch  train_torch.py --seed SEED               PyTorch, its own random numbers
    tgo    train_torch.py --seed SEED --go-rng      PyTorch, backprop's initial weights and batch order
    gi     train_torch.py --seed SEED --go-init     PyTorch, backprop's initial weights only
    gs     train_torch.py --seed SEED --go-shuffle  PyTorch, backprop's batch order only
    t64    train_torch.py --seed SEED --go-rng --float64
                                                    PyTorch in float64, backprop's random numbers
Prints, as markdown: each run kind's mean, standard deviation, standard error and range over
its finished seeds; then comparisons over the seeds both sides finished: the difference of
the means with its standard error, and on how many seeds the first side ends lower. Where
the two sides share random numbers for a seed (bp, tgo and t64 all of them; gi and torch the
batch order; gs and torch the initial weights) the comparison is paired and its standard
error is that of the per-seed differences; otherwise the runs are independent.
--rows adds one row per seed. Standard library only.
"""

import glob
import math
import os
import re
import statistics as st
import sys

KINDS = {
    "bp": "backprop",
    "torch": "PyTorch, own random numbers",
    "tgo": "PyTorch, backprop's random numbers",
    "gi": "PyTorch, backprop's initial weights only",
    "gs": "PyTorch, backprop's batch order only",
    "t64": "PyTorch in float64, backprop's random numbers",
}
# (first, second, paired): what each comparison asks. A comparison is paired when the two
# runs of a seed share some of their random numbers, so that the per-seed differences vary
# less than independent runs would: bp and tgo share all of them, gi shares PyTorch's batch
# order with torch (it builds PyTorch's model, then overwrites the weights), gs shares
# PyTorch's initial weights.
COMPARISONS = [
    ("bp", "tgo", True),     # the engines, given the same random numbers
    ("bp", "torch", False),  # the engines, each with its own random numbers (the comparison)
    ("tgo", "torch", False), # one engine, the two sources of random numbers
    ("gi", "torch", True),   # one engine, one batch order: does backprop's initialisation matter?
    ("gs", "torch", True),   # one engine, one initialisation: does backprop's batch order matter?
    ("bp", "t64", True),     # backprop against (nearly) exact arithmetic, the same random numbers
    ("tgo", "t64", True),    # PyTorch's float32 against its float64, the same random numbers
]
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
    runs = {p: final_errors(args[0], p) for p in KINDS}
    runs = {p: r for p, r in runs.items() if len(r) >= 2}
    if not runs:
        sys.exit(f"{args[0]}: no two finished runs of any kind")
    print("Test error after 3 epochs (mean per-image SSE, MNIST test set)\n")
    print("| runs | seeds | mean | sd | standard error | lowest | highest |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for p, v in runs.items():
        x = list(v.values())
        print(f"| {KINDS[p]} | {len(x)} | {st.mean(x):.4f} | {st.stdev(x):.4f} | {st.stdev(x) / math.sqrt(len(x)):.4f} "
              f"| {min(x):.4f} | {max(x):.4f} |")
    print("\n| comparison | seeds | difference of means | standard error | in standard errors | first lower on |")
    print("|---|---:|---:|---:|---:|---:|")
    for a, b, paired in COMPARISONS:
        if a not in runs or b not in runs:
            continue
        seeds = sorted(set(runs[a]) & set(runs[b]))
        n = len(seeds)
        if n < 2:
            continue
        x, y = [runs[a][s] for s in seeds], [runs[b][s] for s in seeds]
        d = [p - q for p, q in zip(x, y)]
        se = st.stdev(d) / math.sqrt(n) if paired else math.sqrt(st.variance(x) / n + st.variance(y) / n)
        print(f"| {KINDS[a]} − {KINDS[b]} ({'paired' if paired else 'independent'}) | {n} | {st.mean(d):+.4f} "
              f"| {se:.4f} | {st.mean(d) / se:+.2f} | {sum(v < 0 for v in d)} of {n} |")
    if "--rows" in sys.argv:
        kinds = list(runs)
        print("\n| seed | " + " | ".join(KINDS[p] for p in kinds) + " |")
        print("|---:|" + "---:|" * len(kinds))
        for s in sorted(set().union(*(runs[p] for p in kinds))):
            print(f"| {s} | " + " | ".join(f"{runs[p][s]:.4f}" if s in runs[p] else "" for p in kinds) + " |")


if __name__ == "__main__":
    main()
