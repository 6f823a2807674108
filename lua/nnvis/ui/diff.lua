-- nnvis.ui.diff — what changed between two models: two checkpoints of one architecture (before
-- and after fine-tuning, two epochs) or two related architectures.  Per parameter tensor and
-- per layer (the module that owns the parameters) the relative weight change ‖ΔW‖ / ‖W‖,
-- ΔW = W_b - W_a and the norms Frobenius norms over the tensors of the layer, with the largest
-- |ΔW|; the parameters left exactly as they were (frozen), the ones only one model has and
-- the ones whose shape changed.  With inputs x: both models' predictions and their Grad-CAMs
-- side by side with the difference of the maps (b's minus a's).
--
--   local d = nv.diff(before, after, x, {classes = names})
--   print(d:text())                  -- the table; d:save("diff.png"), d:save("diff.html")
--   d.layers[1].rel_change           -- {name, params, rel_change, max_abs_change, frozen, tensors}
--
-- A diff is a figure (nnvis.figure): image() stacks the bar chart of the layers' changes, the
-- histograms of ΔW of the layers that moved most and the CAM panels; text() is the table;
-- html() a fragment with the tables and the pictures as data: URIs.
local core = require "nnvis.core"
local class = require "nnvis.tensor.class"
local util = require "nnvis.tensor.util"
local Canvas = require "nnvis.draw.canvas"
local style = require "nnvis.draw.style"
local Figure = require("nnvis.draw.figure").Figure

local M = {}

--- Diff: what nv.diff returns, a figure (image(), text(), html(), save(path)) with the fields
--- layers, params, frozen, only_a, only_b, shape_changed, layers_only_a, layers_only_b, top,
--- and with inputs predictions and cams
local Diff = class("Diff", Figure)
M.Diff = Diff

M.known_options = { "classes", "layer", "samples", "target", "title", "top" }

local MAX_BARS = 40     -- layers drawn in the bar chart; more: the ones that moved most
local HIST_W, HIST_H = 220, 150   -- points, one histogram of ΔW
local CAM_MAX = 160     -- points, the longest side of a CAM panel

local is_tensor = util.is_tensor

local function shape_str(s) return "(" .. table.concat(s, ",") .. ")" end

local function is_module(x) return type(x) == "table" and type(x.named_parameters) == "function" and not is_tensor(x) end

local function fmt(v)
  if v == nil then return "--" end
  if v ~= v then return "NaN" end
  if v == math.huge then return "inf" end
  if v == 0 then return "0" end
  return string.format("%.3g", v)
end

local function class_name(classes, id)
  if type(classes) == "table" and classes[id] then return tostring(classes[id]) end
  return "class " .. tostring(id)
end

