-- nnvis.ui.report — one self-contained HTML page about one model and one input batch: the
-- summary table, the structure diagram (SVG; a click on a layer jumps to its section),
-- per-layer activation and gradient statistics with warnings (dead units, vanishing or
-- exploding gradients, non-finite values), feature maps of chosen layers, class activation
-- maps of the predicted classes with their deletion and insertion AUC, training curves when
-- a history is given, and weight histograms.  No network and no external files: every
-- picture is embedded as a data: URI, the style and the little script are inline.
--
--   local r = nv.report(model, x, {classes = names, history = hist})
--   r:save("report.html")          -- or r:html(), r:document(); in Jupyter it shows inline
--
-- A report is a figure (nnvis.figure): html() is a fragment that can sit in a notebook
-- output, document() the full page that save(".html") writes, text() a one-line summary
-- of its findings, image() the CAM panel (or the summary when there is none).
local core = require "nnvis.core"
local class = require "nnvis.tensor.class"
local util = require "nnvis.tensor.util"
local Figure = require("nnvis.draw.figure").Figure

local M = {}

local Report = class("Report", Figure)
M.Report = Report

M.known_options = { "cam_layer", "cam_methods", "classes", "feature_layers", "grad_explode", "grad_vanish",
  "dead_share", "histograms", "history", "image", "max_channels", "max_histograms", "progress", "samples", "steps",
  "target", "title" }

local function esc(s)
  return (tostring(s):gsub("&", "&amp;"):gsub("<", "&lt;"):gsub(">", "&gt;"):gsub('"', "&quot;"))
end

local function shape_str(s) return "(" .. table.concat(s, ",") .. ")" end

local function is_tensor(x) return getmetatable(x) == core.tensor_mt end

-- an id usable in a URL fragment and as an HTML id
local function anchor(name) return "layer-" .. tostring(name):gsub("[^%w_%-]", "-") end

local function data_uri(img)
  return "data:image/png;base64," .. require("nnvis.draw.show").base64(core.png_encode(img:detach():contiguous()))
end

-- shown at the figure's size in points (CSS pixels): a figure drawn at 2 pixels per point
-- stays sharp on high-density screens and as large as intended on the others
local function img_tag(img, alt, cls)
  local lay = require("nnvis.draw.figure").layout(img)
  local sc = lay and lay.scale or 1
  return string.format('<img class="%s" alt="%s" src="%s" width="%d" height="%d">', cls or "fig", esc(alt),
    data_uri(img), math.floor(img:size(3) / sc + 0.5), math.floor(img:size(2) / sc + 0.5))
end

local function fmt(v)
  if v == nil then return "--" end
  if v ~= v then return "NaN" end
  if v == math.huge or v == -math.huge then return v > 0 and "inf" or "-inf" end
  return string.format("%.4g", v)
end

local leaf_layers = util.leaves

