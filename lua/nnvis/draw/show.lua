-- nnvis.draw.show — nv.show(x [, opts]): puts an image tensor, a batch (as a grid), a 2-D tensor
-- (as a heatmap) or any figure (nnvis.figure) in front of a person, wherever they are:
--   display  a registered display target (the Jupyter kernel: nv.show.set_display(fn)),
--            given the figure's mimebundle
--   kitty    kitty's graphics protocol: ESC _G f=100,a=T,...;<base64 PNG> ESC \ in 4096-byte chunks
--   iterm    iTerm2's inline images (also WezTerm, mintty): ESC ]1337;File=inline=1;size=N:<base64> BEL
--   sixel    DEC sixel graphics (xterm -ti vt340, mlterm, foot, ...): the RGB image quantized to
--            a 6x6x6 colour cube and 24 grays, ESC P q ... ESC \
--   file     a PNG in a temporary folder, its path printed (opts.open: xdg-open it when there
--            is a graphical session)
--   none     nothing
-- The mode is NNVIS_SHOW when set, else opts.mode, else the display target when one is
-- registered, else read from the terminal's environment (KITTY_WINDOW_ID, TERM,
-- TERM_PROGRAM, LC_TERMINAL) when stdout is a terminal, else file.
-- Output goes to opts.out (a file handle) or io.stdout.  Small pictures are enlarged with
-- nearest-neighbour to opts.min_size (256) pixels on the long side; opts.width / opts.height
-- ask for a size (the other side keeps the aspect ratio).
local core = require "nnvis.core"
local figure = require "nnvis.draw.figure"

local M = {}

-- the display modes, each a writer fn(fig, opts, out) registered below (or by M.register):
-- writers holds them, order lists their names as registered, for messages
local writers, order = {}, {}
local check_mode
--- the modes nv.show knows: modes[name] is true for each registered writer
M.modes = setmetatable({}, { __index = function(_, k) return writers[k] ~= nil end })

