-- The board's page in headless Debian Chromium: a log dir written here (two runs with scalars, a
-- histogram, images, text with <script> and Markdown, hparams, a projector embedding, a GraphDef
-- and nnvis's own diagram), served by nv.board.serve, driven by spec/board_browser.js (which
-- prints what it saw as JSON).  While the page is open, a tag and a run are written here and must
-- appear on the page.
local nv = require "nnvis"
local H = require "helpers"
local TB = require "nnvis.io.tensorboard"

local has_board = pcall(require, "nnvis.ui.board")
local node_ok = os.execute("command -v node >/dev/null 2>&1 && test -x /usr/bin/chromium && test -d build/node/node_modules/playwright-core")

-- ---- bytes the writer has no method for: a GraphDef event ---------------------------------------
local varint = TB.varint
local function key(f, w) return varint((f << 3) | w) end
local function f_bytes(f, s) return key(f, 2) .. varint(#s) .. s end
local function f_varint(f, n) return key(f, 0) .. varint(n) end
-- GraphDef { node = 1 { name = 1, op = 2, input = 3, attr = 5 map<string, AttrValue { type = 6 }> } }
local function graph_def(nodes)
  local parts = {}
  for i, n in ipairs(nodes) do
    local b = f_bytes(1, n[1]) .. f_bytes(2, n[2])
    for _, inp in ipairs(n[3] or {}) do b = b .. f_bytes(3, inp) end
    b = b .. f_bytes(5, f_bytes(1, "T") .. f_bytes(2, f_varint(6, 1)))   -- T: DT_FLOAT
    parts[i] = f_bytes(1, b)
  end
  -- Event { wall_time = 1, step = 2, graph_def = 4 }
  return TB.record(key(1, 1) .. string.pack("<d", os.time()) .. f_varint(2, 0) .. f_bytes(4, table.concat(parts)))
end

local function write_file(path, s)
  local f = assert(io.open(path, "wb")); f:write(s); f:close()
end
local function exists(path) local f = io.open(path, "rb"); if f then f:close() end return f ~= nil end
local function sleep(s) os.execute(string.format("sleep %.2f", s)) end

local MARKDOWN = "# Notes\n\n**bold** and `code`\n\n<script>window.textScriptRan = 1</script>\n\n- one\n- two\n"
local DIAGRAM = '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="120"><rect x="10" y="10" width="100" ' ..
  'height="40" fill="#dbe8f5"/><text x="20" y="35">Linear(4 -> 8)</text><script>window.svgScriptRan = 1</script></svg>'

-- the log dir: runs lr0.1 and lr0.01; returns the still-open writer of lr0.1 (the live tag goes there)
local function write_logdir(dir)
  nv.manual_seed(0)
  local open
  for r, lr in ipairs { 0.1, 0.01 } do
    local run = dir .. "/lr" .. lr
    local w = TB.writer(run)
    for s = 0, 59 do
      w:scalar("loss", 2 * math.exp(-s * lr * 0.5) + 0.1 * math.sin(s * 1.7 + r), s * 10)
      w:scalar("metrics/accuracy", 1 - math.exp(-s * lr * 0.3), s * 10)
    end
    for s = 0, 4 do w:histogram("dense/weight", nv.randn(500) * (1 - 0.1 * s) + 0.2 * s, s * 10) end
    for s = 0, 2 do w:image("samples", nv.rand(3, 12, 16) * (0.3 + 0.3 * s), s * 10) end
    w:text("notes", MARKDOWN, 0)
    w:hparams { lr = lr, optimizer = lr > 0.05 and "sgd" or "adam", layers = r + 1 }
    if r == 2 then w:text("nnvis/graph_svg", DIAGRAM, 0) end
    w:flush()
    if r == 1 then
      open = w
      write_file(run .. "/events.out.tfevents.0.graph.nnvis", graph_def {
        { "input", "Placeholder" }, { "dense/kernel", "VariableV2" }, { "dense/MatMul", "MatMul", { "input", "dense/kernel" } },
        { "relu", "Relu", { "dense/MatMul" } }, { "loss", "Mean", { "relu", "^dense/kernel" } } })
      local rows, meta = {}, { "label\tcluster" }
      for i = 1, 120 do
        local c = i % 3
        local v = {}
        for j = 1, 6 do v[j] = string.format("%.4f", (j % 3 == c and 3 or 0) + math.sin(i * 7.1 + j * 3.3)) end
        rows[i] = table.concat(v, "\t")
        meta[#meta + 1] = "p" .. i .. "\t" .. ("abc"):sub(c + 1, c + 1)
      end
      write_file(run .. "/tensors.tsv", table.concat(rows, "\n") .. "\n")
      write_file(run .. "/metadata.tsv", table.concat(meta, "\n") .. "\n")
      write_file(run .. "/projector_config.pbtxt",
        'embeddings {\n  tensor_name: "embedding"\n  tensor_path: "tensors.tsv"\n  metadata_path: "metadata.tsv"\n}\n')
    else
      w:close()
    end
  end
  return open
end

local function drive()
  local dir = os.tmpname(); os.remove(dir)
  local ctl = dir .. "-ctl"
  os.execute("mkdir -p '" .. dir .. "' '" .. ctl .. "'")
  local live = write_logdir(dir)
  local h = nv.board.serve { logdir = dir, port = 0 }
  local pid
  local ok, res = pcall(function()
    -- node and the browser run as a fresh shell runs them (H.CLEAN): under SANITIZE=1 the
    -- sanitizer runtimes are preloaded, and uninstrumented programs hang or fail in them
    local p = io.popen(H.CLEAN .. string.format("(node spec/board_browser.js '%s' '%s' build/board.png > '%s/out.json' 2> '%s/err.txt';" ..
      " touch '%s/done') >/dev/null 2>&1 & echo $!", h.url, ctl, ctl, ctl, ctl))
    pid = p:read("l"); p:close()
    local t0, wrote = os.time(), false
    while not exists(ctl .. "/done") do
      if not wrote and exists(ctl .. "/ready") then
        -- while the page is open: a new tag in a run it shows, and a new run
        for s = 0, 9 do live:scalar("live/metric", s * s, s) end
        live:flush()
        local w = TB.writer(dir .. "/lr0.001")
        for s = 0, 19 do w:scalar("loss", 1 / (1 + s), s * 10) end
        w:close()
        wrote = true
      end
      assert(os.time() - t0 < 90, "the browser script did not finish in 90 s")
      sleep(0.1)
    end
    local f = assert(io.open(ctl .. "/out.json")); local txt = f:read("a"); f:close()
    local ef = io.open(ctl .. "/err.txt"); local err = ef and ef:read("a") or ""; if ef then ef:close() end
    return { json = txt, err = err }
  end)
  if not ok and pid then os.execute("kill " .. pid .. " 2>/dev/null") end
  live:close()
  h:close()
  os.execute("rm -rf '" .. dir .. "' '" .. ctl .. "'")
  assert(ok, res)
  return res
end

-- a tiny JSON reader for the browser script's output (objects, arrays, strings, numbers, literals)
local function json_decode(s)
  local i = 1
  local function ws() i = s:find("[^ \t\r\n]", i) or #s + 1 end
  local value
  local function str()
    local out = {}
    i = i + 1
    while true do
      local c = s:sub(i, i)
      if c == '"' then i = i + 1; break end
      if c == "\\" then
        local e = s:sub(i + 1, i + 1)
        if e == "u" then
          local cp = tonumber(s:sub(i + 2, i + 5), 16)
          out[#out + 1] = utf8.char(cp); i = i + 6
        else
          out[#out + 1] = ({ n = "\n", t = "\t", r = "\r", b = "\b", f = "\f" })[e] or e; i = i + 2
        end
      else out[#out + 1] = c; i = i + 1 end
    end
    return table.concat(out)
  end
  function value()
    ws()
    local c = s:sub(i, i)
    if c == "{" then
      local t = {}; i = i + 1; ws()
      if s:sub(i, i) == "}" then i = i + 1; return t end
      repeat
        ws(); local k = str(); ws(); i = i + 1  -- ':'
        t[k] = value(); ws()
        local sep = s:sub(i, i); i = i + 1
      until sep == "}"
      return t
    elseif c == "[" then
      local t = {}; i = i + 1; ws()
      if s:sub(i, i) == "]" then i = i + 1; return t end
      repeat
        t[#t + 1] = value(); ws()
        local sep = s:sub(i, i); i = i + 1
      until sep == "]"
      return t
    elseif c == '"' then return str()
    elseif s:sub(i, i + 3) == "true" then i = i + 4; return true
    elseif s:sub(i, i + 4) == "false" then i = i + 5; return false
    elseif s:sub(i, i + 3) == "null" then i = i + 4; return nil
    else
      local num = s:match("^-?[%d.eE+-]+", i); i = i + #num
      return tonumber(num)
    end
  end
  return value()
end

local function contains(list, x)
  for _, v in ipairs(list or {}) do if v == x then return true end end
  return false
end

describe("the board's page", function()
  if not has_board then
    it("runs", function() H.missing("nv.board is missing (lua/nnvis/ui/board/init.lua and nnvis.http): the page is not driven") end)
    return
  end
  if not node_ok then
    it("runs", function() H.missing("node, /usr/bin/chromium or build/node/node_modules/playwright-core is missing (make deps)") end)
    return
  end

  local out, raw
  setup(function()
    raw = drive()
    out = json_decode(raw.json)
  end)

  it("loads without a script error", function()
    assert.is_nil(out.fatal, out.fatal)
    assert.same({}, out.errors)
  end)

  it("lists the runs and their scalar tags", function()
    assert.is_true(contains(out.runs, "lr0.1") and contains(out.runs, "lr0.01"), raw.json:sub(1, 400))
    assert.is_true(contains(out.scalar_tags, "loss") and contains(out.scalar_tags, "metrics/accuracy"))
    for _, tab in ipairs { "scalars", "histograms", "distributions", "images", "text", "hparams", "projector", "graph" } do
      assert.is_true(contains(out.tabs_enabled, tab), tab .. " has data but its tab is disabled")
    end
  end)

  it("shows the value at the hovered step", function()
    assert.is_table(out.hover, "no legend row for the hovered run")
    assert.equal(out.hover_expected.step, out.hover.step)
    assert.near(out.hover_expected.value, out.hover.value, 1e-9)
    assert.truthy(out.hover.text:find(tostring(out.hover.step), 1, true))
  end)

  it("zooms the x axis on a drag", function()
    local b, a = out.zoom.before, out.zoom.after
    assert.is_true(a[1] > b[1] and a[2] < b[2], string.format("x range %g..%g -> %g..%g", b[1], b[2], a[1], a[2]))
  end)

  it("smooths the drawn line (TensorBoard's debiased EMA), never the data", function()
    local s = out.smoothing
    assert.is_true(s.data_unchanged, "the fetched data changed")
    assert.is_true(s.raw_unchanged and s.raw_is_data, "the faint raw line is not the data")
    assert.is_true(s.unsmoothed_is_data, "smoothing 0 does not draw the data")
    assert.is_true(s.drawn_changed, "smoothing did not change the drawn line")
    assert.is_true(s.drawn_is_ema, "the drawn line is not the debiased EMA of the data")
  end)

  it("changes the image with the step slider and shows it full size on a click", function()
    local im = out.images
    assert.equal(3, im.count)
    assert.are_not.equal(im.src_last, im.src_first)
    assert.truthy(im.src_first:find("/api/image?", 1, true))
    assert.truthy(im.label:find("step 0", 1, true))
    assert.equal(im.src_first, im.overlay)
  end)

  it("renders text as Markdown and never runs its <script>", function()
    assert.is_false(out.text.script_ran)
    assert.equal(0, out.text.scripts_in_md)
    assert.truthy(out.text.html:find("<strong>bold</strong>", 1, true))
    assert.truthy(out.text.html:find("<h1>Notes</h1>", 1, true))
    assert.truthy(out.text.text:find("<script>", 1, true), "the script tag should be shown as text")
  end)

  it("sorts the hparams table by a column, both ways", function()
    local hp = out.hparams
    assert.equal("h:layers", hp.col)   -- the first hparam column (names sorted)
    assert.same({ "2", "3" }, hp.asc)
    assert.same({ "3", "2" }, hp.desc)
    assert.is_true(contains(hp.headers, "lr") and contains(hp.headers, "optimizer"))
  end)

  it("projects an embedding with PCA and labels points on hover", function()
    assert.equal(120, out.projector.n)
    assert.truthy(out.projector.info:find("variance explained", 1, true))
    assert.is_string(out.projector.tip)
    assert.truthy(out.projector.tip:find("cluster:", 1, true))
  end)

  it("draws a GraphDef in layers with node details, and nnvis's diagram without its script", function()
    local g = out.graph.kinds
    assert.equal("graphdef", g["lr0.1"].kind)
    assert.equal(5, g["lr0.1"].nodes)
    assert.truthy(g["lr0.1"].info:find("Placeholder", 1, true) or g["lr0.1"].info:find("VariableV2", 1, true))
    assert.equal("nnvis", g["lr0.01"].kind)
    assert.is_false(g["lr0.01"].script_ran)
    assert.is_true(g["lr0.01"].elements > 0)
  end)

  it("shows a tag and a run written while it is open within a few seconds, keeping the zoom", function()
    local l = out.live
    assert.is_table(l.new_tags, "no new tag appeared in 10 s")
    assert.is_true(contains(l.new_tags, "live/metric"))
    assert.is_true(contains(l.new_runs, "lr0.001"))
    assert.is_true(l.seconds < 5, l.seconds .. " s")
    assert.is_true(l.version_after > l.version_before)
    assert.near(out.zoom.after[1], l.zoom_after[1], 1e-6)
    assert.near(out.zoom.after[2], l.zoom_after[2], 1e-6)
  end)

  it("requests nothing from another host", function()
    assert.is_true(#out.requests > 5)
    assert.same({}, out.foreign)
  end)

  it("leaves a screenshot of the scalars tab", function()
    assert.is_true(H.is_png("build/board.png"))
  end)
end)
