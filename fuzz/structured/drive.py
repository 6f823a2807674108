#!/usr/bin/python3
"""fuzz/structured/drive.py — the structured fuzzer's driver (`make fuzz-structured`).

For --seconds it makes batches of cases with mutate.py from the seeds seeds.py wrote, each case
in its own folder under <work>/cases/ (the only folder the case may touch), and runs
fuzz/structured/run.lua over each batch as one child process: lua5.4 with nnvis's core built
with ASan+UBSan (build-asan/), the sanitizer runtimes and fuzz/structured/tripwire.so
preloaded.  It watches the child's standard output and its memory:
  - no END within --timeout seconds (5) of a BEGIN: a hang (the child is killed);
  - more than --rss-limit-mb (4096) resident: a failure too.  ASan's own hard_rss_limit_mb=4096
    is set as well, but its watcher thread does not start when libasan is preloaded into an
    uninstrumented lua5.4, so the driver reads the child's VmRSS every 0.1 s itself;
  - the child dying (a signal, a sanitizer or tripwire report on stderr, a nonzero exit): a crash;
  - an END with status "internal": a Lua error from inside nnvis that no file may cause.
Each failure keeps its case under <work>/findings/<short-name>/ (case/, report.txt,
description.txt, repro.sh).  By default the first failure ends the run: the reproducer and the
report are printed and the exit status is 1.  With --keep-going failures are recorded (one
folder per distinct signature) and fuzzing goes on.  At the end: executions per kind and
"structured fuzz: N executions, F failures".

Before fuzzing, a self-test arms the tripwire and opens /etc/passwd from Lua: the child must
abort, or the tripwire is not doing its job and the run fails.

Usage: /usr/bin/python3 fuzz/structured/drive.py [--seconds 60] [--keep-going] [--seed N]
         [--batch 50] [--timeout 5] [--rss-limit-mb 4096] [--sanitizer-libs "libasan.so ..."]
"""
import argparse
import collections
import os
import random
import re
import select
import shutil
import signal
import stat
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True   # no __pycache__ in the source tree
import mutate  # noqa: E402

KINDS = ("pth zip", "pth legacy", "onnx")
STARTUP_SECONDS = 120   # the first BEGIN: ASan, the core, oneDNN's warm-up on a loaded machine


def sanitizer_libs(cc="cc"):
    libs = []
    for lib in ("libasan.so", "libubsan.so", "libcairo.so.2", "libfontconfig.so.1"):
        p = subprocess.run([cc, "-print-file-name=" + lib], capture_output=True, text=True).stdout.strip()
        libs.append(p)
    return " ".join(libs)


def rss_mb(pid):
    """The resident memory of process pid in MB (0 when it is gone)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError):
        pass
    return 0


def child_env(args):
    env = dict(os.environ)
    for k in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "MAKEFLAGS", "MFLAGS", "MAKELEVEL"):
        env.pop(k, None)
    env["LUA_PATH"] = "{0}/lua/?.lua;{0}/lua/?/init.lua;;".format(args.nnvis)
    env["LUA_CPATH"] = "{0}/build-asan/?.so;;".format(args.nnvis)
    env["LD_PRELOAD"] = (args.sanitizer_libs or sanitizer_libs()) + " " + args.tripwire
    env["ASAN_OPTIONS"] = ("detect_leaks=0:abort_on_error=1:allocator_may_return_null=1:hard_rss_limit_mb=4096:"
                           "handle_abort=1")
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    env["PWD"] = ROOT
    return env


def env_line(env):
    keys = ("LUA_PATH", "LUA_CPATH", "LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS")
    return " ".join('%s="%s"' % (k, env[k]) for k in keys)


# ---- copying a case (FIFOs and symlinks as they are: never open a FIFO) ---------------------------
def copy_case(src, dst):
    os.makedirs(dst, exist_ok=True)
    for e in os.scandir(src):
        s, d = e.path, os.path.join(dst, e.name)
        st = os.lstat(s)
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(s), d)
        elif stat.S_ISFIFO(st.st_mode):
            os.mkfifo(d)
        elif stat.S_ISDIR(st.st_mode):
            copy_case(s, d)
        elif stat.S_ISREG(st.st_mode):
            shutil.copyfile(s, d)


def clear_dir(path):
    if os.path.lexists(path):
        shutil.rmtree(path)
    os.makedirs(path)


# ---- what went wrong, in a few words ---------------------------------------------------------------
def mutation_class(done):
    """The mutators a case went through (pm_length_lie, om_external, ...), for telling findings apart."""
    tags = sorted(set(re.findall(r"\b[pzol]m_[a-z_]+", " ".join(done))))
    return "+".join(tags) or "none"


def slug(s, n=70):
    s = re.sub(r"[^A-Za-z0-9_.+-]+", "-", s).strip("-")
    return s[:n] or "x"


def first_frame(report):
    """(function, file:line) of the first stack frame in nnvis's C code, or None."""
    for f in re.finditer(r"#\d+ 0x[0-9a-f]+ in (\S+) (\S+)", report):
        if re.search(r"(^|/)csrc/|build-asan/|onnx\.pb-c", f.group(2)):
            return f.group(1), os.path.basename(f.group(2))
    return None


