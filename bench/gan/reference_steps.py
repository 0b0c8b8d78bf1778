#!/usr/bin/python3
"""Three training steps of the reference DCGAN in PyTorch from fully determined
inputs, for gan/reference_test.go: the Go trainer, started from the same
weights, batches and noise, must reproduce them.

Every parameter p (G's, then D's, in state_dict order, numbered k = 0, 1, ...)
is set to base + 0.02*sin(0.1*i + k) at flat position i, base 1 for BatchNorm
weights and 0 otherwise. Step s (0, 1, 2) uses the real batch
x[n,0,h,w] = sin(0.3*n + 0.2*h + 0.1*w + s) and the noise
z[n,j] = 1.5*sin(0.7*n + 1.3*j + 0.5*s), batch 8, Adam lr 2e-4, betas
(0.5, 0.999), eps 1e-8, D frozen during G's backward pass (as the Go trainer).

The reference run is in float64, so the file does not depend on PyTorch's
float32 summation order (thread count, SIMD width) and regenerates to the
same values. What the test compares and why:

- Step 1, element by element: the gradient of every parameter that its
  optimizer used in step 1 (D's after its two backward passes, G's after
  the G pass) and the BatchNorm running statistics after step 1. These are
  smooth functions of the inputs, so a float32 engine agrees with the
  float64 reference to ~1e-6 of each tensor's largest value; the test
  allows 1e-5. Stored as float32 in torch_reference_step1.safetensors
  (the float32 rounding, 6e-8 relative, is far below the tolerance).
- Steps 2 and 3: Adam's first step moves each weight by lr*g/(|g|+eps),
  i.e. by +-lr for almost every weight, so a gradient within rounding of
  zero flips a whole lr-sized move, and from step 2 on a float32 run is one
  of many equally valid roundings. The script measures that spread: the
  float32 run and PERTURBATIONS float32 runs whose starting weights are
  multiplied by (1 + 2^-23*u), u ~ U(-1, 1) (one float32 rounding), are
  compared with the float64 reference; each statistic's tolerance is
  SAFETY times the largest deviation seen, and at least 1e-5 of its size.
  The per-tensor sums of the state after three steps get tolerances the
  same way.

Writes gan/testdata/torch_reference_steps.json (with the platform and
library versions that made it) and gan/testdata/torch_reference_step1.safetensors.
Run with two threads, as on the project's machines:

    OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench/gan/reference_steps.py
"""
import json
import os
import platform
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_torch as T  # noqa: E402

THREADS = 2
PERTURBATIONS = 8
SAFETY = 3.0
N = 8
LR, BETAS, EPS = 2e-4, (0.5, 0.999), 1e-8
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "gan", "testdata")

torch.set_num_threads(THREADS)


def hash01(x):
    """A deterministic pseudo-random value in [-1, 1) from x (float64):
    2*frac(43758.5453*sin(x)) - 1, the classic shader hash."""
    v = torch.sin(x) * 43758.5453
    return 2 * (v - torch.floor(v)) - 1


def models(dtype, perturb_seed=None):
    """G and D with the formula weights, optionally perturbed by one float32 rounding."""
    torch.set_default_dtype(dtype)
    g, d = T.generator().to(dtype), T.discriminator().to(dtype)
    rng = None if perturb_seed is None else torch.Generator().manual_seed(perturb_seed)
    k = 0
    with torch.no_grad():
        for m in (g, d):
            for name, p in m.named_parameters():
                i = torch.arange(p.numel(), dtype=torch.float64)
                base = 1.0 if (name.endswith("weight") and p.dim() == 1) else 0.0
                v = base + 0.02 * hash01(12.9898 * i + 78.233 * k)
                if rng is not None:
                    u = torch.rand(v.shape, generator=rng, dtype=torch.float64) * 2 - 1
                    v = v * (1 + 2.0**-23 * u)
                p.copy_(v.reshape(p.shape).to(dtype))
                k += 1
    return g, d


def batch(s, dtype):
    n = torch.arange(N, dtype=torch.float64).reshape(N, 1, 1, 1)
    h = torch.arange(28, dtype=torch.float64).reshape(1, 1, 28, 1)
    w = torch.arange(28, dtype=torch.float64).reshape(1, 1, 1, 28)
    real = hash01(0.37 * (n * 784 + h * 28 + w) + 5.1 * s).to(dtype)
    nn_ = torch.arange(N, dtype=torch.float64).reshape(N, 1)
    j = torch.arange(T.Z_DIM, dtype=torch.float64).reshape(1, T.Z_DIM)
    z = (1.5 * hash01(0.91 * (nn_ * T.Z_DIM + j) + 3.7 * s)).to(dtype)
    return real, z


