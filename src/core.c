/*
 * core.c -- luaopen_toolzz_core: the module table, clocks, and the 5.1 shims.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

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

/* random() -> a number in [0, 1) for retry jitter, from a generator of the
   module's own (xorshift64*), so that toolzz neither uses nor reseeds the
   application's math.random. It is seeded from the wall clock, the process
   id and an address, and seeded again after a fork: processes started
   together (cron jobs, nginx workers forked from one master) draw
   different waits, where 5.1 and LuaJIT's math.random start alike. */
#if defined(__GNUC__)
#define TZ_THREAD_LOCAL __thread
#else
#define TZ_THREAD_LOCAL
#endif
static TZ_THREAD_LOCAL uint64_t rng_state;
static TZ_THREAD_LOCAL pid_t rng_pid;

static uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15u;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9u;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBu;
  return x ^ (x >> 31);
}

static int l_random(lua_State *L) {
  pid_t pid = getpid();
  uint64_t x;
  if (rng_state == 0 || pid != rng_pid) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    x = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    x = splitmix64(x ^ ((uint64_t)pid << 32) ^ (uint64_t)(uintptr_t)&ts);
    rng_state = x ? x : 1;
    rng_pid = pid;
  }
  x = rng_state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  rng_state = x;
  x *= 0x2545F4914F6CDD1Du;
  lua_pushnumber(L, (lua_Number)(x >> 11) * (1.0 / 9007199254740992.0));
  return 1;
}

#if defined(__GNUC__)
__attribute__((visibility("default")))
#endif
int luaopen_toolzz_core(lua_State *L);

int luaopen_toolzz_core(lua_State *L) {
  static const luaL_Reg fns[] = {{"now", l_now}, {"sleep", l_sleep}, {"random", l_random}, {NULL, NULL}};
  lua_newtable(L);
  tz_setfuncs(L, fns, 0);
  tz_open_json(L);
  tz_open_check(L);
  tz_open_transport(L);
  tz_open_signals(L);
  tz_open_digest(L);
  tz_open_file(L);
  lua_pushliteral(L, TOOLZZ_VERSION);
  lua_setfield(L, -2, "version");
  return 1;
}