def sanitizer_signature(report):
    m = re.search(r"tripwire: (\w+) of", report)
    if m:
        line = re.search(r"tripwire: [^\n]*", report).group(0)
        frame = first_frame(report)
        return "tripwire-%s-%s" % (m.group(1), frame[0] if frame else "lua"), line + (
            " (from %s %s)" % frame if frame else "")
    m = re.search(r"(\S+?):(\d+):\d+: runtime error: ([^\n]*)", report)
    if m:
        what = re.sub(r"-?\d+|'[^']*'", "", m.group(3)).split(" for ")[0].strip()
        f = os.path.basename(m.group(1))
        return "ubsan-%s-%s-%s" % (f, m.group(2), slug(what, 30)), "UBSan %s:%s: %s" % (f, m.group(2), m.group(3))
    m = re.search(r"ERROR: AddressSanitizer: ([\w-]+(?: [\w-]+)*?)(?: on| \(|$)", report, re.M)
    if m:
        kind = m.group(1)
        assertion = re.search(r"Assertion `[^\n]*' failed", report)
        if kind == "ABRT" and assertion:   # abort() from an assert in C: its message says more
            frame = first_frame(report)
            return "assert-%s" % (frame[0] if frame else "unknown"), assertion.group(0)
        if "rss limit" in kind:
            return "rss-limit", "ASan: " + kind
        frame = first_frame(report)
        where = "%s %s" % frame if frame else "?"
        return "asan-%s-%s" % (kind.replace(" ", "-"), frame[0] if frame else "unknown"), "ASan %s in %s" % (kind, where)
    m = re.search(r"AddressSanitizer:DEADLYSIGNAL|SEGV|stack-overflow", report)
    if m:
        return "signal", m.group(0)
    m = re.search(r"^lua5\.4: ([^\n]*)", report, re.M)
    if m:
        return "lua-" + slug(re.sub(r"\d+", "N", m.group(1)), 50), "lua5.4: " + m.group(1)
    return None, None


def hang_signature(report):
    """Where a hung case was: the innermost frame in nnvis's Lua files (the runner's traceback),
    else the innermost frame in nnvis's C files (ASan's report of the SIGABRT the driver sends)."""
    tb = report.split("hang traceback:", 1)
    if len(tb) == 2:
        for line in tb[1].splitlines():
            m = re.search(r"nnvis/(\w+\.lua):\d+: in (.*)", line)
            if m:
                fn = re.sub(r"<[^>]*:(\d+)>", r"<line \1>", m.group(2))
                return "hang-%s-%s" % (m.group(1), slug(fn, 40)), "%s %s" % (m.group(1), fn)
    for f in re.finditer(r"#\d+ 0x[0-9a-f]+ (?:in (\S+) (\S+)|\((\S+)\+0x)", report):
        if f.group(3) and "lua" in os.path.basename(f.group(3)):
            break   # the interpreter is running: a loop in Lua that the traceback missed
        if f.group(1) and re.search(r"(^|/)csrc/|build-asan/|onnx\.pb-c", f.group(2)):
            return "hang-%s" % f.group(1), "%s %s" % (f.group(1), os.path.basename(f.group(2)))
    return None, None


def internal_signature(msg):
    loc = re.search(r"([\w_]+\.lua):(\d+):", msg)
    text = msg.split(": ", 2)[-1] if loc else msg
    text = re.sub(r"'[^']*'|\"[^\"]*\"|\d+", "", text)
    words = " ".join(text.split()[:6])
    name = "internal-%s-%s" % ("%s-%s" % (loc.group(1), loc.group(2)) if loc else "msg", slug(words, 40))
    return name, msg[:300]


