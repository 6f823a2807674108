/* lua_readline.c — nnvis.readline, the small GNU readline binding behind the nnvis REPL
 * (bin/nnvis), built as its own module (build/nnvis/readline.so) so the core links no
 * terminal library.  It reads lines with editing, history and completion, and turns Ctrl-C
 * into something a REPL can use:
 *   at the prompt      the line being typed is dropped and a fresh prompt drawn
 *   during a command   (after interrupts(true)) a Lua hook is set from the SIGINT handler, as
 *                      lua.c does, and the running code raises "interrupted"
 *
 *   local rl = require "nnvis.readline"
 *   rl.set_completer(function(word, line, start, stop) return {"nv.models", ...} end)
 *   rl.read_history(path); local line = rl.readline("> "); rl.add_history(line)
 *   rl.write_history(path, 1000)
 */
#define _XOPEN_SOURCE 700   /* sigaction, strdup, fileno, select */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "lua.h"
#include "lauxlib.h"

static lua_State *rl_L;                 /* the state whose completer runs (set in readline) */
static int completer_ref = LUA_NOREF;   /* registry ref of the Lua completion function */

/* ---- Ctrl-C during a command: the hook raises in the running Lua code (lua.c's lstop) ---- */
static lua_State *running_L;            /* the state interrupts(true) was called on */

static void stop_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted");
}

static void on_sigint_running(int sig) {
  (void)sig;
  if (running_L) lua_sethook(running_L, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

static void set_sigint(void (*handler)(int), struct sigaction *old) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;                      /* no SA_RESTART: select() returns EINTR at the prompt */
  sigaction(SIGINT, &sa, old);
}

/* interrupts(on): with on, Ctrl-C interrupts the Lua code running; without, the default */
static int l_interrupts(lua_State *L) {
  int on = lua_toboolean(L, 1);
  running_L = on ? L : NULL;
  lua_sethook(L, NULL, 0, 0);
  if (on) set_sigint(on_sigint_running, NULL);
  else signal(SIGINT, SIG_DFL);
  return 0;
}

/* ---- reading a line: readline's callback interface under select(), so that a SIGINT at the
 * prompt interrupts select() and the line is dropped without leaving readline's state ---- */
static volatile sig_atomic_t got_sigint;
static char *line_read;
static int line_done;

static void on_sigint_prompt(int sig) { (void)sig; got_sigint = 1; }

static void on_line(char *line) {
  line_read = line;
  line_done = 1;
  rl_callback_handler_remove();
}

/* readline(prompt) -> the line without its newline, or nil at end of input */
static int l_readline(lua_State *L) {
  const char *prompt = luaL_optstring(L, 1, "> ");
  struct sigaction old;
  rl_L = L;
  rl_catch_signals = 0;
  line_read = NULL;
  line_done = 0;
  got_sigint = 0;
  set_sigint(on_sigint_prompt, &old);
  rl_callback_handler_install(prompt, on_line);
  while (!line_done) {
    fd_set fds;
    int fd = fileno(rl_instream ? rl_instream : stdin);
    FD_ZERO(&fds);
    FD_SET(fd, &fds);
    int r = select(fd + 1, &fds, NULL, NULL, NULL);
    if (r < 0 && errno == EINTR) {
      if (got_sigint) {                 /* Ctrl-C: drop the line, draw a fresh prompt */
        FILE *out = rl_outstream ? rl_outstream : stdout;
        got_sigint = 0;
        rl_point = rl_end;              /* leave the dropped line visible, as bash does */
        rl_redisplay();
        fputs("^C\n", out);
        fflush(out);
        rl_free_line_state();
        rl_replace_line("", 0);
        rl_callback_handler_remove();
        rl_callback_handler_install(prompt, on_line);
      }
      continue;
    }
    if (r < 0) break;
    rl_callback_read_char();
  }
  if (!line_done) rl_callback_handler_remove();
  sigaction(SIGINT, &old, NULL);
  if (!line_read) { lua_pushnil(L); return 1; }
  lua_pushstring(L, line_read);
  free(line_read);
  return 1;
}

/* ---- completion: the Lua completer returns the candidates for the word before the cursor ---- */
static char **matches;                  /* candidates of the current completion (malloc'd) */
static int nmatches, next_match;

static char *generator(const char *text, int state) {
  (void)text;
  if (state == 0) next_match = 0;
  if (next_match < nmatches) return matches[next_match++];   /* readline frees it */
  return NULL;
}

static char **attempted_completion(const char *text, int start, int end) {
  lua_State *L = rl_L;
  rl_attempted_completion_over = 1;     /* no filename completion as a fallback */
  rl_completion_append_character = '\0';
  if (!L || completer_ref == LUA_NOREF) return NULL;
  lua_rawgeti(L, LUA_REGISTRYINDEX, completer_ref);
  lua_pushstring(L, text);
  lua_pushstring(L, rl_line_buffer);
  lua_pushinteger(L, start + 1);
  lua_pushinteger(L, end);
  if (lua_pcall(L, 4, 1, 0) != LUA_OK || !lua_istable(L, -1)) { lua_pop(L, 1); return NULL; }
  int n = (int)luaL_len(L, -1);
  free(matches);
  matches = n > 0 ? calloc((size_t)n, sizeof *matches) : NULL;
  nmatches = 0;
  for (int i = 1; i <= n && matches; i++) {
    lua_rawgeti(L, -1, i);
    const char *s = lua_tostring(L, -1);
    if (s && (matches[nmatches] = strdup(s)) != NULL) nmatches++;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return rl_completion_matches(text, generator);
}

/* set_completer(fn(word, line, start, stop) -> list of words) */
static int l_set_completer(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_pushvalue(L, 1);
  luaL_unref(L, LUA_REGISTRYINDEX, completer_ref);
  completer_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  rl_attempted_completion_function = attempted_completion;
  /* words run through dots and colons: nv.models.resnet18, m:parameters */
  rl_basic_word_break_characters = " \t\n\"'`@$><=;|&{([,+-*/%^~#";
  return 0;
}

/* ---- history ---- */
static int l_add_history(lua_State *L) { add_history(luaL_checkstring(L, 1)); return 0; }

/* read_history(path) -> true | nil, msg */
static int l_read_history(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int err = read_history(path);
  if (err) { luaL_pushfail(L); lua_pushfstring(L, "read_history: %s: %s", path, strerror(err)); return 2; }
  lua_pushboolean(L, 1);
  return 1;
}

/* write_history(path [, max_lines]) -> true | nil, msg */
static int l_write_history(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_Integer keep = luaL_optinteger(L, 2, 1000);
  luaL_argcheck(L, keep > 0 && keep <= 1000000, 2, "out of range");
  int err = write_history(path);
  if (!err) history_truncate_file(path, (int)keep);
  if (err) { luaL_pushfail(L); lua_pushfstring(L, "write_history: %s: %s", path, strerror(err)); return 2; }
  lua_pushboolean(L, 1);
  return 1;
}

static int l_history_length(lua_State *L) { lua_pushinteger(L, history_length); return 1; }

static const luaL_Reg funcs[] = {
  {"readline", l_readline}, {"set_completer", l_set_completer}, {"add_history", l_add_history},
  {"read_history", l_read_history}, {"write_history", l_write_history},
  {"history_length", l_history_length}, {"interrupts", l_interrupts}, {NULL, NULL}
};

int luaopen_nnvis_readline(lua_State *L) {
  rl_readline_name = "nnvis";
  using_history();
  luaL_newlib(L, funcs);
  return 1;
}
