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


class Generator(nn.Sequential):
    """backprop's gan.NewGenerator: Linear, BatchNorm1d, ReLU, Unflatten, ConvTranspose2d,
    BatchNorm2d, ReLU, ConvTranspose2d, Tanh (no bias before a batch norm)."""

    def __init__(self):
        super().__init__(
            nn.Linear(Z_DIM, 128 * 7 * 7, bias=False),
            nn.BatchNorm1d(128 * 7 * 7),
            nn.ReLU(),
            nn.Unflatten(1, (128, 7, 7)),
            nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.ConvTranspose2d(64, 1, 4, 2, 1, bias=True),
            nn.Tanh(),
        )


class Discriminator(nn.Sequential):
    """backprop's gan.NewDiscriminator: Conv2d, LeakyReLU(0.2), Conv2d, BatchNorm2d,
    LeakyReLU(0.2), Flatten, Linear."""

    def __init__(self):
        super().__init__(
            nn.Conv2d(1, 64, 4, 2, 1, bias=True),
            nn.LeakyReLU(0.2),
            nn.Conv2d(64, 128, 4, 2, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(128 * 7 * 7, 1, bias=True),
        )


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