# ---- one child over one batch --------------------------------------------------------------------
class Failure:
    def __init__(self, kind, case, signature, headline, report):
        self.kind, self.case, self.signature, self.headline, self.report = kind, case, signature, headline, report


def run_batch(args, env, cases, seed, on_end):
    """Runs the runner over cases (paths); calls on_end(case, status, message) for each END.
    -> list of Failures (at most one crash or hang, which ends the child)."""
    stderr_path = os.path.join(args.work, "child.stderr")
    failures = []
    with open(stderr_path, "wb") as errf:
        cmd = [args.lua, os.path.join(HERE, "run.lua"), "--seed", str(seed), "--hang-report",
               str(args.timeout / 2)] + (["--strict"] if args.strict else [])
        p = subprocess.Popen(cmd, cwd=ROOT, env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errf, start_new_session=True)
        p.stdin.write(("\n".join(cases) + "\n").encode())
        p.stdin.close()
        buf = b""
        current, since, last = None, time.time(), None
        how = "eof"   # how the watch ended: eof (the child closed its output), hang, memory, stopped
        fd = p.stdout.fileno()
        while how == "eof":
            limit = args.timeout if current else STARTUP_SECONDS if last is None else args.timeout + 5
            wait = since + limit - time.time()
            if wait <= 0:
                how = "hang"
                break
            r, _, _ = select.select([fd], [], [], min(wait, 0.1))
            if rss_mb(p.pid) > args.rss_limit_mb:
                how = "memory"
                break
            if not r:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                line = line.decode("utf-8", "replace")
                if line.startswith("BEGIN "):
                    current, since = line[6:], time.time()
                elif line.startswith("END "):
                    rest = line[4:]
                    case = current if current and rest.startswith(current + " ") else rest.split(" ", 1)[0]
                    status, _, msg = rest[len(case) + 1:].partition(" ")
                    on_end(case, status, msg)
                    if status == "internal":
                        sig, head = internal_signature(msg)
                        failures.append(Failure("internal", case, sig, head, "END %s %s %s" % (case, status, msg)))
                    last, current, since = case, None, time.time()
                    if failures and not args.keep_going:
                        how = "stopped"
                        break
        if how in ("hang", "memory"):
            # ASan (handle_abort=1) prints where the main thread is: a C stack for the report
            try:
                os.kill(p.pid, signal.SIGABRT)
                p.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        if how != "eof":
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        rc = p.wait()
    with open(stderr_path, "rb") as f:
        report = f.read().decode("utf-8", "replace")
    if how == "hang":
        who = current or "(between cases, after %s)" % last
        sig, where = hang_signature(report)
        failures.append(Failure("hang", current or last, sig, "no END within %g s of BEGIN%s" % (
            args.timeout, " (in %s)" % where if where else ""), "hang: no END within %g s of BEGIN %s\n%s" % (
            args.timeout, who, report[-20000:])))
    elif how == "memory":
        sig, where = hang_signature(report)
        failures.append(Failure("memory", current or last, sig and sig.replace("hang-", "rss-limit-"),
                                "more than %d MB resident%s" % (args.rss_limit_mb, " (in %s)" % where if where else ""),
                                "memory: more than %d MB resident during %s\n%s" % (args.rss_limit_mb, current or last,
                                                                                   report[-20000:])))
    elif how == "eof" and (rc != 0 or re.search(r"ERROR: AddressSanitizer|runtime error:|tripwire:", report)):
        internal_only = rc == 1 and any(f.kind == "internal" for f in failures) and not report.strip()
        if not internal_only:
            case = current or last
            sig, head = sanitizer_signature(report)
            if sig is None:
                sig = "exit-%d" % rc
                head = "child exited with status %d%s" % (rc, " (signal %d)" % -rc if rc < 0 else "")
            if current is None:
                head += " (after the END of its last case)"
            failures.append(Failure("crash", case, sig, head, "exit status %d\n%s" % (rc, report[-60000:])))
    return failures


# ---- findings -------------------------------------------------------------------------------------
def finding_name(f, info):
    """The folder name of a finding: its signature, or when that says little (no stack: a hang in C,
    the memory cap, a bare signal), the signature with the case's kind and mutators."""
    kind, _, done = info
    sig = f.signature or f.kind
    if f.signature is None or sig in ("rss-limit", "signal") or sig.startswith(("exit-", "tripwire-open-lua",
                                                                                 "tripwire-exec-lua")):
        sig = "%s-%s-%s" % (sig, kind.replace(" ", "-"), mutation_class(done))
    return slug(sig, 90)


