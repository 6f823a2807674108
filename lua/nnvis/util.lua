-- nnvis.util — small helpers the Lua modules share.
local core = require "nnvis.core"

local M = {}

--- Runs f(...) with every module of `model` in training (true) or eval (false) mode, then
--- puts each module's own mode back (a frozen BatchNorm inside a training model stays in
--- eval), also after an error, which is re-raised.  Plain callables without modes just run.
function M.with_mode(model, training, f, ...)
  local saved = {}
  if type(model) == "table" and model.named_modules then
    for _, m in model:named_modules() do saved[#saved + 1] = { m, m.training } end
    if training then model:train() else model:eval() end
  end
  local res = table.pack(pcall(f, ...))
  for _, s in ipairs(saved) do rawset(s[1], "training", s[2]) end
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

--- Runs f(...) after seeding the random generator with `seed`, then restores the generator's
--- previous state, so a seeded helper does not change the caller's random stream.  With no
--- seed, f just runs.
function M.with_seed(seed, f, ...)
  if seed == nil then return f(...) end
  local state = core.rng_state()
  core.manual_seed(seed)
  local res = table.pack(pcall(f, ...))
  core.set_rng_state(state)
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

--- The dotted path of module m in its model's tree, when named_modules lists it under
--- another name (an imported ONNX node is listed by its ONNX name, /layer1/layer1.0/conv1/Conv,
--- and sits at layer1.0.conv1.Conv); depth and nesting follow this path.
function M.tree_path(name, m) return rawget(m, "tree_path") or name end

--- depth of a dotted path: "" 0, "a" 1, "a.b" 2
function M.depth(path) return path == "" and 0 or select(2, path:gsub("%.", "")) + 1 end

--- for a, b in iterate(list) over a list of {a, b} pairs (named_modules and the like)
function M.iterate(list)
  local i = 0
  return function()
    i = i + 1
    local e = list[i]
    if e then return e[1], e[2] end
  end
end

function M.is_tensor(t) return getmetatable(t) == core.tensor_mt end

--- "(2,3)" for a tensor's shape, for error messages
function M.shape_str(t) return "(" .. table.concat(t:shape(), ",") .. ")" end

--- the first tensor of a model output (a tensor, or a table holding tensors)
function M.first_tensor(out)
  if getmetatable(out) == core.tensor_mt then return out end
  if type(out) == "table" then
    for _, v in ipairs(out) do if getmetatable(v) == core.tensor_mt then return v end end
  end
  return nil
end

return M
