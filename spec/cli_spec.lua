-- The `nnvis COMMAND` commands, run as a person runs them from a shell: files written, exit
-- codes (0; 1 for a file that cannot be read; 2 with the usage for bad arguments), messages.
local nv = require "nnvis"
local H = require "helpers"

local ROOT = io.popen("pwd"):read("l")
local BIN = ROOT .. "/bin/nnvis"
local ONNX = ROOT .. "/spec/fixtures/onnx/small_cnn_op13.onnx"
local PHOTO = ROOT .. "/spec/fixtures/tiny_photo.jpg"
local PHOTO2 = ROOT .. "/spec/fixtures/photo_baseline.jpg"

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- runs `nnvis args...` in dir; returns the exit code, stdout and stderr
local function nnvis(dir, ...)
  local args = {}
  for i = 1, select("#", ...) do args[i] = q(select(i, ...)) end
  local err = os.tmpname()
  local p = io.popen(("cd %s && %s %s 2>%s"):format(q(dir), q(BIN), table.concat(args, " "), q(err)))
  local out = p:read("a")
  local _, _, code = p:close()
  local e = io.open(err):read("a")
  os.remove(err)
  return code, out, e
end

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p " .. q(d)))
  return d
end

describe("the nnvis commands", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() os.execute("rm -rf " .. q(dir)) end)

  it("summary prints an ONNX model's layer table; depth folds it", function()
    local code, out = nnvis(dir, "summary", ONNX, "--depth", "1")
    assert.equal(0, code)
    assert.matches("Layer %(type%)", out)
    assert.matches("stem %(OnnxScope%)%s+%[1, 8, 16, 16%]", out)
    assert.matches("Total params: [%d,]+", out)
    assert.not_matches("stem%.0 ", out)
    -- the export's constants and shape arithmetic are not layers a person thinks in
    assert.not_matches("/Shape", out)
    assert.not_matches("Constant", out)
    assert.matches("%d+ constant and shape%-arithmetic nodes of the export not shown: {all_nodes = true}", out)
    local m = assert(nv.onnx.load(ONNX))
    local all = nv.summary(m, { 1, 3, 16, 16 }, { depth = 1, all_nodes = true })
    local some = nv.summary(m, { 1, 3, 16, 16 }, { depth = 1 })
    assert.is_true(#all.rows > #some.rows)
    assert.equal(all.total_params, some.total_params)
  end)

  it("summary, diagram and cam read weights for an nv.models architecture (--arch)", function()
    local w = dir .. "/fashion.safetensors"
    nv.models.fashion_cnn():save(w)
    local code, out = nnvis(dir, "summary", w, "--arch", "fashion_cnn", "--depth", "1")
    assert.equal(0, code)
    assert.matches("classifier %(Sequential%)%s+%[1, 10%]", out)
    assert.matches("Total params: 207,018", out)
    code = nnvis(dir, "diagram", w, "--arch", "fashion_cnn", "-o", "f.png")
    assert.equal(0, code)
    local img = assert(nv.image.load(dir .. "/f.png"))
    assert.is_true(img:size(2) > 100)
  end)

  it("diagram writes SVG, PNG, PDF or dot by the extension", function()
    for _, ext in ipairs { "svg", "png", "pdf", "dot" } do
      local code, out = nnvis(dir, "diagram", ONNX, "-o", "m." .. ext, "--direction", "LR")
      assert.equal(0, code)
      assert.matches("m%." .. ext .. ": %d+ layers drawn", out)
      local text = io.open(dir .. "/m." .. ext, "rb"):read("a")
      local head = ({ svg = "<svg", png = "\137PNG", pdf = "%PDF", dot = "digraph" })[ext]
      assert.truthy(text:find(head, 1, true), ext)
    end
  end)

  it("cam writes each image's overlay, titled with its class", function()
    local code, out = nnvis(dir, "cam", ONNX, PHOTO, PHOTO2, "--method", "layercam", "-o", "cams")
    assert.equal(0, code, out)
    assert.matches("cams/tiny_photo_layercam%.png", out)
    for _, f in ipairs { "cams/tiny_photo_layercam.png", "cams/photo_baseline_layercam.png" } do
      local img = assert(nv.image.load(dir .. "/" .. f))
      assert.equal(3, img:size(1))
    end
    local names = dir .. "/classes.txt"
    local f = io.open(names, "w")
    f:write("cat\ndog\nowl\nfox\nelk\n")
    f:close()
    code = nnvis(dir, "cam", ONNX, PHOTO, "--classes", names, "--target", "2")
    assert.equal(0, code)
    assert.truthy(io.open(dir .. "/tiny_photo_gradcam.png"))
  end)

  it("report writes one HTML page", function()
    local code = nnvis(dir, "report", ONNX, PHOTO, "-o", "r.html")
    assert.equal(0, code)
    local html = io.open(dir .. "/r.html"):read("a")
    assert.matches("<html", html)
    assert.matches("Class activation maps", html)
  end)

  it("bad arguments print the command's usage and exit 2; a bad file its message and exit 1", function()
    local code, _, err = nnvis(dir, "diagram", ONNX)
    assert.equal(2, code)
    assert.matches("nnvis diagram: give the output file with %-o", err)
    assert.matches("usage: nnvis diagram MODEL %-o", err)
    code, _, err = nnvis(dir, "cam", ONNX, PHOTO, "--methd", "gradcam")
    assert.equal(2, code)
    assert.matches("unknown option %-%-methd", err)
    code, _, err = nnvis(dir, "summary", dir .. "/weights.pth")
    assert.equal(1, code)
    assert.matches("No such file or directory", err)
    local w = dir .. "/w.safetensors"
    nv.models.fashion_cnn():save(w)
    code, _, err = nnvis(dir, "summary", w)
    assert.equal(2, code)
    assert.matches("name the architecture with %-%-arch %(one of vgg11", err)
    code, _, err = nnvis(dir, "summary", ROOT .. "/spec/fixtures/onnx/bad_truncated.onnx")
    assert.equal(1, code)
    assert.matches("^nnvis summary: onnx%.load", err)
    code, _, err = nnvis(dir, "diagram", ONNX, "-o", "m.gif")
    assert.equal(2, code)
    assert.matches("extension must be one of", err)
  end)

  it("diff names the one layer that changed, as a table or a picture", function()
    local m = nv.models.fashion_cnn()
    m:save(dir .. "/a.safetensors")
    nv.no_grad(function() m:get("classifier.0").weight:mul_(1.5) end)
    m:save(dir .. "/b.safetensors")
    local code, out = nnvis(dir, "diff", "a.safetensors", "b.safetensors", "--arch", "fashion_cnn")
    assert.equal(0, code)
    assert.matches("1 changed %(most: classifier%.0", out)
    assert.matches("classifier%.0%s+%d+%s+0%.5", out)
    code = nnvis(dir, "diff", "a.safetensors", "b.safetensors", "--arch", "fashion_cnn", "-o", "d.png", PHOTO)
    assert.equal(0, code)
    assert.equal(3, assert(nv.image.load(dir .. "/d.png")):size(1))
  end)

  -- starts `nnvis args...` in the background until it prints its URL; returns the URL and a
  -- function that stops it with Ctrl-C's signal and returns its exit code
  local function serving(...)
    local args = {}
    for i = 1, select("#", ...) do args[i] = q(select(i, ...)) end
    local log, code = dir .. "/serve.log", dir .. "/serve.code"
    os.remove(code)
    os.remove(log)
    -- (the background shell's own output goes nowhere: it must not hold busted's stdout open)
    os.execute(("(%s %s > %s 2>&1; echo $? > %s) > /dev/null 2>&1 & echo $! > %s/serve.pid"):format(q(BIN),
      table.concat(args, " "), q(log), q(code), q(dir)))
    local url
    for _ = 1, 100 do
      local f = io.open(log)
      local text = f and f:read("a") or ""
      if f then f:close() end
      url = text:match("(http://127%.0%.0%.1:%d+/)")
      if url then break end
      os.execute("sleep 0.1")
    end
    local pidfile = dir .. "/serve.pid"
    local stopped
    local function stop()
      if stopped ~= nil then return stopped end
      -- the shell's child is the lua5.4 running bin/nnvis: SIGINT reaches it as Ctrl-C does
      os.execute(H.CLEAN .. "pkill -INT -P $(cat " .. q(pidfile) .. ") 2>/dev/null")
      for _ = 1, 100 do
        local f = io.open(code)
        if f then local c = tonumber(f:read("l")); f:close(); if c then stopped = c; return c end end
        os.execute("sleep 0.1")
      end
      os.execute(H.CLEAN .. "pkill -KILL -P $(cat " .. q(pidfile) .. ") 2>/dev/null")
      stopped = false
      return stopped
    end
    finally(stop)     -- stopped even when an assertion fails first
    local f = io.open(log)
    return url, stop, f and f:read("a") or ""
  end

  -- curl (and pkill, above) as a fresh shell runs them: under `make test SANITIZE=1` the
  -- sanitizer runtimes are preloaded, and these uninstrumented tools hang in them
  local function get(url)
    local _, body = H.sh("curl -s -m 5 " .. q(url))
    return body
  end

  it("board serves a log dir on a free port until Ctrl-C, and view a model's graph with its maps", function()
    local tb = nv.tensorboard.writer(dir .. "/logs/run1")
    tb:scalar("loss", 0.5, 1)
    tb:close()
    local url, stop, said = serving("board", dir .. "/logs", "--port", "0")
    assert.truthy(url, "no URL printed: " .. said)
    assert.truthy(get(url .. "api/runs"):find('"loss"', 1, true))
    assert.equal(0, stop())
    local vurl, vstop, vsaid = serving("view", ONNX, "--input", PHOTO, "--size", "16")
    assert.truthy(vurl, "no URL printed: " .. vsaid)
    local g = get(vurl .. "data/graph.json")
    assert.truthy(g:find('"nodes"', 1, true) and g:find('"maps"', 1, true), g:sub(1, 200))
    assert.truthy(get(vurl):find("<html", 1, true))
    assert.equal(0, vstop())
    -- bad arguments: the usage and exit 2
    local code, _, err = nnvis(dir, "view", ONNX, "--port", "70000")
    assert.equal(2, code)
    assert.matches("%-%-port must be an integer in 0%.%.65535", err)
    code, _, err = nnvis(dir, "board")
    assert.equal(2, code)
    assert.matches("give at least one LOGDIR", err)
  end)

  it("help lists the commands and each command's usage", function()
    local code, out = nnvis(dir, "help")
    assert.equal(0, code)
    for _, c in ipairs { "summary", "diagram", "cam", "report", "diff" } do assert.matches("nnvis " .. c, out) end
    code, out = nnvis(dir, "help", "cam")
    assert.equal(0, code)
    assert.matches("usage: nnvis cam MODEL IMAGE", out)
    code = nnvis(dir, "help", "nope")
    assert.equal(2, code)
  end)

  it("a script named like a command still runs as a script", function()
    local f = io.open(dir .. "/summary", "w")
    f:write("print('script ran', nv ~= nil)\n")
    f:close()
    local code, out = nnvis(dir, "summary")
    assert.equal(0, code)
    assert.matches("script ran\ttrue", out)
  end)
end)