def keep_finding(args, env, name, f, info, seed):
    """Copies the failing case to findings/<name>/ with its report; -> (folder, reproducer, one line)."""
    kind, seed_path, done = info
    dest = os.path.join(args.work, "findings", name)
    if os.path.lexists(dest):
        shutil.rmtree(dest)
    os.makedirs(dest)
    case_dir = os.path.dirname(f.case)
    copy_case(case_dir, os.path.join(dest, "case"))
    repro = os.path.join(dest, "case", os.path.basename(f.case))
    one = "%s (%s): %s" % (f.kind, kind, f.headline)
    with open(os.path.join(dest, "description.txt"), "w") as fh:
        fh.write(one.replace("\n", " ")[:400] + "\n")
    with open(os.path.join(dest, "report.txt"), "w") as fh:
        fh.write("%s\nnnvis checkout: %s\nseed file: %s\nmutations:\n%s\nrunner seed: %d\n\n%s\n" % (
            one, args.nnvis, os.path.relpath(seed_path, ROOT), "".join("  - %s\n" % d[:2000] for d in done), seed,
            f.report))
    with open(os.path.join(dest, "repro.sh"), "w") as fh:
        fh.write("#!/bin/sh\n# %s\n# NNVIS=<checkout> sh repro.sh: the same case on another checkout's lua/ and build-asan/\n"
                 "NNVIS=${NNVIS:-%s}\ncd '%s' && %s %s fuzz/structured/run.lua --seed %d --hang-report %g%s '%s'\n" % (
                     one.replace("\n", " ")[:300], args.nnvis, ROOT, env_line(env).replace(args.nnvis, "$NNVIS"),
                     args.lua, seed, args.timeout / 2, " --strict" if args.strict else "", os.path.relpath(repro, ROOT)))
    os.chmod(os.path.join(dest, "repro.sh"), 0o755)
    return dest, repro, one


