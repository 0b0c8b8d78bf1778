#!/usr/bin/python3
"""Independent PyTorch reference for `backprop solve`.

Reads network specs (examples/*.yaml, the problem bank among them, and
solve/testdata/specs/*.yaml), computes every reported forward value and every
parameter gradient in float64 with torch autograd under each convention
combination that matters for the spec, performs the optimizer steps a spec's
`train:` asks for with torch.optim, and writes solve/testdata/reference.json.
The Go test solve/reference_test.go compares backprop against that file.

It also writes the course-*.yaml specs under solve/testdata/specs: random
problems of the course's families (a softmax classifier on a batch, a conv
net with max and average pooling, batch norm, layer norm, a residual block
with a shared weight, dropout, weight decay, momentum and Adam steps), drawn
from a fixed seed, each answered by PyTorch below.

The spec semantics are implemented here from their description
(docs/spec-format.md) with PyTorch's own operators, never from backprop's
code or output. Run from the module root:

    /usr/bin/python3 solve/testdata/reference.py

Only PyYAML, torch and the standard library are used.
"""

import glob
import itertools
import json
import math
import os
import random
import re
import sys

import torch
import torch.nn.functional as F
import yaml

torch.set_num_threads(2)
torch.set_default_dtype(torch.float64)
DT = torch.float64

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
OUT = os.path.join(HERE, "reference.json")

# The problem bank: examples/<name>.yaml (every one must exist).
BANK = ["mazur", "softmax-classifier", "convnet-pool", "batchnorm", "residual", "dropout",
        "weight-decay", "momentum", "adam", "layernorm", "gated-concat"]

# Random course problems: their spec files, drawn from this seed.
COURSE_SEED = 20240612
# A drawn problem is kept only if no ReLU input lies within MARGIN of 0 and
# no max-pooling window's winner within MARGIN of the runner-up, at the
# starting values and after every optimizer step, so that summation order
# cannot decide a kink or a tie.
MARGIN = 1e-3


class SpecError(Exception):
    pass


def tensor(v):
    """A number or nested list of numbers as a float64 tensor."""
    t = torch.tensor(v, dtype=DT)
    if not torch.isfinite(t).all():
        raise SpecError("non-finite value")
    return t


def pair(v, default):
    """A stride or padding: one number for both axes, or [h, w]."""
    if v is None:
        return default
    if isinstance(v, (list, tuple)):
        if len(v) != 2:
            raise SpecError("want a number or [h, w], got %r" % (v,))
        return (int(v[0]), int(v[1]))
    return (int(v), int(v))


# ---- reshape orders -------------------------------------------------------
#
# Row-major: torch.reshape. Column-major (MATLAB): every tensor of rank >= 2
# is read in "logical order" with its last two axes column by column and the
# leading axes row-major and slowest, so element (c, h, w) of a C×H×W tensor
# sits at position h + H·w + H·W·c; a vector is its own logical order. A
# column-major reshape maps the source's logical order onto the target's.
# Reading a rank-k tensor column-first in its last two axes is the same as
# swapping those two axes and reading row-major, which is what is done here.
# In a batch, each sample (the leading axis) is reshaped on its own.


def to_logical(x, column_major, nb=0):
    lead = list(x.shape[:nb])
    if not column_major or x.dim() - nb < 2:
        return x.reshape(lead + [-1])
    return x.transpose(-1, -2).reshape(lead + [-1])


def from_logical(v, shape, column_major, nb=0):
    lead = list(v.shape[:nb])
    shape = list(shape)
    if not column_major or len(shape) < 2:
        return v.reshape(lead + shape)
    swapped = shape[:-2] + [shape[-1], shape[-2]]
    return v.reshape(lead + swapped).transpose(-1, -2)


def reshape(x, shape, column_major, nb=0):
    n = 1
    for d in shape:
        n *= d
    per = x[0].numel() if nb else x.numel()
    if n != per:
        raise SpecError("reshape of %d values to %r" % (per, shape))
    return from_logical(to_logical(x, column_major, nb), shape, column_major, nb)


# ---- layers ---------------------------------------------------------------


class Margins:
    """The smallest distance to a kink (ReLU at 0) or a tie (max pooling)
    met in a forward pass, for drawing random problems that are safe."""

    def __init__(self):
        self.relu = math.inf
        self.pool = math.inf

    def note_relu(self, u):
        self.relu = min(self.relu, float(u.detach().abs().min()))

    def note_pool(self, x, k, s, p):
        # every window's largest and second largest value
        x = x.detach()
        if x.dim() == 3:
            x = x.unsqueeze(0)
        n, c = x.shape[:2]
        xp = F.pad(x, (p[1], p[1], p[0], p[0]), value=-math.inf)
        cols = F.unfold(xp.reshape(n * c, 1, *xp.shape[2:]), k, stride=s)  # (n·c, kh·kw, L)
        top = cols.topk(2, dim=1).values
        # a window whose largest value is 0 holds ReLU zeros: whichever
        # wins, the ReLU before it passes no gradient
        gap = (top[:, 0] - top[:, 1])[top[:, 0] != 0]
        if gap.numel():
            self.pool = min(self.pool, float(gap.min()))


def activate(u, layer, margins=None):
    act = layer.get("activation") or "identity"
    if act == "identity":
        return u
    if act == "relu":
        if margins is not None:
            margins.note_relu(u)
        return torch.relu(u)
    if act == "leaky_relu":
        if margins is not None:
            margins.note_relu(u)
        slope = float(layer.get("slope") or 0.0)
        if slope == 0.0:
            slope = 0.01  # the spec's default
        return F.leaky_relu(u, negative_slope=slope)
    if act == "sigmoid":
        return torch.sigmoid(u)
    if act == "tanh":
        return torch.tanh(u)
    raise SpecError("unknown activation %r" % act)


