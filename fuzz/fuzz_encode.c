/*
 * fuzz_encode.c -- libFuzzer harness for the C JSON encoder, core.encode.
 *
 * Each input is a small program that builds Lua values on the stack (scalars
 * of every kind, strings with arbitrary bytes, tables with any keys, nesting,
 * shared tables and cycles, the array marker, metatables whose metamethods
 * must never run) and a max_bytes argument. The value is then encoded and the
 * outcome checked by fuzz_check (Lua, below):
 *
 *   - encode returns exactly two values: json, nil or nil, problems;
 *   - json is at most max_bytes long, valid UTF-8, without raw control bytes;
 *   - the cross-check, on a deterministic sample of a quarter of the inputs
 *     (see CROSS_EVERY; every input when FUZZ_CROSS_EVERY=1, as tools/fuzz
 *     replays the kept ones): json is valid JSON for lua-cjson and decodes
 *     back to the value it came from, and it is also what encode gives with
 *     max_bytes = #json, and one byte less gives exactly one problem, the
 *     size limit (unless bit 3 of the flags byte is set: two encodes fewer,
 *     as the input chooses);
 *   - problems is a non-empty list (at most DEFAULT_MAX_ERRORS) of
 *     { path = <UTF-8 string>, message = <non-empty UTF-8 string> };
 *   - a negative or NaN max_bytes refuses everything, an infinite or huge one
 *     is no limit (or encode raises an error naming max_bytes), and none of
 *     them is undefined behaviour;
 *   - encode raises nothing else, and the Lua stack is balanced after each
 *     input.
 *
 * With the cross-check, every string pushed is also checked against Lua's own
 * strict UTF-8 decoder (utf8.len), a second opinion on tz_utf8_valid.
 *
 * A failed check prints why and aborts, which libFuzzer reports as a crash.
 * FUZZ_VERBOSE=1 in the environment prints each outcome.
 */
#include <math.h>

#define FUZZ_NAME "fuzz_encode"
#include "values.h"

#include "toolzz.h"

#define MAX_VALUES 48      /* values the program may hold on the stack */
#define MAX_OPS 4096       /* instructions run per input */
#define MAX_NEST 80        /* one NEST op: more than DEFAULT_MAX_DEPTH */
#define MAX_BULK 150       /* items in one BULK op */
#define MAX_LONG 1200      /* bytes in one long string */
/* Shared tables can make a value exponentially larger than the program that
   built it: a value whose walk would cost more than MAX_COST (see expand) is
   not encoded, so every input runs in bounded time and memory. The bound is
   kept small (about 250 values or 2.7 KB of escaped string): the
   encoder has no path that only a large value reaches (the size limit is
   the same code at 10 bytes as at 1 MiB), and a small bound is what lets
   the harness run tens of thousands of inputs a second. */
#define NODE_COST 64
#define ESCAPED_COST 6 /* a control byte is written as \u00XX */
#define MAX_COST (1u << 14)
/* The Lua state lives for the whole run. Its garbage is collected in full
   every GC_EVERY inputs, or sooner when the heap has grown past GC_HEAP_KB
   (a bound on what one input can leave behind). */
#define GC_EVERY 1024
#define GC_HEAP_KB 8192
/* The cross-checks, the costliest (a second UTF-8 validator, utf8.len, on
   every string the program pushes; a lua-cjson decode of the output compared
   with the value; two more encodes at max_bytes = #json and #json - 1), run
   on a deterministic sample: the inputs whose FNV-1a hash is 0 modulo
   CROSS_EVERY, so a failing input fails again when run alone; and on every
   input with FUZZ_CROSS_EVERY=1 in the environment, as tools/fuzz replays
   the kept inputs. The other checks run on every input. */
#ifndef CROSS_EVERY
#define CROSS_EVERY 4
#endif

