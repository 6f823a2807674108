-- The board as a live view from a script (Visdom-style): fit{live = "board"} and
-- nv.show(x, {to = "board"}) send what they show to one board the process starts on first use.
local nv = require "nnvis"
local H = require "helpers"
local live = require "nnvis.ui.board.live"

local function get(url)
  local ok, out = H.sh("curl -s -m 5 '" .. url .. "'")
  assert.is_true(ok, out)
  return out
end

describe("the live board", function()
  setup(function() live.port = 0 end)          -- a free loopback port: the spec never takes 6006
  teardown(function() live.close(); live.port = 6006 end)

  it("shows a fit's curves as they come and nv.show's pictures, with no log dir to manage", function()
    nv.manual_seed(1)
    local x, y = nv.randn(40, 4), (nv.randn(40):gt(0) + 1)
    local m = nv.nn.Sequential { nv.nn.Linear(4, 8), nv.nn.ReLU(), nv.nn.Linear(8, 2) }
    local said = {}
    local out = { write = function(_, ...) for _, s in ipairs { ... } do said[#said + 1] = s end end, flush = function() end }
    nv.train.fit(m, { x = x, y = y, epochs = 2, batch_size = 10, progress = false, out = out, live = "board",
                      val_x = x, val_y = y })
    local text = table.concat(said)
    local url = text:match("live board at (http://127%.0%.0%.1:%d+/)")
    assert.truthy(url, text)
    local handle = nv.show(nv.rand(3, 16, 16), { to = "board", title = "noise" })
    assert.equal(url, handle.url)
    -- the server reads what was written: the fit's run with its scalars, the pictures' run
    local runs
    for _ = 1, 20 do
      runs = get(url .. "api/runs")
      if runs:find('"show"', 1, true) and runs:find("epoch_val_loss", 1, true) then break end
      os.execute("sleep 0.2")
    end
    assert.truthy(runs:find('"name":"fit%-%d+"'), runs)
    for _, tag in ipairs { "batch_loss", "batch_accuracy", "epoch_loss", "epoch_val_loss" } do
      assert.truthy(runs:find('"' .. tag .. '"', 1, true), tag .. " in " .. runs)
    end
    assert.truthy(runs:find('"noise"', 1, true), runs)
    local run = runs:match('"name":"(fit%-%d+)"')
    local s = get(url .. "api/scalars?run=" .. run .. "&tag=batch_loss")
    assert.truthy(s:find('"step":%[1,2,3,4,5,6,7,8%]'), s)
    -- a second fit is a run of its own on the same board
    nv.train.fit(m, { x = x, y = y, epochs = 1, batch_size = 20, progress = false, out = out, live = "board" })
    local seen = 0
    for _ = 1, 20 do
      seen = select(2, get(url .. "api/runs"):gsub('"name":"fit%-%d+"', ""))
      if seen == 2 then break end
      os.execute("sleep 0.2")
    end
    assert.equal(2, seen)
  end)
end)
