-- nv.onnx.load: ONNX graphs exported by PyTorch run as nnvis modules and give PyTorch's
-- numbers; every tool works on them; broken and hostile files give nil, message.
-- Fixtures: spec/fixtures/onnx/make_fixtures.py (run by hand with Debian's PyTorch).
local nv = require "nnvis"
local H = require "helpers"
local ops = require "nnvis.nn.onnx_ops"

local DIR = "spec/fixtures/onnx/"
local expected = assert(nv.load_safetensors(DIR .. "small_cnn_expected.safetensors"))

local function load(name) return assert(nv.onnx.load(DIR .. name .. ".onnx")) end

local native_small_cnn = require("onnx_native").small_cnn

describe("nv.onnx.load", function()
  for _, f in ipairs { "small_cnn_op11", "small_cnn_op13" } do
    describe(f, function()
      it("gives PyTorch's logits", function()
        H.close(load(f)(expected.x), expected.logits, 1e-5)
      end)

      it("gives PyTorch's input gradients", function()
        local x = expected.x:detach():set_requires_grad(true)
        local g = nv.grad(load(f)(x):sum(), { x })[1]
        H.close(g, expected.dx, 1e-4)
      end)

      it("gives PyTorch's Grad-CAM at a scope-named layer and at a single-node scope", function()
        local m = load(f)
        local _, raw = nv.cam.gradcam(m, expected.x, { layer = "block" })
        H.close(raw, expected.gradcam_block, 1e-4)
        _, raw = nv.cam.gradcam(m, expected.x, { layer = "dw" })
        H.close(raw, expected.gradcam_dw, 1e-4)
      end)
    end)
  end

  it("keeps BatchNormalization nodes and PyTorch's parameter names when exported without folding", function()
    local m = load("small_cnn_op13")
    local sd, keys = m:state_dict()
    assert.truthy(sd["block.bn1.running_mean"])
    assert.truthy(sd["stem.0.weight"])
    local want = assert(nv.load_safetensors(DIR .. "small_cnn_weights.safetensors"))
    for _, k in ipairs(keys) do H.close(sd[k], want[k], 0, k) end
    assert.equal(22, #keys)
  end)

  it("gives the native module's Grad-CAM for the same scope name and weights", function()
    local native, m = native_small_cnn(), load("small_cnn_op13")
    H.close(m(expected.x), native(expected.x), 1e-5)
    for _, layer in ipairs { "block", "block.conv2", "stem" } do
      local a = nv.cam.gradcam(m, expected.x, { layer = layer })
      local b = nv.cam.gradcam(native, expected.x, { layer = layer })
      H.close(a, b, 1e-4, layer)
    end
    -- and the default layer is the last one with a spatial output, as natively
    H.close(nv.cam.gradcam(m, expected.x), nv.cam.gradcam(native, expected.x), 1e-4)
  end)

  it("names every node and every PyTorch scope, in execution order", function()
    local m = load("small_cnn_op13")
    local names = {}
    for name in m:named_modules() do names[#names + 1] = name end
    assert.same({ "", "stem", "stem.0", "/stem/stem.0/Conv", "stem.1", "/stem/stem.1/BatchNormalization" },
      { table.unpack(names, 1, 6) })
    assert.equal("fc", names[#names - 1])
    assert.equal("/fc/Gemm", names[#names])
    assert.equal("Conv", m:get("/block/conv1/Conv").kind)
    assert.equal(m:get("block.conv1"), m:get("block"):get("conv1"))
    assert.equal(m:get("/block/conv1/Conv"), m:get("block.conv1.Conv"))
    assert.has_error(function() m:get("nope") end)
  end)

  it("fires hooks on scopes with the scope's last value, and a hook's replacement propagates", function()
    local m = load("small_cnn_op13")
    local seen
    local h = m:get("block"):register_forward_hook(function(_, _, out) seen = out end)
    local _ = m(expected.x)
    h:remove()
    assert.same({ 2, 8, 16, 16 }, seen:shape())
    local h2 = m:get("fc"):register_forward_hook(function(_, _, out) return out * 0 end)
    local y = m(expected.x)
    h2:remove()
    assert.equal(0, y:abs():max():item())
  end)

  it("treats float initializers as trainable parameters and runs BatchNormalization by mode", function()
    local m = load("small_cnn_op13")
    assert.is_false(m.training)
    local params = m:parameters()
    assert.equal(16, #params)
    for _, p in ipairs(params) do assert.is_true(p.requires_grad) end
    local opt = nv.optim.SGD(params, { lr = 0.1 })
    local targets = { 1, 2 }
    m:train()
    local before = nv.cross_entropy(m(expected.x), targets):item()
    for _ = 1, 5 do
      opt:zero_grad()
      nv.cross_entropy(m(expected.x), targets):backward()
      opt:step()
    end
    m:eval()
    assert.is_true(nv.cross_entropy(m(expected.x), targets):item() < before)
    -- training mode moved the running statistics
    local want = assert(nv.load_safetensors(DIR .. "small_cnn_weights.safetensors"))
    assert.is_true(H.maxdiff(m:state_dict()["block.bn1.running_mean"], want["block.bn1.running_mean"]) > 0)
    -- and load_state_dict puts PyTorch's back
    m:load_state_dict(want, { strict = false })
    H.close(m(expected.x) * 0 + m(expected.x), m(expected.x), 0)
  end)

  it("works with summary, diagram, capture, feature maps and maximize", function()
    local m = load("small_cnn_op13")
    local s = nv.summary(m, { 1, 3, 16, 16 }, { depth = 1 })
    assert.equal(2861, s.total_params)
    local top = {}
    for _, r in ipairs(s.rows) do top[#top + 1] = r.name end
    assert.same({ "stem", "block", "dw", "pw", "/Relu", "/Sigmoid", "/Concat", "pool" }, { table.unpack(top, 1, 8) })
    local d = nv.diagram(m, { 1, 3, 16, 16 }, { depth = 1 })
    assert.truthy(d:dot():find("block", 1, true))
    local cap = nv.capture(m, expected.x, { layers = { "block", "/dw/Conv" }, grads = true })
    assert.same({ 2, 8, 16, 16 }, cap.block.grad:shape())
    local img = nv.features.maps(m, expected.x:select(1, 1), "block")
    assert.equal(3, img:size(1))
    local pic = nv.maximize(m, { layer = "block", channel = 1, steps = 3, size = 16, seed = 1 })
    assert.same({ 3, 16, 16 }, pic:shape())
  end)

  it("checks the number of inputs", function()
    local m = load("small_cnn_op13")
    assert.has_error(function() m() end, "onnx model: expected 1 input (x), got 0")
  end)
end)

describe("ONNX operators", function()
  local function run(name)
    local m = load(name)
    local e = assert(nv.load_safetensors(DIR .. name .. "_expected.safetensors"))
    return m, e
  end

  it("pads asymmetrically in Conv, MaxPool (with ceil mode) and AveragePool (both count rules)", function()
    local m, e = run("pads")
    local conv, mp, ai, ae = m(e.x)
    H.close(conv, e.conv, 1e-5, "conv")
    H.close(mp, e.maxpool, 1e-6, "maxpool")
    H.close(ai, e.avg_in, 1e-6, "avg_in")
    H.close(ae, e.avg_ex, 1e-6, "avg_ex")
  end)

  it("resizes with nearest and linear modes under ONNX's coordinate transformations", function()
    local m, e = run("resize")
    local a, b, c, d = m(e.r)
    H.close(a, e.nearest, 1e-6, "nearest")
    H.close(b, e.half_pixel, 1e-5, "half_pixel")
    H.close(c, e.align_corners, 1e-5, "align_corners")
    H.close(d, e.pytorch_half_pixel, 1e-5, "pytorch_half_pixel")
  end)

  it("runs Gemm with transA, transB, alpha and beta; Clip with bounds as inputs; the opset 11 softmax axis rule", function()
    local m, e = run("gemm_clip_softmax11")
    local g, c, s, ls = m(e.a, e.s)
    H.close(g, e.gemm, 1e-5, "gemm")
    H.close(c, e.clip, 0, "clip")
    H.close(s, e.softmax, 1e-6, "softmax")
    H.close(ls, e.logsoftmax, 1e-5, "logsoftmax")
  end)

  it("uses the opset 13 softmax axis rule, and Clip without bounds is the identity", function()
    local m, e = run("softmax13")
    local s, c = m(e.s)
    H.close(s, e.softmax, 1e-6)
    H.close(c, e.clip, 0)
  end)

  it("reads Clip's bounds from attributes before opset 11", function()
    local m, e = run("clip7")
    H.close(m(e.s), e.clip, 0)
  end)

  local function node(op, attrs, opset)
    return { name = "n", op_type = op, attrs = attrs or {}, opset = opset or 13, outputs = { "y" }, inputs = {} }
  end

  it("computes ConvTranspose as the input gradient of the matching convolution", function()
    nv.manual_seed(3)
    local x, w = nv.randn(1, 2, 7, 6), nv.randn(3, 2, 3, 3)
    local opts = { stride = 2, padding = 1 }
    local y = nv.conv2d(x, w, nil, opts)
    local g = nv.randn(y:shape())
    local xg = x:detach():set_requires_grad(true)
    local want = nv.grad(nv.conv2d(xg, w, nil, opts), { xg }, { grad = g })[1]
    local got = ops.ConvTranspose(node("ConvTranspose", { strides = { 2, 2 }, pads = { 1, 1, 1, 1 },
      output_padding = { 0, 1 } }), { g, w })[1]
    H.close(got, want, 1e-5)
    H.gradcheck(function(a, b)
      return ops.ConvTranspose(node("ConvTranspose", { strides = { 2, 1 }, pads = { 0, 1, 1, 0 }, group = 2 }), { a, b })[1]
    end, { nv.randn(1, 2, 3, 3), nv.randn(2, 2, 2, 3) })
  end)

  it("has gradients for the composed ops (Erf, LayerNorm, InstanceNorm, LRN, HardSwish, PRelu)", function()
    nv.manual_seed(4)
    H.gradcheck(function(x) return ops.Erf(node("Erf"), { x })[1] end, { H.away_from_zero(5) })
    assert.is_true(math.abs(ops.erf(nv.tensor { 0.5 }):item() - 0.5204998778) < 1e-6)
    H.gradcheck(function(x, s, b) return ops.LayerNormalization(node("LayerNormalization", { axis = -1 }), { x, s, b })[1] end,
      { nv.randn(2, 3, 4), nv.randn(4), nv.randn(4) })
    H.gradcheck(function(x, s, b) return ops.InstanceNormalization(node("InstanceNormalization"), { x, s, b })[1] end,
      { nv.randn(2, 3, 2, 2), nv.randn(3), nv.randn(3) })
    H.gradcheck(function(x) return ops.LRN(node("LRN", { size = 3, alpha = 0.1, beta = 0.75, bias = 1 }), { x })[1] end,
      { nv.randn(1, 4, 2, 2) })
    H.gradcheck(function(x) return ops.HardSwish(node("HardSwish"), { x })[1] end, { H.away_from_zero(6) * 2 })
    H.gradcheck(function(x, s) return ops.PRelu(node("PRelu"), { x, s })[1] end,
      { H.away_from_zero(2, 3, 2), nv.randn(3, 1) })
  end)

  it("evaluates integer shape arithmetic in Lua, never as tensors", function()
    local ints = ops.ints
    local shape = ops.Shape(node("Shape"), { nv.zeros(2, 3, 4) })[1]
    assert.is_true(ints.is(shape))
    local n = ops.Gather(node("Gather", { axis = 0 }), { shape, ints.scalar(0) })[1]
    local u = ops.Unsqueeze(node("Unsqueeze"), { n, ints.vector { 0 } })[1]
    local c = ops.Concat(node("Concat", { axis = 0 }), { u, ints.vector { -1 } })[1]
    assert.is_true(ints.is(c))
    assert.same({ 2, -1 }, { c[1], c[2] })
    local y = ops.Reshape(node("Reshape"), { nv.zeros(2, 3, 4), c })[1]
    assert.same({ 2, 12 }, y:shape())
    local q = ops.Div(node("Div"), { ints.vector { 7, -7 }, ints.scalar(2) })[1]
    assert.same({ 3, -3 }, { q[1], q[2] })
  end)
end)

describe("nv.onnx.load on broken and hostile files", function()
  local cases = {
    { "missing", "cannot open" },
    { "bad_truncated", "not an ONNX model" },
    { "bad_not_onnx", "not an ONNX model" },
    { "bad_forged_length", "not an ONNX model" },
    { "bad_huge_dims", "dimension 2 of size 1048576" },
    { "bad_negative_dim", "size %-1" },
    { "bad_raw_size", "needs 8 bytes of raw_data, has 5" },
    { "bad_typed_count", "has 2 values in its data field" },
    { "bad_external_dotdot", "must be a relative path inside the model's folder" },
    { "bad_external_range", "lies outside" },
  }
  for _, c in ipairs(cases) do
    it("gives nil, message for " .. c[1], function()
      local m, err = nv.onnx.load(DIR .. c[1] .. ".onnx")
      assert.is_nil(m)
      assert.truthy(err:find("^onnx.load: "), err)
      assert.truthy(err:find(c[2]), err)
    end)
  end

  it("names the node, the op and the opset of an unsupported op", function()
    local m, err = nv.onnx.load(DIR .. "unsupported_op.onnx")
    assert.is_nil(m)
    assert.equal("onnx.load: node /features/features.3/Foo (Foo, opset 13) is not supported", err)
  end)

  it("reads external data next to the model", function()
    local m = load("external_ok")
    H.close(m(nv.tensor { 1, 1 }), nv.tensor { 2.5, -1 }, 0)
  end)

  it("survives randomly corrupted files: a model or nil, message, never a crash", function()
    local f = assert(io.open(DIR .. "small_cnn_op13.onnx", "rb"))
    local good = f:read("a")
    f:close()
    local path = os.tmpname()
    local rng = 12345
    local function rand(n) rng = (rng * 1103515245 + 12345) % 2147483648; return rng % n + 1 end
    local rejected = 0
    for _ = 1, 300 do
      local b = { good:byte(1, #good) }
      for _ = 1, rand(8) do b[rand(#b)] = ({ 0, 0x7f, 0xff, rand(256) - 1 })[rand(4)] end
      local n = rand(5) == 1 and rand(#b) or #b
      local parts = {}
      for i = 1, n, 4096 do parts[#parts + 1] = string.char(table.unpack(b, i, math.min(i + 4095, n))) end
      local out = assert(io.open(path, "wb"))
      out:write(table.concat(parts))
      out:close()
      local m, err = nv.onnx.load(path)
      if m then pcall(m, nv.randn(1, 3, 16, 16))
      else
        rejected = rejected + 1
        assert.truthy(err:find("^onnx.load: "), err)
      end
    end
    os.remove(path)
    assert.is_true(rejected > 50)
  end)

  it("gives nil, message for a file that is not ONNX at all and for an empty one", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    f:close()
    local m, err = nv.onnx.load(path)
    assert.is_nil(m)
    assert.truthy(err:find("empty file"))
    os.remove(path)
  end)
end)

describe("a torchvision ResNet-18 exported by torch.onnx.export", function()
  local have_torch = H.sh("/usr/bin/python3 -c 'import torch, torchvision'")
  if not have_torch then
    H.missing("needs python3-torch and python3-torchvision to export the model")
    return
  end
  local dir = os.tmpname()
  os.remove(dir)
  local ok = H.sh("/usr/bin/python3 bench/lib/export_torchvision.py " .. dir .. " resnet18")

  it("gives PyTorch's logits, and the native ResNet-18's Grad-CAM at layer4 with the same weights", function()
    assert.is_true(ok, "the export failed")
    local m = assert(nv.onnx.load(dir .. "/resnet18.onnx"))
    local e = assert(nv.load_safetensors(dir .. "/resnet18.safetensors"))
    H.close(nv.no_grad(m, e.x), e.logits, 1e-4)
    local native = nv.models.resnet18()
    native:load_state_dict(assert(nv.load_safetensors(dir .. "/resnet18_weights.safetensors")))
    native:eval()
    -- the imported model's state dict is PyTorch's, under PyTorch's names
    local sd = m:state_dict()
    H.close(sd["layer4.1.conv1.weight"], native:get("layer4.1.conv1").weight, 0)
    local x = e.x
    H.close(nv.cam.gradcam(m, x, { layer = "layer4" }), nv.cam.gradcam(native, x, { layer = "layer4" }), 1e-4)
    H.close(nv.cam.gradcam(m, x, { layer = "layer3.1" }), nv.cam.gradcam(native, x, { layer = "layer3.1" }), 1e-4)
    os.execute("rm -rf '" .. dir .. "'")
  end)
end)
