"""PyTorch twins of backprop's networks, for the weights `backprop export --pytorch` writes.

Each class builds the network layer for layer as backprop does, with the same
state_dict names, so that a weights-only file written by

    backprop export --pytorch DIR --checkpoint CK [--model NAME]

loads with load_state_dict(strict=True):

    import model
    g = model.load("DIR/generator.safetensors")      # a Generator, weights loaded strictly
    tensors, meta = model.read_safetensors("DIR/generator.safetensors")

The networks:
  Generator      the DCGAN generator: (N, 100) noise -> (N, 1, 28, 28) images in [-1, 1]
  Discriminator  the DCGAN discriminator: (N, 1, 28, 28) images in [-1, 1] -> (N, 1) logits of "real"
  AutoEncoder    the auto-encoder: (N, 784) or (N, 1, 28, 28) pixels in [0, 1] -> (N, 784) reconstructions
  Classifier     the evaluation classifier: (N, 1, 28, 28) images in [0, 1] -> (N, 10) class logits

The DCGAN networks of the other recipes of `backprop train gan` are the same
classes built with keyword arguments:
  Generator(conditional=1)       class-conditional: g(z, y) with y the (N,) int64 classes
                                 0..9; an nn.Embedding(10, 10) of y ("0.weight") is
                                 concatenated to z before the Linear(110 -> 6272)
  Discriminator(conditional=1)   projection discriminator: d(x, y) = logit + <V[y], phi(x)>,
                                 V the (10, 6272) class embedding "6.embed", phi(x) the
                                 flattened features the last Linear reads
  Discriminator(spectral_norm=1) both convolutions and the Linear wrapped in
                                 torch.nn.utils.spectral_norm ("weight_orig", "weight_u",
                                 "weight_v"); in eval mode it divides by sigma = u.W.v from
                                 the stored u and v, as backprop does (no power iteration)
(both options together for a conditional --spectral-norm run).

Every file's metadata names its class ("class") and the constructor's keyword
arguments as JSON ("kwargs"); load() builds the module from them. The
safetensors format is read and written here by hand (an 8-byte little-endian
header length, a JSON header, the raw little-endian bytes), so the safetensors
package is not needed.
"""
import json
import struct

import torch
import torch.nn as nn

Z_DIM = 100  # size of the generator's noise vector
N_CLASSES = 10  # classes of a conditional DCGAN (gan.Classes)
EMBED_DIM = 10  # size of a conditional generator's class embedding (gan.EmbedDim)


class Generator(nn.Sequential):
    """backprop's gan.NewGenerator: Linear, BatchNorm1d, ReLU, Unflatten, ConvTranspose2d,
    BatchNorm2d, ReLU, ConvTranspose2d, Tanh (no bias before a batch norm).

    With conditional=1, gan.NewModels' conditional generator: an nn.Embedding of the
    class first ("0"), concatenated to z, and the Linear takes Z_DIM + EMBED_DIM inputs;
    forward(z, y) then takes the (N,) int64 classes y."""

    def __init__(self, conditional=0):
        body = [
            nn.Linear(Z_DIM + (EMBED_DIM if conditional else 0), 128 * 7 * 7, bias=False),
            nn.BatchNorm1d(128 * 7 * 7),
            nn.ReLU(),
            nn.Unflatten(1, (128, 7, 7)),
            nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.ConvTranspose2d(64, 1, 4, 2, 1, bias=True),
            nn.Tanh(),
        ]
        if conditional:
            body.insert(0, nn.Embedding(N_CLASSES, EMBED_DIM))
        super().__init__(*body)
        self.conditional = bool(conditional)

    def forward(self, z, y=None):
        if not self.conditional:
            return super().forward(z)
        if y is None:
            raise ValueError("a conditional Generator takes the classes: g(z, y)")
        h = torch.cat([z, self[0](y)], 1)
        for m in list(self)[1:]:
            h = m(h)
        return h


class Projection(nn.Linear):
    """backprop's gan.Projection around the discriminator's last Linear: on the features h
    it gives linear(h) + <embed[y], h>, embed the (classes, features) class embedding. A
    subclass of nn.Linear so that its entries are "weight", "bias" and "embed", as backprop
    names them, and spectral_norm wraps its weight as a Linear's."""

    def __init__(self, in_features, out_features, classes=N_CLASSES):
        super().__init__(in_features, out_features, bias=True)
        self.embed = nn.Parameter(torch.zeros(classes, in_features))

    def forward(self, h, y):
        return super().forward(h) + (self.embed[y] * h).sum(1, keepdim=True)


