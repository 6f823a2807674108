-- nnvis.draw.diagram — a drawn picture of a model, as Netron shows one: a box per layer with its
-- name, type, kernel/stride/padding, channels in -> out and parameter count, arrows
-- following the real data flow with the output shape on each edge.  Read from the autograd
-- graph of one forward pass, so residual merges (add, cat), functional ops (x:relu(),
-- flatten) and pass-through layers (Dropout in eval mode) appear as they run.  Drawn through
-- nnvis.canvas (Cairo): PNG, PDF and SVG (with a hover title per node), and DOT for Graphviz.
--   local d = nv.diagram(model, {1, 3, 64, 64}, {depth = 2, direction = "LR"})
--   d:save_png("resnet.png"); d:save_svg("resnet.svg"); print(d:dot())
local core = require "nnvis.core"
local hooks = require("nnvis.nn.module").hooks
local check_opts = require("nnvis.tensor.util").check_opts
local Canvas = require "nnvis.draw.canvas"
local style = require "nnvis.draw.style"

local M = {}

local ROW_GAP, COL_GAP, MARGIN = 26, 22, 12
local COLORS = {
  Dropout = { 0.93, 0.93, 0.93 }, Flatten = { 0.95, 0.90, 0.80 }, fn = { 1.0, 0.97, 0.85 },
  input = { 0.85, 0.92, 1.0 }, Conv2d = { 0.80, 0.90, 0.80 }, Linear = { 0.95, 0.85, 0.75 },
  BatchNorm2d = { 0.93, 0.93, 0.80 }, BatchNorm1d = { 0.93, 0.93, 0.80 }, ReLU = { 0.92, 0.85, 0.92 },
  MaxPool2d = { 0.80, 0.87, 0.93 }, AvgPool2d = { 0.80, 0.87, 0.93 }, AdaptiveAvgPool2d = { 0.80, 0.87, 0.93 },
  op = { 1.0, 0.95, 0.75 }, default = { 0.90, 0.90, 0.90 },
}

local util = require "nnvis.tensor.util"

-- a diagram is a figure (nnvis.figure): png(), svg(), save(path), mimebundle(), tostring
local Figure = require("nnvis.draw.figure").Figure
local Diagram = require("nnvis.tensor.class")("Diagram", Figure)