static int check_ref = LUA_NOREF; /* fuzz_check */
static int encode_ref = LUA_NOREF;
static int array_mt_ref = LUA_NOREF;
static int utf8len_ref = LUA_NOREF;
static int bulk_keys_ref = LUA_NOREF; /* the keys "k0" .. of a bulk object */
static unsigned long cross_every = CROSS_EVERY; /* FUZZ_CROSS_EVERY */
static int cross;                   /* this input gets the cross-check */

/* ---- the checker, in Lua ---------------------------------------------- */

static const char CHECKER[] =
  "local core, cjson, array_mt, max_errors, verbose = ...\n"
  "local encode, utf8_valid = core.encode, core.utf8_valid\n"
  "local null = cjson.null\n"
  "local decoder = cjson.new()\n"
  "decoder.decode_invalid_numbers(false)\n"
  "decoder.decode_max_depth(1000)\n"
  "local decode = decoder.decode\n"
  "local type, pairs, next, tostring, floor = type, pairs, next, tostring, math.floor\n"
  "local mtype, find = math.type, string.find\n"
  "\n"
  "local function fail(fmt, ...) error(string.format(fmt, ...), 0) end\n"
  "\n"
  "-- nil when the decoded JSON b stands for the Lua value a, else what differs\n"
  "-- (the path is built on the way out, only when something does).\n"
  "local function same(a, b)\n"
  "  local ta = type(a)\n"
  "  if a == nil or a == null then\n"
  "    if b ~= null then return ': null came back as ' .. tostring(b) end\n"
  "  elseif ta == 'boolean' or ta == 'string' then\n"
  "    if a ~= b then return (': %q came back as %q'):format(tostring(a), tostring(b)) end\n"
  "  elseif ta == 'number' then\n"
  "    if type(b) ~= 'number' then return ': number came back as a ' .. type(b) end\n"
  "    local x = mtype(a) == 'float' and a or a + 0.0 -- cjson reads every number as a double\n"
  "    if x ~= b then return (': %s came back as %.17g'):format(tostring(a), b) end\n"
  "    if x == 0 and 1 / x ~= 1 / b then return ': sign of zero lost' end\n"
  "  elseif ta == 'table' then\n"
  "    if type(b) ~= 'table' then return ': table came back as a ' .. type(b) end\n"
  "    local n = 0\n"
  "    for k, v in next, a do -- not pairs: a may carry the trap metatable\n"
  "      n = n + 1\n"
  "      local why = same(v, b[k])\n"
  "      if why then return '/' .. tostring(k) .. why end\n"
  "    end\n"
  "    for _ in pairs(b) do n = n - 1 end\n"
  "    if n ~= 0 then return ': decoded table has a different number of keys' end\n"
  "  else\n"
  "    return ': a ' .. ta .. ' was encoded'\n"
  "  end\n"
  "  return nil\n"
  "end\n"
  "\n"
  "-- The limit encode must keep to: a number rounded down, 0 for a negative or\n"
  "-- NaN one; anything else (a numeric string too, whether or not encode takes\n"
  "-- it as a limit) keeps it within the default.\n"
  "local function effective_limit(limit)\n"
  "  if type(limit) ~= 'number' then return 1048576 end -- DEFAULT_MAX_BODY_BYTES\n"
  "  if limit ~= limit or limit < 0 then return 0 end\n"
  "  return floor(limit)\n"
  "end\n"
  "\n"
  "local function bad_limit(limit)\n"
  "  return type(limit) == 'number' and (limit ~= limit or limit < 0 or limit >= 2^63)\n"
  "end\n"
  "\n"
  "local function check_problems(problems, where)\n"
  "  if type(problems) ~= 'table' then fail('%s: problems is a %s', where, type(problems)) end\n"
  "  local n = #problems\n"
  "  if n < 1 then fail('%s: empty problems list', where) end\n"
  "  if n > max_errors then fail('%s: %d problems, more than the cap', where, n) end\n"
  "  for k in pairs(problems) do\n"
  "    if mtype(k) ~= 'integer' or k < 1 or k > n then fail('%s: stray key %s in problems', where, tostring(k)) end\n"
  "  end\n"
  "  for i = 1, n do\n"
  "    local p = problems[i]\n"
  "    if type(p) ~= 'table' then fail('%s: problem %d is a %s', where, i, type(p)) end\n"
  "    if type(p.path) ~= 'string' then fail('%s: problem %d path is a %s', where, i, type(p.path)) end\n"
  "    if type(p.message) ~= 'string' or p.message == '' then fail('%s: problem %d has no message', where, i) end\n"
  "    if not utf8_valid(p.path) then fail('%s: problem %d path is not UTF-8', where, i) end\n"
  "    if not utf8_valid(p.message) then fail('%s: problem %d message is not UTF-8', where, i) end\n"
  "  end\n"
  "end\n"
  "\n"
  "return function(value, limit, raised, nres, json, problems, cross, limits_too, control)\n"
  "  if raised then -- only an argument error about a nonsense limit is fine\n"
  "    if bad_limit(limit) and type(json) == 'string' and find(json, 'max_bytes', 1, true) then return end\n"
  "    fail('encode raised: %s', tostring(json))\n"
  "  end\n"
  "  if nres ~= 2 then fail('encode returned %d values, not 2', nres) end\n"
  "  if verbose then\n"
  "    io.stderr:write('encode: ', json and (#json .. ' bytes') or (problems and #problems .. ' problems, first: ' .. tostring(problems[1] and problems[1].message)) or '?', '\\n')\n"
  "  end\n"
  "  if json == nil then\n"
  "    check_problems(problems, 'refused')\n"
  "    return\n"
  "  end\n"
  "  if type(json) ~= 'string' then fail('encode returned a %s', type(json)) end\n"
  "  if problems ~= nil then fail('encode returned json and problems') end\n"
  "  local max = effective_limit(limit)\n"
  "  if #json > max then fail('%d bytes written with max_bytes %d', #json, max) end\n"
  "  if not utf8_valid(json) then fail('output is not UTF-8') end\n"
  "  if control then fail('raw control byte in output') end\n"
  "  if not cross then return end -- the cross-check below: a sample of the inputs\n"
  "  local ok, decoded = pcall(decode, json)\n"
  "  if not ok then fail('output is not JSON (%s): %s', tostring(decoded), json:sub(1, 200)) end\n"
  "  local why = same(value, decoded)\n"
  "  if why then fail('does not decode to the value encoded: %s', why) end\n"
  "  if not limits_too then return end\n"
  "  -- the same bytes at exactly their size; one byte less is refused for size only\n"
  "  local again, p2 = encode(value, #json)\n"
  "  if again ~= json then fail('not the same bytes with max_bytes = #json (%s)', tostring(p2 and p2[1] and p2[1].message)) end\n"
  "  if #json > 0 then\n"
  "    local cut, p3 = encode(value, #json - 1)\n"
  "    if cut ~= nil then fail('%d bytes accepted with max_bytes %d', #cut, #json - 1) end\n"
  "    check_problems(p3, 'cut')\n"
  "    if #p3 ~= 1 or p3[1].path ~= '' or not find(p3[1].message, 'larger than the limit', 1, true) then\n"
  "      fail('one byte over the limit: unexpected problems, first %q', p3[1].message)\n"
  "    end\n"
  "  end\n"
  "end\n";

