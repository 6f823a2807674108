-- Occlusion, RISE, LRP and ROAD: known answers on constructed models, relevance conservation,
-- LRP's rules against their formulas, and the same results on an imported ONNX model as on
-- the native one.
local nv = require "nnvis"
local core = require "nnvis.core"
local H = require "helpers"
require "nnvis.tensor.assert"
local nn = nv.nn

-- a detector that looks only at rows 9-12, columns 5-8 of a 16x16 one-channel image: class 1's
-- logit is the sum of those pixels, class 2's is 2 (so class 1 wins on a bright patch)
local function detector()
  local m = nn.Sequential { nn.Flatten(), nn.Linear(256, 2) }
  nv.no_grad(function()
    local w = core.zeros({ 2, 256 })
    for r = 9, 12 do for c = 5, 8 do w:set(1, 1, (r - 1) * 16 + c) end end
    m:get("1").weight:copy(w)
    m:get("1").bias:copy(core.tensor({ 0, 2 }))
  end)
  return m
end

local function region_mask()
  local mk = core.zeros({ 16, 16 })
  mk:narrow(1, 9, 4):narrow(2, 5, 4):fill(1)
  return mk
end

local function inside_outside(map)
  local mk = region_mask()
  local inside = (map * mk):sum():item() / 16
  local outside = (map * (1 - mk)):sum():item() / (256 - 16)
  return inside, outside
end

local function bias_free_cnn()
  nv.manual_seed(11)
  return nn.Sequential { nn.Conv2d(3, 6, 3, { padding = 1, bias = false }), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(6, 8, 3, { padding = 1, bias = false }), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    nn.Linear(8, 4, { bias = false }) }
end

describe("nv.cam.occlusion", function()
  it("finds the patch a hand-built detector looks at", function()
    local m = detector()
    local x = core.ones({ 1, 1, 16, 16 })
    local map, raw = nv.cam.occlusion(m, x, { patch = 4, stride = 2, target = 1 })
    assert.shape(map, { 1, 16, 16 })
    local inside, outside = inside_outside(map:select(1, 1))
    assert.is_true(inside > 0.5, "inside " .. inside)
    assert.is_true(outside < 0.1, "outside " .. outside)
    -- the raw map is the mean drop of the logit: a 4x4 patch covering the region drops it by 16
    assert.near(16 * 1, raw:max():item() * 1, 8)
    assert.near(0, raw:select(1, 1):get(1, 16), 1e-6)
  end)

  it("takes a blur or a tensor baseline and checks its options", function()
    local m = detector()
    local x = nv.rand(2, 1, 16, 16)
    assert.shape(nv.cam.occlusion(m, x, { patch = { 4, 2 }, baseline = "blur" }), { 2, 16, 16 })
    assert.shape(nv.cam.occlusion(m, x, { baseline = core.zeros({ 1, 16, 16 }) }), { 2, 16, 16 })
    assert.has_error(function() nv.cam.occlusion(m, x, { patch = 40 }) end,
      "occlusion: patch 40x40 does not fit the input (2,1,16,16)")
    assert.has_error(function() nv.cam.occlusion(m, x, { patchsize = 4 }) end)
  end)
end)

describe("nv.cam.rise", function()
  it("weights the masks by the detector's probability: the region stands out, reproducibly", function()
    local m = detector()
    local x = core.ones({ 1, 1, 16, 16 })
    nv.manual_seed(7)
    local before = nv.rand(3):values()
    nv.manual_seed(7)
    local a = nv.cam.rise(m, x, { masks = 400, cells = 4, target = 1 })
    local after = nv.rand(3):values()
    assert.same(before, after)                      -- the caller's random stream is untouched
    local b = nv.cam.rise(m, x, { masks = 400, cells = 4, target = 1 })
    H.close(a, b, 0)
    local inside, outside = inside_outside(a:select(1, 1))
    assert.is_true(inside > outside + 0.25, string.format("inside %.3f outside %.3f", inside, outside))
  end)
end)

