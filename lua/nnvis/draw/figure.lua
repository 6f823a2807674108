-- nnvis.draw.figure — the figure protocol: one object that knows how to render itself, asked
-- the same way by the REPL (nv.show), a Jupyter kernel and an HTML report (IPython's
-- _repr_png_/_repr_html_/_repr_mimebundle_, matplotlib's one drawing path, many back ends).
--
-- A figure is an instance of nv.figure.Figure (or of a subclass).  A subclass implements
-- `image()` -> (3,H,W) tensor in [0,1] (every figure can do this), and may implement
-- `svg()` -> SVG text, `html()` -> an HTML fragment, `text()` -> plain text.  From those
-- the base class gives:
--   fig:png()          the PNG file's bytes (a Lua string)
--   fig:svg()          SVG text, or nil when the figure has no vector form
--   fig:html()         an HTML fragment, or nil (a summary's table, for one)
--   fig:save(path)     by extension: .png .jpg .jpeg .svg .pdf .html .txt; true (raises when
--                      the file cannot be written, naming the path and the reason)
--   fig:pdf()          PDF bytes, or nil when the figure has no vector form
--   fig.layout         figures drawn through nnvis.canvas: every text box and panel (points)
--   fig:mimebundle()   {["image/png"] = bytes, ["text/plain"] = text,
--                       ["image/svg+xml"] = svg?, ["text/html"] = html?}
--   fig:describe()     one line: [nnvis figure: line plot "loss", 640x400]; tostring(fig)
--                      gives it unless the subclass prints itself otherwise (a summary
--                      prints its table)
--   fig.kind, fig.title, fig.width, fig.height
--   fig.textual        true when the text form is the figure (a summary): the REPL prints it
--
--   nv.figure.is_figure(x)       true for figure objects
--   nv.figure.of(x [, opts])     a figure for anything nv.show takes: a figure (itself), an
--                                image (C,H,W), a batch (N,C,H,W) as a grid, a 2-D tensor as
--                                a heatmap; nil, message otherwise
--   nv.figure.image(img, {kind =, title =})   an image tensor as a figure
--
-- Functions that draw (nv.plot.line, nv.image.heatmap, nv.image.grid, nv.features.maps, ...)
-- still return image tensors, so `nv.image.save(nv.plot.line(...), "loss.png")` keeps
-- working; they label the tensor (kind and title, in a weak table) so that nv.figure.of
-- and nv.show describe it: [nnvis figure: line plot "loss", 640x400].
local core = require "nnvis.core"
local class = require "nnvis.tensor.class"

local M = {}

--- Figure(kind, title): what every picture nnvis draws is: it renders itself through one
--- protocol (image(), png(), svg(), pdf(), html(), text(), mimebundle(), save(path)) that the
--- REPL, the notebook, the report and files all use
local Figure = class("Figure")
M.Figure = Figure

function Figure:init(kind, title)
  self.kind, self.title = kind or "figure", title
end

--- (3,H,W) image in [0,1]; subclasses implement it
function Figure:image() error("figure: " .. tostring(self.kind) .. " has no image()", 2) end

--- the PNG file's bytes
function Figure:png() return core.png_encode(self:image()) end

function Figure:svg() return nil end
function Figure:pdf() return nil end
function Figure:html() return nil end
function Figure:text() return self:describe() end

-- width and height: the subclass's fields, else the rendered image's
function Figure:size()
  if self.width and self.height then return self.width, self.height end
  local img = self:image()
  return img:size(3), img:size(2)
end

function Figure:describe()
  local w, h = self:size()
  local title = self.title and string.format(" %q", tostring(self.title)) or ""
  return string.format("[nnvis figure: %s%s, %dx%d]", self.kind, title, w, h)
end

function Figure.__tostring(self) return self:describe() end

function Figure:mimebundle()
  local b = { ["image/png"] = self:png(), ["text/plain"] = self:text() }
  b["image/svg+xml"] = self:svg()
  b["text/html"] = self:html()
  return b
end

--- write_file(path, s [, fname]): writes the string s to path; raises (naming fname, the path
--- and the system's reason) when it cannot
function M.write_file(path, s, fname) return require("nnvis.tensor.util").write_file(fname or "save", path, s) end

--- writes the figure in the format its path's extension names
function Figure:save(path)
  if type(path) ~= "string" then error("save: path must be a string, got " .. type(path), 2) end
  local ext = (path:match("%.(%w+)$") or ""):lower()
  if ext == "png" or ext == "jpg" or ext == "jpeg" then return require("nnvis.io").save_image(self:image(), path) end
  local s
  if ext == "svg" then s = self:svg()
  elseif ext == "pdf" then s = self:pdf()
  elseif ext == "html" or ext == "htm" then s = self:html()
  elseif ext == "txt" then s = self:text() end
  if ext ~= "svg" and ext ~= "pdf" and ext ~= "html" and ext ~= "htm" and ext ~= "txt" then
    error(string.format("save: cannot tell the format of '%s' (png, jpg, svg, pdf, html, txt)", path), 2)
  end
  if not s then return nil, string.format("save: a %s has no %s form", self.kind, ext) end
  return M.write_file(path, s)
end

-- ---- image tensors as figures ----------------------------------------------------------
-- the labels drawing functions give image tensors (nnvis.draw.labels)
local labels_mod = require "nnvis.draw.labels"
M.label, M.layout_canvas, M.layout, M.label_of = labels_mod.label, labels_mod.layout_canvas, labels_mod.layout, labels_mod.label_of
local label_of = labels_mod.label_of

--- ImageFigure(img, kind, title): an image tensor (C,H,W) or (H,W) in [0,1] as a figure
local ImageFigure = class("ImageFigure", Figure)
M.ImageFigure = ImageFigure

function ImageFigure:init(img, kind, title)
  ImageFigure.super.init(self, kind or "image", title)
  self.img = img
  self.width, self.height = img:size(img:dim()), img:size(img:dim() - 1)
end

function ImageFigure:image()
  local img = self.img:detach()
  if img:dim() == 2 then img = img:unsqueeze(1) end
  return require("nnvis.draw.image").to_rgb(img):clamp(0, 1):contiguous()
end

local function is_tensor(x) return getmetatable(x) == core.tensor_mt end

--- an image tensor (C,H,W) with C = 1..4, or (H,W) in [0,1], as a figure
function M.image(img, opts)
  opts = opts or {}
  if not is_tensor(img) or (img:dim() ~= 3 and img:dim() ~= 2) or (img:dim() == 3 and img:size(1) > 4) then
    error("figure.image: expected an image (C,H,W) with 1 to 4 channels or (H,W), got " ..
      (is_tensor(img) and "(" .. table.concat(img:shape(), ",") .. ")" or type(img)), 2)
  end
  local l = label_of(img) or {}
  local fig = ImageFigure(img, opts.kind or l.kind, opts.title or l.title)
  fig.canvas = l.canvas
  fig.layout = l.canvas and l.canvas.layout
  return fig
end

--- SVG text of a figure drawn through nnvis.canvas (nil for a plain image)
function ImageFigure:svg() return self.canvas and self.canvas:svg() or nil end

--- interactive HTML of a figure whose drawing recorded data points (line plots, histograms,
--- heatmaps): the value under the pointer, wheel zoom, drag to pan (nnvis.interactive); nil
--- for other pictures
function ImageFigure:html()
  if not (self.canvas and self.canvas.data and #self.canvas.data > 0) then return nil end
  return require("nnvis.draw.interactive").html(self.canvas)
end

--- the MIME bundle: PNG and text, plus SVG for figures drawn only with lines, areas and text
--- (plots, diagrams), and interactive HTML where the figure has data points (a notebook shows
--- that); figures holding pictures (grids, overlays) give their SVG on request (fig:svg(),
--- save(".svg")), not in every bundle, where it would embed each picture again
function ImageFigure:mimebundle()
  local b = { ["image/png"] = self:png(), ["text/plain"] = self:text() }
  if self.canvas and not self.canvas:has_images() then b["image/svg+xml"] = self:svg() end
  local h = self:html()
  if h then b["text/html"] = h end
  return b
end

--- PDF bytes of a figure drawn through nnvis.canvas (nil for a plain image)
function ImageFigure:pdf() return self.canvas and self.canvas:pdf() or nil
end

--- is_figure(x): whether x is a Figure (anything nv.show, fig:save and the report render)
function M.is_figure(x) return class.isinstance(x, Figure) end

--- a figure for x: a figure, an image (C,H,W), a batch (N,C,H,W) shown as a grid, or a 2-D
--- tensor (any values) shown as a heatmap with a colorbar; nil, message for anything else
function M.of(x, opts)
  opts = opts or {}
  if M.is_figure(x) then return x end
  if not is_tensor(x) then return nil, "not a figure or a tensor: " .. type(x) end
  local d = x:dim()
  if d == 3 and x:size(1) <= 4 then return M.image(x, opts) end
  if d == 4 and x:size(2) <= 4 then
    return M.image(require("nnvis.draw.image").grid(x:detach(), { normalize = true }),
      { kind = opts.kind or string.format("batch of %d images", x:size(1)), title = opts.title })
  end
  if d == 2 or d == 1 then
    local img = require("nnvis.draw.image").heatmap(x, { title = opts.title })
    return M.image(img, { kind = opts.kind or "heatmap", title = opts.title })
  end
  return nil, "cannot draw a tensor of size (" .. table.concat(x:shape(), ",") .. ")"
end

return M
