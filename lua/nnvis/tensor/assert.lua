-- nnvis.tensor.assert — luassert assertions for tensors, for busted specs of models and layers:
--
--   require "nnvis.tensor.assert"
--   assert.tensor_near(got, want)                      -- want: a tensor, nested tables or a number
--   assert.tensor_near(got, want, {atol = 1e-4, rtol = 1e-3})
--   assert.shape(t, {2, 3})
--   assert.gradcheck(f, {x1, x2})                      -- nv.gradcheck, reported as a failure
--
-- tensor_near passes when |got - want| <= atol + rtol * |want| everywhere (torch.allclose's
-- rule; defaults atol = 1e-5, rtol = 1e-4) and the shapes are equal; its failure message names
-- the worst element, its index and both values.
local core = require "nnvis.core"
local util = require "nnvis.tensor.util"
local say = require "say"
local luassert = require "luassert"

local M = {}

local function as_tensor(v)
  if util.is_tensor(v) then return v end
  if type(v) == "number" or type(v) == "table" then return core.tensor(v) end
  return nil
end

local function shape_of(t) return "(" .. table.concat(t:shape(), ",") .. ")" end

-- index (1-based, per dim) of flat element i of shape s
local function unflatten(i, s)
  local idx, rest = {}, i - 1
  for d = #s, 1, -1 do idx[d] = rest % s[d] + 1; rest = rest // s[d] end
  return "(" .. table.concat(idx, ",") .. ")"
end

--- nil when got is near want, else the reason (a sentence)
function M.near(got, want, opts)
  opts = util.check_opts("assert.tensor_near", opts, { "atol", "rtol" })
  local atol, rtol = opts.atol or 1e-5, opts.rtol or 1e-4
  local g, w = as_tensor(got), as_tensor(want)
  if not g then return "got is a " .. type(got) .. ", not a tensor" end
  if not w then return "want is a " .. type(want) .. ", not a tensor" end
  if shape_of(g) ~= shape_of(w) and not (w:numel() == 1 and w:dim() == 0) then
    return ("shapes differ: got %s, want %s"):format(shape_of(g), shape_of(w))
  end
  if g:numel() == 0 then return nil end
  local gv, wv = g:contiguous():values(), w:expand(g:shape()):contiguous():values()
  local worst, wi, wd = 0, nil, 0
  for i = 1, #gv do
    local a, b = gv[i], wv[i]
    local d = math.abs(a - b)
    local excess
    if a ~= a or b ~= b then excess = (a ~= a and b ~= b) and 0 or math.huge   -- NaN equals only NaN
    else excess = d - (atol + rtol * math.abs(b)) end
    if excess > worst then worst, wi, wd = excess, i, d end
  end
  if not wi then return nil end
  return ("worst element %d at index %s: got %.7g, want %.7g (|diff| %.3g > atol %g + rtol %g * |want|) in %s")
    :format(wi, unflatten(wi, g:shape()), gv[wi], wv[wi], wd, atol, rtol, shape_of(g))
end

local function tensor_near(state, args)
  local reason = M.near(args[1], args[2], args[3])
  state.failure_message = reason and ("tensors are not near: " .. reason) or "expected the tensors not to be near"
  return reason == nil
end

local function shape(state, args)
  local t, want = args[1], args[2]
  if not util.is_tensor(t) then
    state.failure_message = "assert.shape: expected a tensor, got " .. type(t)
    return false
  end
  local got = shape_of(t)
  local w = "(" .. table.concat(want, ",") .. ")"
  state.failure_message = ("expected shape %s, got %s"):format(w, got)
  return got == w
end

-- nv.gradcheck raises on a wrong gradient; evaluated inside `assert.is_true(...)`'s argument
-- that is an error, not a failure.  As an assertion the mismatch is the failure message.
local function gradcheck(state, args)
  local ok, err = pcall(require("nnvis.tensor.gradcheck").gradcheck, args[1], args[2], args[3])
  state.failure_message = ok and "expected gradcheck to fail" or tostring(err)
  return ok
end

say:set("assertion.tensor_near.positive", "tensors are not near")
say:set("assertion.tensor_near.negative", "expected the tensors not to be near")
say:set("assertion.shape.positive", "shape differs")
say:set("assertion.shape.negative", "expected another shape")
luassert:register("assertion", "tensor_near", tensor_near, "assertion.tensor_near.positive", "assertion.tensor_near.negative")
luassert:register("assertion", "shape", shape, "assertion.shape.positive", "assertion.shape.negative")
say:set("assertion.gradcheck.positive", "gradients differ from central differences")
say:set("assertion.gradcheck.negative", "expected gradcheck to fail")
luassert:register("assertion", "gradcheck", gradcheck, "assertion.gradcheck.positive", "assertion.gradcheck.negative")

return M
