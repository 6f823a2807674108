-- nnvis.io.weights — torchvision's published weight files for the models nnvis defines, and the
-- cache that holds them, so that the articles' one-liners run as written:
--
--   local net = nv.models.vgg16 { weights = "IMAGENET1K_V1" }   -- or "DEFAULT"
--
-- A weight set is found, in this order, in nnvis's cache ($XDG_CACHE_HOME/nnvis, else
-- ~/.cache/nnvis), in PyTorch's ($TORCH_HOME/hub/checkpoints, else
-- $XDG_CACHE_HOME/torch/hub/checkpoints, else ~/.cache/torch/hub/checkpoints: a file torchvision
-- already downloaded is used as it is), else downloaded from https://download.pytorch.org/models
-- ($NNVIS_WEIGHTS_URL, or weights.config{base_url = ...}, names a mirror) into nnvis's cache.
-- A download goes to a temporary file in the cache folder, is checked against the sha256 prefix
-- its name carries (vgg16-397923af.pth: the file's sha256 starts with 397923af, as torch.hub
-- checks it) and only then renamed to its name: the cache never holds a partial or corrupt file.
-- The file is read with model:load(path) (torch.save's zip format).
--
-- The table below is torchvision 0.14's (torchvision/models/vgg.py and resnet.py: each
-- `<Model>_Weights` enum's `url=`), the version Debian 12 ships; torchvision's newer releases
-- publish the same files for these models.
local core = require "nnvis.core"
local util = require "nnvis.tensor.util"

local M = {}

--- weights.BASE_URL: where torchvision publishes its weight files
M.BASE_URL = "https://download.pytorch.org/models"

-- A download larger than this is refused (the largest file below, vgg19_bn's, is 549 MB).
local MAX_BYTES = 4 << 30

-- arch -> { weight set name -> file name under BASE_URL, DEFAULT -> a weight set's name }.
-- Every set is trained on ImageNet-1K (1000 classes).
local files = {
  vgg11 = { IMAGENET1K_V1 = "vgg11-8a719046.pth", DEFAULT = "IMAGENET1K_V1" },
  vgg13 = { IMAGENET1K_V1 = "vgg13-19584684.pth", DEFAULT = "IMAGENET1K_V1" },
  -- IMAGENET1K_FEATURES (ported from amdegroot/ssd.pytorch) fills only `features`: its
  -- classifier holds NaN, and it expects inputs standardized with mean (0.48235, 0.45882,
  -- 0.40784) and std 1/255, not ImageNet's usual mean and std
  vgg16 = { IMAGENET1K_V1 = "vgg16-397923af.pth", IMAGENET1K_FEATURES = "vgg16_features-amdegroot-88682ab5.pth",
            DEFAULT = "IMAGENET1K_V1" },
  vgg19 = { IMAGENET1K_V1 = "vgg19-dcbb9e9d.pth", DEFAULT = "IMAGENET1K_V1" },
  vgg11_bn = { IMAGENET1K_V1 = "vgg11_bn-6002323d.pth", DEFAULT = "IMAGENET1K_V1" },
  vgg13_bn = { IMAGENET1K_V1 = "vgg13_bn-abd245e5.pth", DEFAULT = "IMAGENET1K_V1" },
  vgg16_bn = { IMAGENET1K_V1 = "vgg16_bn-6c64b313.pth", DEFAULT = "IMAGENET1K_V1" },
  vgg19_bn = { IMAGENET1K_V1 = "vgg19_bn-c79401a0.pth", DEFAULT = "IMAGENET1K_V1" },
  resnet18 = { IMAGENET1K_V1 = "resnet18-f37072fd.pth", DEFAULT = "IMAGENET1K_V1" },
  vit_b_16 = { IMAGENET1K_V1 = "vit_b_16-c867db91.pth", DEFAULT = "IMAGENET1K_V1" },
  vit_b_32 = { IMAGENET1K_V1 = "vit_b_32-d86f8d99.pth", DEFAULT = "IMAGENET1K_V1" },
  vit_l_16 = { IMAGENET1K_V1 = "vit_l_16-852ce7e3.pth", DEFAULT = "IMAGENET1K_V1" },
  vit_l_32 = { IMAGENET1K_V1 = "vit_l_32-c7638314.pth", DEFAULT = "IMAGENET1K_V1" },
  resnet34 = { IMAGENET1K_V1 = "resnet34-b627a593.pth", DEFAULT = "IMAGENET1K_V1" },
  resnet50 = { IMAGENET1K_V1 = "resnet50-0676ba61.pth", IMAGENET1K_V2 = "resnet50-11ad3fa6.pth",
               DEFAULT = "IMAGENET1K_V2" },
  resnet101 = { IMAGENET1K_V1 = "resnet101-63fe2227.pth", IMAGENET1K_V2 = "resnet101-cd907fc2.pth",
                DEFAULT = "IMAGENET1K_V2" },
  resnet152 = { IMAGENET1K_V1 = "resnet152-394f9c45.pth", IMAGENET1K_V2 = "resnet152-f82ba261.pth",
                DEFAULT = "IMAGENET1K_V2" },
}
-- arch -> { name -> number of classes or false (unknown) } for weights.register's sets;
-- torchvision's have 1000
local classes = {}

-- settings made with weights.config (false: the default, from the environment)
local settings = { base_url = false, cache_dir = false, torch_dir = false }

-- the sha256 prefix a file name carries: torch.hub's HASH_REGEX, r'-([a-f0-9]*)\.'
local function sha_prefix(file) return file:match("%-([0-9a-f]+)%.") end

local function env(name)
  local v = os.getenv(name)
  if v == nil or v == "" then return nil end
  if v:sub(1, 2) == "~/" and os.getenv("HOME") then v = os.getenv("HOME") .. v:sub(2) end
  return v
end

-- $XDG_CACHE_HOME, else ~/.cache
local function cache_home()
  local v = env("XDG_CACHE_HOME")
  if v then return v end
  local home = env("HOME")
  if not home then
    util.raise("weights: neither $XDG_CACHE_HOME nor $HOME is set: name a cache folder with " ..
      "nv.weights.config{cache_dir = ...}")
  end
  return home .. "/.cache"
end

local function strip_slash(s) return (s:gsub("(.)/+$", "%1")) end

--- weights.config{base_url = url, cache_dir = path, torch_dir = path} -> the settings before:
--- where weight files are downloaded from (instead of $NNVIS_WEIGHTS_URL or BASE_URL), nnvis's
--- cache folder and PyTorch's checkpoints folder (instead of the environment's).  A key set to
--- false goes back to the default; a key left out stays.  config(before) restores settings.
function M.config(opts)
  opts = util.check_opts("weights.config", opts, { "base_url", "cache_dir", "torch_dir" })
  local before = { base_url = settings.base_url, cache_dir = settings.cache_dir, torch_dir = settings.torch_dir }
  for k in pairs(settings) do
    local v = opts[k]
    if v ~= nil then
      if v ~= false and (type(v) ~= "string" or v == "") then
        util.raise(("weights.config: %s must be a non-empty string or false, got %s"):format(k, type(v)))
      end
      settings[k] = v and strip_slash(v)
    end
  end
  return before
end

--- weights.base_url() -> the URL weight files are downloaded from: weights.config's base_url,
--- else $NNVIS_WEIGHTS_URL, else weights.BASE_URL
function M.base_url() return settings.base_url or strip_slash(env("NNVIS_WEIGHTS_URL") or M.BASE_URL) end

--- weights.cache_dir() -> nnvis's cache folder: weights.config's cache_dir, else
--- $XDG_CACHE_HOME/nnvis, else ~/.cache/nnvis (read at each call)
function M.cache_dir() return settings.cache_dir or cache_home() .. "/nnvis" end

--- weights.torch_dir() -> PyTorch's checkpoints folder, where torchvision keeps the files it
--- downloads: weights.config's torch_dir, else $TORCH_HOME/hub/checkpoints, else
--- $XDG_CACHE_HOME/torch/hub/checkpoints, else ~/.cache/torch/hub/checkpoints
function M.torch_dir()
  if settings.torch_dir then return settings.torch_dir end
  return strip_slash(env("TORCH_HOME") or cache_home() .. "/torch") .. "/hub/checkpoints"
end

local function sorted_names(t)
  local names = {}
  for k in pairs(t) do if k ~= "DEFAULT" then names[#names + 1] = k end end
  table.sort(names)
  if t.DEFAULT then names[#names + 1] = "DEFAULT" end
  return names
end

--- weights.names(arch) -> the names of arch's weight sets ("IMAGENET1K_V1", ..., "DEFAULT"
--- last), {} when torchvision publishes none for it
function M.names(arch) return files[arch] and sorted_names(files[arch]) or {} end

--- weights.archs() -> the architectures with weight sets, sorted
function M.archs()
  local a = {}
  for k in pairs(files) do a[#a + 1] = k end
  table.sort(a)
  return a
end

local function is_nnvis_model(arch)
  local ok, models = pcall(require, "nnvis.nn.models")
  if not ok then return false end
  for _, name in ipairs(models.available) do if name == arch then return true end end
  return false
end

--- weights.resolve(arch, name) -> {arch =, name =, file =, url =, sha256 = prefix,
--- num_classes =}: the weight set `name` of arch ("DEFAULT" gives the set it stands for;
--- num_classes is nil for a registered set that did not give it).
--- Raises for an unknown name (listing the known ones) and for a model without weights.
function M.resolve(arch, name)
  if type(arch) ~= "string" then util.raise("weights: arch must be a string, got " .. type(arch)) end
  local sets = files[arch]
  if not sets then
    if is_nnvis_model(arch) then
      util.raise(("%s: torchvision publishes no weights for this model (weights = nil, the default, " ..
        "initializes it randomly; model:load(path) reads weights of your own)"):format(arch))
    end
    util.raise(("weights: no weights known for '%s' (models with weights: %s)"):format(arch,
      table.concat(M.archs(), ", ")))
  end
  if type(name) ~= "string" then
    util.raise(("%s: weights must be a string (one of %s), got %s"):format(arch,
      table.concat(sorted_names(sets), ", "), type(name)))
  end
  local set = name == "DEFAULT" and sets.DEFAULT or name
  local file = set and sets[set]
  if set == "DEFAULT" or not file then
    util.raise(("%s: unknown weights '%s' (known: %s)"):format(arch, name, table.concat(sorted_names(sets), ", ")))
  end
  local url = file:find("://", 1, true) and file or M.base_url() .. "/" .. file
  local n = (classes[arch] or {})[set]
  if n == nil then n = 1000 end
  return { arch = arch, name = set, file = file:match("[^/]*$"), url = url,
           sha256 = sha_prefix(file:match("[^/]*$")), num_classes = n or nil }
end

--- weights.register(arch, name, file [, {num_classes = n}]): adds (or replaces) a weight set
--- of arch: file is a name under base_url() or a full http(s) URL, and the name must carry the
--- sha256 prefix of the file's contents as torchvision's do (resnet18-f37072fd.pth); n, when
--- given, is checked against the builder's opts.num_classes.  name
--- "DEFAULT" with file the name of a set makes that set the default.  file nil removes the set.
function M.register(arch, name, file, opts)
  opts = util.check_opts("weights.register", opts, { "num_classes" })
  if type(arch) ~= "string" or type(name) ~= "string" then
    util.raise("weights.register: arch and name must be strings")
  end
  local sets = files[arch]
  if file == nil then
    if sets then
      sets[name] = nil
      if sets.DEFAULT == name then sets.DEFAULT = nil end
      if next(sets) == nil then files[arch] = nil end
    end
    if classes[arch] then classes[arch][name] = nil end
    return
  end
  if type(file) ~= "string" then util.raise("weights.register: file must be a string, got " .. type(file)) end
  if name == "DEFAULT" then
    if not (sets and sets[file]) then
      util.raise(("weights.register: %s has no weight set '%s' to make the default"):format(arch, file))
    end
    sets.DEFAULT = file
    return
  end
  if not sha_prefix(file:match("[^/]*$")) then
    util.raise(("weights.register: the file name %s carries no sha256 prefix (expected %s-<hex>.pth)")
      :format(file, arch))
  end
  files[arch] = sets or {}
  files[arch][name] = file
  classes[arch] = classes[arch] or {}
  classes[arch][name] = opts.num_classes or false
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local function mb(n) return ("%.1f MB"):format(n / 1e6) end

local function nothing() end

-- the progress reporter for a download and the function that ends its line: opts.progress nil
-- draws on stderr when it is a terminal, true on stderr always, a file handle there, a
-- function is called as fn(done, total)
local function reporter(progress, e, dest)
  if type(progress) == "function" then return progress, nothing end
  if progress == false or (progress == nil and not core.isatty(2)) then return nil, nothing end
  local out = io.type(progress) == "file" and progress or io.stderr
  out:write(("Downloading %s to %s\n"):format(e.url, dest))
  out:flush()
  local last, t0, drawn = -1, core.now(), false
  local function draw(done, total)
    if done == 0 then return end
    -- a redraw for each 0.1% (or each MB while the size is unknown), not each packet
    local step = total and done * 1000 // total or done // 1000000
    if step == last then return end
    last, drawn = step, true
    local rate = done / math.max(core.now() - t0, 1e-3)
    if total then
      out:write(("\r[%s] %5.1f%%  %s / %s  %s/s "):format(util.bar(done / total, 30), 100 * done / total,
        mb(done), mb(total), mb(rate)))
    else
      out:write(("\r%s  %s/s "):format(mb(done), mb(rate)))
    end
    out:flush()
  end
  return draw, function()
    if drawn then out:write("\n"); out:flush() end
  end
end

local function random_suffix() return ("%08x"):format(math.random(0, 0x7fffffff)) end

-- downloads e into nnvis's cache: a temporary file next to it, checked, then renamed
local function download(e, progress)
  local dir = M.cache_dir()
  local dest = dir .. "/" .. e.file
  local by_hand = ("download it by hand and put it at %s (or in PyTorch's folder %s/)"):format(dest, M.torch_dir())
  local ok, err = core.mkdirs(dir)
  if not ok then
    util.raise(("%s: cannot download the weights %s from %s: %s; %s"):format(e.arch, e.name, e.url, err, by_hand))
  end
  local tmp = ("%s.%s.part"):format(dest, random_suffix())
  local draw, finish = reporter(progress, e, dest)
  local pok
  pok, ok, err = pcall(core.http_get, e.url, tmp, { progress = draw, max_bytes = MAX_BYTES })
  finish()
  if not pok then error(ok, 0) end   -- the progress function raised (or an interrupt): re-raised
  if not ok then   -- http_get leaves nothing at tmp
    util.raise(("%s: cannot download the weights %s from %s (%s); %s"):format(e.arch, e.name, e.url,
      err:gsub("^cannot download [^ ]*: ", ""), by_hand))
  end
  local hex, herr = core.sha256_file(tmp)
  if not hex or hex:sub(1, #e.sha256) ~= e.sha256 then
    os.remove(tmp)
    if not hex then util.raise(("%s: %s"):format(e.arch, herr)) end
    util.raise(("%s: the file downloaded from %s is corrupt: its sha256 starts with %s, the name %s " ..
      "expects %s; it was not kept (try again, or %s)"):format(e.arch, e.url, hex:sub(1, #e.sha256), e.file,
      e.sha256, by_hand))
  end
  local rok, rerr = os.rename(tmp, dest)
  if not rok then
    os.remove(tmp)
    util.raise(("%s: cannot put the downloaded weights at %s: %s"):format(e.arch, dest, tostring(rerr)))
  end
  return dest
end

--- weights.fetch(arch, name [, {progress = nil}]) -> path, downloaded: the file of arch's weight
--- set `name` (or of the set weights.resolve returned, as arch) on disk: in nnvis's cache, else
--- in PyTorch's, else downloaded into nnvis's cache (downloaded = true).  opts.progress: nil draws the download's progress on stderr when it is a
--- terminal, true always, false never, a file handle there, a function is called as
--- fn(bytes_done, bytes_total or nil).  Raises when the download fails, naming the URL and the
--- path where to put the file by hand, and for a file whose sha256 does not match its name.
function M.fetch(arch, name, opts)
  opts = util.check_opts("weights.fetch", opts, { "progress" })
  local p = opts.progress
  if not (p == nil or type(p) == "boolean" or type(p) == "function" or io.type(p) == "file") then
    util.raise("weights: progress must be a boolean, a function or a file, got " .. type(p))
  end
  local e = type(arch) == "table" and arch or M.resolve(arch, name)
  for _, dir in ipairs { M.cache_dir(), M.torch_dir() } do
    local path = dir .. "/" .. e.file
    if exists(path) then return path, false end
  end
  return download(e, opts.progress), true
end

--- weights.load(model, name [, {progress = nil}]) -> model: the weight set `name` of
--- model.name's architecture (fetched as weights.fetch does) loaded with model:load(path)
function M.load(model, name, opts)
  opts = util.check_opts("weights.load", opts, { "progress" })
  if type(model) ~= "table" or type(model.load) ~= "function" then
    util.raise("weights.load: expected a model (nv.models.vgg16() ...), got " .. type(model))
  end
  local e = type(name) == "table" and name or M.resolve(model.name, name)
  local path, fresh = M.fetch(e, nil, opts)
  local ok, err = pcall(model.load, model, path)
  if not ok then
    local msg = tostring(err):gsub("^[^:]*:%d+: ", "")
    if not fresh then   -- a file found in a cache (perhaps put there by hand): is it the right one?
      local hex = core.sha256_file(path)
      if hex and hex:sub(1, #e.sha256) ~= e.sha256 then
        msg = msg .. (" (its sha256 starts with %s, not %s: delete it to download it again)")
          :format(hex:sub(1, #e.sha256), e.sha256)
      end
    end
    util.raise(("%s: cannot load the weights %s: %s"):format(e.arch, e.name, msg))
  end
  return model
end

return M
