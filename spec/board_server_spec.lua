-- The board's server (nnvis.http + lua/nnvis/ui/board/server.lua) on a free loopback port,
-- fetched with curl (Debian's curl, in the Makefile's DEB_PKGS): the JSON API, image bytes,
-- traversal attempts, the safety headers, live runs, and the server's own thread and state.
local nv = require "nnvis"
local TB = require "nnvis.io.tensorboard"
local http = require "nnvis.http"
local H = require "helpers"

local has_curl = os.execute("command -v curl >/dev/null 2>&1")
local it_curl = H.it_if(has_curl, "curl")

local function key(f, w) return TB.varint((f << 3) | w) end
local function vint(f, n) return key(f, 0) .. TB.varint(n) end
local function bytes(f, s) return key(f, 2) .. TB.varint(#s) .. s end
local function dbl(f, x) return key(f, 1) .. string.pack("<d", x) end
local function event(step, body) return dbl(1, 1e9 + step) .. vint(2, step) .. body end

-- status, headers (lower-case names), body of a GET (or method) with the path sent as is
local function fetch(url, path, method)
  local out = os.tmpname()
  local cmd = string.format("%scurl -s --path-as-is --max-time 10 -D '%s.h' -o '%s' %s '%s%s'", H.CLEAN, out, out,
    method and ("-X " .. method .. (method == "HEAD" and " -I" or "")) or "", url:gsub("/$", ""), path)
  os.execute(cmd)
  local head = H.read_all(out .. ".h")
  local body = H.read_all(out)
  if method == "HEAD" then body = body:gsub("^HTTP/.-\r\n\r\n", "") end   -- -I writes the headers there too
  os.remove(out)
  os.remove(out .. ".h")
  local status = tonumber(head:match("^HTTP/%S+ (%d+)"))
  local headers = {}
  for k, v in head:gmatch("\n([^:\r\n]+): ([^\r\n]*)") do headers[k:lower()] = v end
  return status, headers, body
end

local function json_decode(s)
  -- the replies are JSON: close enough to Lua's table syntax for the specs once converted
  local t = s:gsub('"([^"]-)":', '["%1"]='):gsub("%[", "{"):gsub("%]", "}"):gsub('{"([^"]-)"}=', '["%1"]=')
  t = t:gsub("null", "nil")
  return assert(load("return " .. t, "=json", "t", {}))()
end

local tmp, logdir, h
setup(function()
  tmp = os.tmpname()
  os.remove(tmp)
  logdir = tmp .. "/logs"
  local w = TB.writer(logdir .. "/lr0.1/train")
  for i = 1, 10000 do w:scalar("loss", i == 5050 and 100 or 1, i) end
  w:histogram("w", nv.arange(0, 8):float(), 1, { bins = 4 })
  w:close()
  local jpeg = H.read_all("spec/fixtures/tiny_photo.jpg")
  local f = assert(io.open(logdir .. "/lr0.1/train/events.out.tfevents.2.photo", "wb"))
  local image = bytes(4, vint(1, 2) .. vint(2, 3) .. bytes(4, jpeg))
  f:write(TB.record(event(3, bytes(5, bytes(1, bytes(1, "photo") .. image)))))
  f:close()
  TB.writer(logdir .. "/lr0.01"):scalar("loss", 2, 1):close()
  -- a projector run, and a link out of the log dir that its config names
  local p = logdir .. "/proj"
  assert(nv.core.mkdirs(p .. "/emb"))
  TB.writer(p):scalar("x", 1, 1):close()
  f = assert(io.open(p .. "/emb/tensors.tsv", "w")); f:write("1\t2\t3\n4\t5\t6\n"); f:close()
  f = assert(io.open(p .. "/projector_config.pbtxt", "w"))
  f:write('embeddings { tensor_name: "e" tensor_path: "emb/tensors.tsv" metadata_path: "out/secret.txt" }\n')
  f:close()
  assert(nv.core.mkdirs(tmp .. "/outside"))
  f = assert(io.open(tmp .. "/outside/secret.txt", "w")); f:write("secret\n"); f:close()
  assert(os.execute("ln -s '" .. tmp .. "/outside' '" .. p .. "/out'"))
  h = nv.board.serve{ logdir = logdir, port = 0 }
end)
teardown(function()
  if h then h:close() end
  os.execute("rm -rf '" .. tmp .. "'")
end)

describe("nv.board.serve", function()
  it_curl("lists the runs and their tags", function()
    local status, headers, body = fetch(h.url, "/api/runs")
    assert.equal(200, status)
    assert.equal("application/json", headers["content-type"])
    local r = json_decode(body)
    local names = {}
    for _, run in ipairs(r.runs) do names[#names + 1] = run.name end
    assert.same({ "lr0.01", "lr0.1/train", "proj" }, names)
    assert.same({ "loss" }, r.runs[2].scalars)
    assert.same({ "w" }, r.runs[2].histograms)
    assert.same({ "photo" }, r.runs[2].images)
    assert.is_true(r.runs[3].projector)
    assert.truthy(body:find('"graph":null', 1, true))
  end)

  it_curl("sends scalars as columns, downsampled keeping each bucket's min and max", function()
    local _, _, body = fetch(h.url, "/api/scalars?run=lr0.1%2Ftrain&tag=loss&points=100")
    local s = json_decode(body)
    assert.is_true(s.downsampled)
    assert.is_true(#s.step <= 100 and #s.step >= 90)
    assert.equal(#s.step, #s.value)
    assert.equal(#s.step, #s.max)
    assert.equal(10000, s.step[#s.step])
    local peak = 0
    for _, v in ipairs(s.max) do peak = math.max(peak, v) end
    assert.equal(100, peak)                               -- the spike survives
    for _, v in ipairs(s.value) do assert.equal(1, v) end -- though no bucket ends on it
    local _, _, full = fetch(h.url, "/api/scalars?run=lr0.01&tag=loss")
    local f = json_decode(full)
    assert.is_false(f.downsampled)
    assert.same({ 1 }, f.step)
    assert.same({ 2 }, f.value)
  end)

  it_curl("sends histograms and images, the image bytes with their mime type", function()
    local _, _, body = fetch(h.url, "/api/histograms?run=lr0.1/train&tag=w")
    local hi = json_decode(body).items[1]
    assert.equal(8, hi.num)
    assert.equal(4, #hi.limits)
    local _, _, ib = fetch(h.url, "/api/images?run=lr0.1/train&tag=photo")
    local item = json_decode(ib).items[1]
    assert.equal("image/jpeg", item.mime)
    assert.equal(3, item.step)
    local status, headers, img = fetch(h.url, "/api/image?run=lr0.1/train&tag=photo&index=1")
    assert.equal(200, status)
    assert.equal("image/jpeg", headers["content-type"])
    assert.equal(H.read_all("spec/fixtures/tiny_photo.jpg"), img)
    assert.equal(404, (fetch(h.url, "/api/image?run=lr0.1/train&tag=photo&index=2")))
    assert.equal(404, (fetch(h.url, "/api/scalars?run=nope&tag=loss")))
  end)

  it_curl("serves the page and Debian's scripts with the CSP and nosniff headers", function()
    for _, path in ipairs({ "/", "/static/board.js", "/vendor/dygraph.min.js", "/api/runs", "/nope", "/static/../x" }) do
      local status, headers = fetch(h.url, path)
      assert.truthy(status, path)
      assert.matches("default%-src 'none'", headers["content-security-policy"] or "", 1, false, path)
      assert.equal("nosniff", headers["x-content-type-options"], path)
    end
    local status, headers, body = fetch(h.url, "/")
    assert.equal(200, status)
    assert.equal("text/html; charset=utf-8", headers["content-type"])
    assert.equal(H.read_all("lua/nnvis/ui/board/page/index.html"), body)
  end)

  it_curl("refuses traversal: .., %2e%2e, backslashes, NUL, and symlinks that lead out", function()
    for _, path in ipairs({ "/static/../../etc/passwd", "/static/%2e%2e/%2e%2e/etc/passwd", "/static/%2E%2E%2Fserver.lua",
                            "/static/..%5c..%5cetc%5cpasswd", "/static/\\..\\server.lua", "/static/board.js%00.png",
                            "/vendor/..%2f..%2fetc%2fpasswd", "/files/proj/..%2f..%2fouter",
                            "/files/proj/out%2Fsecret.txt", "/files/proj/out/secret.txt", "/static/%252e%252e/x" }) do
      local status, _, body = fetch(h.url, path)
      assert.equal(404, status, path)
      assert.is_nil(body:find("root:", 1, true), path)
      assert.is_nil(body:find("secret", 1, true), path)
    end
  end)

  it_curl("serves a run's projector files and says where they are", function()
    local _, _, body = fetch(h.url, "/api/projector?run=proj")
    local p = json_decode(body).embeddings[1]
    assert.same({ 2, 3 }, p.shape)
    assert.equal("/files/proj/emb%2Ftensors.tsv", p.tensor)
    local status, _, tsv = fetch(h.url, p.tensor)
    assert.equal(200, status)
    assert.equal("1\t2\t3\n4\t5\t6\n", tsv)
    assert.equal(404, (fetch(h.url, p.metadata)))          -- the link leads out of the log dir
  end)

  it_curl("answers HEAD without a body and other methods with 405", function()
    local status, headers, body = fetch(h.url, "/api/runs", "HEAD")
    assert.equal(200, status)
    assert.equal("", body)
    assert.equal("application/json", headers["content-type"])
    local s405, h405 = fetch(h.url, "/api/runs", "POST")
    assert.equal(405, s405)
    assert.truthy(h405["content-security-policy"])
  end)

  it_curl("shows a run added while it serves, within a second or so", function()
    TB.writer(logdir .. "/late"):scalar("loss", 1, 1):close()
    http.sleep(1.1)
    local _, _, body = fetch(h.url, "/api/runs")
    assert.truthy(body:find('"name":"late"', 1, true))
  end)

  it_curl("keeps answering while the Lua state that opened it is busy", function()
    local out = os.tmpname()
    os.execute(string.format("%scurl -s --max-time 10 -o '%s' '%sapi/runs' &", H.CLEAN, out, h.url))
    local t0, got = http.now(), nil
    while http.now() - t0 < 8 do                              -- busy: no yield to the server
      local x = 0
      for i = 1, 100000 do x = x + i end
      local f = io.open(out, "rb")
      got = f and f:read("a")
      if f then f:close() end
      if got and got:find("lr0.1/train", 1, true) then break end
    end
    os.remove(out)
    assert.truthy(got and got:find("lr0.1/train", 1, true))
  end)

  it_curl("frees its port on close", function()
    local h2 = nv.board.serve{ logdir = logdir, port = 0 }
    local port = h2.port
    local busy, err = http.serve{ port = port, handler = "nnvis.ui.board.server", config = "{}" }
    assert.is_nil(busy)
    assert.matches("cannot listen on 127.0.0.1 port " .. port, err)
    h2:close()
    h2:close()                                               -- idempotent
    local h3 = nv.board.serve{ logdir = logdir, port = port }
    assert.equal(port, h3.port)
    assert.equal(200, (fetch(h3.url, "/api/runs")))
    h3:close()
  end)

  it_curl("answers a handler error with a 500 and keeps serving", function()
    local dir = tmp .. "/handler"
    assert(nv.core.mkdirs(dir))
    local f = assert(io.open(dir .. "/board_spec_handler.lua", "w"))
    f:write([[
local M = { headers = { ["X-Content-Type-Options"] = "nosniff" } }
function M.init(config) M.config = config end
function M.handle(method, path, query)
  if path == "/boom" then error("boom at " .. path) end
  return 200, { ["Content-Type"] = "text/plain" }, M.config .. " " .. method .. " " .. path .. " " .. (query.a or "")
end
return M
]])
    f:close()
    local saved = package.path
    package.path = dir .. "/?.lua;" .. package.path
    local s = assert(http.serve{ handler = "board_spec_handler", config = "cfg" })
    package.path = saved
    local status, headers, body = fetch(s.url, "/boom")
    assert.equal(500, status)
    assert.matches("boom at /boom", body)
    assert.equal("nosniff", headers["x-content-type-options"])
    status, _, body = fetch(s.url, "/ok?a=%41")
    assert.equal(200, status)
    assert.equal("cfg GET /ok %41", body)                    -- as sent: the handler decodes
    s:close()
  end)

  it("names the function and argument in its errors", function()
    assert.has_error(function() nv.board.serve{ logdir = tmp .. "/none" } end,
      "board.serve: logdir '" .. tmp .. "/none' is not a folder")
    assert.has_error(function() nv.board.serve{ logdir = logdir, port = 70000 } end,
      "board.serve: port must be an integer in 0..65535 (0: a free port), got 70000")
    assert.has_error(function() nv.board.serve{ logdir = logdir, prot = 1 } end)
    local s, err = http.serve{ host = "no.such.host.invalid", handler = "nnvis.ui.board.server" }
    assert.is_nil(s)
    assert.matches("cannot resolve host 'no.such.host.invalid'", err)
  end)
end)