describe("nv.cam.lrp", function()
  it("conserves relevance: the input relevance sums to the target's score, for every composite", function()
    local m = bias_free_cnn()
    local x = nv.rand(3, 3, 12, 12)
    local out = m(x)
    local ids = out:argmax(2)
    for _, comp in ipairs { "epsilon", "epsilon_gamma_box", "epsilon_plus", "epsilon_alpha2_beta1" } do
      local map, R = nv.cam.lrp(m, x, { composite = comp })
      assert.shape(map, { 3, 12, 12 })
      assert.shape(R, { 3, 3, 12, 12 })
      local sums = R:reshape(3, -1):sum(2):values()
      for i = 1, 3 do
        local s = out:get(i, ids:get(i))
        assert.is_true(math.abs(sums[i] - s) <= 1e-3 * math.abs(s) + 1e-6,
          string.format("%s sample %d: relevance %.7g, score %.7g", comp, i, sums[i], s))
      end
    end
  end)

  it("is gradient x input under the epsilon rule in a bias-free ReLU network (LRP-0)", function()
    local m = bias_free_cnn()
    local x = nv.rand(2, 3, 12, 12)
    local _, R = nv.cam.lrp(m, x, { composite = "epsilon", epsilon = 1e-9, target = 2 })
    local xin = x:clone():set_requires_grad(true)
    local g = nv.grad(m(xin):select(2, 2):sum(), { xin })[1]
    H.close(R, x * g, 1e-5)
  end)

  it("follows the alpha-beta, gamma and z^B formulas on a network small enough to do by hand", function()
    nv.manual_seed(3)
    local m = nn.Sequential { nn.Flatten(), nn.Linear(3, 2, { bias = false }), nn.ReLU(), nn.Linear(2, 1, { bias = false }) }
    local W1 = core.tensor({ { 1, -2, 0.5 }, { -0.5, 1, 2 } })
    local W2 = core.tensor({ { 1.5, -1 } })
    nv.no_grad(function() m:get("1").weight:copy(W1); m:get("3").weight:copy(W2) end)
    local a = core.tensor({ { 0.5, 0.2, 0.9 } })
    local z1 = { 0.5 - 0.4 + 0.45, -0.25 + 0.2 + 1.8 }           -- 0.55, 1.75 (both > 0)
    local y = 1.5 * z1[1] - z1[2]
    local w1, w2 = W1:values(), W2:values()
    -- dense layers by the epsilon rule: R1_j = a_j w_j / z * R = w2_j z1_j / y * y
    local R1 = { w2[1] * z1[1], w2[2] * z1[2] }
    local function by_rule(rule)
      local R = { 0, 0, 0 }
      for j = 1, 2 do
        local row = { w1[3 * j - 2], w1[3 * j - 1], w1[3 * j] }
        if rule == "alpha_beta" then          -- alpha 2, beta 1
          local zp, zn = 0, 0
          for i = 1, 3 do local c = row[i] * a:get(1, i); if c > 0 then zp = zp + c else zn = zn + c end end
          for i = 1, 3 do
            local c = row[i] * a:get(1, i)
            R[i] = R[i] + (c > 0 and 2 * c / zp or 0) * R1[j] - (c < 0 and c / zn or 0) * R1[j]
          end
        elseif rule == "gamma" then           -- gamma 0.25
          local zg = 0
          for i = 1, 3 do zg = zg + (row[i] + 0.25 * math.max(row[i], 0)) * a:get(1, i) end
          for i = 1, 3 do R[i] = R[i] + (row[i] + 0.25 * math.max(row[i], 0)) * a:get(1, i) / zg * R1[j] end
        else                                  -- zbox with l = 0, h = 1
          local zb = 0
          for i = 1, 3 do zb = zb + row[i] * a:get(1, i) - math.min(row[i], 0) * 1 end
          for i = 1, 3 do R[i] = R[i] + (row[i] * a:get(1, i) - math.min(row[i], 0)) / zb * R1[j] end
        end
      end
      return core.tensor({ R })
    end
    local function lrp(rule)
      local _, R = nv.cam.lrp(m, a:view(1, 3, 1, 1), { composite = "epsilon", rules = { ["1"] = rule },
        alpha = 2, beta = 1, gamma = 0.25, low = 0, high = 1, target = 1 })
      return R:view(1, 3)
    end
    H.close(lrp("alpha_beta"), by_rule("alpha_beta"), 1e-5)
    H.close(lrp("gamma"), by_rule("gamma"), 1e-5)
    H.close(lrp("zbox"), by_rule("zbox"), 1e-5)
    assert.near(y, lrp("zbox"):sum():item(), 1e-5)
  end)

  it("merges a BatchNorm into the convolution before it (as if folded by hand)", function()
    nv.manual_seed(5)
    local conv = nn.Conv2d(3, 4, 3, { padding = 1, bias = false })
    local bn = nn.BatchNorm2d(4)
    nv.no_grad(function()
      bn.weight:copy(core.tensor({ 0.5, 2, 1.5, 0.8 }))
      bn.running_var:copy(core.tensor({ 4, 0.25, 1, 2 }))
    end)
    local head = nn.Sequential { nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2, { bias = false }) }
    local m1 = nn.Sequential { conv, bn, head }
    local folded = nn.Conv2d(3, 4, 3, { padding = 1, bias = false })
    local s = bn.weight:detach() / (bn.running_var + bn.eps):sqrt()
    nv.no_grad(function() folded.weight:copy(conv.weight:detach() * s:view(4, 1, 1, 1)) end)
    local m2 = nn.Sequential { folded, head }
    m1:eval(); m2:eval()
    local x = nv.rand(2, 3, 8, 8)
    H.close(m1(x), m2(x), 1e-5)
    for _, comp in ipairs { "epsilon_gamma_box", "epsilon_plus" } do
      local _, R1 = nv.cam.lrp(m1, x, { composite = comp })
      local _, R2 = nv.cam.lrp(m2, x, { composite = comp })
      H.close(R1, R2, 1e-5)
    end
  end)

  it("refuses unknown composites and rules", function()
    local m = bias_free_cnn()
    local x = nv.rand(1, 3, 12, 12)
    assert.has_error(function() nv.cam.lrp(m, x, { composite = "nope" }) end)
    assert.has_error(function() nv.cam.lrp(m, x, { rules = { ["3"] = "zbox" } }) end)
    assert.has_error(function() nv.cam.lrp(m, x, { alpha = 2, beta = 0 }) end)
  end)
