-- Embedding projection (PCA, t-SNE, TensorBoard projector files), training logs as Keras'
-- TensorBoard callback writes them, gradient flow, and the loss landscape: known answers on
-- constructed data and models.
local nv = require "nnvis"
local core = require "nnvis.core"
local H = require "helpers"
require "nnvis.tensor.assert"
local R = require "tb_reader"
local nn = nv.nn

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  os.execute("mkdir -p " .. d)
  return d
end

local quiet = { write = function() end, flush = function() end }

describe("nv.project.pca", function()
  it("recovers a planted low-rank structure", function()
    nv.manual_seed(1)
    local Z = nv.randn(400, 2) * nv.tensor({ 3, 1.5 })
    local A = nv.randn(2, 30)
    local X = nv.matmul(Z, A) + nv.randn(400, 30) * 0.01 + 7
    local p = nv.project.pca(X, 3)
    assert.is_true(p.explained_ratio[1] + p.explained_ratio[2] > 0.999)
    assert.is_true(p.explained_ratio[3] < 1e-4)
    assert.is_true(p.explained_variance[1] >= p.explained_variance[2])
    -- A's rows lie in the span of the first two components
    local C = p.components:narrow(1, 1, 2)
    local proj = nv.matmul(nv.matmul(A, C:t()), C)
    H.close(proj, A, 1e-2 * A:abs():max():item())
    -- orthonormal components; points are the centred data projected
    H.close(nv.matmul(p.components, p.components:t()), nv.core.eye(3), 1e-4)
    H.close(p.points, nv.matmul(X - X:mean(1), p.components:t()), 1e-3)
  end)

  it("works when there are more features than points (through the Gram matrix)", function()
    nv.manual_seed(2)
    local X = nv.matmul(nv.randn(20, 2), nv.randn(2, 200))
    local a, b = nv.project.pca(X, 2), nv.project.pca(X:t():contiguous():t(), 2)
    assert.is_true(a.explained_ratio[1] + a.explained_ratio[2] > 0.999)
    H.close(a.points:abs(), b.points:abs(), 1e-3)
    assert.has_error(function() nv.project.pca(X, 0) end)
    assert.has_error(function() nv.project.pca(nv.randn(5), 1) end, "pca: expected features (N, D), got (5)")
  end)
end)