/* ---- building values -------------------------------------------------- */

static const double SPECIAL_FLOATS[] = {
  0.0, -0.0, 1.0, -1.0, 0.5, 0.1, 1.0 / 3.0, 1e15, 1e16, 1e17, 1e21, 1e22, 1e-7, 1e-5,
  123456789012345678.0, 9007199254740992.0, 9007199254740993.0, 9223372036854775808.0,
  -9223372036854775808.0, 18446744073709551616.0, 1e300, 1.7976931348623157e308,
  -1.7976931348623157e308, 2.2250738585072014e-308, 4.9406564584124654e-324, 100.0,
  1e100, 5e-324, 2.5, 1.5, 2.0,
};

static const lua_Integer SPECIAL_INTS[] = {
  0, 1, 2, 3, -1, 10, 100, 127, 128, 255, 256, 65535, 65536, 2147483647, 2147483648LL,
  -2147483648LL, 4294967296LL, 9007199254740992LL, 9007199254740993LL,
  LUA_MAXINTEGER, LUA_MININTEGER, LUA_MAXINTEGER - 1, LUA_MININTEGER + 1,
};

static const struct { const char *s; size_t n; } SPECIAL_STRINGS[] = {
  {"", 0}, {"a", 1}, {"self", 4}, {"1", 1}, {"\0", 1}, {"a\0b", 3}, {"\"\\/", 3},
  {"\b\f\n\r\t\x01\x1f\x7f", 8}, {"\xc3\xa9", 2}, {"\xe2\x80\xa8\xe2\x80\xa9", 6},
  {"\xf0\x9f\x98\x80", 4}, {"\xef\xbf\xbf", 3}, {"\xf4\x8f\xbf\xbf", 4},
  {"\xc0\x80", 2}, {"\xc1\xbf", 2}, {"\xe0\x80\xaf", 3}, {"\xe0\x9f\xbf", 3},
  {"\xed\xa0\x80", 3}, {"\xed\xbf\xbf", 3}, {"\xf0\x8f\xbf\xbf", 4}, {"\xf4\x90\x80\x80", 4},
  {"\xf5\x80\x80\x80", 4}, {"\xff", 1}, {"\x80", 1}, {"\xc3", 1}, {"\xe2\x82", 2},
  {"\xf0\x9f\x98", 3}, {"\xc3\x28", 2}, {"\xe2\x28\xa1", 3}, {"(key that is not UTF-8)", 23},
  {"__index", 7}, {"__mode", 6}, {"z", 1}, {"aa", 2}, {"a.b", 3}, {"[1]", 3},
};