def selftest(args, env):
    d = os.path.join(args.work, "cases", "selftest")
    clear_dir(d)
    p = subprocess.run([args.lua, os.path.join(HERE, "run.lua"), "--tripwire-selftest", os.path.join(d, "x")],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=STARTUP_SECONDS)
    if p.returncode >= 0 or "tripwire: open of /etc/passwd outside the case folder" not in p.stderr:
        print("structured fuzz: the tripwire self-test failed: opening /etc/passwd while armed did not abort "
              "(exit %d)\n%s%s" % (p.returncode, p.stdout[-2000:], p.stderr[-4000:]))
        return False
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("FUZZ_SECONDS", 60)))
    ap.add_argument("--keep-going", action="store_true", help="record failures and go on")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--batch", type=int, default=50, help="cases per child process")
    ap.add_argument("--timeout", type=float, default=5, help="seconds from BEGIN to END before a hang")
    ap.add_argument("--rss-limit-mb", type=int, default=4096, help="resident memory over this is a failure")
    ap.add_argument("--work", default=os.path.join(ROOT, "build-fuzz", "structured"))
    ap.add_argument("--lua", default="lua5.4")
    ap.add_argument("--sanitizer-libs", default=None, help="the sanitizer runtimes to preload (default: cc's)")
    ap.add_argument("--strict", action="store_true",
                    help="a position in nnvis's lua/ files is internal even in an error that names its node")
    ap.add_argument("--nnvis", default=ROOT, help="the checkout whose lua/ and build-asan/ are fuzzed")
    ap.add_argument("--kinds", default=",".join(KINDS), help="comma-separated: pth zip,pth legacy,onnx")
    args = ap.parse_args()
    args.work = os.path.abspath(args.work)
    args.tripwire = os.path.join(args.work, "tripwire.so")
    seed = args.seed if args.seed is not None else int(time.time())
    rng = random.Random(seed)
    seeds_dir = os.path.join(args.work, "seeds")
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    seeds = {k: [] for k in kinds}
    for sub in ("pth", "onnx"):
        for name in sorted(os.listdir(os.path.join(seeds_dir, sub))):
            p = os.path.join(seeds_dir, sub, name)
            k = mutate.seed_kind(p)
            if k in seeds:
                seeds[k].append(p)
    args.nnvis = os.path.abspath(args.nnvis)
    env = child_env(args)
    for p in (args.tripwire, os.path.join(args.nnvis, "build-asan", "nnvis", "core.so")):
        if not os.path.exists(p):
            sys.exit("structured fuzz: %s is missing (make fuzz-structured builds it)" % p)
    if not selftest(args, env):
        sys.exit(1)
    print("structured fuzz: %.0f s, seed %d, batches of %d, tripwire self-test passed" % (args.seconds, seed, args.batch))
    sys.stdout.flush()

    counts, statuses = collections.Counter(), collections.Counter()
    findings = collections.OrderedDict()   # name -> [count, folder, repro, one line]
    failures_n, batch_no = 0, 0
    clean_time, clean_runs = 0.0, 0
    t0 = time.time()
    deadline = t0 + args.seconds
    cases_dir = os.path.join(args.work, "cases")
    stop = None
    while time.time() < deadline and not stop:
        batch_no += 1
        clear_dir(cases_dir)
        info, paths = {}, []
        tm = time.time()
        for k in range(args.batch):
            kind = rng.choice(kinds)
            sp = rng.choice(seeds[kind])
            cdir = os.path.join(cases_dir, "%06d-%02d" % (batch_no, k))
            try:
                kd, main_file, done = mutate.make_case(rng, sp, cdir, os.path.join(seeds_dir, "bombs"))
            except Exception as e:   # a mutator bug: say so, and go on without the case
                print("structured fuzz: mutating %s failed: %r" % (sp, e))
                continue
            with open(os.path.join(cdir, "mutations.txt"), "w") as fh:
                fh.write("seed: %s\n%s" % (os.path.relpath(sp, ROOT), "".join("- %s\n" % d[:2000] for d in done)))
            info[main_file] = (kd, sp, done)
            paths.append(main_file)
        run_seed = rng.randrange(1 << 30)
        t_mutate = time.time() - tm

        def on_end(case, status, msg):
            statuses[status] += 1
            if case in info:
                counts[info[case][0]] += 1

        tb, before = time.time(), sum(counts.values())
        fails = run_batch(args, env, paths, run_seed, on_end)
        if not fails:   # the rate of batches that did not stop on a hang or a crash
            clean_time += time.time() - tb + t_mutate
            clean_runs += sum(counts.values()) - before
        for f in fails:
            if f.kind != "internal" and f.case in info:
                counts[info[f.case][0]] += 1   # a crash or hang ran too
            if f.case not in info:
                print("structured fuzz: failure outside any case: %s\n%s" % (f.headline, f.report[-4000:]))
                stop = stop or f
                failures_n += 1
                continue
            failures_n += 1
            name = finding_name(f, info[f.case])
            if args.keep_going and name in findings:
                findings[name][0] += 1
                continue
            dest, repro, one = keep_finding(args, env, name, f, info[f.case], run_seed)
            if name in findings:
                findings[name][0] += 1
            else:
                findings[name] = [1, dest, repro, one]
                if args.keep_going:
                    print("structured fuzz: FINDING %s\n  %s\n  reproducer: %s" % (name, one[:300],
                                                                                os.path.relpath(repro, ROOT)))
                    sys.stdout.flush()
            if not args.keep_going:
                stop = f
                print("structured fuzz: FAILURE (%s) %s\nreproducer: %s\nrerun it with: %s\nreport (%s):\n%s" % (
                    f.kind, one, os.path.relpath(repro, ROOT), os.path.relpath(os.path.join(dest, "repro.sh"), ROOT),
                    os.path.relpath(os.path.join(dest, "report.txt"), ROOT), f.report[-6000:]))
                break

    elapsed = time.time() - t0
    total = sum(counts.values())
    print("structured fuzz: executions: " + ", ".join("%s %d" % (k, counts[k]) for k in kinds) +
          " (%.1f per second, %.1f in batches without a failure; ended: %s)" % (
              total / max(elapsed, 1e-9), clean_runs / max(clean_time, 1e-9),
              ", ".join("%s %d" % kv for kv in sorted(statuses.items()))))
    if findings and args.keep_going:
        print("structured fuzz: %d distinct findings in %s:" % (len(findings), os.path.relpath(
            os.path.join(args.work, "findings"), ROOT)))
        for name, (n, dest, repro, one) in findings.items():
            print("  %-60s x%-4d %s\n      %s" % (name, n, os.path.relpath(repro, ROOT), one[:200]))
    print("structured fuzz: %d executions, %d failures" % (total, failures_n))
    sys.exit(1 if failures_n else 0)


if __name__ == "__main__":
    main()