def run(dtype, perturb_seed=None):
    """Three steps; returns the per-step statistics, step 1's gradients and
    running statistics, and the state after three steps."""
    g, d = models(dtype, perturb_seed)
    opt_g = torch.optim.Adam(g.parameters(), lr=LR, betas=BETAS, eps=EPS)
    opt_d = torch.optim.Adam(d.parameters(), lr=LR, betas=BETAS, eps=EPS)
    steps, step1 = [], {}
    for s in range(3):
        real, z = batch(s, dtype)
        ones, zeros = torch.ones(N, 1, dtype=dtype), torch.zeros(N, 1, dtype=dtype)
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
        for p in d.parameters():
            p.requires_grad_(False)
        out_gen = d(fake)
        loss_g = F.binary_cross_entropy_with_logits(out_gen, ones)
        loss_g.backward()
        for p in d.parameters():
            p.requires_grad_(True)
        opt_g.step()
        steps.append({
            "d_loss": loss_real.item() + loss_fake.item(), "g_loss": loss_g.item(),
            "d_x": torch.sigmoid(out_real).double().mean().item(),
            "d_g_z": torch.sigmoid(out_fake).double().mean().item(),
        })
        if s == 0:
            for prefix, m in (("G.", g), ("D.", d)):
                for name, p in m.named_parameters():
                    step1["grad." + prefix + name] = p.grad.detach().clone()
                for name, t in m.state_dict().items():
                    if "running" in name:
                        step1["state." + prefix + name] = t.detach().clone()
    state = {}
    for prefix, m in (("G.", g), ("D.", d)):
        for name, t in m.state_dict().items():
            t = t.double()
            state[prefix + name] = {"sum": t.sum().item(), "abs_sum": t.abs().sum().item()}
    return steps, step1, state


def write_safetensors(path, tensors, meta):
    """A float32 safetensors file: 8-byte little-endian header length, the JSON
    header padded with spaces to a multiple of 8, the raw little-endian data."""
    header = {"__metadata__": meta}
    chunks, offset = [], 0
    for name in sorted(tensors):
        raw = tensors[name].to(torch.float32).contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    hjson = json.dumps(header, separators=(",", ":"), sort_keys=True).encode("utf-8")
    hjson += b" " * (-len(hjson) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for raw in chunks:
            f.write(raw)


ref_steps, ref_step1, ref_state = run(torch.float64)
runs = [run(torch.float32)] + [run(torch.float32, seed) for seed in range(1, PERTURBATIONS + 1)]

keys = ("d_loss", "g_loss", "d_x", "d_g_z")
steps = []
for s, ref in enumerate(ref_steps):
    spread = {k: max(abs(r[0][s][k] - ref[k]) for r in runs) for k in keys}
    steps.append({k: ref[k] for k in keys} | {
        "tol": {k: max(SAFETY * spread[k], 1e-5 * abs(ref[k])) for k in keys},
        "spread": spread,
    })
state = {}
for name, ref in ref_state.items():
    spread = max(max(abs(r[2][name]["sum"] - ref["sum"]), abs(r[2][name]["abs_sum"] - ref["abs_sum"])) for r in runs)
    state[name] = ref | {"tol": max(SAFETY * spread, 1e-5 * ref["abs_sum"]), "spread": spread}
# How far the float32 run's step-1 tensors are from the float64 reference,
# relative to each tensor's largest value: what the test's 1e-5 must cover.
step1_f32 = runs[0][1]
step1_err = {
    name: (step1_f32[name].double() - t).abs().max().item() / max(t.abs().max().item(), 1e-300)
    for name, t in ref_step1.items()
}

versions = {
    "python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
    "platform": platform.platform(), "machine": platform.machine(), "threads": THREADS,
}
meta = {"generator": "bench/gan/reference_steps.py", "reference_dtype": "float64"} | {k: str(v) for k, v in versions.items()}
write_safetensors(os.path.join(OUT, "torch_reference_step1.safetensors"), ref_step1, meta)
doc = {
    "generator": "bench/gan/reference_steps.py",
    "versions": versions,
    "reference_dtype": "float64",
    "perturbations": PERTURBATIONS,
    "safety": SAFETY,
    "adam": {"lr": LR, "betas": list(BETAS), "eps": EPS},
    "steps": steps,
    "state": state,
    "step1_float32_max_rel_err": step1_err,
}
with open(os.path.join(OUT, "torch_reference_steps.json"), "w") as f:
    json.dump(doc, f, indent=1, sort_keys=True)
    f.write("\n")
print("wrote", os.path.normpath(OUT), "torch_reference_steps.json and torch_reference_step1.safetensors")
for s, st in enumerate(steps):
    print("step %d:" % (s + 1), " ".join("%s %.6f ± %.2g" % (k, st[k], st["tol"][k]) for k in keys))
print("step 1 float32 vs float64, worst relative-to-max error: %.2g" % max(step1_err.values()))
