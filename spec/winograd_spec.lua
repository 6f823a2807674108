-- With oneDNN off (nv.config{onednn = false}), 3x3 stride-1 convolutions with 16 or more
-- channels each way run by Winograd's F(2x2, 3x3) (csrc/kernels/winograd.c): the same values as im2col's direct sums (to rounding), forward and
-- input gradient, with bias, the fused ReLU, every padding up to 2, odd sizes and batches;
-- its transformed kernels are kept per weight and follow in-place changes.
local nv = require "nnvis"
local core = require "nnvis.core"
local H = require "helpers"

local function with(on, f) return H.with_config({ winograd = on }, f) end

-- forward and input gradient of sum(conv(x) * g)
local function run(x, w, b, opts)
  local xx = x:detach()
  xx:set_requires_grad(true)
  local y = nv.conv2d(xx, w, b, opts)
  local g = nv.randn(table.unpack(y:shape()))
  nv.manual_seed(7)
  local dx = nv.grad((y * g):sum(), { xx })[1]
  return y:detach(), dx, g
end

local function rel(a, b)
  return (a - b):abs():max():item() / math.max(b:abs():max():item(), 1e-6)
end

describe("Winograd F(2x2, 3x3) convolution", function()
  -- the built-in kernels run when oneDNN's are off
  local onednn
  setup(function() onednn = nv.config().onednn; nv.config { onednn = false } end)
  teardown(function() nv.config { onednn = onednn } end)
  it("is on by default and can be turned off", function()
    assert.is_true(nv.config().winograd)
    with(false, function() assert.is_false(nv.config().winograd) end)
    assert.is_true(nv.config().winograd)
    assert.has_error(function() nv.config { winograd = 1 } end, "config: winograd must be a boolean, got number")
  end)

  local cases = {
    { 1, 16, 16, 16, 16, 1 }, { 2, 16, 32, 15, 13, 1 }, { 3, 17, 19, 9, 10, 0 }, { 2, 16, 16, 7, 7, 2 },
    { 1, 64, 48, 30, 30, 1 }, { 8, 32, 32, 7, 7, 1 }, { 4, 24, 16, 6, 11, { 0, 2 } },
  }
  for _, c in ipairs(cases) do
    local n, cin, cout, h, w, pad = table.unpack(c)
    local name = string.format("(%d,%d,%d,%d) -> %d channels, padding %s", n, cin, h, w, cout,
      type(pad) == "table" and table.concat(pad, ",") or pad)
    it("equals im2col on " .. name, function()
      nv.manual_seed(3)
      local x, wt, b = nv.randn(n, cin, h, w), nv.randn(cout, cin, 3, 3) * 0.1, nv.randn(cout)
      local opts = { padding = pad }
      nv.manual_seed(5)
      local y0, dx0 = with(false, function() return run(x, wt, b, opts) end)
      nv.manual_seed(5)
      core.winograd_cache(true)
      local y1, dx1 = with(true, function() return run(x, wt, b, opts) end)
      assert.is_true(core.winograd_cache() > 0, "the Winograd path did not run")
      assert.same(y0:shape(), y1:shape())
      assert.is_true(rel(y1, y0) < 2e-6, "forward differs by " .. rel(y1, y0))
      assert.is_true(rel(dx1, dx0) < 2e-6, "input gradient differs by " .. rel(dx1, dx0))
      -- the weight and bias gradients still come from im2col, next to a Winograd input gradient
      local ww = wt:detach(); ww:set_requires_grad(true)
      local gw0 = with(false, function() return nv.grad(nv.conv2d(x, ww, b, opts):sum(), { ww })[1] end)
      local gw1 = with(true, function() return nv.grad(nv.conv2d(x, ww, b, opts):sum(), { ww })[1] end)
      assert.is_true(rel(gw1, gw0) < 1e-5)
    end)
  end

  it("passes the gradient check", function()
    nv.manual_seed(11)
    local x, w, b = nv.randn(2, 16, 8, 8), nv.randn(16, 16, 3, 3) * 0.2, nv.randn(16)
    core.winograd_cache(true)
    H.gradcheck(function(xx, ww, bb) return nv.conv2d(xx, ww, bb, { padding = 1 }) end, { x, w, b })
    assert.is_true(core.winograd_cache() > 0, "the Winograd path did not run")
  end)

  it("fuses the ReLU into its output", function()
    nv.manual_seed(2)
    local x, w, b = nv.randn(2, 16, 12, 12), nv.randn(16, 16, 3, 3) * 0.2, nv.randn(16)
    nv.no_grad(function()
      local plain = nv.conv2d(x, w, b, { padding = 1 }):relu()
      H.close(nv.conv2d(x, w, b, { padding = 1, relu = true }), plain, 1e-6)
      with(false, function() H.close(nv.conv2d(x, w, b, { padding = 1, relu = true }), plain, 1e-5) end)
    end)
    assert.has_error(function() nv.conv2d(x, w, b, { padding = 1, relu = true }) end,
      "conv2d: relu = true is for inference; call it under nv.no_grad")
  end)

  it("keeps transformed kernels per weight, follows in-place changes and drops them with the weight", function()
    nv.manual_seed(9)
    core.winograd_cache(true)                        -- empty
    assert.equal(0, core.winograd_cache())
    local x = nv.randn(1, 32, 16, 16)
    local w = nv.randn(32, 32, 3, 3) * 0.1
    local y1 = nv.conv2d(x, w, nil, { padding = 1 })
    local kept = core.winograd_cache()
    assert.equal(16 * 32 * 32 * 4, kept)              -- one weight's 16 transformed 32x32 kernels
    nv.conv2d(x, w, nil, { padding = 1 })
    assert.equal(kept, core.winograd_cache())         -- reused, not added
    nv.no_grad(function() w:mul_(2) end)              -- changed in place: the kernels follow
    H.close(nv.conv2d(x, w, nil, { padding = 1 }), y1 * 2, 1e-5)
    assert.equal(kept, core.winograd_cache())         -- rewritten in place
    local v = w:view(32 * 32 * 9)                      -- a view shares the storage and the entry
    H.close(nv.conv2d(x, v:view(32, 32, 3, 3), nil, { padding = 1 }), y1 * 2, 1e-5)
    w, v = nil, nil
    collectgarbage(); collectgarbage()
    assert.equal(0, core.winograd_cache())            -- freed with the weight's storage
  end)

  it("is used by whole models and leaves their outputs as they were", function()
    nv.manual_seed(1)
    local m = nv.models.resnet18 { num_classes = 10 }
    m:eval()
    local x = nv.randn(2, 3, 64, 64)
    local a = with(false, function() return nv.no_grad(function() return m(x) end) end)
    local b = nv.no_grad(function() return m(x) end)
    assert.is_true(rel(b, a) < 1e-5, "ResNet-18 logits differ by " .. rel(b, a))
  end)
end)

