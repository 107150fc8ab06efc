/*
 * fuzz_validate.c -- libFuzzer harness for the validator and its schema walk
 * (lua/toolzz/validate.lua over lua/toolzz/schema.lua), as init.lua calls
 * them: body = prepare(spec, fields, defaults); check(spec, body, strict,
 * problems, secrets).
 *
 * The input's first byte chooses the endpoint (calcom or gcal), strict or
 * not, whether defaults and a secrets list are given, and whether the check
 * is run twice. The rest is a small program that builds Lua values on the
 * stack, as fuzz_encode.c does, but shaped for the schema: keys and strings
 * come from a dictionary of the schema's field names and of valid and nearly
 * valid UUIDs, time zones, e-mail addresses, URLs and digit strings; a whole
 * valid body can be pushed and then taken apart; values are of every kind
 * (NaN, infinities, -0.0, huge integers, cjson.null, functions, userdata,
 * threads, cycles, shared tables, long strings, bytes that are not UTF-8)
 * and tables may carry a metatable whose every metamethod raises. The first
 * value built is the fields, the second the defaults. Then fuzz_check (Lua,
 * below) asserts:
 *
 *   - prepare and check raise nothing (no metamethod of the caller's runs);
 *   - check returns the problems list it was given, a sequence of
 *     { path = <UTF-8 string>, message = <non-empty UTF-8 string of at most
 *     MAX_MESSAGE bytes> } and nothing else;
 *   - secrets, when asked for, is a sequence of strings, each the value of
 *     a secret field of the body;
 *   - the caller's tables (fields and defaults, as deep as they go) are
 *     exactly as they were, metatables included;
 *   - checking the same body again gives the same problems.
 *
 * Coverage of validate.lua and schema.lua comes from a line hook (lua_cov.h).
 * A Lua error or a failed check prints why and aborts, which libFuzzer
 * reports as a crash; a hang is libFuzzer's -timeout. FUZZ_VERBOSE=1 in the
 * environment prints each outcome.
 */
#include <math.h>

#define FUZZ_NAME "fuzz_validate"
#include "values.h"

#include "lua_cov.h"

#define MAX_VALUES 48       /* values the program may hold on the stack */
#define MAX_OPS 2048        /* instructions run per input */
#define MAX_NEST 40         /* levels one NEST op adds */
#define MAX_BULK 200        /* keys one BULK op adds */
#define MAX_LONG 4096       /* bytes in one long string */
#define LONG_BUDGET 32768   /* bytes of long strings per input (unknown keys
                               cost the did-you-mean search per byte) */
#define MAX_MESSAGE 512     /* a problem's message is short */
#define GC_EVERY 1024       /* full collection every so many inputs */
#define GC_HEAP_KB 8192     /* or when the heap is larger than this */

static int check_ref = LUA_NOREF;     /* fuzz_check */
static int template_ref = LUA_NOREF;  /* function(kind) -> a valid body */
static int array_mt_ref = LUA_NOREF;
static size_t long_left;            /* LONG_BUDGET left for this input */

/* ---- the checker, in Lua ---------------------------------------------- */

