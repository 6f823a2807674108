-- nnvis.diagram — a drawn picture of a model: boxes with name, type and output shape, and
-- arrows following the real data flow, read from the autograd graph of one forward pass,
-- so residual branches and merges (add, cat, ...) appear as they run.  Written as PNG and
-- SVG by nnvis itself (no Graphviz), and as DOT text for those who want Graphviz.
--   local d = nv.diagram(model, {1, 3, 64, 64}, {depth = 2})
--   d:save_png("resnet.png"); d:save_svg("resnet.svg"); print(d:dot())
local core = require "nnvis.core"
local check_opts = require("nnvis.util").check_opts
local Canvas = require "nnvis.canvas"

local M = {}

local BOX_W, BOX_H, ROW_GAP, COL_GAP, MARGIN = 230, 34, 22, 26, 16
local COLORS = {
  input = { 0.85, 0.92, 1.0 }, Conv2d = { 0.80, 0.90, 0.80 }, Linear = { 0.95, 0.85, 0.75 },
  BatchNorm2d = { 0.93, 0.93, 0.80 }, BatchNorm1d = { 0.93, 0.93, 0.80 }, ReLU = { 0.92, 0.85, 0.92 },
  MaxPool2d = { 0.80, 0.87, 0.93 }, AvgPool2d = { 0.80, 0.87, 0.93 }, AdaptiveAvgPool2d = { 0.80, 0.87, 0.93 },
  op = { 1.0, 0.95, 0.75 }, default = { 0.90, 0.90, 0.90 },
}

local util = require "nnvis.util"

-- a diagram is a figure (nnvis.figure): png(), svg(), save(path), mimebundle(), tostring
local Figure = require("nnvis.figure").Figure
local Diagram = require("nnvis.class")("Diagram", Figure)