static void push_special_float(reader *r) {
  unsigned k = rd_u8(r) % (COUNT(SPECIAL_FLOATS) + 4);
  if (k < COUNT(SPECIAL_FLOATS)) lua_pushnumber(L, SPECIAL_FLOATS[k]);
  else if (k == COUNT(SPECIAL_FLOATS)) lua_pushnumber(L, (lua_Number)NAN);
  else if (k == COUNT(SPECIAL_FLOATS) + 1) lua_pushnumber(L, -(lua_Number)NAN);
  else if (k == COUNT(SPECIAL_FLOATS) + 2) lua_pushnumber(L, (lua_Number)INFINITY);
  else lua_pushnumber(L, -(lua_Number)INFINITY);
}

/* Check the string at the top with tz_utf8_valid against utf8.len (strict):
   part of the cross-check, on the same sample of inputs. */
static void check_utf8_top(void) {
  if (!cross) return;
  size_t n, i;
  const char *s = lua_tolstring(L, -1, &n);
  int ours = tz_utf8_valid((const unsigned char *)s, n), lua;
  lua_rawgeti(L, LUA_REGISTRYINDEX, utf8len_ref);
  lua_pushvalue(L, -2);
  lua_call(L, 1, 1);
  lua = !lua_isnil(L, -1);
  lua_pop(L, 1);
  if (ours != lua) {
    fprintf(stderr, "tz_utf8_valid says %d, utf8.len says %d for %zu bytes:", ours, lua, n);
    for (i = 0; i < n && i < 64; i++) fprintf(stderr, " %02x", (unsigned char)s[i]);
    fputc('\n', stderr);
    die("UTF-8 validators disagree");
  }
}

static void push_string(const char *s, size_t n) {
  lua_pushlstring(L, s, n);
  check_utf8_top();
}