-- "layer10.weight" after "layer2.weight": digits compared as numbers
local function natural_key(s) return (s:gsub("%d+", function(d) return string.rep("0", 12 - #d) .. d end)) end

-- the buffers PyTorch's layers keep in a state dict beside their parameters (BatchNorm's)
local BUFFERS = { running_mean = true, running_var = true, num_batches_tracked = true }

-- A model or a state dict as {order = {names}, t = name -> tensor, owner = name -> layer,
-- buffers = set of buffer names, module = bool}.  A state dict's parameters are its tensors
-- but the buffers (by PyTorch's names, or any module's in `also_skip`); a module's are its
-- named_parameters, each in the layer (module path) that owns it.
local function collect(x, argn)
  if is_module(x) then
    local p = { order = {}, t = {}, owner = {}, buffers = {}, module = true }
    for name, t in x:named_parameters() do
      p.order[#p.order + 1] = name
      p.t[name] = t:detach()
    end
    for name in x:named_buffers() do p.buffers[name] = true end
    -- the module that registered each tensor (the root's own parameters keep their names'
    -- prefix: an imported ONNX model lists every initializer there)
    local owner_of = {}
    for path, m in x:named_modules() do
      if path ~= "" then
        for _, t in m:named_parameters({ recurse = false }) do
          if owner_of[t] == nil then owner_of[t] = path end
        end
      end
    end
    for name, t in x:named_parameters() do p.owner[name] = owner_of[t] end
    return p
  end
  if type(x) ~= "table" or is_tensor(x) then
    util.raise(string.format("diff: expected a model (nv.nn.Module) or a state dict (name -> tensor) as argument %d, got %s",
      argn, is_tensor(x) and "a tensor" or type(x)))
  end
  -- a checkpoint holding its state dict (what torch.save wrote for a training script)
  local has_tensor = false
  for _, v in pairs(x) do if is_tensor(v) then has_tensor = true; break end end
  if not has_tensor then
    for _, k in ipairs { "state_dict", "model_state_dict", "model" } do
      if type(x[k]) == "table" and not is_module(x[k]) then return collect(x[k], argn) end
    end
  end
  local p = { order = {}, t = {}, owner = {}, buffers = {}, module = false }
  for k, v in pairs(x) do
    if type(k) == "string" and is_tensor(v) then
      if BUFFERS[k:match("([^.]+)$")] then p.buffers[k] = true
      else p.order[#p.order + 1] = k; p.t[k] = v end
    end
  end
  table.sort(p.order, function(u, v) return natural_key(u) < natural_key(v) end)
  return p
end

-- the layer of a parameter: the module that owns it, else its name without the last part
local function layer_of(name, pa, pb)
  local o = pa.owner[name] or pb.owner[name]
  if o then return o end
  return name:match("^(.+)%.[^.]+$") or name
end

-- ‖t‖ (Frobenius), in double precision from float32 partial sums
local function norm(t) return math.sqrt((t * t):sum():item()) end

-- the ratio of two norms: 0/0 is no change; a change of a tensor that was 0 is infinite
local function ratio(d, w)
  if d == 0 then return 0 end
  if w == 0 then return math.huge end
  return d / w
end

--- nv.diff(a, b [, x [, opts]]) -> diff (a figure): what changed between two models a and b
--- (nv.nn.Module, nnvis.onnx models, or state dicts name -> tensor from nv.load_pth and
--- nv.load_safetensors).  d.layers lists each layer (the module that owns parameters) both
--- have, in model order: {name, params (elements), rel_change = ‖ΔW‖/‖W‖ over the layer's
--- tensors (ΔW = W_b - W_a, W = W_a; inf when W_a is 0 and ΔW is not), max_abs_change =
--- max |ΔW|, frozen (ΔW exactly 0), tensors (the same per parameter tensor)}; d.params the
--- tensors' records, d.frozen the frozen tensors' names, d.only_a and d.only_b the parameters
--- only one has, d.layers_only_a / d.layers_only_b the layers only one has, d.shape_changed
--- {name, a, b} (the shapes), d.top the layers that moved most.  A state dict's buffers
--- (running_mean, running_var, num_batches_tracked) are not parameters.  With inputs x
--- (N,C,H,W) or (N,features) (a and b models): d.predictions[i] = {a = {class, prob}, b =
--- {class, prob}, same}, and for images d.cams = {a, b (the (N,H,W) Grad-CAMs in [0,1]),
--- diff (b - a), layer_a, layer_b}.  opts: top (3, the layers whose ΔW histograms are drawn),
--- layer (the CAM layer, default each model's last spatial one), target (the class the CAMs
--- explain, default each model's top class), samples (4, CAM rows drawn), classes (names),
--- title.  d:image() draws the bar chart, the histograms and the CAMs; d:text() the table.
function M.diff(a, b, x, opts)
  -- nv.diff(sa, m:state_dict()): the list of keys state_dict() returns beside the table
  if type(x) == "table" and not is_tensor(x) and type(x[1]) == "string" then x = nil end
  if x ~= nil and not is_tensor(x) and type(x) == "table" and opts == nil and not (#x > 0) then
    opts, x = x, nil          -- nv.diff(a, b, opts)
  end
  opts = util.check_opts("diff", opts, M.known_options)
  if opts.top ~= nil and (math.type(opts.top) ~= "integer" or opts.top < 0) then
    util.raise("diff: opts.top must be a whole number >= 0, got " .. tostring(opts.top))
  end
  if opts.samples ~= nil and (math.type(opts.samples) ~= "integer" or opts.samples < 1) then
    util.raise("diff: opts.samples must be a whole number >= 1, got " .. tostring(opts.samples))
  end
  local t = opts.target
  if t ~= nil and math.type(t) ~= "integer" and not (type(t) == "table" and math.type(t[1]) == "integer") then
    util.raise("diff: opts.target must be a class id or a list of them (one per sample), got " .. type(t))
  end
  local pa, pb = collect(a, 1), collect(b, 2)
  if x ~= nil then
    if not is_tensor(x) or x:dim() < 2 or x:dim() > 4 then
      util.raise("diff: expected inputs (N,C,H,W), (N,features) or one image (C,H,W) as argument 3, got " ..
        (is_tensor(x) and shape_str(x:shape()) or type(x)))
    end
    if not pa.module or not pb.module then
      util.raise(string.format("diff: inputs need two models; argument %d is a state dict", pa.module and 2 or 1))
    end
  end
  if #pa.order == 0 and #pb.order == 0 then util.raise("diff: neither argument has any parameters") end
  local d = Diff("diff", opts.title or "what changed from a to b")
  d.opts = opts
  d:compare(pa, pb)
  if x ~= nil then
    if x:dim() == 3 then x = x:unsqueeze(1) end
    d.x = x
    d:explain(a, b, x)
  end
  return d
end

-- the weights: per tensor, per layer, frozen, only in one, reshaped
function Diff:compare(pa, pb)
  -- a module's buffers are not in the other's parameters either
  for n in pairs(pa.buffers) do if pb.t[n] and not pb.module then pb.t[n] = nil end end
  for n in pairs(pb.buffers) do if pa.t[n] and not pa.module then pa.t[n] = nil end end
  local names, seen = {}, {}
  -- in a model's order when one of the two is a model (a state dict's names are only sorted)
  for _, p in ipairs((pb.module and not pa.module) and { pb, pa } or { pa, pb }) do
    for _, n in ipairs(p.order) do
      if p.t[n] and not seen[n] then seen[n] = true; names[#names + 1] = n end
    end
  end
  self.params, self.frozen, self.only_a, self.only_b, self.shape_changed = {}, {}, {}, {}, {}
  self.layers, self.layers_only_a, self.layers_only_b = {}, {}, {}
  local by_layer, orphan_a, orphan_b, lorder = {}, {}, {}, {}
  self._tensors = {}
  for _, n in ipairs(names) do
    local ta, tb = pa.t[n], pb.t[n]
    local lname = layer_of(n, pa, pb)
    if ta and tb then
      local sa, sb = ta:shape(), tb:shape()
      if shape_str(sa) ~= shape_str(sb) then
        self.shape_changed[#self.shape_changed + 1] = { name = n, a = sa, b = sb }
      else
        local delta = tb - ta
        local na, nd = norm(ta), norm(delta)
        local mx = ta:numel() > 0 and delta:abs():max():item() or 0
        local rec = { name = n, layer = lname, shape = sa, numel = ta:numel(), norm = na, delta_norm = nd,
                      rel_change = ratio(nd, na), max_abs_change = mx, frozen = mx == 0 }
        self.params[#self.params + 1] = rec
        self._tensors[n] = { ta, tb }
        if rec.frozen then self.frozen[#self.frozen + 1] = n end
        if not by_layer[lname] then by_layer[lname] = {}; lorder[#lorder + 1] = lname end
        table.insert(by_layer[lname], rec)
      end
    elseif ta then
      self.only_a[#self.only_a + 1] = n
      orphan_a[#orphan_a + 1] = lname
    else
      self.only_b[#self.only_b + 1] = n
      orphan_b[#orphan_b + 1] = lname
    end
  end
  -- a layer with a reshaped tensor is compared on its other tensors, and says so
  local reshaped = {}
  for _, c in ipairs(self.shape_changed) do
    local l = layer_of(c.name, pa, pb)
    by_layer[l] = by_layer[l] or {}
    reshaped[l] = reshaped[l] or {}
    table.insert(reshaped[l], c.name)
  end
  -- the layers only one model has: none of their parameters is in the other
  for _, pair in ipairs { { orphan_a, self.layers_only_a }, { orphan_b, self.layers_only_b } } do
    local done = {}
    for _, l in ipairs(pair[1]) do
      if not by_layer[l] and not done[l] then done[l] = true; pair[2][#pair[2] + 1] = l end
    end
  end
  -- per layer: ‖ΔW‖ / ‖W‖ with the norms over all its tensors
  for _, l in ipairs(lorder) do
    local recs = by_layer[l]
    local sa, sd, mx, n, frozen = 0, 0, 0, 0, true
    for _, r in ipairs(recs) do
      sa, sd = sa + r.norm ^ 2, sd + r.delta_norm ^ 2
      mx = (r.max_abs_change > mx or r.max_abs_change ~= r.max_abs_change) and r.max_abs_change or mx
      n = n + r.numel
      frozen = frozen and r.frozen
    end
    self.layers[#self.layers + 1] = { name = l, params = n, rel_change = ratio(math.sqrt(sd), math.sqrt(sa)),
                                      max_abs_change = mx, frozen = frozen, tensors = recs, reshaped = reshaped[l] or {} }
  end
  -- the layers that moved most (relative change, largest first; ties in model order)
  local moved = {}
  for i, l in ipairs(self.layers) do if not l.frozen then moved[#moved + 1] = { l, i } end end
  table.sort(moved, function(p, q)
    local u, v = p[1].rel_change, q[1].rel_change
    if u ~= v then return u > v or v ~= v end
    return p[2] < q[2]
  end)
  self.top = {}
  for i = 1, math.min(self.opts.top or 3, #moved) do self.top[i] = moved[i][1].name end
end

-- the (numel) ΔW of a layer's tensors, one after the other
function Diff:delta_of(lname)
  local parts = {}
  for _, l in ipairs(self.layers) do
    if l.name == lname then
      for _, r in ipairs(l.tensors) do
        local t = self._tensors[r.name]
        parts[#parts + 1] = (t[2] - t[1]):reshape(-1)
      end
    end
  end
  if #parts == 1 then return parts[1] end
  return core.cat(parts, 1)
end

-- class ids and probabilities of a model on x (eval mode, no graph)
local function predict(model, x, classes)
  local out = util.with_mode(model, false, function()
    return core.no_grad(function() return model(x) end)
  end)
  local s = util.first_tensor(out)
  if not s then util.raise("diff: the model's output holds no tensor") end
  local p = util.probs(s:detach():reshape(x:size(1), -1))
  util.check_classes("diff", classes, p:size(2))
  local pv, pi = p:max(2)
  return p, pi, pv
end

-- the predictions of both models and, for images, their Grad-CAMs and the difference
function Diff:explain(a, b, x)
  local opts = self.opts
  local N = x:size(1)
  local prob_a, ida, pva = predict(a, x, opts.classes)
  local prob_b, idb, pvb = predict(b, x, opts.classes)
  self.predictions = {}
  for i = 1, N do
    local ca, cb = math.tointeger(ida:get(i)) or ida:get(i), math.tointeger(idb:get(i)) or idb:get(i)
    self.predictions[i] = { a = { class = ca, prob = pva:get(i) }, b = { class = cb, prob = pvb:get(i) }, same = ca == cb }
  end
  if x:dim() ~= 4 then return end
  local cam = require "nnvis.explain.cam"
  local function targets(ids)
    if opts.target ~= nil then return opts.target end
    local t = {}
    for i = 1, N do t[i] = math.tointeger(ids:get(i)) or ids:get(i) end
    return t
  end
  local ta, tb = targets(ida), targets(idb)
  local ok, ma = pcall(cam.gradcam, a, x, { layer = opts.layer, target = ta })
  local la = ok and cam.explained_layer()
  local mb
  if ok then
    ok, mb = pcall(cam.gradcam, b, x, { layer = opts.layer, target = tb })
  else
    mb = ma
  end
  -- a model without a spatial map has no Grad-CAM: the predictions stand alone then; a
  -- layer the caller named that fails is the caller's to know
  if not ok then
    if opts.layer ~= nil then error(mb, 0) end
    self.cam_error = tostring(mb):gsub("^[^:]*:%d+: ", "")
    return
  end
  local lb = cam.explained_layer()
  self.cams = { a = ma, b = mb, diff = mb - ma, layer_a = la, layer_b = lb }
  -- each panel says the class its map explains and that class's probability
  local function prob_of(p, t, i)
    local c = type(t) == "table" and t[i] or t
    return c, p:get(i, c)
  end
  self.cams.classes = {}
  for i = 1, N do
    local ca, pa_ = prob_of(prob_a, ta, i)
    local cb, pb_ = prob_of(prob_b, tb, i)
    self.cams.classes[i] = { a = { class = ca, prob = pa_ }, b = { class = cb, prob = pb_ } }
  end
end

-- "only in a (2): x, y", the first 12 names and how many more; nil for none
local function list_line(label, names)
  if #names == 0 then return nil end
  local max = 12
  local shown = #names <= max and table.concat(names, ", ") or
    (table.concat(names, ", ", 1, max) .. string.format(" and %d more", #names - max))
  return string.format("%s (%d): %s", label, #names, shown)
end

-- ---- drawing ------------------------------------------------------------------------------
-- A section is {w, h, draw = function(cv, x, y)}: drawn into the composed figure (image())
-- and alone, for html().

local function label_h(size, bold) local _, h = Canvas.measure("Ag", size or style.label_size, bold); return h end

-- the bar chart of the layers' relative change, one row per layer in model order
function Diff:bars_section()
  local layers, note = self.layers, nil
  if #layers > MAX_BARS then
    local idx = {}
    for i, l in ipairs(layers) do idx[i] = { l, i } end
    table.sort(idx, function(p, q)
      local u, v = p[1].rel_change, q[1].rel_change
      if u ~= v then return u > v end
      return p[2] < q[2]
    end)
    local keep = {}
    for i = 1, MAX_BARS do keep[idx[i][2]] = true end
    local sub = {}
    for i, l in ipairs(layers) do if keep[i] then sub[#sub + 1] = l end end
    note = string.format(" (the %d of %d layers that moved most)", MAX_BARS, #layers)
    layers = sub
  end
  local top = {}
  for i, n in ipairs(self.top) do top[n] = i end
  local ts, ls = style.tick_size, style.label_size
  local title = "relative weight change ‖ΔW‖ / ‖W‖ per layer" .. (note or "")
  local nw = 0
  for _, l in ipairs(layers) do nw = math.max(nw, Canvas.measure(l.name, ts)) end
  nw = math.min(nw, 180)
  local rows, rh_total = {}, 0
  local _, lh8 = Canvas.measure("Ag", ts)
  for i, l in ipairs(layers) do
    local lines, size = Canvas.fit(l.name, ts, nw, false)
    local _, lh = Canvas.measure("Ag", size)
    local h = math.max(lh8 + 4, #lines * lh + 2)
    rows[i] = { layer = l, lines = lines, size = size, lh = lh, h = h }
    rh_total = rh_total + h
  end
  local vmax = 0
  local labels, vw = {}, 0
  for i, l in ipairs(layers) do
    local v = l.rel_change
    if v == v and v < math.huge then vmax = math.max(vmax, v) end
    labels[i] = l.frozen and "frozen" or (v == math.huge and "inf (W was 0)" or fmt(v))
    if #l.reshaped > 0 then labels[i] = labels[i] .. " (" .. table.concat(l.reshaped, ", ") .. " reshaped)" end
    vw = math.max(vw, Canvas.measure(labels[i], ts))
  end
  if vmax == 0 then vmax = 1 end
  local plot = require "nnvis.draw.plot"
  local ticks, step = plot.ticks(0, vmax, 4)
  local xmax = math.ceil(vmax / step - 1e-9) * step
  if ticks[#ticks] < xmax - step * 1e-6 then ticks[#ticks + 1] = xmax end
  local tfmt = plot.tick_format(ticks, step)
  local BW = 260
  local pad = style.pad
  local _, th = Canvas.measure("0", ts)
  local title_lines, title_size = Canvas.fit(title, style.title_size, nw + pad + BW + pad + vw, true)
  local tlh = label_h(title_size, true)
  local axis_h = style.tick_len + 2 + th + pad + label_h(ls)
  local w = nw + pad + BW + pad + vw
  local h = #title_lines * tlh + pad + rh_total + axis_h
  local function draw(cv, x0, y0)
    cv:panel("changes", x0, y0, w, h)
    for i, l in ipairs(title_lines) do
      cv:text(l, x0 + w / 2, y0 + (i - 1) * tlh, { size = title_size, bold = true, ax = 0.5, panel = "changes" })
    end
    local bx, top_y = x0 + nw + pad, y0 + #title_lines * tlh + pad
    local bottom = top_y + rh_total
    local function X(v) return bx + math.min(v, xmax) / xmax * BW end
    for _, t in ipairs(ticks) do
      cv:line({ X(t), top_y, X(t), bottom }, style.grid, 0.6)
      cv:line({ X(t), bottom, X(t), bottom + style.tick_len }, style.frame, style.frame_width)
      cv:text(tfmt(t), X(t), bottom + style.tick_len + 2, { size = ts, ax = 0.5, color = style.muted, panel = "changes" })
    end
    cv:text("‖ΔW‖ / ‖W‖  (ΔW = W_b − W_a, W = W_a)", bx + BW / 2, bottom + style.tick_len + 2 + th + pad,
      { size = ls, ax = 0.5, panel = "changes" })
    local y = top_y
    for i, r in ipairs(rows) do
      local l = r.layer
      local cy = y + r.h / 2
      local tx0 = cy - #r.lines * r.lh / 2
      for j, s in ipairs(r.lines) do
        cv:text(s, bx - pad, tx0 + (j - 1) * r.lh, { size = r.size, ax = 1, bold = top[l.name] ~= nil, panel = "changes" })
      end
      local v = l.rel_change
      local bh = math.min(r.h - 3, 9)
      local xe = bx
      if not l.frozen then
        local color = top[l.name] and style.palette[2] or style.palette[1]
        xe = (v ~= v) and bx or X(v == math.huge and xmax or v)
        cv:rect(bx, cy - bh / 2, math.max(xe - bx, 0.8), bh, color)
      end
      cv:text(labels[i], math.max(xe, bx + 0.8) + 3, cy, { size = ts, ay = 0.5, color = l.frozen and style.muted or style.text,
                                                          panel = "changes" })
      y = y + r.h
    end
    cv:line({ bx, top_y, bx, bottom }, style.frame, style.frame_width)
    cv:line({ bx, bottom, bx + BW, bottom }, style.frame, style.frame_width)
  end
  return { w = w, h = h, draw = draw }
end

-- the histograms of ΔW of the layers that moved most, in a row (three to a row)
function Diff:histograms_section()
  if #self.top == 0 then return nil end
  local plot = require "nnvis.draw.plot"
  local figure = require "nnvis.draw.figure"
  local imgs = {}
  self.histograms = self.histograms or {}
  for i, name in ipairs(self.top) do
    local img = self.histograms[name]
    if not img then
      local rel
      for _, l in ipairs(self.layers) do if l.name == name then rel = l.rel_change end end
      img = plot.histogram(self:delta_of(name), { title = string.format("%s: ΔW (‖ΔW‖/‖W‖ = %s)", name, fmt(rel)),
        xlabel = "ΔW = W_b − W_a", width = HIST_W, height = HIST_H })
      self.histograms[name] = img
    end
    imgs[i] = { name = name, img = img }
  end
  local per_row, pad = 3, style.pad
  local sc = style.scale
  local cw, ch = imgs[1].img:size(3) / sc, imgs[1].img:size(2) / sc
  local ncol = math.min(per_row, #imgs)
  local nrow = math.ceil(#imgs / per_row)
  local w, h = ncol * cw + (ncol - 1) * pad, nrow * ch + (nrow - 1) * pad
  local function draw(cv, x0, y0)
    for i, e in ipairs(imgs) do
      local x = x0 + ((i - 1) % per_row) * (cw + pad)
      local y = y0 + ((i - 1) // per_row) * (ch + pad)
      local pname = "histogram " .. e.name
      cv:panel(pname, x, y, cw, ch)
      cv:image(e.img, x, y, cw, ch, true)
      -- the histogram's own texts, where they now sit (the layout specs check them)
      local lay = figure.layout(e.img)
      for _, t in ipairs(lay and lay.texts or {}) do
        local texts = cv.layout.texts
        texts[#texts + 1] = { text = t.text, x = t.x + x, y = t.y + y, w = t.w, h = t.h, size = t.size, panel = pname }
      end
    end
  end
  return { w = w, h = h, draw = draw }
end

-- both models' Grad-CAMs and the difference of the maps, a row per sample
function Diff:cams_section()
  local c = self.cams
  if not c then return nil end
  local image, cmap = require "nnvis.draw.image", require "nnvis.draw.colormap"
  local x = self.x
  local n = math.min(self.opts.samples or 4, x:size(1))
  local H, W = x:size(3), x:size(4)
  local sc = style.scale
  local k = style.enlarge(H, W, sc)
  local pw, ph = W * k, H * k      -- points: at least min_panel_px pixels on the long side
  local long = math.max(pw, ph)
  if long > CAM_MAX then pw, ph = pw * CAM_MAX / long, ph * CAM_MAX / long end
  local smooth = pw * sc < W
  local pad, ls, ts = style.pad, style.label_size, style.tick_size
  -- one symmetric scale for every difference map shown
  local shown = c.diff:narrow(1, 1, n)
  local m = shown:abs():max():item()
  if not (m > 0) then m = 1 end
  local classes = self.opts.classes
  local heads = { "Grad-CAM of a" .. (c.layer_a and (" at " .. c.layer_a) or ""),
                  "Grad-CAM of b" .. (c.layer_b and (" at " .. c.layer_b) or ""), "b − a" }
  local head_fit, head_h = {}, 0
  for j, s in ipairs(heads) do
    local lines, size = Canvas.fit(s, ls, pw, true)
    head_fit[j] = { lines = lines, size = size, lh = label_h(size, true) }
    head_h = math.max(head_h, #lines * head_fit[j].lh)
  end
  local rows = {}
  for i = 1, n do
    local ca, cb = c.classes[i].a, c.classes[i].b
    local texts = { string.format("%d: %s, p = %.2f", i, class_name(classes, ca.class), ca.prob),
                    string.format("%s, p = %.2f", class_name(classes, cb.class), cb.prob),
                    string.format("max |b − a| = %s", fmt(c.diff:select(1, i):abs():max():item())) }
    local fitted, sh = {}, 0
    for j, s in ipairs(texts) do
      local lines, size = Canvas.fit(s, ts, pw, false)
      fitted[j] = { lines = lines, size = size, lh = label_h(size) }
      sh = math.max(sh, #lines * fitted[j].lh)
    end
    rows[i] = { fitted = fitted, strip = math.ceil(sh + 2), changed = ca.class ~= cb.class }
  end
  local grid_h = 0
  for i, r in ipairs(rows) do grid_h = grid_h + r.strip + ph + (i > 1 and pad or 0) end
  local cbw = Canvas.colorbar_width(-m, m, "Grad-CAM b − a")
  local w = 3 * pw + 2 * pad + 2 * pad + cbw
  local h = head_h + pad + grid_h
  local function draw(cv, x0, y0)
    for j, f in ipairs(head_fit) do
      for q, l in ipairs(f.lines) do
        cv:text(l, x0 + (j - 1) * (pw + pad) + pw / 2, y0 + (q - 1) * f.lh, { size = f.size, bold = true, ax = 0.5 })
      end
    end
    local y = y0 + head_h + pad
    local gy = y
    for i, r in ipairs(rows) do
      local base = image.to_rgb(image.normalize(x:select(1, i)))
      local pics = { image.overlay(base, c.a:select(1, i)), image.overlay(base, c.b:select(1, i)),
                     cmap.apply((c.diff:select(1, i) / (2 * m) + 0.5):clamp(0, 1), "RdBu_r") }
      for j, pic in ipairs(pics) do
        local px = x0 + (j - 1) * (pw + pad)
        local pname = ({ "cam a ", "cam b ", "cam diff " })[j] .. i
        cv:panel(pname, px, y, pw, r.strip + ph)
        local f = r.fitted[j]
        local color = (j == 2 and r.changed) and style.palette[4] or style.text
        for q, l in ipairs(f.lines) do
          cv:text(l, px + pw / 2, y + (q - 1) * f.lh, { size = f.size, ax = 0.5, color = color, panel = pname })
        end
        cv:image(pic, px, y + r.strip, pw, ph, smooth)
        cv:box(px, y + r.strip, pw, ph, style.frame, style.frame_width * 0.75)
      end
      y = y + r.strip + ph + pad
    end
    local first = rows[1].strip
    cv:colorbar(x0 + 3 * pw + 2 * pad + 2 * pad, gy + first, math.max(y - pad - gy - first, 40), -m, m, "RdBu_r",
      "Grad-CAM b − a")
  end
  return { w = w, h = h, draw = draw }
end

-- the parameters only one model has and the reshaped ones, as lines of text
function Diff:lists_section()
  local items = {}
  local function add(s) if s then items[#items + 1] = s end end
  add(list_line("only in a", self.only_a))
  add(list_line("only in b", self.only_b))
  if #self.shape_changed > 0 then
    local parts = {}
    for _, c in ipairs(self.shape_changed) do parts[#parts + 1] = c.name .. " " .. shape_str(c.a) .. " → " .. shape_str(c.b) end
    add(list_line("reshaped", parts))
  end
  if #items == 0 then return nil end
  local ls = style.label_size
  local w = 0
  for _, s in ipairs(items) do w = math.max(w, Canvas.measure(s, ls)) end
  w = math.min(w, 480)
  local fitted, h = {}, 0
  for i, s in ipairs(items) do
    local lines, size = Canvas.fit(s, ls, w, false)
    fitted[i] = { lines = lines, size = size, lh = label_h(size) }
    h = h + #lines * fitted[i].lh
  end
  local function draw(cv, x0, y0)
    cv:panel("differences", x0, y0, w, h)
    local y = y0
    for _, f in ipairs(fitted) do
      for _, l in ipairs(f.lines) do
        cv:text(l, x0, y, { size = f.size, panel = "differences" })
        y = y + f.lh
      end
    end
  end
  return { w = w, h = h, draw = draw }
end

-- the sections stacked under a title and a line saying what changed
local function compose(sections, title, subtitle, kind)
  local m, pad = style.margin, style.pad
  local W = 0
  for _, s in ipairs(sections) do W = math.max(W, s.w) end
  W = W + 2 * m
  local tl, tsz, tlh = {}, style.title_size, 0
  if title then
    tl, tsz = Canvas.fit(title, style.title_size, W - 2 * m, true, style.title_size - 1.5)
    tlh = label_h(tsz, true)
  end
  local sl, ssz, slh = {}, style.label_size, 0
  if subtitle then
    sl, ssz = Canvas.fit(subtitle, style.label_size, W - 2 * m, false)
    slh = label_h(ssz)
  end
  local head = m + #tl * tlh + #sl * slh + ((#tl + #sl) > 0 and 2 * pad or 0)
  local H = head
  for i, s in ipairs(sections) do H = H + s.h + (i > 1 and 3 * pad or 0) end
  H = math.ceil(H + m)
  local cv = Canvas.new(W, H, { bg = 1 })
  local y = m
  if #tl + #sl > 0 then cv:panel("title", m, m, W - 2 * m, #tl * tlh + #sl * slh) end
  for _, l in ipairs(tl) do cv:text(l, W / 2, y, { size = tsz, bold = true, ax = 0.5, panel = "title" }); y = y + tlh end
  for _, l in ipairs(sl) do cv:text(l, W / 2, y, { size = ssz, ax = 0.5, color = style.muted, panel = "title" }); y = y + slh end
  y = head
  for i, s in ipairs(sections) do
    if i > 1 then y = y + 3 * pad end
    s.draw(cv, math.floor(m + (W - 2 * m - s.w) / 2), y)
    y = y + s.h
  end
  return cv:figure(kind, title)
end

-- what the table's last column says of a layer: frozen, among the top, reshaped tensors
local function note_of(l, top)
  local s = l.frozen and "frozen" or (top[l.name] and ("top " .. top[l.name]) or "")
  if #l.reshaped > 0 then s = s .. (s == "" and "" or "; ") .. table.concat(l.reshaped, ", ") .. " reshaped" end
  return s
end

local function plural(n, word) return string.format("%d %s%s", n, word, n == 1 and "" or "s") end

-- one line: how many layers moved, froze, and what only one model has
function Diff:headline()
  local changed = 0
  for _, l in ipairs(self.layers) do if not l.frozen then changed = changed + 1 end end
  local parts = { string.format("%s compared: %d changed, %d frozen", plural(#self.layers, "layer"), changed,
    #self.layers - changed) }
  if #self.only_a > 0 then parts[#parts + 1] = plural(#self.only_a, "parameter") .. " only in a" end
  if #self.only_b > 0 then parts[#parts + 1] = plural(#self.only_b, "parameter") .. " only in b" end
  if #self.shape_changed > 0 then parts[#parts + 1] = plural(#self.shape_changed, "parameter") .. " reshaped" end
  if self.predictions then
    local same = 0
    for _, p in ipairs(self.predictions) do if p.same then same = same + 1 end end
    parts[#parts + 1] = string.format("same top class for %d of %d inputs", same, #self.predictions)
  end
  return table.concat(parts, "; ")
end

--- the composed picture: the bar chart of the layers' change, the ΔW histograms of the layers
--- that moved most and, with images, the CAM panels (panels "changes", "histogram <layer>",
--- "cam a <i>", "cam b <i>", "cam diff <i>" and "colorbar" in nv.figure.layout)
function Diff:image()
  if not self._image then
    local secs = {}
    if #self.layers > 0 then secs[#secs + 1] = self:bars_section() end
    secs[#secs + 1] = self:lists_section()
    secs[#secs + 1] = self:histograms_section()
    secs[#secs + 1] = self:cams_section()
    if #secs == 0 then   -- nothing in common: the headline alone
      secs[1] = { w = 300, h = 1, draw = function() end }
    end
    self._image = compose(secs, self.title, self:headline(), "diff")
  end
  return self._image
end

--- the composed picture as SVG text (the same drawing as image())
function Diff:svg() return require("nnvis.draw.figure").layout_canvas(self:image()):svg() end

--- the composed picture as PDF bytes
function Diff:pdf() return require("nnvis.draw.figure").layout_canvas(self:image()):pdf() end

-- each section alone, for the HTML fragment
function Diff:section_image(which)
  self._sections = self._sections or {}
  if self._sections[which] == nil then
    local s = self[which .. "_section"](self)
    self._sections[which] = s and compose({ s }, nil, nil, "diff " .. which) or false
  end
  return self._sections[which] or nil
end

local function pad_right(s, n)
  local len = utf8.len(s) or #s
  return s .. string.rep(" ", math.max(0, n - len))
end
local function pad_left(s, n)
  local len = utf8.len(s) or #s
  return string.rep(" ", math.max(0, n - len)) .. s
end

--- the table: one row per layer (parameters, ‖ΔW‖/‖W‖, max |ΔW|, frozen or among the top),
--- then the frozen, added, removed and reshaped parameters and, with inputs, the predictions
function Diff:text()
  local lines = { self:describe() }
  local top = {}
  for i, n in ipairs(self.top) do top[n] = i end
  if #self.layers > 0 then
    local nw = #"layer"
    for _, l in ipairs(self.layers) do nw = math.max(nw, utf8.len(l.name) or #l.name) end
    lines[#lines + 1] = pad_right("layer", nw) .. "  " .. pad_left("params", 10) .. "  " .. pad_left("‖ΔW‖/‖W‖", 10) ..
      "  " .. pad_left("max |ΔW|", 10)
    lines[#lines + 1] = string.rep("-", nw + 2 + 10 + 2 + 10 + 2 + 10 + 2 + 8)
    for _, l in ipairs(self.layers) do
      local note = note_of(l, top)
      lines[#lines + 1] = (pad_right(l.name, nw) .. "  " .. pad_left(tostring(l.params), 10) .. "  " ..
        pad_left(fmt(l.rel_change), 10) .. "  " .. pad_left(fmt(l.max_abs_change), 10) .. "  " .. note):gsub("%s+$", "")
    end
  end
  local fl = {}
  for _, l in ipairs(self.layers) do if l.frozen then fl[#fl + 1] = l.name end end
  -- (list_line gives nil for an empty list: assigned one by one, not through ipairs)
  lines[#lines + 1] = list_line("frozen layers", fl)
  lines[#lines + 1] = list_line("frozen parameters", self.frozen)
  lines[#lines + 1] = list_line("only in a", self.only_a)
  lines[#lines + 1] = list_line("only in b", self.only_b)
  lines[#lines + 1] = list_line("layers only in a", self.layers_only_a)
  lines[#lines + 1] = list_line("layers only in b", self.layers_only_b)
  if #self.shape_changed > 0 then
    local parts = {}
    for _, s in ipairs(self.shape_changed) do parts[#parts + 1] = s.name .. " " .. shape_str(s.a) .. " -> " .. shape_str(s.b) end
    lines[#lines + 1] = string.format("shape changed (%d): %s", #parts, table.concat(parts, ", "))
  end
  if self.predictions then
    local classes = self.opts.classes
    lines[#lines + 1] = "predictions (top class, probability):"
    local cw = 10
    for _, p in ipairs(self.predictions) do
      cw = math.max(cw, #class_name(classes, p.a.class) + 7, #class_name(classes, p.b.class) + 7)
    end
    lines[#lines + 1] = "  " .. pad_right("sample", 7) .. pad_right("a", cw + 2) .. "b"
    for i, p in ipairs(self.predictions) do
      lines[#lines + 1] = "  " .. pad_right(tostring(i), 7) ..
        pad_right(string.format("%s %.3f", class_name(classes, p.a.class), p.a.prob), cw + 2) ..
        string.format("%s %.3f", class_name(classes, p.b.class), p.b.prob) .. (p.same and "" or "  (changed)")
    end
  end
  if self.cams then
    lines[#lines + 1] = string.format("Grad-CAM at %s (a) and %s (b)", tostring(self.cams.layer_a), tostring(self.cams.layer_b))
  elseif self.cam_error then
    lines[#lines + 1] = "no Grad-CAM: " .. self.cam_error
  end
  return table.concat(lines, "\n")
end

function Diff:describe()
  local changed = 0
  for _, l in ipairs(self.layers) do if not l.frozen then changed = changed + 1 end end
  local most = ""
  if self.top[1] then
    for _, l in ipairs(self.layers) do
      if l.name == self.top[1] then most = string.format(" (most: %s %s)", l.name, fmt(l.rel_change)) end
    end
  end
  return string.format("[nnvis diff %q: %s, %d changed%s, %d frozen, %d only in a, %d only in b, %d reshaped]",
    tostring(self.title), plural(#self.layers, "layer"), changed, most, #self.layers - changed, #self.only_a, #self.only_b,
    #self.shape_changed)
end

function Diff.__tostring(self) return self:describe() end

-- ---- HTML --------------------------------------------------------------------------------
local function esc(s)
  return (tostring(s):gsub("&", "&amp;"):gsub("<", "&lt;"):gsub(">", "&gt;"):gsub('"', "&quot;"))
end

-- a picture as a data: URI, shown at its size in points
local function img_tag(img, alt)
  local lay = require("nnvis.draw.figure").layout(img)
  local sc = lay and lay.scale or 1
  local uri = "data:image/png;base64," .. require("nnvis.draw.show").base64(core.png_encode(img:detach():contiguous()))
  return string.format('<img alt="%s" src="%s" width="%d" height="%d">', esc(alt), uri,
    math.floor(img:size(3) / sc + 0.5), math.floor(img:size(2) / sc + 0.5))
end

local CSS = [[
.nnvis-diff{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;color:#1b1b1b;line-height:1.45}
.nnvis-diff h2{font-size:1.25em;margin:.4em 0}
.nnvis-diff h3{font-size:1.05em;margin:1.2em 0 .4em}
.nnvis-diff table{border-collapse:collapse;font-size:.86em}
.nnvis-diff td,.nnvis-diff th{border-bottom:1px solid #e3e3e3;padding:2px 8px;text-align:right}
.nnvis-diff td:first-child,.nnvis-diff th:first-child{text-align:left}
.nnvis-diff tr.frozen td{color:#777}
.nnvis-diff tr.top td{background:#fff4e5}
.nnvis-diff .changed{color:#a30000}
]]

--- the diff as an HTML fragment: the layer table, the lists, the predictions and the
--- pictures (bar chart, histograms, CAMs) as data: URIs
function Diff:html()
  local o = {}
  local function add(s) o[#o + 1] = s end
  local top = {}
  for i, n in ipairs(self.top) do top[n] = i end
  add('<div class="nnvis-diff"><style>' .. CSS .. "</style>")
  add("<h2>" .. esc(self.title) .. "</h2>")
  add("<p>" .. esc(self:headline()) .. "</p>")
  if #self.layers > 0 then
    add('<table class="layers"><thead><tr><th>layer</th><th>params</th><th>&#8214;&Delta;W&#8214; / &#8214;W&#8214;</th>' ..
      "<th>max |&Delta;W|</th><th></th></tr></thead><tbody>")
    for _, l in ipairs(self.layers) do
      local cls = l.frozen and ' class="frozen"' or (top[l.name] and ' class="top"' or "")
      add(string.format("<tr%s><td>%s</td><td>%d</td><td>%s</td><td>%s</td><td>%s</td></tr>", cls, esc(l.name), l.params,
        fmt(l.rel_change), fmt(l.max_abs_change), esc(note_of(l, top))))
    end
    add("</tbody></table>")
    add(img_tag(self:section_image("bars"), "relative weight change per layer"))
  end
  local lists = {}
  for _, e in ipairs { { "Frozen parameters", self.frozen }, { "Only in a", self.only_a }, { "Only in b", self.only_b },
                       { "Layers only in a", self.layers_only_a }, { "Layers only in b", self.layers_only_b } } do
    local s = list_line(e[1], e[2])
    if s then lists[#lists + 1] = "<li>" .. esc(s) .. "</li>" end
  end
  for _, s in ipairs(self.shape_changed) do
    lists[#lists + 1] = "<li>Shape changed: " .. esc(s.name .. " " .. shape_str(s.a) .. " -> " .. shape_str(s.b)) .. "</li>"
  end
  if #lists > 0 then add("<ul>" .. table.concat(lists) .. "</ul>") end
  local hist = self:section_image("histograms")
  if hist then
    add("<h3>&Delta;W of the layers that moved most</h3>")
    add(img_tag(hist, "histograms of the weight change"))
  end
  if self.predictions then
    local classes = self.opts.classes
    add('<h3>Predictions</h3><table class="predictions"><thead><tr><th>sample</th><th>a</th><th>p</th><th>b</th>' ..
      "<th>p</th></tr></thead><tbody>")
    for i, p in ipairs(self.predictions) do
      add(string.format("<tr%s><td>%d</td><td>%s</td><td>%.3f</td><td>%s</td><td>%.3f</td></tr>",
        p.same and "" or ' class="changed"', i, esc(class_name(classes, p.a.class)), p.a.prob,
        esc(class_name(classes, p.b.class)), p.b.prob))
    end
    add("</tbody></table>")
  end
  local cams = self:section_image("cams")
  if cams then
    add("<h3>Grad-CAM of a and b, and b &minus; a</h3>")
    add(img_tag(cams, "Grad-CAMs and their difference"))
  elseif self.cam_error then
    add("<p>No Grad-CAM: " .. esc(self.cam_error) .. "</p>")
  end
  add("</div>")
  return table.concat(o, "\n")
end

--- the figure protocol's bundle: HTML first, the composed PNG and the table beside it
function Diff:mimebundle()
  return { ["text/html"] = self:html(), ["text/plain"] = self:text(), ["image/png"] = self:png() }
end

setmetatable(M, { __call = function(_, ...) return M.diff(...) end })
return M
