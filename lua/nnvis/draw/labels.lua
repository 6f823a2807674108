-- nnvis.draw.labels — what a drawn image tensor is: the drawing functions (plots, heatmaps,
-- grids) return plain image tensors and label them here (kind, title, and the canvas they were
-- rendered from), in a weak table, so that nnvis.draw.figure and nv.show can describe them and
-- give their vector forms.  Below canvas and image, which label what they draw.
local M = {}

local labels = setmetatable({}, { __mode = "k" })   -- image tensor -> {kind =, title =}

--- labels an image tensor made by a drawing function; returns the tensor.  canvas (an
--- nnvis.canvas the image was rendered from) gives its figure an SVG and a PDF form and its
--- measured layout (fig.layout: every text box and panel, in points)
function M.label(img, kind, title, canvas)
  labels[img] = { kind = kind, title = title, canvas = canvas }
  return img
end

--- the nnvis.canvas a drawn image tensor was rendered from, or nil
function M.layout_canvas(img)
  local l = labels[img]
  return l and l.canvas
end

--- the measured layout of a drawn image tensor (nnvis.canvas's layout: width, height and
--- scale, texts = {{text, x, y, w, h, size, panel}}, panels = {{name, x, y, w, h}}), or nil
function M.layout(img)
  local l = labels[img]
  return l and l.canvas and l.canvas.layout
end

--- the {kind =, title =} a drawing function gave an image tensor, or nil
function M.label_of(img) return labels[img] end

return M
