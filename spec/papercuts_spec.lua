-- What a new user tripped over (issue: papercuts): each fix is a rule, and each rule has a
-- spec that failed before it.
local nv = require "nnvis"
local nn = nv.nn

local MISSING = "/nonexistent-nnvis-folder/out"

-- f raises a message naming fname, the path and the system's reason, at this file's line
local function raises_write(fname, path, f)
  local ok, err = pcall(f)
  assert.is_false(ok, fname .. " returned instead of raising")
  assert.matches("papercuts_spec%.lua:%d+: " .. fname:gsub("%p", "%%%0") .. ": cannot write " ..
    path:gsub("%p", "%%%0") .. ": No such file or directory", err)
end

describe("writing a file the user asked for", function()
  local model = nn.Sequential { nn.Conv2d(1, 2, 3, { padding = 1 }), nn.ReLU(), nn.Flatten(), nn.Linear(32, 3) }
  local x = nv.rand(1, 1, 4, 4)

  it("raises, naming the path and the reason, at the caller's line", function()
    raises_write("save_image", MISSING .. "/a.png", function() nv.image.save(nv.zeros(3, 4, 4), MISSING .. "/a.png") end)
    raises_write("save_image", MISSING .. "/a.jpg", function() nv.image.save(nv.zeros(3, 4, 4), MISSING .. "/a.jpg") end)
    raises_write("save_safetensors", MISSING .. "/w.safetensors",
      function() nv.save_safetensors({ a = nv.zeros(2) }, MISSING .. "/w.safetensors") end)
    raises_write("save_safetensors", MISSING .. "/m.safetensors", function() model:save(MISSING .. "/m.safetensors") end)
    local d = nv.diagram(model, x)
    raises_write("save_image", MISSING .. "/d.png", function() d:save_png(MISSING .. "/d.png") end)
    raises_write("save_svg", MISSING .. "/d.svg", function() d:save_svg(MISSING .. "/d.svg") end)
    local fig = nv.figure.of(nv.plot.line({ 1, 2, 3 }))
    raises_write("save", MISSING .. "/f.svg", function() fig:save(MISSING .. "/f.svg") end)
    raises_write("save_image", MISSING .. "/f.png", function() fig:save(MISSING .. "/f.png") end)
    raises_write("save_history", MISSING .. "/h.lua",
      function() nv.train.save_history({ steps = {}, epochs = {} }, MISSING .. "/h.lua") end)
  end)

  it("still returns true when it writes", function()
    local path = os.tmpname()
    assert.is_true(nv.image.save(nv.zeros(3, 4, 4), path .. ".png"))
    assert.is_true(nv.figure.of(nv.plot.line({ 1, 2, 3 })):save(path .. ".svg"))
    assert.is_true(model:save(path .. ".safetensors"))
    for _, ext in ipairs { "", ".png", ".svg", ".safetensors" } do os.remove(path .. ext) end
  end)
end)

