-- nv.interpolate's scale_factor follows PyTorch: the output is floor(in * s) and coordinates
-- map by 1/s, unless recompute_scale_factor = true, which maps by the sizes.
local nv = require "nnvis"
local H = require "helpers"

local PY = "/usr/bin/python3"
local have_torch = H.sh(PY .. " -c 'import torch'")   -- without the sanitizer runtimes

describe("nv.interpolate with scale_factor", function()
  local x = nv.arange(1, 9):reshape(1, 1, 2, 4)

  it("maps bilinear coordinates by the scale as PyTorch (2.667, 4.333 for 0.6)", function()
    local y = nv.interpolate(x, { scale_factor = 0.6, mode = "bilinear" })
    assert.same({ 1, 1, 1, 2 }, y:shape())
    H.close(y:view(2), { 8 / 3, 13 / 3 }, 1e-5)
  end)

  it("maps by the sizes with recompute_scale_factor = true", function()
    local y = nv.interpolate(x, { scale_factor = 0.6, mode = "bilinear", recompute_scale_factor = true })
    H.close(y:view(2), { 3.5, 5.5 }, 1e-6)
  end)

  it("takes {h, w} factors", function()
    local y = nv.interpolate(x, { scale_factor = { 0.5, 2 } })
    assert.same({ { { { 1, 1, 2, 2, 3, 3, 4, 4 } } } }, y:totable())
  end)

  it("refuses bad factors by name", function()
    assert.has_error(function() nv.interpolate(x, { scale_factor = "2" }) end,
      "interpolate: scale_factor must be a number or {h, w}, got string")
    assert.has_error(function() nv.interpolate(x, { scale_factor = { 1, "a" } }) end,
      "interpolate: scale_factor {h, w} must hold numbers")
    assert.has_error(function() nv.interpolate(x, { scale_factor = 0 / 0 }) end)
    assert.has_error(function() nv.interpolate(x, { size = { 2, 2 }, scale_factor = 2 }) end,
      "interpolate: give size or scale_factor, not both")
  end)

  it("gradients of a scaled resize pass the numeric check", function()
    for _, mode in ipairs { "nearest", "bilinear" } do
      nv.gradcheck(function(a) return nv.interpolate(a, { scale_factor = { 1.7, 0.6 }, mode = mode }) end,
        { nv.randn(1, 2, 5, 7) })
    end
  end)

  local it_torch = H.it_if(have_torch, "python3-torch")
  it_torch("equals PyTorch's F.interpolate for nearest and bilinear, up and down, per axis", function()
    local cases = { { 0.6, 0.6 }, { 1.7, 2.3 }, { 0.5, 2.0 }, { 1.2, 1.2 }, { 3.0, 0.4 } }
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write("import torch, torch.nn.functional as F\n",
      "y = torch.arange(0., 35.).reshape(1, 1, 5, 7)\n",
      "for sf in [(0.6,0.6),(1.7,2.3),(0.5,2.0),(1.2,1.2),(3.0,0.4)]:\n",
      "  for mode in ['nearest', 'bilinear']:\n",
      "    print(' '.join('%.7g' % v for v in F.interpolate(y, scale_factor=sf, mode=mode).flatten().tolist()))\n")
    f:close()
    local p = io.popen(H.CLEAN .. PY .. " " .. script)
    local y = nv.arange(0, 35):reshape(1, 1, 5, 7)
    for _, sf in ipairs(cases) do
      for _, mode in ipairs { "nearest", "bilinear" } do
        local want = {}
        for v in p:read("l"):gmatch("%S+") do want[#want + 1] = tonumber(v) end
        local got = nv.interpolate(y, { scale_factor = sf, mode = mode })
        assert.equal(#want, got:numel())
        H.close(got:reshape(got:numel()), want, 1e-5, mode .. " " .. sf[1] .. "x" .. sf[2])
      end
    end
    p:close()
    os.remove(script)
  end)
end)
