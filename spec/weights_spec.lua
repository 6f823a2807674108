-- nnvis.weights and nv.models' `weights` option: torchvision's weight files, downloaded through
-- libcurl into a cache, checked against the sha256 prefix of their names, loaded with
-- model:load.  Fully offline: a weight set of the small Fashion-MNIST CNN is registered (its
-- file written with Debian's python3-torch from nnvis's own state dict, so it is a real
-- torch.save file), served by `python3 -m http.server` on 127.0.0.1, and the caches are
-- temporary folders (weights.config), so nothing touches ~/.cache or the network.
local nv = require "nnvis"
local H = require "helpers"
local core = require "nnvis.core"
local weights = require "nnvis.io.weights"

local PY = "/usr/bin/python3"   -- Debian's (python3-torch), not whichever is first on PATH
local have_torch = H.sh(PY .. " -c 'import torch'")

-- safetensors (read by hand: Debian 12 has no python3-safetensors) -> torch.save, with
-- num_batches_tracked as PyTorch keeps it (a 0-d int64)
local TO_PTH = [[
import collections, json, struct, sys, torch
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header, data = json.loads(raw[8:8 + n]), raw[8 + n:]
sd = collections.OrderedDict()
for k in sorted(header):
    if k == "__metadata__": continue
    a, b = header[k]["data_offsets"]
    vals = struct.unpack("<%df" % ((b - a) // 4), data[a:b])
    if k.endswith("num_batches_tracked"):
        sd[k] = torch.tensor(int(vals[0]), dtype=torch.long)
    else:
        sd[k] = torch.tensor(vals, dtype=torch.float32).reshape(header[k]["shape"])
torch.save(sd, sys.argv[2])
]]

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function write(path, s)
  local f = assert(io.open(path, "wb"))
  assert(f:write(s))
  assert(f:close())
end

-- the names in a folder (none for a missing folder)
local function listing(dir)
  local p = io.popen("ls -A " .. q(dir) .. " 2>/dev/null")
  local names = {}
  for l in p:lines() do names[#names + 1] = l end
  p:close()
  table.sort(names)
  return names
end

local function sleep(s) os.execute("sleep " .. s) end

-- the message of the error fn raises, without the position
local function error_of(fn)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected an error")
  return (tostring(err):gsub("^[^:]*:%d+: ", ""))
end

local function contains(s, part) assert(s:find(part, 1, true), ("%q does not contain %q"):format(s, part)) end

-- outputs of a model on a fixed input, in eval mode
local function outputs(m)
  m:eval()
  nv.manual_seed(5)
  local x = nv.randn(2, 1, 28, 28)
  return nv.no_grad(function() return m(x) end)
end

describe("nnvis.io.weights", function()
  local it_torch = H.it_if(have_torch, "python3-torch")

  describe("torchvision's weight sets", function()
    it("name torchvision's files for every model nnvis defines but the Fashion-MNIST CNN", function()
      for _, arch in ipairs(nv.models.available) do
        local names = weights.names(arch)
        if arch == "fashion_cnn" then
          assert.same({}, names)
        else
          assert.equal("DEFAULT", names[#names], arch)
          for _, name in ipairs(names) do
            local e = weights.resolve(arch, name)
            assert.matches("^https://download%.pytorch%.org/models/" .. e.file:gsub("%p", "%%%0") .. "$", e.url)
            assert.equal(arch, e.file:sub(1, #arch))
            assert.matches("^%x%x%x%x%x%x%x%x$", e.sha256)
            assert.equal("-" .. e.sha256 .. ".pth", e.file:sub(-13))
            assert.equal(1000, e.num_classes)
          end
        end
      end
      assert.equal("vgg16-397923af.pth", weights.resolve("vgg16", "IMAGENET1K_V1").file)
      assert.equal("resnet18-f37072fd.pth", weights.resolve("resnet18", "DEFAULT").file)
      assert.equal("IMAGENET1K_V2", weights.resolve("resnet50", "DEFAULT").name)
      assert.equal("resnet50-11ad3fa6.pth", weights.resolve("resnet50", "DEFAULT").file)
      assert.equal("resnet50-0676ba61.pth", weights.resolve("resnet50", "IMAGENET1K_V1").file)
      assert.same({ "IMAGENET1K_V1", "DEFAULT" }, weights.names("resnet18"))
    end)

    it("raise for an unknown weight set, listing the known ones, before building the model", function()
      assert.equal("vgg16: unknown weights 'IMAGENET1K_V2' (known: IMAGENET1K_FEATURES, IMAGENET1K_V1, DEFAULT)",
        error_of(function() nv.models.vgg16 { weights = "IMAGENET1K_V2" } end))
      assert.equal("resnet50: unknown weights 'imagenet1k_v2' (known: IMAGENET1K_V1, IMAGENET1K_V2, DEFAULT)",
        error_of(function() nv.models.resnet50 { weights = "imagenet1k_v2" } end))
      contains(error_of(function() nv.models.resnet18 { weights = true } end),
        "resnet18: weights must be a string (one of IMAGENET1K_V1, DEFAULT), got boolean")
    end)

    it("say so for a model torchvision publishes no weights for", function()
      assert.equal("fashion_cnn: torchvision publishes no weights for this model (weights = nil, the default, " ..
        "initializes it randomly; model:load(path) reads weights of your own)",
        error_of(function() nv.models.fashion_cnn { weights = "DEFAULT" } end))
    end)

    it("refuse a num_classes the weights do not have", function()
      assert.equal("resnet50: the weights IMAGENET1K_V2 have 1000 classes, opts.num_classes is 10",
        error_of(function() nv.models.resnet50 { weights = "DEFAULT", num_classes = 10 } end))
    end)

    it("leave weights = nil (and false) a random initialization that downloads nothing", function()
      local before = weights.config { base_url = "http://127.0.0.1:9", cache_dir = "/nonexistent/nnvis" }
      local ok, err = pcall(function()
        assert.equal("resnet18", nv.models.resnet18 { weights = nil }.name)
        assert.equal("resnet18", nv.models.resnet18 { weights = false }.name)
      end)
      weights.config(before)
      assert(ok, err)
    end)
  end)

  describe("cache folders", function()
    -- the environment is read at each call: a child lua with its own environment shows it
    local function dirs(env)
      local p = io.popen("env -u XDG_CACHE_HOME -u TORCH_HOME " .. env ..
        " lua5.4 -e 'local w = require \"nnvis.io.weights\"; io.write(w.cache_dir(), \"|\", w.torch_dir())' 2>&1")
      local out = p:read("a")
      p:close()
      return out
    end

    it("are ~/.cache/nnvis and ~/.cache/torch/hub/checkpoints, or under $XDG_CACHE_HOME and $TORCH_HOME", function()
      assert.equal("/h/.cache/nnvis|/h/.cache/torch/hub/checkpoints", dirs("HOME=/h"))
      assert.equal("/x/nnvis|/x/torch/hub/checkpoints", dirs("HOME=/h XDG_CACHE_HOME=/x"))
      assert.equal("/x/nnvis|/t/hub/checkpoints", dirs("HOME=/h XDG_CACHE_HOME=/x TORCH_HOME=/t/"))
    end)

    it("follow weights.config, and config(before) restores the environment's", function()
      local before = weights.config { cache_dir = "/c/", torch_dir = "/t", base_url = "http://mirror/models/" }
      assert.equal("/c", weights.cache_dir())
      assert.equal("/t", weights.torch_dir())
      assert.equal("http://mirror/models", weights.base_url())
      assert.equal("http://mirror/models/resnet18-f37072fd.pth", weights.resolve("resnet18", "DEFAULT").url)
      weights.config(before)
      assert.equal(weights.BASE_URL, weights.base_url())
      assert.matches("/nnvis$", weights.cache_dir())
    end)
  end)

  describe("core.sha256_file and core.http_get", function()
    it("sha256_file gives a file's SHA-256 in hex, nil and a message for a missing file", function()
      local path = os.tmpname()
      write(path, "abc")
      assert.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", core.sha256_file(path))
      os.remove(path)
      local hex, err = core.sha256_file(path)
      assert.is_nil(hex)
      contains(err, "cannot open " .. path)
    end)

    it("http_get speaks only http and https", function()
      local path = os.tmpname()
      os.remove(path)
      local ok, err = core.http_get("file:///etc/hostname", path)
      assert.is_nil(ok)
      contains(err, "cannot download file:///etc/hostname")
      assert.is_nil(read(path))
    end)
  end)

  describe("downloads", function()
    local root, srv, good, file, sha, port, pid, reference

    local function url(name) return ("http://127.0.0.1:%d/%s"):format(port, name or file) end
    local function cache() return root .. "/cache" end
    local function torch_cache() return root .. "/torch" end

    local function start_server()
      local pidfile = root .. "/server.pid"
      os.execute(H.CLEAN .. ("%s -m http.server --bind 127.0.0.1 --directory %s %d > %s 2>&1 & echo $! > %s")
        :format(PY, q(srv), port, q(root .. "/server.log"), q(pidfile)))
      pid = assert(tonumber(read(pidfile)))
      for _ = 1, 100 do   -- until it answers (at most 10 s)
        local probe = root .. "/probe"
        local ok = core.http_get(url("ready.txt"), probe)
        os.remove(probe)
        if ok then return end
        sleep(0.1)
      end
      error("the http.server did not start: " .. (read(root .. "/server.log") or ""))
    end

    local function stop_server()
      if not pid then return end
      os.execute("kill " .. pid .. " 2>/dev/null")
      for _ = 1, 100 do   -- until it is gone (or a zombie for init to reap): the port is closed
        local stat = read("/proc/" .. pid .. "/stat")
        if not stat or stat:match("^.*%) (%a)") == "Z" then break end
        sleep(0.05)
      end
      pid = nil
    end

    setup(function()
      if not have_torch then return end
      root = os.tmpname()
      os.remove(root)
      assert(core.mkdirs(root .. "/srv"))
      srv = root .. "/srv"
      write(srv .. "/ready.txt", "ok")
      -- the checkpoint: the Fashion-MNIST CNN with BN statistics that are not the defaults
      nv.manual_seed(3)
      reference = nv.models.fashion_cnn()
      for _, name in ipairs { "features.1", "features.5" } do
        local bn = reference:get(name)
        bn.running_mean:copy(nv.randn(bn.running_mean:shape()) * 0.1)
        bn.running_var:copy(nv.rand(bn.running_var:shape()) + 0.5)
      end
      assert(nv.save_safetensors(reference:state_dict(), root .. "/sd.safetensors"))
      write(root .. "/to_pth.py", TO_PTH)
      local ok, out = H.sh(("%s %s %s %s"):format(PY, q(root .. "/to_pth.py"), q(root .. "/sd.safetensors"),
        q(root .. "/good.pth")))
      assert(ok, out)
      good = read(root .. "/good.pth")
      sha = core.sha256_file(root .. "/good.pth"):sub(1, 8)
      file = "fashion_cnn-" .. sha .. ".pth"
      -- a free port: the one the system gives a socket bound to port 0
      local p = io.popen(H.CLEAN .. PY ..
        " -c 'import socket; s = socket.socket(); s.bind((\"127.0.0.1\", 0)); print(s.getsockname()[1])'")
      port = assert(tonumber(p:read("a")))
      p:close()
    end)

    teardown(function()
      stop_server()
      if root then os.execute("rm -rf " .. q(root)) end
    end)

    local before
    before_each(function()
      if not have_torch then return end
      os.execute("rm -rf " .. q(cache()) .. " " .. q(torch_cache()))
      write(srv .. "/" .. file, good)
      weights.register("fashion_cnn", "TEST_V1", file, { num_classes = 10 })
      weights.register("fashion_cnn", "DEFAULT", "TEST_V1")
      before = weights.config { base_url = url(""), cache_dir = cache(), torch_dir = torch_cache() }
      start_server()
    end)

    after_each(function()
      stop_server()
      if not have_torch then return end
      weights.config(before)
      weights.register("fashion_cnn", "TEST_V1", nil)
    end)

    it_torch("put the file in the cache under its name, and the model gives the file's outputs", function()
      local m = nv.models.fashion_cnn { weights = "TEST_V1", progress = false }
      assert.same({ file }, listing(cache()))   -- and no temporary file beside it
      assert.equal(good, read(cache() .. "/" .. file))
      local direct = nv.models.fashion_cnn()
      direct:load(srv .. "/" .. file)
      local want = outputs(direct)
      assert.equal(0, H.maxdiff(outputs(m), want))
      assert.equal(0, H.maxdiff(outputs(reference), want))
      assert.equal(0, H.maxdiff(m:get("features.5").running_var, reference:get("features.5").running_var))
      assert.equal("fashion_cnn: the weights TEST_V1 have 10 classes, opts.num_classes is 5",
        error_of(function() nv.models.fashion_cnn { weights = "TEST_V1", num_classes = 5 } end))
    end)

    it_torch("happen once: with the server stopped the cached file still loads", function()
      nv.models.fashion_cnn { weights = "DEFAULT", progress = false }
      stop_server()
      local path, downloaded = weights.fetch("fashion_cnn", "DEFAULT")
      assert.equal(cache() .. "/" .. file, path)
      assert.is_false(downloaded)
      local m = nv.models.fashion_cnn { weights = "DEFAULT", progress = false }
      assert.equal(0, H.maxdiff(outputs(m), outputs(reference)))
    end)

    it_torch("use a file already in PyTorch's cache without downloading it", function()
      assert(core.mkdirs(torch_cache()))
      write(torch_cache() .. "/" .. file, good)
      stop_server()
      local m = nv.models.fashion_cnn { weights = "TEST_V1", progress = false }
      assert.equal(0, H.maxdiff(outputs(m), outputs(reference)))
      assert.same({}, listing(cache()))
    end)

    it_torch("refuse a corrupt file, naming both sha256 prefixes, and keep nothing of it", function()
      local bad = good:sub(1, 100) .. string.char((good:byte(101) + 1) % 256) .. good:sub(102)
      write(srv .. "/" .. file, bad)
      write(root .. "/bad", bad)
      local actual = core.sha256_file(root .. "/bad"):sub(1, 8)
      local err = error_of(function() nv.models.fashion_cnn { weights = "TEST_V1", progress = false } end)
      contains(err, ("fashion_cnn: the file downloaded from %s is corrupt: its sha256 starts with %s, the name %s " ..
        "expects %s; it was not kept"):format(url(), actual, file, sha))
      assert.same({}, listing(cache()))   -- not even a .part
    end)

    it_torch("name the URL and the path to put the file by hand when the download fails", function()
      stop_server()
      local err = error_of(function() nv.models.fashion_cnn { weights = "TEST_V1", progress = false } end)
      contains(err, "fashion_cnn: cannot download the weights TEST_V1 from " .. url())
      contains(err, "download it by hand and put it at " .. cache() .. "/" .. file)
      contains(err, torch_cache())
      assert.same({}, listing(cache()))
    end)

    it_torch("name the HTTP status when the server has no such file", function()
      os.remove(srv .. "/" .. file)
      local err = error_of(function() weights.fetch("fashion_cnn", "TEST_V1", { progress = false }) end)
      contains(err, "from " .. url() .. " (HTTP 404)")
      assert.same({}, listing(cache()))
    end)

    it_torch("report progress to a function, and to a file when asked", function()
      local calls, last, total = 0, nil, nil
      weights.fetch("fashion_cnn", "TEST_V1", { progress = function(done, size)
        calls, last, total = calls + 1, done, size
      end })
      assert.is_true(calls > 0)
      assert.equal(#good, last)
      assert.equal(#good, total)
      os.remove(cache() .. "/" .. file)
      local log = root .. "/progress.txt"
      local f = assert(io.open(log, "w"))
      weights.fetch("fashion_cnn", "TEST_V1", { progress = f })
      f:close()
      local text = read(log)
      contains(text, "Downloading " .. url() .. " to " .. cache() .. "/" .. file .. "\n")
      contains(text, "100.0%")
    end)

    it_torch("stop when the progress function raises, raising its error and keeping nothing", function()
      local err = error_of(function()
        weights.fetch("fashion_cnn", "TEST_V1", { progress = function(done) if done > 0 then error("stop here") end end })
      end)
      contains(err, "stop here")
      assert.same({}, listing(cache()))
    end)

    it_torch("http_get refuses a body larger than max_bytes and leaves no file", function()
      local path = root .. "/capped"
      local ok, err = core.http_get(url(), path, { max_bytes = 1000 })
      assert.is_nil(ok)
      contains(err, "cannot download " .. url() .. ": larger than 1000 bytes")
      assert.is_nil(read(path))
      assert.is_true(core.http_get(url(), path, { max_bytes = #good }))
      assert.equal(good, read(path))
      os.remove(path)
    end)
  end)

  if not have_torch then H.missing("download specs skipped: python3-torch is not installed (" .. PY .. ")") end
end)