/* A table key of any kind; returns 0 (nothing pushed) for keys Lua refuses. */
static int push_key(reader *r) {
  unsigned kind = rd_u8(r) % 12;
  const char *s;
  size_t n;
  switch (kind) {
    case 0: case 1: case 2: /* short string from the input */
      n = rd_bytes(r, rd_u8(r) % 24, &s);
      push_string(s, n);
      return 1;
    case 3: {
      unsigned k = rd_u8(r) % COUNT(SPECIAL_STRINGS);
      push_string(SPECIAL_STRINGS[k].s, SPECIAL_STRINGS[k].n);
      return 1;
    }
    case 4: case 5: /* small integer, often an array index */
      lua_pushinteger(L, (lua_Integer)(int8_t)rd_u8(r));
      return 1;
    case 6:
      lua_pushinteger(L, SPECIAL_INTS[rd_u8(r) % COUNT(SPECIAL_INTS)]);
      return 1;
    case 7: { /* floats: integral ones become integer keys, NaN is refused */
      push_special_float(r);
      if (lua_tonumber(L, -1) != lua_tonumber(L, -1)) { lua_pop(L, 1); return 0; }
      return 1;
    }
    case 8: lua_pushboolean(L, rd_u8(r) & 1); return 1;
    case 9: lua_newtable(L); return 1;
    case 10: lua_pushlightuserdata(L, rd_u8(r) & 1 ? (void *)&L : NULL); return 1;
    default: lua_pushcfunction(L, some_function); return 1;
  }
}

/* Wrap the value at the top in depth levels of tables. */
static void nest(reader *r, unsigned depth) {
  unsigned style = rd_u8(r), i;
  for (i = 0; i < depth; i++) {
    lua_createtable(L, style & 1, !(style & 1)); /* sized for its one key: one malloc fewer */
    lua_insert(L, -2);
    if (style & 1) lua_rawseti(L, -2, 1);
    else lua_setfield(L, -2, (style & 2) ? "k" : "");
    if (style & 4) {
      lua_rawgeti(L, LUA_REGISTRYINDEX, array_mt_ref);
      lua_setmetatable(L, -2);
    }
  }
}

/* The ops replaced by a pop once MAX_VALUES values are held: all that may
   push (and some that do not: 14-20). */
static int when_full(unsigned op) {
  return op % 32 < 25 || op % 32 == 31;
}

