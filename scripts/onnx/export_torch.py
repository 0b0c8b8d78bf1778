"""Small models exported by PyTorch's own torch.onnx.export, as ONNX
backend-test directories that backprop has never produced: the importer
must run them and match PyTorch's outputs (`backprop onnx test DIR`,
onnx/backendtest's TestPyTorchExports).

  dcgan_generator      Linear → BatchNorm1d → ReLU → view → ConvTranspose2d → BatchNorm2d
                       → ReLU → ConvTranspose2d → Tanh (batch norm in inference mode)
  dcgan_discriminator  Conv2d → LeakyReLU → Conv2d → BatchNorm2d → LeakyReLU → Flatten → Linear
  lenet                Conv2d → ReLU → MaxPool → Conv2d → ReLU → AvgPool → Flatten → Linear
                       → ReLU → Dropout → Linear → LogSoftmax
  autoencoder          Linear → ReLU → Linear → Sigmoid

Each directory holds model.onnx and test_data_set_0/{input_0,output_0}.pb
(the layout of ONNX's backend tests); batch norm statistics are made
non-trivial by a few training-mode passes before export. Run with Debian's
interpreter, which has torch 1.13 and python3-onnx:

  /usr/bin/python3 scripts/onnx/export_torch.py onnx/testdata/pytorch
"""
import os
import sys

import onnx
import torch
import torch.nn as nn
from onnx import numpy_helper

torch.manual_seed(14)


class Generator(nn.Module):
    def __init__(self, z=16, c=32):
        super().__init__()
        self.c = c
        self.fc = nn.Linear(z, c * 7 * 7, bias=False)
        self.bn0 = nn.BatchNorm1d(c * 7 * 7)
        self.up1 = nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c // 2)
        self.up2 = nn.ConvTranspose2d(c // 2, 1, 4, 2, 1)

    def forward(self, z):
        h = torch.relu(self.bn0(self.fc(z)))
        h = h.view(-1, self.c, 7, 7)
        h = torch.relu(self.bn1(self.up1(h)))
        return torch.tanh(self.up2(h))


class Discriminator(nn.Module):
    def __init__(self, c=16):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, c, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(c, 2 * c, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * c), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(2 * c * 7 * 7, 1))

    def forward(self, x):
        return self.net(x)


class LeNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.AvgPool2d(2),
            nn.Flatten(), nn.Linear(16 * 5 * 5, 84), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(84, 10), nn.LogSoftmax(dim=1))

    def forward(self, x):
        return self.net(x)


class AutoEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(784, 32)
        self.decoder = nn.Linear(32, 784)

    def forward(self, x):
        return torch.sigmoid(self.decoder(torch.relu(self.encoder(x))))


def export(out, name, model, x, preserve=False):
    d = os.path.join(out, name)
    os.makedirs(os.path.join(d, "test_data_set_0"), exist_ok=True)
    # batch statistics away from 0 and 1, so inference mode matters
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn_like(x) * 2 + 0.5)
    model.eval()
    with torch.no_grad():
        y = model(x)
    mode = torch.onnx.TrainingMode.PRESERVE if preserve else torch.onnx.TrainingMode.EVAL
    path = os.path.join(d, "model.onnx")
    torch.onnx.export(model, (x,), path, input_names=["input"], output_names=["output"],
                      opset_version=13, training=mode, dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
    onnx.checker.check_model(onnx.load(path), full_check=True)
    for kind, t in (("input", x), ("output", y)):
        p = numpy_helper.from_array(t.numpy(), name=kind)
        with open(os.path.join(d, "test_data_set_0", kind + "_0.pb"), "wb") as f:
            f.write(p.SerializeToString())
    ops = sorted({n.op_type for n in onnx.load(path).graph.node})
    print(f"{name}: {ops}")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "onnx/testdata/pytorch"
    export(out, "dcgan_generator", Generator(), torch.randn(3, 16))
    export(out, "dcgan_discriminator", Discriminator(), torch.rand(3, 1, 28, 28) * 2 - 1)
    export(out, "lenet", LeNet(), torch.rand(3, 1, 28, 28), preserve=True)
    export(out, "autoencoder", AutoEncoder(), torch.rand(3, 784))


if __name__ == "__main__":
    main()