static const char CHECKER[] =
  "local validate, schema, core, cjson, max_message, verbose = ...\n"
  "local utf8_valid = core.utf8_valid\n"
  "local null = cjson.null\n"
  "local type, next, getmetatable, rawequal, rawget, tostring = type, next, getmetatable, rawequal, rawget, tostring\n"
  "local mtype = math.type\n"
  "\n"
  "local function fail(fmt, ...) error(string.format(fmt, ...), 0) end\n"
  "\n"
  "-- A raw copy of every table reachable from v (keys too), and its metatable;\n"
  "-- with a stack of its own, as tables may nest deeper than Lua calls can.\n"
  "local function snapshot(v, seen)\n"
  "  local todo, n = { v }, 1\n"
  "  while n > 0 do\n"
  "    local t = todo[n]\n"
  "    todo[n], n = nil, n - 1\n"
  "    if type(t) == 'table' and not seen[t] then\n"
  "      local copy = { mt = getmetatable(t), kv = {} }\n"
  "      seen[t] = copy\n"
  "      for k, x in next, t do\n"
  "        copy.kv[k] = x\n"
  "        todo[n + 1], todo[n + 2], n = k, x, n + 2\n"
  "      end\n"
  "    end\n"
  "  end\n"
  "end\n"
  "\n"
  "local function same_value(a, b) return rawequal(a, b) or (a ~= a and b ~= b) end\n"
  "\n"
  "local function unchanged(seen)\n"
  "  for t, copy in next, seen do\n"
  "    if getmetatable(t) ~= copy.mt then fail('a caller table lost or changed its metatable') end\n"
  "    local n = 0\n"
  "    for k, x in next, t do\n"
  "      n = n + 1\n"
  "      local was = copy.kv[k]\n"
  "      if was == nil then fail('key %s was added to a caller table', tostring(type(k) == 'string' and #k or k)) end\n"
  "      if not same_value(was, x) then fail('a caller table changed at a %s key', type(k)) end\n"
  "    end\n"
  "    for _ in next, copy.kv do n = n - 1 end\n"
  "    if n ~= 0 then fail('a key was removed from a caller table') end\n"
  "  end\n"
  "end\n"
  "\n"
  "-- As toolzz.new keeps client defaults (tables.lua raw_copy: raw, 64\n"
  "-- levels, the array marker kept, each table copied once).\n"
  "local function deep_copy(v, depth, memo)\n"
  "  if type(v) ~= 'table' or depth > 64 then return v end\n"
  "  if memo[v] then return memo[v] end\n"
  "  local out = {}\n"
  "  memo[v] = out\n"
  "  for k, x in next, v do out[k] = deep_copy(x, depth + 1, memo) end\n"
  "  if getmetatable(v) == core.array_mt then setmetatable(out, core.array_mt) end\n"
  "  return out\n"
  "end\n"
  "\n"
  "local function check_problems(problems, n0)\n"
  "  local n = #problems\n"
  "  for k in next, problems do\n"
  "    if mtype(k) ~= 'integer' or k < 1 or k > n then fail('stray key %s in problems', tostring(k)) end\n"
  "  end\n"
  "  for i = n0 + 1, n do\n"
  "    local p = problems[i]\n"
  "    if type(p) ~= 'table' or getmetatable(p) ~= nil then fail('problem %d is a %s', i, type(p)) end\n"
  "    local path, message = p.path, p.message\n"
  "    if type(path) ~= 'string' then fail('problem %d: path is a %s', i, type(path)) end\n"
  "    if type(message) ~= 'string' or message == '' then fail('problem %d: no message', i) end\n"
  "    for k in next, p do\n"
  "      if k ~= 'path' and k ~= 'message' then fail('problem %d has a key %s', i, tostring(k)) end\n"
  "    end\n"
  "    if not utf8_valid(path) then fail('problem %d: path is not UTF-8', i) end\n"
  "    if not utf8_valid(message) then fail('problem %d: message is not UTF-8', i) end\n"
  "    if #message > max_message then fail('problem %d: a message of %d bytes', i, #message) end\n"
  "  end\n"
  "end\n"
  "\n"
  "-- Every string under a secret field's name anywhere in v (each table once).\n"
  "local function named_secrets(v, out, seen)\n"
  "  if type(v) ~= 'table' or seen[v] then return end\n"
  "  seen[v] = true\n"
  "  for k, x in next, v do\n"
  "    if type(x) == 'string' and schema.SECRET_NAMES[k] then out[x] = true end\n"
  "    named_secrets(x, out, seen)\n"
  "  end\n"
  "end\n"
  "\n"
  "-- The values of the body's secret fields, where the spec says secret.\n"
  "-- (lax mode: an unknown field named like a secret field is a secret too,\n"
  "-- and so is a string under such a name anywhere inside an unknown field)\n"
  "local function secret_values(spec, body, out, strict)\n"
  "  if type(body) ~= 'table' then return out end\n"
  "  for name, field in next, spec.fields do\n"
  "    local v = rawget(body, name)\n"
  "    if field.secret and type(v) == 'string' then out[v] = true end\n"
  "    if field.type == 'object' then secret_values(field, v, out, strict) end\n"
  "  end\n"
  "  if not strict then\n"
  "    for name, v in next, body do\n"
  "      if not spec.fields[name] then\n"
  "        if schema.SECRET_NAMES[name] and type(v) == 'string' then out[v] = true end\n"
  "        named_secrets(v, out, {})\n"
  "      end\n"
  "    end\n"
  "  end\n"
  "  return out\n"
  "end\n"
  "\n"
  "local function has_metatable(v, seen)\n"
  "  if type(v) ~= 'table' or seen[v] then return false end\n"
  "  seen[v] = true\n"
  "  if getmetatable(v) ~= nil then return true end\n"
  "  for _, x in next, v do\n"
  "    if has_metatable(x, seen) then return true end\n"
  "  end\n"
  "  return false\n"
  "end\n"
  "\n"
  "return function(kind, fields, defaults, strict, want_secrets, twice)\n"
  "  local spec = schema[kind]\n"
  "  local seen = {}\n"
  "  snapshot(fields, seen)\n"
  "  snapshot(defaults, seen)\n"
  "  defaults = deep_copy(defaults, 0, {})\n"
  "  if type(fields) ~= 'table' then return end -- init.lua refuses these before validating\n"
  "  local body = validate.prepare(spec, fields, defaults)\n"
  "  if type(body) ~= 'table' then fail('prepare returned a %s', type(body)) end\n"
  "  local problems, secrets = { { path = 'id', message = 'must be a UUID' } }, want_secrets and {} or nil\n"
  "  local ret = validate.check(spec, body, strict, problems, secrets)\n"
  "  if not rawequal(ret, problems) then fail('check returned a %s, not its problems list', type(ret)) end\n"
  "  if problems[1].path ~= 'id' then fail('the problem already in the list was replaced') end\n"
  "  check_problems(problems, 1)\n"
  "  if verbose then\n"
  "    io.stderr:write(kind, ': ', #problems - 1, ' problems', #problems > 1 and (', first: ' .. problems[2].path:sub(1, 80) .. ' ' .. problems[2].message) or '', '\\n')\n"
  "  end\n"
  "  if secrets then\n"
  "    local allowed = secret_values(spec, body, {}, strict)\n"
  "    for k, v in next, secrets do\n"
  "      if mtype(k) ~= 'integer' or k < 1 or k > #secrets then fail('stray key in secrets') end\n"
  "      if type(v) ~= 'string' then fail('a secret is a %s', type(v)) end\n"
  "      if not allowed[v] then fail('a value that is no secret field was listed as a secret') end\n"
  "    end\n"
  "  end\n"
  "  -- the quick test (src/check.c) never passes a body the walk refuses, and\n"
  "  -- passes every body the walk accepts unless a table has a metatable\n"
  "  -- (those it leaves to the walk)\n"
  "  local quick, walked = validate.valid(spec, body, strict), #validate.walk(spec, body, strict, {}) == 0\n"
  "  if quick and not walked then fail('the quick test passed a body the walk refuses') end\n"
  "  if walked and not quick and not has_metatable(body, {}) then fail('the quick test refused a body the walk accepts') end\n"
  "  unchanged(seen)\n"
  "  if twice then\n"
  "    local again = validate.check(spec, body, strict, {}, nil)\n"
  "    if #again ~= #problems - 1 then fail('%d problems, then %d', #problems - 1, #again) end\n"
  "    for i = 1, #again do\n"
  "      local a, b = again[i], problems[i + 1]\n"
  "      if a.path ~= b.path or a.message ~= b.message then fail('problem %d differs the second time', i) end\n"
  "    end\n"
  "  end\n"
  "end\n";

