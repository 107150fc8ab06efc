/*
 * values.h -- what the Lua 5.4 libFuzzer harnesses share (fuzz_encode.c,
 * fuzz_validate.c, fuzz_response.c): reading the input, the Lua state they
 * keep for the whole run, and the pieces of the small programs with which
 * encode and validate build Lua values on the stack.
 *
 * Define FUZZ_NAME ("fuzz_encode", ...) before including it, once per
 * harness. The harness's Lua state is L, here.
 */
#ifndef FUZZ_VALUES_H
#define FUZZ_VALUES_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua.h"
#include "lualib.h"
#include "lauxlib.h"

#ifndef FUZZ_NAME
#error "define FUZZ_NAME before including values.h"
#endif
#ifndef CJSON_CPATH
#define CJSON_CPATH "/usr/lib/x86_64-linux-gnu/lua/5.4/?.so"
#endif
#ifndef TOOLZZ_ROOT
#define TOOLZZ_ROOT "."
#endif

int luaopen_toolzz_core(lua_State *L);
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static lua_State *L;
static unsigned long inputs_run;

static inline void die(const char *what) {
  fprintf(stderr, FUZZ_NAME ": %s\n", what);
  abort();
}

/* ---- reading the input ------------------------------------------------- */

typedef struct reader {
  const uint8_t *p;
  size_t n;
} reader;

/* The next byte, 0 once the input is used up. */
static inline unsigned rd_u8(reader *r) {
  if (!r->n) return 0;
  r->n--;
  return *r->p++;
}

static inline unsigned rd_u16(reader *r) {
  unsigned hi = rd_u8(r);
  return (hi << 8) | rd_u8(r);
}

static inline uint64_t rd_u64(reader *r) {
  uint64_t v = 0;
  int i;
  for (i = 0; i < 8; i++) v = (v << 8) | rd_u8(r);
  return v;
}

/* Up to want bytes from the input, without copying. */
static inline size_t rd_bytes(reader *r, size_t want, const char **out) {
  size_t n = want < r->n ? want : r->n;
  *out = (const char *)r->p;
  r->p += n;
  r->n -= n;
  return n;
}

/* ---- the Lua state ------------------------------------------------------ */

/* At exit, so leak checking sees every Lua allocation freed. */
static inline void close_state(void) {
  if (L) lua_close(L);
  L = NULL;
}

/* A state with the standard libraries, toolzz's Lua modules from
   $TOOLZZ_ROOT/lua, lua-cjson from the system and toolzz.core (linked in)
   as a preloaded module. */
static inline void new_state(void) {
  const char *root = getenv("TOOLZZ_ROOT");
  if (!root) root = TOOLZZ_ROOT;
  L = luaL_newstate();
  if (!L) die("cannot create a Lua state");
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua", root, root);
  lua_setfield(L, -2, "path");
  lua_pushliteral(L, CJSON_CPATH);
  lua_setfield(L, -2, "cpath");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, luaopen_toolzz_core);
  lua_setfield(L, -2, "toolzz.core");
  lua_pop(L, 2);
}

/* require(name), its module left on the stack. */
static inline void require(const char *name) {
  lua_getglobal(L, "require");
  lua_pushstring(L, name);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) die(lua_tostring(L, -1));
}

/* Run one input: run(ud) under lua_pcall, so that a Lua error (a failed
   check) is reported and aborts, which libFuzzer counts as a crash. The
   stack must be empty before and after. The state is kept from input to
   input: its garbage is collected in full every gc_every inputs, or as soon
   as the heap is larger than gc_heap_kb. Not after every input: a full
   collection walks the whole state and was most of the time of a small
   input. Garbage left for later looks like a leak to libFuzzer's per-input
   check, so tools/fuzz runs with -detect_leaks=0; LeakSanitizer still
   checks everything at exit, after lua_close. */
static inline void run_input(lua_CFunction run, void *ud, unsigned long gc_every, int gc_heap_kb) {
  if (lua_gettop(L) != 0) die("stack not empty before an input");
  lua_pushcfunction(L, run);
  lua_pushlightuserdata(L, ud);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    lua_gc(L, LUA_GCRESTART, 0);
    fprintf(stderr, FUZZ_NAME ": check failed: %s\n", lua_tostring(L, -1));
    abort();
  }
  if (lua_gettop(L) != 0) die("stack not balanced after an input");
  if (++inputs_run % gc_every == 0 || lua_gc(L, LUA_GCCOUNT, 0) > gc_heap_kb) lua_gc(L, LUA_GCCOLLECT, 0);
}

/* ---- building values ----------------------------------------------------- */

#define FUZZ_UNUSED __attribute__((unused)) /* not every harness builds values */
static int trap_mt_ref FUZZ_UNUSED = LUA_NOREF; /* a metatable whose every metamethod raises */
static int weak_mt_ref FUZZ_UNUSED = LUA_NOREF; /* __mode = "kv" */
static int used_weak FUZZ_UNUSED;               /* this input made a weak table */
static int collected FUZZ_UNUSED;               /* this input ran a full GC */

static inline int raise_metamethod(lua_State *l) {
  return luaL_error(l, "a metamethod of the caller's ran in " FUZZ_NAME);
}