def add_bias(u, b, nb):
    """u + b for a bias of the output's per-sample shape, or one number
    shared by every unit."""
    if b is None:
        return u
    if b.dim() == 0:
        return u + b
    if tuple(b.shape) != tuple(u.shape[nb:]):
        raise SpecError("linear bias shape %r, want %r" % (tuple(b.shape), tuple(u.shape[nb:])))
    return u + b


def linear(x, w, b, layer, nb):
    """The affine part u = W x + b (F.linear on a batch's rows)."""
    if x.dim() != 1 + nb:
        raise SpecError("linear input must be a vector (per sample)")
    if nb:
        u = x @ w if layer.get("transpose") else x @ w.t()
    else:
        u = torch.mv(w.t(), x) if layer.get("transpose") else torch.mv(w, x)
    return add_bias(u, b, nb)


def conv(x, w, b, layer, kernel, nb):
    """The affine part of a conv or deconv layer."""
    if x.dim() != 3 + nb:
        raise SpecError("conv input must be channels×height×width (per sample)")
    stride = pair(layer.get("stride"), (1, 1))
    padding = pair(layer.get("padding"), (0, 0))
    xb = x if nb else x.unsqueeze(0)
    if layer["type"] == "conv":
        y = F.conv2d(xb, w, stride=stride, padding=padding)
    else:
        outpad = pair(layer.get("output_padding"), (0, 0))
        wk = torch.flip(w, [2, 3]) if kernel == "flipped" else w
        y = F.conv_transpose2d(xb, wk, stride=stride, padding=padding, output_padding=outpad)
    if not nb:
        y = y[0]
    if b is not None:
        cout, oh, ow = y.shape[nb:]
        bs = tuple(b.shape)
        mode = layer.get("bias_mode") or ("channel" if bs == (cout,) else "pixel")
        if mode == "channel" and bs == (cout,):
            y = y + b.reshape(cout, 1, 1)
        elif mode == "pixel" and bs == (cout, oh, ow):
            y = y + b
        elif mode == "pixel" and cout == 1 and bs == (oh, ow):
            y = y + b.unsqueeze(0)
        else:
            raise SpecError("bias of shape %r for output %r" % (bs, tuple(y.shape)))
    return y


def pool(x, layer, nb, margins):
    """F.max_pool2d or F.avg_pool2d (count_include_pad, as PyTorch's default)."""
    if x.dim() != 3 + nb:
        raise SpecError("pooling input must be channels×height×width (per sample)")
    k = pair(layer.get("kernel_size"), None)
    if k is None:
        raise SpecError("pooling needs kernel_size")
    s = pair(layer.get("stride"), k)
    p = pair(layer.get("padding"), (0, 0))
    xb = x if nb else x.unsqueeze(0)
    if layer["type"] == "maxpool":
        if margins is not None:
            margins.note_pool(xb, k, s, p)
        y = F.max_pool2d(xb, k, stride=s, padding=p)
    else:
        y = F.avg_pool2d(xb, k, stride=s, padding=p, count_include_pad=True)
    return y if nb else y[0]


def pre_name(layer):
    """The name of a layer's pre-activation: `preactivation`, else u<n> for
    an output h<n>, else u_<name>."""
    if layer.get("preactivation"):
        return layer["preactivation"]
    m = re.fullmatch(r"h(\d+)", layer["name"])
    if m:
        return "u" + m.group(1)
    return "u_" + layer["name"]


def read_inputs(spec):
    """The spec's inputs in order: (name, kind, batch, value)."""
    if "inputs" in spec:
        raw = spec["inputs"]
    else:
        raw = [spec["input"]]
    out = []
    for inp in raw:
        kind = inp.get("kind") or "data"
        v = inp["value"]
        out.append((inp["name"], kind, bool(inp.get("batch")), v))
    return out


def batched(spec):
    """Whether the spec's (first data) input is a batch."""
    for _, kind, batch, _ in read_inputs(spec):
        if kind == "data":
            return batch
    raise SpecError("no data input")


