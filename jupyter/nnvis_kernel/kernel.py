"""nnvis_kernel.kernel -- a Jupyter kernel for Lua 5.4 with nnvis.

Debian's ipykernel speaks the Jupyter protocol; this class drives one persistent `lua5.4`
child that runs the Lua side, lua/nnvis/app/kernel.lua (as bash_kernel drives bash).  The two
talk over two pipes (their descriptors passed in NNVIS_KERNEL_FDS):

  requests   "<kind> <n>\\n" + n bytes          kind: execute, complete, inspect, is_complete,
                                                shutdown
  messages   "<n>\\n" + n bytes of JSON          {"type": "stream" | "display" | "result" |
                                                 "error" | "done" | "reply" | "ready", ...}

A thread reads the messages (and the child's own stdout / stderr, for C code that writes
there) into a queue, so that the main thread can be interrupted while it waits: ipykernel
turns the interrupt into KeyboardInterrupt during do_execute, and the kernel forwards it to
the child as SIGINT, which stops the running Lua code with the error "interrupted".  The
child runs in its own session so that only this forwarding reaches it.
"""
import ctypes
import json
import os
import queue
import re
import signal
import subprocess
import threading
import time

from ipykernel.kernelbase import Kernel

__version__ = "0.1"

STREAM_DELAY = 0.05   # seconds the output of print may wait to be sent with the next
WORD_RE = re.compile(r"[A-Za-z_][\w]*(?:[.:][A-Za-z_]\w*)*[.:]?$|[.:]$")
NAME_CHARS = re.compile(r"[\w.:]")


def _read_frames(f, q):
    try:
        while True:
            head = f.readline()
            if not head:
                break
            n = int(head)
            body = f.read(n)
            q.put(json.loads(body.decode("utf-8", "replace")))
    except Exception as e:  # a broken frame: report it and stop reading
        q.put({"type": "stream", "name": "stderr", "text": "nnvis kernel: bad message from Lua: %s\n" % e})
    q.put(None)


def _read_stream(f, name, q):
    while True:
        data = os.read(f.fileno(), 65536)
        if not data:
            break
        q.put({"type": "stream", "name": name, "text": data.decode("utf-8", "replace")})


try:
    _prctl = ctypes.CDLL(None).prctl   # looked up before any fork: the child only calls it
except (OSError, AttributeError):
    _prctl = None


def _die_with_parent():
    """In the child before exec: SIGKILL when the kernel process dies, even by SIGKILL (a
    restart or `shutdown_kernel(now=True)` signals the kernel's process group, which the
    child, in its own session, is not in)."""
    if _prctl is not None:
        _prctl(1, 9)   # PR_SET_PDEATHSIG, SIGKILL


def _same_update(a, b):
    """Whether message b replaces the picture message a updates (so a need not be sent)."""
    return (a is not None and b is not None and a.get("type") == "display" and a.get("update")
            and b.get("type") == "display" and b.get("update") and a.get("display_id") == b.get("display_id"))


