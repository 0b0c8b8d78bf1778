"""Reference values for the nn package tests, computed with PyTorch.

Run once with `python3 reference.py` from this directory; it writes
reference.json next to itself. The Go tests (nn/reference_test.go) build the
same layers, load the initial state written here, run the same steps and
compare every output, gradient and state entry to 1e-10.

Everything is float64. Weights, running statistics, inputs and upstream
gradients are drawn from torch's generator with a fixed seed and written
out, so the Go side never needs torch's random numbers. Each case is a list
of steps; a step runs the model in training or evaluation mode on an input
x, back-propagates the upstream gradient gout (the objective is
sum(y * gout)) and records y, the input gradient, every parameter gradient
and the state_dict afterwards (so BatchNorm's running-statistics update is
checked after a training step). Gradients are zeroed between steps.
"""

import collections
import json
import os

import torch
import torch.nn as nn

torch.set_default_dtype(torch.float64)
torch.manual_seed(20240601)


def enc(t):
    t = t.detach()
    return {
        "shape": list(t.shape),
        "dtype": str(t.dtype).replace("torch.", ""),
        "data": [float(v) for v in t.reshape(-1).tolist()],
    }


def state(model):
    return collections.OrderedDict((k, enc(v)) for k, v in model.state_dict().items())


def randomize(model):
    """Non-default values everywhere, so that nothing matches by accident."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn_like(p) * 0.5 + (1.0 if name.endswith("weight") and p.dim() == 1 else 0.0))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.randn_like(b) * 0.3)
            elif name.endswith("running_var"):
                b.copy_(torch.rand_like(b) + 0.5)
            elif name.endswith("num_batches_tracked"):
                b.fill_(3)


def steps(model, specs):
    out = []
    for training, shape in specs:
        model.train(training)
        model.zero_grad()
        x = torch.randn(*shape) * 1.5 + 0.25
        x.requires_grad_(True)
        y = model(x)
        gout = torch.randn_like(y)
        y.backward(gout)
        out.append({
            "training": training,
            "x": enc(x),
            "gout": enc(gout),
            "y": enc(y),
            "grad_x": enc(x.grad),
            "grads": collections.OrderedDict((k, enc(p.grad)) for k, p in model.named_parameters()),
            "state_after": state(model),
        })
    return out


def case(name, model, specs):
    randomize(model)
    return {"name": name, "state_before": state(model), "steps": steps(model, specs)}


cases = []
T, E = True, False

cases.append(case("linear", nn.Linear(3, 4), [(T, (5, 3))]))
cases.append(case("linear_nobias_vector", nn.Linear(4, 2, bias=False), [(T, (4,))]))
cases.append(case("linear_3d", nn.Linear(3, 2), [(T, (2, 3, 3))]))
cases.append(case("conv2d", nn.Conv2d(2, 3, 3, stride=2, padding=1), [(T, (2, 2, 5, 6))]))
cases.append(case("conv2d_nobias", nn.Conv2d(3, 2, 2, stride=1, padding=0, bias=False), [(T, (3, 3, 4, 4))]))
cases.append(case("conv2d_unbatched", nn.Conv2d(2, 2, 3, stride=1, padding=1), [(T, (2, 4, 3))]))
cases.append(case("conv_transpose2d", nn.ConvTranspose2d(3, 2, 4, stride=2, padding=1), [(T, (2, 3, 3, 3))]))
cases.append(case("conv_transpose2d_outpad", nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1, output_padding=1), [(T, (2, 2, 3, 2))]))
cases.append(case("conv_transpose2d_nobias", nn.ConvTranspose2d(2, 2, 3, stride=1, padding=0, bias=False), [(T, (1, 2, 2, 2))]))
cases.append(case("batchnorm1d", nn.BatchNorm1d(4), [(T, (6, 4)), (E, (3, 4)), (T, (5, 4))]))
cases.append(case("batchnorm1d_3d", nn.BatchNorm1d(3), [(T, (2, 3, 4)), (E, (2, 3, 4))]))
cases.append(case("batchnorm2d", nn.BatchNorm2d(3), [(T, (4, 3, 2, 3)), (E, (2, 3, 2, 3)), (T, (2, 3, 3, 2))]))
cases.append(case("relu", nn.ReLU(), [(T, (3, 4))]))
cases.append(case("leaky_relu", nn.LeakyReLU(0.2), [(T, (3, 4))]))
cases.append(case("tanh", nn.Tanh(), [(T, (2, 3, 2))]))
cases.append(case("sigmoid", nn.Sigmoid(), [(T, (3, 4))]))
cases.append(case("flatten", nn.Flatten(), [(T, (2, 3, 2, 2))]))
cases.append(case("unflatten", nn.Unflatten(1, (3, 2, 2)), [(T, (2, 12))]))
cases.append(case("dropout_eval", nn.Dropout(0.4), [(E, (3, 5))]))

discriminator = nn.Sequential(
    nn.Conv2d(1, 4, 3, stride=2, padding=1, bias=False),
    nn.BatchNorm2d(4),
    nn.LeakyReLU(0.2),
    nn.Flatten(),
    nn.Linear(4 * 3 * 3, 1),
    nn.Sigmoid(),
)
cases.append(case("discriminator", discriminator, [(T, (3, 1, 6, 6)), (E, (2, 1, 6, 6))]))

generator = nn.Sequential(
    nn.Linear(5, 8 * 2 * 2),
    nn.BatchNorm1d(32),
    nn.ReLU(),
    nn.Unflatten(1, (8, 2, 2)),
    nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1, bias=False),
    nn.BatchNorm2d(4),
    nn.ReLU(),
    nn.ConvTranspose2d(4, 1, 3, stride=2, padding=1, output_padding=1),
    nn.Tanh(),
)
cases.append(case("generator", generator, [(T, (3, 5)), (E, (2, 5)), (T, (2, 5))]))

autoencoder = nn.Sequential(collections.OrderedDict([
    ("encoder", nn.Sequential(
        nn.Conv2d(1, 2, 3, stride=2, padding=1),
        nn.BatchNorm2d(2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(2 * 2 * 2, 3),
    )),
    ("decoder", nn.Sequential(
        nn.Linear(3, 2 * 2 * 2),
        nn.Unflatten(1, (2, 2, 2)),
        nn.ConvTranspose2d(2, 1, 3, stride=2, padding=1, output_padding=1),
        nn.Sigmoid(),
    )),
]))
cases.append(case("autoencoder", autoencoder, [(T, (2, 1, 4, 4)), (E, (1, 1, 4, 4))]))

out = {
    "generated_by": "nn/testdata/reference.py with torch " + torch.__version__,
    "cases": cases,
}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference.json")
with open(path, "w") as f:
    json.dump(out, f, indent=None, separators=(",", ":"))
    f.write("\n")
print("wrote", path, os.path.getsize(path), "bytes")