describe("Sequential positions and names", function()
  it("seq[i] and seq:get(i) are the i-th module, seq:get('i') the one named i", function()
    local a, b, c = nn.ReLU(), nn.Tanh(), nn.Sigmoid()
    local seq = nn.Sequential { a, b, c }
    assert.equal(3, #seq)
    assert.equal(a, seq[1])
    assert.equal(c, seq[3])
    assert.equal(a, seq:get(1))
    assert.equal(b, seq:get("1"))
    assert.is_nil(seq[4])
    local seen = {}
    for i, m in ipairs(seq) do seen[i] = m end
    assert.same({ a, b, c }, seen)
  end)
end)

describe("nv.stats", function()
  it("is the per-layer statistics of a capture; the allocator's figures are nv.memory()", function()
    local m = nn.Sequential { nn.Linear(4, 3), nn.ReLU() }
    local cap = nv.capture(m, nv.randn(2, 4), { layers = { "0", "1" } })
    local s = nv.stats(cap)
    assert.equal(2, #s.rows)
    assert.equal("0", s.rows[1].name)
    assert.near(cap["1"].output:mean():item(), s.rows[2].mean, 1e-6)
    assert.matches("layer .* grad norm", tostring(s))
    local mem = nv.memory()
    assert.is_number(mem.tensors)
    assert.is_number(mem.bytes)
    local ok, err = pcall(nv.stats)
    assert.is_false(ok)
    assert.matches("papercuts_spec%.lua:%d+: stats: expected a capture .* the allocator's figures are nv%.memory%(%)", err)
  end)
end)

describe("a model with one output (a binary classifier's logit)", function()
  -- the logit grows with the top-left quadrant only
  local function quadrant_model()
    local m = nn.Sequential { nn.Flatten(), nn.Linear(256, 1) }
    nv.no_grad(function()
      local w = nv.zeros(16, 16)
      w:narrow(1, 1, 8):narrow(2, 1, 8):fill(0.05)
      m:get(2).weight:copy(w:reshape(1, 256))
      m:get(2).bias:fill(-1.6)
    end)
    return m:eval()
  end

  it("RISE scores its sigmoid, so the map finds the region the logit reads", function()
    nv.manual_seed(3)
    local x = nv.rand(1, 1, 16, 16) * 0.5 + 0.5
    local map = nv.cam.rise(quadrant_model(), x, { masks = 400, cells = 4, seed = 1, progress = false })
    local inside = map:select(1, 1):narrow(1, 1, 8):narrow(2, 1, 8):mean():item()
    local outside = map:select(1, 1):narrow(1, 9, 8):narrow(2, 9, 8):mean():item()
    assert.is_true(inside > outside + 0.2, ("inside %.3f, outside %.3f"):format(inside, outside))
  end)

  it("nnvis.util.probs is the softmax over classes, or the sigmoid of a single output", function()
    local util = require "nnvis.tensor.util"
    local s = nv.tensor { { 0 }, { 2 } }
    assert.near(0.5, util.probs(s):get(1, 1), 1e-6)
    assert.near(1 / (1 + math.exp(-2)), util.probs(s):get(2, 1), 1e-6)
    local p = util.probs(nv.tensor { { 1, 1 } })
    assert.near(0.5, p:get(1, 2), 1e-6)
  end)
end)

describe("nv.cam.compare", function()
  local model = nn.Sequential { nn.Conv2d(1, 4, 3, { padding = 1 }), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                nn.Linear(4, 12) }:eval()
  local function texts(img)
    local out = {}
    for _, t in ipairs(nv.figure.layout(img).texts) do out[#out + 1] = t.text end
    return table.concat(out, "|")
  end

  it("titles a sample with its class as an integer", function()
    local g = nv.cam.compare(model, nv.rand(1, 1, 8, 8), { methods = { "gradcam", "layercam" }, layer = "0" })
    local s = texts(g)
    assert.matches("2 explanation methods for class %d+[ |]%(p=", s)
    assert.not_matches("class %d+%.0", s)
  end)

  it("shows every sample of a batch, a row each, with each sample's class", function()
    local x = nv.rand(3, 1, 8, 8)
    local one = nv.cam.compare(model, x:narrow(1, 1, 1), { methods = { "gradcam", "layercam" }, layer = "0" })
    local g = nv.cam.compare(model, x, { methods = { "gradcam", "layercam" }, layer = "0" })
    local s = texts(g)
    assert.matches("for 3 inputs", s)
    local n = select(2, s:gsub("Grad%-CAM: class %d+", ""))
    assert.equal(3, n)
    assert.is_true(g:size(2) > 2 * one:size(2), "three rows are taller than one")
    local cams = nv.cam.gradcam(model, x, { layer = "0" })
    assert.equal(3, cams:size(1))
  end)
end)

describe("nv.features.maps", function()
  it("draws every sample of a batch, a row each, and returns the batch's activations", function()
    local m = nn.Sequential { nn.Conv2d(1, 3, 3, { padding = 1 }), nn.ReLU() }
    local x = nv.rand(4, 1, 6, 6)
    local img, acts = nv.features.maps(m, x, "0")
    assert.same({ 4, 3, 6, 6 }, acts:shape())
    local s = {}
    for _, t in ipairs(nv.figure.layout(img).texts) do s[#s + 1] = t.text end
    s = table.concat(s, "|")
    assert.matches("of 4 inputs", s)
    for i = 1, 4 do assert.matches("s" .. i .. " #3", s) end
    -- sample 3's maps are its own, not sample 1's
    local want = nv.no_grad(function() return m[1](x:narrow(1, 3, 1)) end)
    assert.near(0, (acts:select(1, 3) - want:select(1, 1)):abs():max():item(), 1e-6)
    local _, one = nv.features.maps(m, x:select(1, 2), "0")
    assert.same({ 3, 6, 6 }, one:shape())
  end)
end)

describe("class names", function()
  it("must name every output of the model (report, cam.overlay, cam.compare)", function()
    local m = nn.Sequential { nn.Conv2d(1, 2, 3, { padding = 1 }), nn.ReLU(), nn.Flatten(), nn.Linear(32, 10) }:eval()
    local x = nv.rand(2, 1, 4, 4)
    local function rejects(fname, f)
      local ok, err = pcall(f)
      assert.is_false(ok)
      assert.matches("papercuts_spec%.lua:%d+: " .. fname:gsub("%p", "%%%0") .. ": classes names 2 classes but the model has 10 outputs", err)
    end
    rejects("report", function() nv.report(m, x, { classes = { "a", "b" }, samples = 1, steps = 2, feature_layers = {} }) end)
    rejects("cam.overlay", function() nv.cam.overlay(x, nv.rand(2, 4, 4), { model = m, classes = { "a", "b" } }) end)
    rejects("cam.compare", function() nv.cam.compare(m, x, { classes = { "a", "b" }, methods = { "gradcam" }, layer = "0" }) end)
    -- a binary classifier with one logit may name its two classes
    local b = nn.Sequential { nn.Flatten(), nn.Linear(16, 1) }:eval()
    assert.truthy(nv.cam.overlay(x, nv.rand(2, 4, 4), { model = b, classes = { "no", "yes" } }))
  end)
end)

describe("Grad-CAM maps that are zero everywhere", function()
  -- one channel whose gradient is negative wherever it is active: ReLU(sum_k alpha_k A^k) = 0
  local function blank_model()
    local m = nn.Sequential { nn.Conv2d(1, 1, 1), nn.ReLU(), nn.Flatten(), nn.Linear(16, 2) }
    nv.no_grad(function()
      m[1].weight:fill(1); m[1].bias:fill(0.1)
      m[4].weight:copy(nv.tensor { { -1 }, { 1 } }:expand(2, 16))
      m[4].bias:copy(nv.tensor { 100, 0 })
    end)
    return m:eval()
  end

  it("raise a warning naming the samples, the layer and what to try", function()
    local util = require "nnvis.tensor.util"
    local said = {}
    util.on_warning = function(msg) said[#said + 1] = msg end
    local x = nv.rand(2, 1, 4, 4)
    local maps, raw = nv.cam.gradcam(blank_model(), x)
    local hires = nv.cam.hirescam(blank_model(), x, { target = 2 })
    util.on_warning = nil
    assert.equal(0, raw:abs():max():item())
    assert.equal(1, #said)
    assert.matches("gradcam: all 2 maps are zero everywhere at layer '1' .* try an earlier layer %(opts%.layer%), " ..
      "or HiResCAM or LayerCAM", said[1])
    assert.is_true(hires:max():item() > 0)
  end)

  it("count in the report's findings", function()
    local r = nv.report(blank_model(), nv.rand(2, 1, 4, 4), { samples = 2, steps = 2, feature_layers = {} })
    local found
    for _, f in ipairs(r.findings) do if f.kind == "blank_cam" then found = f end end
    assert.truthy(found, "no blank_cam finding")
    assert.equal("1", found.layer)
    assert.matches("[1-9]%d* warning", r:describe())
  end)
end)

describe("error messages name the real problem, at the user's line", function()
  local function fails(pattern, f, ...)
    local ok, err = pcall(f, ...)
    assert.is_false(ok)
    assert.matches(pattern, err)
  end

  it("float labels: class ids must be whole numbers; 0-based ids: add 1", function()
    local logits = nv.randn(3, 10)
    fails("papercuts_spec%.lua:%d+: cross_entropy: class ids must be whole numbers %(1%.%.10%), got 2%.5 at position 1",
      function() return nv.cross_entropy(logits, nv.tensor { 2.5, 3, 10.5 }) end)
    fails("class ids must be in 1%.%.10, got values from 0 to 9 %(0%-based%? add 1",
      function() return nv.cross_entropy(logits, nv.tensor { 0, 3, 9 }) end)
  end)

  it("fit names data that is not a tensor or does not match", function()
    local m = nn.Sequential { nn.Linear(3, 2) }
    fails("fit: opts%.x must be a tensor, got a table %(nv%.tensor{%.%.%.} makes one of a list%)",
      function() nv.train.fit(m, { x = { 1, 2, 3 }, y = nv.ones(3), progress = false }) end)
    fails("fit: x %(4,3%) and y %(3%) must hold the same number of samples",
      function() nv.train.fit(m, { x = nv.randn(4, 3), y = nv.ones(3), progress = false }) end)
  end)

  it("an image with its channels last says to permute; a batch where one image goes says so", function()
    fails("papercuts_spec%.lua:%d+: preprocess: image tensor %(224,224,3%) has its channels last; nnvis takes %(C,H,W%): x:permute%(3, 1, 2%)",
      function() local x = nv.image.preprocess(nv.rand(224, 224, 3)); return x end)
    fails("overlay: expected one image %(C,H,W%), got a batch %(2,3,8,8%); nv%.cam%.overlay%(x, maps%)",
      function() return nv.image.overlay(nv.rand(2, 3, 8, 8), nv.rand(2, 8, 8)) end)
  end)

  it("an unknown layer lists the closest names", function()
    local m = nn.Sequential { nn.Conv2d(1, 2, 3), nn.ReLU() }
    local seq = nn.Sequential { m, nn.Flatten() }
    fails("papercuts_spec%.lua:%d+: gradcam: the model has no layer '0%.3'; the closest are: 0%.0, 0%.1, 0",
      function() return nv.cam.gradcam(seq, nv.rand(1, 1, 6, 6), { layer = "0.3" }) end)
    fails("capture: the model has no layer 'O'; the closest are: 0, 1, 0%.0",
      function() return nv.capture(seq, nv.rand(1, 1, 6, 6), { layers = { "O" } }) end)
  end)
end)

describe("colormaps", function()
  local cm = require "nnvis.draw.colormap"
  local function near(want, got)
    for i = 1, 3 do assert.near(want[i], got[i], 0.01) end
  end

  it("have matplotlib's hot and the diverging maps for signed values, each reversible with _r", function()
    near({ 0.0416, 0, 0 }, cm.color("hot", 0))
    near({ 1, 1, 0 }, cm.color("hot", 0.746032))
    near({ 1, 1, 1 }, cm.color("hot", 1))
    for _, name in ipairs { "bwr", "seismic", "coolwarm", "RdBu" } do
      local mid = cm.color(name, 0.5)
      assert.is_true(mid[1] > 0.85 and math.abs(mid[1] - mid[3]) < 0.02, name .. " is light and neutral at zero")
    end
    near({ 0, 0, 1 }, cm.color("bwr", 0))
    near({ 1, 0, 0 }, cm.color("bwr", 1))
    near(cm.color("RdBu", 0), cm.color("RdBu_r", 1))
    near(cm.color("gray", 0.25), cm.color("grey", 0.25))
    assert.same({ 3, 2, 2 }, cm.apply(nv.zeros(2, 2), "coolwarm"):shape())
  end)

  it("name the closest for an unknown name", function()
    local ok, err = pcall(cm.lut, "coolwarn")
    assert.is_false(ok)
    assert.matches("unknown colormap 'coolwarn' %(did you mean coolwarm", err)
  end)

  it("filters show signed weights on a diverging map: zero white, negative blue, positive red", function()
    local m = nn.Sequential { nn.Conv2d(2, 1, 1, { bias = false }) }
    nv.no_grad(function() m[1].weight:copy(nv.tensor { -1, 1 }:view(1, 2, 1, 1)) end)
    local img = nv.features.filters(m, "0", { labels = false })
    local l = nv.figure.layout(img)
    local colors = {}
    for _, p in ipairs(l.panels) do
      if p.name:match("^tile") then
        local y, x = math.floor((p.y + p.h / 2) * l.scale), math.floor((p.x + p.w / 2) * l.scale)
        colors[#colors + 1] = { img:get(1, y, x), img:get(2, y, x), img:get(3, y, x) }
      end
    end
    assert.equal(2, #colors)
    assert.is_true(colors[1][3] > colors[1][1] + 0.3, "the negative weight is blue")
    assert.is_true(colors[2][1] > colors[2][3] + 0.2 and colors[2][1] > 2 * colors[2][2], "the positive weight is red")
  end)
end)

describe("figure axes and legends", function()
  local plot = require "nnvis.draw.plot"
  local function texts(img)
    local out = {}
    for _, t in ipairs(nv.figure.layout(img).texts) do out[#out + 1] = t end
    return out
  end
  local function joined(img)
    local s = {}
    for _, t in ipairs(texts(img)) do s[#s + 1] = t.text end
    return "|" .. table.concat(s, "|") .. "|"
  end

  it("a line of 2 or 3 points has a tick at each point", function()
    assert.matches("|1|2|$", joined(plot.line({ 3, 1 })))
    assert.matches("|1|2|3|$", joined(plot.line({ 3, 1, 2 })))
    assert.matches("|0|20|40|60|80|100|$", joined(plot.line(nv.arange(1, 101))))
  end)

  it("a count axis has whole-number ticks", function()
    local s = joined(plot.histogram({ 1, 2, 2, 3 }, { bins = 3 }))
    assert.matches("^|0|1|2|", s)
    assert.not_matches("0%.5", s)
  end)

  it("keeps a list's order, and pairs val_loss with loss: next to it, in its colour, dashed", function()
    local s = joined(plot.line({ { name = "b", y = { 1, 2 } }, { name = "a", y = { 2, 1 } } }))
    assert.matches("|b|a|$", s)
    local img = plot.line({ loss = { 1, 0.7, 0.5 }, val_loss = { 1.1, 0.8, 0.7 }, accuracy = { 0.5, 0.6, 0.8 } })
    local l = nv.figure.layout(img)
    local legend, color = {}, {}
    for _, t in ipairs(l.texts) do
      if t.text:match("^[%a_]+$") then
        legend[#legend + 1] = t.text
        -- the legend's line sample left of its text: the pixel farthest from white
        local y, best, far = math.floor((t.y + t.h / 2) * l.scale), nil, -1
        for x = math.floor((t.x - 21) * l.scale), math.floor((t.x - 7) * l.scale) do
          local c = { img:get(1, y, x), img:get(2, y, x), img:get(3, y, x) }
          local d = 3 - c[1] - c[2] - c[3]
          if d > far then best, far = c, d end
        end
        color[t.text] = best
      end
    end
    assert.same({ "accuracy", "loss", "val_loss" }, legend)
    for i = 1, 3 do assert.near(color.loss[i], color.val_loss[i], 0.1) end
    local apart = 0
    for i = 1, 3 do apart = math.max(apart, math.abs(color.loss[i] - color.accuracy[i])) end
    assert.is_true(apart > 0.25, "loss and accuracy have different colours: " .. table.concat(color.loss, ",") .. " vs " .. table.concat(color.accuracy, ","))
  end)
end)

describe("nv.diagram", function()
  it("says the model's output shape in its last box", function()
    local m = nn.Sequential { nn.Conv2d(1, 4, 3, { padding = 1 }), nn.ReLU(), nn.Flatten(), nn.Linear(256, 10) }
    local d = nv.diagram(m, { 1, 1, 8, 8 })
    local s = {}
    for _, t in ipairs(nv.figure.layout(d:image()).texts) do s[#s + 1] = t.text end
    assert.equal("output [1,10]", s[#s])
    assert.matches("output %[1,10%]", d:svg())
  end)
end)

describe("nv.plot.neurons", function()
  it("marks the neurons it leaves out and keeps every layer's label inside the figure", function()
    local m = nn.Sequential { nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10) }
    m:add(nn.Linear(10, 10), "classifier_output_layer")
    local img = nv.plot.neurons(m)
    local l = nv.figure.layout(img)
    local width = img:size(3) / l.scale
    local found_more, last
    for _, t in ipairs(l.texts) do
      if t.text:match("720 more") then found_more = true end
      if t.text:match("classifier_output_layer") then last = t end
      assert.is_true(t.x >= 0 and t.x + t.w <= width + 0.5, t.text .. " is cut at the edge")
    end
    assert.is_true(found_more, "no mark for the 720 neurons left out")
    assert.truthy(last)
  end)
end)

describe("grids of cells have axes", function()
  local function joined(img)
    local s = {}
    for _, t in ipairs(nv.figure.layout(img).texts) do s[#s + 1] = t.text end
    return "|" .. table.concat(s, "|") .. "|"
  end

  it("a heatmap numbers its rows and columns, or names them", function()
    local s = joined(nv.image.heatmap(nv.randn(3, 4)))
    assert.matches("|1|2|3|1|2|3|4|", s)
    s = joined(nv.image.heatmap(nv.randn(40, 120), { xlabel = "column", ylabel = "row" }))
    assert.matches("|1|10|20|30|40|row|1|20|40|60|80|100|120|column|", s)
    s = joined(nv.image.heatmap(nv.randn(2, 2), { xticks = { "a", "b" }, yticks = { "x", "y" } }))
    assert.matches("|x|y|a|b|", s)
  end)

  it("the loss surface shows alpha and beta; the gradient-flow map its steps", function()
    local m = nn.Sequential { nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2) }
    local x = nv.randn(16, 2)
    local y = (x:select(2, 1):gt(0) + 1)
    local s = joined(nv.plot.landscape(nv.landscape.surface(m, { x = x, y = y, steps = 5 })))
    assert.matches("|%-1|%-0%.5|0|0%.5|1|beta %(second%)|%-1|%-0%.5|0|0%.5|1|alpha %(first direction%)|", s)
    local h = nv.train.fit(m, { x = x, y = y, epochs = 2, batch_size = 8, progress = false, grad_flow = 1 })
    s = joined(nv.plot.grad_flow(h.grad_flow))
    assert.matches("|1|2|3|4|step|", s)
  end)
end)

describe("the articles' one-liners", function()
  it("t:sort and t:topk give values and 1-based indices as PyTorch does, with gradients", function()
    local t = nv.tensor { { 3, 1, 2, 0 / 0, 2 }, { 5, 4, 6, 1, 0 } }
    local v, i = t:sort()
    assert.same({ 2, 3, 5, 1, 4, 5, 4, 2, 1, 3 }, i:values())
    assert.same({ 0, 1, 4, 5, 6 }, v:select(1, 2):values())
    assert.is_true(v:get(1, 5) ~= v:get(1, 5))          -- NaN sorts last (largest)
    v, i = t:sort(2, true)
    assert.same({ 4, 1, 3, 5, 2 }, i:select(1, 1):values())   -- NaN first, ties in order
    v, i = nv.tensor { 0.1, 0.7, 0.2 }:topk(2)
    assert.same({ 2, 3 }, i:values())
    assert.near(0.7, v:get(1), 1e-6)
    v, i = nv.tensor { 0.1, 0.7, 0.2 }:topk(1, 1, false)
    assert.same({ 1 }, i:values())
    local x = nv.randn(3, 4):set_requires_grad(true)
    local top = x:topk(2, 2)
    top:sum():backward()
    assert.equal(6, x.grad:sum():item())
    assert.has_error(function() nv.randn(3):topk(4) end)
  end)

  it("nv.data.imagenet_decode lists the top classes as Keras' decode_predictions", function()
    local z = nv.zeros(2, 1000)
    z:narrow(1, 1, 1):narrow(2, 291, 1):fill(20)
    z:narrow(1, 2, 1):narrow(2, 1, 1):fill(20)
    local d = nv.data.imagenet_decode(z, 3)
    assert.equal(2, #d)
    assert.equal(291, d[1][1].class)
    assert.equal("jaguar", d[1][1].name)
    assert.is_true(d[1][1].prob > 0.9)
    assert.equal("tench", d[2][1].name)
    assert.matches("^1%. jaguar %(class 291%) [01]%.%d+", tostring(d[1]))
    assert.equal(5, #nv.data.imagenet_decode(nv.randn(1000)))
    assert.has_error(function() nv.data.imagenet_decode(nv.randn(10)) end)
  end)

  it("nv.models.vgg16 answers Keras' layer names, for get, capture and CAMs", function()
    local m = nv.models.vgg11({ num_classes = 4 })
    assert.equal(m:get("features.1"), m:get("block1_conv1"))     -- the ReLU: Keras' conv includes it
    assert.equal(m:get("features.2"), m:get("block1_pool"))
    assert.equal(m:get("classifier.6"), m:get("predictions"))
    local x = nv.rand(1, 3, 32, 32)
    local cap = nv.capture(m, x, { layers = { "block2_conv1" } })
    assert.same({ 1, 128, 16, 16 }, cap.block2_conv1.output:shape())
    local a = nv.cam.gradcam(m, x, { layer = "block4_conv2" })
    local b = nv.cam.gradcam(m, x, { layer = "features.14" })
    assert.near(0, (a - b):abs():max():item(), 1e-5)
  end)

  it("nv.maximize takes an MLP on flattened images and says when a layer is not yet rectified", function()
    local m = nn.Sequential { nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 10) }
    local img = nv.maximize(m, { class = 3, steps = 10, seed = 1 })
    assert.same({ 1, 28, 28 }, img:shape())
    local util = require "nnvis.tensor.util"
    local said = {}
    util.on_warning = function(msg) said[#said + 1] = msg end
    nv.maximize(nv.models.vgg11({ num_classes = 4 }), { layer = "features.0", channel = 1, steps = 1, size = 16, seed = 1 })
    nv.maximize(nv.models.vgg11({ num_classes = 4 }), { layer = "block1_conv1", channel = 1, steps = 1, size = 16, seed = 1 })
    util.on_warning = nil
    assert.equal(1, #said)
    assert.matches("layer 'features%.0' is a Conv2d whose output is not yet rectified.*'features%.1', the ReLU after it", said[1])
  end)
end)

describe("batched explanations", function()
  it("choose their batch from nv.config's work_memory, say so, and give the same attributions", function()
    local m = nn.Sequential { nn.Conv2d(3, 8, 3, { padding = 1 }), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 16 * 16, 4) }:eval()
    local x = nv.rand(1, 3, 16, 16)
    local full = select(2, nv.cam.integrated_gradients(m, x, { steps = 16, batch_size = 16 }))
    local util = require "nnvis.tensor.util"
    local said = {}
    util.on_warning = function(msg) said[#said + 1] = msg end
    local was = nv.config().work_memory
    assert.equal(1 << 30, was)
    nv.config { work_memory = 1 << 24 }
    local big = nn.Sequential { nn.Conv2d(3, 64, 3, { padding = 1 }), nn.ReLU(), nn.Conv2d(64, 64, 3, { padding = 1 }),
                                nn.ReLU(), nn.Flatten(), nn.Linear(64 * 64 * 64, 2) }:eval()
    local xb = nv.rand(1, 3, 64, 64)
    local cut = select(2, nv.cam.integrated_gradients(big, xb, { steps = 8 }))
    local whole = select(2, nv.cam.integrated_gradients(big, xb, { steps = 8, batch_size = 8 }))
    local small = select(2, nv.cam.integrated_gradients(m, x, { steps = 16 }))
    nv.config { work_memory = was }
    util.on_warning = nil
    assert.is_true(#said >= 1)
    assert.matches("integrated_gradients: %d points? a batch, not 8: each takes about [%d.]+ MB of the work_memory budget %(16 MB", said[1])
    assert.near(0, (cut - whole):abs():max():item(), 1e-4 * whole:abs():max():item())
    assert.near(0, (small - full):abs():max():item(), 1e-5)
    assert.has_error(function() nv.config { work_memory = 10 } end)
  end)
end)

describe("the default layer of the Grad-CAM family", function()
  it("is the one pytorch-grad-cam's documentation names: VGG's features[-1], ResNet's layer4", function()
    local vgg = nv.models.vgg11({ num_classes = 3 })
    -- features returns features[-1]'s tensor (the last MaxPool2d), not avgpool's 7x7 resampling
    local x = nv.rand(1, 3, 64, 64)
    local _, raw = nv.cam.gradcam(vgg, x)
    assert.equal("features", nv.cam.explained_layer())
    assert.same({ 1, 2, 2 }, raw:shape())
    local _, by_name = nv.cam.gradcam(vgg, x, { layer = "features.20" })
    assert.near(0, (raw - by_name):abs():max():item(), 1e-6)
    local res = nv.models.resnet18({ num_classes = 3 })
    nv.cam.gradcam(res, nv.rand(1, 3, 64, 64))
    assert.equal("layer4", nv.cam.explained_layer())
  end)
end)

describe("the report's numbers", function()
  it("print with thousands separators, and its training section has loss and accuracy", function()
    local m = nn.Sequential { nn.Linear(100, 20), nn.ReLU(), nn.Linear(20, 3) }
    local x, y = nv.randn(12, 100), nv.tensor { 1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3 }
    local h = nv.train.fit(m, { x = x, y = y, epochs = 2, batch_size = 6, progress = false, val_x = x, val_y = y })
    local page = nv.report(m, x:narrow(1, 1, 2), { history = h, samples = 0, feature_layers = {} }):document()
    assert.truthy(page:find("2,083 parameters", 1, true))
    local _, panels = h:plot()
    assert.truthy(panels.accuracy, "the training curves have an accuracy panel")
  end)
end)

describe("layer methods on a transformer's tokens", function()
  -- a tiny ViT: 4x4 patches of a 16x16 image -> 16 tokens and a class token, two blocks of
  -- token mixing (softmax attention) each with its first norm named ln_1, a head on the class token
  local function tiny_vit()
    local Block = nv.class("TinyBlock", nn.Module)
    function Block:init() self.ln_1 = nn.Linear(8, 8); self.mlp = nn.Linear(8, 8) end
    function Block:forward(t)
      local u = self.ln_1(t)
      local a = nv.softmax(nv.matmul(u, u:transpose(2, 3)) / math.sqrt(8), 3)
      return t + nv.matmul(a, self.mlp(u):relu())
    end
    local ViT = nv.class("TinyViT", nn.Module)
    function ViT:init()
      self.conv_proj = nn.Conv2d(3, 8, 4, { stride = 4 })
      self:register_parameter("class_token", nv.randn(1, 1, 8))
      self.encoder = nn.Sequential { Block(), Block() }
      self.heads = nn.Linear(8, 5)
    end
    function ViT:forward(x)
      local n = x:size(1)
      local p = self.conv_proj(x):reshape(n, 8, 16):transpose(2, 3)
      local t = nv.cat({ self.class_token:expand(n, 1, 8), p }, 2)
      return self.heads(self.encoder(t):select(2, 1))
    end
    nv.manual_seed(7)
    return ViT():eval()
  end

  it("explain the last block's first norm by default, its tokens read as a 4x4 map, as pytorch-grad-cam's recipe", function()
    local m = tiny_vit()
    local x = nv.rand(2, 3, 16, 16)
    local map, raw = nv.cam.gradcam(m, x)
    assert.equal("encoder.1.ln_1", nv.cam.explained_layer())
    assert.same({ 2, 4, 4 }, raw:shape())
    assert.same({ 2, 16, 16 }, map:shape())
    -- the reference: reshape_transform by hand (drop the class token, (N,16,8) -> (N,8,4,4))
    local cap = nv.capture(m, x, { layers = { "encoder.1.ln_1" }, grads = true,
      target = nv.no_grad(m, x):argmax(2) })
    local A = cap["encoder.1.ln_1"].output:narrow(2, 2, 16):reshape(2, 4, 4, 8):permute(1, 4, 2, 3)
    local G = cap["encoder.1.ln_1"].grad:narrow(2, 2, 16):reshape(2, 4, 4, 8):permute(1, 4, 2, 3)
    local want = (A * G:mean(4, true):mean(3, true)):sum(2):relu()
    assert.near(0, (raw - want):abs():max():item(), 1e-5)
  end)

  it("take an explicit grid, a channels-last layout, and the other layer methods", function()
    local m = tiny_vit()
    local x = nv.rand(1, 3, 16, 16)
    local _, raw = nv.cam.layercam(m, x, { layer = "encoder.0.mlp", tokens = { 4, 4, skip = 1 } })
    assert.same({ 1, 4, 4 }, raw:shape())
    for _, method in ipairs { "gradcampp", "xgradcam", "hirescam", "eigencam", "scorecam", "ablationcam" } do
      local map = nv.cam[method](m, x, { layer = "encoder.1.ln_1" })
      assert.same({ 1, 16, 16 }, map:shape(), method)
    end
    local ok, err = pcall(nv.cam.gradcam, m, x, { layer = "encoder.1.ln_1", tokens = { 3, 3, skip = 1 } })
    assert.is_false(ok)
    assert.matches("does not fit layer", err)
  end)
end)

describe("attention maps and rollout", function()
  -- two attention layers (nn.Softmax modules) over 1 + 4 tokens; weights set by hand
  local function attn_model(s1, s2)
    local M = nv.class("TwoAttn", nn.Module)
    function M:init() self.softmax1 = nn.Softmax(-1); self.softmax2 = nn.Softmax(-1) end
    function M:forward(x)
      local n = x:size(1)
      local a1 = self.softmax1(s1:expand(n, 2, 5, 5))
      local a2 = self.softmax2(s2:expand(n, 2, 5, 5))
      return (a2:sum() + a1:sum()):reshape(1):expand(n, 1) + x:reshape(n, -1):sum(2, true) * 0
    end
    return M()
  end

  it("rollout of a hand-built two-layer model equals Abnar & Zuidema's formula", function()
    nv.manual_seed(5)
    local s1, s2 = nv.randn(1, 2, 5, 5), nv.randn(1, 2, 5, 5)
    local m = attn_model(s1, s2)
    local x = nv.rand(1, 3, 8, 8)
    local maps, rows = nv.cam.rollout(m, x)
    assert.same({ 1, 8, 8 }, maps:shape())
    assert.same({ 1, 2, 2 }, rows:shape())
    -- by hand: A_l = (mean over heads of softmax(s_l) + I) / 2, rows renormalized; R = A_2 A_1
    local function layer(s)
      local a = nv.softmax(s, 4):mean(2):select(1, 1)
      a = (a + nv.eye(5)) * 0.5
      return a / a:sum(2, true)
    end
    local R = nv.matmul(layer(s2), layer(s1))
    local want = R:select(1, 1):narrow(1, 2, 4):reshape(2, 2)
    assert.near(0, (rows:select(1, 1) - want):abs():max():item(), 1e-6)
    -- the last layer's attention of the class token, head 2
    local _, r2 = nv.cam.attention(m, x, { head = 2 })
    local w2 = nv.softmax(s2, 4):select(1, 1):select(1, 2):select(1, 1):narrow(1, 2, 4):reshape(2, 2)
    assert.near(0, (r2:select(1, 1) - w2):abs():max():item(), 1e-6)
    -- discarding the smallest weights changes the rollout but keeps rows stochastic
    local D = nv.cam.rollout_of({ nv.softmax(s1, 4), nv.softmax(s2, 4) }, { discard_ratio = 0.5, head_fusion = "max" })
    assert.near(1, D:sum(3):min():item(), 1e-5)
    assert.has_error(function() nv.cam.rollout(m, x, { discard_ratio = 1 }) end)
  end)
end)

describe("a segmentation target", function()
  -- a constructed segmentation model: class 2's score is high where input channel 1 is bright,
  -- class 1's elsewhere; a 1x1 convolution, so each output pixel reads its own input pixel
  local function seg_model()
    local m = nn.Sequential { nn.Conv2d(3, 2, 1) }
    nv.no_grad(function()
      m[1].weight:copy(nv.tensor { { -4, 0, 0 }, { 4, 0, 0 } }:view(2, 3, 1, 1))
      m[1].bias:copy(nv.tensor { 2, -2 })
    end)
    return m:eval()
  end

  it("lights the masked region of class k for the gradient methods and a region given by hand", function()
    local x = nv.zeros(1, 3, 8, 8)
    x:narrow(3, 1, 4):narrow(4, 1, 4):narrow(2, 1, 1):fill(1)      -- the top-left quadrant is class 2
    local m = seg_model()
    local map = nv.cam.saliency(m, x, { target = { class = 2 } })
    local inside = map:select(1, 1):narrow(1, 1, 4):narrow(2, 1, 4):mean():item()
    local outside = map:select(1, 1):narrow(1, 5, 4):narrow(2, 5, 4):mean():item()
    assert.is_true(inside > 0.9 and outside < 0.1, ("inside %.2f outside %.2f"):format(inside, outside))
    -- a mask by hand: the bottom-right quadrant of class 1
    local mask = nv.zeros(8, 8)
    mask:narrow(1, 5, 4):narrow(2, 5, 4):fill(1)
    local g = nv.cam.saliency(m, x, { target = { class = 1, mask = mask } })
    assert.is_true(g:select(1, 1):narrow(1, 5, 4):narrow(2, 5, 4):mean():item() > 0.9)
    assert.is_true(g:select(1, 1):narrow(1, 1, 4):narrow(2, 1, 4):mean():item() < 0.1)
    local ok, err = pcall(nv.cam.saliency, nn.Sequential { nn.Flatten(), nn.Linear(192, 2) }, x, { target = { class = 1 } })
    assert.is_false(ok)
    assert.matches("needs a segmentation output %(N, K, H, W%)", err)
  end)
end)

describe("nv.image.overlay_mask", function()
  it("draws each class in its colour over the image with a legend of the classes present", function()
    local lab = nv.ones(8, 8)
    lab:narrow(1, 1, 4):fill(3)
    local img = nv.image.overlay_mask(nv.zeros(3, 8, 8), lab, { classes = { "road", "car", "sky" }, background = 1 })
    local l = nv.figure.layout(img)
    local texts = {}
    for _, t in ipairs(l.texts) do texts[#texts + 1] = t.text end
    texts = table.concat(texts, "|")
    assert.matches("sky", texts)
    assert.not_matches("road", texts)       -- the background is not coloured nor listed
    local p
    for _, q in ipairs(l.panels) do if q.name == "image" then p = q end end
    local s = l.scale
    local y_sky, y_bg = math.floor((p.y + p.h * 0.25) * s), math.floor((p.y + p.h * 0.75) * s)
    local x = math.floor((p.x + p.w / 2) * s)
    local sky = nv.style.palette[3]
    assert.near(sky[1] * 0.5, img:get(1, y_sky, x), 0.03)
    assert.near(0, img:get(1, y_bg, x), 0.03)
    -- a model's scores (K,H,W) work too
    local scores = nv.zeros(3, 8, 8)
    scores:narrow(1, 2, 1):fill(5)
    assert.truthy(nv.image.overlay_mask(nv.zeros(3, 8, 8), scores, { classes = { "road", "car", "sky" } }))
  end)
end)

describe("CAMs of a video clip", function()
  -- a Conv3d, a ReLU, a global pool and a linear head: class 2 reads channel 1 of the input
  local function video_model()
    local m = nn.Sequential { nn.Conv3d(2, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(2, 2) }
    nv.no_grad(function()
      m[1].weight:copy(nv.tensor { { 1, 0 }, { 0, 1 } }:view(2, 2, 1, 1, 1)); m[1].bias:fill(0)
      m[5].weight:copy(nv.tensor { { 0, 1 }, { 1, 0 } }); m[5].bias:fill(0)
    end)
    return m:eval()
  end

  it("are maps over time (N,T,H,W) that light the frames and the region the class reads", function()
    local x = nv.zeros(1, 2, 4, 8, 8)
    x:narrow(2, 1, 1):narrow(3, 3, 1):narrow(4, 1, 4):narrow(5, 1, 4):fill(1)   -- frame 3, top-left, channel 1
    local m = video_model()
    for _, method in ipairs { "gradcam", "hirescam", "layercam", "gradcampp", "xgradcam" } do
      local map = nv.cam[method](m, x, { target = 2, layer = "1" })
      assert.same({ 1, 4, 8, 8 }, map:shape(), method)
      local lit = map:select(1, 1):select(1, 3):narrow(1, 1, 4):narrow(2, 1, 4):mean():item()
      local other = map:select(1, 1):select(1, 1):mean():item()
      assert.is_true(lit > 0.9 and other < 0.1, ("%s: lit %.2f, other frame %.2f"):format(method, lit, other))
    end
    local ok, err = pcall(nv.cam.scorecam, m, x)
    assert.is_false(ok)
    assert.matches("a clip %(N,C,T,H,W%) is explained by gradcam", err)
  end)
end)

describe("the overlay of a clip", function()
  it("is a grid of frames, a row per clip, labelled by frame", function()
    local x, maps = nv.rand(2, 3, 4, 8, 8), nv.rand(2, 4, 8, 8)
    local img = nv.cam.overlay(x, maps, { method = "gradcam" })
    local s = {}
    for _, t in ipairs(nv.figure.layout(img).texts) do s[#s + 1] = t.text end
    s = table.concat(s, "|")
    assert.matches("clip 2, frame 4", s)
    assert.matches("Grad%-CAM over time", s)
    assert.has_error(function() nv.cam.overlay(x, nv.rand(2, 3, 8, 8)) end)
  end)
end)

describe("feature maps of a video layer", function()
  it("are a strip of frames per channel", function()
    local m = nn.Sequential { nn.Conv3d(1, 3, 1) }
    local img, acts = nv.features.maps(m, nv.rand(1, 1, 4, 6, 6), "0")
    assert.same({ 3, 4, 6, 6 }, acts:shape())
    local s = {}
    for _, t in ipairs(nv.figure.layout(img).texts) do s[#s + 1] = t.text end
    s = table.concat(s, "|")
    assert.matches("#3 t4", s)
    assert.matches("over time: all 3 channels", s)
  end)
end)