/* A valid body of each endpoint, fresh each time: the fuzzer takes it apart. */
static const char TEMPLATE[] =
  "local null = ...\n"
  "return function(kind)\n"
  "  if kind == 'calcom' then\n"
  "    return { title = 'Cal.com', unitId = '6f1c2f0e-1d2b-4c3a-9e8f-0123456789ab',\n"
  "      calcomUsername = 'ana-silva', timezone = 'America/Sao_Paulo', prompt = 'Book it',\n"
  "      checkAvailabilityEnabled = true, createBookingEnabled = false }\n"
  "  end\n"
  "  return { name = 'gcal', description = 'Google Calendar', iconFileId = null, outputs = {},\n"
  "    type = 'google-calendar', userId = '6F1C2F0E-1D2B-4C3A-9E8F-0123456789AB',\n"
  "    unityId = '00000000-0000-0000-0000-000000000000',\n"
  "    googleCalendar = { googleId = '1234567890', calendarId = 'primary', timezone = 'UTC',\n"
  "      notificationContent = 'hi', googleToken = 'ya29.secret',\n"
  "      googleUser = { name = 'Ana Silva', given_name = 'Ana', family_name = 'Silva',\n"
  "        picture = 'https://example.com/a.png', email = 'ana@example.com', hd = 'example.com' } } }\n"
  "end\n";