/* One op of the program: op (0-31) with top the stack top before it. */
static void step(reader *r, unsigned op, int base, int top) {
  int count = top - base;
  const char *s;
  size_t n;
  switch (op) {
    case 0: lua_pushnil(L); break;
    case 1: lua_pushboolean(L, 1); break;
    case 2: lua_pushboolean(L, 0); break;
    case 3: lua_pushinteger(L, (lua_Integer)rd_u64(r)); break;
    case 4: lua_pushinteger(L, (lua_Integer)(int8_t)rd_u8(r)); break;
    case 5: op_push_double(r); break;
    case 6: push_special_float(r); break;
    case 7: lua_pushinteger(L, SPECIAL_INTS[rd_u8(r) % COUNT(SPECIAL_INTS)]); break;
    case 8: case 9: /* string of arbitrary bytes */
      n = rd_bytes(r, rd_u8(r), &s);
      push_string(s, n);
      break;
    case 10: {
      unsigned k = rd_u8(r) % COUNT(SPECIAL_STRINGS);
      push_string(SPECIAL_STRINGS[k].s, SPECIAL_STRINGS[k].n);
      break;
    }
    case 11: { /* long run of one byte (limits, escaping cost) */
      unsigned c = rd_u8(r), len = rd_u16(r) % (MAX_LONG + 1);
      luaL_Buffer b;
      memset(luaL_buffinitsize(L, &b, len), (int)c, len);
      luaL_pushresultsize(&b, len);
      check_utf8_top();
      break;
    }
    case 12: case 13: lua_newtable(L); break;
    case 14: case 15: op_set_top(r, base, top, push_key); break; /* key from the input */
    case 16: op_set_kv(base, top); break;
    case 17: op_append(base, top); break;
    case 18: { /* cycle: t[key] = t, or an ancestor further down */
      int t = table_at_or_below(base, top), u = table_at_or_below(base, t - 1);
      if (!t) break;
      if (!push_key(r)) break;
      lua_pushvalue(L, (u && (rd_u8(r) & 1)) ? u : t);
      set_kv(t);
      break;
    }
    case 19: { /* array marker */
      int t = table_at_or_below(base, top);
      if (!t) break;
      lua_rawgeti(L, LUA_REGISTRYINDEX, array_mt_ref);
      lua_setmetatable(L, t);
      break;
    }
    case 20: {
      int t = table_at_or_below(base, top);
      int weak = rd_u8(r) & 1;
      if (!t) break;
      used_weak |= weak;
      lua_rawgeti(L, LUA_REGISTRYINDEX, weak ? weak_mt_ref : trap_mt_ref);
      lua_setmetatable(L, t);
      break;
    }
    case 21: lua_pushlightuserdata(L, NULL); break; /* cjson.null */
    case 22: lua_pushlightuserdata(L, (void *)&L); break;
    case 23:
      switch (rd_u8(r) % 3) {
        case 0: lua_pushcfunction(L, some_function); break;
        case 1: lua_newuserdatauv(L, 0, 0); break;
        default: lua_newthread(L); break;
      }
      break;
    case 24: op_share(r, base, top); break;
    case 25: if (count) lua_pop(L, 1); break;
    case 26: if (count) nest(r, rd_u8(r) % (MAX_NEST + 1)); break;
    case 27: { /* bulk: an array or object of many copies of the top value */
      unsigned len = rd_u16(r) % (MAX_BULK + 1), i, as_object = rd_u8(r) & 1;
      if (!count) break;
      lua_createtable(L, as_object ? 0 : (int)len, as_object ? (int)len : 0);
      for (i = 0; i < len; i++) {
        lua_pushvalue(L, -2);
        if (as_object) {
          lua_rawgeti(L, LUA_REGISTRYINDEX, bulk_keys_ref); /* "k<i>", made once */
          lua_rawgeti(L, -1, (lua_Integer)i + 1);
          lua_remove(L, -2);
          lua_insert(L, -2);
          lua_rawset(L, -3);
        } else lua_rawseti(L, -2, (lua_Integer)i + 1);
      }
      lua_remove(L, -2);
      break;
    }
    case 28: op_remove_key(r, base, top, push_key); break;
    case 29: op_collect(); break;
    case 30: op_rotate(r, base, top); break;
    default: lua_pushinteger(L, (lua_Integer)(rd_u8(r) % 8) + 1); break; /* likely index */
  }
}

/* Run the program in the input; leaves the values it built above base. */
static void build(reader *r, int base) {
  run_program(r, base, MAX_OPS, MAX_VALUES, when_full, 25, step);
}

/* expand's memo: a table (by address; all are alive on the stack while it
   runs) to its cost and the depth it was reckoned from. In C, not in two Lua
   tables made for each input: their allocations were a tenth of the time.
   An entry is valid for the input whose stamp it carries. A walk enters at
   most MAX_COST / NODE_COST tables, plus one path of DEFAULT_MAX_DEPTH + 2
   before its cost is looked at: a quarter of MEMO_SLOTS. */
#define MEMO_SLOTS 2048
static struct memo_entry {
  const void *table;
  unsigned long stamp;
  int depth;
  size_t cost;
} memo[MEMO_SLOTS];
static unsigned long memo_stamp; /* this input's: inputs_run + 1 */
static size_t memo_used;

static struct memo_entry *memo_find(const void *table) {
  size_t h = (size_t)(((uint64_t)(uintptr_t)table * 0x9E3779B97F4A7C15u) >> 40);
  for (;; h++) {
    struct memo_entry *e = &memo[h % MEMO_SLOTS];
    if (e->stamp != memo_stamp) { /* free: a new entry, not seen yet */
      if (++memo_used > MEMO_SLOTS / 2) die("expand's memo is full");
      e->stamp = memo_stamp;
      e->table = table;
      e->depth = -1;
      e->cost = 0;
      return e;
    }
    if (e->table == table) return e;
  }
}