def evaluate(spec, params, kernel, reshape_order, label, margins=None):
    """One forward pass at the given parameter tensors: the reported values
    in report order, the objective and whether it is maximized."""
    colmajor = reshape_order == "column-major"
    nb = 1 if batched(spec) else 0
    env = {}
    data0 = None
    inputs = {}
    for name, kind, _, v in read_inputs(spec):
        if kind == "labels":
            inputs[name] = torch.tensor(v, dtype=torch.long).reshape(-1)
            continue
        t = tensor(v)
        inputs[name] = t
        if kind == "data":
            env[name] = t
            if data0 is None:
                data0 = t
    x = data0
    layers = spec["layers"]
    forward = []
    objective = None
    maximize = False
    obj = dict(spec.get("objective") or {})
    last_logistic = layers[-1]["type"] == "logistic"
    obj_type = obj.get("type") or ("log_p" if last_logistic else "sse")
    for i, layer in enumerate(layers):
        t = layer["type"]
        w = params[layer["weight"]] if layer.get("weight") else None
        b = params[layer["bias"]] if layer.get("bias") else None
        ins = [x]
        if layer.get("inputs"):
            ins = [env[n] for n in layer["inputs"]]
            x = ins[0]
        if t in ("linear", "conv", "deconv"):
            u = linear(x, w, b, layer, nb) if t == "linear" else conv(x, w, b, layer, kernel, nb)
            if (layer.get("activation") or "identity") != "identity":
                env[pre_name(layer)] = u
            x = activate(u, layer, margins)
        elif t == "reshape":
            x = reshape(x, layer["shape"], colmajor, nb)
        elif t == "flatten":
            x = reshape(x, [x[0].numel() if nb else x.numel()], colmajor, nb)
        elif t == "activation":
            x = activate(x, layer, margins)
        elif t in ("softmax", "log_softmax"):
            axis = int(layer.get("axis", -1))
            x = F.softmax(x, dim=axis) if t == "softmax" else F.log_softmax(x, dim=axis)
        elif t in ("maxpool", "avgpool"):
            x = pool(x, layer, nb, margins)
        elif t == "batchnorm":
            if not nb:
                raise SpecError("batchnorm needs a batch")
            x = F.batch_norm(x, None, None, w, b, training=True, eps=float(layer.get("eps") or 1e-5))
        elif t == "layernorm":
            x = F.layer_norm(x, (x.shape[-1],), w, b, eps=float(layer.get("eps") or 1e-5))
        elif t == "dropout":
            mask = inputs[layer["mask"]]
            if tuple(mask.shape) != tuple(x.shape):
                raise SpecError("dropout mask shape")
            scale = layer.get("scale")
            if not scale:
                scale = 1.0 / (1.0 - float(layer.get("p") or 0.0))
            x = x * mask * float(scale)
        elif t in ("add", "mul"):
            if len(ins) != 2 or tuple(ins[0].shape) != tuple(ins[1].shape):
                raise SpecError("%s of two tensors of one shape" % t)
            x = ins[0] + ins[1] if t == "add" else ins[0] * ins[1]
        elif t == "concat":
            axis = int(layer.get("axis", nb))
            x = torch.cat(ins, dim=axis)
        elif t == "logistic":
            if i != len(layers) - 1:
                raise SpecError("logistic must be last")
            if tuple(w.shape) != tuple(x.shape[nb:]):
                raise SpecError("logistic weight shape")
            if nb:
                a = x.reshape(x.shape[0], -1) @ w.reshape(-1)
            else:
                if x.dim() != 1:
                    raise SpecError("logistic input must be a vector")
                a = torch.dot(w, x)
            if b is not None:
                if b.numel() != 1:
                    raise SpecError("logistic bias must be one number")
                a = a + b.reshape(())
            # s is the logit of class y = 0
            s = a if label == "y0" else -a
            name = layer.get("name") or "p"
            forward.append((name, torch.sigmoid(s)))
            logp = F.logsigmoid(s)
            forward.append(("log_" + name, logp))
            if obj_type == "log_p":
                objective = logp.sum()  # maximized; summed over a batch
                maximize = True
            elif obj_type == "bce":
                lab = int(obj.get("label") or 0)
                # −log p(y = lab): p(y=0) = σ(s), p(y=1) = σ(−s)
                loss = -F.logsigmoid(s) if lab == 0 else -F.logsigmoid(-s)
                loss = loss.sum()
                forward.append(("loss", loss))
                objective = loss
            else:
                raise SpecError("objective %r with a logistic layer" % obj_type)
            continue
        else:
            raise SpecError("unknown layer type %r" % t)
        env[layer["name"]] = x
        forward.append((layer["name"], x))
    out = env[obj["of"]] if obj.get("of") else x
    n = out.shape[0] if nb else 1
    if obj_type in ("sse", "half_sse", "mse"):
        target = inputs[obj["target"]] if obj.get("target") else data0
        if tuple(out.shape) != tuple(target.shape):
            raise SpecError("%s: output shape %r, target %r" % (obj_type, tuple(out.shape), tuple(target.shape)))
        red = obj.get("reduction") or ("mean" if obj_type == "mse" else "sum")
        sq = ((out - target) ** 2).sum()
        if obj_type == "mse":
            loss = F.mse_loss(out, target, reduction=red)
        elif obj_type == "half_sse":
            loss = 0.5 * sq if red == "sum" else sq / (2 * n)
        else:
            loss = sq if red == "sum" else sq / n
        forward.append((obj.get("name") or "L", loss))
        objective = loss
    elif obj_type == "cross_entropy":
        labels = inputs[obj["labels"]]
        red = obj.get("reduction") or "mean"
        logits = out if out.dim() == 2 else out.unsqueeze(0)
        if int(labels.max()) >= logits.shape[1] or int(labels.min()) < 0:
            raise SpecError("label outside the classes")
        loss = F.cross_entropy(logits, labels, reduction=red)
        forward.append((obj.get("name") or "L", loss))
        objective = loss
    elif obj_type not in ("log_p", "bce"):
        raise SpecError("unknown objective %r" % obj_type)
    wd = obj.get("weight_decay")
    if wd:
        lam = float(wd["lambda"])
        names = wd.get("params")
        if not names:  # every layer weight
            names = []
            for layer in layers:
                if layer.get("weight") and layer["weight"] not in names:
                    names.append(layer["weight"])
        penalty = sum((params[p] ** 2).sum() for p in names)
        objective = objective - lam / 2 * penalty if maximize else objective + lam / 2 * penalty
        forward.append(("J", objective))
    return forward, objective, maximize


def leaf_params(spec):
    return {name: tensor(v).requires_grad_(True) for name, v in spec["params"].items()}


