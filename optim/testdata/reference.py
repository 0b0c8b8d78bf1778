"""Reference trajectories for the optim package tests, computed with PyTorch.

Run once with `python3 reference.py` from this directory; it writes
reference.json next to itself. The Go test (optim/reference_test.go)
rebuilds the same problem, runs the same optimizers and compares the
parameters after every step, and the optimizer state at the end, to 1e-10.

The problem is tiny and fixed: a linear layer followed by tanh, fitted to
random targets by the squared error summed over outputs and averaged over
the batch of 5, in float64:

    loss = sum((tanh(x @ W.T + b) - t) ** 2) / 5

A third parameter, "unused", takes no part in the loss: its .grad stays
None, so the optimizers must skip it and keep no state for it.
"""

import collections
import json
import os

import torch

torch.set_default_dtype(torch.float64)
torch.manual_seed(7)


def enc(t):
    t = t.detach()
    return {"shape": list(t.shape), "data": [float(v) for v in t.reshape(-1).tolist()]}


initial = collections.OrderedDict([
    ("weight", torch.randn(3, 4) * 0.5),
    ("bias", torch.randn(3) * 0.1),
    ("unused", torch.randn(2)),
])
x = torch.randn(5, 4)
target = torch.rand(5, 3) * 2 - 1

configs = [
    ("sgd", "sgd", dict(lr=0.1)),
    ("sgd_momentum", "sgd", dict(lr=0.1, momentum=0.9)),
    ("sgd_momentum_wd_dampening", "sgd", dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01)),
    ("sgd_nesterov_wd", "sgd", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.02)),
    ("sgd_wd", "sgd", dict(lr=0.2, weight_decay=0.1)),
    ("adam", "adam", dict(lr=0.01)),
    ("adam_betas_eps", "adam", dict(lr=0.05, betas=(0.5, 0.9), eps=1e-6)),
    ("adam_wd_amsgrad", "adam", dict(lr=0.02, weight_decay=0.05, amsgrad=True)),
    ("adam_beta1_zero", "adam", dict(lr=0.002, betas=(0.0, 0.99))),
]
STEPS = 5

out_configs = []
for name, kind, opts in configs:
    params = collections.OrderedDict((k, v.clone().requires_grad_(True)) for k, v in initial.items())
    cls = torch.optim.SGD if kind == "sgd" else torch.optim.Adam
    opt = cls(list(params.values()), **opts)
    steps = []
    for _ in range(STEPS):
        opt.zero_grad()
        y = torch.tanh(x @ params["weight"].T + params["bias"])
        loss = ((y - target) ** 2).sum() / 5
        loss.backward()
        opt.step()
        steps.append({
            "loss": float(loss),
            "params": collections.OrderedDict((k, enc(v)) for k, v in params.items()),
        })
    state = collections.OrderedDict()
    for k, p in params.items():
        for field, v in opt.state.get(p, {}).items():
            if v is None:
                continue
            state[k + "." + field] = enc(v) if torch.is_tensor(v) else {"shape": [], "data": [float(v)]}
    options = dict(opts)
    if "betas" in options:
        options["betas"] = list(options["betas"])
    out_configs.append({"name": name, "optimizer": kind, "options": options, "steps": steps, "state": state})

out = {
    "generated_by": "optim/testdata/reference.py with torch " + torch.__version__,
    "initial": collections.OrderedDict((k, enc(v)) for k, v in initial.items()),
    "x": enc(x),
    "target": enc(target),
    "configs": out_configs,
}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
print("wrote", path, os.path.getsize(path), "bytes")
