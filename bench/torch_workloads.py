#!/usr/bin/env python3
"""PyTorch twins of the workloads of `backprop bench` (package benchmark).

Same names, shapes, FLOP counts and report fields, so bench/race.py can set
the two engines side by side:

  gan-step     one step of the reference DCGAN (bench/gan/train_torch.py's
               models and loop body): D on real and detached fake, Adam on D,
               G through the updated D, Adam on G; batch 64
  ae-step      784-256-784 auto-encoder (ReLU, sigmoid), loss sum((x'-x)^2)/N,
               backward, Adam step, zero_grad; batch 64
  sgemm-N      torch.mm of two N x N float32 matrices into a preallocated out
  gemm-conv*   torch.mm of the products backprop's DCGAN convolutions reduce
               to (benchmark.DCGANGemms), transposed operands as views
  convL-fwd    F.conv2d / F.conv_transpose2d of the DCGAN layer L, batch 64, no bias
  convL-bwd    torch.autograd.grad of that layer for the input and the weight

Each run is timed alone (time.perf_counter_ns); the median of --count runs is
reported after --warmup untimed ones. Peak memory is the process's RSS
high-water mark (VmHWM), reset through /proc/self/clear_refs before each
workload, as on the Go side.

Usage: torch_workloads.py [--json] [--count N] [--warmup N] [--threads 2] [workload ...]
"""
import argparse
import ctypes
import gc
import json
import os
import platform
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH = 64
Z_DIM = 100

# (name, transposed, in, out, H, W, k, s, p) as benchmark.DCGANLayers
LAYERS = [
    ("conv1", False, 1, 64, 28, 28, 4, 2, 1),
    ("conv2", False, 64, 128, 14, 14, 4, 2, 1),
    ("deconv1", True, 128, 64, 7, 7, 4, 2, 1),
    ("deconv2", True, 64, 1, 14, 14, 4, 2, 1),
]


def out_size(l):
    _, tr, _, _, h, w, k, s, p = l
    if tr:
        return (h - 1) * s - 2 * p + k, (w - 1) * s - 2 * p + k
    return (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1


def fwd_flops(l):
    _, tr, cin, cout, h, w, k, _, _ = l
    oh, ow = out_size(l)
    if tr:
        return 2.0 * BATCH * cin * h * w * cout * k * k
    return 2.0 * BATCH * cout * oh * ow * cin * k * k


def lin(i, o):
    return 2.0 * BATCH * i * o


def gan_flops():  # as benchmark.GANStepFLOPs
    c1, c2, dc1, dc2 = (fwd_flops(l) for l in LAYERS)
    lin1, lin2 = lin(Z_DIM, 128 * 7 * 7), lin(128 * 7 * 7, 1)
    d_fwd, g_fwd = c1 + c2 + lin2, lin1 + dc1 + dc2
    d_bwd_nodx, d_bwd_dx = c1 + 2 * c2 + 2 * lin2, 2 * c1 + 2 * c2 + 2 * lin2
    g_bwd = lin1 + 2 * dc1 + 2 * dc2
    return 3 * d_fwd + g_fwd + 2 * d_bwd_nodx + d_bwd_dx + g_bwd


def generator():
    return nn.Sequential(
        nn.Linear(Z_DIM, 128 * 7 * 7, bias=False), nn.BatchNorm1d(128 * 7 * 7), nn.ReLU(),
        nn.Unflatten(1, (128, 7, 7)),
        nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
        nn.ConvTranspose2d(64, 1, 4, 2, 1, bias=True), nn.Tanh())


def discriminator():
    return nn.Sequential(
        nn.Conv2d(1, 64, 4, 2, 1, bias=True), nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 4, 2, 1, bias=False), nn.BatchNorm2d(128), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(128 * 7 * 7, 1, bias=True))


def dcgan_init(m):
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def gan_step():
    g, d = generator(), discriminator()
    g.apply(dcgan_init)
    d.apply(dcgan_init)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    x_all = torch.rand(32 * BATCH, 1, 28, 28) * 2 - 1
    state = {"s": 0, "perm": torch.randperm(x_all.shape[0])}

    def run():  # the loop body of bench/gan/train_torch.py
        s = state["s"]
        if s == x_all.shape[0] // BATCH:
            s, state["perm"] = 0, torch.randperm(x_all.shape[0])
        state["s"] = s + 1
        real = x_all[state["perm"][s * BATCH:(s + 1) * BATCH]]
        ones, zeros = torch.ones(BATCH, 1), torch.zeros(BATCH, 1)
        z = torch.randn(BATCH, Z_DIM)
        opt_d.zero_grad()
        out_real = d(real)
        loss_real = F.binary_cross_entropy_with_logits(out_real, ones)
        loss_real.backward()
        fake = g(z)
        out_fake = d(fake.detach())
        loss_fake = F.binary_cross_entropy_with_logits(out_fake, zeros)
        loss_fake.backward()
        opt_d.step()
        opt_g.zero_grad()
        out_gen = d(fake)
        loss_g = F.binary_cross_entropy_with_logits(out_gen, ones)
        loss_g.backward()
        opt_g.step()
        # the Go step reads the losses and mean D outputs too
        _ = (loss_real.item() + loss_fake.item(), loss_g.item(),
             torch.sigmoid(out_real).mean().item(), torch.sigmoid(out_fake).mean().item())
    return run


