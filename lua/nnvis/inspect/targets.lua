-- nnvis.inspect.targets — what an explanation explains: turns a target (nothing, a 1-based class id,
-- one class id per sample, or a function of the model's output) into one score per sample,
-- still connected to the graph so gradients can flow back from it.
local core = require "nnvis.core"

local M = {}

local is_tensor = require("nnvis.tensor.util").is_tensor

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
  if not is_tensor(out) then out = require("nnvis.tensor.util").first_tensor(out) end
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

--- A segmentation model's target (pytorch-grad-cam's SemanticSegmentationTarget): the sum of
--- class k's scores over a region of the output (N, K, H, W).  mask: (H,W) for every sample or
--- (N,H,W), non-zero inside; default the pixels the model predicts as k on x (its arg-max over K
--- at the clean input, fixed for every perturbed copy).  Returns a function target.
function M.segmentation(model, x, k, mask, fname)
  fname = fname or "target"
  if math.type(k) ~= "integer" and not (type(k) == "number" and k == math.floor(k)) then
    require("nnvis.tensor.util").raise(fname .. ": target.class must be a class id, got " .. tostring(k))
  end
  if mask == nil then
    local out = require("nnvis.tensor.util").first_tensor(core.no_grad(model, x))
    if not is_tensor(out) or out:dim() ~= 4 then
      require("nnvis.tensor.util").raise(string.format("%s: target = {class = k} needs a segmentation output (N, K, H, W), got %s",
        fname, is_tensor(out) and ("(" .. table.concat(out:shape(), ",") .. ")") or type(out)))
    end
    mask = out:detach():argmax(2):eq(k)                                   -- (N,H,W)
  elseif not is_tensor(mask) or (mask:dim() ~= 2 and mask:dim() ~= 3) then
    require("nnvis.tensor.util").raise(fname .. ": target.mask must be an (H,W) or (N,H,W) tensor")
  end
  mask = mask:detach():ne(0)
  return function(out)
    out = require("nnvis.tensor.util").first_tensor(out)
    if not is_tensor(out) or out:dim() ~= 4 then
      require("nnvis.tensor.util").raise(fname .. ": a segmentation target needs an output (N, K, H, W)")
    end
    local n, H, W = out:size(1), out:size(3), out:size(4)
    local m = mask
    if m:dim() == 2 then m = m:unsqueeze(1) end
    if m:size(2) ~= H or m:size(3) ~= W then
      require("nnvis.tensor.util").raise(string.format("%s: target.mask (%s) is not the output's size %dx%d", fname,
        table.concat(mask:shape(), ","), H, W))
    end
    if m:size(1) ~= n then
      if m:size(1) ~= 1 then
        require("nnvis.tensor.util").raise(string.format("%s: target.mask has %d samples, the output %d", fname, m:size(1), n))
      end
      m = m:expand(n, H, W)
    end
    return (out:select(2, k) * m):reshape(n, -1):sum(2)
  end
end

--- the target as the methods take it: a segmentation target {class = k [, mask = m]} made
--- into its function (needs the model and the clean input), anything else as it is
function M.resolve(model, x, target, fname)
  if type(target) == "table" and not is_tensor(target) and target.class ~= nil then
    return M.segmentation(model, x, target.class, target.mask, fname)
  end
  return target
end

return M
