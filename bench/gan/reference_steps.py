#!/usr/bin/env python3
"""Three training steps of the reference DCGAN in PyTorch from fully determined
inputs, for gan/reference_test.go: the Go trainer, started from the same
weights, batches and noise, must reproduce the losses and the parameters.

Every parameter p (G's, then D's, in state_dict order, numbered k = 0, 1, ...)
is set to base + 0.02*sin(0.1*i + k) at flat position i, base 1 for BatchNorm
weights and 0 otherwise. Step s (0, 1, 2) uses the real batch
x[n,0,h,w] = sin(0.3*n + 0.2*h + 0.1*w + s) and the noise
z[n,j] = 1.5*sin(0.7*n + 1.3*j + 0.5*s), batch 8.

Writes gan/testdata/torch_reference_steps.json.
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_torch as T  # noqa: E402

torch.set_num_threads(1)
torch.set_default_dtype(torch.float32)
g, d = T.generator(), T.discriminator()
k = 0
with torch.no_grad():
    for m in (g, d):
        for name, p in m.named_parameters():
            i = torch.arange(p.numel(), dtype=torch.float64)
            base = 1.0 if (name.endswith("weight") and p.dim() == 1) else 0.0
            p.copy_((base + 0.02 * torch.sin(0.1 * i + k)).reshape(p.shape).float())
            k += 1

opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
N = 8
steps = []
for s in range(3):
    n = torch.arange(N, dtype=torch.float64).reshape(N, 1, 1, 1)
    h = torch.arange(28, dtype=torch.float64).reshape(1, 1, 28, 1)
    w = torch.arange(28, dtype=torch.float64).reshape(1, 1, 1, 28)
    real = torch.sin(0.3 * n + 0.2 * h + 0.1 * w + s).float()
    nn_ = torch.arange(N, dtype=torch.float64).reshape(N, 1)
    j = torch.arange(T.Z_DIM, dtype=torch.float64).reshape(1, T.Z_DIM)
    z = (1.5 * torch.sin(0.7 * nn_ + 1.3 * j + 0.5 * s)).float()
    ones, zeros = torch.ones(N, 1), torch.zeros(N, 1)

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
    steps.append({
        "d_loss": loss_real.item() + loss_fake.item(), "g_loss": loss_g.item(),
        "d_x": torch.sigmoid(out_real).double().mean().item(), "d_g_z": torch.sigmoid(out_fake).double().mean().item(),
    })

state = {}
for prefix, m in (("G.", g), ("D.", d)):
    for name, t in m.state_dict().items():
        t = t.double()
        state[prefix + name] = {"sum": t.sum().item(), "abs_sum": t.abs().sum().item()}
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "gan", "testdata", "torch_reference_steps.json")
with open(out, "w") as f:
    json.dump({"torch": torch.__version__, "steps": steps, "state": state}, f, indent=1, sort_keys=True)
print("wrote", os.path.normpath(out))
