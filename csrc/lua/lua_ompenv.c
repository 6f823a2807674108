/*
 * lua_ompenv.c — nnvis.ompenv, loaded by `require "nnvis"` before the core: tells GNU
 * OpenMP (libgomp, which the core and oneDNN run their parallel loops on) how long its idle
 * threads spin before they sleep, while it can still be told.  libgomp reads GOMP_SPINCOUNT
 * once, when it is loaded with the core, and by default spins about 300,000 rounds after each
 * parallel loop: those spinning threads took the two cores from OpenBLAS' and the Winograd
 * kernels' own threads that run next (10-step maximization through VGG16 1.25 -> 0.75-0.84 s,
 * 8-step Integrated Gradients on ResNet-18 0.90 -> 0.48-0.57 s, in alternating runs).  A
 * GOMP_SPINCOUNT or OMP_WAIT_POLICY the user set is left alone, and nothing is set (nor
 * reported) when libgomp is in the process already.  Its own module because the core itself
 * links libgomp: by the time the core's code runs, libgomp has read its settings.
 */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>

#define SPINCOUNT "10000"

int luaopen_nnvis_ompenv(lua_State *L) {
  const char *sc = getenv("GOMP_SPINCOUNT"), *wp = getenv("OMP_WAIT_POLICY");
  void *gomp = dlopen("libgomp.so.1", RTLD_LAZY | RTLD_NOLOAD);   /* loaded already: too late */
  if (gomp) dlclose(gomp);
  int set = !gomp && !(sc && *sc) && !(wp && *wp);
  if (set) setenv("GOMP_SPINCOUNT", SPINCOUNT, 1);
  if (set) lua_pushinteger(L, atoi(SPINCOUNT));   /* the count set, or false */
  else lua_pushboolean(L, 0);
  return 1;
}