describe("prefer_winograd", function()
  local core = require "nnvis.core"
  local function with_prefer(v, f) return H.with_config({ prefer_winograd = v }, f) end

  it("runs Winograd before oneDNN when asked, and 'auto' by the CPU and the map's tiles", function()
    assert.equal("auto", nv.config().prefer_winograd)
    local big, small = nv.randn(2, 16, 24, 24), nv.randn(1, 16, 12, 12)     -- 288 and 36 tiles
    local w = nv.randn(32, 16, 3, 3)
    with_prefer(true, function()
      assert.equal("winograd", core.conv_impl(big, w, { padding = 1 }))
      assert.equal("winograd", core.conv_impl(big, w, { padding = 1 }, "input_grad"))
      assert.matches("^onednn ", core.conv_impl(big, w, { padding = 1 }, "weight_grad"))
      assert.equal("winograd", core.conv_impl(small, w, { padding = 1 }))
      -- what Winograd does not take stays on oneDNN
      assert.matches("^onednn ", core.conv_impl(big, w, { padding = 1, stride = 2 }))
    end)
    with_prefer(false, function()
      assert.matches("^onednn ", core.conv_impl(big, w, { padding = 1 }))
      assert.matches("^onednn ", core.conv_impl(big, w, { padding = 1 }, "input_grad"))
    end)
    local auto = nv.config().prefer_winograd_auto
    assert.equal(auto and "winograd" or "onednn", core.conv_impl(big, w, { padding = 1 }):match("^%a+"))
    assert.matches("^onednn ", core.conv_impl(small, w, { padding = 1 }))      -- fewer than 64 tiles
    with(false, function()      -- Winograd off: nothing prefers it
      with_prefer(true, function() assert.matches("^onednn ", core.conv_impl(big, w, { padding = 1 })) end)
    end)
    assert.has_error(function() nv.config { prefer_winograd = "always" } end,
      'config: prefer_winograd must be true, false or "auto", got always')
    assert.has_error(function() nv.config { prefer_winograd = 1 } end,
      'config: prefer_winograd must be true, false or "auto", got number')
  end)

  it("gives oneDNN's values and gradients, and reads channels-last inputs", function()
    nv.manual_seed(21)
    local x, w, b = nv.randn(2, 16, 20, 20), nv.randn(24, 16, 3, 3) * 0.1, nv.randn(24)
    local function run()
      local xx = x:detach():set_requires_grad(true)
      local y = nv.conv2d(xx, w, b, { padding = 1 })
      return y:detach(), nv.grad((y * y):sum(), { xx })[1]
    end
    local y1, g1 = with_prefer(true, run)
    local y0, g0 = with_prefer(false, run)
    H.close(y1, y0, 1e-5)
    H.close(g1, g0, 1e-4)
    -- a channels-last input (from a oneDNN convolution) is read, and the output is NCHW
    local nhwc = nv.no_grad(function()
      return with_prefer(false, function()
        return nv.conv2d(x, nv.randn(16, 16, 1, 1), nil, { channels_last = true })
      end)
    end)
    local ref = nv.no_grad(function() return with_prefer(false, function() return nv.conv2d(nhwc:contiguous(), w, b, { padding = 1 }) end) end)
    local got = nv.no_grad(function() return with_prefer(true, function() return nv.conv2d(nhwc, w, b, { padding = 1, channels_last = true }) end) end)
    H.close(got, ref, 1e-5)
    assert.is_true(got:is_contiguous())
  end)
end)

describe("nnvis.ompenv", function()
  local lua = "lua5.4"
  local function child(env, first)
    local p = io.popen(env .. " " .. lua .. " -e '" .. (first or "") .. [[ local nv = require "nnvis"; io.write(tostring(nv.config().omp_spincount), " ", tostring(os.getenv("GOMP_SPINCOUNT")))']])
    local out = p:read("a")
    p:close()
    return out
  end

  it("makes GNU OpenMP's idle threads sleep soon, unless the user set OpenMP's waiting", function()
    assert.equal("10000 10000", child("env -u GOMP_SPINCOUNT -u OMP_WAIT_POLICY"))
    assert.equal("false 500", child("env -u OMP_WAIT_POLICY GOMP_SPINCOUNT=500"))
    assert.equal("false nil", child("env -u GOMP_SPINCOUNT OMP_WAIT_POLICY=passive"))
    -- libgomp loaded before nnvis has read its settings: nothing is set, nothing claimed
    assert.equal("false nil", child("env -u GOMP_SPINCOUNT -u OMP_WAIT_POLICY",
      [[assert(package.loadlib("libgomp.so.1", "*"));]]))
  end)
end)
