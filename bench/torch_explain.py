"""bench/torch_explain.py — the workloads of bench/explain_bench.lua in PyTorch, for ratios
measured in the same run (run by that benchmark when Debian's python3-torch is installed);
with the argument `inference`, those of bench/forward_bench.lua.
Prints one line per workload: name seconds (the best of a few runs)."""
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
torch.set_num_threads(threads)
torch.manual_seed(0)


def best(n, f):
    f()
    b = 1e9
    for _ in range(n):
        t = time.perf_counter()
        f()
        b = min(b, time.perf_counter() - t)
    return b


def report(name, secs):
    print(name, "%.6f" % secs, flush=True)


def layer_grad(model, layer, x):
    """activations of `layer` and the gradient of the top class score at them (Grad-CAM's work)"""
    store = {}
    h = layer.register_forward_hook(lambda m, i, o: store.__setitem__("a", o))
    out = model(x)
    h.remove()
    score = out.gather(1, out.argmax(1, keepdim=True)).sum()
    g, = torch.autograd.grad(score, store["a"])
    return store["a"], g


def gradcam(model, layer, x):
    a, g = layer_grad(model, layer, x)
    cam = (a * g.mean((2, 3), keepdim=True)).sum(1).relu()
    return F.interpolate(cam.unsqueeze(1), size=x.shape[2:], mode="bilinear")


def scorecam(model, layer, x, bs=32):
    """pytorch-grad-cam's ScoreCAM: every upsampled, normalized map masks the input"""
    with torch.no_grad():
        store = {}
        h = layer.register_forward_hook(lambda m, i, o: store.__setitem__("a", o))
        out = model(x)
        h.remove()
        c = out.argmax(1).item()
        a = store["a"]
        up = F.interpolate(a, size=x.shape[2:], mode="bilinear")[0]
        flat = up.view(up.shape[0], -1)
        lo, hi = flat.min(1)[0].view(-1, 1, 1), flat.max(1)[0].view(-1, 1, 1)
        masks = (up - lo) / (hi - lo + 1e-7)
        scores = []
        for s in range(0, masks.shape[0], bs):
            scores.append(model(masks[s:s + bs].unsqueeze(1) * x)[:, c])
        w = torch.softmax(torch.cat(scores), 0)
        return (a[0] * w.view(-1, 1, 1)).sum(0).relu()


def input_grad(model, x, c=None):
    x = x.detach().requires_grad_(True)
    out = model(x)
    if c is None:
        c = out.argmax(1)
    g, = torch.autograd.grad(out.gather(1, c.view(-1, 1)).sum(), x)
    return g


def integrated_gradients(model, x, steps=32):
    c = model(x).argmax(1)
    alphas = torch.arange(1, steps + 1, dtype=torch.float32).view(-1, 1, 1, 1) / steps
    g = input_grad(model, alphas * x, c.expand(steps))
    return x * g.mean(0, keepdim=True)


def smoothgrad(model, x, samples=16):
    c = model(x).argmax(1)
    sigma = 0.15 * (x.max() - x.min())
    g = input_grad(model, x + torch.randn(samples, *x.shape[1:]) * sigma, c.expand(samples))
    return g.abs().mean(0)


def maximize(features, k, size, steps=40):
    img = torch.rand(1, 3, size, size, requires_grad=True)
    opt = torch.optim.Adam([img], lr=0.05)
    for _ in range(steps):
        opt.zero_grad()
        loss = -features(img)[:, k].mean()
        loss.backward()
        opt.step()


def small_cnn():
    return nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64 * 16 * 16, 10))


def main():
    which = set(sys.argv[2:])
    want = lambda n: not which or n in which
    if which == {"inference"}:      # bench/forward_bench.lua's workloads
        with torch.no_grad():
            r18 = torchvision.models.resnet18().eval()
            x8, x1 = torch.rand(8, 3, 224, 224), torch.rand(1, 3, 224, 224)
            report("resnet18.forward_b8", best(8, lambda: r18(x8)))
            report("resnet18.forward_b1", best(12, lambda: r18(x1)))
            vgg = torchvision.models.vgg16().eval()
            report("vgg16.forward_b1", best(8, lambda: vgg(x1)))
            del vgg
            vit = torchvision.models.vit_b_16().eval()
            report("vit_b_16.forward_b8", best(4, lambda: vit(x8)))
        return
    r18 = torchvision.models.resnet18().eval()
    x1 = torch.rand(1, 3, 224, 224)
    if want("resnet18"):
        report("resnet18.forward_graph", best(3, lambda: r18(x1.detach().requires_grad_(True))))
        with torch.no_grad():
            report("resnet18.forward_b8", best(3, lambda: r18(torch.rand(8, 3, 224, 224))))
        report("resnet18.gradcam", best(3, lambda: gradcam(r18, r18.layer4, x1)))
        report("resnet18.scorecam", best(1, lambda: scorecam(r18, r18.layer4, x1)))
        report("resnet18.saliency", best(3, lambda: input_grad(r18, x1).abs().amax(1)))
        report("resnet18.integrated_gradients", best(2, lambda: integrated_gradients(r18, x1)))
        report("resnet18.smoothgrad", best(2, lambda: smoothgrad(r18, x1)))
    if want("vgg16"):
        vgg = torchvision.models.vgg16().eval()
        report("vgg16.forward_graph", best(3, lambda: vgg(x1.detach().requires_grad_(True))))
        with torch.no_grad():
            report("vgg16.forward", best(3, lambda: vgg(x1)))
        report("vgg16.gradcam", best(3, lambda: gradcam(vgg, vgg.features[28], x1)))
        report("vgg16.maximize40", best(2, lambda: maximize(vgg.features[:15], 5, 128)))
    if want("train"):
        m = small_cnn()
        opt = torch.optim.Adam(m.parameters(), lr=1e-3)
        xb, yb = torch.rand(64, 3, 64, 64), torch.randint(0, 10, (64,))

        def step():
            opt.zero_grad()
            F.cross_entropy(m(xb), yb).backward()
            opt.step()
        report("train.small_cnn_step", best(5, step))


main()
