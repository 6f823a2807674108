-- nnvis.tensor.gradcheck — autograd against central differences, as torch.autograd.gradcheck, for
-- people testing their own layers (nv.gradcheck).
local core = require "nnvis.core"
local util = require "nnvis.tensor.util"

local M = {}

local defaults = { eps = 1e-2, rtol = 1e-2, atol = 2e-3 }
local known = util.keys(defaults, { "seed" })

--- nv.gradcheck(f, inputs [, {eps = 1e-2, rtol = 1e-2, atol = 2e-3, seed}]): compares the
--- gradient autograd gives for each input tensor of f(inputs...) with central differences
--- (f(x+eps) - f(x-eps)) / 2eps, element by element, through a random projection of f's
--- output (so f may return any shape).  Returns true, or raises naming the worst element:
--- "gradcheck: input 1 element 3 (index (1,2)): analytic 0.5, numeric 0.25 (|diff| 0.25 >
--- 0.0045)".  Inputs must be contiguous float tensors; they are made to require grad.
--- float32 needs eps around 1e-2..1e-3; sample away from kinks (ReLU at 0, max-pool ties).
function M.gradcheck(f, inputs, opts)
  opts = util.merge(defaults, util.check_opts("gradcheck", opts, known))
  if type(f) ~= "function" and not (getmetatable(f) and getmetatable(f).__call) then
    error("gradcheck: f must be a function, got " .. type(f), 2)
  end
  if util.is_tensor(inputs) then inputs = { inputs } end
  if type(inputs) ~= "table" or #inputs == 0 then error("gradcheck: inputs must be a list of tensors", 2) end
  for k, x in ipairs(inputs) do
    if not util.is_tensor(x) then error(("gradcheck: input %d is a %s, not a tensor"):format(k, type(x)), 2) end
    if not x:is_contiguous() then error(("gradcheck: input %d must be contiguous"):format(k), 2) end
    x:set_requires_grad(true)
  end
  return util.with_seed(opts.seed, function()
    local out = f(table.unpack(inputs))
    if not util.is_tensor(out) then error("gradcheck: f must return a tensor, got " .. type(out), 3) end
    local proj = core.randn(out:shape())
    local grads = core.grad((out * proj):sum(), inputs)
    local function value() return core.no_grad(function() return (f(table.unpack(inputs)) * proj):sum():item() end) end
    local worst
    for k, x in ipairs(inputs) do
      local analytic = grads[k] and grads[k]:values() or {}
      local n = x:numel()
      local flat = x:detach():reshape(n)   -- shares storage with x
      for i = 1, n do
        local orig = flat:get(i)
        flat:set(orig + opts.eps, i)
        local fp = value()
        flat:set(orig - opts.eps, i)
        local fm = value()
        flat:set(orig, i)
        local numeric = (fp - fm) / (2 * opts.eps)
        local a = analytic[i] or 0
        local allowed = opts.atol + opts.rtol * math.max(math.abs(a), math.abs(numeric))
        local ratio = math.abs(a - numeric) / allowed
        if ratio > 1 and (not worst or ratio > worst.ratio) then
          worst = { ratio = ratio, k = k, i = i, a = a, numeric = numeric, allowed = allowed, shape = x:shape() }
        end
      end
    end
    if worst then
      local idx, rest = {}, worst.i - 1
      for d = #worst.shape, 1, -1 do idx[d] = rest % worst.shape[d] + 1; rest = rest // worst.shape[d] end
      error(("gradcheck: input %d element %d (index (%s)): analytic %.6g, numeric %.6g (|diff| %.3g > %.3g)")
        :format(worst.k, worst.i, table.concat(idx, ","), worst.a, worst.numeric,
          math.abs(worst.a - worst.numeric), worst.allowed), 3)
    end
    return true
  end)
end

return M
