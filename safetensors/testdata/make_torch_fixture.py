#!/usr/bin/python3
"""Write torch_fixture.safetensors and torch_fixture.json from PyTorch tensors.

The safetensors file is assembled by hand with struct and json (the Python
safetensors package is not needed), following the published format: an
8-byte little-endian header length, a JSON header padded with spaces to a
multiple of 8 bytes, then the raw little-endian tensor bytes.

torch_fixture.json records every value (floats written with repr, which
round-trips exactly) so the Go test can compare bit for bit. Run once and
commit both outputs; `go test` does not run this script:

    /usr/bin/python3 safetensors/testdata/make_torch_fixture.py
"""
import json
import os
import struct

import torch

HERE = os.path.dirname(os.path.abspath(__file__))

torch.manual_seed(1234)
tensors = {
    # Insertion order is deliberately not alphabetical: the reader must not
    # assume any order of the data section.
    "weight": torch.randn(3, 4, dtype=torch.float32),
    "bias": torch.arange(4, dtype=torch.float32) / 8 - 0.25,
    "double": torch.tensor([[1.5, -2.25], [3e-300, 1e300]], dtype=torch.float64),
    "step": torch.tensor(123456789012, dtype=torch.int64),  # 0-d scalar
    "rng_state": torch.tensor([2**63 - 1, -(2**63), -1], dtype=torch.int64),
    "empty": torch.zeros(0, 5, dtype=torch.float32),
}
FORMATS = {torch.float32: ("F32", "f"), torch.float64: ("F64", "d"), torch.int64: ("I64", "q")}

header = {"__metadata__": {"format": "pt", "made_by": "make_torch_fixture.py"}}
chunks = []
offset = 0
for name, t in tensors.items():
    dtype, code = FORMATS[t.dtype]
    values = t.flatten().tolist()
    raw = struct.pack("<%d%s" % (len(values), code), *values)
    header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
    chunks.append(raw)
    offset += len(raw)

hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
hjson += b" " * (-len(hjson) % 8)
with open(os.path.join(HERE, "torch_fixture.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(hjson)))
    f.write(hjson)
    for raw in chunks:
        f.write(raw)

expected = {
    "torch_version": torch.__version__,
    "metadata": header["__metadata__"],
    "tensors": {
        name: {"dtype": FORMATS[t.dtype][0], "shape": list(t.shape), "values": [repr(v) for v in t.flatten().tolist()]}
        for name, t in tensors.items()
    },
}
with open(os.path.join(HERE, "torch_fixture.json"), "w") as f:
    json.dump(expected, f, indent=1, sort_keys=True)
    f.write("\n")
