#!/usr/bin/python3
"""Independent PyTorch reference for `backprop solve`.

Reads network specs (examples/problem1.yaml, examples/autoencoder.yaml and
solve/testdata/specs/*.yaml),
computes every reported forward value and every parameter gradient in
float64 with torch autograd under each convention combination that matters
for the spec, and writes solve/testdata/reference.json. The Go test
solve/reference_test.go compares backprop against that file.

The spec semantics are implemented here from their description (spec/spec.go
comments and the README), with PyTorch's own operators, never from backprop's
output. Run from the module root:

    /usr/bin/python3 solve/testdata/reference.py

Only PyYAML, torch and the standard library are used.
"""

import glob
import itertools
import json
import os
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


def to_logical(x, column_major):
    if not column_major or x.dim() < 2:
        return x.reshape(-1)
    return x.transpose(-1, -2).reshape(-1)


def from_logical(v, shape, column_major):
    shape = list(shape)
    if not column_major or len(shape) < 2:
        return v.reshape(shape)
    swapped = shape[:-2] + [shape[-1], shape[-2]]
    return v.reshape(swapped).transpose(-1, -2)


def reshape(x, shape, column_major):
    n = 1
    for d in shape:
        n *= d
    if n != x.numel():
        raise SpecError("reshape of %d values to %r" % (x.numel(), shape))
    return from_logical(to_logical(x, column_major), shape, column_major)


# ---- layers ---------------------------------------------------------------


def activate(u, layer):
    act = layer.get("activation") or "identity"
    if act == "identity":
        return u
    if act == "relu":
        return torch.relu(u)
    if act == "leaky_relu":
        slope = float(layer.get("slope") or 0.0)
        if slope == 0.0:
            slope = 0.01  # the spec's default
        return F.leaky_relu(u, negative_slope=slope)
    if act == "sigmoid":
        return torch.sigmoid(u)
    if act == "tanh":
        return torch.tanh(u)
    raise SpecError("unknown activation %r" % act)


def linear(x, w, b, layer):
    if x.dim() != 1:
        raise SpecError("linear input must be a vector")
    u = torch.mv(w.t(), x) if layer.get("transpose") else torch.mv(w, x)
    if b is not None:
        if tuple(b.shape) != tuple(u.shape):
            raise SpecError("linear bias shape %r, want %r" % (tuple(b.shape), tuple(u.shape)))
        u = u + b
    return activate(u, layer)


def conv(x, w, b, layer, kernel):
    if x.dim() != 3:
        raise SpecError("conv input must be channels×height×width")
    stride = pair(layer.get("stride"), (1, 1))
    padding = pair(layer.get("padding"), (0, 0))
    if layer["type"] == "conv":
        y = F.conv2d(x.unsqueeze(0), w, stride=stride, padding=padding)[0]
    else:
        outpad = pair(layer.get("output_padding"), (0, 0))
        wk = torch.flip(w, [2, 3]) if kernel == "flipped" else w
        y = F.conv_transpose2d(x.unsqueeze(0), wk, stride=stride, padding=padding,
                               output_padding=outpad)[0]
    if b is not None:
        cout, oh, ow = y.shape
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
    return activate(y, layer)


def run(spec, kernel, reshape_order, label):
    """Forward values (in report order) and gradients (in params order)."""
    colmajor = reshape_order == "column-major"
    params = {}
    for name, v in spec["params"].items():
        params[name] = tensor(v).requires_grad_(True)
    inp = spec["input"]
    x0 = tensor(inp["value"])
    x = x0
    layers = spec["layers"]
    forward = []
    objective = None
    obj = dict(spec.get("objective") or {})
    last_logistic = layers[-1]["type"] == "logistic"
    obj_type = obj.get("type") or ("log_p" if last_logistic else "sse")
    for i, layer in enumerate(layers):
        t = layer["type"]
        w = params[layer["weight"]] if layer.get("weight") else None
        b = params[layer["bias"]] if layer.get("bias") else None
        if t == "linear":
            x = linear(x, w, b, layer)
        elif t == "reshape":
            x = reshape(x, layer["shape"], colmajor)
        elif t == "flatten":
            x = reshape(x, [x.numel()], colmajor)
        elif t in ("conv", "deconv"):
            x = conv(x, w, b, layer, kernel)
        elif t == "activation":
            x = activate(x, layer)
        elif t == "logistic":
            if i != len(layers) - 1:
                raise SpecError("logistic must be last")
            if x.dim() != 1 or tuple(w.shape) != tuple(x.shape):
                raise SpecError("logistic weight shape")
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
                objective = logp  # maximized; gradients are of log p itself
            elif obj_type == "bce":
                lab = int(obj.get("label") or 0)
                # −log p(y = lab): p(y=0) = σ(s), p(y=1) = σ(−s)
                loss = -F.logsigmoid(s) if lab == 0 else -F.logsigmoid(-s)
                forward.append(("loss", loss))
                objective = loss
            else:
                raise SpecError("objective %r with a logistic layer" % obj_type)
            continue
        else:
            raise SpecError("unknown layer type %r" % t)
        forward.append((layer["name"], x))
    if obj_type == "sse":
        if tuple(x.shape) != tuple(x0.shape):
            raise SpecError("sse output shape")
        loss = ((x - x0) ** 2).sum()
        forward.append(("L", loss))
        objective = loss
    names = list(params)
    grads = torch.autograd.grad(objective, [params[n] for n in names], allow_unused=True)
    gradients = []
    for n, g in zip(names, grads):
        if g is None:
            g = torch.zeros_like(params[n])
        gradients.append((n, g))
    return forward, gradients


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
        lines.append('      "gradients": %s' % tensors(c["gradients"], "        "))
        lines.append("    }")
        cases.append("\n".join(lines))
    out.append(",\n".join(cases))
    out.append("  ]")
    out.append("}")
    text = "\n".join(out) + "\n"
    if json.loads(text) != doc:
        raise AssertionError("JSON writer does not round-trip")
    return text


def main():
    files = ["examples/problem1.yaml", "examples/autoencoder.yaml"] + sorted(
        os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(HERE, "specs", "*.yaml")))
    cases = []
    for rel in files:
        with open(os.path.join(ROOT, rel)) as f:
            spec = yaml.safe_load(f)
        for kernel, order, label in conventions(spec):
            fwd, grads = run(spec, kernel, order, label)
            cases.append({
                "spec": rel,
                "kernel": kernel,
                "reshape": order,
                "label": label,
                "forward": {k: nested(v) for k, v in fwd},
                "gradients": {k: nested(v) for k, v in grads},
            })
            print("%-40s %-8s %-13s %s" % (rel, kernel, order, label), file=sys.stderr)
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
