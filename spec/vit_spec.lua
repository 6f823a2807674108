-- nv.models' vision transformers are torchvision's: the same parameter names, so a torchvision
-- ViT's state_dict loads with model:load and gives PyTorch's logits and attention weights; the
-- CAM methods, attention maps and rollout work on it.  The PyTorch comparison needs Debian's
-- python3-torch and python3-torchvision (pending without them when run by hand, a failure under
-- `make test`).
local nv = require "nnvis"
local H = require "helpers"
require "nnvis.tensor.assert"

local PY = "/usr/bin/python3"
local have_torch = H.sh(PY .. " -c 'import torch, torchvision'")

local floats = H.read_floats

local function small()
  return nv.nn.VisionTransformer { image_size = 32, patch_size = 16, num_layers = 2, num_heads = 2, hidden_dim = 16,
                                   mlp_dim = 32, num_classes = 5 }
end

describe("vision transformers", function()
  local it_torch = H.it_if(have_torch, "python3-torch and python3-torchvision")
  it_torch("load a torchvision VisionTransformer's state_dict and give its logits and attention weights", function()
    local pth, xf, yf, af = os.tmpname() .. ".pth", os.tmpname(), os.tmpname(), os.tmpname()
    assert(H.sh(("%s spec/fixtures/vit_reference.py %s %s %s %s"):format(PY, pth, xf, yf, af)))
    local m = small():eval()
    m:load(pth)
    local x, want, attn = floats(xf, { 2, 3, 32, 32 }), floats(yf, { 2, 5 }), floats(af, { 2, 2, 5, 5 })
    for _, f in ipairs { pth, xf, yf, af } do os.remove(f) end
    local got = nv.no_grad(function() return m(x) end)
    local d = H.maxdiff(got, want)
    print(("\n  ViT (2 layers): max |logit difference| = %.3g"):format(d))
    assert.is_true(d < 1e-4)
    local _, _, w = nv.cam.attention(m, x)
    assert.same({ 2, 2, 5, 5 }, w:shape())
    assert.is_true(H.maxdiff(w, attn) < 1e-5)
  end)

  it_torch("an exported ViT-B/16 summarizes like torchinfo at depth 2 (export constants hidden, Identity copies of equal weights its own parameters again)", function()
    local path = os.tmpname() .. ".onnx"
    assert(H.sh(("%s spec/fixtures/export_vit_b_16.py %s 2>/dev/null"):format(PY, path)))
    local m, err = nv.onnx.load(path)
    os.remove(path)
    assert(m, err)
    local s = nv.summary(m, { 1, 3, 224, 224 }, { depth = 2 })
    local rows = {}
    for _, r in ipairs(s.rows) do rows[r.name] = r end
    -- torchinfo's counts for torchvision's vit_b_16
    for name, n in pairs { conv_proj = 590592, encoder = 85207296, ["encoder.layers"] = 85054464,
                           ["encoder.ln"] = 1536, heads = 769000 } do
      assert.is_truthy(rows[name], name)
      assert.equal(n, rows[name].params, name)
    end
    assert.equal(86567656, s.total_params)
    local text = tostring(s)
    assert.is_nil(text:find("Identity", 1, true))
    assert.is_nil(text:find("(Constant)", 1, true))
    assert.is_nil(text:find("encoder.layers.encoder_layer_0", 1, true))      -- depth 3 folded
  end)

  it("names its layers as torchvision does and counts its parameters", function()
    local m = nv.models.vit_b_16()
    local names = {}
    for name in pairs(m:state_dict()) do names[name] = true end
    for _, k in ipairs { "class_token", "conv_proj.weight", "encoder.pos_embedding",
                         "encoder.layers.encoder_layer_11.self_attention.in_proj_weight",
                         "encoder.layers.encoder_layer_11.self_attention.out_proj.bias",
                         "encoder.layers.encoder_layer_0.mlp.3.weight", "encoder.ln.bias", "heads.head.weight" } do
      assert.is_true(names[k], k)
    end
    local n = 0
    for _, p in pairs(m:state_dict()) do n = n + p:numel() end
    assert.equal(86567656, n)                           -- torchvision's vit_b_16
  end)

  it("explains with Grad-CAM over tokens, attention and rollout", function()
    local m = small():eval()
    local x = nv.randn(1, 3, 32, 32)
    local cam = nv.cam.gradcam(m, x, { target = 2 })
    assert.same({ 1, 32, 32 }, cam:shape())
    local a = nv.cam.attention(m, x)
    assert.same({ 1, 32, 32 }, a:shape())
    local r = nv.cam.rollout(m, x)
    assert.same({ 1, 32, 32 }, r:shape())
    for _, t in ipairs { cam, a, r } do
      assert.is_true(t:min():item() >= 0 and t:max():item() <= 1 + 1e-6)
    end
  end)

  it("normalizes layers in one fused pass for inference, equal to the differentiable composition", function()
    local layer_norm = require("nnvis.core").layer_norm
    local ln = nv.nn.LayerNorm(16)
    ln.weight, ln.bias = nv.randn(16):set_requires_grad(true), nv.randn(16):set_requires_grad(true)
    local x = nv.randn(3, 5, 16) * 3 + 2
    local composed = ln(x)                               -- parameters require grad: composed
    assert.is_true(composed.requires_grad)
    local fused = nv.no_grad(function() return ln(x) end)
    assert.is_false(fused.requires_grad)
    assert.is_true(H.maxdiff(composed:detach(), fused) < 1e-5)
    assert.has_error(function() layer_norm(x, ln.weight, ln.bias) end,
      "layer_norm: it is for inference; call it under nv.no_grad (nn.LayerNorm does)")
    assert.has_error(function() layer_norm(x, nv.ones(4), nil) end,
      "layer_norm: weight (4) does not match the last dim of input (3,5,16)")
  end)

  it("says what input it expects", function()
    assert.has_error(function() small()(nv.randn(1, 3, 28, 28)) end,
      "VisionTransformer: expected an input (N,3,32,32), got (1,3,28,28)")
    assert.has_error(function() nv.nn.VisionTransformer { image_size = 30, patch_size = 16, num_layers = 1,
      num_heads = 1, hidden_dim = 4, mlp_dim = 4 } end, "VisionTransformer: patch_size 16 must divide image_size 30")
    assert.has_error(function() nv.nn.MultiheadAttention(10, 3) end,
      "MultiheadAttention: 3 heads do not divide embed_dim 10")
  end)
end)

