/*
 * json.c -- Lua values to JSON text, strictly.
 *
 * Refuses what JSON cannot carry (functions, userdata, threads, NaN/inf,
 * mixed or sparse tables, cycles, invalid UTF-8) and reports every problem
 * with its dotted path instead of stopping at the first. Object keys are
 * written sorted, so the same table always gives the same bytes.
 */
#include <ctype.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "toolzz.h"

#define SCRATCH_MT "toolzz.json.scratch"
#define SCRATCH_KEEP_BYTES (256u << 10) /* larger buffers are freed after use */

/* One step of the path from the body to the value being written. */
typedef struct path_step {
  const char *key; /* NULL for an array index */
  size_t key_len;
  lua_Integer index;
} path_step;

/* A string key of an object, borrowed from the table that holds it, and the
   stack slot of a copy of it (to look the value up without interning it
   again), or 0: only an object's first KEY_COPIES_MAX keys get a copy, so
   that any number of keys fits the C stack (8,000 slots on Lua 5.1). */
#define KEY_COPIES_MAX 64
typedef struct key_ref {
  const char *s;
  size_t n;
  int slot;
} key_ref;

/* Memory kept between calls in a userdata, so a Lua error cannot leak it. */
typedef struct scratch {
  tz_buf out;
  key_ref *keys;
  size_t keys_cap;
} scratch;

typedef struct encoder {
  lua_State *L;
  scratch *sc;
  size_t nkeys;       /* keys in use on sc->keys, a stack shared by all levels */
  size_t max_bytes;
  int depth;
  int errors_idx;     /* stack slot of the errors table (nil until the first) */
  int array_mt_idx;   /* stack slot of the array marker metatable */
  int nerrors;
  int too_big;
  int is_float_subtype;
  path_step path[DEFAULT_MAX_DEPTH + 1];
  const void *parents[DEFAULT_MAX_DEPTH + 1];
} encoder;

/* ---- UTF-8 ---------------------------------------------------------- */

#if LUA_VERSION_NUM < 503
int tz_number_is_integral(lua_State *L, int idx) {
  lua_Number x;
  if (lua_type(L, idx) != LUA_TNUMBER) return 0;
  x = lua_tonumber(L, idx);
  return x == floor(x) && fabs(x) < 9007199254740992.0;
}
#endif

/* ---- errors --------------------------------------------------------- */

/* Push the dotted path of the value at the current depth. */
static void push_path(encoder *e) {
  lua_State *L = e->L;
  luaL_Buffer b;
  int i;
  char num[32];
  luaL_buffinit(L, &b);
  for (i = 1; i <= e->depth && i <= DEFAULT_MAX_DEPTH; i++) {
    const path_step *st = &e->path[i];
    if (st->key) {
      if (i > 1) luaL_addchar(&b, '.');
      luaL_addlstring(&b, st->key, st->key_len);
    } else {
      snprintf(num, sizeof num, "[%lld]", (long long)st->index);
      luaL_addstring(&b, num);
    }
  }
  luaL_pushresult(&b);
}

/* Record one problem at the current path; writing goes on to find others. */
static void add_error(encoder *e, const char *message) {
  lua_State *L = e->L;
  if (e->nerrors >= DEFAULT_MAX_ERRORS) { e->nerrors++; return; }
  lua_checkstack(L, 4);
  if (lua_isnil(L, e->errors_idx)) {
    lua_newtable(L);
    lua_replace(L, e->errors_idx);
  }
  lua_createtable(L, 0, 2);
  push_path(e);
  lua_setfield(L, -2, "path");
  lua_pushstring(L, message);
  lua_setfield(L, -2, "message");
  lua_rawseti(L, e->errors_idx, ++e->nerrors);
}

/* ---- writers -------------------------------------------------------- */

static void put(encoder *e, const char *s, size_t n) {
  if (e->too_big) return;
  if (e->sc->out.len + n > e->max_bytes) { e->too_big = 1; return; }
  if (!tz_buf_add(&e->sc->out, s, n)) luaL_error(e->L, "toolzz: out of memory");
}