end)

describe("nv.cam.road", function()
  it("ranks a correct map above a shuffled one", function()
    local m = detector()
    nv.manual_seed(2)
    local x = nv.rand(1, 1, 16, 16) * 0.2
    x:select(1, 1):select(1, 1):narrow(1, 9, 4):narrow(2, 5, 4):fill(1)
    local good = region_mask() + nv.rand(16, 16) * 0.01
    local shuffled = good:view(-1):index_select(1, nv.randperm(256)):view(16, 16)
    local r1 = nv.cam.road(m, x, good:unsqueeze(1), { target = 1 })
    local r2 = nv.cam.road(m, x, shuffled:unsqueeze(1), { target = 1 })
    assert.is_true(r1.mean_morf_auc < r2.mean_morf_auc, string.format("MoRF %.3f vs %.3f", r1.mean_morf_auc, r2.mean_morf_auc))
    assert.is_true(r1.mean_lerf_auc > r2.mean_lerf_auc, string.format("LeRF %.3f vs %.3f", r1.mean_lerf_auc, r2.mean_lerf_auc))
    assert.equal(10, #r1.morf[1])
    -- nothing removed: the clean probability
    local p = core.softmax(m(x), 2):get(1, 1)
    assert.near(p, r1.morf[1][1], 1e-5)
  end)

  it("imputes removed pixels from their neighbours, not with a constant", function()
    local m = detector()
    local x = core.full({ 1, 1, 16, 16 }, 0.7)
    local map = region_mask():unsqueeze(1)
    local r = nv.cam.road(m, x, map, { target = 1, fractions = { 0, 16 / 256 }, noise = 0 })
    -- the region is re-filled with 0.7 by the imputation, so the probability stays
    assert.near(r.morf[1][1], r.morf[1][2], 1e-3)
  end)
end)

describe("the perturbation methods and LRP on an imported ONNX model", function()
  local DIR = "spec/fixtures/onnx/"
  it("give the native model's maps", function()
    local onnx = assert(nv.onnx.load(DIR .. "small_cnn_op13.onnx"))
    local expected = assert(nv.load_safetensors(DIR .. "small_cnn_expected.safetensors"))
    local native = require("onnx_native").small_cnn()
    local x = expected.x
    H.close(onnx(x), native(x), 1e-5)
    H.close(nv.cam.occlusion(onnx, x, { patch = 4 }), nv.cam.occlusion(native, x, { patch = 4 }), 1e-4)
    H.close(nv.cam.rise(onnx, x, { masks = 64 }), nv.cam.rise(native, x, { masks = 64 }), 1e-4)
    for _, comp in ipairs { "epsilon_gamma_box", "epsilon_plus" } do
      local _, Ra = nv.cam.lrp(onnx, x, { composite = comp })
      local _, Rb = nv.cam.lrp(native, x, { composite = comp })
      H.close(Ra, Rb, 1e-4)
    end
    local map = nv.cam.gradcam(native, x)
    local a, b = nv.cam.road(onnx, x, map), nv.cam.road(native, x, map)
    assert.near(a.mean_morf_auc, b.mean_morf_auc, 1e-4)
    -- and they sit in the comparison figure beside the CAMs
    local fig = nv.cam.compare(native, x:narrow(1, 1, 1), { methods = { "gradcam", "occlusion", "rise", "lrp" } })
    assert.is_true(nv.figure.of(fig) ~= nil)
  end)
end)
