#!/usr/bin/python3
"""Two epochs of auto-encoder training in PyTorch, step for step as
`autoencoder.Train` runs them, for autoencoder/reference_test.go.

The data are 48 training and 16 test images of 8x8 pixels,
x[i, p] = (hash01(0.53*(64*i + p) + c) + 1)/2 with c = 1.7 (train) and 4.1
(test), rounded to float32, where hash01(v) = 2*frac(43758.5453*sin(v)) - 1.
The model is 64 -> 16 ReLU -> 64 sigmoid with backprop's initialization
for seed 3 and backprop's batch order (go_init and go_pcg/go_permutation of
train_torch.py, which reproduce autoencoder.seededPCG and data.Batches), the
loss the sum of squared errors per image averaged over a batch of 16, so an
epoch is 3 steps. Two optimizers, as `backprop train autoencoder` offers them:
Adam (lr 1e-3, PyTorch's betas and eps) and SGD (lr 0.01, momentum 0.9).

The reference runs in float64 (the float32 initial weights are exact in
float64), so the file does not depend on PyTorch's float32 summation order.
The same run in float32 is compared with it and the largest deviations are
recorded: they show how far a correct float32 engine lands from the
reference, which the test's tolerances must (and do, by a wide margin)
cover.

Writes autoencoder/testdata/torch_reference_steps.json:

    OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench/autoencoder/reference_steps.py
"""
import json
import os
import platform
import sys

import numpy as np
import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_torch import AE, go_init, go_pcg, go_permutation, SHUFFLE_STREAM  # noqa: E402

torch.set_num_threads(2)
SIDE, HIDDEN, BATCH, EPOCHS, SEED = 8, 16, 16, 2, 3
TRAIN, TEST = 48, 16
RUNS = {"adam": {"lr": 1e-3}, "sgd": {"lr": 0.01, "momentum": 0.9}}
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "autoencoder", "testdata", "torch_reference_steps.json")


def hash01(v):
    v = np.sin(v) * 43758.5453
    return 2 * (v - np.floor(v)) - 1


def images(n, c):
    i = np.arange(n, dtype=np.float64).reshape(n, 1)
    p = np.arange(SIDE * SIDE, dtype=np.float64).reshape(1, SIDE * SIDE)
    return ((hash01(0.53 * (SIDE * SIDE * i + p) + c) + 1) / 2).astype(np.float32)


def run(name, dtype):
    xtrain = torch.from_numpy(images(TRAIN, 1.7)).to(dtype)
    xtest = torch.from_numpy(images(TEST, 4.1)).to(dtype)
    model = AE(SIDE * SIDE, HIDDEN)
    go_init(model, SEED)
    model = model.to(dtype)
    cfg = RUNS[name]
    if name == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    else:
        opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=cfg["momentum"])
    shuffle = go_pcg(SEED, SHUFFLE_STREAM)
    losses, test_errors = [], []
    for _ in range(EPOCHS):
        perm = go_permutation(shuffle, TRAIN)
        for s in range(TRAIN // BATCH):
            xb = xtrain[perm[s * BATCH:(s + 1) * BATCH]]
            loss = ((model(xb) - xb) ** 2).sum(dim=1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        with torch.no_grad():
            test_errors.append(((model(xtest) - xtest) ** 2).double().sum(dim=1).mean().item())
    state = {k: v.detach().double().flatten().tolist() for k, v in model.state_dict().items()}
    return losses, test_errors, state


doc = {
    "generator": "bench/autoencoder/reference_steps.py",
    "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
                 "platform": platform.platform(), "machine": platform.machine(), "threads": torch.get_num_threads()},
    "reference_dtype": "float64",
    "data": {"side": SIDE, "train": TRAIN, "test": TEST, "train_c": 1.7, "test_c": 4.1},
    "hidden": HIDDEN, "batch": BATCH, "epochs": EPOCHS, "seed": SEED,
    "runs": {},
}
for name in RUNS:
    losses, test_errors, state = run(name, torch.float64)
    l32, t32, s32 = run(name, torch.float32)
    dev = {
        "step_loss": max(abs(a - b) / abs(b) for a, b in zip(l32, losses)),
        "test_error": max(abs(a - b) / abs(b) for a, b in zip(t32, test_errors)),
        "state": max(max(abs(a - b) for a, b in zip(s32[k], v)) / max(abs(x) for x in v) for k, v in state.items()),
    }
    doc["runs"][name] = RUNS[name] | {"step_loss": losses, "test_error": test_errors, "state": state,
                                      "float32_max_rel_dev": dev}
    print(name, "step losses", " ".join("%.6f" % v for v in losses), "| float32 vs float64:", dev)
with open(OUT, "w") as f:
    json.dump(doc, f, indent=1, sort_keys=True)
    f.write("\n")
print("wrote", os.path.normpath(OUT))
