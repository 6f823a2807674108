-- Every public function that takes an options table refuses keys it does not know, naming
-- itself and the nearest known key, and refuses a list where options were expected.
local nv = require "nnvis"

describe("options are checked", function()
  local x4 = nv.rand(1, 1, 8, 8)
  local m = nv.nn.Sequential { nv.nn.Conv2d(1, 2, 3, { padding = 1 }), nv.nn.ReLU(),
    nv.nn.AdaptiveAvgPool2d(1), nv.nn.Flatten(), nv.nn.Linear(2, 3) }
  local maps = nv.rand(1, 8, 8)
  local opt = function() return nv.optim.SGD(m, { lr = 0.1 }) end
  local dir = os.tmpname(); os.remove(dir)

  -- name, misspelled key, the function called with the options o
  local cases = {
    { "Conv2d", "pading", function(o) return nv.nn.Conv2d(1, 8, 3, o) end },
    { "Linear", "bais", function(o) return nv.nn.Linear(2, 3, o) end },
    { "BatchNorm2d", "epsilon", function(o) return nv.nn.BatchNorm2d(3, o) end },
    { "BatchNorm1d", "momentun", function(o) return nv.nn.BatchNorm1d(3, o) end },
    { "MaxPool2d", "strid", function(o) return nv.nn.MaxPool2d(2, o) end },
    { "AvgPool2d", "ceil", function(o) return nv.nn.AvgPool2d(2, o) end },
    { "load_state_dict", "strcit", function(o) return m:load_state_dict(m:state_dict(), o) end },
    { "num_parameters", "trainabel", function(o) return m:num_parameters(o) end },
    { "init.kaiming_uniform", "mod", function(o) return nv.nn.init.kaiming_uniform(o) end },
    { "conv2d", "pading", function(o) return nv.conv2d(x4, nv.rand(1, 1, 3, 3), nil, o) end },
    { "max_pool2d", "strid", function(o) return nv.max_pool2d(x4, 2, o) end },
    { "avg_pool2d", "count_include_pads", function(o) return nv.avg_pool2d(x4, 2, o) end },
    { "batch_norm", "trainig", function(o) return nv.batch_norm(x4, nil, nil, nil, nil, o) end },
    { "interpolate", "scale", function(o) o.size = { 4, 4 }; return nv.interpolate(x4, o) end },
    { "pad", "mod", function(o) return nv.pad(x4, { 1, 1 }, o) end },
    { "tensor", "requires_grd", function(o) return nv.tensor({ 1 }, o) end },
    { "config", "thread", function(o) return nv.config(o) end },
    { "cross_entropy", "label_smooth", function(o) return nv.cross_entropy(nv.rand(2, 3), { 1, 2 }, o) end },
    { "nll_loss", "weights", function(o) return nv.nll_loss(nv.rand(2, 3), { 1, 2 }, o) end },
    { "capture", "layer", function(o) return nv.capture(m, x4, o) end },
    { "summary", "dept", function(o) return nv.summary(m, { 1, 1, 8, 8 }, o) end },
    { "diagram", "dept", function(o) return nv.diagram(m, { 1, 1, 8, 8 }, o) end },
    { "maximize", "stesp", function(o) o.class = 1; o.size = { 1, 8, 8 }; return nv.maximize(m, o) end },
    { "gradcheck", "epsilon", function(o) return nv.gradcheck(function(a) return a * 2 end, { nv.rand(2) }, o) end },
    { "features.maps", "nrows", function(o) return nv.features.maps(m, x4, "0", o) end },
    { "features.filters", "nrows", function(o) return nv.features.filters(m, "0", o) end },
    { "image.grid", "nrows", function(o) return nv.image.grid({ nv.rand(1, 4, 4) }, o) end },
    { "image.overlay", "alfa", function(o) return nv.image.overlay(nv.rand(3, 4, 4), nv.rand(4, 4), o) end },
    { "image.caption", "scal", function(o) return nv.image.caption(nv.rand(3, 8, 8), "a", o) end },
    { "image.heatmap", "colormp", function(o) return nv.image.heatmap(nv.rand(4, 4), o) end },
    { "image.text", "colour", function(o) return nv.image.text(nv.rand(3, 8, 8), "a", 1, 1, o) end },
    { "image.normalize", "mx", function(o) return nv.image.normalize(nv.rand(4, 4), o) end },
    { "preprocess", "crpo", function(o) return nv.image.preprocess(nv.rand(3, 8, 8), o) end },
    { "unnormalize", "means", function(o) return nv.image.unnormalize(nv.rand(1, 3, 8, 8), o) end },
    { "image.load", "mod", function(o) return nv.image.load("spec/fixtures/none.png", o) end },
    { "fashion_mnist", "dir", function(o) return nv.data.fashion_mnist(o) end },
    { "batches", "batchsize", function(o) return nv.data.batches(nv.rand(4, 2), nv.tensor { 1, 2, 1, 2 }, o) end },
    { "fit", "epoch", function(o) o.x = nv.rand(4, 1, 8, 8); o.y = nv.tensor { 1, 2, 1, 2 }; return nv.train.fit(m, o) end },
    { "evaluate", "batchsize", function(o) return nv.train.evaluate(m, nv.rand(4, 1, 8, 8), nv.tensor { 1, 2, 1, 2 }, o) end },
    { "SGD", "momentun", function(o) return nv.optim.SGD(m, o) end },
    { "Adam", "beta", function(o) return nv.optim.Adam(m, o) end },
    { "AdamW", "weightdecay", function(o) return nv.optim.AdamW(m, o) end },
    { "StepLR", "stepsize", function(o) return nv.optim.StepLR(opt(), o) end },
    { "CosineAnnealingLR", "tmax", function(o) return nv.optim.CosineAnnealingLR(opt(), o) end },
    { "plot.line", "titel", function(o) return nv.plot.line({ a = { 1, 2 } }, o) end },
    { "plot.histogram", "bin", function(o) return nv.plot.histogram(nv.rand(10), o) end },
    { "plot.sparkline", "widht", function(o) return nv.plot.sparkline({ 1, 2 }, o) end },
    { "plot.text_histogram", "bin", function(o) return nv.plot.text_histogram(nv.rand(10), o) end },
    { "tensorboard.writer", "walltime", function(o) return nv.tensorboard.writer(dir, o) end },
    { "onnx.load", "trian", function(o) return nv.onnx.load("spec/fixtures/none.onnx", o) end },
    { "vgg", "num_class", function(o) return nv.models.vgg11(o) end },
    { "resnet", "num_class", function(o) return nv.models.resnet18(o) end },
    { "fashion_cnn", "num_class", function(o) return nv.models.fashion_cnn(o) end },
    { "deletion", "step", function(o) return nv.cam.deletion(m, x4, maps, o) end },
    { "insertion", "step", function(o) return nv.cam.insertion(m, x4, maps, o) end },
    { "confidence_change", "kep", function(o) return nv.cam.confidence_change(m, x4, maps, o) end },
    { "road", "fractons", function(o) return nv.cam.road(m, x4, maps, o) end },
  }
  for method, keys in pairs(nv.cam.known_options) do
    if nv.cam[method] and method ~= "deletion" and method ~= "insertion" and method ~= "confidence_change"
      and method ~= "road" then
      cases[#cases + 1] = { method, "target_layers", function(o) return nv.cam[method](m, x4, o) end }
      -- each method knows its own keys: the first one it does not know is refused too
      for _, other in ipairs { "batch_size", "fc", "steps", "samples", "layer" } do
        local known = false
        for _, k in ipairs(keys) do known = known or k == other end
        if not known then
          cases[#cases + 1] = { method, other, function(o) return nv.cam[method](m, x4, o) end, true }
          break
        end
      end
    end
  end
  table.sort(cases, function(a, b) return a[1] .. a[2] < b[1] .. b[2] end)

  for _, c in ipairs(cases) do
    local name, key, call = c[1], c[2], c[3]
    it(("%s refuses the unknown option '%s'"):format(name, key), function()
      local ok, err = pcall(call, { [key] = 1 })
      assert.is_false(ok)
      assert.matches(name .. ": unknown option '" .. key .. "'", err, 1, true)
    end)
  end

  it("suggests the nearest known key", function()
    assert.has_error(function() nv.nn.Conv2d(1, 8, 3, { pading = 1 }) end,
      "Conv2d: unknown option 'pading' (did you mean 'padding'?)")
    assert.has_error(function() nv.cam.gradcam(m, x4, { target_layers = { "0" } }) end,
      "gradcam: unknown option 'target_layers' (known: layer, target, aug_smooth, tokens)")
    assert.has_error(function() nv.data.fashion_mnist { dir = "/nonexistent" } end,
      "fashion_mnist: unknown option 'dir' (known: split, path, limit)")
  end)

  it("refuses a list where a table of options was expected", function()
    assert.has_error(function() nv.capture(m, x4, { "0" }) end,
      "capture: options must be a table of name = value, got a list (element 1)")
    assert.has_error(function() nv.nn.Conv2d(1, 8, 3, 1) end,
      "Conv2d: options must be a table of name = value, got number")
  end)
end)

describe("no silent failure", function()
  it("fashion_mnist raises when the files are missing", function()
    assert.has_error(function() nv.data.fashion_mnist { path = "/nonexistent" } end)
  end)
  it("model:load raises for a missing file", function()
    assert.has_error(function() nv.models.fashion_cnn():load("/nonexistent/m.safetensors") end)
  end)
end)

describe("nv.train.save_history", function()
  it("writes a history that load_history reads back, and load_history says when it is missing", function()
    local path = os.tmpname()
    local h = { steps = { loss = { 2, 1.5 }, accuracy = { 0.1, 0.2 } }, epochs = { loss = { 1.7 }, accuracy = { 0.15 } } }
    assert.is_true(nv.train.save_history(h, path, { test_accuracy = 0.5 }))
    local back = assert(nv.train.load_history(path))
    os.remove(path)
    assert.same({ 2, 1.5 }, back.step_loss)
    assert.same({ 1.7 }, back.epoch_loss)
    assert.equal(0.5, back.test_accuracy)
    local none, err = nv.train.load_history(path)
    assert.is_nil(none)
    assert.is_string(err)
  end)
end)
