-- nv.diff: two checkpoints of one small CNN, one layer changed by hand — the diff finds that
-- layer, computes ‖ΔW‖/‖W‖ as a hand computation does, calls the rest frozen, lists what only
-- one model has, and with inputs gives both models' predictions and Grad-CAMs and their
-- difference; its figure, text and HTML say so.
local nv = require "nnvis"
local nn = nv.nn

local function small_cnn()
  return nn.Sequential { nn.Conv2d(1, 8, 3, { padding = 1 }), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(8, 8, 3, { padding = 1 }), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3) }
end

-- a copy of model through a safetensors file (the state dict's round trip)
local function copy_of(model)
  local path = os.tmpname() .. ".safetensors"
  model:save(path)
  local m = small_cnn():load(path)
  os.remove(path)
  return m
end

-- ‖t‖ summed in Lua's doubles, element by element
local function norm_by_hand(t)
  local s = 0
  for _, v in ipairs(t:contiguous():reshape(-1):values()) do s = s + v * v end
  return math.sqrt(s)
end

local function layer(d, name)
  for _, l in ipairs(d.layers) do if l.name == name then return l end end
end

local function panel_names(img)
  local names = {}
  for _, p in ipairs(nv.figure.layout(img).panels) do names[p.name] = true end
  return names
end

describe("nv.diff", function()
  local a, same, b, x, d
  setup(function()
    nv.manual_seed(7)
    a = small_cnn()
    same = copy_of(a)
    b = copy_of(a)
    nv.no_grad(function()
      local w = b:get("3").weight
      w:copy(w + nv.randn(w:shape()) * 0.02)
    end)
    nv.manual_seed(8)
    x = nv.rand(4, 1, 16, 16)
    d = nv.diff(a, b, x, { classes = { "cat", "dog", "owl" }, title = "one layer changed" })
  end)

  describe("weights", function()
    it("finds the one changed layer as the one that moved most, and every other layer frozen", function()
      assert.same({ "0", "3", "7" }, (function()
        local n = {}
        for i, l in ipairs(d.layers) do n[i] = l.name end
        return n
      end)())
      assert.equal("3", d.top[1])
      assert.equal(1, #d.top)               -- the others did not move: no other histogram
      for _, l in ipairs(d.layers) do
        if l.name == "3" then
          assert.is_false(l.frozen)
          assert.is_true(l.rel_change > 0)
        else
          assert.equal(0, l.rel_change)
          assert.equal(0, l.max_abs_change)
          assert.is_true(l.frozen)
        end
      end
      -- the changed layer's bias is frozen too: only its weight moved
      table.sort(d.frozen)
      assert.same({ "0.bias", "0.weight", "3.bias", "7.bias", "7.weight" }, d.frozen)
      assert.same({}, d.only_a)
      assert.same({}, d.only_b)
      assert.same({}, d.shape_changed)
    end)

    it("gives ‖ΔW‖/‖W‖ and max |ΔW| as a hand computation does, per tensor and per layer", function()
      local wa, wb = a:get("3").weight, b:get("3").weight
      local ba = a:get("3").bias
      local dw = (wb - wa):contiguous():reshape(-1):values()
      local sq, mx = 0, 0
      for _, v in ipairs(dw) do sq = sq + v * v; mx = math.max(mx, math.abs(v)) end
      local nw, nb = norm_by_hand(wa), norm_by_hand(ba)
      local l = layer(d, "3")
      -- per layer: the norms over the layer's tensors (weight and bias)
      assert.near(math.sqrt(sq) / math.sqrt(nw ^ 2 + nb ^ 2), l.rel_change, 1e-5 * l.rel_change)
      assert.equal(mx, l.max_abs_change)
      assert.equal(wa:numel() + ba:numel(), l.params)
      -- per tensor
      local t
      for _, r in ipairs(l.tensors) do if r.name == "3.weight" then t = r end end
      assert.near(math.sqrt(sq) / nw, t.rel_change, 1e-5 * t.rel_change)
      assert.is_false(t.frozen)
    end)

    it("lists the parameters only one model has and those whose shape changed", function()
      local sa = a:state_dict()
      local sb = {}
      for k, v in pairs(b:state_dict()) do sb[k] = v end
      sb["3.bias"] = nil                                   -- removed
      sb["8.weight"] = nv.randn(2, 3)                      -- added, a layer of its own
      sb["7.weight"] = nv.randn(4, 8)                      -- reshaped
      local dd = nv.diff(sa, sb)
      assert.same({ "3.bias" }, dd.only_a)
      assert.same({ "8.weight" }, dd.only_b)
      assert.same({ "8" }, dd.layers_only_b)
      assert.same({}, dd.layers_only_a)
      assert.equal(1, #dd.shape_changed)
      assert.equal("7.weight", dd.shape_changed[1].name)
      assert.same({ 3, 8 }, { table.unpack(dd.shape_changed[1].a) })
      assert.same({ 4, 8 }, { table.unpack(dd.shape_changed[1].b) })
      local txt = dd:text()
      assert.truthy(txt:find("only in a (1): 3.bias", 1, true))
      assert.truthy(txt:find("only in b (1): 8.weight", 1, true))
      assert.truthy(txt:find("7.weight (3,8) -> (4,8)", 1, true))
      assert.truthy(panel_names(dd:image()).differences)
    end)

    it("compares state dicts (as nv.load_safetensors gives them) with each other and with models", function()
      local path = os.tmpname() .. ".safetensors"
      a:save(path)
      local sa = assert(nv.load_safetensors(path))
      os.remove(path)
      local d1 = nv.diff(sa, b:state_dict())
      assert.equal("3", d1.top[1])
      assert.near(layer(d, "3").rel_change, layer(d1, "3").rel_change, 1e-7)
      local d2 = nv.diff(sa, b)                 -- a state dict against a model: the model's order
      assert.same({ "0", "3", "7" }, { d2.layers[1].name, d2.layers[2].name, d2.layers[3].name })
      assert.equal("3", d2.top[1])
      -- a checkpoint holding its state dict under state_dict
      assert.equal("3", nv.diff({ state_dict = sa, epoch = 3 }, b).top[1])
    end)

    it("does not count a model's buffers (BatchNorm's running statistics) as parameters", function()
      local m = nn.Sequential { nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2) }
      local dd = nv.diff(m, m:state_dict())
      assert.same({}, dd.only_a)
      assert.same({}, dd.only_b)
      assert.equal(2, #dd.layers)
      for _, l in ipairs(dd.layers) do assert.is_true(l.frozen) end
    end)

    it("for two architectures names the layers only one has and compares the common ones", function()
      local p = nn.Sequential { nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4, 3) }
      local q = nn.Sequential { nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten() }
      q:add_module("head", nn.Linear(4, 5))
      local dd = nv.diff(p, q)
      assert.same({ "0" }, { dd.layers[1].name })
      assert.equal(1, #dd.layers)
      assert.same({ "3" }, dd.layers_only_a)
      assert.same({ "head" }, dd.layers_only_b)
      assert.same({ "3.weight", "3.bias" }, dd.only_a)
    end)
  end)

  describe("with inputs", function()
    it("gives each model's top class and probability per sample", function()
      assert.equal(4, #d.predictions)
      local pa = nv.softmax(a:eval()(x), 2)
      for i, p in ipairs(d.predictions) do
        assert.equal(pa:select(1, i):argmax(1):item(), p.a.class)
        assert.near(pa:get(i, p.a.class), p.a.prob, 1e-6)
        assert.is_true(p.b.prob > 0 and p.b.prob <= 1)
        assert.equal(p.a.class == p.b.class, p.same)
      end
    end)

    it("gives both Grad-CAMs and their difference b - a at the input's size", function()
      for _, k in ipairs { "a", "b", "diff" } do
        assert.same({ 4, 16, 16 }, { table.unpack(d.cams[k]:shape()) })
      end
      assert.equal(0, (d.cams.diff - (d.cams.b - d.cams.a)):abs():max():item())
      assert.equal("4", d.cams.layer_a)
      assert.equal("4", d.cams.layer_b)
    end)

    it("has a difference map exactly zero, and every layer frozen, when b is a copy of a", function()
      local dd = nv.diff(a, same, x)
      assert.equal(0, dd.cams.diff:abs():max():item())
      for _, l in ipairs(dd.layers) do assert.is_true(l.frozen) end
      assert.same({}, dd.top)
      for _, p in ipairs(dd.predictions) do assert.is_true(p.same) end
    end)

    it("needs models for inputs, not state dicts", function()
      assert.has_error(function() nv.diff(a:state_dict(), b, x) end,
        "diff: inputs need two models; argument 1 is a state dict")
    end)
  end)

  describe("as a figure", function()
    it("draws a (3,H,W) image whose layout names the bar chart, the histogram and the CAM panels", function()
      local img = d:image()
      assert.is_true(nv.figure.is_figure(d))
      assert.equal(3, img:dim())
      assert.equal(3, img:size(1))
      assert.is_true(img:size(2) > 300 and img:size(3) > 300)
      assert.is_true(img:min():item() >= 0 and img:max():item() <= 1)
      assert.is_true(img:std():item() > 0.05)          -- drawn, not blank
      local names = panel_names(img)
      for _, n in ipairs { "title", "changes", "histogram 3", "cam a 1", "cam b 1", "cam diff 4", "colorbar" } do
        assert.truthy(names[n], n)
      end
      -- every text box inside the figure
      local lay = nv.figure.layout(img)
      for _, t in ipairs(lay.texts) do
        assert.is_true(t.x >= 0 and t.y >= 0 and t.x + t.w <= lay.width + 0.01 and t.y + t.h <= lay.height + 0.01, t.text)
      end
      local png = d:png()
      assert.equal("\137PNG", png:sub(1, 4))
    end)

    it("prints a table with the changed layer, and one line from tostring", function()
      local txt = d:text()
      assert.truthy(txt:find("‖ΔW‖/‖W‖", 1, true))
      assert.truthy(txt:match("\n3%s+584%s+[%d.e-]+%s+[%d.e-]+%s+top 1"))
      assert.truthy(txt:match("\n0%s+80%s+0%s+0%s+frozen"))
      assert.truthy(txt:find("predictions", 1, true))
      local line = tostring(d)
      assert.falsy(line:find("\n"))
      assert.truthy(line:find("3 layers, 1 changed (most: 3", 1, true))
    end)

    it("gives an HTML fragment with the tables and the pictures as data: URIs", function()
      local html = d:html()
      assert.truthy(html:find('<div class="nnvis-diff">', 1, true))
      assert.truthy(html:find("<td>3</td><td>584</td>", 1, true))
      assert.truthy(html:find('class="predictions"', 1, true))
      local n = 0
      for src in html:gmatch('src="([^"]*)"') do
        assert.equal("data:image/png;base64,", src:sub(1, 22))
        n = n + 1
      end
      assert.equal(3, n)                                -- bar chart, histograms, CAMs
      assert.falsy(html:find("http", 1, true))
    end)

    it("raises on options it does not know, naming the closest", function()
      assert.has_error(function() nv.diff(a, b, nil, { tpo = 2 }) end)
      local ok, err = pcall(nv.diff, a, b, nil, { tpo = 2 })
      assert.is_false(ok)
      assert.truthy(tostring(err):find("diff: unknown option 'tpo'", 1, true))
      assert.has_error(function() nv.diff(a, 3) end,
        "diff: expected a model (nv.nn.Module) or a state dict (name -> tensor) as argument 2, got number")
    end)
  end)
end)