#define put_lit(e, s) put((e), (s), sizeof(s) - 1)

static void put_char(encoder *e, char c) {
  tz_buf *b = &e->sc->out;
  if (b->len < b->cap && b->len < e->max_bytes) b->data[b->len++] = c;
  else put(e, &c, 1);
}

/* 0: written as is; 1: escaped; 2: first byte of a multi-byte UTF-8 sequence */
static unsigned char char_class[256];

static void init_char_class(void) {
  int c;
  for (c = 0; c < 256; c++) char_class[c] = c < 0x20 ? 1 : c >= 0x80 ? 2 : 0;
  char_class['"'] = char_class['\\'] = 1;
}

/* Length of the well-formed UTF-8 sequence at s (n bytes left), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
  unsigned c = s[0], lo = 0x80, hi = 0xBF;
  size_t need, k;
  if (c < 0xC2) return 0;
  if (c < 0xE0) need = 1;
  else if (c < 0xF0) {
    need = 2;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c < 0xF5) {
    need = 3;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else return 0;
  if (n <= need || s[1] < lo || s[1] > hi) return 0;
  for (k = 2; k <= need; k++)
    if ((s[k] & 0xC0) != 0x80) return 0;
  return need + 1;
}

/* Do any of these 8 bytes need more than a copy (control, quote, backslash, non-ASCII)? */
static int needs_care(const unsigned char *p) {
  const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
  uint64_t v, q, bs;
  memcpy(&v, p, 8);
  q = v ^ (ones * '"');
  bs = v ^ (ones * '\\');
  return (((v - ones * 0x20) | (q - ones) | (bs - ones)) & ~v & highs) != 0 || (v & highs) != 0;
}

/* Write s as a JSON string, checking UTF-8 on the way; 0 if it is not UTF-8. */
static int put_string(encoder *e, const char *str, size_t n) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0, run = 0;
  char esc[6] = {'\\', 'u', '0', '0', 0, 0};
  put_char(e, '"');
  while (i < n) {
    unsigned char c;
    const char *rep = NULL;
    while (n - i >= 8 && !needs_care(s + i)) i += 8;
    if (i == n) break;
    c = s[i];
    if (char_class[c] == 0) { i++; continue; }
    if (char_class[c] == 2) {
      size_t len = utf8_seq(s + i, n - i);
      if (!len) return 0;
      i += len;
      continue;
    }
    put(e, str + run, i - run);
    switch (c) {
      case '"': rep = "\\\""; break;
      case '\\': rep = "\\\\"; break;
      case '\n': rep = "\\n"; break;
      case '\r': rep = "\\r"; break;
      case '\t': rep = "\\t"; break;
      case '\b': rep = "\\b"; break;
      case '\f': rep = "\\f"; break;
      default: break;
    }
    if (rep) put(e, rep, 2);
    else {
      esc[4] = hex[c >> 4];
      esc[5] = hex[c & 15];
      put(e, esc, 6);
    }
    run = ++i;
  }
  put(e, str + run, n - run);
  put_char(e, '"');
  return 1;
}

static void put_integer(encoder *e, long long v) {
  char buf[24];
  char *p = buf + sizeof buf;
  unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
  do { *--p = (char)('0' + u % 10); u /= 10; } while (u);
  if (v < 0) *--p = '-';
  put(e, p, (size_t)(buf + sizeof buf - p));
}

/* Shortest of %.15g..%.17g that reads back as the same double. */
static void put_float(encoder *e, double x, int mark_float) {
  char buf[40];
  char point = localeconv()->decimal_point[0];
  int prec, n = 0, i, plain = 1;
  for (prec = 15; prec <= 17; prec++) {
    n = snprintf(buf, sizeof buf - 2, "%.*g", prec, x);
    if (strtod(buf, NULL) == x) break;
  }
  for (i = 0; i < n; i++) {
    if (buf[i] == point) buf[i] = '.'; /* whatever the C locale says */
    if (buf[i] == '.' || buf[i] == 'e') plain = 0;
  }
  if (mark_float && plain) { buf[n++] = '.'; buf[n++] = '0'; }
  put(e, buf, (size_t)n);
}

