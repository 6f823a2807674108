#!/usr/bin/python3
"""fuzz/structured/seeds.py — the structured fuzzer's seeds, written by PyTorch itself.

Run with Debian's Python (/usr/bin/python3, which has python3-torch):

    /usr/bin/python3 fuzz/structured/seeds.py build-fuzz/structured/seeds

writes into that folder
  pth/<name>.zip.pth and pth/<name>.legacy.pth  torch.save of each object below, in the zip
      layout and the legacy one (_use_new_zipfile_serialization=False): float32, float16,
      bfloat16, float64, int64, uint8 and bool tensors; views with offsets and strides; two
      tensors sharing one storage; a small CNN's OrderedDict state_dict; nested lists, dicts
      and tuples; nn.Parameter;
  onnx/<name>.onnx  torch.onnx.export of small models: a CNN (Conv, BatchNorm, ReLU,
      MaxPool, Linear) and a model of shape ops (Reshape, Flatten, Slice, Gather, Concat,
      Transpose, Resize, Pad, Softmax, Split, Unsqueeze), each at opsets 11, 13 and 17.
  bombs/zeros.bz2, bombs/zeros.zip-lzma  1.5 GiB of zeros compressed with bzip2 and with zip's
      LZMA (method 14), for the mutators' decompression bombs (slow to make, so made here once;
      the deflate bombs are cheap and made on the fly).
Deterministic (fixed seed); writes nothing when the folder is newer than this script.
"""
import bz2
import collections
import os
import sys
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F


def pth_objects():
    g = torch.Generator().manual_seed(24)
    r = lambda *s: torch.randn(*s, generator=g)
    base = r(6, 5)
    shared = r(12)
    cnn = SmallCNN().eval()
    objs = {
        "f32": r(3, 4),
        "f16": r(2, 3).half(),
        "bf16": r(2, 3).bfloat16(),
        "f64": r(4).double(),
        "i64": torch.arange(-3, 5, dtype=torch.int64).reshape(2, 4),
        "u8": torch.arange(0, 250, 7, dtype=torch.uint8),
        "bool": torch.tensor([True, False, True, True]),
        "scalar": torch.tensor(3.5),
        "empty": torch.zeros(0, 3),
        # views: an offset, a transpose (strides), a column, a strided slice
        "views": {"offset": base[2:], "transposed": base.t(), "column": base[:, 3],
                  "strided": base[::2, 1::2]},
        # two tensors on one storage
        "shared": [shared[:6].view(2, 3), shared[4:].view(4, 2)],
        "state_dict": cnn.state_dict(),
        "nested": {"a": [r(2), (r(1, 2), {"deep": [[r(3)]]})], "b": (1, 2.5, "text", None, True),
                   "c": {"n": 7, "big": 2 ** 40, "neg": -5}},
        "parameter": nn.Parameter(r(3, 3)),
        "param_dict": collections.OrderedDict(w=nn.Parameter(r(2, 2)), b=torch.zeros(2)),
        "checkpoint": {"epoch": 3, "model": cnn.state_dict(), "names": ["conv", "fc"]},
    }
    return objs


