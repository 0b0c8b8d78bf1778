#!/usr/bin/env python3
"""Sets backprop's and PyTorch's workload reports side by side.

Reads the JSON reports of `backprop bench --json` and bench/torch_workloads.py
--json written by bench/run.sh, several rounds of each (taken alternately,
A/B/A/B), and prints a Markdown report: per workload the median over all
timed runs of all rounds for each engine, GFLOPS for the shared FLOP count,
peak RSS, allocs/op of the Go steps, and the time ratio backprop/PyTorch
(< 1: backprop is faster). Also prints the machine: CPU model, Go version,
torch version, threads and BLAS.

Usage: race.py GO_JSON... -- TORCH_JSON...
"""
import json
import statistics
import sys


def load(paths):
    reps = [json.load(open(p)) for p in paths]
    by = {}
    for r in reps:
        for x in r["results"]:
            by.setdefault(x["name"], []).append(x)
    return reps, by


def main():
    args = sys.argv[1:]
    if "--" not in args:
        sys.exit(__doc__)
    i = args.index("--")
    go_reps, go = load(args[:i])
    pt_reps, pt = load(args[i + 1:])
    g0, p0 = go_reps[0], pt_reps[0]
    print(f"- CPU: {g0['cpu']} ({g0['gomaxprocs']} cores available to Go, GOMAXPROCS={g0['gomaxprocs']})")
    print(f"- Go: {g0['go_version']}; backprop's own sgemm (internal/blas, AVX-512)")
    print(f"- PyTorch: {p0['torch_version']}, torch.set_num_threads({p0['threads']}), "
          f"OMP_WAIT_POLICY={p0.get('omp_wait_policy') or '(unset)'}, Python {p0['python']}")
    print(f"- PyTorch BLAS: {p0['blas']}")
    print(f"- rounds: {len(go_reps)} × backprop, {len(pt_reps)} × PyTorch, alternating; "
          f"{go[next(iter(go))][0]['runs']} timed runs per workload per round; times are medians over all runs of all rounds")
    print(f"- peak memory: {g0['peak_memory']}")
    print()
    print("| workload | GFLOP/run | backprop ms | PyTorch ms | ratio (backprop/PyTorch) | backprop GFLOPS | PyTorch GFLOPS | backprop peak RSS MiB | PyTorch peak RSS MiB | backprop allocs/op |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, gs in go.items():
        gmed = statistics.median([s for x in gs for s in x["samples_ns"]])
        ps = pt.get(name)
        flops = gs[0]["flops"]
        grss = max(x["peak_rss_bytes"] for x in gs) / 2 ** 20
        allocs = f"{statistics.median([x['allocs_per_op'] for x in gs]):.0f}" if gs[0]["step"] else ""
        if ps:
            pmed = statistics.median([s for x in ps for s in x["samples_ns"]])
            if abs(ps[0]["flops"] - flops) > 1e-6 * flops:
                sys.exit(f"{name}: FLOP counts differ: backprop {flops}, PyTorch {ps[0]['flops']}")
            prss = max(x["peak_rss_bytes"] for x in ps) / 2 ** 20
            print(f"| {name} | {flops / 1e9:.4f} | {gmed / 1e6:.3f} | {pmed / 1e6:.3f} | **{gmed / pmed:.2f}** | "
                  f"{flops / gmed:.1f} | {flops / pmed:.1f} | {grss:.0f} | {prss:.0f} | {allocs} |")
        else:
            print(f"| {name} | {flops / 1e9:.4f} | {gmed / 1e6:.3f} | – | – | {flops / gmed:.1f} | – | {grss:.0f} | – | {allocs} |")


if __name__ == "__main__":
    main()