static void put_number(encoder *e, int idx) {
  lua_State *L = e->L;
  lua_Number x;
#if LUA_VERSION_NUM >= 503
  if (lua_isinteger(L, idx)) { put_integer(e, (long long)lua_tointeger(L, idx)); return; }
#endif
  x = lua_tonumber(L, idx);
  if (x != x || x - x != 0) { add_error(e, "NaN and infinity cannot be written as JSON"); return; }
#if LUA_VERSION_NUM < 503
  if (x == floor(x) && fabs(x) < 9007199254740992.0 && !(x == 0 && signbit(x))) {
    put_integer(e, (long long)x);
    return;
  }
#endif
  put_float(e, (double)x, e->is_float_subtype);
}

static void encode_value(encoder *e, int idx);

static int key_cmp(const void *a, const void *b) {
  const key_ref *x = (const key_ref *)a, *y = (const key_ref *)b;
  size_t n = x->n < y->n ? x->n : y->n;
  int c = memcmp(x->s, y->s, n);
  if (c) return c;
  return x->n < y->n ? -1 : x->n > y->n;
}

static void push_key(encoder *e, const char *s, size_t n, int slot) {
  scratch *sc = e->sc;
  if (e->nkeys == sc->keys_cap) {
    size_t cap = sc->keys_cap ? sc->keys_cap * 2 : 64;
    key_ref *k = (key_ref *)realloc(sc->keys, cap * sizeof *k);
    if (!k) luaL_error(e->L, "toolzz: out of memory");
    sc->keys = k;
    sc->keys_cap = cap;
  }
  sc->keys[e->nkeys].s = s;
  sc->keys[e->nkeys].n = n;
  sc->keys[e->nkeys].slot = slot;
  e->nkeys++;
}

static int is_array_key(lua_State *L, int idx, lua_Integer *out) {
#if LUA_VERSION_NUM >= 503
  if (!lua_isinteger(L, idx)) return 0;
  *out = lua_tointeger(L, idx);
#else
  if (!tz_number_is_integral(L, idx)) return 0;
  *out = (lua_Integer)lua_tonumber(L, idx);
#endif
  return *out >= 1;
}

static void encode_object(encoder *e, int idx, size_t first_key) {
  lua_State *L = e->L;
  size_t i, n = e->nkeys - first_key;
  key_ref *keys = e->sc->keys + first_key;
  if (n > 24) qsort(keys, n, sizeof(key_ref), key_cmp);
  else { /* insertion sort: objects here are small */
    for (i = 1; i < n; i++) {
      key_ref k = keys[i];
      size_t j = i;
      while (j > 0 && key_cmp(&keys[j - 1], &k) > 0) { keys[j] = keys[j - 1]; j--; }
      keys[j] = k;
    }
  }
  put_lit(e, "{");
  for (i = 0; i < n; i++) {
    key_ref k = e->sc->keys[first_key + i];
    path_step *st = &e->path[e->depth];
    st->key = k.s;
    st->key_len = k.n;
    if (i) put_char(e, ',');
    if (!put_string(e, k.s, k.n)) {
      st->key = "(key that is not UTF-8)"; /* keep bad bytes out of messages */
      st->key_len = strlen(st->key);
      add_error(e, "key is not valid UTF-8");
    }
    put_char(e, ':');
    if (k.slot) lua_pushvalue(L, k.slot);
    else lua_pushlstring(L, k.s, k.n);
    lua_rawget(L, idx);
    encode_value(e, lua_gettop(L));
    lua_pop(L, 1);
    if (e->too_big) break;
  }
  put_lit(e, "}");
}

static void encode_array(encoder *e, int idx, lua_Integer n) {
  lua_State *L = e->L;
  lua_Integer i;
  put_lit(e, "[");
  for (i = 1; i <= n; i++) {
    path_step *st = &e->path[e->depth];
    st->key = NULL;
    st->index = i;
    if (i > 1) put_char(e, ',');
    lua_rawgeti(L, idx, (int)i);
    encode_value(e, lua_gettop(L));
    lua_pop(L, 1);
    if (e->too_big) break;
  }
  put_lit(e, "]");
}

