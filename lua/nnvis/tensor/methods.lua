-- nnvis.tensor.methods — the tensor methods written in Lua, added to the C core's methods
-- table (nnvis.core.Tensor) in one place: printing, t:shape() as a Size, the Torch-style
-- helpers (zeros_like, float, type, flatten), sort and topk on the core's argsort, and the
-- completion list of a tensor's methods.  The methods bound in C are in csrc/lua/.
local core = require "nnvis.core"
local class = require "nnvis.tensor.class"
local printer = require "nnvis.tensor.print"

local M = {}

core.tensor_mt.__tostring = printer.tostring

-- t:shape() is a plain Lua array of sizes (#, ipairs, table.unpack, table.concat all work)
-- whose metatable prints it as (2, 3) and compares it by value with any array
local Size = class("Size")
function Size.__tostring(s) return "(" .. table.concat(s, ", ") .. ")" end
function Size.__eq(a, b)
  if type(a) ~= "table" or type(b) ~= "table" or #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end
M.Size = Size
local raw_shape = core.Tensor.shape
--- t:shape() -> the sizes as an array that prints as (2, 3)
function core.Tensor.shape(t) return setmetatable(raw_shape(t), Size) end


-- t:zeros_like() style helpers written in Lua
--- t:zeros_like(): a tensor of zeros of t's shape
function core.Tensor.zeros_like(t) return core.zeros(t:shape()) end
--- t:ones_like(): a tensor of ones of t's shape
function core.Tensor.ones_like(t) return core.ones(t:shape()) end
--- t:float(): t (nnvis's tensors are float32 already; for code written for Torch)
function core.Tensor.float(t) return t end
--- t:type(): "nnvis.Tensor"
function core.Tensor.type() return "nnvis.Tensor" end
--- t:zero_grad(): forgets t.grad; returns t
function core.Tensor.zero_grad(t) t.grad = nil; return t end
--- t:softmax(dim): nv.softmax(t, dim)
function core.Tensor.softmax(t, d) return core.softmax(t, d) end
--- t:log_softmax(dim): nv.log_softmax(t, dim)
function core.Tensor.log_softmax(t, d) return core.log_softmax(t, d) end
--- t:flatten([start_dim = 1]): dims start_dim.. merged into one (1-based; 2 keeps the batch dim)
function core.Tensor.flatten(t, start_d)
  start_d = start_d or 1
  local s = t:shape()
  if math.type(start_d) ~= "integer" and not (type(start_d) == "number" and start_d == math.floor(start_d)) then
    error("flatten: start dim must be an integer, got " .. tostring(start_d), 2)
  end
  if start_d < 0 then start_d = start_d + #s + 1 end
  if start_d < 1 or start_d > math.max(#s, 1) then
    error(string.format("flatten: start dim %s is out of range for a tensor of %d dimensions", tostring(start_d), #s), 2)
  end
  local ns, n = {}, 1
  for i = 1, start_d - 1 do ns[i] = s[i] end
  for i = start_d, #s do n = n * s[i] end
  ns[#ns + 1] = n
  return t:reshape(ns)
end

-- completion of a tensor's methods (its __index is a function, so x:<Tab> found nothing)
core.tensor_mt.__complete = function()
  local out = { "grad", "requires_grad" }
  for k in pairs(core.Tensor) do if type(k) == "string" and k:sub(1, 1) ~= "_" then out[#out + 1] = k end end
  return out
end

--- t:sort([dim = last [, descending = false]]) -> values, indices (1-based, as PyTorch's
--- torch.sort: NaN counts as the largest value, ties keep their order); the values carry
--- gradients to t
function core.Tensor.sort(t, dim, descending)
  if t:dim() == 0 then return t, core.tensor(1) end
  dim = dim or -1
  local idx = t:argsort(dim, descending)
  return t:gather(dim, idx), idx
end

--- t:topk(k [, dim = last [, largest = true]]) -> the k largest (or smallest) values along
--- dim, largest first, and their 1-based indices (torch.topk)
function core.Tensor.topk(t, k, dim, largest)
  if math.type(k) ~= "integer" then error("topk: k must be an integer, got " .. tostring(k), 2) end
  dim = dim or -1
  local idx = t:argsort(dim, largest ~= false, k)
  return t:gather(dim, idx), idx
end

return M