--- register(name, fn): adds (or replaces) the display mode `name`: fn(fig, opts, out) puts the
--- figure fig in front of the person (opts: nv.show's; out: the file handle to write to) and
--- returns what nv.show returns; NNVIS_SHOW=name or opts.mode = name selects it
function M.register(name, fn)
  if type(name) ~= "string" or not name:match("^[%w_]+$") then error("show.register: the mode's name must be a word, got " .. tostring(name), 2) end
  if type(fn) ~= "function" then error("show.register: expected a function for mode '" .. name .. "', got " .. type(fn), 2) end
  if not writers[name] then order[#order + 1] = name end
  writers[name] = fn
end

local display_target = nil

--- registers fn(bundle, opts, fig) as the place figures go (a notebook kernel: nv.show then
--- returns what fn returns, the kernel's display handle with :update(x)); nil removes it
function M.set_display(fn)
  if fn ~= nil and type(fn) ~= "function" then error("set_display: expected a function or nil, got " .. type(fn), 2) end
  display_target = fn
end

--- writer(name): the registered writer of display mode `name` (fn(fig, opts, out)); raises
--- naming the modes when there is none
function M.writer(name)
  check_mode(name, "mode")
  return writers[name]
end

function check_mode(m, where)
  if not M.modes[m] then
    error(string.format("show: %s '%s' is not a mode (%s)", where, tostring(m), table.concat(order, ", ")), 3)
  end
  return m
end

--- the mode nv.show would use; getenv (default os.getenv) reads the environment, tty says
--- whether the output is a terminal
function M.detect(getenv, tty)
  getenv = getenv or os.getenv
  local forced = getenv("NNVIS_SHOW")
  if forced and forced ~= "" then return check_mode(forced, "NNVIS_SHOW") end
  if display_target then return "display" end
  if tty == false then return "file" end
  local term, prog = getenv("TERM") or "", getenv("TERM_PROGRAM") or ""
  if getenv("KITTY_WINDOW_ID") or term:find("kitty", 1, true) or term:find("ghostty", 1, true) then return "kitty" end
  if prog == "iTerm.app" or getenv("LC_TERMINAL") == "iTerm2" or prog == "WezTerm" or prog == "mintty" then return "iterm" end
  if term:find("sixel", 1, true) or term:find("mlterm", 1, true) or term:find("foot", 1, true)
    or term:find("contour", 1, true) then return "sixel" end
  return "file"
end

-- ---- base64 ---------------------------------------------------------------------------------
local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local enc = {}
for i = 0, 63 do enc[i] = B64:sub(i + 1, i + 1) end

--- base64(s): s in base64 (RFC 4648, with padding), as terminals' image protocols take it
function M.base64(s)
  local out, n = {}, #s
  for i = 1, n - 2, 3 do
    local a, b, c = s:byte(i, i + 2)
    local v = a << 16 | b << 8 | c
    out[#out + 1] = enc[v >> 18] .. enc[v >> 12 & 63] .. enc[v >> 6 & 63] .. enc[v & 63]
  end
  local rest = n % 3
  if rest == 1 then
    local v = s:byte(n) << 16
    out[#out + 1] = enc[v >> 18] .. enc[v >> 12 & 63] .. "=="
  elseif rest == 2 then
    local a, b = s:byte(n - 1, n)
    local v = a << 16 | b << 8
    out[#out + 1] = enc[v >> 18] .. enc[v >> 12 & 63] .. enc[v >> 6 & 63] .. "="
  end
  return table.concat(out)
end

-- ---- sizing ---------------------------------------------------------------------------------
--- the figure's image at the size it is shown: enlarged by a whole factor (nearest) to
--- opts.min_size on the long side, or resized to opts.width / opts.height
function M.sized_image(fig, opts)
  opts = opts or {}
  local img = fig:image()
  local h, w = img:size(2), img:size(3)
  local th, tw
  if opts.width or opts.height then
    tw = opts.width or math.max(1, math.floor(w * opts.height / h + 0.5))
    th = opts.height or math.max(1, math.floor(h * opts.width / w + 0.5))
  else
    local f = math.ceil((opts.min_size or 256) / math.max(h, w))
    if f <= 1 then return img end
    th, tw = h * f, w * f
  end
  if th == h and tw == w then return img end
  local mode = (th >= h and tw >= w) and "nearest" or "bilinear"
  return core.interpolate(img:unsqueeze(1), { size = { th, tw }, mode = mode }):squeeze(1):clamp(0, 1)
end

-- ---- sixel ----------------------------------------------------------------------------------
--- the sixel palette: 216 colours of a 6x6x6 cube (index r*36 + g*6 + b + 1, levels v/5)
--- then 24 grays (10k + 8)/255, k = 0..23, as xterm's 256-colour table
function M.sixel_palette()
  local p = {}
  for r = 0, 5 do for g = 0, 5 do for b = 0, 5 do p[#p + 1] = { r / 5, g / 5, b / 5 } end end end
  for k = 0, 23 do local v = (10 * k + 8) / 255; p[#p + 1] = { v, v, v } end
  return p
end

--- (3,H,W) in [0,1] -> row-major list of 1-based palette indices: the nearer of the cube's
--- colour and the gray ramp's level
function M.quantize(img)
  img = img:clamp(0, 1)
  local q = (img * 5):round()
  local cube_err = (q / 5 - img):square():sum(1)
  local cube = q:select(1, 1) * 36 + q:select(1, 2) * 6 + q:select(1, 3) + 1
  local gk = ((img:mean(1) * 255 - 8) / 10):round():clamp(0, 23)
  local gray_err = (img - ((gk * 10 + 8) / 255):unsqueeze(1)):square():sum(1)
  local idx = core.where(gray_err:lt(cube_err), gk + 217, cube):contiguous():values()
  for i = 1, #idx do idx[i] = math.tointeger(idx[i]) end
  return idx
end

-- one band's colour row: sixel characters for columns 1..w, runs of 4 or more as !n<c>
local function sixel_row(bits, w)
  local out, x = {}, 1
  while x <= w do
    local v = bits[x] or 0
    local n = 1
    while x + n <= w and (bits[x + n] or 0) == v do n = n + 1 end
    local ch = string.char(63 + v)
    out[#out + 1] = n >= 4 and ("!" .. n .. ch) or ch:rep(n)
    x = x + n
  end
  return table.concat(out)
end

--- (3,H,W) in [0,1] -> a sixel image: ESC P q, raster size, the palette entries used, the
--- bands of six rows (one pass per colour, "$" back to the band's start, "-" to the next), ESC \
function M.sixel(img)
  local h, w = img:size(2), img:size(3)
  local idx = M.quantize(img)
  local pal = M.sixel_palette()
  local used, out = {}, { "\27P0;1;0q", string.format('"1;1;%d;%d', w, h) }
  for _, c in ipairs(idx) do used[c] = true end
  for c = 1, #pal do
    if used[c] then
      local p = pal[c]
      out[#out + 1] = string.format("#%d;2;%d;%d;%d", c - 1, math.floor(p[1] * 100 + 0.5),
        math.floor(p[2] * 100 + 0.5), math.floor(p[3] * 100 + 0.5))
    end
  end
  for y0 = 0, h - 1, 6 do
    local cols, order = {}, {}
    for r = 0, math.min(5, h - 1 - y0) do
      local base = (y0 + r) * w
      for x = 1, w do
        local c = idx[base + x]
        local t = cols[c]
        if not t then t = {}; cols[c] = t; order[#order + 1] = c end
        t[x] = (t[x] or 0) | (1 << r)
      end
    end
    table.sort(order)
    local rows = {}
    for i, c in ipairs(order) do rows[i] = "#" .. (c - 1) .. sixel_row(cols[c], w) end
    out[#out + 1] = table.concat(rows, "$") .. "-"
  end
  out[#out + 1] = "\27\\"
  return table.concat(out)
end

-- ---- the modes, registered in the order messages list them --------------------------------

M.register("kitty", function(fig, opts, out)
  local data = M.base64(core.png_encode(M.sized_image(fig, opts)))
  local id = opts.id and (",i=" .. math.tointeger(opts.id)) or ""
  if opts.id then out:write(string.format("\27_Ga=d,d=I,i=%d,q=2\27\\", math.tointeger(opts.id))) end
  local n = #data
  for i = 1, math.max(n, 1), 4096 do
    local chunk = data:sub(i, i + 4095)
    local more = i + 4096 <= n and 1 or 0
    if i == 1 then out:write(string.format("\27_Gf=100,a=T,q=2%s,m=%d;%s\27\\", id, more, chunk))
    else out:write(string.format("\27_Gm=%d;%s\27\\", more, chunk)) end
  end
  out:write("\n")
end)

M.register("iterm", function(fig, opts, out)
  local png = core.png_encode(M.sized_image(fig, opts))
  out:write(string.format("\27]1337;File=inline=1;size=%d;preserveAspectRatio=1:%s\7\n", #png, M.base64(png)))
end)

M.register("sixel", function(fig, opts, out)
  out:write(M.sixel(M.sized_image(fig, opts)), "\n")
end)

local shown = 0
M.register("file", function(fig, opts, out)
  local path
  if opts.path then path = opts.path
  elseif opts.dir then
    shown = shown + 1
    path = string.format("%s/nnvis-%d-%d.png", opts.dir, shown, math.random(1, 1e9))
  else
    local tmp = os.tmpname()
    os.remove(tmp)
    path = tmp .. ".png"
  end
  require("nnvis.io").save_image(M.sized_image(fig, opts), path)   -- raises when it cannot write
  out:write(fig:describe(), " saved to ", path, "\n")
  if opts.open and ((os.getenv("DISPLAY") or "") ~= "" or (os.getenv("WAYLAND_DISPLAY") or "") ~= "") then
    os.execute("xdg-open '" .. path:gsub("'", "'\\''") .. "' >/dev/null 2>&1 &")
  end
end)

M.register("none", function() end)

M.register("display", function(fig, opts)
  if not display_target then error("show: mode display needs a target (nv.show.set_display(fn))", 3) end
  return display_target(fig:mimebundle(), opts, fig)
end)

--- nv.show(x [, opts]): see the top of this file.  opts: mode (or to: "board" sends it to
--- the live board, nv.board), out, width, height,
--- min_size, title, open, dir / path (file mode), id (kitty: replaces the image of that id),
--- display_id / update (display mode, the Jupyter kernel: a display that later calls with
--- the same id replace in place; nv.show then returns a handle whose :update(x) does that;
--- svg: also send the figure's SVG)
function M.show(x, opts)
  if opts ~= nil and type(opts) ~= "table" then error("show: opts must be a table, got " .. type(opts), 2) end
  opts = opts or {}
  local fig, err = figure.of(x, { title = opts.title })
  if not fig then error("show: " .. err, 2) end
  local out = opts.out or io.stdout
  local forced = os.getenv("NNVIS_SHOW")
  local mode
  if opts.to ~= nil and opts.mode ~= nil and opts.to ~= opts.mode then
    error(string.format("show: opts.to ('%s') and opts.mode ('%s') disagree; give one", tostring(opts.to), tostring(opts.mode)), 2)
  end
  if forced and forced ~= "" then mode = check_mode(forced, "NNVIS_SHOW")
  elseif opts.mode or opts.to then mode = check_mode(opts.mode or opts.to, opts.mode and "opts.mode" or "opts.to")
  else mode = M.detect(nil, opts.out ~= nil or core.isatty(1)) end
  local handle = writers[mode](fig, opts, out)
  if out.flush then out:flush() end
  return handle
end

return setmetatable(M, { __call = function(_, ...) return M.show(...) end })