/* ---- building values -------------------------------------------------- */

/* Field names of both endpoints and near misses (case, typos, prefixes). */
static const char *const NAMES[] = {
  "title", "unitId", "calcomUsername", "timezone", "prompt", "checkAvailabilityEnabled",
  "createBookingEnabled", "name", "description", "iconFileId", "outputs", "type", "userId",
  "unityId", "googleCalendar", "googleId", "calendarId", "notificationContent", "googleToken",
  "googleUser", "given_name", "family_name", "picture", "email", "hd",
  "Title", "unitid", "timeZone", "tittle", "googleuser", "googleCalender", "user_id", "",
  "x", "__index", "__mode", "order", "fields", "required",
};

/* Values: valid and nearly valid strings of each field type. */
static const struct { const char *s; size_t n; } WORDS[] = {
#define W(s) {s, sizeof(s) - 1}
  W("6f1c2f0e-1d2b-4c3a-9e8f-0123456789ab"), W("6F1C2F0E-1D2B-4C3A-9E8F-0123456789AB"),
  W("6f1c2f0e-1d2b-4c3a-9e8f-0123456789a"), W("6f1c2f0e1d2b4c3a9e8f0123456789ab"),
  W("6f1c2f0e-1d2b-4c3a-9e8f-0123456789ag"), W("{6f1c2f0e-1d2b-4c3a-9e8f-0123456789ab}"),
  W("UTC"), W("America/Sao_Paulo"), W("Europe/Lisbon"), W("america/sao_paulo"), W("Etc/GMT+3"),
  W("Mars/Olympus"), W("../../etc/passwd"), W("America/"),
  W("ana@example.com"), W("a@b.c"), W("ana@@example.com"), W(".ana@example.com"), W("ana@example"),
  W("ana@-example.com"), W("a b@example.com"), W("ana@exa..mple.com"),
  W("https://example.com/a.png"), W("http://example.com:8080/"), W("ftp://example.com/"),
  W("https://"), W("javascript:alert(1)"), W("HTTPS://EXAMPLE.COM"), W("https://ex ample.com"),
  W("1234567890"), W("0"), W("12a"), W("١٢٣"),
  W("google-calendar"), W("Google-Calendar"), W("primary"), W("ya29.secret"),
  W(""), W(" "), W("\0"), W("null"), W("true"), W("\xff\xfe"), W("\xc3\x28"), W("\xed\xa0\x80"),
  W("caf\xc3\xa9"), W("\xf0\x9f\x98\x80"),
#undef W
};

