-- nnvis.canvas — an RGB drawing surface over a (3,H,W) tensor: rectangles, polylines,
-- text in the built-in 5x7 font, and pasted images.  Coordinates are 1-based pixels, x to
-- the right, y down.  Each primitive is one or two C calls (core.fill_rects, core.polyline).
local core = require "nnvis.core"
local font = require "nnvis.font"

local Canvas = {}
Canvas.__index = Canvas

local function rgb(c)
  if type(c) == "number" then return { c, c, c } end
  return c or { 0, 0, 0 }
end

--- new canvas w x h filled with bg ({r,g,b} in [0,1] or a gray level; white by default)
function Canvas.new(w, h, bg)
  if w < 1 or h < 1 then error(string.format("canvas: size %dx%d must be positive", w, h), 2) end
  local img = core.zeros(3, h, w)
  local c = rgb(bg or 1)
  for k = 1, 3 do img:select(1, k):fill(c[k]) end
  return setmetatable({ img = img, w = w, h = h }, Canvas)
end

--- wraps an existing (3,H,W) image (drawn on in place)
function Canvas.wrap(img)
  return setmetatable({ img = img, w = img:size(3), h = img:size(2) }, Canvas)
end

function Canvas:rect(x, y, w, h, color, alpha)
  core.fill_rects(self.img, { x, y, w, h }, rgb(color), alpha)
  return self
end

--- rectangle outline of the given thickness
function Canvas:box(x, y, w, h, color, thick)
  thick = thick or 1
  core.fill_rects(self.img, { x, y, w, thick, x, y + h - thick, w, thick, x, y, thick, h, x + w - thick, y, thick, h },
    rgb(color))
  return self
end

--- polyline through {x1, y1, x2, y2, ...}
function Canvas:line(points, color, thick, alpha)
  if #points >= 2 then core.polyline(self.img, points, rgb(color), thick or 1, alpha) end
  return self
end

-- the rectangles of a string's font pixels; place(i, cx, row) gives the top-left of pixel
-- (column cx 1..5, row 0..7) of character i
local function glyph_rects(s, scale, place)
  local rects = {}
  for i = 1, #s do
    local cols = font.glyph(s:byte(i))
    for cx = 1, 5 do
      for row = 0, 7 do
        if (cols[cx] >> row) & 1 == 1 then
          local px, py = place(i, cx, row)
          local n = #rects
          rects[n + 1], rects[n + 2], rects[n + 3], rects[n + 4] = px, py, scale, scale
        end
      end
    end
  end
  return rects
end

--- text with its top-left corner at (x, y); scale enlarges each font pixel
function Canvas:text(x, y, s, color, scale)
  scale = scale or 1
  local rects = glyph_rects(tostring(s), scale, function(i, cx, row)
    return x + (i - 1) * font.width * scale + (cx - 1) * scale, y + row * scale
  end)
  if #rects > 0 then core.fill_rects(self.img, rects, rgb(color)) end
  return self
end

--- text centred horizontally on cx
function Canvas:text_centered(cx, y, s, color, scale)
  return self:text(math.floor(cx - font.text_width(tostring(s), scale) / 2 + 0.5), y, s, color, scale)
end

--- text drawn vertically (rotated 90 degrees counter-clockwise), bottom-left at (x, y)
function Canvas:text_vertical(x, y, s, color, scale)
  scale = scale or 1
  local rects = glyph_rects(tostring(s), scale, function(i, cx, row)
    return x + row * scale, y - (i - 1) * font.width * scale - cx * scale
  end)
  if #rects > 0 then core.fill_rects(self.img, rects, rgb(color)) end
  return self
end

--- pastes an image (C,H,W) with C = 1 (gray), 3 or 4 (alpha ignored), values in [0,1],
--- with its top-left corner at (x, y); clipped to the canvas
function Canvas:paste(img, x, y)
  local c, h, w = img:size(1), img:size(2), img:size(3)
  local x0, y0 = math.max(x, 1), math.max(y, 1)
  local x1, y1 = math.min(x + w - 1, self.w), math.min(y + h - 1, self.h)
  if x0 > x1 or y0 > y1 then return self end
  local src = img:narrow(2, y0 - y + 1, y1 - y0 + 1):narrow(3, x0 - x + 1, x1 - x0 + 1)
  if c == 1 then src = src:expand(3, y1 - y0 + 1, x1 - x0 + 1)
  elseif c == 2 then src = src:narrow(1, 1, 1):expand(3, y1 - y0 + 1, x1 - x0 + 1)
  elseif c == 4 then src = src:narrow(1, 1, 3) end
  self.img:narrow(2, y0, y1 - y0 + 1):narrow(3, x0, x1 - x0 + 1):copy(src:clamp(0, 1))
  return self
end

function Canvas:tensor() return self.img end

function Canvas:save(path) return require("nnvis.io").save_image(self.img, path) end

Canvas.text_width = function(s, scale) return font.text_width(tostring(s), scale) end
Canvas.font = font

return Canvas