/* Add what the value at idx costs the encoder and the checks, as a walk like
   the encoder's would (shared tables counted each time they are reached, no
   deeper than the encoder goes): NODE_COST per value, ESCAPED_COST per byte
   of string. Stops as soon as *cost passes MAX_COST. The memo maps tables to
   their cost and the depth it was reckoned from: seen again higher up, a
   table is walked again, as the encoder would go deeper. */
static int expand(int idx, int depth, size_t *cost) {
  int t = lua_type(L, idx);
  struct memo_entry *e;
  *cost += NODE_COST;
  if (t == LUA_TSTRING) *cost += ESCAPED_COST * lua_rawlen(L, idx);
  if (t != LUA_TTABLE || depth > DEFAULT_MAX_DEPTH + 1) goto done;
  e = memo_find(lua_topointer(L, idx));
  if (e->depth >= 0 && e->depth <= depth) {
    *cost += e->cost; /* seen no deeper than here: add what it cost then */
    goto done;
  }
  {
    size_t before = *cost;
    e->cost = NODE_COST; /* on the path: a cycle stops the encoder here */
    e->depth = depth;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
      int ok;
      luaL_checkstack(L, 8, "expand");
      if (lua_type(L, -2) == LUA_TSTRING) *cost += ESCAPED_COST * lua_rawlen(L, -2);
      ok = expand(lua_gettop(L), depth + 1, cost);
      lua_pop(L, 1);
      if (!ok) { lua_pop(L, 1); return 0; }
    }
    e->cost = *cost - before; /* entries never move: e is still this table's */
  }
done:
  return *cost <= MAX_COST;
}

/* max_bytes: absent (the default), a number or numeric string, or nonsense
   (negative, NaN, infinite, beyond size_t) that must not be undefined. */
static void push_limit(reader *r) {
  unsigned mode = rd_u8(r) % 14;
  switch (mode) {
    case 0: lua_pushnil(L); break;
    case 1: lua_pushinteger(L, (lua_Integer)rd_u8(r)); break;
    case 2: lua_pushinteger(L, (lua_Integer)rd_u16(r)); break;
    case 3: lua_pushnumber(L, (lua_Number)rd_u16(r) + 0.5); break;
    case 4: {
      char num[16];
      snprintf(num, sizeof num, "%u", rd_u16(r));
      lua_pushstring(L, num);
      break;
    }
    case 5: lua_pushinteger(L, (lua_Integer)1 << 40); break;
    case 6: lua_pushboolean(L, 1); break; /* not a number: the default */
    case 7: case 8: lua_pushinteger(L, (lua_Integer)(rd_u16(r) % 64)); break;
    case 9: lua_pushinteger(L, -(lua_Integer)rd_u8(r) - 1); break;
    case 10: lua_pushnumber(L, -(lua_Number)rd_u8(r) - 0.5); break;
    case 11: lua_pushnumber(L, (lua_Number)NAN); break;
    case 12: lua_pushnumber(L, (rd_u8(r) & 1) ? (lua_Number)INFINITY : -(lua_Number)INFINITY); break;
    default: lua_pushnumber(L, (rd_u8(r) & 1) ? 1e30 : 18446744073709551616.0); break;
  }
}

/* Whether the string at idx has a byte below 0x20, a raw control byte: a C
   loop, as a Lua pattern over every output was a tenth of an input's time. */
static int has_control_byte(int idx) {
  size_t n, i;
  const unsigned char *s;
  if (lua_type(L, idx) != LUA_TSTRING) return 0;
  s = (const unsigned char *)lua_tolstring(L, idx, &n);
  for (i = 0; i < n; i++)
    if (s[i] < 0x20) return 1;
  return 0;
}

