-- examples/tensors.lua — a short tour of tensors and autograd that writes a PNG.
local nv = require "nnvis"

local outdir = arg[1] or "out/tensors"
os.execute("mkdir -p '" .. outdir .. "'")

print("nnvis — configuration")
local cfg = nv.config()
print(string.format("  OpenBLAS core %s, %d threads", cfg.blas_core, cfg.threads))

print("\nA tensor and a view of it:")
local t = nv.arange(1, 13):view(3, 4)
print(t)
print(t:t())

print("\nBroadcasting and reductions:")
local x = nv.tensor { { 1, 2, 3 }, { 4, 5, 6 } }
print(x - x:mean(2, true))
print("column sums", table.concat(x:sum(1):totable(), ", "))

print("\nAutograd: fit y = 3x - 1 by gradient descent")
nv.manual_seed(0)
local xs = nv.randn(64, 1)
local ys = xs * 3 - 1
local w = nv.zeros(1, 1):set_requires_grad(true)
local b = nv.zeros(1):set_requires_grad(true)
for step = 1, 200 do
  local loss = ((nv.matmul(xs, w) + b - ys):square()):mean()
  loss:backward()
  nv.no_grad(function()
    w:add_(w.grad, -0.1)
    b:add_(b.grad, -0.1)
  end)
  w.grad, b.grad = nil, nil
  if step % 50 == 0 then print(string.format("  step %3d  loss %.6f", step, loss:item())) end
end
print(string.format("  w = %.4f, b = %.4f", w:item(), b:item()))

-- a picture: the gradient of f(u, v) = sin(3u) cos(3v) over a grid, as an RGB image
local n = 128
local u = nv.arange(n):view(1, n):expand(n, n) * (2 * math.pi / n)
local v = nv.arange(n):view(n, 1):expand(n, n) * (2 * math.pi / n)
u:set_requires_grad(true)
v:set_requires_grad(true)
local f = (u * 3):sin() * (v * 3):cos()
local gu, gv = table.unpack(nv.grad(f:sum(), { u, v }))
local function unit(z) return (z - z:min()) / (z:max() - z:min()) end
local img = nv.stack({ unit(f:detach()), unit(gu), unit(gv) }, 1)
local path = outdir .. "/gradient_field.png"
if nv.image and nv.image.save then
  assert(nv.image.save(img, path))
  print("\nwrote " .. path .. " (red: f, green: df/du, blue: df/dv)")
end
