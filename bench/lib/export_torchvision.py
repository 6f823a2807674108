#!/usr/bin/python3
"""Exports torchvision classifiers (random weights, nothing downloaded) to ONNX with
torch.onnx.export, with an input and PyTorch's logits beside each, for bench/onnx_bench.lua:

    /usr/bin/python3 bench/lib/export_torchvision.py OUTDIR [--opset 13] [model ...]

Writes OUTDIR/<model>.onnx, OUTDIR/<model>.safetensors (x, logits) and, for resnet18, the
state dict as OUTDIR/resnet18_weights.safetensors.  Exported in eval mode with
do_constant_folding=False and TrainingMode.PRESERVE so BatchNormalization nodes and PyTorch's
parameter names stay (a folded export renames them onnx::Conv_123)."""
import json, os, struct, sys
import numpy as np
import torch, torchvision

MODELS = ["resnet18", "vgg11", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0", "densenet121",
          "squeezenet1_0", "shufflenet_v2_x0_5", "googlenet", "regnet_x_400mf", "convnext_tiny"]


def save_safetensors(tensors, path):
    """a safetensors writer (the python package is not in Debian); values are tensors or arrays"""
    header, blobs, off = {}, [], 0
    for k, v in tensors.items():
        b = np.ascontiguousarray(v.detach().numpy() if torch.is_tensor(v) else v, dtype=np.float32).tobytes()
        header[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    args = sys.argv[1:]
    out = args.pop(0)
    opset = 13
    if args and args[0] == "--opset":
        args.pop(0)
        opset = int(args.pop(0))
    names = args or MODELS
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    for name in names:
        kw = {"aux_logits": False, "init_weights": True} if name == "googlenet" else {}
        model = getattr(torchvision.models, name)(weights=None, **kw).eval()
        # random BN affine and statistics, so the logits of a random network are not vanishing
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
        x = torch.rand(1, 3, 224, 224)
        with torch.no_grad():
            logits = model(x)
        torch.onnx.export(model, x, os.path.join(out, name + ".onnx"), opset_version=opset,
                          do_constant_folding=False, training=torch.onnx.TrainingMode.PRESERVE,
                          input_names=["x"], output_names=["logits"],
                          dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}})
        save_safetensors({"x": x, "logits": logits}, os.path.join(out, name + ".safetensors"))
        if name == "resnet18":
            save_safetensors(model.state_dict(), os.path.join(out, "resnet18_weights.safetensors"))
        print("exported", name, flush=True)


if __name__ == "__main__":
    main()
