-- nnvis.tensor.util — small helpers the Lua modules share.
local core = require "nnvis.core"

local M = {}

--- Runs f(...) with every module of `model` in training (true) or eval (false) mode, then
--- puts each module's own mode back (a frozen BatchNorm inside a training model stays in
--- eval), also after an error, which is re-raised.  Plain callables without modes just run.
function M.with_mode(model, training, f, ...)
  local saved = {}
  if type(model) == "table" and model.named_modules then
    for _, m in model:named_modules() do saved[#saved + 1] = { m, m.training } end
    if training then model:train() else model:eval() end
  end
  local res = table.pack(pcall(f, ...))
  for _, s in ipairs(saved) do rawset(s[1], "training", s[2]) end
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

--- Runs f(...) after seeding the random generator with `seed`, then restores the generator's
--- previous state, so a seeded helper does not change the caller's random stream.  With no
--- seed, f just runs.
function M.with_seed(seed, f, ...)
  if seed == nil then return f(...) end
  local state = core.rng_state()
  core.manual_seed(seed)
  local res = table.pack(pcall(f, ...))
  core.set_rng_state(state)
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

--- The dotted path of module m in its model's tree, when named_modules lists it under
--- another name (an imported ONNX node is listed by its ONNX name, /layer1/layer1.0/conv1/Conv,
--- and sits at layer1.0.conv1.Conv); depth and nesting follow this path.
function M.tree_path(name, m) return rawget(m, "tree_path") or name end

--- depth of a dotted path: "" 0, "a" 1, "a.b" 2
function M.depth(path) return path == "" and 0 or select(2, path:gsub("%.", "")) + 1 end

--- for a, b in iterate(list) over a list of {a, b} pairs (named_modules and the like)
function M.iterate(list)
  local i = 0
  return function()
    i = i + 1
    local e = list[i]
    if e then return e[1], e[2] end
  end
end

--- Checks an options table against the names a function knows and returns it ({} for nil):
--- util.check_opts("Conv2d", opts, {"stride", "padding", ...}) raises
--- "Conv2d: unknown option 'pading' (did you mean 'padding'?)" for a key not in the list, and
--- "Conv2d: options must be a table of name = value, got a list" for {"layer4"}.  Each public
--- function lists its known keys next to its defaults.  (The check is core.check_opts, which
--- the C bindings share.)
function M.check_opts(fname, opts, known)
  if opts == nil then return {} end
  local ok, err = pcall(core.check_opts, fname, opts, known)
  if not ok then M.raise((tostring(err):gsub("^[^:]*:%d+: ", ""))) end   -- at the user's line
  return opts
end

-- the folder of nnvis's Lua files, as debug.getinfo names their sources ("@/.../nnvis/"):
-- this file's folder (nnvis/tensor/) less its own name
local own_dir = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or ""):gsub("tensor[/\\]$", "")

