"""spec/jupyter_check.py -- drives the nnvis Jupyter kernel for spec/jupyter_spec.lua.

  /usr/bin/python3 spec/jupyter_check.py notebook examples/tour.ipynb out.ipynb
  /usr/bin/python3 spec/jupyter_check.py client

The kernelspec `nnvis` must be installed where JUPYTER_DATA_DIR points.  `notebook` executes
the notebook with nbclient (as `jupyter nbconvert --execute` would), writes it with its
outputs and checks them; `client` talks to one kernel through jupyter_client (interrupt,
completion, inspection).  Each check prints one line, "ok <name> <detail>" or
"fail <name> <detail>", which the spec reads.
"""
import base64
import os
import re
import struct
import sys
import time


def report(ok, name, detail=""):
    print("%s %s %s" % ("ok" if ok else "fail", name, str(detail).replace("\n", " | ")[:600]))
    sys.stdout.flush()


def png_size(b64):
    raw = base64.b64decode(b64)
    if raw[:8] != b"\x89PNG\r\n\x1a\n" or raw[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", raw[16:24])


def notebook(path, out_path):
    import nbclient
    import nbformat

    updates = []   # (display_id, png) of every update_display_data the kernel sent

    class Client(nbclient.NotebookClient):
        def process_message(self, msg, cell, cell_index):
            if msg["msg_type"] == "update_display_data":
                c = msg["content"]
                updates.append((c.get("transient", {}).get("display_id"), c["data"].get("image/png")))
            return super().process_message(msg, cell, cell_index)

    nb = nbformat.read(path, as_version=4)
    has_outputs = any(c.get("outputs") for c in nb.cells if c.cell_type == "code")
    report(not has_outputs, "committed-without-outputs")
    t0 = time.time()
    Client(nb, kernel_name="nnvis", timeout=120).execute()
    report(True, "executed", "%.1f s" % (time.time() - t0))
    nbformat.write(nb, out_path)
    # the executed notebook as a static HTML page: interactive figures keep their script
    import subprocess
    html_path = out_path[:-len(".ipynb")] + ".html"
    r = subprocess.run([sys.executable, "-m", "nbconvert", "--to", "html", out_path], capture_output=True, text=True)
    page = open(html_path).read() if os.path.exists(html_path) else ""
    n_inter = page.count('class="nnvis-interactive"')
    report(r.returncode == 0 and n_inter >= 1, "nbconvert-html",
           "%d interactive figures in %s; %s" % (n_inter, html_path, r.stderr[-300:]))
    code = [c for c in nb.cells if c.cell_type == "code"]

    def outputs(kind=None):
        for i, c in enumerate(code):
            for o in c.outputs:
                if kind is None or o.output_type == kind:
                    yield i, c, o

    # pictures: PNG files whose header says the size the metadata gives
    sizes, bad = [], []
    for i, c, o in outputs():
        png = o.get("data", {}).get("image/png")
        if png:
            s = png_size(png)
            meta = o.get("metadata", {}).get("image/png", {})
            if s is None or s[0] < 16 or s[1] < 16 or (meta and (meta.get("width"), meta.get("height")) != s):
                bad.append((i, s, meta))
            sizes.append("%dx%d" % s if s else "bad")
    report(len(sizes) >= 6 and not bad, "png", "%d images %s %s" % (len(sizes), " ".join(sizes), bad or ""))

    # the summary: an HTML table as the cell's result, its text form beside it
    html = [o for _, c, o in outputs("execute_result") if "nv.summary" in c.source and "text/html" in o.data]
    ok = bool(html) and "<table" in html[0].data["text/html"] and "Conv2d" in html[0].data["text/html"] \
        and "Total params" in html[0].data.get("text/plain", "")
    report(ok, "summary-html", html[0].data["text/html"][:200] if html else "no text/html result")

    stats = [o for _, c, o in outputs("execute_result") if "capture" in c.source and "text/html" in o.data]
    ok = bool(stats) and '<table class="nnvis-stats">' in stats[0].data["text/html"] \
        and "classifier.3" in stats[0].data["text/html"] and "grad norm" in stats[0].data["text/plain"]
    report(ok, "stats-html", stats[0].data["text/html"][:200] if stats else "no text/html result")

    # a print, streamed
    first = "".join(o.text for o in code[0].outputs if o.output_type == "stream")
    report("OpenBLAS core" in first and first.startswith("nnvis "), "print", first)

    # the live fit: one display in its cell, updated in place each epoch after the first
    fit = [c for c in code if "nv.train.fit" in c.source][0]
    disp = [o for o in fit.outputs if o.output_type == "display_data"]
    epochs = re.findall(r"^epoch \d/3 loss", "".join(o.text for o in fit.outputs if o.output_type == "stream"), re.M)
    ids = set(u[0] for u in updates)
    last_png = updates[-1][1] if updates else None
    ok = len(disp) == 1 and len(updates) == 2 and len(ids) == 1 and None not in ids \
        and disp[0].data.get("image/png") == last_png and len(epochs) >= 3
    report(ok, "live-fit", "%d display outputs, %d updates (ids %s), final picture is the last update: %s, %d epoch lines"
           % (len(disp), len(updates), sorted(ids, key=str), bool(disp) and disp[0].data.get("image/png") == last_png,
              len(epochs)))

    # the error and the cell after it
    errs = [(i, o) for i, c, o in outputs("error")]
    ok = len(errs) == 1 and errs[0][1].ename == "LuaError" and "expects 1 input channels" in errs[0][1].evalue \
        and "raises-exception" in code[errs[0][0]].metadata.get("tags", [])
    report(ok, "error", errs and "%s: %s" % (errs[0][1].ename, errs[0][1].evalue))
    after = code[errs[0][0] + 1] if errs and errs[0][0] + 1 < len(code) else None
    text = after and "".join(o.text for o in after.outputs if o.output_type == "stream")
    res = after and [o.data["text/plain"] for o in after.outputs if o.output_type == "execute_result"]
    report(bool(after) and "still here: FashionCNN" in text and res == ["(1, 28, 28)"], "survived", "%r %r" % (text, res))


def client():
    import jupyter_client

    km, kc = jupyter_client.manager.start_new_kernel(kernel_name="nnvis", startup_timeout=60)
    try:
        def run(code, timeout=30):
            mid = kc.execute(code)
            msgs = []
            while True:
                m = kc.get_iopub_msg(timeout=timeout)
                if m["parent_header"].get("msg_id") != mid:
                    continue
                if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
                    break
                msgs.append(m)
            while True:
                r = kc.get_shell_msg(timeout=timeout)
                if r["parent_header"].get("msg_id") == mid:
                    return msgs, r["content"]

        def shell(mid, timeout=30):
            while True:
                r = kc.get_shell_msg(timeout=timeout)
                if r["parent_header"].get("msg_id") == mid:
                    return r["content"]

        run("kept = 42")
        msgs, _ = run('print("a"); local t = nv.now(); while nv.now() - t < 1 do end; print("b")')
        at = {m["content"]["text"]: m["header"]["date"] for m in msgs if m["msg_type"] == "stream"}
        gap = (at["b\n"] - at["a\n"]).total_seconds() if len(at) == 2 else None
        report(gap is not None and gap > 0.7, "stream-live", "print a, 1 s of work, print b: %s s apart" % gap)
        msgs, _ = run("for i = 1, 20000 do print(i) end")
        text = "".join(m["content"]["text"] for m in msgs if m["msg_type"] == "stream")
        want = "".join("%d\n" % i for i in range(1, 20001))
        report(text == want and len(msgs) < 1000, "many-prints",
               "%d of %d characters in %d messages" % (len(text), len(want), len(msgs)))
        # stop_on_error=False: else ipykernel aborts a request that arrives while it is still
        # dropping the queue after the error (as it does for IPython), which a fast test can hit
        mid = kc.execute("n = 0; while true do n = n + 1 end", stop_on_error=False)
        time.sleep(1.0)
        t0 = time.time()
        km.interrupt_kernel()
        rep = shell(mid, timeout=20)
        report(rep["status"] == "error" and rep.get("ename") == "Interrupted" and "interrupted" in rep.get("evalue", ""),
               "interrupt", "%s %s: %s after %.2f s" % (rep["status"], rep.get("ename"), rep.get("evalue"), time.time() - t0))
        msgs, rep = run("kept + 1")
        res = [m["content"]["data"]["text/plain"] for m in msgs if m["msg_type"] == "execute_result"]
        report(rep["status"] == "ok" and res == ["43"], "after-interrupt", "%s %s" % (rep["status"], res))

        mid = kc.complete("local c = nv.ca", 15)
        rep = shell(mid)
        report("nv.cam" in rep["matches"] and rep["cursor_start"] == 10 and rep["cursor_end"] == 15,
               "complete", "%s [%d, %d]" % (rep["matches"], rep["cursor_start"], rep["cursor_end"]))
        mid = kc.complete("nv.cam.gradc", 12)
        rep = shell(mid)
        report("nv.cam.gradcam" in rep["matches"] and all(m.startswith("nv.cam.gradc") for m in rep["matches"]),
               "complete-field", rep["matches"])

        run("tx = nv.randn(2, 3)")
        rep = shell(kc.complete("tx:so", 5))
        report("tx:sort" in rep["matches"] and "tx:softmax" in rep["matches"], "complete-tensor", rep["matches"])
        run("lin = nv.nn.Linear(2, 2)")
        rep = shell(kc.complete("lin:", 4))
        report("lin:parameters" in rep["matches"] and not any(m.startswith("lin:_") for m in rep["matches"]),
               "complete-private", rep["matches"])
        run("6 * 7")
        msgs, _ = run("_ + 1")
        res = [m["content"]["data"]["text/plain"] for m in msgs if m["msg_type"] == "execute_result"]
        report(res == ["43"], "last-result", res)
        msgs, _ = run("??nv.cam.normalize")
        text = "".join(m["content"]["text"] for m in msgs if m["msg_type"] == "stream")
        report("local function normalize(maps)" in text, "source", text[:200])

        a = shell(kc.is_complete("for i = 1, 3 do"))["status"]
        b = shell(kc.is_complete("x = nv.zeros(2)"))["status"]
        report(a == "incomplete" and b == "complete", "is-complete", "%s %s" % (a, b))

        mid = kc.inspect("nv.cam.gradcam(model, x)", 10)
        rep = shell(mid)
        text = rep.get("data", {}).get("text/plain", "")
        report(rep.get("found") and "Grad-CAM" in text and "Selvaraju" in text, "inspect", text)
        # a kernel killed while its Lua runs takes the Lua process with it
        msgs, _ = run('io.open("/proc/self/stat"):read("n")')
        pid = int([m["content"]["data"]["text/plain"] for m in msgs if m["msg_type"] == "execute_result"][0])
        kc.execute("while true do end")
        time.sleep(0.5)
        km.shutdown_kernel(now=True)
        t0 = time.time()
        while os.path.exists("/proc/%d" % pid) and time.time() - t0 < 10:
            try:
                with open("/proc/%d/stat" % pid) as f:
                    if f.read().split(") ")[1].startswith("Z"):
                        break   # a zombie: dead, not yet reaped by its new parent
            except OSError:
                break
            time.sleep(0.1)
        gone = not os.path.exists("/proc/%d" % pid) or open("/proc/%d/stat" % pid).read().split(") ")[1].startswith("Z")
        report(gone, "no-orphan", "lua pid %d gone %.1f s after the kernel was killed" % (pid, time.time() - t0))
    finally:
        kc.stop_channels()
        if km.is_alive():
            km.shutdown_kernel(now=True)


if __name__ == "__main__":
    if sys.argv[1] == "notebook":
        notebook(sys.argv[2], sys.argv[3])
    else:
        client()
