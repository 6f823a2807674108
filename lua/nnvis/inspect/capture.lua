-- nnvis.inspect.capture — the activations and gradients of any named layers for an input, taken
-- through forward hooks that are always removed, and per-layer statistics (mean, std, min,
-- max, share of zeros, dead units, gradient norm) as a printable table for diagnosing
-- vanishing or exploding gradients and dead ReLUs.
local core = require "nnvis.core"
local hooks = require("nnvis.nn.module").hooks
local check_opts = require("nnvis.tensor.util").check_opts
local targets = require "nnvis.inspect.targets"

local M = {}

local function leaf_names(model)
  local names = {}
  for name, m in model:named_modules() do
    local leaf = true
    for _ in m:named_children() do leaf = false; break end
    if leaf and name ~= "" then names[#names + 1] = name end
  end
  return names
end

-- capture of 2 layers: / features.0  output (1,16,28,28)  grad (1,16,28,28) / ...
local function describe(result)
  local lines, n = {}, 0
  for _, name in ipairs(result.order) do
    local e = rawget(result, name)
    if e then
      n = n + 1
      lines[#lines + 1] = string.format("  %-24s output (%s)%s", name, table.concat(e.output:shape(), ","),
        e.grad and ("  grad (" .. table.concat(e.grad:shape(), ",") .. ")") or "")
    end
  end
  table.insert(lines, 1, string.format("capture of %d layer%s:", n, n == 1 and "" or "s"))
  return table.concat(lines, "\n")
end

--- nv.capture(model, x, opts) -> table name -> {output = t, grad = t}, plus a list
--- `order` of the names.  opts.layers: dotted names (default: every leaf layer);
--- opts.grads: also the gradient of the target's score with respect to each output;
--- opts.target: what the gradient explains (see nnvis.targets; default each sample's top
--- class); opts.loss: alternatively a function(output) returning the scalar to differentiate;
--- opts.train: run in training mode (default: eval).
function M.capture(model, x, opts)
  opts = check_opts("capture", opts, { "layers", "grads", "loss", "target", "train" })
  if getmetatable(x) ~= core.tensor_mt then error("capture: expected an input tensor", 2) end
  local names = opts.layers or leaf_names(model)
  local mods = {}
  for i, name in ipairs(names) do
    local m = require("nnvis.tensor.util").find_layer("capture", model, name)
    mods[i] = m
  end
  -- layer names are the keys; `order` (the names in order) and `output` (the model's
  -- output) are reached through the metatable, so a layer called "output" keeps its entry
  local info = { order = {} }
  local result = setmetatable({}, { __index = info, __tostring = describe })
  local handles <close> = hooks()
  for i, m in ipairs(mods) do
    local name = names[i]
    info.order[i] = name
    handles:add(m, function(_, _, out)
      if getmetatable(out) == core.tensor_mt then
        result[name] = { output = out }
      end
    end)
  end
  local ok, err = pcall(require("nnvis.tensor.util").with_mode, model, opts.train and true or false, function()
    if opts.grads then
      local xin = x:detach():set_requires_grad(true)   -- so every layer's output is in the graph
      local out = model(xin)
      local score
      if opts.loss then score = opts.loss(out)
      else score = targets.scores(out, opts.target, "capture"):sum() end
      local list, present = {}, {}
      for _, name in ipairs(names) do
        local e = rawget(result, name)
        if e then list[#list + 1] = e.output; present[#present + 1] = name end
      end
      local g = core.grad(score, list)
      for k, name in ipairs(present) do
        result[name].grad = g[k]
        result[name].output = result[name].output:detach()
      end
      info.output = getmetatable(out) == core.tensor_mt and out:detach() or out
    else
      info.output = core.no_grad(model, x)
    end
  end)
  handles:remove()
  if not ok then error("capture: " .. tostring(err), 2) end
  return result
end

local Stats = {}
Stats.__index = Stats

--- per-layer statistics of a capture: rows {name, shape, mean, std, min, max, zeros (share
--- of exactly-zero values), dead (share of channels zero for every sample and position),
--- grad_norm, grad_mean_abs}
function M.stats(cap)
  local rows = {}
  for _, name in ipairs(cap.order) do
    local e = rawget(cap, name)
    if e then
      local t = e.output:detach()
      local n = t:numel()
      local r = { name = name, shape = t:shape(), mean = t:mean():item(), min = t:min():item(), max = t:max():item(),
                  std = n > 1 and t:std():item() or 0, zeros = t:eq(0):sum():item() / n }
      if t:dim() >= 2 then
        -- a unit (channel / feature) is dead when it is 0 for every sample and position
        local c = t:size(2)
        local per = t:transpose(1, 2):reshape(c, -1):abs():max(2)
        r.dead = per:eq(0):sum():item() / c
      end
      if e.grad then
        r.grad_norm = e.grad:square():sum():sqrt():item()
        r.grad_mean_abs = e.grad:abs():mean():item()
      end
      rows[#rows + 1] = r
    end
  end
  return setmetatable({ rows = rows }, Stats)
end

function Stats.__tostring(s)
  local out = {}
  local head = string.format("%-28s %-18s %10s %10s %10s %10s %7s %7s %11s", "layer", "shape", "mean", "std", "min",
    "max", "zeros", "dead", "grad norm")
  out[1] = head
  out[2] = string.rep("-", #head)
  for _, r in ipairs(s.rows) do
    local name = #r.name > 28 and ("..." .. r.name:sub(-25)) or r.name
    out[#out + 1] = string.format("%-28s %-18s %10.4g %10.4g %10.4g %10.4g %6.1f%% %6s %11s", name,
      "(" .. table.concat(r.shape, ",") .. ")", r.mean, r.std, r.min, r.max, 100 * r.zeros,
      r.dead and string.format("%.1f%%", 100 * r.dead) or "--", r.grad_norm and string.format("%.4g", r.grad_norm) or "--")
  end
  return table.concat(out, "\n")
end

local function esc(v) return (tostring(v):gsub("&", "&amp;"):gsub("<", "&lt;"):gsub(">", "&gt;")) end

--- the statistics as an HTML table (what a notebook shows; tostring gives the text)
function Stats:html()
  local out = { '<table class="nnvis-stats">', "<thead><tr><th>layer</th><th>shape</th><th>mean</th><th>std</th>" ..
    "<th>min</th><th>max</th><th>zeros</th><th>dead</th><th>grad norm</th></tr></thead><tbody>" }
  for _, r in ipairs(self.rows) do
    out[#out + 1] = string.format("<tr><td>%s</td><td>(%s)</td><td>%.4g</td><td>%.4g</td><td>%.4g</td><td>%.4g</td>" ..
      "<td>%.1f%%</td><td>%s</td><td>%s</td></tr>", esc(r.name), table.concat(r.shape, ","), r.mean, r.std, r.min, r.max,
      100 * r.zeros, r.dead and string.format("%.1f%%", 100 * r.dead) or "--",
      r.grad_norm and string.format("%.4g", r.grad_norm) or "--")
  end
  out[#out + 1] = "</tbody></table>"
  return table.concat(out, "\n")
end

setmetatable(M, { __call = function(_, ...) return M.capture(...) end })
return M
