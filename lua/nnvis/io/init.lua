--- nnvis.io — images (PNG and JPEG), safetensors and IDX files.
--
-- Thin Lua layer over nnvis.core (csrc/io/, csrc/lua/lua_files.c): it checks arguments so
-- that misuse raises an error naming the function here, and passes outside-data failures
-- through as `nil, message`.
--
--     local io_ = require "nnvis.io"
--     local img = assert(io_.load_image("cat.png", {mode = "rgb"}))   -- (3,H,W) in [0,1]
--     io_.save_image(img, "copy.png")
local core = require "nnvis.core"
local util = require "nnvis.tensor.util"
local check_opts = util.check_opts

local M = {}

local function check_path(fname, path)
  if type(path) ~= "string" then
    error(("%s: path must be a string, got %s"):format(fname, type(path)), 3)
  end
end

local function check_tensor(fname, t, what)
  if getmetatable(t) ~= core.tensor_mt then
    error(("%s: %s must be a tensor, got %s"):format(fname, what, type(t)), 3)
  end
end

-- {h, w} from a number or a table of two positive integers.
local function check_size(size)
  if type(size) == "number" then size = {size, size} end
  local ok = type(size) == "table" and #size == 2
  for i = 1, 2 do
    ok = ok and math.type(size[i]) == "integer" and size[i] >= 1
  end
  if not ok then
    error("load_image: opts.size must be a positive integer or {h, w}", 3)
  end
  return {size[1], size[2]}
end

--- PNG or JPEG (told apart by their first bytes) -> (C,H,W) tensor in [0,1], or nil, message.
--- opts.mode: nil (the file's channels: gray 1, gray+alpha 2, RGB 3, RGBA 4; a palette
--- gives 3, or 4 when it has transparency), "rgb" (3, alpha dropped) or "gray"
--- (1, luminance 0.299 R + 0.587 G + 0.114 B).  A JPEG has 1 channel (gray) or 3 natively.
--- opts.size: {h, w} (or one number) resizes bilinearly; this needs core.interpolate and
--- raises when the core lacks it rather than silently returning another size.
function M.load_image(path, opts)
  opts = check_opts("image.load", opts, { "mode", "size" })
  check_path("load_image", path)
  if opts ~= nil and type(opts) ~= "table" then
    error("load_image: opts must be a table, got " .. type(opts), 2)
  end
  opts = opts or {}
  local mode = opts.mode
  if mode ~= nil and mode ~= "rgb" and mode ~= "gray" then
    error(('load_image: opts.mode must be "rgb" or "gray", got %s'):format(tostring(mode)), 2)
  end
  local size = opts.size ~= nil and check_size(opts.size) or nil
  if size and not core.interpolate then
    error("load_image: opts.size needs core.interpolate, which this build of nnvis.core lacks", 2)
  end
  local img, err = core.image_load(path, mode)
  if not img then return nil, err end
  if size then
    local shape = img:shape()
    if shape[2] ~= size[1] or shape[3] ~= size[2] then
      img = core.interpolate(img:unsqueeze(1), {size = size, mode = "bilinear"}):squeeze(1)
      img = img:clamp(0, 1)   -- bilinear stays in range; clamp guards against rounding
    end
  end
  return img
end

local writers = {
  png = function(t, path) return core.png_save(t, path) end,
  jpg = function(t, path, q) return core.jpeg_save(t, path, q) end,
}
writers.jpeg = writers.jpg

--- Writes a (C,H,W) tensor with C in 1..4, or an (H,W) one, in the format the path's
--- extension names: .png (8-bit, also for a path without an extension) or .jpg / .jpeg
--- (baseline, opts.quality 1..100, default 90; alpha dropped).  Values are clamped to [0,1].
--- Raises for another extension, and when the file cannot be written (naming the path and the
--- system's reason); returns true.
function M.save_image(t, path, opts)
  check_tensor("save_image", t, "image")
  check_path("save_image", path)
  if opts ~= nil and type(opts) ~= "table" then
    error("save_image: opts must be a table, got " .. type(opts), 2)
  end
  for k in pairs(opts or {}) do
    if k ~= "quality" then error(("save_image: unknown option '%s'"):format(tostring(k)), 2) end
  end
  local ext = path:match("%.([%w]+)$")
  local base = path:match("[^/]*$")
  if not ext or base:sub(1, 1) == "." and not base:sub(2):find(".", 1, true) then ext = "png" end
  local write = writers[ext:lower()]
  if not write then
    error(("save_image: cannot write .%s files (%s); nnvis writes .png, .jpg and .jpeg"):format(ext, path), 2)
  end
  local q = opts and opts.quality
  if q ~= nil and (math.type(q) ~= "integer" or q < 1 or q > 100) then
    error("save_image: opts.quality must be an integer in 1..100, got " .. tostring(q), 2)
  end
  local ok, err = write(t, path, q)
  if not ok then util.raise(("save_image: cannot write %s: %s"):format(path, err:gsub("^cannot open .* for writing: ", ""))) end
  return true
end

--- safetensors file -> table name -> tensor (float32, whatever the stored dtype), and a
--- table of the "__metadata__" strings (empty when there are none); or nil, message.
function M.load_safetensors(path)
  check_path("load_safetensors", path)
  return core.safetensors_load(path)
end

--- Writes tbl (name -> tensor) as F32 safetensors with optional metadata (string -> string).
--- Returns true; raises, naming the path and the system's reason, when it cannot be written.
function M.save_safetensors(tbl, path, meta)
  if type(tbl) ~= "table" then
    error("save_safetensors: expected a table of name -> tensor, got " .. type(tbl), 2)
  end
  check_path("save_safetensors", path)
  if meta ~= nil and type(meta) ~= "table" then
    error("save_safetensors: metadata must be a table of strings, got " .. type(meta), 2)
  end
  local ok, err = core.safetensors_save(tbl, path, meta)
  if not ok then util.raise(("save_safetensors: cannot write %s: %s"):format(path, err:gsub("^cannot open .* for writing: ", ""))) end
  return true
end

--- IDX file (the MNIST format), gzip-compressed or not -> float32 tensor of its shape with
--- the raw values (no scaling), or nil, message.
function M.load_idx(path)
  check_path("load_idx", path)
  return core.idx_load(path)
end

return M
