/*
 * fuzz/structured/tripwire.c — an LD_PRELOAD library that aborts the process when a reader of
 * outside data opens a file outside the case it reads, or runs a program.
 *
 * It starts disarmed, so Lua can load its modules and the core, and oneDNN and OpenMP what
 * they need.  The runner (fuzz/structured/run.lua) arms it for one case folder with
 *     io.open("/nnvis-tripwire/arm/<absolute case folder>")
 * and disarms it with io.open("/nnvis-tripwire/disarm"); both "opens" fail with ENOENT, so
 * without the tripwire loaded they are harmless.  While armed:
 *   - open, open64, openat, openat64 (and their _FORTIFY_SOURCE forms __open_2 ...), fopen
 *     and fopen64 of a path that does not resolve to inside the case folder abort with
 *     "tripwire: open of X outside the case folder".  The path is resolved like realpath:
 *     "case/../x" and symlinks inside the case leading out are caught.  realpath() only
 *     lstat()s and readlink()s, so the check never opens a FIFO itself.  Reads under /proc,
 *     /sys and /dev/shm and of /dev/null and /dev/urandom are allowed (OpenMP, oneDNN and
 *     OpenBLAS read the CPU's description there).
 *   - execve, execv, execvp, execvpe, execl, execlp, execle, posix_spawn, posix_spawnp,
 *     system, popen, fork and vfork abort with "tripwire: exec of X".
 * The sanitizers' reports read /proc/self/exe and the libraries' debug information with libc's
 * open() (libbacktrace): an open(), openat() called from inside a sanitizer runtime passes.
 * (Not fopen(): ASan's own fopen interceptor calls the one here for every fopen in the process.)
 *
 * Build: cc -O1 -g -shared -fPIC -o tripwire.so tripwire.c -ldl
 * Load it after the sanitizer runtimes: LD_PRELOAD="libasan.so ... tripwire.so".
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ARM_PREFIX "/nnvis-tripwire/arm/"
#define DISARM_PATH "/nnvis-tripwire/disarm"

static volatile int armed;
static char allowed[PATH_MAX];   /* the case folder, resolved; no trailing '/' */
static size_t allowed_len;

/* write(2) only: the message must get out even when malloc or stdio is what went wrong */
static void say(const char *a, const char *b, const char *c) {
  const char *parts[3] = {a, b, c};
  for (int i = 0; i < 3; i++) {
    if (!parts[i]) continue;
    size_t n = strlen(parts[i]);
    while (n > 0) {
      ssize_t w = write(2, parts[i], n);
      if (w <= 0) break;
      parts[i] += w;
      n -= (size_t)w;
    }
  }
}

static void trip(const char *what, const char *path, const char *why) {
  armed = 0;   /* abort() and the sanitizers' handlers may open files themselves */
  say("tripwire: ", what, " of ");
  say(path ? path : "(null)", why, "\n");
  abort();
}

/* Lexically appends component `c` (length n) to the absolute path in buf. */
static void push_component(char *buf, const char *c, size_t n) {
  if (n == 0 || (n == 1 && c[0] == '.')) return;
  size_t len = strlen(buf);
  if (n == 2 && c[0] == '.' && c[1] == '.') {
    char *slash = strrchr(buf, '/');
    if (slash == buf) buf[1] = '\0';
    else if (slash) *slash = '\0';
    return;
  }
  if (len + 1 + n >= PATH_MAX) { buf[0] = '\0'; return; }
  if (len > 1) buf[len++] = '/';
  memcpy(buf + len, c, n);
  buf[len + n] = '\0';
}

/* The absolute, resolved form of path (relative to dirfd): realpath of the longest prefix that
 * exists, the rest appended lexically.  Empty on failure. */
static void resolve(int dirfd, const char *path, char *out) {
  char abs[PATH_MAX * 2];
  out[0] = '\0';
  if (!path) return;
  if (path[0] == '/') snprintf(abs, sizeof abs, "%s", path);
  else {
    char base[PATH_MAX];
    if (dirfd == AT_FDCWD) {
      if (!getcwd(base, sizeof base)) return;
    } else {
      char link[64];
      snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
      ssize_t n = readlink(link, base, sizeof base - 1);
      if (n <= 0) return;
      base[n] = '\0';
    }
    snprintf(abs, sizeof abs, "%s/%s", base, path);
  }
  /* find the longest prefix (cut at a '/') that realpath resolves */
  size_t cut = strlen(abs);
  for (;;) {
    char save = abs[cut];
    abs[cut] = '\0';
    char *r = realpath(cut ? abs : "/", out);
    abs[cut] = save;
    if (r) break;
    if (cut == 0) { out[0] = '\0'; return; }
    while (cut > 0 && abs[cut - 1] != '/') cut--;   /* to the start of the last component */
    while (cut > 0 && abs[cut - 1] == '/') cut--;   /* and before its slash */
  }
  const char *p = abs + cut;
  while (*p) {
    while (*p == '/') p++;
    const char *e = p;
    while (*e && *e != '/') e++;
    push_component(out, p, (size_t)(e - p));
    if (!out[0]) return;
    p = e;
  }
}

