/*
 * core.c -- luaopen_toolzz_core: the module table, clocks, and the 5.1 shims.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <time.h>

#include "toolzz.h"

void tz_setfuncs(lua_State *L, const luaL_Reg *l, int nup) {
  int i;
  luaL_checkstack(L, nup + 1, "too many upvalues");
  for (; l->name; l++) {
    for (i = 0; i < nup; i++) lua_pushvalue(L, -nup);
    lua_pushcclosure(L, l->func, nup);
    lua_setfield(L, -(nup + 2), l->name);
  }
  lua_pop(L, nup);
}

/* now() -> seconds on a monotonic clock (for elapsed times and deadlines) */
static int l_now(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
  return 1;
}

/* sleep(seconds): blocks the calling thread (the plain-Lua transport's sleep) */
static int l_sleep(lua_State *L) {
  double s = luaL_checknumber(L, 1);
  struct timespec req, rem;
  if (!(s > 0)) return 0; /* NaN too */
  if (s > 1e9) s = 1e9;   /* a cast of an out-of-range double is undefined */
  req.tv_sec = (time_t)s;
  req.tv_nsec = (long)((s - (double)req.tv_sec) * 1e9);
  while (nanosleep(&req, &rem) == -1 && errno == EINTR) req = rem;
  return 0;
}

#if defined(__GNUC__)
__attribute__((visibility("default")))
#endif
int luaopen_toolzz_core(lua_State *L);

int luaopen_toolzz_core(lua_State *L) {
  static const luaL_Reg fns[] = {{"now", l_now}, {"sleep", l_sleep}, {NULL, NULL}};
  lua_newtable(L);
  tz_setfuncs(L, fns, 0);
  tz_open_json(L);
  tz_open_check(L);
  tz_open_transport(L);
  lua_pushliteral(L, TOOLZZ_VERSION);
  lua_setfield(L, -2, "version");
  return 1;
}