def run(spec, kernel, reshape_order, label, margins=None):
    """Forward values (in report order), gradients (in params order), and
    the optimizer steps of `train:` (or None) with the final objective."""
    params = leaf_params(spec)
    forward, objective, maximize = evaluate(spec, params, kernel, reshape_order, label, margins)
    names = list(params)
    grads = torch.autograd.grad(objective, [params[n] for n in names], allow_unused=True)
    gradients = []
    for n, g in zip(names, grads):
        if g is None:
            g = torch.zeros_like(params[n])
        gradients.append((n, g))
    tr = spec.get("train")
    if not tr:
        return forward, gradients, None, None
    # the optimizer steps, by torch.optim, from fresh leaves
    params = leaf_params(spec)
    plist = [params[n] for n in names]
    opt_name = tr["optimizer"]
    lr = float(tr["lr"])
    if opt_name == "sgd":
        opt = torch.optim.SGD(plist, lr=lr, maximize=maximize)
    elif opt_name == "momentum":
        opt = torch.optim.SGD(plist, lr=lr, momentum=float(tr.get("momentum") or 0.9), maximize=maximize)
    elif opt_name == "adam":
        betas = tuple(float(b) for b in (tr.get("betas") or [0.9, 0.999]))
        opt = torch.optim.Adam(plist, lr=lr, betas=betas, eps=float(tr.get("eps") or 1e-8),
                               maximize=maximize)
    else:
        raise SpecError("unknown optimizer %r" % opt_name)
    steps = []
    for k in range(1, int(tr.get("steps") or 1) + 1):
        opt.zero_grad()
        _, objective, _ = evaluate(spec, params, kernel, reshape_order, label, margins)
        objective.backward()
        before = objective.detach().clone()
        opt.step()
        steps.append((k, before, [(n, params[n].detach().clone()) for n in names]))
    with torch.no_grad():
        _, final, _ = evaluate(spec, params, kernel, reshape_order, label, margins)
    return forward, gradients, steps, final


def conventions(spec):
    """The convention combinations that can change this spec's numbers."""
    c = spec.get("conventions") or {}
    types = {l["type"] for l in spec["layers"]}
    kernels = ["pytorch", "flipped"] if "deconv" in types else [c.get("kernel") or "pytorch"]
    reshapes = (["row-major", "column-major"] if types & {"reshape", "flatten"}
                else [c.get("reshape") or "row-major"])
    labels = ["y0", "y1"] if "logistic" in types else [c.get("label") or "y0"]
    return itertools.product(kernels, reshapes, labels)


def nested(t):
    t = t.detach()
    if t.dim() == 0:
        return float(t.item())
    return t.tolist()


