-- A failure inside a forward names the module path and type, keeps the original message and
-- adds a hint for the usual mistakes; hook errors and non-string errors pass unchanged.
local nv = require "nnvis"

describe("errors inside a forward", function()
  it("name the module path and type of a native model, with the input's size", function()
    local m = nv.models.fashion_cnn()
    assert.has_error(function() m(nv.rand(1, 1, 32, 32)) end,
      "classifier.0 (Linear): linear: input (1,2048) has 2048 features, weight (128,1568) expects 1568"
      .. " — the input is 1x1x32x32; check that it has the size the model was built for")
  end)

  it("suggest x:unsqueeze(1) for a missing batch dimension", function()
    local m = nv.models.fashion_cnn()
    assert.has_error(function() m(nv.rand(1, 28, 28)) end,
      "features.1 (BatchNorm2d): BatchNorm2d: expected a 4-d (N,C,H,W) input, got (16,28,28)"
      .. " — add the batch dimension with x:unsqueeze(1)")
  end)

  it("name the node of an imported ONNX model", function()
    local m = assert(nv.onnx.load("spec/fixtures/onnx/small_cnn_op13.onnx"))
    local ok, err = pcall(m, nv.rand(1, 5, 16, 16))
    assert.is_false(ok)
    -- at the caller's line, not inside nnvis
    assert.matches("^spec/errors_spec%.lua:%d+: stem%.0%.Conv %(Conv%): .*conv2d: weight %(8,3,3,3%) expects 3 input channels", err)
    assert.not_matches("lua/nnvis/", err)
  end)

  it("tell maximize to pass size", function()
    -- a head that needs 28x28 inputs: nv.maximize's default 64x64 fails inside its Linear
    local m = nv.nn.Sequential { nv.nn.Conv2d(1, 4, 3), nv.nn.Flatten(), nv.nn.Linear(4 * 26 * 26, 10) }
    local ok, err = pcall(nv.maximize, m, { class = 3, steps = 1 })
    assert.is_false(ok)
    assert.matches("pass size = {h, w}", err, 1, true)
  end)

  it("pass hook errors and non-string error values through unchanged", function()
    local m = nv.nn.Sequential { nv.nn.Linear(2, 2), nv.nn.ReLU() }
    local sentinel = {}
    local h = m:get("0"):register_forward_hook(function() error(sentinel) end)
    local ok, err = pcall(m, nv.rand(1, 2))
    assert.is_false(ok)
    assert.equal(sentinel, err)
    h:remove()
    h = m:get("1"):register_forward_hook(function() error("my hook failed", 0) end)
    ok, err = pcall(m, nv.rand(1, 2))
    assert.equal("my hook failed", err)
    h:remove()
    assert.same({ 1, 2 }, m(nv.rand(1, 2)):shape())   -- and the model still runs
  end)

  it("leave the root module's own errors as they are", function()
    assert.has_error(function() nv.nn.Linear(3, 2)(nv.rand(1, 4)) end,
      "linear: input (1,4) has 4 features, weight (2,3) expects 3")
  end)
end)
