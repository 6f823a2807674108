-- bin/nnvis driven as a person would, in a tmux pane (tmux makes its own terminal, so this
-- runs the same with no terminal and no stdin, as in CI): keys in with send-keys, the
-- screen read back with capture-pane, each wait bounded.
local ROOT = debug.getinfo(1, "S").source:match("^@(.*)/spec/[^/]*$") or "."
if ROOT:sub(1, 1) ~= "/" then ROOT = os.getenv("PWD") .. "/" .. ROOT end

local SOCKET_BASE = string.format("nnvis-spec-%d-%d", os.time(), math.random(1, 1e9))
local sessions = 0
-- tmux itself runs without the sanitizer runtimes of `make test SANITIZE=1`; the REPL gets them
local PRELOAD = os.getenv("LD_PRELOAD")
-- each REPL gets a tmux server of its own: a new session on the socket of a server that is
-- still shutting down can fail with "server exited unexpectedly"
local function tmux_for(n) return "TERM=xterm-256color env -u LD_PRELOAD tmux -L " .. SOCKET_BASE .. "-" .. n end
local TMUX = tmux_for(0)

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok = p:close()
  return ok, out
end

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function screen() return select(2, sh(TMUX .. " capture-pane -p -t repl")) end

-- waits (at most 10 s) until the screen shows text; returns the screen
local function wait_for(text, what)
  local deadline = os.time() + 10
  local s
  repeat
    s = screen()
    if s:find(text, 1, true) then return s end
    os.execute("sleep 0.1")
  until os.time() > deadline
  error(string.format("%s: waited 10 s for %q; the screen:\n%s", what or "repl", text, s), 2)
end

local function keys(...)
  local args = {}
  for i = 1, select("#", ...) do args[i] = q(select(i, ...)) end
  assert(sh(TMUX .. " send-keys -t repl " .. table.concat(args, " ")))
end

-- a REPL in a fresh tmux session, its history in hist
local function start(hist)
  sessions = sessions + 1
  TMUX = tmux_for(sessions)
  local cmd = string.format("%sNNVIS_HISTORY=%s NNVIS_SHOW=file exec %s",
    PRELOAD and ("LD_PRELOAD=" .. q(PRELOAD) .. " ") or "", q(hist), q(ROOT .. "/bin/nnvis"))
  local ok, out = sh(TMUX .. " new-session -d -x 200 -y 50 -s repl " .. q(cmd))
  assert(ok, out)
  wait_for("nnvis>", "start")
end

local function stop() sh(TMUX .. " kill-server") end

local function count(s, text)
  local n, i = 0, 1
  while true do
    local a, b = s:find(text, i, true)
    if not a then return n end
    n, i = n + 1, b + 1
  end
end