describe("nv.cam.relevance", function()
  local function tiny()
    nv.manual_seed(11)
    return nv.nn.VisionTransformer { image_size = 32, patch_size = 8, num_layers = 2, num_heads = 2, hidden_dim = 16,
                                     mlp_dim = 32, num_classes = 5 }:eval()
  end

  it("is Chefer et al.'s R = (I + A2)(I + A1), A = mean over heads of ReLU(grad * A), computed apart", function()
    local m = tiny()
    local x = nv.rand(2, 3, 32, 32)
    local maps, rows = nv.cam.relevance(m, x, { target = 3 })
    assert.shape(maps, { 2, 32, 32 })
    assert.shape(rows, { 2, 4, 4 })
    local names = { "encoder.layers.encoder_layer_0.self_attention.softmax", "encoder.layers.encoder_layer_1.self_attention.softmax" }
    local cap = nv.capture(m, x, { layers = names, grads = true, target = 3 })
    local R = nv.eye(17):unsqueeze(1):expand(2, 17, 17)
    for _, name in ipairs(names) do
      local c = cap[name]
      local A = (c.grad * c.output):relu():mean(2)
      R = R + nv.matmul(A, R)
    end
    local want = R:select(2, 1):narrow(2, 2, 16):reshape(2, 4, 4)
    assert.near(0, (rows - want):abs():max():item(), 1e-5)
    -- it depends on the class explained, as attention rollout does not
    local _, other = nv.cam.relevance(m, x, { target = 1 })
    assert.is_true((rows - other):abs():max():item() > 1e-6)
    for i = 1, 2 do assert.near(1, maps:select(1, i):max():item(), 1e-4) end
  end)

  it("names its options and the function in errors", function()
    assert.has_error(function() nv.cam.relevance(tiny(), nv.rand(1, 3, 32, 32), { heads = 1 }) end)
    assert.has_error(function() nv.cam.relevance(nv.nn.Sequential { nv.nn.Linear(4, 2) }, nv.rand(1, 1, 2, 2)) end)
  end)
end)