--- nv.diagram(model, input_or_shape [, opts]) -> diagram.  opts.depth: show modules down to
--- that depth (deeper ones are folded into their ancestor's box; default: every leaf).
function M.diagram(model, input, opts)
  opts = check_opts("diagram", opts, { "depth" })
  local maxd = opts.depth or math.huge
  local x = getmetatable(input) == core.tensor_mt and input or core.randn(input)
  x = x:detach():set_requires_grad(true)
  -- modules shown as boxes: at the depth limit, or leaves above it
  local owner, handles = {}, {}
  for name, m in model:named_modules() do
    if name ~= "" then
      local d = util.depth(util.tree_path(name, m))
      local leaf = true
      for _ in m:named_children() do leaf = false; break end
      if d == maxd or (leaf and d < maxd) then
        handles[#handles + 1] = m:register_forward_hook(function(mod, inp, out)
          if getmetatable(out) == core.tensor_mt then
            local id = core.tensor_id(out)
            local in_id = getmetatable(inp) == core.tensor_mt and core.tensor_id(inp) or nil
            if in_id ~= id and not owner[id] then
              owner[id] = { name = name, kind = mod.kind or "Module", out = out, in_id = in_id, folded = not leaf }
            end
          end
        end)
      end
    end
  end
  local ok, out = pcall(require("nnvis.util").with_mode, model, false, model, x)
  for _, h in ipairs(handles) do h:remove() end
  if not ok then error("diagram: the forward pass failed: " .. tostring(out), 2) end
  out = require("nnvis.util").first_tensor(out)
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
    if o.folded and o.in_id then
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
  local function add_node(r, label, kind)
    nodes[#nodes + 1] = { id = r.id, name = label, kind = kind, shape = r.shape, preds = {} }
    index[r.id] = #nodes
  end
  for _, r in ipairs(records) do
    if dep[r.id] then
      if r.id == xid then add_node(r, "input", "input")
      elseif owner[r.id] then add_node(r, owner[r.id].name, owner[r.id].kind)
      else
        local n = 0
        for _, i in ipairs(r.inputs) do if dep[i] then n = n + 1 end end
        if n >= 2 and not inside[r.id] then add_node(r, r.op, "op") end
      end
    end
  end
  if not index[records[#records].id] then add_node(records[#records], "output", "op") end
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
    local preds = {}
    for a in pairs(ancestors(n.id)) do preds[#preds + 1] = index[a] end
    table.sort(preds)
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
  -- long edges (skipping rows) get lanes on the right
  local lanes = 0
  for _, e in ipairs(edges) do
    if nodes[e.to].row - nodes[e.from].row > 1 then lanes = lanes + 1; e.lane = lanes end
  end
  local lane_w = 10
  for _, n in ipairs(nodes) do
    n.x = MARGIN + (n.col - 1) * (BOX_W + COL_GAP)
    n.y = MARGIN + (n.row - 1) * (BOX_H + ROW_GAP)
  end
  local self = setmetatable({ nodes = nodes, edges = edges, rows = #rows, cols = ncols, model = model,
                              kind = "diagram", title = model.kind }, Diagram)
  self.width = MARGIN * 2 + ncols * BOX_W + (ncols - 1) * COL_GAP + (lanes > 0 and math.min(lanes, 6) * lane_w + 10 or 0)
  self.height = MARGIN * 2 + #rows * BOX_H + (#rows - 1) * ROW_GAP
  self.lane_x0 = MARGIN + ncols * BOX_W + (ncols - 1) * COL_GAP + 10
  return self
end

local function shape_text(s) return "[" .. table.concat(s, ",") .. "]" end
local function title(n)
  if n.kind == "input" or n.kind == "op" then return n.name end
  return n.name .. " (" .. n.kind .. ")"
end

-- polyline points of an edge (pixel coordinates, top-left origin)
function Diagram:route(e)
  local a, b = self.nodes[e.from], self.nodes[e.to]
  local ax, ay = a.x + BOX_W // 2, a.y + BOX_H
  local bx, by = b.x + BOX_W // 2, b.y
  if not e.lane then
    if ax == bx then return { ax, ay, bx, by } end
    local my = ay + ROW_GAP // 2
    return { ax, ay, ax, my, bx, my, bx, by }
  end
  local lx = self.lane_x0 + (e.lane % 6) * 10
  return { a.x + BOX_W, a.y + BOX_H // 2, lx, a.y + BOX_H // 2, lx, b.y + BOX_H // 2, b.x + BOX_W, b.y + BOX_H // 2 }
end

--- the diagram as a (3,H,W) image
function Diagram:image()
  local cv = Canvas.new(self.width, self.height, 1)
  for _, e in ipairs(self:edge_list()) do
    local pts = self:route(e)
    cv:line(pts, { 0.35, 0.35, 0.35 }, 1)
    -- arrowhead at the end, pointing along the last segment
    local n = #pts
    local ex, ey, px, py = pts[n - 1], pts[n], pts[n - 3], pts[n - 2]
    if ey > py then cv:line({ ex - 4, ey - 5, ex, ey, ex + 4, ey - 5 }, { 0.2, 0.2, 0.2 }, 1)
    elseif ex < px then cv:line({ ex + 5, ey - 4, ex, ey, ex + 5, ey + 4 }, { 0.2, 0.2, 0.2 }, 1) end
  end
  for _, n in ipairs(self.nodes) do
    cv:rect(n.x + 1, n.y + 1, BOX_W, BOX_H, COLORS[n.kind] or COLORS.default)
    cv:box(n.x + 1, n.y + 1, BOX_W, BOX_H, { 0.3, 0.3, 0.3 })
    local t = title(n)
    if #t > 37 then t = t:sub(1, 36) .. "~" end
    cv:text(n.x + 6, n.y + 6, t, { 0, 0, 0 })
    cv:text(n.x + 6, n.y + 19, shape_text(n.shape), { 0.25, 0.25, 0.25 })
  end
  return cv:tensor()
end

function Diagram:edge_list() return self.edges end

function Diagram:save_png(path) return require("nnvis.io").save_image(self:image(), path) end

local function xml(s) return (tostring(s):gsub("&", "&amp;"):gsub("<", "&lt;"):gsub(">", "&gt;"):gsub('"', "&quot;")) end

--- the diagram as SVG text (same layout as the PNG)
function Diagram:svg()
  local out = {}
  out[1] = string.format('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" ' ..
    'font-family="monospace" font-size="11">', self.width, self.height, self.width, self.height)
  out[#out + 1] = '<defs><marker id="arrow" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto">' ..
    '<path d="M0,0 L8,4 L0,8 z" fill="#333"/></marker></defs>'
  out[#out + 1] = '<rect width="100%" height="100%" fill="white"/>'
  for _, e in ipairs(self.edges) do
    local p = self:route(e)
    local d = { string.format("M%d,%d", p[1], p[2]) }
    for i = 3, #p, 2 do d[#d + 1] = string.format("L%d,%d", p[i], p[i + 1]) end
    out[#out + 1] = string.format('<path class="edge" data-from="%d" data-to="%d" d="%s" fill="none" stroke="#555" ' ..
      'marker-end="url(#arrow)"/>', e.from, e.to, table.concat(d, " "))
  end
  for k, n in ipairs(self.nodes) do
    local c = COLORS[n.kind] or COLORS.default
    out[#out + 1] = string.format('<g class="node" id="n%d"><rect x="%d" y="%d" width="%d" height="%d" rx="3" ' ..
      'fill="rgb(%d,%d,%d)" stroke="#444"/><text x="%d" y="%d">%s</text><text x="%d" y="%d" fill="#444">%s</text></g>',
      k, n.x, n.y, BOX_W, BOX_H, math.floor(c[1] * 255), math.floor(c[2] * 255), math.floor(c[3] * 255),
      n.x + 6, n.y + 14, xml(title(n)), n.x + 6, n.y + 28, xml(shape_text(n.shape)))
  end
  out[#out + 1] = "</svg>"
  return table.concat(out, "\n")
end

function Diagram:save_svg(path) return require("nnvis.figure").write_file(path, self:svg()) end

function Diagram:describe()
  return string.format("[nnvis figure: diagram of %s, %d boxes, %d edges, %dx%d]", tostring(self.title or "a model"),
    #self.nodes, #self.edges, self.width, self.height)
end

--- the diagram as Graphviz DOT text
function Diagram:dot()
  local out = { "digraph model {", '  rankdir=TB; node [shape=box, style="rounded,filled", fontname="monospace"];' }
  for k, n in ipairs(self.nodes) do
    local c = COLORS[n.kind] or COLORS.default
    out[#out + 1] = string.format('  n%d [label="%s\\n%s", fillcolor="#%02x%02x%02x"];', k, title(n):gsub('"', '\\"'),
      shape_text(n.shape), math.floor(c[1] * 255), math.floor(c[2] * 255), math.floor(c[3] * 255))
  end
  for _, e in ipairs(self.edges) do out[#out + 1] = string.format("  n%d -> n%d;", e.from, e.to) end
  out[#out + 1] = "}"
  return table.concat(out, "\n")
end

setmetatable(M, { __call = function(_, ...) return M.diagram(...) end })
return M