--- Whether the nearest Lua function calling the current one (at level, C frames skipped) is
--- nnvis's own code: its errors are then wrapped by that code, not raised to the user yet.
function M.called_from_nnvis(level)
  level = (level or 2) + 1
  while true do
    local info = debug.getinfo(level, "S")
    if not info then return false end
    if info.what ~= "C" then
      return info.source:sub(1, 1) == "@" and info.source:sub(2, #own_dir + 1) == own_dir
    end
    level = level + 1
  end
end

--- Raises msg at the caller's line outside nnvis (the user's script, not the nnvis file that
--- found the problem), however deep inside nnvis the check runs.
function M.raise(msg)
  local level = 2
  while true do
    local info = debug.getinfo(level, "S")
    if not info then error(msg, 0) end       -- nothing outside nnvis: no position at all
    local src = info.source
    if info.what ~= "C" and not (src:sub(1, 1) == "@" and src:sub(2, #own_dir + 1) == own_dir) then break end
    level = level + 1
  end
  error(msg, level)
end

--- Writes the string s to path for fname, raising (at the user's line) with the path and the
--- system's reason when it cannot: a file the user asked for is never silently missing.
function M.write_file(fname, path, s)
  local f, err = io.open(path, "wb")
  local ok, werr = f ~= nil, err
  if f then
    ok, werr = f:write(s)
    local cok, cerr = f:close()
    ok, werr = ok and cok, werr or cerr
  end
  if not ok then M.raise(string.format("%s: cannot write %s: %s", fname, path, tostring(werr):gsub("^" .. path:gsub("%p", "%%%0") .. ": ", ""))) end
  return true
end

-- edit distance of two strings (insertions, deletions, substitutions)
local function distance(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a:byte(i) == b:byte(j) and 0 or 1))
    end
    prev = cur
  end
  return prev[#b]
end

--- The up to n names of list closest to name (edit distance, then order), for "did you mean".
function M.closest(name, list, n)
  local scored = {}
  for i, s in ipairs(list) do scored[#scored + 1] = { s, distance(tostring(name), s), i } end
  table.sort(scored, function(p, q) if p[2] ~= q[2] then return p[2] < q[2] end return p[3] < q[3] end)
  local out = {}
  for i = 1, math.min(n or 3, #scored) do out[i] = scored[i][1] end
  return out
end

--- The sub-module `name` of model (a dotted path or a 1-based position), raising for fname at
--- the user's line with the closest layer names when there is none.
function M.find_layer(fname, model, name)
  local ok, m = pcall(model.get, model, name)
  if ok and m ~= nil then return m end
  local names = {}
  for n in model:named_modules() do if n ~= "" then names[#names + 1] = n end end
  local near = M.closest(name, names, 3)
  M.raise(string.format("%s: the model has no layer '%s'%s", fname, tostring(name),
    #near > 0 and ("; the closest are: " .. table.concat(near, ", ")) or " (it has no sub-modules)"))
end

-- the memory batched explanations may take for their graphs (nv.config{work_memory = ...})
local work_memory = 1 << 30

--- the work_memory budget in bytes; set(bytes) changes it (at least 16 MiB)
function M.work_memory(set)
  if set ~= nil then
    if math.type(set) ~= "integer" and not (type(set) == "number" and set == math.floor(set)) then
      M.raise("config: work_memory must be a whole number of bytes, got " .. tostring(set))
    end
    if set < (1 << 24) then M.raise("config: work_memory must be at least 16 MiB, got " .. tostring(set)) end
    work_memory = math.tointeger(set)
  end
  return work_memory
end

--- n with thousands separators: 11,689,512 (as torchinfo prints counts)
function M.commas(n)
  local s = tostring(math.floor(n))
  local out = s:reverse():gsub("(%d%d%d)", "%1,"):reverse()
  return (out:gsub("^,", ""):gsub("^%-,", "-"))
end

--- Warns a person of a result that is probably not what they wanted: "nnvis: warning: msg"
--- on stderr (M.on_warning(msg) instead, when set: the report and specs collect them).
function M.warn(msg)
  if M.on_warning then return M.on_warning(msg) end
  io.stderr:write("nnvis: warning: ", msg, "\n")
end

--- Class probabilities of a model's (N,K) scores: the softmax over K, and for a model with one
--- output (a binary classifier's logit) its sigmoid: the softmax of one logit is always 1.
function M.probs(scores)
  if scores:size(2) == 1 then return scores:sigmoid() end
  return core.softmax(scores, 2)
end

--- Raises (at the user's line) when a list of class names does not name the model's n outputs:
--- names for 2 classes on a 10-class model would label the wrong classes, silently.
function M.check_classes(fname, classes, n)
  if classes == nil then return end
  if type(classes) ~= "table" then M.raise(string.format("%s: classes must be a list of names, got %s", fname, type(classes))) end
  if #classes ~= n and not (n == 1 and #classes == 2) then
    M.raise(string.format("%s: classes names %d class%s but the model has %d output%s", fname, #classes,
      #classes == 1 and "" or "es", n, n == 1 and "" or "s"))
  end
end

--- the known names of a table of defaults, plus the names in `extra` (options without a default)
function M.keys(defaults, extra)
  local out = {}
  for k in pairs(defaults) do out[#out + 1] = k end
  for _, k in ipairs(extra or {}) do out[#out + 1] = k end
  table.sort(out)
  return out
end

--- a new table: the defaults overridden by opts
function M.merge(defaults, opts)
  local out = {}
  for k, v in pairs(defaults) do out[k] = v end
  for k, v in pairs(opts or {}) do out[k] = v end
  return out
end

--- the leaf modules of a model (no children), in registration order: {{name =, module =}, ...}
function M.leaves(model)
  local list = {}
  for name, m in model:named_modules() do
    local leaf = true
    for _ in m:named_children() do leaf = false; break end
    if leaf and name ~= "" then list[#list + 1] = { name = name, module = m } end
  end
  return list
end

function M.is_tensor(t) return getmetatable(t) == core.tensor_mt end

--- "(2,3)" for a tensor's shape, for error messages
function M.shape_str(t) return "(" .. table.concat(t:shape(), ",") .. ")" end

--- the first tensor of a model output (a tensor, or a table holding tensors)
function M.first_tensor(out)
  if getmetatable(out) == core.tensor_mt then return out end
  if type(out) == "table" then
    for _, v in ipairs(out) do if getmetatable(v) == core.tensor_mt then return v end end
  end
  return nil
end

--- "[=====>    ]" for a fraction done
function M.bar(frac, width)
  local full = math.floor(frac * width + 0.5)
  return string.rep("=", full) .. (full < width and ">" or "") .. string.rep(" ", math.max(0, width - full - 1))
end

--- A progress bar for a long computation of `total` steps: p:step(k) after step k, p:done()
--- at the end.  It draws on stderr only when that is a terminal and the work has already
--- taken more than a second (short calls stay silent); opts.progress = false silences it,
--- true draws it whatever stderr is, a file handle draws there.
function M.progress(name, total, opt)
  local out = io.stderr
  local always = opt == true or io.type(opt) == "file"
  if opt == false or not (always or core.isatty(2)) then return { step = function() end, done = function() end } end
  if io.type(opt) == "file" then out = opt end
  local t0, drawn = core.now(), false
  local p = {}
  function p.step(_, k)
    local dt = core.now() - t0
    if dt < 1 and not always and not drawn then return end
    drawn = true
    local eta = k > 0 and dt / k * (total - k) or 0
    out:write(string.format("\r%s [%s] %d/%d %.1f s, %.1f s left ", name, M.bar(k / total, 24), k, total, dt, eta))
    out:flush()
  end
  function p.done()
    if drawn then out:write(string.format("\r%s done in %.1f s%s\n", name, core.now() - t0, string.rep(" ", 40))); out:flush() end
  end
  return p
end

--- image_batch(x, fname): x as a batch (N,C,H,W) (or a clip batch (N,C,T,H,W)) and whether it
--- was a single (C,H,W) image; raises naming fname for anything else
function M.image_batch(x, fname)
  if not M.is_tensor(x) then M.raise(fname .. ": expected an input tensor") end
  if x:dim() == 3 then return x:unsqueeze(1), true end
  if x:dim() ~= 4 and x:dim() ~= 5 then
    M.raise(fname .. ": expected an input (N,C,H,W), (C,H,W) or a clip (N,C,T,H,W), got (" .. table.concat(x:shape(), ",") .. ")")
  end
  return x, false
end

--- temp_dir(prefix) -> a new folder in the system's temporary folder, named prefix and a unique
--- part (os.tmpname's); raises when it cannot be made
function M.temp_dir(prefix)
  local name = os.tmpname()
  os.remove(name)
  local dir = name:gsub("[^/]*$", function(base) return prefix .. base:gsub("^lua_", "") end)
  local ok, err = core.mkdirs(dir)
  if not ok then M.raise("temp_dir: cannot make " .. dir .. ": " .. tostring(err)) end
  return dir
end

return M
