-- nnvis.targets — what an explanation explains: turns a target (nothing, a 1-based class id,
-- one class id per sample, or a function of the model's output) into one score per sample,
-- still connected to the graph so gradients can flow back from it.
local core = require "nnvis.core"

local M = {}

local is_tensor = require("nnvis.util").is_tensor

--- scores (N) from model output out (N, C) or (N, ...) and a target:
---   nil: each sample's top class;  k: class k for every sample;
---   {k1, k2, ...} or a tensor (N): one class per sample;
---   function(out) -> (N) scores or one scalar (regression, custom scores).
--- Also returns the class ids used (nil for functions).
function M.scores(out, target, fname)
  fname = fname or "target"
  if type(target) == "function" then
    local s = target(out)
    if not is_tensor(s) then error(fname .. ": the target function must return a tensor", 3) end
    if s:dim() == 0 then s = s:view(1) end
    if s:dim() ~= 1 then error(fname .. ": the target function must return one score per sample (N) or a scalar", 3) end
    return s, nil
  end
  if not is_tensor(out) then out = require("nnvis.util").first_tensor(out) end
  if not is_tensor(out) or out:dim() ~= 2 then
    error(fname .. ": a class target needs an output of shape (N, C); give a function of the output instead", 3)
  end
  local n = out:size(1)
  local flat = out
  local ids
  if target == nil then
    ids = flat:detach():argmax(2):view(n)
  elseif type(target) == "number" then
    ids = core.full({ n }, target)
  elseif type(target) == "table" and not is_tensor(target) then
    if #target ~= n then error(string.format("%s: %d class ids for %d samples", fname, #target, n), 3) end
    ids = core.tensor(target)
  elseif is_tensor(target) then
    ids = target:reshape(-1)
    if ids:numel() ~= n then error(string.format("%s: %d class ids for %d samples", fname, ids:numel(), n), 3) end
  else
    error(fname .. ": target must be a class id, a list of class ids or a function", 3)
  end
  local lo, hi = ids:min():item(), ids:max():item()
  if lo < 1 or hi > flat:size(2) or lo ~= math.floor(lo) or hi ~= math.floor(hi) then
    error(string.format("%s: class ids must be integers in 1..%d, got %g..%g", fname, flat:size(2), lo, hi), 3)
  end
  return flat:gather(2, ids:view(n, 1)):view(n), ids
end

return M
