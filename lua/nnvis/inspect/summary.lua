-- nnvis.inspect.summary — what a model is, layer by layer (Keras' model.summary, torchinfo):
-- dotted name, type, output shape, parameters, mult-adds and activation memory per layer,
-- with depth control, and the totals (total / trainable / non-trainable parameters,
-- mult-adds, and input, forward/backward, parameter and estimated total sizes).
--
-- Mult-adds follow torchinfo's convention so figures can be compared: a convolution
-- counts (weight + bias elements) x N x output spatial size; every other layer with
-- parameters counts N x its parameter count; layers without parameters count 0.
local core = require "nnvis.core"
local hooks = require("nnvis.nn.module").hooks
local check_opts = require("nnvis.tensor.util").check_opts

local M = {}

local function shape_of(out)
  if getmetatable(out) == core.tensor_mt then return out:shape() end
  if type(out) == "table" then
    for _, v in ipairs(out) do
      if getmetatable(v) == core.tensor_mt then return v:shape() end
    end
  end
  return nil
end

local function numel(shape)
  local n = 1
  for _, s in ipairs(shape) do n = n * s end
  return n
end

local commas = require("nnvis.tensor.util").commas

local function human(n)
  if n >= 1e9 then return string.format("%.2fG", n / 1e9) end
  if n >= 1e6 then return string.format("%.2fM", n / 1e6) end
  if n >= 1e3 then return string.format("%.2fK", n / 1e3) end
  return tostring(math.floor(n))
end

-- a summary is a figure (nnvis.figure): tostring and text() are the table, html() an HTML
-- table, image()/png() the text table drawn in the bitmap font
local Figure = require("nnvis.draw.figure").Figure
local Summary = require("nnvis.tensor.class")("Summary", Figure)

--- nv.summary(model, input_or_shape [, opts]) -> summary object.
--- input_or_shape: a tensor or a shape such as {1, 3, 224, 224} (a random input is made).
--- opts.depth (3): deepest level of rows shown (the totals always cover everything);
--- opts.all_nodes: also the rows an imported model's export adds that compute no activation
--- (Constant, Shape, Gather of sizes, ...: their output is a shape value, not a tensor),
--- hidden by default so the layers a person thinks in stand out.
function M.summary(model, input, opts)
  opts = check_opts("summary", opts, { "all_nodes", "depth" })
  local depth = opts.depth or 3
  if type(model) ~= "table" or not model.named_modules then error("summary: expected an nnvis module", 2) end
  local x = input
  if getmetatable(input) ~= core.tensor_mt then
    if type(input) ~= "table" then error("summary: expected an input tensor or a shape table", 2) end
    x = core.randn(input)
  end
  -- one record per module, in definition order
  local rows, by_module = {}, {}
  local util = require "nnvis.tensor.util"
  for name, m in model:named_modules() do
    local path = util.tree_path(name, m)
    local d = util.depth(path)
    local own_params = {}
    for pname, p in m:named_parameters() do
      if not pname:find(".", 1, true) then own_params[#own_params + 1] = { name = pname, t = p } end
    end
    local r = { name = name, path = path, kind = m.kind or "Module", depth = d, module = m, own = own_params,
                params = 0, mult_adds = 0, activation_bytes = 0, calls = 0 }
    rows[#rows + 1] = r
    by_module[m] = r
  end
  local handles <close> = hooks()
  for _, r in ipairs(rows) do
    handles:add(r.module, function(mod, _, out)
      local rec = by_module[mod]
      local s = shape_of(out)
      rec.calls = rec.calls + 1
      if s then
        rec.output_shape = s
        rec.activation_bytes = rec.activation_bytes + numel(s) * 4
        local n = s[1] or 1
        local spatial = 1
        for i = 3, #s do spatial = spatial * s[i] end
        for _, p in ipairs(rec.own) do
          if p.name == "weight" or p.name == "bias" then
            if rec.kind:find("Conv", 1, true) then rec.mult_adds = rec.mult_adds + p.t:numel() * n * spatial
            else rec.mult_adds = rec.mult_adds + n * p.t:numel() end
          end
        end
      end
    end)
  end
  local ok, err = pcall(require("nnvis.tensor.util").with_mode, model, false, core.no_grad, model, x)
  handles:remove()
  if not ok then error("summary: the forward pass failed: " .. tostring(err), 2) end
  -- recursive totals: each row's parameters and mult-adds include its descendants'
  local seen_total, total, trainable = {}, 0, 0
  for _, r in ipairs(rows) do
    local seen = {}
    local prefix = r.path == "" and "" or r.path .. "."
    for _, q in ipairs(rows) do
      if q.path == r.path or r.path == "" or q.path:sub(1, #prefix) == prefix then
        for _, p in ipairs(q.own) do
          if not seen[p.t] then seen[p.t] = true; r.params = r.params + p.t:numel() end
        end
        if q ~= r then r.mult_adds_total = (r.mult_adds_total or r.mult_adds) + q.mult_adds end
      end
    end
    r.mult_adds_total = r.mult_adds_total or r.mult_adds
    for _, p in ipairs(r.own) do
      if not seen_total[p.t] then
        seen_total[p.t] = true
        total = total + p.t:numel()
        if p.t.requires_grad then trainable = trainable + p.t:numel() end
      end
    end
  end
  local leaf_bytes, mult_adds = 0, 0
  for _, r in ipairs(rows) do
    mult_adds = mult_adds + r.mult_adds
    local leaf = true
    for _ in r.module:named_children() do leaf = false; break end
    r.leaf = leaf
    if leaf then leaf_bytes = leaf_bytes + r.activation_bytes end
  end
  local s = setmetatable({
    kind = "summary", title = model.kind,
    model = model, depth = depth, input_shape = x:shape(),
    total_params = total, trainable_params = trainable, non_trainable_params = total - trainable,
    mult_adds = mult_adds,
    input_bytes = x:numel() * 4,
    forward_backward_bytes = 2 * leaf_bytes,          -- outputs and their gradients
    params_bytes = total * 4,
  }, Summary)
  s.total_bytes = s.input_bytes + s.forward_backward_bytes + s.params_bytes
  s.rows = {}
  -- shape arithmetic and constants: no parameters, and no tensor came out (or a constant)
  local function arithmetic(r)
    return r.params == 0 and r.calls > 0 and (r.output_shape == nil or r.kind == "Constant")
  end
  s.hidden = 0
  for _, r in ipairs(rows) do
    if r.depth >= 1 and r.depth <= depth and not opts.all_nodes and arithmetic(r) then
      s.hidden = s.hidden + 1
    elseif r.depth >= 1 and r.depth <= depth then
      s.rows[#s.rows + 1] = { name = r.name, kind = r.kind, depth = r.depth, output_shape = r.output_shape,
        params = r.params, mult_adds = r.depth == depth and r.mult_adds_total or r.mult_adds,
        activation_bytes = r.activation_bytes, leaf = r.leaf }
    end
  end
  return s
end

function Summary.__tostring(s)
  local lines = {}
  local rule = string.rep("=", 104)
  local thin = string.rep("-", 104)
  local function row(a, b, c, d, e) return string.format("%-42s %-22s %14s %12s %10s", a, b, c, d, e) end
  lines[#lines + 1] = rule
  lines[#lines + 1] = row("Layer (type)", "Output Shape", "Param #", "Mult-Adds", "Act. (MB)")
  lines[#lines + 1] = rule
  for _, r in ipairs(s.rows) do
    local label = string.rep("  ", r.depth - 1) .. r.name .. " (" .. r.kind .. ")"
    if #label > 42 then label = label:sub(1, 39) .. "..." end
    local shape = r.output_shape and ("[" .. table.concat(r.output_shape, ", ") .. "]") or "--"
    lines[#lines + 1] = row(label, shape, r.params > 0 and commas(r.params) or "--",
      r.mult_adds > 0 and human(r.mult_adds) or "--", string.format("%.2f", r.activation_bytes / 1e6))
  end
  lines[#lines + 1] = rule
  if (s.hidden or 0) > 0 then
    lines[#lines + 1] = string.format("(%d constant and shape-arithmetic node%s of the export not shown: {all_nodes = true})",
      s.hidden, s.hidden == 1 and "" or "s")
  end
  lines[#lines + 1] = "Total params: " .. commas(s.total_params)
  lines[#lines + 1] = "Trainable params: " .. commas(s.trainable_params)
  lines[#lines + 1] = "Non-trainable params: " .. commas(s.non_trainable_params)
  if s.mult_adds >= 1e9 then lines[#lines + 1] = string.format("Total mult-adds (G): %.2f", s.mult_adds / 1e9)
  else lines[#lines + 1] = string.format("Total mult-adds (M): %.2f", s.mult_adds / 1e6) end
  lines[#lines + 1] = thin
  lines[#lines + 1] = string.format("Input size (MB): %.2f", s.input_bytes / 1e6)
  lines[#lines + 1] = string.format("Forward/backward pass size (MB): %.2f", s.forward_backward_bytes / 1e6)
  lines[#lines + 1] = string.format("Params size (MB): %.2f", s.params_bytes / 1e6)
  lines[#lines + 1] = string.format("Estimated Total Size (MB): %.2f", s.total_bytes / 1e6)
  lines[#lines + 1] = rule
  return table.concat(lines, "\n")
end

function Summary:text() return tostring(self) end
Summary.textual = true   -- the REPL prints it rather than showing its picture

function Summary:describe()
  return string.format("[nnvis figure: summary of %s, %d rows, %s parameters]", tostring(self.title or "a model"),
    #self.rows, commas(self.total_params))
end

-- the table drawn in DejaVu Sans Mono (its columns are aligned with spaces)
function Summary:canvas()
  local Canvas = require "nnvis.draw.canvas"
  local style = require "nnvis.draw.style"
  local lines = {}
  for l in (tostring(self) .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = l end
  local size = style.tick_size
  local w, lh = 0, select(2, Canvas.measure("Ag", size, false, "mono"))
  for _, l in ipairs(lines) do w = math.max(w, (Canvas.measure(l, size, false, "mono"))) end
  local m = style.margin
  local cv = Canvas.new(w + 2 * m, #lines * lh + 2 * m, { bg = 1 })
  cv:panel("table", 0, 0, w + 2 * m, #lines * lh + 2 * m)
  for i, l in ipairs(lines) do cv:text(l, m, m + (i - 1) * lh, { size = size, mono = true, panel = "table" }) end
  return cv
end

--- the table as an image (DejaVu Sans Mono through Cairo)
function Summary:image()
  if self._img then return self._img end
  self._img = self:canvas():figure("summary", self.title)
  return self._img
end

--- the table as PDF bytes
function Summary:pdf() return self:canvas():pdf() end

local function esc(s) return (tostring(s):gsub("&", "&amp;"):gsub("<", "&lt;"):gsub(">", "&gt;")) end

--- the layer table and the totals as an HTML fragment
function Summary:html()
  local out = { '<table class="nnvis-summary">',
    "<thead><tr><th>Layer (type)</th><th>Output Shape</th><th>Param #</th><th>Mult-Adds</th><th>Act. (MB)</th></tr></thead><tbody>" }
  for _, r in ipairs(self.rows) do
    out[#out + 1] = string.format('<tr><td style="padding-left:%dem">%s (%s)</td><td>%s</td><td>%s</td><td>%s</td><td>%.2f</td></tr>',
      r.depth - 1, esc(r.name), esc(r.kind), r.output_shape and ("[" .. table.concat(r.output_shape, ", ") .. "]") or "--",
      r.params > 0 and commas(r.params) or "--", r.mult_adds > 0 and human(r.mult_adds) or "--", r.activation_bytes / 1e6)
  end
  out[#out + 1] = "</tbody></table>"
  out[#out + 1] = string.format("<p>Total params: %s<br>Trainable params: %s<br>Non-trainable params: %s<br>" ..
    "Total mult-adds: %s<br>Estimated Total Size (MB): %.2f</p>", commas(self.total_params), commas(self.trainable_params),
    commas(self.non_trainable_params), human(self.mult_adds), self.total_bytes / 1e6)
  return table.concat(out, "\n")
end

setmetatable(M, { __call = function(_, ...) return M.summary(...) end })
return M