/* The whole input, run under lua_pcall so a Lua error cannot escape. */
static int run(lua_State *l) {
  reader *r = (reader *)lua_touserdata(l, 1);
  unsigned flags;
  int base, value_idx, limit_idx, nres, top, raised;
  lua_settop(l, 0);
  luaL_checkstack(l, MAX_VALUES + 40, "fuzz_encode");
  used_weak = collected = 0;
  flags = rd_u8(r);
  push_limit(r);
  limit_idx = lua_gettop(l);
  base = lua_gettop(l);
  build(r, base);
  top = lua_gettop(l);
  if (top == base) lua_pushnil(l);
  value_idx = (flags & 1) ? lua_gettop(l) : base + 1;
  {
    size_t cost = 0;
    memo_stamp = inputs_run + 1;
    memo_used = 0;
    if (!expand(value_idx, 0, &cost)) { lua_settop(l, 0); return 0; }
  }
  if ((flags & 6) == 6 && !collected) lua_gc(l, LUA_GCCOLLECT, 0);
  /* a collection between encode and the check could empty a weak table */
  if (used_weak) lua_gc(l, LUA_GCSTOP, 0);

  top = lua_gettop(l);
  lua_rawgeti(l, LUA_REGISTRYINDEX, encode_ref);
  lua_pushvalue(l, value_idx);
  lua_pushvalue(l, limit_idx);
  raised = lua_pcall(l, 2, LUA_MULTRET, 0) != LUA_OK;
  nres = lua_gettop(l) - top;
  if (nres < 0) die("encode popped values it did not own");
  if (nres < 2) lua_settop(l, top + 2);

  lua_rawgeti(l, LUA_REGISTRYINDEX, check_ref);
  lua_pushvalue(l, value_idx);
  lua_pushvalue(l, limit_idx);
  lua_pushboolean(l, raised);
  lua_pushinteger(l, nres);
  lua_pushvalue(l, top + 1);
  lua_pushvalue(l, top + 2);
  lua_pushboolean(l, cross);
  lua_pushboolean(l, !(flags & 8));
  lua_pushboolean(l, has_control_byte(top + 1));
  lua_call(l, 9, 0);
  lua_settop(l, 0);
  if (used_weak) lua_gc(l, LUA_GCRESTART, 0);
  return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  new_state();

  require("cjson"); /* from the system; toolzz.core is linked in */
  require("toolzz.core"); /* stack: cjson, core */

  lua_getfield(L, -1, "encode");
  encode_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_getfield(L, -1, "array_mt");
  if (!lua_istable(L, -1)) die("core.array_mt is not a table");
  array_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);

  lua_getglobal(L, "utf8");
  lua_getfield(L, -1, "len");
  utf8len_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pop(L, 1);

  make_metatables(); /* the trap: encode must use raw access */
  lua_createtable(L, MAX_BULK, 0);
  {
    int i;
    for (i = 0; i < MAX_BULK; i++) {
      lua_pushfstring(L, "k%d", i);
      lua_rawseti(L, -2, i + 1);
    }
  }
  bulk_keys_ref = luaL_ref(L, LUA_REGISTRYINDEX);

  if (luaL_loadbuffer(L, CHECKER, sizeof CHECKER - 1, "=fuzz_check") != LUA_OK) die(lua_tostring(L, -1));
  lua_pushvalue(L, -2);                       /* core */
  lua_pushvalue(L, -4);                       /* cjson */
  lua_rawgeti(L, LUA_REGISTRYINDEX, array_mt_ref);
  lua_pushinteger(L, DEFAULT_MAX_ERRORS);
  lua_pushboolean(L, getenv("FUZZ_VERBOSE") != NULL);
  if (lua_pcall(L, 5, 1, 0) != LUA_OK) die(lua_tostring(L, -1));
  check_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_settop(L, 0);
  if (getenv("FUZZ_CROSS_EVERY")) {
    cross_every = strtoul(getenv("FUZZ_CROSS_EVERY"), NULL, 10);
    if (cross_every == 0) die("FUZZ_CROSS_EVERY must be a whole number above 0");
  }
  atexit(close_state);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  reader r;
  uint32_t h = 2166136261u; /* FNV-1a of the input: the cross-check sample */
  size_t i;
  for (i = 0; i < size; i++) h = (h ^ data[i]) * 16777619u;
  cross = h % cross_every == 0;
  r.p = data;
  r.n = size;
  run_input(run, &r, GC_EVERY, GC_HEAP_KB);
  return 0;
}