static int under(const char *path, const char *dir) {
  size_t n = strlen(dir);
  return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* 1: the call was the arm/disarm message (errno set, the caller returns failure) */
static int control(const char *path) {
  if (!path || strncmp(path, "/nnvis-tripwire/", 16) != 0) return 0;
  if (strncmp(path, ARM_PREFIX, strlen(ARM_PREFIX)) == 0) {
    char r[PATH_MAX];
    armed = 0;
    resolve(AT_FDCWD, path + strlen(ARM_PREFIX) - 1, r);   /* keeps the folder's leading '/' */
    if (r[0]) {
      snprintf(allowed, sizeof allowed, "%s", r);
      allowed_len = strlen(allowed);
      armed = 1;
    }
  } else if (strcmp(path, DISARM_PATH) == 0) {
    armed = 0;
  }
  errno = ENOENT;
  return 1;
}

/* 1 when the code at return address ra lies in a sanitizer runtime */
static int from_sanitizer(void *ra) {
  Dl_info info;
  if (!ra || !dladdr(ra, &info) || !info.dli_fname) return 0;
  const char *base = strrchr(info.dli_fname, '/');
  base = base ? base + 1 : info.dli_fname;
  return strncmp(base, "libasan", 7) == 0 || strncmp(base, "libubsan", 8) == 0 ||
         strncmp(base, "liblsan", 7) == 0;
}

static void check_open(int dirfd, const char *path, int write) {
  if (!armed || !path) return;
  if (strlen(path) >= PATH_MAX) return;   /* the kernel refuses it: ENAMETOOLONG */
  char r[PATH_MAX];
  resolve(dirfd, path, r);
  if (r[0] && allowed_len && under(r, allowed)) return;
  if (r[0] && !write) {
    if (under(r, "/proc") || under(r, "/sys") || under(r, "/dev/shm") ||
        strcmp(r, "/dev/null") == 0 || strcmp(r, "/dev/urandom") == 0) return;
  }
  if (r[0] && strcmp(r, "/dev/null") == 0) return;
  trip("open", path, " outside the case folder");
}

static int mode_writes(const char *mode) {
  return mode && (strchr(mode, 'w') || strchr(mode, 'a') || strchr(mode, '+'));
}
static int flags_write(int flags) {
  return (flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_TRUNC)) != 0;
}

