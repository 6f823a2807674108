-- examples/demo.lua — the main job (`make demo`): a tour of nnvis on the Fashion-MNIST CNN.
-- Uses the model saved by examples/train_fashion_mnist.lua (out/fashion_cnn.safetensors) or
-- trains one on the spot, then writes into one folder: the summary, the structure diagram,
-- training curves, weight and gradient histograms, feature maps, filters, images that
-- maximize each class, Grad-CAM overlays with true and predicted labels, a comparison of the
-- CAM methods, their deletion/insertion scores, and a TensorBoard event file.
--   lua5.4 examples/demo.lua [out_dir] [model_dir]
local nv = require "nnvis"

local outdir = arg[1] or "out/demo"
local modeldir = arg[2] or "out"
os.execute("mkdir -p '" .. outdir .. "' '" .. modeldir .. "'")
local t_start = nv.now()
local written = {}
local function save(img, name)
  local path = outdir .. "/" .. name
  assert(nv.image.save(img, path))
  written[#written + 1] = path
end
local function write_text(name, text)
  local path = outdir .. "/" .. name
  local f = assert(io.open(path, "w"))
  f:write(text, "\n")
  f:close()
  written[#written + 1] = path
end

local cfg = nv.config()
print(string.format("nnvis %s — OpenBLAS core %s, %d threads", nv.version, cfg.blas_core, cfg.threads))

-- ---- data and model ---------------------------------------------------------------------------
local test = nv.data.fashion_mnist { split = "test" }
local classes = test.classes
nv.manual_seed(1)
local model = nv.models.fashion_cnn()
local weights = modeldir .. "/fashion_cnn.safetensors"
local history_path = modeldir .. "/fashion_cnn_history.lua"
local history = io.open(weights, "rb") and nv.train.load_history(history_path)
if history then   -- the model and its history, beside each other: the same files on every run
  model:load(weights)
  print("loaded " .. weights .. " and " .. history_path)
else
  print("no saved model in " .. modeldir .. ": training one now (3 epochs, a few minutes on 2 cores)")
  local train = nv.data.fashion_mnist { split = "train" }
  local opt = nv.optim.Adam(model:parameters(), { lr = 2e-3 })
  local h = nv.train.fit(model, { x = train.images, y = train.labels, val_x = test.images, val_y = test.labels,
                                  epochs = 3, batch_size = 128, optimizer = opt, seed = 1,
                                  scheduler = nv.optim.CosineAnnealingLR(opt, { T_max = 3 }) })
  assert(model:save(weights))
  assert(nv.train.save_history(h, history_path))
  history = assert(nv.train.load_history(history_path))
end
model:eval()
local r = nv.train.evaluate(model, test.images, test.labels)
print(string.format("test accuracy: %.2f%%", 100 * r.accuracy))

-- ---- what the model is --------------------------------------------------------------------------
local summary = nv.summary(model, { 1, 1, 28, 28 })
print(summary)
write_text("summary.txt", tostring(summary))
local diagram = nv.diagram(model, { 1, 1, 28, 28 })
written[#written + 1] = outdir .. "/diagram.png"
assert(diagram:save_png(outdir .. "/diagram.png"))
assert(diagram:save_svg(outdir .. "/diagram.svg"))
assert(diagram:save(outdir .. "/diagram.pdf"))
written[#written + 1] = outdir .. "/diagram.svg"
written[#written + 1] = outdir .. "/diagram.pdf"
write_text("diagram.dot", diagram:dot())
-- a residual stage of ResNet-18: the skip connections and their merges
local resnet = nv.models.resnet18()
local stage = nv.nn.Sequential { resnet.layer2 }
local rd = nv.diagram(stage, { 1, 64, 16, 16 })
written[#written + 1] = outdir .. "/resnet_layer2.png"
assert(rd:save_png(outdir .. "/resnet_layer2.png"))

-- ---- training curves ----------------------------------------------------------------------------
if history and history.step_loss then
  local function smooth(v, k)
    local out, acc = {}, 0
    for i, x in ipairs(v) do
      acc = acc + x
      if i > k then acc = acc - v[i - k] end
      out[i] = acc / math.min(i, k)
    end
    return out
  end
  save(nv.plot.line({ ["loss (smoothed)"] = smooth(history.step_loss, 50) },
    { title = "training loss per step", xlabel = "step", ylabel = "cross entropy", logy = true }), "training_loss.png")
  save(nv.plot.line({ ["train accuracy (smoothed)"] = smooth(history.step_accuracy, 50) },
    { title = "training accuracy per step", xlabel = "step", ylabel = "accuracy" }), "training_accuracy.png")
  if history.epoch_val_accuracy and #history.epoch_val_accuracy > 0 then
    save(nv.plot.line({ train = history.epoch_accuracy, test = history.epoch_val_accuracy },
      { title = "accuracy per epoch", xlabel = "epoch", ylabel = "accuracy" }), "epoch_accuracy.png")
  end
  print("training curves: " .. nv.plot.sparkline(smooth(history.step_loss, 50), { width = 60 }))
end

-- ---- weights and gradients ------------------------------------------------------------------------
local batch = test.images:narrow(1, 1, 256)
local labels = test.labels:narrow(1, 1, 256)
model:zero_grad()
nv.cross_entropy(model(batch), labels):backward()
local wimgs, gimgs = {}, {}
for name, p in model:named_parameters() do
  if name:find("weight") and p:dim() > 1 then
    wimgs[#wimgs + 1] = (nv.plot.histogram(p, { title = name .. " (" .. table.concat(p:shape(), "x") .. ")",
                                                xlabel = "weight", width = 240, height = 160, bins = 40 }))
    gimgs[#gimgs + 1] = (nv.plot.histogram(p.grad, { title = name .. " gradient", xlabel = "gradient", width = 240,
                                                     height = 160, bins = 40, color = nv.plot.palette[4] }))
  end
end
save(nv.image.grid(wimgs, { nrow = 2, title = "weights per layer", enlarge = false, tile_scale = 2 }), "weight_histograms.png")
save(nv.image.grid(gimgs, { nrow = 2, title = "gradients of the loss per layer (one batch of 256 test images)", enlarge = false,
                            tile_scale = 2 }), "gradient_histograms.png")
model:zero_grad()
local cap = nv.capture(model, batch, { grads = true, target = labels })
local stats = require("nnvis.inspect.capture").stats(cap)
print(stats)
write_text("layer_stats.txt", tostring(stats))
local fc1 = model:get("classifier.3") or model:get("classifier.1")
if fc1 and fc1.weight then
  save(nv.image.heatmap(fc1.weight, { title = string.format("final linear layer weights (%d classes x %d features)",
    fc1.weight:size(1), fc1.weight:size(2)), label = "weight" }), "fc_weights.png")
end

-- ---- what the model sees ---------------------------------------------------------------------------
local sample = test.images:select(1, 1)
save(nv.image.caption(nv.image.resize(sample, { 112, 112 }), classes[labels:get(1)]), "input.png")
local convs = {}
for name, m in model:named_modules() do if m.kind == "Conv2d" then convs[#convs + 1] = name end end
for i, name in ipairs(convs) do
  save((nv.features.maps(model, sample, name, { max_channels = 16, nrow = 8 })), string.format("feature_maps_conv%d.png", i))
  save(nv.features.filters(model, name, { max_tiles = 64, nrow = 8 }), string.format("filters_conv%d.png", i))
end

-- ---- images that maximize each class ----------------------------------------------------------------
local maxed = {}
for k = 1, #classes do
  local img = nv.maximize(model, { objective = nv.objectives.class(k, { logprob = true }), size = 28, steps = 160,
                                   lr = 0.02, seed = k, param = "fourier", tv = 0.3, l2 = 0.5 })
  maxed[k] = img
end
save(nv.image.grid(maxed, { nrow = 5, labels = classes, title = "inputs that maximize each class's log-probability (from noise, 160 steps)" }),
  "maximized_classes.png")

-- ---- Grad-CAM on test images, with true and predicted labels -----------------------------------------
local n = 8
local xs = test.images:narrow(1, 1, n)
local probs = nv.no_grad(function() return nv.softmax(model(xs), 2) end)
local p, pred = probs:max(2)
local cams = nv.cam.gradcam(model, xs, { layer = "features.6" })
local caps = {}
for i = 1, n do
  caps[i] = string.format("%s → %s\np=%.2f", classes[test.labels:get(i)], classes[pred:get(i)], p:get(i))
end
save(nv.cam.overlay(xs, cams, { labels = caps, alpha = 0.45, nrow = 4,
  title = "Grad-CAM of the predicted class at features.6 (true → predicted, probability)" }), "gradcam.png")

-- every method, on a model where class activation maps mean something: a global-average-pool
-- head trained on Fashion-MNIST items placed at a random quadrant of a 56x56 canvas, so a map
-- that localises must light up the item's quadrant (spec/cam_trained_spec.lua checks this).
local canvas_classes = { 2, 8, 9 }   -- Trouser, Sneaker, Bag
nv.manual_seed(11)
local ctrain = nv.data.fashion_mnist { split = "train", limit = 6000 }
local cx, cy = nv.data.placed(ctrain, { classes = canvas_classes, n = 1200 })
local nn = nv.nn
local gap = nn.Sequential { nn.Conv2d(1, 16, 3, { padding = 1 }), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(16, 32, 3, { padding = 1 }), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                            nn.Flatten(), nn.Linear(32, 3) }
local gap_history = nv.train.fit(gap, { x = cx, y = cy, epochs = 6, batch_size = 32, lr = 3e-3, seed = 2, progress = false,
                    out = { write = function() end, flush = function() end } })
gap:eval()
local tx, ty = nv.data.placed(test, { classes = canvas_classes, n = 100 })
print(string.format("placed-item model (GAP head): test accuracy %.2f%%", 100 * nv.train.evaluate(gap, tx, ty).accuracy))
local one = tx:narrow(1, 1, 1)
local layer_methods = { "cam", "gradcam", "gradcampp", "xgradcam", "layercam", "hirescam", "scorecam", "eigencam",
                        "ablationcam", "guided_gradcam" }
local input_methods = { "saliency", "smoothgrad", "integrated_gradients", "guided_backprop", "occlusion", "rise", "lrp" }
local mt, ml, scores = {}, {}, {}
local names = require("nnvis.explain.cam_figure").names
local function explain(m, opts)
  local map = nv.cam[m](gap, one, opts)
  local del = nv.cam.deletion(gap, one, map, { steps = 16 })
  local ins = nv.cam.insertion(gap, one, map, { steps = 16 })
  mt[#mt + 1] = map:select(1, 1)
  local road = nv.cam.road(gap, one, map)
  ml[#ml + 1] = string.format("%s\ndeletion %.2f  insertion %.2f", names[m] or m, del.mean_auc, ins.mean_auc)
  scores[#scores + 1] = string.format("%-22s deletion AUC %.3f  insertion AUC %.3f  ROAD MoRF %.3f LeRF %.3f", m,
    del.mean_auc, ins.mean_auc, road.mean_morf_auc, road.mean_lerf_auc)
end
for _, m in ipairs(layer_methods) do explain(m, { layer = "4" }) end
for _, m in ipairs(input_methods) do explain(m) end
local pred_gap = nv.no_grad(function() return nv.softmax(gap(one), 2) end)
local gp, gk = pred_gap:max(2)
save(nv.cam.overlay(one:expand(#mt, 1, 56, 56), nv.stack(mt, 1), { labels = ml, nrow = 5,
  title = string.format("%d methods explaining \"%s\" (p=%.2f) on a 56x56 input; deletion AUC (lower is better) and insertion AUC (higher is better)",
    #mt, classes[canvas_classes[gk:get(1)]], gp:get(1)) }), "cam_methods.png")
write_text("cam_scores.txt", table.concat(scores, "\n"))
print(table.concat(scores, "\n"))

-- ---- the HTML report: one self-contained page on the placed-item model and 8 test images ----
local report = nv.report(gap, tx:narrow(1, 1, 8), { history = gap_history, cam_layer = "4",
  title = "placed-item model (GAP head) on 8 test images",
  classes = { "Trouser", "Sneaker", "Bag" } })
assert(report:save(outdir .. "/report.html"))
written[#written + 1] = outdir .. "/report.html"
print(report:text())
print("report: open " .. outdir .. "/report.html in a browser")

-- ---- more ways to look: projection, gradient flow, loss landscape, a small MLP ------------------------
local emb_x, emb_y = test.images:narrow(1, 1, 500), test.labels:narrow(1, 1, 500)
local feats = nv.project.features(model, emb_x, "classifier.1")
local pca = nv.project.pca(feats, 2)
print(string.format("PCA of classifier.1 over 500 test images: the first two components explain %.1f%% and %.1f%%",
  100 * pca.explained_ratio[1], 100 * pca.explained_ratio[2]))
local tsne = nv.project.tsne(feats, { perplexity = 30, seed = 1 })
save(nv.plot.scatter(tsne.points, { labels = emb_y, names = classes, width = 760, height = 520,
  title = "t-SNE of classifier.1 (128 features) over 500 test images, by true class" }), "tsne_classifier1.png")
nv.project.projector(outdir .. "/tensorboard", feats, { labels = emb_y, names = classes, images = emb_x, name = "classifier.1" })
-- a 2-D toy problem: an MLP, its gradient flow, decision regions, neurons and loss landscape
nv.manual_seed(3)
local px = nv.randn(300, 2)
local pyv = {}
for i = 1, 300 do pyv[i] = (px:get(i, 1) * px:get(i, 2) > 0) and 1 or 2 end
local py = nv.tensor(pyv)
local mlp = nv.nn.Sequential { nv.nn.Linear(2, 16), nv.nn.Tanh(), nv.nn.Linear(16, 8), nv.nn.Tanh(), nv.nn.Linear(8, 2) }
local mh = nv.train.fit(mlp, { x = px, y = py, epochs = 40, batch_size = 30, lr = 0.02, progress = false, grad_flow = 1,
  out = { write = function() end, flush = function() end } })
print(string.format("2-D toy MLP: train accuracy %.1f%%", 100 * mh.epochs.accuracy[#mh.epochs.accuracy]))
save(nv.plot.grad_flow(mh.grad_flow), "grad_flow.png")
save(nv.plot.decision_regions(mlp, px, py, { names = { "same sign", "opposite signs" } }), "decision_regions.png")
save(nv.plot.neurons(mlp, { input = px:narrow(1, 1, 1) }), "neurons.png")
save(nv.plot.landscape(nv.landscape.surface(mlp, { x = px, y = py, steps = 25 })), "loss_landscape.png")

-- ---- TensorBoard logs and the board ------------------------------------------------------------------
-- two runs of the toy MLP with two learning rates, logged as Keras' callback logs them (train/ and
-- validation/ per run, hparams, histograms, the graph), for `nnvis board` to compare
local boarddir = outdir .. "/board"
for _, lr in ipairs { 0.02, 0.002 } do
  nv.manual_seed(3)
  local m = nv.nn.Sequential { nv.nn.Linear(2, 16), nv.nn.Tanh(), nv.nn.Linear(16, 8), nv.nn.Tanh(), nv.nn.Linear(8, 2) }
  nv.train.fit(m, { x = px, y = py, val_x = px, val_y = py, epochs = 20, batch_size = 30, lr = lr, progress = false,
    tensorboard = string.format("%s/lr%g", boarddir, lr), update_freq = "batch", histogram_freq = 5,
    hparams = { lr = lr, batch_size = 30, hidden = 16 }, out = { write = function() end, flush = function() end } })
end
written[#written + 1] = boarddir
print(string.format("TensorBoard logs of two runs in %s/: look at them with\n  nnvis board %s", boarddir, boarddir))

-- the README's pictures are these
local docs = { "cam_methods.png", "diagram.png", "fc_weights.png", "feature_maps_conv1.png", "filters_conv1.png", "gradcam.png",
               "maximized_classes.png", "resnet_layer2.png", "training_loss.png", "weight_histograms.png",
               "tsne_classifier1.png", "grad_flow.png", "decision_regions.png", "neurons.png", "loss_landscape.png" }
local docdir = arg[3] or "docs/img"
for _, f in ipairs(docs) do
  local src = io.open(outdir .. "/" .. f, "rb")
  if src then
    local bytes = src:read("a")
    src:close()
    local dst = assert(io.open(docdir .. "/" .. f, "wb"))
    dst:write(bytes)
    dst:close()
  end
end
print(string.format("\nwrote %d files in %s/ (%.1f s), and the README's pictures in %s/:", #written, outdir, nv.now() - t_start, docdir))
for _, w in ipairs(written) do print("  " .. w) end