static void push_word(reader *r) {
  unsigned k = rd_u8(r) % COUNT(WORDS);
  lua_pushlstring(L, WORDS[k].s, WORDS[k].n);
}

static void push_special_number(reader *r) {
  static const double F[] = {0.0, 1.0, -1.0, 0.5, 1e300, -1e300, 9007199254740993.0, 1e-310};
  unsigned k = rd_u8(r) % (COUNT(F) + 6);
  if (k < COUNT(F)) lua_pushnumber(L, F[k]);
  else if (k == COUNT(F)) lua_pushnumber(L, (lua_Number)NAN);
  else if (k == COUNT(F) + 1) lua_pushnumber(L, (lua_Number)INFINITY);
  else if (k == COUNT(F) + 2) lua_pushnumber(L, -(lua_Number)INFINITY);
  else if (k == COUNT(F) + 3) lua_pushnumber(L, -0.0);
  else if (k == COUNT(F) + 4) lua_pushinteger(L, LUA_MAXINTEGER);
  else lua_pushinteger(L, LUA_MININTEGER);
}

/* A long string: a byte or a word repeated, within this input's budget. */
static void push_long(reader *r) {
  unsigned mode = rd_u8(r);
  size_t len = rd_u16(r) % (MAX_LONG + 1), i;
  luaL_Buffer b;
  if (len > long_left) len = long_left;
  long_left -= len;
  luaL_buffinit(L, &b);
  if (mode & 1) {
    char c = (char)(mode >> 1);
    for (i = 0; i < len; i++) luaL_addchar(&b, c);
  } else {
    unsigned k = (mode >> 1) % COUNT(NAMES);
    size_t wn = strlen(NAMES[k]);
    for (i = 0; wn && i + wn <= len; i += wn) luaL_addlstring(&b, NAMES[k], wn);
  }
  luaL_pushresult(&b);
}

/* A table key: mostly a field name; returns 0 (nothing pushed) for NaN. */
static int push_key(reader *r) {
  unsigned kind = rd_u8(r) % 10;
  const char *s;
  size_t n;
  switch (kind) {
    case 0: case 1: case 2: case 3:
      lua_pushstring(L, NAMES[rd_u8(r) % COUNT(NAMES)]);
      return 1;
    case 4: /* a field name with one byte changed or appended */
    {
      const char *name = NAMES[rd_u8(r) % COUNT(NAMES)];
      char buf[64];
      size_t len = strlen(name);
      unsigned at = rd_u8(r), c = rd_u8(r);
      memcpy(buf, name, len);
      if (len && (at & 1)) buf[(at >> 1) % len] = (char)c;
      else buf[len++] = (char)c;
      lua_pushlstring(L, buf, len);
      return 1;
    }
    case 5:
      n = rd_bytes(r, rd_u8(r) % 24, &s);
      lua_pushlstring(L, s, n);
      return 1;
    case 6: lua_pushinteger(L, (lua_Integer)(int8_t)rd_u8(r)); return 1;
    case 7:
      push_special_number(r);
      if (lua_tonumber(L, -1) != lua_tonumber(L, -1)) { lua_pop(L, 1); return 0; }
      return 1;
    case 8: lua_pushboolean(L, rd_u8(r) & 1); return 1;
    default:
      switch (rd_u8(r) % 3) {
        case 0: lua_newtable(L); break;
        case 1: lua_pushlightuserdata(L, NULL); break; /* cjson.null as a key */
        default: push_long(r); break;
      }
      return 1;
  }
}

/* The ops replaced by a pop once MAX_VALUES values are held: all that may
   push (and some that do not). 24 (shared reference) and 30 (near-valid
   word) were once left out: a program of them pushed hundreds of values
   past the end of Lua's stack, the ASan "kAllocBegMagic" aborts (the
   luaL_Buffer placeholder, a C stack address, found in a heap chunk's
   header); see regress-value-stack-overflow-*. */
static int when_full(unsigned op) {
  return op % 32 < 23 || op % 32 == 24 || op % 32 >= 30;
}