class LuaChild:
    """The lua5.4 process running nnvis.kernel.main() and its pipes."""

    def __init__(self):
        req_r, req_w = os.pipe()
        msg_r, msg_w = os.pipe()
        env = dict(os.environ)
        env["NNVIS_KERNEL_FDS"] = "%d,%d" % (req_r, msg_w)
        lua = env.get("NNVIS_LUA", "lua5.4")
        # `make test SANITIZE=1`: the sanitizer runtimes for the Lua process only (not python)
        if env.get("NNVIS_KERNEL_LD_PRELOAD"):
            env["LD_PRELOAD"] = env["NNVIS_KERNEL_LD_PRELOAD"]
        self.proc = subprocess.Popen(
            [lua, "-e", 'require("nnvis.app.kernel").main()'],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            pass_fds=(req_r, msg_w), env=env, start_new_session=True, preexec_fn=_die_with_parent)
        os.close(req_r)
        os.close(msg_w)
        self.req = os.fdopen(req_w, "wb")
        self.q = queue.Queue()
        msgs = os.fdopen(msg_r, "rb")
        threading.Thread(target=_read_frames, args=(msgs, self.q), daemon=True).start()
        threading.Thread(target=_read_stream, args=(self.proc.stdout, "stdout", self.q), daemon=True).start()
        threading.Thread(target=_read_stream, args=(self.proc.stderr, "stderr", self.q), daemon=True).start()
        self.info = None

    def alive(self):
        return self.proc.poll() is None

    def send(self, kind, payload):
        data = payload.encode("utf-8")
        self.req.write(b"%s %d\n" % (kind.encode(), len(data)) + data)
        self.req.flush()

    def get(self, timeout=None):
        """The next message, or None when the child has gone."""
        return self.q.get(timeout=timeout)

    def interrupt(self):
        """SIGINT to the child's process group: the Lua code, and what it runs (os.execute)."""
        if self.alive():
            try:
                os.killpg(self.proc.pid, signal.SIGINT)
            except OSError:
                os.kill(self.proc.pid, signal.SIGINT)

    def close(self):
        try:
            self.send("shutdown", "")
            self.proc.wait(timeout=3)
        except Exception:
            pass
        if self.alive():
            self.proc.kill()
            self.proc.wait()