class Discriminator(nn.Sequential):
    """backprop's gan.NewDiscriminator: Conv2d, LeakyReLU(0.2), Conv2d, BatchNorm2d,
    LeakyReLU(0.2), Flatten, Linear.

    With conditional=1 the Linear is a Projection (a projection discriminator) and
    forward(x, y) takes the (N,) int64 classes y; with spectral_norm=1 both convolutions
    and the Linear are wrapped in torch.nn.utils.spectral_norm, as gan.NewModels wraps them
    for a --spectral-norm run."""

    def __init__(self, conditional=0, spectral_norm=0):
        sn = nn.utils.spectral_norm if spectral_norm else (lambda m: m)
        last = Projection(128 * 7 * 7, 1) if conditional else nn.Linear(128 * 7 * 7, 1, bias=True)
        super().__init__(
            sn(nn.Conv2d(1, 64, 4, 2, 1, bias=True)),
            nn.LeakyReLU(0.2),
            sn(nn.Conv2d(64, 128, 4, 2, 1, bias=False)),
            nn.BatchNorm2d(128),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            sn(last),
        )
        self.conditional = bool(conditional)

    def forward(self, x, y=None):
        if not self.conditional:
            return super().forward(x)
        if y is None:
            raise ValueError("a conditional Discriminator takes the classes: d(x, y)")
        h = x
        for m in list(self)[:-1]:
            h = m(h)
        return self[-1](h, y)


class AutoEncoder(nn.Module):
    """backprop's autoencoder.Model: encoder Linear, ReLU, decoder Linear, Sigmoid."""

    def __init__(self, input_size=784, hidden_size=256):
        super().__init__()
        self.encoder = nn.Linear(input_size, hidden_size)
        self.relu = nn.ReLU()
        self.decoder = nn.Linear(hidden_size, input_size)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        return self.sigmoid(self.decoder(self.relu(self.encoder(x.flatten(1)))))

    def loss(self, x):
        """backprop's training loss: the squared error summed over an image's pixels,
        averaged over the images of the batch."""
        x = x.flatten(1)
        return ((self(x) - x) ** 2).sum() / x.shape[0]


class Classifier(nn.Sequential):
    """backprop's eval classifier: Conv2d, ReLU, Conv2d, ReLU, Flatten, Linear, ReLU, Linear.
    It takes images in [0, 1] and scales them to [-1, 1] first, as backprop does."""

    def __init__(self):
        super().__init__(
            nn.Conv2d(1, 32, 4, 2, 1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 4, 2, 1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(64 * 7 * 7, 128),
            nn.ReLU(),
            nn.Linear(128, 10),
        )

    def forward(self, x):
        return super().forward(2 * x - 1)


CLASSES = {c.__name__: c for c in (Generator, Discriminator, AutoEncoder, Classifier)}

_DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64}
_NAMES = {v: k for k, v in _DTYPES.items()}


def read_safetensors(path):
    """Returns ({name: tensor}, metadata) of a safetensors file of F32, F64 and I64 tensors."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {}) or {}
    data = raw[8 + n:]
    out = {}
    for name, e in header.items():
        if e["dtype"] not in _DTYPES:
            raise ValueError(f"{path}: {name}: dtype {e['dtype']} not supported here")
        lo, hi = e["data_offsets"]
        buf = bytearray(data[lo:hi])
        t = torch.frombuffer(buf, dtype=_DTYPES[e["dtype"]]) if buf else torch.empty(0, dtype=_DTYPES[e["dtype"]])
        out[name] = t.reshape(e["shape"]).clone()
    return out, meta


def write_safetensors(path, tensors, metadata=None):
    """Writes {name: tensor} (float32, float64 or int64) as a safetensors file."""
    header, chunks, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        b = t.numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": _NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        chunks.append(b)
        off += len(b)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in chunks:
            f.write(b)


def build(meta):
    """The module a file's metadata names, freshly initialized."""
    cls = CLASSES[meta["class"]]
    return cls(**json.loads(meta.get("kwargs") or "{}"))


def load(path):
    """The module of a weights file written by `backprop export --pytorch`, its weights
    loaded with load_state_dict(strict=True), in evaluation mode."""
    tensors, meta = read_safetensors(path)
    m = build(meta)
    m.load_state_dict(tensors, strict=True)
    return m.eval()