/* One op of the program: op (0-31) with top the stack top before it. */
static void step(reader *r, unsigned op, int base, int top) {
  int count = top - base;
  const char *s;
  size_t n;
  switch (op) {
    case 0: lua_pushnil(L); break;
    case 1: lua_pushboolean(L, rd_u8(r) & 1); break;
    case 2: lua_pushinteger(L, (lua_Integer)rd_u64(r)); break;
    case 3: op_push_double(r); break;
    case 4: push_special_number(r); break;
    case 5: lua_pushlightuserdata(L, NULL); break; /* cjson.null */
    case 6: case 7: n = rd_bytes(r, rd_u8(r), &s); lua_pushlstring(L, s, n); break;
    case 8: case 9: push_word(r); break;
    case 10: push_long(r); break;
    case 11: lua_pushstring(L, NAMES[rd_u8(r) % COUNT(NAMES)]); break;
    case 12: case 13: lua_newtable(L); break;
    case 14: case 15: case 16: op_set_top(r, base, top, push_key); break;
    case 17: op_set_kv(base, top); break;
    case 18: op_append(base, top); break;
    case 19: { /* a valid body, to take apart */
      lua_rawgeti(L, LUA_REGISTRYINDEX, template_ref);
      lua_pushstring(L, (rd_u8(r) & 1) ? "gcal" : "calcom");
      lua_call(L, 1, 1);
      break;
    }
    case 20: { /* push t[key] (raw): reach into a table to change it in place */
      int t = table_at_or_below(base, top);
      if (!t || !push_key(r)) break;
      lua_rawget(L, t);
      break;
    }
    case 21: { /* metatable on the nearest table */
      int t = table_at_or_below(base, top);
      unsigned which = rd_u8(r) % 4;
      if (!t) break;
      if (which == 0) lua_rawgeti(L, LUA_REGISTRYINDEX, trap_mt_ref);
      else if (which == 1) lua_rawgeti(L, LUA_REGISTRYINDEX, array_mt_ref);
      else if (which == 2) { lua_rawgeti(L, LUA_REGISTRYINDEX, weak_mt_ref); used_weak = 1; }
      else lua_pushnil(L);
      lua_setmetatable(L, t);
      break;
    }
    case 22: /* odd things */
      switch (rd_u8(r) % 4) {
        case 0: lua_pushcfunction(L, some_function); break;
        case 1: lua_newuserdatauv(L, 0, 0); break;
        case 2: lua_newthread(L); break;
        default: lua_pushlightuserdata(L, (void *)&L); break;
      }
      break;
    case 23: if (count) lua_pop(L, 1); break;
    case 24: op_share(r, base, top); break; /* shared reference or, set, a cycle */
    case 25: { /* wrap the top value in tables under field names */
      unsigned depth = rd_u8(r) % (MAX_NEST + 1), i;
      if (!count) break;
      for (i = 0; i < depth; i++) {
        lua_createtable(L, 0, 1);
        lua_insert(L, -2);
        lua_setfield(L, -2, NAMES[rd_u8(r) % COUNT(NAMES)]);
      }
      break;
    }
    case 26: { /* many unknown (or known) keys holding the top value */
      unsigned len = rd_u16(r) % (MAX_BULK + 1), i, style = rd_u8(r);
      int t = table_at_or_below(base, top - 1);
      if (!count || !t) break;
      for (i = 0; i < len; i++) {
        char key[32];
        if (style & 1) lua_pushinteger(L, (lua_Integer)i + 1);
        else {
          snprintf(key, sizeof key, "%s%u", NAMES[(style >> 1) % COUNT(NAMES)], i);
          lua_pushstring(L, key);
        }
        lua_pushvalue(L, -2);
        lua_rawset(L, t);
      }
      lua_pop(L, 1);
      break;
    }
    case 27: op_remove_key(r, base, top, push_key); break;
    case 28: op_rotate(r, base, top); break;
    case 29: op_collect(); break;
    case 30: { /* a string a field's check should like, slightly off */
      char buf[64];
      unsigned k = rd_u8(r) % COUNT(WORDS), at = rd_u8(r), c = rd_u8(r);
      size_t len = WORDS[k].n;
      memcpy(buf, WORDS[k].s, len);
      if (len && (at & 1)) buf[(at >> 1) % len] = (char)c;
      else if (at & 2) len = len ? (at >> 2) % len : 0;
      else buf[len++] = (char)c;
      lua_pushlstring(L, buf, len);
      break;
    }
    default: lua_pushinteger(L, (lua_Integer)(rd_u8(r) % 8) + 1); break;
  }
}

