/*
 * check.c -- the quick "is this body valid?" test of toolzz.validate, and
 * the value checks it shares with the Lua walk that explains problems.
 *
 * toolzz.validate compiles each schema into a plan (a Lua table, see
 * validate.lua `plan_of`) and asks valid(plan, body, strict, null) first; only
 * a body it refuses is walked in Lua for the messages. The rules here and in
 * the walk must give the same verdicts (spec/11-validation-compiled_spec.lua
 * holds them to it for every field of every schema and every kind of value).
 * Characters are judged as Lua patterns do in the C locale: ASCII only.
 */
#include <string.h>

#include "toolzz.h"

/* A plan is a flat table: plan[3i-2] = field name, plan[3i-1] = kind * 4 +
   flags, plan[3i] = the const value, sub-plan or zones table (or absent),
   plan.n = the number of fields (validate.lua `plan_of`). */
enum { K_STRING = 1, K_BOOLEAN, K_UUID, K_TIMEZONE, K_EMAIL, K_URL, K_DIGITS, K_CONST, K_ARRAY, K_OBJECT };
enum { F_REQUIRED = 1, F_NULLABLE = 2 };
#define MAX_PLAN_DEPTH 16

static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_alnum(int c) { return is_digit(c) || is_alpha(c); }
static int is_hex(int c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
/* %c or %s of a Lua pattern: a control character or white space */
static int is_ctrl_or_space(int c) { return c < 32 || c == 127 || c == ' '; }

/* 8-4-4-4-12 hexadecimal digits, either case. */
static int uuid_ok(const char *s, size_t n) {
  size_t i;
  if (n != 36) return 0;
  for (i = 0; i < n; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return 0;
    } else if (!is_hex((unsigned char)s[i])) {
      return 0;
    }
  }
  return 1;
}

/* A plausible e-mail address: one @, a user part of 1-64 bytes that neither
   starts nor ends with a dot nor holds two in a row, a domain of
   [alnum-]+ "." [alnum-.]* alnum without "..", "-." or ".-". */
static int email_ok(const char *s, size_t n) {
  const char *at = NULL, *d;
  size_t i, user, dn;
  if (n > 254) return 0;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (is_ctrl_or_space(c)) return 0;
    if (c == '@') {
      if (at) return 0;
      at = s + i;
    }
  }
  if (!at) return 0;
  user = (size_t)(at - s);
  d = at + 1;
  dn = n - user - 1;
  if (user == 0 || user > 64 || dn == 0) return 0;
  if (s[0] == '.' || s[user - 1] == '.') return 0;
  for (i = 0; i + 1 < user; i++)
    if (s[i] == '.' && s[i + 1] == '.') return 0;
  /* domain: a first label of [alnum-] up to the first dot, then [alnum-.]*, ending in alnum */
  for (i = 0; i < dn && d[i] != '.'; i++)
    if (!is_alnum((unsigned char)d[i]) && d[i] != '-') return 0;
  if (i == 0 || i >= dn - 1) return 0; /* no first label, no dot, or nothing after it */
  for (i = i + 1; i < dn; i++) {
    unsigned char c = (unsigned char)d[i];
    if (!is_alnum(c) && c != '-' && c != '.') return 0;
  }
  if (!is_alnum((unsigned char)d[dn - 1])) return 0;
  for (i = 0; i + 1 < dn; i++) {
    if (d[i] == '.' && (d[i + 1] == '.' || d[i + 1] == '-')) return 0;
    if (d[i] == '-' && d[i + 1] == '.') return 0;
  }
  return 1;
}

/* An http:// or https:// URL (scheme in any case) whose host part (up to
   / ? or #) is [alnum.-]+ with an optional ":" and digits. */
static int http_url_ok(const char *s, size_t n) {
  size_t i, k, scheme, host_start, host_end, colon = 0;
  if (n > 2048) return 0;
  for (i = 0; i < n; i++)
    if (is_ctrl_or_space((unsigned char)s[i])) return 0;
  for (i = 0; i < n && is_alpha((unsigned char)s[i]); i++) {}
  scheme = i;
  if (scheme == 0 || n - scheme < 3 || memcmp(s + scheme, "://", 3) != 0) return 0;
  if (scheme == 4 || scheme == 5) {
    static const char http[] = "https";
    for (k = 0; k < scheme; k++)
      if ((s[k] | 0x20) != http[k]) return 0;
  } else {
    return 0;
  }
  host_start = scheme + 3;
  for (host_end = host_start; host_end < n; host_end++) {
    char c = s[host_end];
    if (c == '/' || c == '?' || c == '#') break;
  }
  if (host_end == host_start) return 0;
  for (i = host_start; i < host_end; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == ':' && !colon) { colon = i; continue; }
    if (colon ? !is_digit(c) : !(is_alnum(c) || c == '.' || c == '-')) return 0;
  }
  return colon != host_start; /* something before the colon */
}

/* 1 to 64 ASCII digits (a Google account id). */
static int digits_ok(const char *s, size_t n) {
  size_t i;
  if (n == 0 || n > 64) return 0;
  for (i = 0; i < n; i++)
    if (!is_digit((unsigned char)s[i])) return 0;
  return 1;
}

/* Is the table at idx a sequence (only number keys, raw)? */
static int sequence_ok(lua_State *L, int idx) {
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TNUMBER) { lua_pop(L, 1); return 0; }
  }
  return 1;
}

