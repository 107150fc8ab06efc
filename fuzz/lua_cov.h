/*
 * lua_cov.h -- libFuzzer coverage of Lua code, for harnesses whose code
 * under test is Lua (the compiler instruments only C).
 *
 * A line hook counts each (previous line, line) pair run in the Lua files
 * chosen by lua_cov_start into counters that libFuzzer reads as "extra
 * counters" (the section it looks for), so an input that takes a new path
 * through the Lua code is kept like one that takes a new path through C.
 * Include once per harness; Lua 5.4 or LuaJIT (whose JIT the harness must
 * turn off, or compiled traces run no hook).
 */
#ifndef LUA_COV_H
#define LUA_COV_H

#include <stdint.h>
#include <string.h>

#include "lua.h"

#define LUA_COV_SIZE (1 << 14)
#define LUA_COV_FILES 8

__attribute__((used, section("__libfuzzer_extra_counters"))) static uint8_t lua_cov_counters[LUA_COV_SIZE];

static const char *lua_cov_suffix[LUA_COV_FILES]; /* files to cover, by path suffix */
static struct { const void *source; unsigned id; } lua_cov_seen[64]; /* source -> file id + 1, or 0 */
static unsigned lua_cov_nseen, lua_cov_prev;

/* The id (1..) of a chunk's file when it is covered, else 0; cached by the
   address of the source string, which a loaded chunk keeps. */
static unsigned lua_cov_file(const char *source) {
  unsigned i, id = 0;
  size_t n;
  for (i = 0; i < lua_cov_nseen; i++)
    if (lua_cov_seen[i].source == source) return lua_cov_seen[i].id;
  n = strlen(source);
  for (i = 0; i < LUA_COV_FILES && lua_cov_suffix[i]; i++) {
    size_t m = strlen(lua_cov_suffix[i]);
    if (n >= m && memcmp(source + n - m, lua_cov_suffix[i], m) == 0) { id = i + 1; break; }
  }
  if (lua_cov_nseen < sizeof lua_cov_seen / sizeof lua_cov_seen[0]) {
    lua_cov_seen[lua_cov_nseen].source = source;
    lua_cov_seen[lua_cov_nseen++].id = id;
  }
  return id;
}

static void lua_cov_hook(lua_State *l, lua_Debug *ar) {
  unsigned file, here;
  if (!lua_getinfo(l, "S", ar) || !ar->source) return;
  file = lua_cov_file(ar->source);
  if (!file) return;
  here = (file * 0x9E3779B1u) ^ (unsigned)ar->currentline;
  lua_cov_counters[(here ^ (lua_cov_prev >> 1)) & (LUA_COV_SIZE - 1)]++;
  lua_cov_prev = here;
}

/* Cover the Lua files whose chunk names end with one of suffixes (NULL-ended). */
static void lua_cov_start(lua_State *l, const char *const *suffixes) {
  unsigned i;
  for (i = 0; i < LUA_COV_FILES && suffixes[i]; i++) lua_cov_suffix[i] = suffixes[i];
  lua_sethook(l, lua_cov_hook, LUA_MASKLINE, 0);
}

/* Each input starts from no previous line. */
static void lua_cov_input(void) {
  lua_cov_prev = 0;
}

#endif