describe("the nnvis REPL (bin/nnvis in tmux)", function()
  local hist

  before_each(function()
    hist = os.tmpname()
    os.remove(hist)
  end)

  after_each(function()
    stop()
    os.remove(hist)
  end)

  it("completes nv.mod<Tab> to nv.models", function()
    start(hist)
    keys("nv.mod", "Tab")
    wait_for("nnvis> nv.models", "completion")
    keys(".available[1]", "Enter")
    wait_for("\nvgg11", "completed line run")
  end)

  it("keeps a local for the next line", function()
    start(hist)
    keys("local k = 21", "Enter")
    keys("k * 2", "Enter")
    wait_for("\n42", "local")
  end)

  it("drops the line on Ctrl-C at the prompt, then runs the next good line", function()
    start(hist)
    keys("this is not lua")
    wait_for("this is not lua")
    keys("C-c")
    -- the interrupt takes effect before more keys are typed: a second, empty prompt
    local deadline = os.time() + 10
    while count(screen(), "nnvis>") < 2 and os.time() <= deadline do os.execute("sleep 0.1") end
    keys('print("after" .. "ctrl-c")', "Enter")
    local s = wait_for("\nafterctrl-c", "after Ctrl-C")
    assert.falsy(s:find("unexpected symbol", 1, true), s)
  end)

  it("stops a running command on Ctrl-C and keeps its state", function()
    start(hist)
    keys("kept = 7", "Enter")
    keys("while true do end", "Enter")
    os.execute("sleep 0.3")
    keys("C-c")
    wait_for("interrupted", "interrupt")
    keys("kept + 1", "Enter")
    wait_for("\n8", "state after the interrupt")
  end)

  it("prints an error without its own frames, then runs the next good line", function()
    start(hist)
    keys('error("boom")', "Enter")
    local s = wait_for("stdin:1: boom", "error")
    assert.falsy(s:find("bin/nnvis", 1, true), s)
    keys('print("good" .. "line")', "Enter")
    wait_for("\ngoodline", "after the error")
  end)

  it("shows ?nv.cam.gradcam from its doc comment", function()
    start(hist)
    keys("?nv.cam.gradcam", "Enter")
    local s = wait_for("Grad-CAM (Selvaraju et al. 2017", "help")
    assert.truthy(s:find("nv.cam.gradcam(model, x, opts)", 1, true), s)
    assert.truthy(s:find("opts.layer, opts.target", 1, true), s)
  end)

  it("shows a chart as a figure and prints tables readably", function()
    start(hist)
    keys('nv.plot.line({1, 3, 2}, {title = "curve"})', "Enter")
    local s = wait_for(".png", "figure")
    assert.truthy(s:find('[nnvis figure: line plot "curve", 640x400] saved to', 1, true), s)
    keys("nv.zeros(2, 3):shape()", "Enter")
    wait_for("\n(2, 3)", "shape")
  end)

  it("remembers history across two sessions", function()
    start(hist)
    keys("hist_marker = 12345", "Enter")
    keys("C-d")
    local deadline = os.time() + 10
    while sh(TMUX .. " has-session -t repl") and os.time() <= deadline do os.execute("sleep 0.1") end
    assert.truthy(io.open(hist):read("a"):find("hist_marker = 12345", 1, true))
    start(hist)
    keys("Up")
    local s = wait_for("nnvis> hist_marker = 12345", "history")
    assert.equal(1, count(s, "hist_marker"))
  end)

  it("completes a tensor's methods and hides a module's private fields", function()
    start(hist)
    keys("x = nv.randn(2, 3)", "Enter")
    keys("x:topk(2):si", "Tab")
    wait_for("nnvis> x:topk(2):si", "typed")
    keys("C-u", "x:sor", "Tab")
    wait_for("nnvis> x:sort", "tensor method completed")
    keys("C-u", "m = nv.nn.Linear(2, 2)", "Enter")
    keys("m:", "Tab", "Tab")
    local s = wait_for("m:parameters", "module methods listed")
    assert.falsy(s:find("_hooks", 1, true), s)
    assert.falsy(s:find("_order", 1, true), s)
  end)

  it("keeps the last result in _, shows ??f's source and prints a table of tensors indented", function()
    start(hist)
    keys("6 * 7", "Enter")
    wait_for("\n42", "result")
    keys("_ + 1", "Enter")
    wait_for("\n43", "_ is the last result")
    keys("??nv.cam.normalize", "Enter")
    local s = wait_for("return ((flat - lo) / (hi - lo + EPS))", "source")
    assert.truthy(s:find("local function normalize(maps)", 1, true), s)
    keys("{w = nv.ones(2, 2), n = 1}", "Enter")
    s = wait_for("[nnvis.Tensor of size 2x2]", "table")
    assert.truthy(s:find("\n  w =\n     1  1\n     1  1\n    %[nnvis.Tensor of size 2x2%]") or
      s:find("w =\n", 1, true), s)
  end)

  it("keeps a multi-line definition as one history entry", function()
    start(hist)
    keys("function twice(v)", "Enter")
    wait_for("..>", "continuation")
    keys("return 2 * v", "Enter")
    keys("end ", "Enter")          -- "end" alone is tmux's name of the End key
    keys("twice(21)", "Enter")
    wait_for("\n42", "defined")
    -- Up twice: past twice(21), the whole definition, not its last line "end"
    keys("Up", "Up")
    local s = wait_for("nnvis> function twice(v)", "the whole definition comes back")
    assert.truthy(s:find("return 2 * v\nend", 1, true), s)
  end)
end)