--- nv.diagram(model, input_or_shape [, opts]) -> diagram.  opts.depth: show modules down to
--- that depth (deeper ones are folded into their ancestor's box; default: every leaf);
--- opts.direction: "TB" (top to bottom, default) or "LR" (left to right); opts.scale
--- (pixels per point of the PNG, nv.style.scale).
function M.diagram(model, input, opts)
  opts = check_opts("diagram", opts, { "depth", "direction", "scale" })
  local direction = opts.direction or "TB"
  if direction ~= "TB" and direction ~= "LR" then
    error(string.format("diagram: direction must be \"TB\" or \"LR\", got %s", tostring(direction)), 2)
  end
  local maxd = opts.depth or math.huge
  local x = getmetatable(input) == core.tensor_mt and input or core.randn(input)
  x = x:detach():set_requires_grad(true)
  -- modules shown as boxes: at the depth limit, or leaves above it
  local owner, passthrough = {}, {}
  local handles <close> = hooks()
  for name, m in model:named_modules() do
    if name ~= "" then
      local d = util.depth(util.tree_path(name, m))
      local leaf = true
      for _ in m:named_children() do leaf = false; break end
      if d == maxd or (leaf and d < maxd) then
        handles:add(m, function(mod, inp, out)
          if getmetatable(out) == core.tensor_mt then
            local id = core.tensor_id(out)
            local in_id = getmetatable(inp) == core.tensor_mt and core.tensor_id(inp) or nil
            if in_id ~= id and not owner[id] then
              owner[id] = { name = name, kind = mod.kind or "Module", out = out, in_id = in_id, folded = not leaf, mod = mod }
            elseif in_id == id then   -- returns its input (Dropout in eval mode): shown after it
              passthrough[id] = passthrough[id] or {}
              table.insert(passthrough[id], { name = name, kind = mod.kind or "Module", mod = mod })
            end
          end
        end)
      end
    end
  end
  local ok, out = pcall(require("nnvis.tensor.util").with_mode, model, false, model, x)
  handles:remove()
  if not ok then error("diagram: the forward pass failed: " .. tostring(out), 2) end
  out = require("nnvis.tensor.util").first_tensor(out)
  if not out then error("diagram: the model's output holds no tensor", 2) end
  local records = core.graph(out)
  local xid = core.tensor_id(x)
  -- which records depend on the input (activations, not parameters)
  local dep, byid = {}, {}
  for _, r in ipairs(records) do
    byid[r.id] = r
    local d = r.id == xid
    for _, i in ipairs(r.inputs) do if dep[i] then d = true end end
    dep[r.id] = d
  end
  -- records computed inside a folded module (between its input and its output) stay hidden
  local inside = {}
  for id, o in pairs(owner) do
    if o.in_id then
      local stack = { id }
      while #stack > 0 do
        local cur = table.remove(stack)
        local r = byid[cur]
        for _, i in ipairs(r and r.inputs or {}) do
          if dep[i] and i ~= o.in_id and not inside[i] then inside[i] = true; stack[#stack + 1] = i end
        end
      end
    end
  end
  -- visible nodes: the input, module outputs, and ops merging two activation paths
  local nodes, index = {}, {}
  local function add_node(r, label, kind, mod)
    nodes[#nodes + 1] = { id = r.id, name = label, kind = kind, shape = r.shape, preds = {}, mod = mod }
    index[r.id] = #nodes
    -- layers that returned this very tensor follow it, in the order they ran
    for _, p in ipairs(passthrough[r.id] or {}) do
      nodes[#nodes + 1] = { id = {}, name = p.name, kind = p.kind, shape = r.shape, preds = { index[r.id] }, mod = p.mod,
                            manual = true }
      index[r.id] = #nodes
    end
  end
  for _, r in ipairs(records) do
    if dep[r.id] then
      if r.id == xid then add_node(r, "input", "input")
      elseif owner[r.id] then add_node(r, owner[r.id].name, owner[r.id].kind, owner[r.id].mod)
      elseif not inside[r.id] then
        local n = 0
        for _, i in ipairs(r.inputs) do if dep[i] then n = n + 1 end end
        if n >= 2 then add_node(r, r.op, "op")
        elseif r.op then   -- a functional op outside any module: x:relu(), x:flatten(2)
          local op = r.op
          if op == "strided" or op == "view" or op == "reshape" then op = #r.shape == 2 and "flatten" or "view" end
          add_node(r, op, "fn")
        end
      end
    end
  end
  if not index[records[#records].id] then add_node(records[#records], "output", "op") end
  -- the model's output is the last edge's shape nowhere: its box says it
  nodes[index[records[#records].id]].is_output = true
  -- edges: nearest visible ancestors through invisible records
  local memo = {}
  local function ancestors(id)
    if memo[id] then return memo[id] end
    local set = {}
    local r = byid[id]
    for _, i in ipairs(r and r.inputs or {}) do
      if dep[i] then
        if index[i] then set[i] = true
        else for a in pairs(ancestors(i)) do set[a] = true end end
      end
    end
    memo[id] = set
    return set
  end
  local edges = {}
  for k, n in ipairs(nodes) do
    local preds = n.preds
    if not n.manual then
      preds = {}
      for a in pairs(ancestors(n.id)) do preds[#preds + 1] = index[a] end
      table.sort(preds)
    end
    n.preds = preds
    for _, p in ipairs(preds) do edges[#edges + 1] = { from = p, to = k } end
  end
  -- layout: rows by longest path from the input; within a row the node with the longest
  -- way still to go (the main path) comes first, so side branches sit to its right
  local rows = {}
  for _, n in ipairs(nodes) do
    local r = 1
    for _, p in ipairs(n.preds) do r = math.max(r, nodes[p].row + 1) end
    n.row = r
    n.height = 0
    rows[r] = rows[r] or {}
    rows[r][#rows[r] + 1] = n
  end
  for k = #nodes, 1, -1 do
    for _, p in ipairs(nodes[k].preds) do nodes[p].height = math.max(nodes[p].height, nodes[k].height + 1) end
  end
  for _, r in ipairs(rows) do
    for i, n in ipairs(r) do n.order = i end
    table.sort(r, function(a, b) if a.height ~= b.height then return a.height > b.height end return a.order < b.order end)
    for i, n in ipairs(r) do n.col = i end
  end
  local ncols = 1
  for _, r in ipairs(rows) do ncols = math.max(ncols, #r) end
  -- long edges (skipping rows) get lanes beside the boxes
  local lanes = 0
  for _, e in ipairs(edges) do
    if nodes[e.to].row - nodes[e.from].row > 1 then lanes = lanes + 1; e.lane = lanes end
  end
  local self = setmetatable({ nodes = nodes, edges = edges, rows = #rows, cols = ncols, model = model, direction = direction,
                              scale = style.scale_of(opts), kind = "diagram", title = model.kind }, Diagram)
  self:layout_boxes(ncols, #rows, lanes)
  return self
end

local function shape_text(s) return "[" .. table.concat(s, ",") .. "]" end
local function title(n)
  if n.kind == "input" or n.kind == "op" then return n.name end
  if n.kind == "fn" then return n.name .. " (functional)" end
  return n.name .. " (" .. n.kind .. ")"
end

local function count(n)
  if n >= 1e6 then return string.format("%.2fM", n / 1e6) end
  if n >= 1e4 then return string.format("%.1fk", n / 1e3) end
  return tostring(math.floor(n))
end

local function pair_text(p) return type(p) == "table" and (p[1] == p[2] and tostring(p[1]) or p[1] .. "x" .. p[2]) or tostring(p) end

-- the detail lines of a node, as Netron shows them: kernel/stride/padding, channels, params
local function details(n)
  local m, out = n.mod, {}
  if n.kind == "input" then return { "input " .. shape_text(n.shape) } end
  if n.is_output and n.shape then
    local inner = details({ mod = m, kind = n.kind, preds = n.preds, name = n.name, shape = n.shape })
    inner[#inner + 1] = "output " .. shape_text(n.shape)
    return inner
  end
  if not m then
    if n.kind == "op" and #n.preds > 1 then out[1] = "merges " .. #n.preds .. " inputs" end
    return out
  end
  if m.kernel_size then
    local ks = m.kernel_size
    out[#out + 1] = string.format("kernel %s  stride %s  pad %s", type(ks) == "table" and (ks[1] .. "x" .. ks[2]) or ks,
      pair_text(m.stride or ks), pair_text(m.padding or 0))
  end
  if m.in_channels then out[#out + 1] = string.format("channels %d → %d", m.in_channels, m.out_channels)
  elseif m.in_features then out[#out + 1] = string.format("features %d → %d", m.in_features, m.out_features)
  elseif m.num_features then out[#out + 1] = string.format("%d features", m.num_features) end
  if m.p and n.kind:find("Dropout") then out[#out + 1] = string.format("p = %g (identity in eval)", m.p) end
  local np = 0
  for _, p in m:named_parameters() do np = np + p:numel() end
  if np > 0 then out[#out + 1] = count(np) .. " params" end
  return out
end

-- box sizes from the measured text, then positions by rank (row) and order (col)
function Diagram:layout_boxes(ncols, nrows, lanes)
  local ts, ds = style.label_size, style.tick_size
  local _, th = Canvas.measure("Ag", ts, true)
  local _, dh = Canvas.measure("Ag", ds)
  local bw = 120
  for _, n in ipairs(self.nodes) do
    n.title, n.lines = title(n), details(n)
    bw = math.max(bw, Canvas.measure(n.title, ts, true) + 12)
    for _, l in ipairs(n.lines) do bw = math.max(bw, Canvas.measure(l, ds) + 12) end
  end
  local maxl = 0
  for _, n in ipairs(self.nodes) do maxl = math.max(maxl, #n.lines) end
  local bh = 6 + th + maxl * dh + 6
  self.box_w, self.box_h, self.title_h, self.line_h = bw, bh, th, dh
  -- room for the shape labels on the edges
  local _, sh = Canvas.measure("0", ds)
  local sw = 0
  for _, n in ipairs(self.nodes) do sw = math.max(sw, Canvas.measure(shape_text(n.shape), ds)) end
  local lane_w = 10
  if self.direction == "TB" then
    -- each box as tall as its text, each row as tall as its tallest box
    local gap = ROW_GAP + sh
    local rh = {}
    for _, n in ipairs(self.nodes) do
      n.h = 6 + th + #n.lines * dh + 6
      rh[n.row] = math.max(rh[n.row] or 0, n.h)
    end
    local ry, y = {}, MARGIN
    for r = 1, nrows do ry[r] = y; y = y + (rh[r] or 0) + gap end
    for _, n in ipairs(self.nodes) do
      n.x = MARGIN + (n.col - 1) * (bw + COL_GAP)
      n.y = ry[n.row]
    end
    self.gap = gap
    -- lanes on the right, and room for the shape label where an edge leaves a box for its lane
    self.width = MARGIN * 2 + ncols * bw + (ncols - 1) * COL_GAP + (lanes > 0 and math.max(math.min(lanes, 6) * lane_w + 10, sw + 8) or 0)
    self.height = y - gap + MARGIN
    self.lane_x0 = MARGIN + ncols * bw + (ncols - 1) * COL_GAP + 10
  else
    local gap = math.max(ROW_GAP, sw + 10)
    for _, n in ipairs(self.nodes) do
      n.x = MARGIN + (n.row - 1) * (bw + gap)
      n.y = MARGIN + (n.col - 1) * (bh + COL_GAP)
      n.h = bh
    end
    self.gap = gap
    self.width = MARGIN * 2 + nrows * bw + (nrows - 1) * gap
    self.height = MARGIN * 2 + ncols * bh + (ncols - 1) * COL_GAP + (lanes > 0 and math.min(lanes, 6) * lane_w + 10 or 0)
    self.lane_y0 = MARGIN + ncols * bh + (ncols - 1) * COL_GAP + 10
  end
end


-- polyline points of an edge (points, top-left origin) and where its shape label goes
function Diagram:route(e)
  local a, b = self.nodes[e.from], self.nodes[e.to]
  local W, H = self.box_w, a.h
  if self.direction == "TB" then
    local ax, ay = a.x + W / 2, a.y + H
    local bx, by = b.x + W / 2, b.y
    if not e.lane then
      if ax == bx then return { ax, ay, bx, by }, ax + 4, ay + 2 end
      local my = by - self.gap / 2 + 4
      return { ax, ay, ax, my, bx, my, bx, by }, ax + 4, ay + 2
    end
    local lx = self.lane_x0 + (e.lane % 6) * 10
    return { a.x + W, a.y + H / 2, lx, a.y + H / 2, lx, b.y + b.h / 2, b.x + W, b.y + b.h / 2 }, a.x + W + 4, a.y + H / 2 + 2
  end
  local ax, ay = a.x + W, a.y + H / 2
  local bx, by = b.x, b.y + H / 2
  if not e.lane then
    if ay == by then return { ax, ay, bx, by }, ax + 4, ay - 12 end
    local mx = bx - self.gap / 2
    return { ax, ay, mx, ay, mx, by, bx, by }, ax + 4, ay - 12
  end
  local ly = self.lane_y0 + (e.lane % 6) * 10
  return { a.x + W / 2, a.y + H, a.x + W / 2, ly, b.x + W / 2, ly, b.x + W / 2, b.y + H }, a.x + W / 2 + 4, a.y + H + 2
end

-- the drawing: edges with arrowheads and shape labels, then the boxes
function Diagram:canvas()
  local cv = Canvas.new(self.width, self.height, { scale = self.scale, bg = 1 })
  local W, H = self.box_w, self.box_h
  for _, e in ipairs(self:edge_list()) do
    local pts, lx, ly = self:route(e)
    cv:line(pts, { 0.40, 0.40, 0.40 }, 1)
    local n = #pts
    local ex, ey, px, py = pts[n - 1], pts[n], pts[n - 3], pts[n - 2]
    local dx, dy = ex - px, ey - py
    local len = math.sqrt(dx * dx + dy * dy)
    if len > 0 then
      dx, dy = dx / len, dy / len
      cv:line({ ex, ey, ex - 6 * dx - 3 * dy, ey - 6 * dy + 3 * dx, ex - 6 * dx + 3 * dy, ey - 6 * dy - 3 * dx },
        { 0.30, 0.30, 0.30 }, 0, { fill = true })
    end
    cv:text(shape_text(self.nodes[e.from].shape), lx, ly, { size = style.tick_size, color = style.muted })
  end
  for k, n in ipairs(self.nodes) do
    cv:rect(n.x, n.y, W, n.h, COLORS[n.kind] or COLORS.default)
    cv:box(n.x, n.y, W, n.h, { 0.3, 0.3, 0.3 }, 0.8)
    local name = "node " .. k
    cv:panel(name, n.x, n.y, W, n.h)
    cv:text(n.title, n.x + 6, n.y + 5, { size = style.label_size, bold = true, panel = name })
    for i, l in ipairs(n.lines) do
      cv:text(l, n.x + 6, n.y + 5 + self.title_h + (i - 1) * self.line_h, { size = style.tick_size, color = { 0.25, 0.25, 0.25 }, panel = name })
    end
  end
  return cv
end

--- the diagram as a (3,H,W) image (width x height points at the diagram's scale)
function Diagram:image()
  local cv = self:canvas()
  self.layout = cv.layout
  return cv:figure("diagram", self.title)
end

function Diagram:edge_list() return self.edges end

--- the detail lines of node k as its box shows them (kernel, stride, channels, parameters)
function Diagram:node_details(k) return details(self.nodes[k]) end

function Diagram:save_png(path) return require("nnvis.io").save_image(self:image(), path) end

local function xml(s) return (tostring(s):gsub("&", "&amp;"):gsub("<", "&lt;"):gsub(">", "&gt;"):gsub('"', "&quot;")) end

--- the diagram as SVG text: Cairo's drawing (the same as the PNG's), with a hover region per
--- node (<g class="node"> holding a <title>: name, type, details, output shape)
function Diagram:svg()
  if self._svg then return self._svg end   -- Cairo numbers glyphs per run: made once, so saves match
  local svg = self:canvas():svg()
  local hover = { '<g id="nodes" fill-opacity="0">' }
  for k, n in ipairs(self.nodes) do
    local tip = { n.title }
    for _, l in ipairs(n.lines) do tip[#tip + 1] = l end
    tip[#tip + 1] = "output " .. shape_text(n.shape)
    hover[#hover + 1] = string.format('<g class="node" id="n%d"><title>%s</title><rect x="%g" y="%g" width="%g" height="%g"/></g>',
      k, xml(table.concat(tip, "\n")), n.x, n.y, self.box_w, n.h)
  end
  hover[#hover + 1] = "</g>\n</svg>"
  self._svg = svg:gsub("</svg>%s*$", function() return table.concat(hover, "\n") end)
  return self._svg
end

--- the diagram as PDF bytes
function Diagram:pdf() return self:canvas():pdf() end

function Diagram:save_svg(path) return require("nnvis.draw.figure").write_file(path, self:svg(), "save_svg") end

function Diagram:describe()
  return string.format("[nnvis figure: diagram of %s, %d boxes, %d edges, %dx%d]", tostring(self.title or "a model"),
    #self.nodes, #self.edges, math.ceil(self.width * self.scale), math.ceil(self.height * self.scale))
end

--- the diagram as Graphviz DOT text
function Diagram:dot()
  local out = { "digraph model {", '  rankdir=' .. self.direction .. '; node [shape=box, style="rounded,filled", fontname="DejaVu Sans"];' }
  for k, n in ipairs(self.nodes) do
    local c = COLORS[n.kind] or COLORS.default
    local lines = { title(n) }
    for _, l in ipairs(details(n)) do lines[#lines + 1] = l end
    lines[#lines + 1] = shape_text(n.shape)
    out[#out + 1] = string.format('  n%d [label="%s", fillcolor="#%02x%02x%02x"];', k, (table.concat(lines, "\\n"):gsub('"', '\\"')), math.floor(c[1] * 255), math.floor(c[2] * 255), math.floor(c[3] * 255))
  end
  for _, e in ipairs(self.edges) do out[#out + 1] = string.format("  n%d -> n%d;", e.from, e.to) end
  out[#out + 1] = "}"
  return table.concat(out, "\n")
end

setmetatable(M, { __call = function(_, ...) return M.diagram(...) end })
return M