describe("nv.project.tsne", function()
  it("keeps separated clusters apart and is reproducible", function()
    nv.manual_seed(3)
    local parts, labels = {}, {}
    for c = 1, 3 do
      parts[c] = nv.randn(40, 20) + nv.randn(1, 20) * 5
      for _ = 1, 40 do labels[#labels + 1] = c end
    end
    local X = nv.cat(parts, 1)
    local t = nv.project.tsne(X, { perplexity = 15, iterations = 400 })
    assert.shape(t.points, { 120, 2 })
    local Y = t.points
    local D = (Y:unsqueeze(2) - Y:unsqueeze(1)):square():sum(3) + nv.core.eye(120) * 1e9
    local nearest = D:argmin(2):values()
    local agree = 0
    for i = 1, 120 do if labels[nearest[i]] == labels[i] then agree = agree + 1 end end
    assert.equal(120, agree)
    assert.is_true(t.kl > 0 and t.kl < 2)
    local again = nv.project.tsne(X, { perplexity = 15, iterations = 400 })
    H.close(again.points, t.points, 1e-4)
    local r1 = nv.project.tsne(X, { perplexity = 15, iterations = 50, init = "random", seed = 5 })
    local r2 = nv.project.tsne(X, { perplexity = 15, iterations = 50, init = "random", seed = 5 })
    H.close(r1.points, r2.points, 0)
    assert.has_error(function() nv.project.tsne(X, { perplexity = 100 }) end)
  end)
end)

describe("nv.project.features and nv.project.projector", function()
  it("writes the files TensorBoard's projector reads", function()
    nv.manual_seed(4)
    local m = nv.models.fashion_cnn()
    local x = nv.rand(10, 1, 28, 28)
    local f = nv.project.features(m, x, "classifier.1", { batch_size = 4 })
    assert.shape(f, { 10, 128 })
    H.close(f:narrow(1, 1, 1), nv.capture(m, x:narrow(1, 1, 1), { layers = { "classifier.1" } })["classifier.1"].output, 1e-5)
    local dir = tmpdir()
    local labels = { 1, 2, 3, 1, 2, 3, 1, 2, 3, 10 }
    local path = nv.project.projector(dir, f, { labels = labels, names = nv.data.fashion_mnist_classes, images = x })
    local cfg = H.read_all(path)
    assert.truthy(cfg:find('tensor_path: "tensors.tsv"', 1, true))
    assert.truthy(cfg:find('metadata_path: "metadata.tsv"', 1, true))
    assert.truthy(cfg:find('image_path: "sprite.png"', 1, true))
    assert.truthy(cfg:find("single_image_dim: 28", 1, true))
    local rows = {}
    for line in H.read_all(dir .. "/tensors.tsv"):gmatch("[^\n]+") do rows[#rows + 1] = line end
    assert.equal(10, #rows)
    local first = {}
    for v in rows[1]:gmatch("[^\t]+") do first[#first + 1] = tonumber(v) end
    assert.equal(128, #first)
    assert.near(f:get(1, 5), first[5], 1e-4)
    local meta = {}
    for line in H.read_all(dir .. "/metadata.tsv"):gmatch("[^\n]+") do meta[#meta + 1] = line end
    assert.same({ "T-shirt/top", "Trouser", "Pullover" }, { meta[1], meta[2], meta[3] })
    assert.equal("Ankle boot", meta[10])
    local sprite = assert(nv.image.load(dir .. "/sprite.png"))
    assert.shape(sprite, { 3, 4 * 28, 4 * 28 })
    H.close(sprite:narrow(2, 1, 28):narrow(3, 29, 28):select(1, 1), x:select(1, 2):select(1, 1), 1 / 255 + 1e-3)
    os.execute("rm -rf " .. dir)
  end)
end)

describe("nv.train.fit's TensorBoard logs and gradient flow", function()
  it("writes what Keras' TensorBoard(log_dir, histogram_freq=1) writes, with no callback code", function()
    nv.manual_seed(5)
    local m = nn.Sequential { nn.Conv2d(1, 4, 3, { padding = 1 }), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3) }
    local x = nv.rand(24, 1, 8, 8)
    local y = (nv.rand(24) * 3):floor() + 1
    local dir = tmpdir()
    local h = nv.train.fit(m, { x = x, y = y, val_x = x, val_y = y, epochs = 2, batch_size = 8, progress = false, out = quiet,
      tensorboard = dir, histogram_freq = 1, update_freq = "batch", grad_flow = 1, tb_images = 2,
      activation_histograms = true, hparams = { lr = 1e-3, batch_size = 8 } })
    assert.equal(dir, h.tensorboard)
    -- Keras' layout: runs train/ and validation/, tags epoch_loss, epoch_accuracy in both
    local tags, val = R.run_tags(dir .. "/train"), R.run_tags(dir .. "/validation")
    for _, t in ipairs { "epoch_loss", "epoch_accuracy", "epoch_learning_rate" } do assert.same({ 1, 2 }, tags[t], t) end
    for _, t in ipairs { "epoch_loss", "epoch_accuracy" } do assert.same({ 1, 2 }, val[t], t) end
    assert.is_nil(val.epoch_learning_rate)
    assert.equal(6, #tags["batch_loss"])
    assert.same({ 1, 2 }, tags["activation/0"])
    assert.same({ 1, 2 }, tags["activation/4"])
    assert.same({ 0 }, tags["_hparams_/session_start_info"])
    -- the model's graph: the diagram's SVG, naming the layers
    local svg = R.run_texts(dir .. "/train")["nnvis/graph_svg"]
    assert.truthy(svg and svg:find("<svg", 1, true) and svg:find("Conv2d", 1, true), "graph svg")
    assert.same({ 1, 2 }, tags["0.weight"])
    assert.same({ 1, 2 }, tags["0.weight/gradient"])
    assert.same({ 1, 2 }, tags["4.bias/gradient"])
    assert.same({ 1, 2 }, tags["gradcam/1"])
    assert.same({ 1, 2, 3, 4, 5, 6 }, tags["grad_norm/0"])
    -- the history's gradient flow: per layer, per recorded step
    local f = h.grad_flow
    assert.same({ "0", "4" }, f.layers)
    assert.same({ 1, 2, 3, 4, 5, 6 }, f.steps)
    for _, l in ipairs(f.layers) do
      for j = 1, 6 do
        assert.is_true(f.grad_norm[l][j] > 0)
        assert.is_true(f.update_ratio[l][j] > 0 and f.update_ratio[l][j] < 1)
      end
    end
    os.execute("rm -rf " .. dir)
  end)

  it("records the gradient norm the backward pass computed", function()
    nv.manual_seed(6)
    local m = nn.Sequential { nn.Linear(3, 2) }
    local x, y = nv.randn(4, 3), nv.tensor({ 1, 2, 1, 2 })
    local ref = nn.Sequential { nn.Linear(3, 2) }
    ref:load_state_dict((m:state_dict()))
    local h = nv.train.fit(m, { x = x, y = y, epochs = 1, batch_size = 4, shuffle = false, progress = false, out = quiet,
      grad_flow = 1, optimizer = nv.optim.SGD(m:parameters(), { lr = 0.1 }) })
    local loss = nv.cross_entropy(ref(x), y)
    local gw, gb = table.unpack(nv.grad(loss, { ref:get("0").weight, ref:get("0").bias }))
    local want = math.sqrt(gw:square():sum():item() + gb:square():sum():item())
    assert.near(want, h.grad_flow.grad_norm["0"][1], 1e-5)
    assert.has_error(function() nv.train.fit(m, { x = x, y = y, histogram_freq = 1, out = quiet, progress = false }) end,
      "fit: histogram_freq needs tensorboard = dir")
  end)
end)

describe("nv.landscape", function()
  local Quad = nv.class("Quad", nn.Module)
  function Quad:init() self.w = nv.tensor({ 1, -2, 0.5 }):set_requires_grad(true) end
  function Quad:forward(x) return x end
  local c = nv.tensor({ 0.5, 0, 1 })
  local function qloss(m) return (m.w - c):square():sum() end

  it("of a quadratic is the quadratic, along a line and over a plane, and the weights come back", function()
    local m = Quad()
    local d1, d2 = { w = nv.tensor({ 1, 0, 0 }) }, { w = nv.tensor({ 0, 1, 1 }) }
    local l = nv.landscape.line(m, { loss_fn = qloss, directions = { d1 }, steps = 5, range = { -2, 2 } })
    for i, a in ipairs(l.alphas) do
      local w = nv.tensor({ 1 + a, -2, 0.5 })
      assert.near((w - c):square():sum():item(), l.losses[i], 1e-5)
    end
    local s = nv.landscape.surface(m, { loss_fn = qloss, directions = { d1, d2 }, steps = 3 })
    for i, b in ipairs(s.betas) do
      for j, a in ipairs(s.alphas) do
        local w = nv.tensor({ 1 + a, -2 + b, 0.5 + b })
        assert.near((w - c):square():sum():item(), s.losses:get(i, j), 1e-5)
      end
    end
    H.close(m.w, nv.tensor({ 1, -2, 0.5 }), 0)
    -- restored after an error as well
    assert.has_error(function() nv.landscape.line(m, { loss_fn = function() error("boom") end, directions = { d1 } }) end)
    H.close(m.w, nv.tensor({ 1, -2, 0.5 }), 0)
  end)

  it("normalizes random directions filter by filter and interpolates between two weight sets", function()
    nv.manual_seed(7)
    local function make() return nn.Sequential { nn.Conv2d(2, 3, 3), nn.Flatten(), nn.Linear(12, 2) } end
    local m = make()
    local d = nv.landscape.direction(m, { seed = 1 })
    local w = m:get("0").weight
    H.close(d["0.weight"]:reshape(3, -1):square():sum(2):sqrt(), w:detach():reshape(3, -1):square():sum(2):sqrt(), 1e-5)
    H.close(d["0.bias"], nv.zeros(3), 0)
    local x, y = nv.randn(6, 2, 4, 4), nv.tensor({ 1, 2, 1, 2, 1, 2 })
    local other = make()
    other:load_state_dict((m:state_dict()))
    nv.no_grad(function() for _, p in ipairs(other:parameters()) do p:mul_(0.5) end end)
    local l = nv.landscape.line(m, { x = x, y = y, to = other:state_dict(), steps = 5, range = { 0, 1 } })
    local function loss_of(mm) return nv.cross_entropy(mm(x), y):item() end
    assert.near(loss_of(m), l.losses[1], 1e-5)
    assert.near(loss_of(other), l.losses[5], 1e-5)
    local s = nv.landscape.surface(m, { x = x, y = y, steps = 5, seed = 3 })
    assert.shape(s.losses, { 5, 5 })
    assert.near(loss_of(m), s.losses:get(3, 3), 1e-5)
  end)
end)

describe("projection and the loss landscape on an imported ONNX model", function()
  it("give the native model's features and losses", function()
    local DIR = "spec/fixtures/onnx/"
    local onnx = assert(nv.onnx.load(DIR .. "small_cnn_op13.onnx"))
    local native = require("onnx_native").small_cnn()
    local x = assert(nv.load_safetensors(DIR .. "small_cnn_expected.safetensors")).x
    H.close(nv.project.features(onnx, x, "pool"), nv.project.features(native, x, "pool"), 1e-5)
    local y = native(x):argmax(2):view(-1)
    -- the same random direction for both: the parameters in the same order and shapes
    local d = nv.landscape.direction(native, { seed = 1 })
    local names_n, names_o = {}, {}
    for name in native:named_parameters() do names_n[#names_n + 1] = name end
    for name in onnx:named_parameters() do names_o[#names_o + 1] = name end
    if #names_n == #names_o then
      local dd = {}
      for i, name in ipairs(names_o) do dd[name] = d[names_n[i]] end
      local a = nv.landscape.line(onnx, { x = x, y = y, steps = 5, directions = { dd } })
      local b = nv.landscape.line(native, { x = x, y = y, steps = 5, directions = { d } })
      for i = 1, 5 do assert.near(b.losses[i], a.losses[i], 1e-4) end
    else
      local a = nv.landscape.line(onnx, { x = x, y = y, steps = 3 })
      assert.near(nv.cross_entropy(native(x), y):item(), a.losses[2], 1e-4)
    end
  end)
end)
