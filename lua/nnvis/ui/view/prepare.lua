-- nnvis.ui.view.prepare — what `nnvis view MODEL [--input IMAGE]` serves: a model's graph as data for a
-- page that draws it (Netron's way: zoom, pan, scopes that fold, search, a node's details).
-- prepare() computes everything once, in the caller's Lua state, into a folder the board's
-- server then serves as it is (its server thread runs no model): graph.json, and with an input
-- the feature maps and the Grad-CAM of the top class at every layer, as PNG files.
--
-- graph.json: {title, kind, params, input_shape, prediction = {class, name, probability},
--   nodes = [{id, name, kind, shape, preds = [ids], scope = "layer4.1", details = [lines],
--             params, config = {...}, weights = [{name, shape, numel, mean, std, min, max,
--             zeros, hist = {lo, hi, counts}}], maps = "maps/7.png", cam = "cam/7.png"}]}
local core = require "nnvis.core"
local json = require "nnvis.io.json"
local util = require "nnvis.tensor.util"

local M = {}

local function write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local function stats(name, p)
  local t = p:detach():contiguous()
  local n = t:numel()
  local lo, hi = t:min():item(), t:max():item()
  local counts = t:histc(30, lo, hi > lo and hi or lo + 1):values()
  for i, c in ipairs(counts) do counts[i] = math.floor(c) end
  return { name = name, shape = t:shape(), numel = n, mean = t:mean():item(), std = n > 1 and t:std():item() or 0,
           min = lo, max = hi, zeros = t:eq(0):sum():item() / n, hist = { lo = lo, hi = hi, counts = counts } }
end

-- a module's hyperparameters as plain values (what its config() gives, numbers and strings)
local function config_of(m)
  local ok, c = pcall(function() return m:config() end)
  if not ok or type(c) ~= "table" then return {} end
  local out = {}
  for k, v in pairs(c) do
    if type(v) == "number" or type(v) == "string" or type(v) == "boolean" then out[k] = v
    elseif type(v) == "table" then out[k] = table.concat(v, "x") end
  end
  return out
end

--- prepare(model, opts) -> dir: opts.input (a batch (1,C,H,W) or a shape {1,3,224,224}),
--- opts.image (the picture shown under the maps, (3,H,W) in [0,1]; default the input rescaled),
--- opts.classes (names by class id), opts.dir (default a new temporary folder), opts.title.
--- With an input tensor, every layer with a (N,C,h,w) output gets its feature maps (its first
--- 32 channels) and the Grad-CAM of the top class at that layer (one forward and one backward
--- for all layers)
function M.prepare(model, opts)
  opts = util.check_opts("view", opts, { "input", "image", "classes", "dir", "title" })
  local input = opts.input or { 1, 3, 224, 224 }
  local x = util.is_tensor(input) and input or nil
  local dir = opts.dir
  dir = dir or util.temp_dir("nnvis-view-")
  for _, sub in ipairs { "/maps", "/cam" } do assert(core.mkdirs(dir .. sub)) end
  local d = require("nnvis.draw.diagram").diagram(model, input)
  local nodes, total = {}, 0
  for _, p in ipairs(model:parameters()) do total = total + p:numel() end
  local by_name = {}
  for k, n in ipairs(d.nodes) do
    local e = { id = k, name = n.name, kind = n.kind, shape = n.shape and setmetatable(n.shape, nil) or nil,
                preds = setmetatable(n.preds or {}, json.array_mt), details = setmetatable(d:node_details(k), json.array_mt),
                weights = setmetatable({}, json.array_mt), params = 0 }
    e.scope = n.mod and (n.name:match("^(.*)%.[^.]+$") or "") or ""
    if n.mod then
      e.config = config_of(n.mod)
      for pname, p in n.mod:named_parameters() do
        e.params = e.params + p:numel()
        e.weights[#e.weights + 1] = stats(pname, p)
      end
      by_name[n.name] = e
    end
    nodes[k] = e
  end
  local graph = { title = opts.title or model.name or model.kind, kind = model.kind, params = total,
                  input_shape = x and x:shape() or input, nodes = nodes }
  if x then
    local image = require "nnvis.draw.image"
    local names = {}
    for name in pairs(by_name) do names[#names + 1] = name end
    table.sort(names)
    local cap = require("nnvis.inspect.capture").capture(model, x, { layers = names, grads = true })
    local out = util.first_tensor(cap.output)
    local p = util.probs(out:reshape(1, -1))
    local prob, cls = p:max(2)
    cls = math.floor(cls:item())
    graph.prediction = { class = cls, probability = prob:item(), name = opts.classes and opts.classes[cls] or nil }
    local shown = opts.image or image.normalize(x:select(1, 1))
    write(dir .. "/input.png", core.png_encode(image.to_rgb(shown):contiguous()))
    graph.image = "input.png"
    for name, e in pairs(by_name) do
      local c = rawget(cap, name)
      local A = c and c.output
      if A and A:dim() == 4 and A:size(3) > 1 and A:size(4) > 1 then
        local k = math.min(32, A:size(2))
        local maps = A:select(1, 1):narrow(1, 1, k):unsqueeze(2)          -- (k,1,h,w)
        write(dir .. "/maps/" .. e.id .. ".png",
          core.png_encode(image.grid(maps, { normalize = true, padding = 1 }):contiguous()))
        e.maps = "maps/" .. e.id .. ".png"
        if c.grad then
          -- Grad-CAM at this layer, as nv.cam.gradcam computes it, from the capture's A and G
          local map, raw = require("nnvis.explain.cam").gradcam_of(A, c.grad, x)
          if raw:max():item() > 0 then
            local ov = image.overlay(image.to_rgb(shown), map:select(1, 1), { alpha = 0.5 })
            write(dir .. "/cam/" .. e.id .. ".png", core.png_encode(ov:contiguous()))
            e.cam = "cam/" .. e.id .. ".png"
          end
        end
      end
    end
  end
  write(dir .. "/graph.json", json.encode(graph))
  return dir, graph
end

return M