-- the warnings of one statistics row, given the largest gradient norm over all layers
local function warnings_of(r, gmax, opts)
  local w = {}
  local finite = r.mean == r.mean and r.max < math.huge and r.min > -math.huge
  if not finite then w[#w + 1] = { "nonfinite", "non-finite activations (NaN or inf)" } end
  if r.dead and r.dead >= (opts.dead_share or 0.5) then
    w[#w + 1] = { "dead", string.format("dead units: %.0f%% of the channels are 0 for every sample and position", 100 * r.dead) }
  elseif r.zeros >= 0.99 then
    w[#w + 1] = { "dead", string.format("%.1f%% of the activations are exactly 0", 100 * r.zeros) }
  end
  if r.grad_norm then
    if r.grad_norm ~= r.grad_norm or r.grad_norm == math.huge then
      w[#w + 1] = { "exploding", "non-finite gradient" }
    elseif r.grad_norm > (opts.grad_explode or 1e3) then
      w[#w + 1] = { "exploding", string.format("exploding gradient: norm %s > %s", fmt(r.grad_norm), fmt(opts.grad_explode or 1e3)) }
    elseif gmax > 0 and r.grad_norm < (opts.grad_vanish or 1e-6) * gmax then
      w[#w + 1] = { "vanishing", string.format("vanishing gradient: norm %s, under %s of the largest layer's (%s)",
        fmt(r.grad_norm), fmt(opts.grad_vanish or 1e-6), fmt(gmax)) }
    end
  end
  return w
end

-- default feature-map layers: the first, a middle and the last leaf layer with a spatial output
local function default_feature_layers(stats)
  local spatial = {}
  for _, r in ipairs(stats.rows) do if #r.shape == 4 and r.shape[3] > 1 then spatial[#spatial + 1] = r.name end end
  if #spatial <= 3 then return spatial end
  return { spatial[1], spatial[(#spatial + 1) // 2], spatial[#spatial] }
end

local function class_name(classes, id)
  if type(classes) == "table" and classes[id] then return tostring(classes[id]) end
  return "class " .. id
end

--- nv.report(model, x [, opts]) -> report (a figure): a self-contained HTML page about the
--- model and the input batch x (N,C,H,W), (N,features) or one image (C,H,W).  opts: title; classes (list of class
--- names, 1-based); history (what nv.train.fit returned: its curves are drawn); image (what
--- CAMs are laid over: (N,3,H,W) in [0,1], default x rescaled per sample); samples (CAMs
--- for the first 4 samples); cam_methods ({"gradcam"}; any nv.cam method); cam_layer (the
--- CAM layer, default the last spatial one); steps (16, for deletion/insertion); target (the
--- gradient statistics' target, default each sample's top class); feature_layers (default
--- the first, a middle and the last spatial layer; {} for none); max_channels (16);
--- histograms (true) and max_histograms (24); dead_share (0.5), grad_vanish (1e-6, relative
--- to the largest layer's gradient norm), grad_explode (1e3) set the warnings' thresholds.
--- r:save(path) writes the page; r.findings lists the warnings as {layer, kind, message}.
function M.report(model, x, opts)
  opts = util.check_opts("report", opts, M.known_options)
  if type(model) ~= "table" or not model.named_modules then error("report: expected an nv.nn.Module as argument 1", 2) end
  if not is_tensor(x) or x:dim() < 2 or x:dim() > 4 then
    error("report: expected an input batch (N,C,H,W) or (N,features), or one image (C,H,W), as argument 2, got " ..
      (is_tensor(x) and shape_str(x:shape()) or type(x)), 2)
  end
  if x:dim() == 3 then x = x:unsqueeze(1) end
  local r = Report("report", opts.title or ("report on " .. (model.kind or "a model")))
  r.model, r.x, r.opts = model, x, opts
  r:build()
  return r
end

-- everything is computed once, here; html() only assembles
function Report:build()
  local model, x, opts = self.model, self.x, self.opts
  local cam = require "nnvis.explain.cam"
  local summary, diagram = require "nnvis.inspect.summary", require "nnvis.draw.diagram"
  local capture, features = require "nnvis.inspect.capture", require "nnvis.inspect.features"
  local image, plot = require "nnvis.draw.image", require "nnvis.draw.plot"
  local was_training = model.training
  model:eval()
  local one = x:narrow(1, 1, 1)
  self.summary = summary.summary(model, one)
  local ok, d = pcall(diagram.diagram, model, one)
  self.diagram = ok and d or nil
  self.diagram_error = not ok and tostring(d) or nil

  -- activation and gradient statistics of every leaf layer over the whole batch
  local cap = capture.capture(model, x, { grads = true, target = opts.target })
  self.stats = require("nnvis.inspect.capture").stats(cap)
  local gmax = 0
  for _, row in ipairs(self.stats.rows) do
    if row.grad_norm and row.grad_norm == row.grad_norm and row.grad_norm < math.huge then gmax = math.max(gmax, row.grad_norm) end
  end
  self.findings = {}
  self.row_warnings = {}
  for _, row in ipairs(self.stats.rows) do
    local w = warnings_of(row, gmax, opts)
    self.row_warnings[row.name] = w
    for _, e in ipairs(w) do self.findings[#self.findings + 1] = { layer = row.name, kind = e[1], message = e[2] } end
  end

  -- predictions
  local out = cap.output          -- the capture's forward already gave the model's output
  self.predictions = {}
  if is_tensor(out) and out:dim() == 2 then
    util.check_classes("report", self.opts.classes, out:size(2))
    local p = util.probs(out)
    local pv, pi = p:max(2)
    for i = 1, x:size(1) do
      self.predictions[i] = { class = pi:get(i), prob = pv:get(i) }
    end
  end

  -- feature maps
  self.maps = {}
  for _, name in ipairs(opts.feature_layers or default_feature_layers(self.stats)) do
    local img = features.maps(model, one, name, { max_channels = opts.max_channels or 16 })
    self.maps[name] = img
  end

  -- CAMs of the predicted classes, with their deletion / insertion AUC
  self.cams = {}
  local n = math.min(opts.samples or 4, x:size(1))
  if n > 0 and #self.predictions > 0 and x:dim() == 4 then
    local xs = x:narrow(1, 1, n)
    local imgs = opts.image
    local ids = {}
    for i = 1, n do ids[i] = self.predictions[i].class end
    for _, method in ipairs(opts.cam_methods or { "gradcam" }) do
      if type(cam[method]) ~= "function" then error(string.format("report: '%s' is not an nv.cam method", tostring(method)), 3) end
      local said = {}
      local was = util.on_warning
      util.on_warning = function(msg) said[#said + 1] = msg end
      local ok_m, maps = pcall(cam[method], model, xs, { layer = opts.cam_layer, target = ids })
      util.on_warning = was
      for _, msg in ipairs(said) do
        self.findings[#self.findings + 1] = { layer = cam.explained_layer() or opts.cam_layer or "CAM", kind = "blank_cam",
                                              message = msg }
      end
      if not ok_m then
        self.cams[#self.cams + 1] = { method = method, error = tostring(maps) }
      else
        local del = cam.deletion(model, xs, maps, { steps = opts.steps or 16, target = ids })
        local ins = cam.insertion(model, xs, maps, { steps = opts.steps or 16, target = ids })
        local entry = { method = method, panels = {}, deletion = del.mean_auc, insertion = ins.mean_auc }
        for i = 1, n do
          local base = imgs and imgs:select(1, i) or image.normalize(xs:select(1, i))
          local ov = image.overlay(base, maps:select(1, i))
          entry.panels[i] = { image = ov, class = ids[i], prob = self.predictions[i].prob,
            deletion = del.auc[i], insertion = ins.auc[i] }
        end
        self.cams[#self.cams + 1] = entry
      end
    end
  end

  -- training curves
  if opts.history then
    local h = opts.history
    if type(h) ~= "table" or type(h.plot) ~= "function" then
      error("report: opts.history must be what nv.train.fit returned", 3)
    end
    local panels
    self.curves, panels = h:plot({ title = "training loss" })
    -- the page shows each panel as interactive HTML (the value under the pointer, zoom)
    self.curve_panels = {}
    for _, k in ipairs { "loss", "accuracy" } do
      if panels and panels[k] then self.curve_panels[#self.curve_panels + 1] = panels[k] end
    end
    self.history_text = tostring(h)
  end

  -- weight histograms
  self.histograms = {}
  if opts.histograms ~= false then
    local maxh = opts.max_histograms or 24
    for _, l in ipairs(leaf_layers(model)) do
      local w = rawget(l.module, "weight") or l.module.weight
      if is_tensor(w) and #self.histograms < maxh then
        self.histograms[l.name] = plot.histogram(w:detach(), { title = l.name .. ".weight " .. shape_str(w:shape()),
          xlabel = "value", width = 360, height = 220 })
        self.histograms[#self.histograms + 1] = l.name
      end
    end
  end
  if was_training then model:train() end
end

local CSS = [[
.nnvis-report{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;color:#1b1b1b;max-width:1200px;margin:0 auto;line-height:1.45}
.nnvis-report h1{font-size:1.6em;margin:.4em 0}
.nnvis-report h2{font-size:1.25em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
.nnvis-report h3{font-size:1.05em;margin:1.2em 0 .4em}
.nnvis-report nav a{margin-right:1em}
.nnvis-report table{border-collapse:collapse;font-size:.86em}
.nnvis-report td,.nnvis-report th{border-bottom:1px solid #e3e3e3;padding:2px 8px;text-align:right}
.nnvis-report td:first-child,.nnvis-report th:first-child{text-align:left}
.nnvis-report .warn{color:#a30000}
.nnvis-report tr.warn td{background:#fff1f0}
.nnvis-report .ok{color:#2c6e2c}
.nnvis-report .diagram{overflow:hidden;max-height:900px;border:1px solid #ddd}
.nnvis-report .diagram svg{width:100%;height:auto;max-height:900px}
.nnvis-report .diagram g.node{cursor:pointer}
.nnvis-report .diagram g.node:hover rect{stroke:#d62728;stroke-width:2}
.nnvis-report .panels{display:flex;flex-wrap:wrap;gap:12px}
.nnvis-report figure{margin:0}
.nnvis-report figcaption{font-size:.85em;max-width:260px}
.nnvis-report img.cam{width:224px;height:auto;image-rendering:pixelated}
.nnvis-report section.layer{border-left:3px solid #ddd;padding-left:10px;margin:1em 0}
.nnvis-report section.layer:target{border-left-color:#d62728;background:#fffbe6}
]]

-- a click on a diagram node opens the layer's section (ids in data-layer or in the map)
local SCRIPT = [[
(function(){
  var root=document.currentScript?document.currentScript.parentNode:document;
  var map=%s;
  var nodes=root.querySelectorAll('.diagram g.node');
  for(var i=0;i<nodes.length;i++){(function(g){
    var name=g.getAttribute('data-layer')||map[g.id];
    if(!name)return;
    g.setAttribute('data-layer',name);
    g.addEventListener('click',function(){var a='layer-'+name.replace(/[^A-Za-z0-9_\-]/g,'-');
      if(document.getElementById(a)){location.hash=a;}});
  })(nodes[i]);}
})();
]]

function Report:node_map()
  local parts = {}
  if self.diagram then
    local known = {}
    for _, row in ipairs(self.stats.rows) do known[row.name] = true end
    for k, n in ipairs(self.diagram.nodes or {}) do
      if n.name and known[n.name] then
        parts[#parts + 1] = string.format('"n%d":"%s"', k, tostring(n.name):gsub('[\\"]', "\\%0"))
      end
    end
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

--- the report as an HTML fragment (a <div> with its own style and script)
function Report:html()
  local o = {}
  local function add(s) o[#o + 1] = s end
  local s = self.summary
  add('<div class="nnvis-report">')
  add("<style>" .. CSS .. "</style>")
  add("<h1>" .. esc(self.title) .. "</h1>")
  add(string.format("<p>Input %s &middot; %s parameters &middot; %d layer%s with warnings</p>", shape_str(self.x:shape()),
    util.commas(s.total_params), self:warned_layers(), self:warned_layers() == 1 and "" or "s"))
  add('<nav><a href="#summary">Summary</a><a href="#diagram">Diagram</a><a href="#statistics">Statistics</a>' ..
    '<a href="#cams">Class activation maps</a>' .. (self.curves and '<a href="#training">Training</a>' or "") ..
    '<a href="#layers">Layers</a></nav>')

  add('<h2 id="summary">Summary</h2>')
  add(s:html())

  add('<h2 id="diagram">Diagram</h2>')
  if self.diagram then
    -- the page's width, zoomed with the wheel and panned by dragging (nnvis.interactive)
    local d = self.diagram
    add('<p>Click a layer to open its section; the wheel zooms, a drag pans, a double click resets.</p>' ..
      '<div class="diagram">' .. require("nnvis.draw.interactive").wrap(d:svg(), d.width, d.height, nil,
        { style = "display:block" }) .. "</div>")
  else
    add('<p class="warn">The diagram could not be drawn: ' .. esc(self.diagram_error) .. "</p>")
  end

  add('<h2 id="statistics">Activation and gradient statistics</h2>')
  add(string.format("<p>Over the batch of %d; gradients of each sample's %s.</p>", self.x:size(1),
    self.opts.target and "target score" or "top-class score"))
  if #self.findings == 0 then add('<p class="ok">No warnings: no dead layer, no vanishing or exploding gradient.</p>')
  else
    add('<ul class="findings">')
    for _, f in ipairs(self.findings) do
      add(string.format('<li class="warn"><a href="#%s">%s</a>: %s</li>', anchor(f.layer), esc(f.layer), esc(f.message)))
    end
    add("</ul>")
  end
  add('<table class="stats"><thead><tr><th>layer</th><th>output</th><th>mean</th><th>std</th><th>min</th><th>max</th>' ..
    "<th>zeros</th><th>dead</th><th>grad norm</th><th>grad mean |g|</th></tr></thead><tbody>")
  for _, row in ipairs(self.stats.rows) do
    local warn = #self.row_warnings[row.name] > 0
    add(string.format('<tr%s><td><a href="#%s">%s</a></td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td>' ..
      "<td>%.1f%%</td><td>%s</td><td>%s</td><td>%s</td></tr>", warn and ' class="warn"' or "", anchor(row.name),
      esc(row.name), shape_str(row.shape), fmt(row.mean), fmt(row.std), fmt(row.min), fmt(row.max), 100 * row.zeros,
      row.dead and string.format("%.1f%%", 100 * row.dead) or "--", fmt(row.grad_norm), fmt(row.grad_mean_abs)))
  end
  add("</tbody></table>")

  add('<h2 id="cams">Class activation maps of the predicted classes</h2>')
  if #self.cams == 0 then
    add(self.x:dim() ~= 4 and "<p>The input is not an image batch; no CAMs.</p>" or
      (#self.predictions == 0 and "<p>The model's output is not a score per class; no CAMs.</p>" or "<p>No samples asked for.</p>"))
  end
  for _, c in ipairs(self.cams) do
    if c.error then
      add(string.format('<h3>%s</h3><p class="warn">%s</p>', esc(c.method), esc(c.error)))
    else
      add(string.format("<h3>%s &mdash; deletion AUC %.3f (lower is better), insertion AUC %.3f (higher is better)</h3>",
        esc(c.method), c.deletion, c.insertion))
      add('<div class="panels">')
      for i, p in ipairs(c.panels) do
        add(string.format('<figure class="cam">%s<figcaption>sample %d: %s, p = %.3f<br>deletion %.3f, insertion %.3f</figcaption></figure>',
          img_tag(p.image, c.method .. " of sample " .. i, "cam"), i, esc(class_name(self.opts.classes, p.class)), p.prob,
          p.deletion, p.insertion))
      end
      add("</div>")
    end
  end

  if self.curves then
    add('<h2 id="training">Training</h2>')
    if self.curve_panels and #self.curve_panels > 0 then
      for _, img in ipairs(self.curve_panels) do
        add(require("nnvis.draw.figure").of(img):html() or img_tag(img, "training curves"))
      end
    else
      add(img_tag(self.curves, "training curves"))
    end
    add("<pre>" .. esc(self.history_text) .. "</pre>")
  end

  add('<h2 id="layers">Layers</h2>')
  for _, row in ipairs(self.stats.rows) do
    add(string.format('<section class="layer" id="%s"><h3>%s <small>%s</small></h3>', anchor(row.name), esc(row.name),
      esc(self:kind_of(row.name))))
    add(string.format("<p>output %s &middot; mean %s, std %s, range [%s, %s], zeros %.1f%%%s</p>", shape_str(row.shape),
      fmt(row.mean), fmt(row.std), fmt(row.min), fmt(row.max), 100 * row.zeros,
      row.grad_norm and (" &middot; gradient norm " .. fmt(row.grad_norm)) or ""))
    for _, w in ipairs(self.row_warnings[row.name]) do add('<p class="warn">&#9888; ' .. esc(w[2]) .. "</p>") end
    if self.maps[row.name] then add(img_tag(self.maps[row.name], "feature maps of " .. row.name)) end
    if self.histograms[row.name] then
      local img = self.histograms[row.name]
      add(require("nnvis.draw.figure").of(img):html() or img_tag(img, "weights of " .. row.name))
    end
    add("</section>")
  end
  add("<script>" .. string.format(SCRIPT, self:node_map()) .. "</script>")
  add("</div>")
  return table.concat(o, "\n")
end

function Report:kind_of(name)
  local ok, m = pcall(self.model.get, self.model, name)
  return ok and m and (m.kind or "Module") or ""
end

function Report:warned_layers()
  local n = 0
  for _, w in pairs(self.row_warnings) do if #w > 0 then n = n + 1 end end
  return n
end

--- the full HTML page (what save(".html") writes)
function Report:document()
  return '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>' .. esc(self.title) ..
    '</title><meta name="viewport" content="width=device-width, initial-scale=1"></head><body>\n' ..
    self:html() .. "\n</body></html>\n"
end

--- writes the page (.html) or, by extension, what the figure protocol writes
function Report:save(path)
  if type(path) == "string" and (path:match("%.html?$")) then
    return require("nnvis.draw.figure").write_file(path, self:document(), "report:save")
  end
  return Figure.save(self, path)
end

--- one line per finding, after a headline
function Report:text()
  local lines = { self:describe() }
  for _, f in ipairs(self.findings) do lines[#lines + 1] = "  " .. f.layer .. ": " .. f.message end
  return table.concat(lines, "\n")
end

function Report:describe()
  return string.format("[nnvis report: %s, %d layers, %d warning%s]", self.title, #self.stats.rows, #self.findings,
    #self.findings == 1 and "" or "s")
end

--- the report's picture: the first CAM panels (or the summary)
function Report:image()
  local c = self.cams[1]
  if c and c.panels then
    local tiles = {}
    for i, p in ipairs(c.panels) do tiles[i] = p.image end
    return require("nnvis.draw.image").grid(tiles, { padding = 4 })
  end
  return self.summary:image()
end

--- the figure protocol's bundle: HTML first, a PNG of the CAMs beside it
function Report:mimebundle()
  return { ["text/html"] = self:html(), ["text/plain"] = self:text(), ["image/png"] = self:png() }
end

setmetatable(M, { __call = function(_, ...) return M.report(...) end })
return M