/* Run the program in the input; leaves the values it built above base. */
static void build(reader *r, int base) {
  run_program(r, base, MAX_OPS, MAX_VALUES, when_full, 23, step);
}

/* The whole input, under lua_pcall: any Lua error is reported as a crash. */
static int run(lua_State *l) {
  reader *r = (reader *)lua_touserdata(l, 1);
  unsigned flags;
  int base;
  lua_settop(l, 0);
  luaL_checkstack(l, MAX_VALUES + 40, "fuzz_validate");
  long_left = LONG_BUDGET;
  collected = used_weak = 0;
  flags = rd_u8(r);
  base = lua_gettop(l);
  build(r, base);
  lua_settop(l, base + 2); /* fields, defaults (nil when not built) */
  if (!(flags & 4)) { lua_pushnil(l); lua_replace(l, base + 2); }
  if (used_weak) lua_gc(l, LUA_GCSTOP, 0); /* the snapshot must hold */
  lua_rawgeti(l, LUA_REGISTRYINDEX, check_ref);
  lua_pushstring(l, (flags & 1) ? "gcal" : "calcom");
  lua_pushvalue(l, base + 1);
  lua_pushvalue(l, base + 2);
  lua_pushboolean(l, (flags & 2) != 0);
  lua_pushboolean(l, (flags & 8) != 0);
  lua_pushboolean(l, (flags & 16) != 0);
  lua_call(l, 6, 0);
  if (used_weak) lua_gc(l, LUA_GCRESTART, 0);
  lua_settop(l, 0);
  return 0;
}

/* ---- set-up ------------------------------------------------------------ */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  static const char *const covered[] = {"/toolzz/validate.lua", "/toolzz/checks.lua", "/toolzz/hints.lua",
                                        "/toolzz/schema.lua", NULL};
  (void)argc;
  (void)argv;
  new_state();

  if (luaL_loadbuffer(L, CHECKER, sizeof CHECKER - 1, "=fuzz_check") != LUA_OK) die(lua_tostring(L, -1));
  require("toolzz.validate");
  require("toolzz.schema");
  require("toolzz.core");
  require("cjson");
  lua_pushinteger(L, MAX_MESSAGE);
  lua_pushboolean(L, getenv("FUZZ_VERBOSE") != NULL);
  if (lua_pcall(L, 6, 1, 0) != LUA_OK) die(lua_tostring(L, -1));
  check_ref = luaL_ref(L, LUA_REGISTRYINDEX);

  if (luaL_loadbuffer(L, TEMPLATE, sizeof TEMPLATE - 1, "=fuzz_template") != LUA_OK) die(lua_tostring(L, -1));
  require("cjson");
  lua_getfield(L, -1, "null");
  lua_remove(L, -2);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) die(lua_tostring(L, -1));
  template_ref = luaL_ref(L, LUA_REGISTRYINDEX);

  require("toolzz.core");
  lua_getfield(L, -1, "array_mt");
  array_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pop(L, 1);

  make_metatables(); /* the trap: the validator must read raw */
  lua_settop(L, 0);
  lua_cov_start(L, covered);
  atexit(close_state);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  reader r;
  r.p = data;
  r.n = size;
  lua_cov_input();
  run_input(run, &r, GC_EVERY, GC_HEAP_KB);
  return 0;
}