/* Decide whether a table is an object, an array, or neither, and write it. */
static void encode_table(encoder *e, int idx) {
  lua_State *L = e->L;
  const void *self = lua_topointer(L, idx);
  size_t first_key = e->nkeys, nstring = 0, nother = 0;
  lua_Integer nint = 0, max_index = 0, k;
  int i, base, marked = 0;

  if (e->depth >= DEFAULT_MAX_DEPTH) {
    add_error(e, "nested deeper than the limit of 64 levels");
    return;
  }
  for (i = 0; i < e->depth; i++)
    if (e->parents[i] == self) { add_error(e, "cyclic reference: a table contains itself"); return; }
  if (!lua_checkstack(L, 6)) luaL_error(L, "toolzz: stack overflow");
  e->parents[e->depth] = self;

  if (lua_getmetatable(L, idx)) {
    marked = lua_rawequal(L, -1, e->array_mt_idx);
    lua_pop(L, 1);
  }

  base = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING) {
      size_t n;
      const char *s = lua_tolstring(L, -1, &n);
      int slot = 0;
      if (nstring < KEY_COPIES_MAX && lua_checkstack(L, 4)) {
        lua_pushvalue(L, -1); /* a copy stays below the key lua_next goes on from */
        lua_insert(L, -2);
        slot = lua_gettop(L) - 1;
      }
      push_key(e, s, n, slot);
      nstring++;
    } else if (is_array_key(L, -1, &k)) {
      nint++;
      if (k > max_index) max_index = k;
    } else nother++;
  }

  if (nstring && (nint || nother || marked)) {
    add_error(e, "table mixes array items and object keys");
  } else if (nother) {
    add_error(e, "table has keys JSON cannot carry (only strings, or 1..n for arrays)");
  } else if (nint && max_index != nint) {
    add_error(e, "sparse array: items missing between 1 and the highest index");
  } else if (nstring || nint) {
    e->depth++;
    if (nstring) encode_object(e, idx, first_key);
    else encode_array(e, idx, nint);
    e->depth--;
  } else if (marked) put_lit(e, "[]");
  else put_lit(e, "{}");
  e->nkeys = first_key;
  lua_settop(L, base); /* the key copies */
}

static void encode_value(encoder *e, int idx) {
  lua_State *L = e->L;
  if (e->too_big) return;
  switch (lua_type(L, idx)) {
    case LUA_TNIL: put_lit(e, "null"); break;
    case LUA_TBOOLEAN:
      if (lua_toboolean(L, idx)) put_lit(e, "true");
      else put_lit(e, "false");
      break;
    case LUA_TNUMBER: put_number(e, idx); break;
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(L, idx, &n);
      if (!put_string(e, s, n)) add_error(e, "string is not valid UTF-8");
      break;
    }
    case LUA_TLIGHTUSERDATA:
      if (lua_touserdata(L, idx) == NULL) put_lit(e, "null"); /* cjson.null */
      else add_error(e, "a light userdata cannot be written as JSON");
      break;
    case LUA_TTABLE: encode_table(e, idx); break;
    default: {
      char msg[96];
      snprintf(msg, sizeof msg, "a %s cannot be written as JSON", lua_typename(L, lua_type(L, idx)));
      add_error(e, msg);
    }
  }
}

int tz_utf8_valid(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    size_t len;
    if (s[i] < 0x80) { i++; continue; }
    len = utf8_seq(s + i, n - i);
    if (!len) return 0;
    i += len;
  }
  return 1;
}

/* ---- Lua functions -------------------------------------------------- */

static scratch *new_scratch(lua_State *L) {
  scratch *sc = (scratch *)lua_newuserdata(L, sizeof *sc);
  memset(sc, 0, sizeof *sc);
  luaL_getmetatable(L, SCRATCH_MT);
  lua_setmetatable(L, -2);
  return sc;
}