def ae_step():
    enc, dec = nn.Linear(784, 256), nn.Linear(256, 784)
    params = list(enc.parameters()) + list(dec.parameters())
    opt = torch.optim.Adam(params)
    x = torch.rand(BATCH, 784)

    def run():
        rec = torch.sigmoid(dec(torch.relu(enc(x))))
        loss = ((rec - x) ** 2).sum() / BATCH
        _ = loss.item()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=False)  # the Go optimizer zeroes in place
    return run


def sgemm(n):
    a, b, c = torch.rand(n, n) * 2 - 1, torch.rand(n, n) * 2 - 1, torch.empty(n, n)
    return lambda: torch.mm(a, b, out=c)


# benchmark.DCGANGemms: name, transA, transB, M, N, K
GEMMS = [
    ("gemm-conv1", False, False, 64, BATCH * 14 * 14, 16),
    ("gemm-conv2-fwd", False, True, BATCH * 49, 128, 1024),
    ("gemm-conv2-dw", False, False, 128, 1024, BATCH * 49),
    ("gemm-conv2-dx", True, False, BATCH * 49, 1024, 128),
]


def gemm(ta, tb, m, n, k):
    """C = op(A)·op(B) with A stored (K, M) if ta else (M, K), likewise B."""
    a = torch.rand(k, m) * 2 - 1 if ta else torch.rand(m, k) * 2 - 1
    b = torch.rand(n, k) * 2 - 1 if tb else torch.rand(k, n) * 2 - 1
    oa, ob, c = (a.t() if ta else a), (b.t() if tb else b), torch.empty(m, n)
    return lambda: torch.mm(oa, ob, out=c)


def conv(l, backward):
    name, tr, cin, cout, h, w, k, s, p = l
    x = (torch.rand(BATCH, cin, h, w) * 2 - 1).requires_grad_(backward)
    wt = ((torch.rand(cin, cout, k, k) if tr else torch.rand(cout, cin, k, k)) * 0.1 - 0.05).requires_grad_(backward)
    f = (lambda: F.conv_transpose2d(x, wt, stride=s, padding=p)) if tr else (lambda: F.conv2d(x, wt, stride=s, padding=p))
    if not backward:
        def run():
            with torch.no_grad():
                f()
        return run
    gy = torch.rand(BATCH, cout, *out_size(l)) * 2 - 1

    def run():
        y = f()  # the graph must exist; its forward is not timed separately
        torch.autograd.grad(y, [x, wt], gy)
    return run


def workloads():
    ws = [("gan-step", True, gan_flops(), gan_step), ("ae-step", True, 5 * lin(784, 256), ae_step)]
    for n in (128, 256, 512, 1024):
        ws.append((f"sgemm-{n}", False, 2.0 * n ** 3, lambda n=n: sgemm(n)))
    for name, ta, tb, m, n, k in GEMMS:
        ws.append((name, False, 2.0 * m * n * k, lambda g=(ta, tb, m, n, k): gemm(*g)))
    for l in LAYERS:
        ws.append((l[0] + "-fwd", False, fwd_flops(l), lambda l=l: conv(l, False)))
        ws.append((l[0] + "-bwd", False, 2 * fwd_flops(l), lambda l=l: conv(l, True)))
    return ws


def reset_peak_rss():
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_rss():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def blas_info():
    """The BLAS settings of the build and the BLAS library actually mapped."""
    cfg = torch.__config__.show()
    keep = []
    for l in cfg.splitlines():
        l = l.strip().lstrip("- ")
        if "MKL-DNN" in l or "CPU capability" in l:
            keep.append(l)
        for part in l.split(","):
            if "BLAS_INFO=" in part:
                keep.append(part[part.index("BLAS_INFO="):].strip())
    libs = set()
    torch.mm(torch.ones(2, 2), torch.ones(2, 2))  # make sure the BLAS is loaded
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                if "blas" in path.lower() and path.startswith("/"):
                    libs.add(os.path.realpath(path))
    except OSError:
        pass
    return "; ".join(keep + ["mapped: " + ", ".join(sorted(libs))])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="*")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    ws = workloads()
    if a.names:
        byname = {w[0]: w for w in ws}
        unknown = [n for n in a.names if n not in byname]
        if unknown:
            sys.exit(f"unknown workload(s) {unknown}; known: {', '.join(byname)}")
        ws = [byname[n] for n in a.names]
    rep = {"engine": "pytorch", "torch_version": torch.__version__, "threads": torch.get_num_threads(),
           "python": platform.python_version(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""), "cpu": cpu_model(), "blas": blas_info(),
           "peak_memory": "process RSS high-water mark (VmHWM), reset via /proc/self/clear_refs before each workload",
           "results": []}
    for name, step, flops, setup in ws:
        reset_peak_rss()
        run = setup()
        for _ in range(a.warmup):
            run()
        samples = []
        for _ in range(a.count):
            t0 = time.perf_counter_ns()
            run()
            samples.append(float(time.perf_counter_ns() - t0))
        med = statistics.median(samples)
        r = {"name": name, "runs": a.count, "median_ns": med, "min_ns": min(samples), "samples_ns": samples,
             "flops": flops, "gflops": flops / med, "peak_rss_bytes": peak_rss(), "step": step}
        rep["results"].append(r)
        if not a.json:
            print(f"{name:>12} {med / 1e6:10.3f} ms {min(samples) / 1e6:10.3f} ms min {flops / med:8.1f} GFLOPS "
                  f"{peak_rss() / 2 ** 20:8.1f} MiB peak RSS", flush=True)
    if a.json:
        json.dump(rep, sys.stdout, indent=1)
        print()


if __name__ == "__main__":
    main()
