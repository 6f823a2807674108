-- examples/train_fashion_mnist.lua — trains nnvis' small Fashion-MNIST CNN to >= 90% test
-- accuracy on the CPU and saves it (safetensors) with its training history.
--   lua5.4 examples/train_fashion_mnist.lua [out_dir] [epochs]
local nv = require "nnvis"

local outdir = arg[1] or "out"
local epochs = tonumber(arg[2]) or 5
os.execute("mkdir -p '" .. outdir .. "'")

local train = nv.data.fashion_mnist { split = "train" }
local test = nv.data.fashion_mnist { split = "test" }
print(string.format("Fashion-MNIST: %d training and %d test images", train.n, test.n))

nv.manual_seed(1)
local model = nv.models.fashion_cnn()
print(model)
local opt = nv.optim.Adam(model:parameters(), { lr = 2e-3 })
local sched = nv.optim.CosineAnnealingLR(opt, { T_max = epochs })
local t0 = nv.now()
local hist = nv.train.fit(model, { x = train.images, y = train.labels, val_x = test.images, val_y = test.labels,
                                   epochs = epochs, batch_size = 128, optimizer = opt, scheduler = sched, seed = 1,
                                   log_every = 100 })
local secs = nv.now() - t0
local r = nv.train.evaluate(model, test.images, test.labels)
local ips = 0
for _, v in ipairs(hist.epochs.images_per_second) do ips = ips + v end
ips = ips / #hist.epochs.images_per_second
print(string.format("test accuracy %.2f%% after %d epochs, %.1f s in all, %.0f training images/s",
  100 * r.accuracy, epochs, secs, ips))

-- weights, and the history as a small Lua file for plotting
model:save(outdir .. "/fashion_cnn.safetensors", { accuracy = string.format("%.4f", r.accuracy),
  epochs = tostring(epochs) })
assert(nv.train.save_history(hist, outdir .. "/fashion_cnn_history.lua", { test_accuracy = r.accuracy, seconds = secs }))
print("saved " .. outdir .. "/fashion_cnn.safetensors and " .. outdir .. "/fashion_cnn_history.lua")