class NnvisKernel(Kernel):
    implementation = "nnvis"
    implementation_version = __version__
    language = "lua"
    language_version = "5.4"
    language_info = {
        "name": "lua",
        "version": "5.4",
        "mimetype": "text/x-lua",
        "file_extension": ".lua",
        "codemirror_mode": "lua",
        "pygments_lexer": "lua",
    }
    banner = "Lua 5.4 with nnvis: `nv` is loaded"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.child = None
        self._start()

    # ---- the child ----------------------------------------------------------------------
    def _start(self):
        self.child = LuaChild()
        early = []
        deadline = time.time() + 60
        while True:
            try:
                m = self.child.get(timeout=max(0.1, deadline - time.time()))
            except queue.Empty:
                m = None
            if m is None:
                raise RuntimeError("nnvis kernel: lua5.4 did not start nnvis.kernel:\n" +
                                   "".join(x.get("text", "") for x in early))
            if m.get("type") == "ready":
                self.child.info = m
                break
            early.append(m)

    def _ensure_child(self):
        if self.child is None or not self.child.alive():
            self._start()
            self._stream("stderr", "(the Lua process had exited; a new one was started: variables are gone)\n")

    def _stream(self, name, text):
        self.send_response(self.iopub_socket, "stream", {"name": name, "text": text})

    def _request(self, kind, payload, timeout=30):
        """Sends a request whose answer is one reply message (complete, inspect)."""
        self._ensure_child()
        self.child.send(kind, payload)
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                m = self.child.get(timeout=0.2)
            except queue.Empty:
                continue
            if m is None:
                return None
            if m.get("type") == "reply":
                return m
            if m.get("type") == "stream":
                self._stream(m["name"], m["text"])
        return None

    # ---- execute ------------------------------------------------------------------------
    def _send_data(self, m, silent):
        if silent:
            return
        t = m["type"]
        content = {"data": m.get("data", {}), "metadata": m.get("metadata") or {}}
        if t == "result":
            content["execution_count"] = self.execution_count
            self.send_response(self.iopub_socket, "execute_result", content)
            return
        if m.get("display_id"):
            content["transient"] = {"display_id": m["display_id"]}
        self.send_response(self.iopub_socket,
                           "update_display_data" if m.get("update") else "display_data", content)

    def do_execute(self, code, silent, store_history=True, user_expressions=None, allow_stdin=False):
        self._ensure_child()
        child = self.child
        child.send("execute", "%d\n%s" % (self.execution_count, code))
        status, error = "ok", None
        self._out = None   # [name, [text, ...], time of the first] waiting to be sent
        batch = []   # messages taken from the queue, not yet handled
        finished = False
        while not finished:
            try:
                if not batch:
                    batch.append(child.get(timeout=STREAM_DELAY))
                    while len(batch) < 200 and batch[-1] is not None:
                        batch.append(child.q.get_nowait())
            except queue.Empty:
                if not batch:
                    self._flush_stream()
                    continue
            except KeyboardInterrupt:
                child.interrupt()
                continue
            try:
                while batch and not finished:
                    m = batch.pop(0)
                    # an update that the next message replaces is not sent (a loop of h:update)
                    if batch and _same_update(m, batch[0]):
                        continue
                    status, error, finished = self._handle(m, child, status, error, silent)
            except KeyboardInterrupt:
                child.interrupt()
        self._flush_stream()
        if error:
            if not silent:
                self.send_response(self.iopub_socket, "error", error)
            return dict(status="error", execution_count=self.execution_count, **error)
        return {"status": "ok", "execution_count": self.execution_count,
                "payload": [], "user_expressions": {}}

    # print in a loop sends thousands of stream messages; they go to the front end joined,
    # at most STREAM_DELAY late (as IPython's OutStream does: iopub drops what is over its
    # high-water mark of 1000 messages)
    def _buffer_stream(self, name, text):
        out = self._out
        if out is not None and out[0] != name:
            self._flush_stream()
            out = None
        if out is None:
            self._out = out = [name, [], time.time()]
        out[1].append(text)
        if time.time() - out[2] >= STREAM_DELAY:
            self._flush_stream()

    def _flush_stream(self):
        out, self._out = self._out, None
        if out is not None:
            self._stream(out[0], "".join(out[1]))

    def _handle(self, m, child, status, error, silent):
        """One message during execute -> (status, error, finished)."""
        if m is None:  # the Lua process died (os.exit, a crash)
            code_ = child.proc.wait()
            error = {"ename": "KernelDied", "evalue": "the Lua process exited (status %s)" % code_,
                     "traceback": ["the Lua process exited (status %s); the next cell starts a new one" % code_]}
            return "error", error, True
        t = m.get("type")
        if t == "stream":
            if not silent:
                self._buffer_stream(m["name"], m["text"])
            return status, error, False
        self._flush_stream()
        if t in ("display", "result"):
            self._send_data(m, silent)
        elif t == "error":
            error = {"ename": m.get("ename", "LuaError"), "evalue": m.get("evalue", ""),
                     "traceback": m.get("traceback") or [m.get("evalue", "")]}
            status = "error"
        elif t == "done":
            return status, error, True
        return status, error, False

    # ---- completion and inspection ------------------------------------------------------
    def do_complete(self, code, cursor_pos):
        before = code[:cursor_pos]
        m = WORD_RE.search(before)
        word = m.group(0) if m else ""
        matches = []
        if word:
            r = self._request("complete", word)
            matches = (r or {}).get("matches") or []
        return {"status": "ok", "matches": matches, "cursor_start": cursor_pos - len(word),
                "cursor_end": cursor_pos, "metadata": {}}

    def do_inspect(self, code, cursor_pos, detail_level=0, omit_sections=()):
        start = cursor_pos
        while start > 0 and NAME_CHARS.match(code[start - 1]):
            start -= 1
        end = cursor_pos
        while end < len(code) and NAME_CHARS.match(code[end]):
            end += 1
        name = code[start:end].strip(".:")
        r = self._request("inspect", name) if name else None
        if not r or not r.get("found"):
            return {"status": "ok", "found": False, "data": {}, "metadata": {}}
        return {"status": "ok", "found": True, "data": {"text/plain": r["text"]}, "metadata": {}}

    def do_is_complete(self, code):
        r = self._request("is_complete", code)
        status = (r or {}).get("status", "unknown")
        return {"status": status, "indent": "  "} if status == "incomplete" else {"status": status}

    def do_shutdown(self, restart):
        if self.child is not None:
            self.child.close()
            self.child = None
        return {"status": "ok", "restart": restart}