/* The call's scratch, pushed (at index 3 of l_encode): the module's shared
   one, taken out of upvalue 1 for the time of the call. A call that finds it
   taken -- a finaliser that encodes while another encoding allocates, or a
   call after one that raised -- uses a new one, so no call ever writes into
   memory another call is using. */
static scratch *take_scratch(lua_State *L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  if (lua_type(L, -1) == LUA_TUSERDATA) {
    lua_pushboolean(L, 0);
    lua_replace(L, lua_upvalueindex(1));
    return (scratch *)lua_touserdata(L, -1);
  }
  lua_pop(L, 1);
  return new_scratch(L);
}

/* After a call: its scratch is the shared one again, unless another is. */
static void give_back_scratch(lua_State *L, int idx) {
  if (lua_type(L, lua_upvalueindex(1)) == LUA_TUSERDATA) return;
  lua_pushvalue(L, idx);
  lua_replace(L, lua_upvalueindex(1));
}

/* encode(value [, max_bytes]) -> json | nil, { {path=, message=}, ... } */
static int l_encode(lua_State *L) {
  encoder e;
  int value_idx = 1;
  lua_settop(L, 2);
  memset(&e, 0, sizeof e);
  e.L = L;
  e.sc = take_scratch(L);
  e.max_bytes = DEFAULT_MAX_BODY_BYTES;
  if (lua_type(L, 2) == LUA_TNUMBER) {
    lua_Number m = lua_tonumber(L, 2); /* clamp before converting: NaN, negatives, huge */
    e.max_bytes = !(m > 0) ? 0 : m >= 4503599627370496.0 ? ((size_t)1 << 52) : (size_t)m;
  }
#if LUA_VERSION_NUM >= 503
  e.is_float_subtype = 1;
#endif
  lua_pushvalue(L, lua_upvalueindex(2));
  e.array_mt_idx = lua_gettop(L);
  lua_pushnil(L);
  e.errors_idx = lua_gettop(L);
  e.sc->out.len = 0;

  encode_value(&e, value_idx);

  if (e.too_big) {
    char msg[96];
    e.depth = 0;
    snprintf(msg, sizeof msg, "body is larger than the limit of %lu bytes", (unsigned long)e.max_bytes);
    add_error(&e, msg);
  }
  if (e.nerrors) {
    lua_pushnil(L);
    lua_pushvalue(L, e.errors_idx);
  } else {
    lua_pushlstring(L, e.sc->out.data ? e.sc->out.data : "", e.sc->out.len);
    lua_pushnil(L);
  }
  if (e.sc->out.cap > SCRATCH_KEEP_BYTES) tz_buf_free(&e.sc->out);
  give_back_scratch(L, 3);
  return 2;
}

/* utf8_valid(s) -> boolean */
static int l_utf8_valid(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  lua_pushboolean(L, tz_utf8_valid((const unsigned char *)s, n));
  return 1;
}

static int scratch_gc(lua_State *L) {
  scratch *sc = (scratch *)luaL_checkudata(L, 1, SCRATCH_MT);
  tz_buf_free(&sc->out);
  free(sc->keys);
  sc->keys = NULL;
  sc->keys_cap = 0;
  return 0;
}

void tz_open_json(lua_State *L) {
  static const luaL_Reg encode_fn[] = {{"encode", l_encode}, {NULL, NULL}};
  static const luaL_Reg plain_fn[] = {
    {"utf8_valid", l_utf8_valid}, {NULL, NULL}};
  init_char_class();
  /* array_mt: a table with this metatable is always written as an array */
  lua_newtable(L);
  lua_pushliteral(L, "array");
  lua_setfield(L, -2, "__name");
  lua_pushvalue(L, -1);
  lua_setfield(L, -3, "array_mt");

  if (luaL_newmetatable(L, SCRATCH_MT)) {
    lua_pushcfunction(L, scratch_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  new_scratch(L);
  lua_insert(L, -2); /* scratch, array_mt */
  tz_setfuncs(L, encode_fn, 2);
  tz_setfuncs(L, plain_fn, 0);
}