static inline int some_function(lua_State *l) {
  (void)l;
  return 0;
}

/* The trap and weak metatables, in the registry. */
static inline void make_metatables(void) {
  static const char *const names[] = {"__index", "__newindex", "__len", "__pairs", "__tostring",
                                      "__eq", "__lt", "__le", "__concat", "__call", "__close",
                                      "__unm", "__add", "__name", NULL};
  int i;
  lua_newtable(L);
  for (i = 0; names[i]; i++) {
    if (strcmp(names[i], "__name") == 0) lua_pushliteral(L, "trap");
    else lua_pushcfunction(L, raise_metamethod);
    lua_setfield(L, -2, names[i]);
  }
  trap_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_newtable(L);
  lua_pushliteral(L, "kv");
  lua_setfield(L, -2, "__mode");
  weak_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

/* A program keeps at most max_values values above base. run() reserves
   stack for them and some temporaries: a C function that pushes past what
   it reserved writes past the end of Lua's stack, unseen by ASan (liblua is
   not instrumented). So, once full, an op that may push (and maybe some
   others: when_full(op)) is replaced by pop_op, and each op is checked. */
static inline unsigned cap_op(unsigned op, int count, int max_values, int (*when_full)(unsigned),
                              unsigned pop_op) {
  return count >= max_values && when_full(op) ? pop_op : op;
}

static inline void check_values(int base, int max_values) {
  if (lua_gettop(L) - base > max_values) die("the program holds more values than its stack reserve");
}

/* Run the program in the input, up to max_ops ops, each a byte: step(r,
   op % 32, base, top) with top the stack top before the op. Leaves the
   values it built above base. */
static inline void run_program(reader *r, int base, int max_ops, int max_values, int (*when_full)(unsigned),
                               unsigned pop_op, void (*step)(reader *, unsigned, int, int)) {
  int ops = 0;
  while (r->n && ops++ < max_ops) {
    int top = lua_gettop(L);
    unsigned op = cap_op(rd_u8(r), top - base, max_values, when_full, pop_op);
    step(r, op % 32, base, top);
    check_values(base, max_values);
  }
}

/* Stack index of the table nearest the top at or below idx (above base), or 0. */
static inline int table_at_or_below(int base, int idx) {
  for (; idx > base; idx--)
    if (lua_type(L, idx) == LUA_TTABLE) return idx;
  return 0;
}

/* t[k] = v (raw) with the table at index t, the key and value at the top
   (both popped); nothing for no table, a nil key or a NaN key. */
static inline void set_kv(int t) {
  int kt = lua_type(L, -2);
  if (t == 0 || kt == LUA_TNIL || (kt == LUA_TNUMBER && lua_tonumber(L, -2) != lua_tonumber(L, -2))) {
    lua_pop(L, 2);
    return;
  }
  lua_rawset(L, t);
}

/* The ops both value-building programs have; top is the stack top and count
   the values above base, before the op. push_key pushes a key read from
   the input, or nothing (returns 0) for a key Lua refuses. */

/* t[key] = the top value, t the table nearest the top below it. */
static inline void op_set_top(reader *r, int base, int top, int (*push_key)(reader *)) {
  int t = table_at_or_below(base, top - 1);
  if (top == base) return;
  if (!push_key(r)) { lua_pop(L, 1); return; }
  lua_insert(L, -2);
  set_kv(t);
}

/* t[k] = v with k and v the two top values. */
static inline void op_set_kv(int base, int top) {
  if (top - base < 2) return;
  set_kv(table_at_or_below(base, top - 2));
}

/* t[#t + 1] = the top value. */
static inline void op_append(int base, int top) {
  int t = table_at_or_below(base, top - 1);
  if (top == base) return;
  if (!t) { lua_pop(L, 1); return; }
  lua_rawseti(L, t, (lua_Integer)lua_rawlen(L, t) + 1);
}

/* t[key] = nil: holes, emptied arrays, removed fields. */
static inline void op_remove_key(reader *r, int base, int top, int (*push_key)(reader *)) {
  int t = table_at_or_below(base, top);
  if (!t || !push_key(r)) return;
  lua_pushnil(L);
  set_kv(t);
}

/* A double of any 64 bits from the input: NaNs with payloads, subnormals. */
static inline void op_push_double(reader *r) {
  uint64_t bits = rd_u64(r);
  double x;
  memcpy(&x, &bits, sizeof x);
  lua_pushnumber(L, (lua_Number)x);
}

/* Push again a value further down: shared tables and, with a set, cycles. */
static inline void op_share(reader *r, int base, int top) {
  int count = top - base;
  if (count) lua_pushvalue(L, base + 1 + (int)(rd_u8(r) % (unsigned)count));
}

/* Move the top value further down. */
static inline void op_rotate(reader *r, int base, int top) {
  int count = top - base;
  if (count >= 2) lua_rotate(L, base + 1 + (int)(rd_u8(r) % (unsigned)count), 1);
}

/* A full collection, which empties weak tables; once per input (it is slow). */
static inline void op_collect(void) {
  if (!collected) lua_gc(L, LUA_GCCOLLECT, 0);
  collected = 1;
}

#endif