class SmallCNN(nn.Module):
    """Conv, BatchNorm, ReLU, MaxPool, Linear."""

    def __init__(self):
        super().__init__()
        # the second BatchNorm follows a pooling layer, so the export cannot fold it into a Conv
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                                      nn.MaxPool2d(2), nn.BatchNorm2d(4), nn.Conv2d(4, 6, 3, stride=2),
                                      nn.ReLU())
        self.classifier = nn.Linear(6 * 1 * 1, 5)

    def forward(self, x):
        x = self.features(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


class ShapeOps(nn.Module):
    """Reshape, Flatten, Slice, Gather, Concat, Transpose, Resize, Pad, Softmax, Split, Unsqueeze,
    and with a dynamic width Shape, ConstantOfShape, Expand and Range."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 1)

    def forward(self, x):                      # x: (1, 2, 4, 4)
        y = self.conv(x)                       # (1, 4, 4, 4)
        y = F.pad(y, (1, 1, 0, 1))             # Pad -> (1, 4, 5, 6)
        y = y[:, 1:3, :, 2:5]                  # Slice -> (1, 2, 5, 3)
        y = F.interpolate(y, scale_factor=2, mode="nearest")   # Resize -> (1, 2, 10, 6)
        a, b = torch.split(y, [1, 1], dim=1)   # Split
        z = torch.cat([b, a, b], dim=1)        # Concat -> (1, 3, 10, 6)
        z = z.transpose(2, 3)                  # Transpose -> (1, 3, 6, 10)
        z = z.reshape(1, 3, -1)                # Reshape -> (1, 3, 60)
        g = z[:, :, 5]                         # Gather -> (1, 3)
        s = torch.softmax(z, dim=-1)           # Softmax
        u = g.unsqueeze(2)                     # Unsqueeze -> (1, 3, 1)
        out = torch.flatten(s * u, 1)          # Flatten -> (1, 180)
        e = u.expand(1, 3, 4)                  # Expand -> (1, 3, 4)
        r = torch.arange(x.size(3), dtype=torch.float32)   # Range (the width is dynamic)
        return out, g, e.sum() + r.sum()


class TinyMLP(nn.Module):
    """Gemm, Relu, Sigmoid, with two inputs (one with a symbolic batch size)."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 3)
        self.b = nn.Linear(3, 2)

    def forward(self, x, y):
        return torch.sigmoid(self.b(torch.relu(self.a(x)))) + y


def write_pth(out, objs):
    os.makedirs(os.path.join(out, "pth"), exist_ok=True)
    for name, obj in objs.items():
        torch.save(obj, os.path.join(out, "pth", name + ".zip.pth"))
        torch.save(obj, os.path.join(out, "pth", name + ".legacy.pth"), _use_new_zipfile_serialization=False)


def write_onnx(out):
    os.makedirs(os.path.join(out, "onnx"), exist_ok=True)
    torch.manual_seed(24)
    models = [
        ("cnn", SmallCNN().eval(), (torch.randn(1, 3, 8, 8),), ["x"], ["logits"], None),
        ("shapes", ShapeOps().eval(), (torch.randn(1, 2, 4, 4),), ["x"], ["out", "g", "e"],
         {"x": {3: "width"}}),
        ("mlp", TinyMLP().eval(), (torch.randn(2, 4), torch.randn(2, 2)), ["x", "y"], ["z"],
         {"x": {0: "batch"}, "y": {0: "batch"}}),
    ]
    for name, model, args, ins, outs, dyn in models:
        for opset in (11, 13, 17):
            path = os.path.join(out, "onnx", "%s_op%d.onnx" % (name, opset))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(model, args, path, opset_version=opset, input_names=ins,
                                  output_names=outs, dynamic_axes=dyn, do_constant_folding=(opset != 13))


BOMB_SIZE = 3 << 29   # 1.5 GiB: more than the runner's max_alloc of 1 GiB


def write_bombs(out):
    import zipfile   # its LZMACompressor writes the header zip's method 14 wants
    os.makedirs(os.path.join(out, "bombs"), exist_ok=True)
    chunk = bytes(64 << 20)
    for name, comp in (("zeros.bz2", bz2.BZ2Compressor(9)), ("zeros.zip-lzma", zipfile.LZMACompressor())):
        parts = [comp.compress(chunk) for _ in range(BOMB_SIZE // len(chunk))]
        parts.append(comp.flush())
        with open(os.path.join(out, "bombs", name), "wb") as f:
            f.write(b"".join(parts))
        with open(os.path.join(out, "bombs", name + ".size"), "w") as f:
            f.write(str(BOMB_SIZE))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "build-fuzz/structured/seeds"
    stamp = os.path.join(out, ".done")
    if os.path.exists(stamp) and os.path.getmtime(stamp) > os.path.getmtime(__file__):
        return
    torch.manual_seed(24)
    write_pth(out, pth_objects())
    write_onnx(out)
    write_bombs(out)
    with open(stamp, "w") as f:
        f.write("seeds written by fuzz/structured/seeds.py\n")
    n = len(os.listdir(os.path.join(out, "pth"))) + len(os.listdir(os.path.join(out, "onnx")))
    print("structured fuzz: %d seeds in %s" % (n, out))


if __name__ == "__main__":
    main()