#define REAL(name) static __typeof__(name) *real_##name; \
  if (!real_##name) real_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

/* ---- opens ------------------------------------------------------------------------------- */
/* mode is passed on always: harmless without O_CREAT / O_TMPFILE */
#define OPEN_BODY(name, dirfd, path, flags)                         \
  va_list ap;                                                       \
  va_start(ap, flags);                                              \
  mode_t mode = (mode_t)va_arg(ap, int);                            \
  va_end(ap);                                                       \
  if (control(path)) return -1;                                     \
  if (!from_sanitizer(__builtin_return_address(0)))                 \
    check_open(dirfd, path, flags_write(flags));

int open(const char *path, int flags, ...) {
  OPEN_BODY(open, AT_FDCWD, path, flags)
  REAL(open);
  return real_open(path, flags, mode);
}
int open64(const char *path, int flags, ...) {
  OPEN_BODY(open64, AT_FDCWD, path, flags)
  REAL(open64);
  return real_open64(path, flags, mode);
}
int openat(int dirfd, const char *path, int flags, ...) {
  OPEN_BODY(openat, dirfd, path, flags)
  REAL(openat);
  return real_openat(dirfd, path, flags, mode);
}
int openat64(int dirfd, const char *path, int flags, ...) {
  OPEN_BODY(openat64, dirfd, path, flags)
  REAL(openat64);
  return real_openat64(dirfd, path, flags, mode);
}
int __open_2(const char *path, int flags);
int __open_2(const char *path, int flags) {
  if (control(path)) return -1;
  check_open(AT_FDCWD, path, flags_write(flags));
  REAL(__open_2);
  return real___open_2(path, flags);
}
int __open64_2(const char *path, int flags);
int __open64_2(const char *path, int flags) {
  if (control(path)) return -1;
  check_open(AT_FDCWD, path, flags_write(flags));
  REAL(__open64_2);
  return real___open64_2(path, flags);
}
int __openat_2(int dirfd, const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags) {
  if (control(path)) return -1;
  check_open(dirfd, path, flags_write(flags));
  REAL(__openat_2);
  return real___openat_2(dirfd, path, flags);
}
int __openat64_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags) {
  if (control(path)) return -1;
  check_open(dirfd, path, flags_write(flags));
  REAL(__openat64_2);
  return real___openat64_2(dirfd, path, flags);
}
FILE *fopen(const char *path, const char *mode) {
  if (control(path)) return NULL;
  check_open(AT_FDCWD, path, mode_writes(mode));
  REAL(fopen);
  return real_fopen(path, mode);
}
FILE *fopen64(const char *path, const char *mode) {
  if (control(path)) return NULL;
  check_open(AT_FDCWD, path, mode_writes(mode));
  REAL(fopen64);
  return real_fopen64(path, mode);
}
FILE *freopen(const char *path, const char *mode, FILE *f) {
  if (control(path)) return NULL;
  if (path) check_open(AT_FDCWD, path, mode_writes(mode));
  REAL(freopen);
  return real_freopen(path, mode, f);
}

/* ---- programs ---------------------------------------------------------------------------- */
static void check_exec(const char *what) {
  if (armed) trip("exec", what, "");
}

int execve(const char *path, char *const argv[], char *const envp[]) {
  check_exec(path);
  REAL(execve);
  return real_execve(path, argv, envp);
}
int execv(const char *path, char *const argv[]) {
  check_exec(path);
  REAL(execv);
  return real_execv(path, argv);
}
int execvp(const char *file, char *const argv[]) {
  check_exec(file);
  REAL(execvp);
  return real_execvp(file, argv);
}
int execvpe(const char *file, char *const argv[], char *const envp[]) {
  check_exec(file);
  REAL(execvpe);
  return real_execvpe(file, argv, envp);
}
/* the variadic execl* forms are refused while armed and passed on as execv* otherwise */
#define ARGV_OF(first, ap, argv)                                                   \
  char *argv[256];                                                                 \
  int argc_ = 0;                                                                   \
  argv[argc_++] = (char *)(first);                                                 \
  while (argc_ < 255 && (argv[argc_] = va_arg(ap, char *)) != NULL) argc_++;       \
  argv[argc_] = NULL;
int execl(const char *path, const char *arg, ...) {
  check_exec(path);
  va_list ap;
  va_start(ap, arg);
  ARGV_OF(arg, ap, argv)
  va_end(ap);
  return execv(path, argv);
}
int execlp(const char *file, const char *arg, ...) {
  check_exec(file);
  va_list ap;
  va_start(ap, arg);
  ARGV_OF(arg, ap, argv)
  va_end(ap);
  return execvp(file, argv);
}
int execle(const char *path, const char *arg, ...) {
  check_exec(path);
  va_list ap;
  va_start(ap, arg);
  ARGV_OF(arg, ap, argv)
  char *const *envp = va_arg(ap, char *const *);
  va_end(ap);
  return execve(path, argv, envp);
}
int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                const posix_spawnattr_t *attr, char *const argv[], char *const envp[]) {
  check_exec(path);
  REAL(posix_spawn);
  return real_posix_spawn(pid, path, fa, attr, argv, envp);
}
int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
                 const posix_spawnattr_t *attr, char *const argv[], char *const envp[]) {
  check_exec(file);
  REAL(posix_spawnp);
  return real_posix_spawnp(pid, file, fa, attr, argv, envp);
}
int system(const char *cmd) {
  check_exec(cmd ? cmd : "(system: is there a shell?)");
  REAL(system);
  return real_system(cmd);
}
FILE *popen(const char *cmd, const char *mode) {
  check_exec(cmd);
  REAL(popen);
  return real_popen(cmd, mode);
}
pid_t fork(void) {
  check_exec("fork()");
  REAL(fork);
  return real_fork();
}
pid_t vfork(void) {
  check_exec("vfork()");
  REAL(fork);   /* vfork's child must not return from this frame: fork is the safe stand-in */
  return real_fork();
}
