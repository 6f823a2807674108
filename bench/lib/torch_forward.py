"""bench/lib/torch_forward.py — the inference workloads of bench/forward_bench.lua in PyTorch
(eval mode, torch.no_grad, random weights), for ratios measured in the same run:
    /usr/bin/python3 bench/lib/torch_forward.py THREADS
Prints one line per workload: name seconds (the best of a few runs)."""
import sys
import time

import torch
import torchvision


def best(n, f):
    f()
    b = 1e9
    for _ in range(n):
        t = time.perf_counter()
        f()
        b = min(b, time.perf_counter() - t)
    return b


def main():
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
    torch.manual_seed(0)
    with torch.no_grad():
        r18 = torchvision.models.resnet18(weights=None).eval()
        print("resnet18.forward_b8 %.6f" % best(4, lambda: r18(torch.rand(8, 3, 224, 224))), flush=True)
        print("resnet18.forward_b1 %.6f" % best(6, lambda: r18(torch.rand(1, 3, 224, 224))), flush=True)
        del r18
        vgg = torchvision.models.vgg16(weights=None).eval()
        print("vgg16.forward_b1 %.6f" % best(4, lambda: vgg(torch.rand(1, 3, 224, 224))), flush=True)


if __name__ == "__main__":
    main()
