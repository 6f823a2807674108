-- Shared spec helpers: tolerant comparisons and central-difference gradient checks.
local nv = require "nnvis"
local H = {}

--- max |a - b| over all elements of two tensors (or nested tables / numbers)
function H.maxdiff(a, b)
  if type(a) == "number" then a = nv.tensor(a) end
  if type(b) == "number" then b = nv.tensor(b) end
  if type(a) == "table" and getmetatable(a) == nil then a = nv.tensor(a) end
  if type(b) == "table" and getmetatable(b) == nil then b = nv.tensor(b) end
  return (a - b):abs():max():item()
end

--- asserts that two tensors agree to tol (absolute + relative)
function H.close(a, b, tol, msg)
  tol = tol or 1e-5
  if type(b) == "table" and getmetatable(b) == nil then b = nv.tensor(b) end
  if type(a) == "table" and getmetatable(a) == nil then a = nv.tensor(a) end
  assert(table.concat(a:shape(), "x") == table.concat(b:shape(), "x"),
    (msg or "") .. " shape " .. table.concat(a:shape(), "x") .. " vs " .. table.concat(b:shape(), "x"))
  local scale = math.max(1, b:abs():max():item())
  local d = H.maxdiff(a, b)
  assert(d <= tol * scale, string.format("%s max difference %g > %g", msg or "", d, tol * scale))
end

--- Central-difference gradient check of a scalar function f(inputs...) with respect to
--- each input.  Uses a random projection so that f may return any shape.
--- opts: eps (1e-2), tol (relative 1e-2), atol (1e-3)
function H.gradcheck(f, inputs, opts)
  opts = opts or {}
  local eps, tol, atol = opts.eps or 1e-2, opts.tol or 1e-2, opts.atol or 2e-3
  for _, x in ipairs(inputs) do x:set_requires_grad(true) end
  local out = f(table.unpack(inputs))
  local proj = nv.randn(out:shape())
  local loss = (out * proj):sum()
  local grads = nv.grad(loss, inputs)
  for k, x in ipairs(inputs) do
    local analytic = grads[k]:values()
    local n = x:numel()
    local flat = x:detach():reshape(n)   -- shares storage with x (x is contiguous)
    assert(x:is_contiguous(), "gradcheck inputs must be contiguous")
    for i = 1, n do
      local orig = flat:get(i)
      flat:set(orig + eps, i)
      local fp = nv.no_grad(function() return (f(table.unpack(inputs)) * proj):sum():item() end)
      flat:set(orig - eps, i)
      local fm = nv.no_grad(function() return (f(table.unpack(inputs)) * proj):sum():item() end)
      flat:set(orig, i)
      local numeric = (fp - fm) / (2 * eps)
      local a = analytic[i]
      local err = math.abs(a - numeric)
      if err > atol + tol * math.max(math.abs(a), math.abs(numeric)) then
        error(string.format("gradient of input %d element %d: analytic %.6g, numeric %.6g", k, i, a, numeric), 2)
      end
    end
  end
  return true
end

--- a tensor of the given shape with values spread away from 0 (avoids kinks of relu/abs)
function H.away_from_zero(...)
  local t = nv.rand(...) * 1.5 + 0.25
  local s = nv.rand(...):gt(0.5) * 2 - 1
  return (t * s):detach()
end

return H