static int object_ok(lua_State *L, int plan, int obj, int strict, int null, int depth);

/* Does the value at v pass its entry's check (kind, extra at index x)? */
static int value_ok(lua_State *L, int kind, int flags, int v, int x, int strict, int null, int depth) {
  size_t n;
  const char *s;
  int t = lua_type(L, v);
  switch (kind) {
    case K_BOOLEAN: return t == LUA_TBOOLEAN;
    case K_CONST: return t == LUA_TSTRING && lua_rawequal(L, v, x);
    case K_ARRAY: return t == LUA_TTABLE && sequence_ok(L, v);
    case K_OBJECT: {
      int ok;
      if (t != LUA_TTABLE) return 0;
      lua_pushnil(L);
      if (lua_next(L, v)) { /* an object's first key is a string, or it is empty */
        ok = lua_type(L, -2) == LUA_TSTRING;
        lua_pop(L, 2);
        if (!ok) return 0;
      }
      return object_ok(L, x, v, strict, null, depth + 1);
    }
    default: break;
  }
  if (t != LUA_TSTRING) return 0;
  s = lua_tolstring(L, v, &n);
  switch (kind) {
    case K_STRING: return !(flags & F_REQUIRED) || n > 0;
    case K_UUID: return uuid_ok(s, n);
    case K_EMAIL: return email_ok(s, n);
    case K_URL: return http_url_ok(s, n);
    case K_DIGITS: return digits_ok(s, n);
    case K_TIMEZONE: { /* plan.zones[s] == true; the zones table is at x */
      int ok;
      lua_pushvalue(L, v);
      lua_rawget(L, x);
      ok = lua_type(L, -1) == LUA_TBOOLEAN && lua_toboolean(L, -1);
      lua_pop(L, 1);
      return ok;
    }
    default: return 0;
  }
}

/* Is the object at obj valid against the plan at plan (indices absolute)?
   In strict mode every key must be a field of the plan: as each field found
   is a distinct string key of obj, that holds when obj has no more keys than
   the fields found. */
static int object_ok(lua_State *L, int plan, int obj, int strict, int null, int depth) {
  int i, n, ok = 1, found = 0;
  if (depth > MAX_PLAN_DEPTH || !lua_checkstack(L, 8)) return 0;
  if (lua_getmetatable(L, obj)) { lua_pop(L, 1); return 0; } /* let the walk judge it */
  lua_getfield(L, plan, "n");
  n = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  for (i = 0; ok && i < n; i++) {
    int kind, flags, v;
    lua_rawgeti(L, plan, 3 * i + 2);
    kind = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    flags = kind & 3;
    kind >>= 2;
    lua_rawgeti(L, plan, 3 * i + 1);
    lua_rawget(L, obj);
    v = lua_gettop(L);
    if (lua_isnil(L, v)) {
      ok = !(flags & F_REQUIRED);
    } else {
      found++;
      if (lua_type(L, v) == lua_type(L, null) && lua_rawequal(L, v, null)) {
        ok = (flags & F_NULLABLE) != 0;
      } else {
        if (kind == K_CONST || kind == K_OBJECT || kind == K_TIMEZONE)
          lua_rawgeti(L, plan, 3 * i + 3); /* the const value, sub-plan or zones table */
        ok = value_ok(L, kind, flags, v, v + 1, strict, null, depth);
      }
    }
    lua_settop(L, v - 1);
  }
  if (ok && strict) {
    int keys = 0;
    lua_pushnil(L);
    while (lua_next(L, obj)) {
      lua_pop(L, 1);
      if (++keys > found) { ok = 0; lua_pop(L, 1); break; }
    }
  }
  return ok;
}

/* valid(plan, body, strict, null) -> true when the walk would find no problem */
static int l_valid(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 4);
  lua_pushboolean(L, lua_type(L, 2) == LUA_TTABLE && object_ok(L, 1, 2, lua_toboolean(L, 3), 4, 0));
  return 1;
}

/* uuid_valid(v) -> boolean: a string of 8-4-4-4-12 hexadecimal digits (any v) */
static int l_uuid_valid(lua_State *L) {
  size_t n;
  const char *s = lua_type(L, 1) == LUA_TSTRING ? lua_tolstring(L, 1, &n) : NULL;
  lua_pushboolean(L, s != NULL && uuid_ok(s, n));
  return 1;
}

/* The value checks alone, for the walk: email_valid(s), http_url_valid(s) */
#define STRING_CHECK(fname, test)                              \
  static int fname(lua_State *L) {                             \
    size_t n;                                                  \
    const char *s = luaL_checklstring(L, 1, &n);               \
    lua_pushboolean(L, test(s, n));                            \
    return 1;                                                  \
  }
STRING_CHECK(l_email_valid, email_ok)
STRING_CHECK(l_http_url_valid, http_url_ok)

void tz_open_check(lua_State *L) {
  static const luaL_Reg fns[] = {{"valid", l_valid},
                                 {"uuid_valid", l_uuid_valid},
                                 {"email_valid", l_email_valid},
                                 {"http_url_valid", l_http_url_valid},
                                 {NULL, NULL}};
  tz_setfuncs(L, fns, 0);
  lua_pushinteger(L, K_STRING);
  lua_setfield(L, -2, "KIND_STRING"); /* the first kind; validate.lua numbers the rest in order */
}
