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
from torch.nn.utils.stateless import functional_call

torch.set_num_threads(2)
torch.set_default_dtype(torch.float64)
DT = torch.float64

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
OUT = os.path.join(HERE, "reference.json")

# The problem bank: examples/<name>.yaml (every one must exist).
BANK = ["mazur", "softmax-classifier", "convnet-pool", "batchnorm", "residual", "dropout",
        "weight-decay", "momentum", "adam", "layernorm", "gated-concat",
        "rnn", "lstm", "gru", "attention", "transformer-block", "next-token"]

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
    if act == "gelu":
        return F.gelu(u)  # the exact form x·Φ(x) (approximate="none")
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
    """The affine part u = W x + b (F.linear on a batch's rows, and on the
    rows of a matrix input: the time steps of a sequence, the tokens)."""
    if x.dim() == 2 and not nb:
        u = x @ w if layer.get("transpose") else x @ w.t()
        return add_bias(u, b, 1)
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


# ---- sequences and attention ---------------------------------------------
#
# A recurrent layer reads its input's rows as time steps x_1 … x_T and runs
# PyTorch's own cell over them, nn.RNNCell, nn.LSTMCell or nn.GRUCell, with
# the spec's weights loaded into the cell (torch.nn.utils.stateless.
# functional_call, so that autograd reaches the spec's tensors): weight =
# weight_ih, recurrent = weight_hh, bias = bias_ih, recurrent_bias = bias_hh
# (a missing one is zeros; neither: bias=False). Under conventions.weights
# hW the spec stores the weights in×out and multiplies h·W; PyTorch's
# weight_ih is their transpose. h0 and c0 name data inputs (default zeros).
# The layer's output is the T×H stack of h_1 … h_T.


def recurrent(x, layer, params, env, weights, margins=None):
    t = layer["type"]
    if x.dim() != 2:
        raise SpecError("%s: want a sequence, one row per time step" % t)
    gates = {"rnn": 1, "lstm": 4, "gru": 3}[t]
    w_ih, w_hh = params[layer["weight"]], params[layer["recurrent"]]
    b_ih = params[layer["bias"]] if layer.get("bias") else None
    b_hh = params[layer["recurrent_bias"]] if layer.get("recurrent_bias") else None
    if weights == "hW":  # stored in×out: PyTorch's out×in is the transpose
        w_ih, w_hh = w_ih.t(), w_hh.t()
    elif weights != "Wh":
        raise SpecError("conventions.weights %r" % weights)
    hid, ins = w_hh.shape[1], x.shape[1]
    if tuple(w_hh.shape) != (gates * hid, hid) or tuple(w_ih.shape) != (gates * hid, ins):
        raise SpecError("%s weights %r, %r for %d inputs" % (t, tuple(w_ih.shape), tuple(w_hh.shape), ins))
    act = layer.get("activation") or "identity"
    if act == "identity":
        act = "tanh"  # nn.RNNCell's default
    has_bias = b_ih is not None or b_hh is not None
    state = {"weight_ih": w_ih, "weight_hh": w_hh}
    if has_bias:
        zeros = torch.zeros(gates * hid, dtype=DT)
        state["bias_ih"] = b_ih if b_ih is not None else zeros
        state["bias_hh"] = b_hh if b_hh is not None else zeros
    cell = None
    if t == "rnn" and act in ("tanh", "relu"):
        cell = torch.nn.RNNCell(ins, hid, bias=has_bias, nonlinearity=act)
    elif t == "lstm":
        cell = torch.nn.LSTMCell(ins, hid, bias=has_bias)
    elif t == "gru":
        cell = torch.nn.GRUCell(ins, hid, bias=has_bias)
    if cell is not None:
        cell = cell.to(DT)
    h = env[layer["h0"]] if layer.get("h0") else torch.zeros(hid, dtype=DT)
    c = env[layer["c0"]] if layer.get("c0") else torch.zeros(hid, dtype=DT)
    if tuple(h.shape) != (hid,) or tuple(c.shape) != (hid,):
        raise SpecError("%s: initial state of shape %r, want (%d,)" % (t, tuple(h.shape), hid))
    outs = []
    for step in range(x.shape[0]):
        xt = x[step].unsqueeze(0)  # a batch of one, as the cells take it
        if t == "rnn":
            # the pre-activation, for the margin to ReLU's kink and for an
            # activation nn.RNNCell does not have
            u = w_ih @ x[step] + w_hh @ h
            if has_bias:
                u = u + state["bias_ih"] + state["bias_hh"]
            if cell is None:
                h = activate(u, {"activation": act}, margins)
            else:
                if act == "relu" and margins is not None:
                    margins.note_relu(u)
                h = functional_call(cell, state, (xt, h.unsqueeze(0)))[0]
        elif t == "lstm":
            hn, cn = functional_call(cell, state, (xt, (h.unsqueeze(0), c.unsqueeze(0))))
            h, c = hn[0], cn[0]
        else:
            h = functional_call(cell, state, (xt, h.unsqueeze(0)))[0]
        outs.append(h)
    return torch.stack(outs)