def dumps(doc):
    """JSON with one tensor per line. Python's float repr, which json uses, is
    the shortest string that reads back as the same float64."""
    def compact(v):
        return json.dumps(v, separators=(", ", ": "), allow_nan=False)

    def tensors(d, indent):
        items = ["%s%s: %s" % (indent, json.dumps(k), compact(v)) for k, v in d.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent[:-2] + "}"

    out = ["{"]
    for k in ("generator", "torch_version", "dtype"):
        out.append("  %s: %s," % (json.dumps(k), compact(doc[k])))
    out.append('  "cases": [')
    cases = []
    for c in doc["cases"]:
        lines = ["    {"]
        for k in ("spec", "kernel", "reshape", "label"):
            lines.append("      %s: %s," % (json.dumps(k), compact(c[k])))
        lines.append('      "forward": %s,' % tensors(c["forward"], "        "))
        if "steps" not in c:
            lines.append('      "gradients": %s' % tensors(c["gradients"], "        "))
        else:
            lines.append('      "gradients": %s,' % tensors(c["gradients"], "        "))
            steps = []
            for st in c["steps"]:
                steps.append('        {"step": %d, "objective": %s, "params": %s}' % (
                    st["step"], compact(st["objective"]), tensors(st["params"], "            ")))
            lines.append('      "steps": [\n%s\n      ],' % ",\n".join(steps))
            lines.append('      "final_objective": %s' % compact(c["final_objective"]))
        lines.append("    }")
        cases.append("\n".join(lines))
    out.append(",\n".join(cases))
    out.append("  ]")
    out.append("}")
    text = "\n".join(out) + "\n"
    if json.loads(text) != doc:
        raise AssertionError("JSON writer does not round-trip")
    return text


def case(rel, spec, kernel, order, label):
    fwd, grads, steps, final = run(spec, kernel, order, label)
    c = {
        "spec": rel,
        "kernel": kernel,
        "reshape": order,
        "label": label,
        "forward": {k: nested(v) for k, v in fwd},
        "gradients": {k: nested(v) for k, v in grads},
    }
    if steps is not None:
        c["steps"] = [{"step": k, "objective": nested(obj), "params": {n: nested(v) for n, v in ps}}
                      for k, obj, ps in steps]
        c["final_objective"] = nested(final)
    return c


# ---- random course problems -----------------------------------------------
#
# Each family draws its numbers from the rng with three decimals, as a
# problem set writes them, and returns the spec as a dict. The dicts are
# written as YAML below; yaml.safe_load of the file gives the dict back.


def vals(rng, *shape, lo=-1.0, hi=1.0):
    if not shape:
        return round(rng.uniform(lo, hi), 3)
    return [vals(rng, *shape[1:], lo=lo, hi=hi) for _ in range(shape[0])]


def course_softmax(rng):
    n, d, hdim, k = 4, 5, 4, 3
    return {
        "title": "Course: a softmax classifier on a batch, tanh hidden layer, two SGD steps",
        "about": ["A batch of four samples, a tanh hidden layer and three logits z; the",
                  "softmax probabilities P are reported (a layer reading z), the mean",
                  "cross-entropy is taken of the logits (objective.of), two SGD steps."],
        "inputs": [{"name": "x", "batch": True, "value": vals(rng, n, d, lo=-2, hi=2)},
                   {"name": "y", "kind": "labels", "value": [rng.randrange(k) for _ in range(n)]}],
        "layers": [{"type": "linear", "name": "h1", "weight": "W1", "bias": "b1", "activation": "tanh"},
                   {"type": "linear", "name": "z", "weight": "W2", "bias": "b2"},
                   {"type": "softmax", "name": "P", "inputs": ["z"]}],
        "objective": {"type": "cross_entropy", "labels": "y", "reduction": "mean", "of": "z"},
        "train": {"optimizer": "sgd", "lr": 0.5, "steps": 2},
        "params": {"W1": vals(rng, hdim, d), "b1": vals(rng, hdim), "W2": vals(rng, k, hdim),
                   "b2": vals(rng, k)},
    }


def course_convnet(rng):
    n, c, hw = 2, 2, 6
    return {
        "title": "Course: a conv net with max and average pooling on a batch, cross-entropy (sum)",
        "about": ["Two 2-channel 6×6 images: a padded 3×3 conv to three channels with",
                  "ReLU, 2×2 max pooling, a 2×2 conv with leaky ReLU, 2×2 average pooling",
                  "at stride 1 with padding 1 (zeros counted), flatten, four logits."],
        "inputs": [{"name": "x", "batch": True, "value": vals(rng, n, c, hw, hw, lo=0, hi=1)},
                   {"name": "y", "kind": "labels", "value": [rng.randrange(4) for _ in range(n)]}],
        "layers": [{"type": "conv", "name": "h1", "weight": "k1", "bias": "c1", "padding": 1,
                    "activation": "relu"},
                   {"type": "maxpool", "name": "m1", "kernel_size": 2},
                   {"type": "conv", "name": "h2", "weight": "k2", "bias": "c2", "activation": "leaky_relu",
                    "slope": 0.1},
                   {"type": "avgpool", "name": "a2", "kernel_size": 2, "stride": 1, "padding": 1},
                   {"type": "flatten", "name": "f"},
                   {"type": "linear", "name": "z", "weight": "W", "bias": "b"}],
        "objective": {"type": "cross_entropy", "labels": "y", "reduction": "sum"},
        "params": {"k1": vals(rng, 3, c, 3, 3, lo=-0.5, hi=0.5), "c1": vals(rng, 3, lo=-0.2, hi=0.2),
                   "k2": vals(rng, 2, 3, 2, 2, lo=-0.5, hi=0.5), "c2": vals(rng, 2, lo=-0.2, hi=0.2),
                   "W": vals(rng, 4, 2 * 3 * 3, lo=-0.5, hi=0.5), "b": vals(rng, 4, lo=-0.2, hi=0.2)},
    }


def course_batchnorm(rng):
    n, d = 5, 4
    return {
        "title": "Course: batch norm in training mode on a batch of five, MSE",
        "about": ["A linear layer without bias, batch norm over the batch (γ, β, eps",
                  "1e-3), a leaky ReLU activation layer and a linear output, under",
                  "nn.MSELoss against a batch of targets; one momentum step."],
        "inputs": [{"name": "x", "batch": True, "value": vals(rng, n, d, lo=-2, hi=2)},
                   {"name": "t", "kind": "target", "batch": True, "value": vals(rng, n, 2)}],
        "layers": [{"type": "linear", "name": "u", "weight": "W1"},
                   {"type": "batchnorm", "name": "bn", "weight": "gamma", "bias": "beta", "eps": 0.001},
                   {"type": "activation", "name": "h", "activation": "leaky_relu", "slope": 0.2},
                   {"type": "linear", "name": "y", "weight": "W2", "bias": "b2"}],
        "objective": {"type": "mse", "target": "t"},
        "train": {"optimizer": "momentum", "lr": 0.1, "momentum": 0.8, "steps": 1},
        "params": {"W1": vals(rng, 3, d), "gamma": vals(rng, 3, lo=0.5, hi=1.5),
                   "beta": vals(rng, 3, lo=-0.3, hi=0.3), "W2": vals(rng, 2, 3), "b2": vals(rng, 2)},
    }


def course_batchnorm_conv(rng):
    n = 3
    return {
        "title": "Course: batch norm of conv channels (over batch, height and width), a reshape",
        "about": ["Three 1-channel 5×5 images, a 2×2 conv to two channels (no bias: batch",
                  "norm removes it), batch norm per channel over N, H and W, ReLU, 2×2",
                  "average pooling, each sample's 2×2×2 reshaped to 2×4 (the reshape order",
                  "matters), half the sum of squares against targets, mean over the batch."],
        "inputs": [{"name": "x", "batch": True, "value": vals(rng, n, 1, 5, 5, lo=0, hi=1)},
                   {"name": "t", "kind": "target", "batch": True, "value": vals(rng, n, 2, 4, lo=0, hi=1)}],
        "layers": [{"type": "conv", "name": "c", "weight": "k"},
                   {"type": "batchnorm", "name": "bn", "weight": "gamma", "bias": "beta"},
                   {"type": "activation", "name": "r", "activation": "relu"},
                   {"type": "avgpool", "name": "a", "kernel_size": 2},
                   {"type": "reshape", "name": "y", "shape": [2, 4]}],
        "objective": {"type": "half_sse", "target": "t", "reduction": "mean", "name": "E"},
        "params": {"k": vals(rng, 2, 1, 2, 2), "gamma": vals(rng, 2, lo=0.5, hi=1.5),
                   "beta": vals(rng, 2, lo=-0.5, hi=0.5)},
    }


def course_layernorm(rng):
    n, d = 3, 4
    return {
        "title": "Course: layer norm on a batch, log-softmax outputs under squared error",
        "about": ["Layer norm over each sample's five features (γ, β), tanh, a linear",
                  "layer to three outputs and log_softmax; squared error (mean over the",
                  "batch) against target log-probabilities."],
        "inputs": [{"name": "x", "batch": True, "value": vals(rng, n, d, lo=-2, hi=2)},
                   {"name": "t", "kind": "target", "batch": True, "value": vals(rng, n, 3, lo=-2.0, hi=-0.5)}],
        "layers": [{"type": "linear", "name": "u", "weight": "W1", "bias": "b1"},
                   {"type": "layernorm", "name": "ln", "weight": "gamma", "bias": "beta"},
                   {"type": "activation", "name": "h", "activation": "tanh"},
                   {"type": "linear", "name": "z", "weight": "W2", "bias": "b2"},
                   {"type": "log_softmax", "name": "lp"}],
        "objective": {"type": "sse", "target": "t", "reduction": "mean"},
        "params": {"W1": vals(rng, 5, d), "b1": vals(rng, 5), "gamma": vals(rng, 5, lo=0.5, hi=1.5),
                   "beta": vals(rng, 5, lo=-0.3, hi=0.3), "W2": vals(rng, 3, 5), "b2": vals(rng, 3)},
    }


def course_residual(rng):
    d = 3
    return {
        "title": "Course: two residual blocks sharing one weight, a pre-activation read back",
        "about": ["r1 = x + W·ReLU(V x + c), r2 = r1 + W·ReLU(V r1 + c): V, c and W are",
                  "used by both blocks (their gradients add up); g multiplies the second",
                  "block's output with its own pre-activation u_s; ½·Σ(g − t)²."],
        "inputs": [{"name": "x", "value": vals(rng, d, lo=-1.5, hi=1.5)},
                   {"name": "t", "kind": "target", "value": vals(rng, d)}],
        "layers": [{"type": "linear", "name": "h1", "weight": "V", "bias": "c", "activation": "relu"},
                   {"type": "linear", "name": "o1", "weight": "W"},
                   {"type": "add", "name": "r1", "inputs": ["o1", "x"]},
                   {"type": "linear", "name": "h2", "weight": "V", "bias": "c", "activation": "relu"},
                   {"type": "linear", "name": "o2", "weight": "W"},
                   {"type": "add", "name": "r2", "inputs": ["r1", "o2"]},
                   {"type": "linear", "name": "s", "weight": "S", "activation": "sigmoid",
                    "preactivation": "u_s"},
                   {"type": "mul", "name": "g", "inputs": ["s", "u_s"]}],
        "objective": {"type": "half_sse", "target": "t"},
        "params": {"V": vals(rng, d, d), "c": vals(rng, d, lo=-0.2, hi=0.2), "W": vals(rng, d, d),
                   "S": vals(rng, d, d)},
    }


def course_dropout(rng):
    n, d, hdim = 3, 4, 5
    return {
        "title": "Course: dropout with a given mask on a batch, a logistic output, bce",
        "about": ["ReLU hidden units dropped by a given mask and the kept ones scaled by",
                  "1/(1 − 0.4); a second dropout with scale 1.5 after a concat with x;",
                  "a logistic unit per sample and −log p(y=1) summed over the batch; SGD."],
        "inputs": [{"name": "x", "batch": True, "value": vals(rng, n, d, lo=-1.5, hi=1.5)},
                   {"name": "m", "kind": "mask", "value": [[rng.randrange(2) for _ in range(hdim)] for _ in range(n)]},
                   {"name": "m2", "kind": "mask",
                    "value": [[rng.randrange(2) for _ in range(hdim + d)] for _ in range(n)]}],
        "layers": [{"type": "linear", "name": "h1", "weight": "W1", "bias": "b1", "activation": "relu"},
                   {"type": "dropout", "name": "d1", "mask": "m", "p": 0.4},
                   {"type": "concat", "name": "k", "inputs": ["d1", "x"]},
                   {"type": "dropout", "name": "d2", "mask": "m2", "scale": 1.5},
                   {"type": "logistic", "name": "p", "weight": "w2", "bias": "b2"}],
        "objective": {"type": "bce", "label": 1},
        "train": {"optimizer": "sgd", "lr": 0.3, "steps": 2},
        "params": {"W1": vals(rng, hdim, d), "b1": vals(rng, hdim, lo=-0.2, hi=0.2),
                   "w2": vals(rng, hdim + d), "b2": vals(rng, lo=-0.2, hi=0.2)},
    }


def course_weight_decay(rng):
    d = 4
    return {
        "title": "Course: weight decay on every weight, cross-entropy, three momentum steps",
        "about": ["J = cross-entropy + (λ/2)·(‖W1‖² + ‖W2‖²), the default list of every",
                  "layer weight; the hidden layer's bias is one number shared by its",
                  "units; three steps of SGD with momentum."],
        "inputs": [{"name": "x", "value": vals(rng, d, lo=-2, hi=2)},
                   {"name": "y", "kind": "labels", "value": [rng.randrange(3)]}],
        "layers": [{"type": "linear", "name": "h1", "weight": "W1", "bias": "b1", "activation": "sigmoid"},
                   {"type": "linear", "name": "z", "weight": "W2", "bias": "b2"}],
        "objective": {"type": "cross_entropy", "labels": "y", "weight_decay": {"lambda": 0.05}},
        "train": {"optimizer": "momentum", "lr": 0.2, "momentum": 0.9, "steps": 3},
        "params": {"W1": vals(rng, 3, d), "b1": vals(rng), "W2": vals(rng, 3, 3), "b2": vals(rng, 3)},
    }


def course_adam(rng):
    n, d = 4, 3
    return {
        "title": "Course: Adam steps maximizing log p with weight decay, on a batch",
        "about": ["A leaky ReLU layer of transposed weights (in×out) and a logistic unit;",
                  "J = Σₙ log p(yₙ=0) − (λ/2)·‖U‖² is maximized: torch.optim.Adam with",
                  "maximize=True, three steps."],
        "inputs": [{"name": "x", "batch": True, "value": vals(rng, n, d, lo=-2, hi=2)}],
        "layers": [{"type": "linear", "name": "h1", "weight": "U", "bias": "a", "transpose": True,
                    "activation": "leaky_relu"},
                   {"type": "logistic", "name": "p", "weight": "w", "bias": "b"}],
        "objective": {"type": "log_p", "weight_decay": {"lambda": 0.2, "params": ["U"]}},
        "train": {"optimizer": "adam", "lr": 0.05, "betas": [0.8, 0.99], "eps": 1.0e-8, "steps": 3},
        "params": {"U": vals(rng, d, 4), "a": vals(rng, 4, lo=-0.2, hi=0.2), "w": vals(rng, 4),
                   "b": vals(rng, lo=-0.2, hi=0.2)},
    }


def course_gated(rng):
    d = 3
    return {
        "title": "Course: two named data inputs, a product gate and a concatenation",
        "about": ["Two data inputs on a batch of two: g = σ(A x), c = tanh(B v), their",
                  "product, concatenated with v, then a sigmoid layer; the loss is the",
                  "mean over the batch of Σ(y − t)², and two Adam steps."],
        "inputs": [{"name": "x", "batch": True, "value": vals(rng, 2, d, lo=-2, hi=2)},
                   {"name": "v", "batch": True, "value": vals(rng, 2, 2, lo=-2, hi=2)},
                   {"name": "t", "kind": "target", "batch": True, "value": vals(rng, 2, 2, lo=0, hi=1)}],
        "layers": [{"type": "linear", "name": "g", "weight": "A", "activation": "sigmoid", "inputs": ["x"]},
                   {"type": "linear", "name": "c", "weight": "B", "bias": "bc", "activation": "tanh",
                    "inputs": ["v"]},
                   {"type": "mul", "name": "q", "inputs": ["g", "c"]},
                   {"type": "concat", "name": "k", "inputs": ["q", "v"]},
                   {"type": "linear", "name": "y", "weight": "Wy", "bias": "by", "activation": "sigmoid"}],
        "objective": {"type": "sse", "target": "t", "reduction": "mean"},
        "train": {"optimizer": "adam", "lr": 0.1, "steps": 2},
        "params": {"A": vals(rng, 2, d), "B": vals(rng, 2, 2), "bc": vals(rng, 2, lo=-0.2, hi=0.2),
                   "Wy": vals(rng, 2, 4), "by": vals(rng, 2, lo=-0.2, hi=0.2)},
    }


def course_generator(rng):
    n = 3
    return {
        "title": "Course: Problem 1's generator and discriminator on a batch of three",
        "about": ["Each sample's 2 numbers projected to 8 (ReLU), reshaped to 2×2×2 (the",
                  "reshape order matters: from a vector per sample), a stride-2 transposed",
                  "conv to 1×5×5 with a bias per channel and tanh, flattened per sample,",
                  "a logistic unit; Σₙ log p(yₙ=0) is maximized."],
        "inputs": [{"name": "z", "batch": True, "value": vals(rng, n, 2, lo=-1.5, hi=1.5)}],
        "layers": [{"type": "linear", "name": "h0", "weight": "w0", "bias": "b0", "activation": "relu"},
                   {"type": "reshape", "name": "h1", "shape": [2, 2, 2]},
                   {"type": "deconv", "name": "h2", "weight": "w1", "bias": "b1", "stride": 2,
                    "padding": 0, "activation": "tanh"},
                   {"type": "flatten", "name": "H2"},
                   {"type": "logistic", "name": "p", "weight": "w2", "bias": "b2"}],
        "objective": {"type": "log_p"},
        "params": {"w0": vals(rng, 8, 2), "b0": vals(rng, 8, lo=0.1, hi=0.8),
                   "w1": vals(rng, 2, 1, 3, 3), "b1": vals(rng, 1, lo=-0.2, hi=0.2),
                   "w2": vals(rng, 25, lo=-0.5, hi=0.5), "b2": vals(rng, lo=-0.2, hi=0.2)},
    }


COURSE = [
    ("course-softmax-batch", course_softmax),
    ("course-convnet-pool", course_convnet),
    ("course-batchnorm", course_batchnorm),
    ("course-batchnorm-conv", course_batchnorm_conv),
    ("course-layernorm", course_layernorm),
    ("course-residual-shared", course_residual),
    ("course-dropout-batch", course_dropout),
    ("course-weight-decay", course_weight_decay),
    ("course-adam-maximize", course_adam),
    ("course-gated-inputs", course_gated),
    ("course-generator-batch", course_generator),
]


def flow(v):
    """A flow-style YAML value: JSON, which YAML reads, with exponents
    written 1.0e-08 (YAML 1.1 reads 1e-08 as a string)."""
    if isinstance(v, list):
        return "[" + ", ".join(flow(e) for e in v) + "]"
    if isinstance(v, float):
        r = repr(v)
        if "e" in r and "." not in r:
            r = r.replace("e", ".0e")
        return r
    if isinstance(v, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", v) and v.lower() not in (
            "y", "n", "yes", "no", "on", "off", "true", "false", "null"):
        return v
    return json.dumps(v)


def rows(v, indent):
    """A nested list with its innermost lists one per line."""
    if not isinstance(v, list) or not v or not isinstance(v[0], list):
        return flow(v)
    inner = [rows(e, indent + " ") for e in v]
    return "[" + (",\n" + indent + " ").join(inner) + "]"


def flow_map(d):
    parts = []
    for k, v in d.items():
        parts.append("%s: %s" % (k, flow(v) if not isinstance(v, dict) else flow_map(v)))
    return "{" + ", ".join(parts) + "}"


def spec_yaml(name, seed, spec):
    out = ["# %s: drawn by solve/testdata/reference.py from seed %d and" % (name, seed),
           "# answered by PyTorch in reference.json. Do not edit: change the",
           "# generator and rerun it."]
    out += ["# " + line for line in spec["about"]]
    out.append("title: %s" % flow(spec["title"]))
    out.append("")
    out.append("inputs:")
    for inp in spec["inputs"]:
        head = {k: v for k, v in inp.items() if k != "value"}
        text = flow_map(head)[1:-1]
        prefix = "  - {%s, value: " % text
        out.append(prefix + rows(inp["value"], " " * len(prefix)) + "}")
    out.append("")
    out.append("layers:")
    for layer in spec["layers"]:
        out.append("  - " + flow_map(layer))
    out.append("")
    out.append("objective: " + flow_map(spec["objective"]))
    if "train" in spec:
        out.append("")
        out.append("train: " + flow_map(spec["train"]))
    out.append("")
    out.append("params:")
    for k, v in spec["params"].items():
        prefix = "  %s: " % k
        out.append(prefix + rows(v, " " * len(prefix)))
    return "\n".join(out) + "\n"


def draw_course_specs():
    """Draws every course problem (a redraw while a kink or a tie is within
    MARGIN) and writes its spec file when it changed."""
    for i, (name, family) in enumerate(COURSE):
        rng = random.Random(COURSE_SEED + i)
        for attempt in range(100):
            spec = family(rng)
            text = spec_yaml(name, COURSE_SEED + i, spec)
            loaded = yaml.safe_load(text)
            want = {k: v for k, v in spec.items() if k != "about"}
            if loaded != want:
                raise AssertionError("%s: YAML writer does not round-trip" % name)
            m = Margins()
            for kernel, order, label in conventions(loaded):
                run(loaded, kernel, order, label, m)
            if m.relu >= MARGIN and m.pool >= MARGIN:
                break
            print("%s: redraw (ReLU margin %.3g, pooling margin %.3g)" % (name, m.relu, m.pool),
                  file=sys.stderr)
        else:
            raise SpecError("%s: no safe draw in 100 attempts" % name)
        path = os.path.join(HERE, "specs", name + ".yaml")
        old = None
        if os.path.exists(path):
            with open(path) as f:
                old = f.read()
        if old != text:
            with open(path, "w") as f:
                f.write(text)
            print("wrote %s" % os.path.relpath(path, ROOT), file=sys.stderr)


def spec_files():
    """(path in the case, path read) of every spec: the two problem-set
    examples, the rest of examples/ (the problem bank), then the specs under
    solve/testdata/specs."""
    files = [("examples/problem1.yaml",) * 2, ("examples/autoencoder.yaml",) * 2]
    bank = {"examples/%s.yaml" % b for b in BANK}
    others = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "examples", "*.yaml")))
    for rel in sorted(bank | set(others)):
        if rel in ("examples/problem1.yaml", "examples/autoencoder.yaml"):
            continue
        if not os.path.exists(os.path.join(ROOT, rel)):
            raise SystemExit("%s: a problem of the bank is missing" % rel)
        files.append((rel, rel))
    files += [(p, p) for p in sorted(
        os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(HERE, "specs", "*.yaml")))]
    return files


def main():
    draw_course_specs()
    cases = []
    for rel, src in spec_files():
        with open(os.path.join(ROOT, src)) as f:
            spec = yaml.safe_load(f)
        for kernel, order, label in conventions(spec):
            cases.append(case(rel, spec, kernel, order, label))
            print("%-45s %-8s %-13s %s" % (rel, kernel, order, label), file=sys.stderr)
    doc = {
        "generator": "solve/testdata/reference.py",
        "torch_version": torch.__version__,
        "dtype": "float64",
        "cases": cases,
    }
    tmp = OUT + ".tmp"
    with open(tmp, "w") as f:
        f.write(dumps(doc))
    os.replace(tmp, OUT)
    print("wrote %d cases to %s" % (len(cases), os.path.relpath(OUT, ROOT)), file=sys.stderr)


if __name__ == "__main__":
    main()