def sdpa(q, k, v, causal):
    """Scaled dot-product attention of heads×T×d_k tensors: PyTorch's own
    function (F.scaled_dot_product_attention from torch 2.0; torch 1.13 has
    it as F._scaled_dot_product_attention), checked against the explicit
    form softmax(Q·Kᵀ/√d_k, masked −∞ above the diagonal when causal)·V."""
    s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if causal:
        n = s.shape[-1]
        s = s.masked_fill(torch.triu(torch.ones(n, n, dtype=torch.bool), 1), -math.inf)
    explicit = torch.softmax(s, dim=-1) @ v
    if hasattr(F, "scaled_dot_product_attention"):
        o = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    elif hasattr(F, "_scaled_dot_product_attention"):
        o, _ = F._scaled_dot_product_attention(q, k, v, None, 0.0, False, causal)
    else:
        return explicit
    if not torch.allclose(o, explicit, rtol=1e-12, atol=1e-14):
        raise AssertionError("PyTorch's attention and its explicit form differ by %g" % float((o - explicit).abs().max()))
    return o


def attention(x, layer, params):
    """Multi-head attention over the rows (tokens) of x: Q = x·Wqᵀ, K, V
    likewise (nn.Linear without bias), each head's columns attended with
    sdpa, the heads concatenated and projected by Wo."""
    if x.dim() != 2:
        raise SpecError("attention: want one row per token")
    wq, wk, wv, wo = (params[layer[f]] for f in ("wq", "wk", "wv", "wo"))
    heads = int(layer.get("heads") or 1)
    q, k, v = F.linear(x, wq), F.linear(x, wk), F.linear(x, wv)
    n, dm = q.shape
    if dm % heads:
        raise SpecError("%d heads for %d columns" % (heads, dm))

    def split(m):  # T×(heads·d_k) → heads×T×d_k
        return m.reshape(n, heads, dm // heads).transpose(0, 1)

    o = sdpa(split(q), split(k), split(v), bool(layer.get("causal")))
    return F.linear(o.transpose(0, 1).reshape(n, dm), wo)


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
    if any(l["type"] == "embedding" for l in spec["layers"]):
        return False  # a token model: its input is the token ids
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
        if t == "embedding":
            # F.embedding: row ids[i] of the table, for token ids of an
            # input of kind labels
            if not layer.get("inputs") or layer["inputs"][0] not in inputs:
                raise SpecError("an embedding reads an input of token ids")
            x = F.embedding(inputs[layer["inputs"][0]], w)
            env[layer["name"]] = x
            forward.append((layer["name"], x))
            continue
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
        elif t in ("rnn", "lstm", "gru"):
            weights = (spec.get("conventions") or {}).get("weights") or "Wh"
            x = recurrent(x, layer, params, env, weights, margins)
        elif t == "attention":
            x = attention(x, layer, params)
        elif t == "matmul":
            if len(ins) != 2 or ins[0].dim() != 2 or ins[1].dim() != 2:
                raise SpecError("matmul of two matrices")
            a, c = ins
            x = a @ (c.t() if layer.get("transpose_b") else c)
            scale = layer.get("scale")
            if scale not in (None, 0, 1):
                x = x * float(scale)
        elif t == "slice":
            axis = int(layer.get("axis", -1))
            start, stop = int(layer.get("start") or 0), int(layer["stop"])
            if not 0 <= start < stop <= x.shape[axis]:
                raise SpecError("slice [%d, %d) of an axis of %d" % (start, stop, x.shape[axis]))
            x = x.narrow(axis, start, stop - start)
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


def course_rnn(rng):
    steps, d, hid = 4, 3, 3
    return {
        "title": "Course: backpropagation through time, an RNN over four steps with a read-out",
        "about": ["h_t = tanh(W_xh·x_t + b_xh + W_hh·h_{t−1} + b_hh) from a given h_0 (nn.RNNCell",
                  "with both biases), a linear read-out y_t = W_hy·h_t + b_y at every step,",
                  "E = ½·Σ_t ‖y_t − t_t‖²: the shared weights' gradients sum four steps."],
        "inputs": [{"name": "x", "value": vals(rng, steps, d, lo=-1.5, hi=1.5)},
                   {"name": "h0", "value": vals(rng, hid, lo=-0.5, hi=0.5)},
                   {"name": "t", "kind": "target", "value": vals(rng, steps, 2)}],
        "layers": [{"type": "rnn", "name": "h", "weight": "W_xh", "recurrent": "W_hh", "bias": "b_xh",
                    "recurrent_bias": "b_hh", "h0": "h0"},
                   {"type": "linear", "name": "y", "weight": "W_hy", "bias": "b_y"}],
        "objective": {"type": "half_sse", "target": "t", "name": "E"},
        "params": {"W_xh": vals(rng, hid, d), "W_hh": vals(rng, hid, hid, lo=-0.8, hi=0.8),
                   "b_xh": vals(rng, hid, lo=-0.3, hi=0.3), "b_hh": vals(rng, hid, lo=-0.3, hi=0.3),
                   "W_hy": vals(rng, 2, hid), "b_y": vals(rng, 2, lo=-0.3, hi=0.3)},
    }


def course_rnn_hw(rng):
    steps, d, hid = 3, 2, 3
    return {
        "title": "Course: a ReLU RNN written h·W (weights in×out), its last state classified",
        "about": ["conventions.weights: hW, as some textbooks write it: h_t = ReLU(x_t·W_xh +",
                  "h_{t−1}·W_hh + b_h) with W_xh 2×3 and W_hh 3×3 stored in×out (PyTorch's",
                  "weight_ih is W_xhᵀ); the last state (a slice of the 3×3 sequence) is read",
                  "out to two logits, cross-entropy against its label."],
        "conventions": {"weights": "hW"},
        "inputs": [{"name": "x", "value": vals(rng, steps, d, lo=-1.5, hi=1.5)},
                   {"name": "y", "kind": "labels", "value": [rng.randrange(2)]}],
        "layers": [{"type": "rnn", "name": "h", "weight": "W_xh", "recurrent": "W_hh", "bias": "b_h",
                    "activation": "relu"},
                   {"type": "slice", "name": "last", "axis": 0, "start": steps - 1, "stop": steps},
                   {"type": "linear", "name": "z", "weight": "W_z", "bias": "b_z"}],
        "objective": {"type": "cross_entropy", "labels": "y"},
        "params": {"W_xh": vals(rng, d, hid), "W_hh": vals(rng, hid, hid, lo=-0.8, hi=0.8),
                   "b_h": vals(rng, hid, lo=0.0, hi=0.4), "W_z": vals(rng, 2, hid),
                   "b_z": vals(rng, 2, lo=-0.2, hi=0.2)},
    }


def course_lstm(rng):
    steps, d, hid = 3, 2, 3
    return {
        "title": "Course: an LSTM over three steps from given states, a label per step, SGD",
        "about": ["nn.LSTMCell's conventions (gate rows i, f, g, o; both biases) from a given",
                  "h_0 and c_0; each step's state read out to two logits, the mean",
                  "cross-entropy against a label per step; two SGD steps."],
        "inputs": [{"name": "x", "value": vals(rng, steps, d, lo=-1.5, hi=1.5)},
                   {"name": "h0", "value": vals(rng, hid, lo=-0.5, hi=0.5)},
                   {"name": "c0", "value": vals(rng, hid, lo=-0.5, hi=0.5)},
                   {"name": "y", "kind": "labels", "value": [rng.randrange(2) for _ in range(steps)]}],
        "layers": [{"type": "lstm", "name": "h", "weight": "W_ih", "recurrent": "W_hh", "bias": "b_ih",
                    "recurrent_bias": "b_hh", "h0": "h0", "c0": "c0"},
                   {"type": "linear", "name": "z", "weight": "W_z", "bias": "b_z"}],
        "objective": {"type": "cross_entropy", "labels": "y", "reduction": "mean"},
        "train": {"optimizer": "sgd", "lr": 0.5, "steps": 2},
        "params": {"W_ih": vals(rng, 4 * hid, d), "W_hh": vals(rng, 4 * hid, hid, lo=-0.6, hi=0.6),
                   "b_ih": vals(rng, 4 * hid, lo=-0.3, hi=0.3), "b_hh": vals(rng, 4 * hid, lo=-0.3, hi=0.3),
                   "W_z": vals(rng, 2, hid), "b_z": vals(rng, 2, lo=-0.2, hi=0.2)},
    }


def course_gru(rng):
    steps, d, hid = 3, 3, 2
    return {
        "title": "Course: a GRU over three steps without a recurrent bias, sigmoid outputs",
        "about": ["nn.GRUCell's conventions (gate rows r, z, n) with b_ih only (b_hh is zero,",
                  "so n = tanh(W_in·x + b_in + r ⊙ (W_hn·h))), a given h_0, a sigmoid read-out",
                  "of every state and Σ(y − t)²."],
        "inputs": [{"name": "x", "value": vals(rng, steps, d, lo=-1.5, hi=1.5)},
                   {"name": "h0", "value": vals(rng, hid, lo=-0.5, hi=0.5)},
                   {"name": "t", "kind": "target", "value": vals(rng, steps, 2, lo=0, hi=1)}],
        "layers": [{"type": "gru", "name": "h", "weight": "W_ih", "recurrent": "W_hh", "bias": "b_ih",
                    "h0": "h0"},
                   {"type": "linear", "name": "y", "weight": "W_y", "bias": "b_y", "activation": "sigmoid"}],
        "objective": {"type": "sse", "target": "t"},
        "params": {"W_ih": vals(rng, 3 * hid, d), "W_hh": vals(rng, 3 * hid, hid),
                   "b_ih": vals(rng, 3 * hid, lo=-0.3, hi=0.3), "W_y": vals(rng, 2, hid),
                   "b_y": vals(rng, 2, lo=-0.2, hi=0.2)},
    }


def course_attention_causal(rng):
    steps, d, dm = 4, 4, 6
    return {
        "title": "Course: causal two-head attention after a layer norm, a residual and a read-out",
        "about": ["Four tokens of width 4: n = LayerNorm(x), two causal heads of d_k = 3",
                  "(Q, K, V of 6 columns, a token attends to itself and the tokens before",
                  "it), r = x + Wo·heads, a linear read-out of every token, ½·Σ(y − t)²."],
        "inputs": [{"name": "x", "value": vals(rng, steps, d, lo=-1.5, hi=1.5)},
                   {"name": "t", "kind": "target", "value": vals(rng, steps, 2)}],
        "layers": [{"type": "layernorm", "name": "n", "weight": "g", "bias": "be"},
                   {"type": "attention", "name": "att", "wq": "Wq", "wk": "Wk", "wv": "Wv", "wo": "Wo",
                    "heads": 2, "causal": True},
                   {"type": "add", "name": "r", "inputs": ["x", "att"]},
                   {"type": "linear", "name": "y", "weight": "W_y", "bias": "b_y"}],
        "objective": {"type": "half_sse", "target": "t"},
        "params": {"g": vals(rng, d, lo=0.7, hi=1.3), "be": vals(rng, d, lo=-0.2, hi=0.2),
                   "Wq": vals(rng, dm, d, lo=-0.8, hi=0.8), "Wk": vals(rng, dm, d, lo=-0.8, hi=0.8),
                   "Wv": vals(rng, dm, d, lo=-0.8, hi=0.8), "Wo": vals(rng, d, dm, lo=-0.5, hi=0.5),
                   "W_y": vals(rng, 2, d), "b_y": vals(rng, 2, lo=-0.2, hi=0.2)},
    }


def course_attention_embedding(rng):
    steps, vocab, d, dm = 5, 6, 4, 3
    tokens = [rng.randrange(vocab) for _ in range(steps)]
    tokens[3] = tokens[0]  # a repeated token: its embedding row's gradients add
    return {
        "title": "Course: token embeddings, one attention head, GELU and next-token logits",
        "about": ["Five tokens of a six-token vocabulary (one repeated) looked up in E, one",
                  "attention head (not causal) with a residual connection, the exact GELU,",
                  "a linear read-out to six logits per token, cross-entropy summed."],
        "inputs": [{"name": "tokens", "kind": "labels", "value": tokens},
                   {"name": "next", "kind": "labels", "value": [rng.randrange(vocab) for _ in range(steps)]}],
        "layers": [{"type": "embedding", "name": "e", "weight": "E", "inputs": ["tokens"]},
                   {"type": "attention", "name": "att", "wq": "Wq", "wk": "Wk", "wv": "Wv", "wo": "Wo"},
                   {"type": "add", "name": "r", "inputs": ["e", "att"]},
                   {"type": "activation", "name": "g", "activation": "gelu"},
                   {"type": "linear", "name": "z", "weight": "W_z", "bias": "b_z"}],
        "objective": {"type": "cross_entropy", "labels": "next", "reduction": "sum"},
        "params": {"E": vals(rng, vocab, d), "Wq": vals(rng, dm, d), "Wk": vals(rng, dm, d),
                   "Wv": vals(rng, dm, d), "Wo": vals(rng, d, dm), "W_z": vals(rng, vocab, d),
                   "b_z": vals(rng, vocab, lo=-0.2, hi=0.2)},
    }


def course_attention_matmul(rng):
    steps, d = 3, 4
    return {
        "title": "Course: one attention head from matmul, softmax and slice layers",
        "about": ["An attention head written with the primitives: q, k, v = linear maps of",
                  "each token (row by row), S = q·kᵀ/√2 (matmul with transpose_b and",
                  "scale), A = softmax(S) by rows, O = A·v, its last two columns (slice),",
                  "tanh, ½·Σ(o − t)²."],
        "inputs": [{"name": "x", "value": vals(rng, steps, d, lo=-1.5, hi=1.5)},
                   {"name": "t", "kind": "target", "value": vals(rng, steps, 2)}],
        "layers": [{"type": "linear", "name": "q", "weight": "Wq", "inputs": ["x"]},
                   {"type": "linear", "name": "k", "weight": "Wk", "inputs": ["x"]},
                   {"type": "linear", "name": "v", "weight": "Wv", "bias": "bv", "inputs": ["x"]},
                   {"type": "matmul", "name": "S", "inputs": ["q", "k"], "transpose_b": True,
                    "scale": 1 / math.sqrt(2)},
                   {"type": "softmax", "name": "A", "inputs": ["S"]},
                   {"type": "matmul", "name": "O", "inputs": ["A", "v"]},
                   {"type": "slice", "name": "o2", "axis": 1, "start": 1, "stop": 3},
                   {"type": "activation", "name": "o", "activation": "tanh"}],
        "objective": {"type": "half_sse", "target": "t"},
        "params": {"Wq": vals(rng, 2, d), "Wk": vals(rng, 2, d), "Wv": vals(rng, 3, d),
                   "bv": vals(rng, 3, lo=-0.2, hi=0.2)},
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
    ("course-rnn-readout", course_rnn),
    ("course-rnn-hw", course_rnn_hw),
    ("course-lstm-labels", course_lstm),
    ("course-gru-nobias", course_gru),
    ("course-attention-causal", course_attention_causal),
    ("course-attention-embedding", course_attention_embedding),
    ("course-attention-matmul", course_attention_matmul),
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
    return json.dumps(v, ensure_ascii=False)


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
    if "conventions" in spec:
        out.append("conventions: " + flow_map(spec["conventions"]))
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
