/*
 * fuzz_ngx.c -- libFuzzer harness for the nginx cosocket transport's HTTP
 * client (lua/toolzz/ngx.lua, ngxhttp.lua, ngxconn.lua), run under LuaJIT
 * (what nginx runs) with a fake `ngx` global and fake cosockets.
 *
 * Input: a flags byte, a caps byte, a schedule length n and n schedule
 * bytes, then the bytes the "server" answers. The fake socket hands the
 * answer out in pieces: each piece is the next schedule entry, a size class
 * and a delay class, so receive(), receiveany(), receive("*l"/"*a") and
 * receiveuntil() see the bytes split anywhere and slowly. Time is a fake
 * clock (ngx.now) that only the delays move; a piece later than the read
 * timeout in force is a "timeout", and, as in lua-nginx-module, the timer
 * restarts with each piece. The flags choose https, a reused (stale) pooled
 * connection, a connect or send failure and the attempt's timeout; the caps
 * byte max_response_bytes and the header cap.
 *
 * One transport:request("PUT", url, "{}") per input; fuzz_check (Lua,
 * below) asserts:
 *
 *   - request raises nothing;
 *   - on an answer: an integer status of three digits that the answer's own
 *     status line spells (no "HTTP/1.1 2000" read as 200), a string body no
 *     longer than max_response_bytes, headers as lower-case name -> string,
 *     version "1.0" or "1.1"; a chunked body whose chunk-size lines are all
 *     hexadecimal digits (then blanks or a ;extension: no "0x2");
 *   - on a failure: a kind of network, timeout, tls or limit, a non-empty
 *     message, headers nil or a table;
 *   - elapsed is a number, and the attempt kept to its timeout: no more
 *     than timeout (+ 2 ms of rounding to whole milliseconds) of fake time
 *     went by, however the answer trickled in.
 *
 * FUZZ_NGX_RELAX=deadline,status,version,chunk (any of them) turns those checks
 * off, so that a campaign can look for other faults while a known one is
 * being fixed; the kept regress-* inputs show the known ones.
 *
 * Coverage of those three files comes from a line hook (lua_cov.h), with
 * the JIT off.
 * A failed check or a Lua error prints why and aborts (a crash for
 * libFuzzer). FUZZ_VERBOSE=1 prints each outcome.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua.h"
#include "lualib.h"
#include "lauxlib.h"
#include "luajit.h"

#include "lua_cov.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifndef TOOLZZ_ROOT
#define TOOLZZ_ROOT "."
#endif

#define GC_EVERY 256
#define GC_HEAP_KB 16384

static lua_State *L;
static unsigned long inputs_run;
static int run_ref = LUA_NOREF;

static void die(const char *what) {
  fprintf(stderr, "fuzz_ngx: %s\n", what);
  abort();
}

/* ---- the fake nginx, the fake server and the checker, in Lua ------------ */

static const char HARNESS[] =
  "local verbose, relax_list = ...\n"
  "local relax = {}\n"
  "for what in (relax_list or ''):gmatch('[^,%s]+') do relax[what] = true end\n"
  "local byte, sub, find, match, format = string.byte, string.sub, string.find, string.match, string.format\n"
  "local type, tostring, floor, pairs = type, tostring, math.floor, pairs\n"
  "\n"
  "local function fail(fmt, ...) error(format(fmt, ...), 0) end\n"
  "\n"
  "local now = 1700000000.0 -- the fake clock, seconds\n"
  "local SIZES = { 1, 1, 2, 3, 4, 5, 7, 8, 13, 16, 31, 64, 100, 512, 4096, 1e9 }\n"
  "local DELAYS = { 0, 0, 0, 0, 0.0004, 0.01, 0.4, 1.2 } -- seconds before a piece comes\n"
  "local LONG_DELAYS = { 0, 0.3, 2.9, 3.1, 29, 31, 100, 1e6 }\n"
  "local TIMEOUTS = { 3, 0.5, 30, 0.002 }\n"
  "local MAX_BODY = { 0, 1, 2, 16, 100, 1000, 65536, 8 * 1024 * 1024 }\n"
  "local MAX_HEAD = { 64 * 1024, 1, 16, 100, 1000, 4096, 64 * 1024, 64 * 1024 }\n"
  "\n"
  "-- ---- the fake cosocket ---------------------------------------------------\n"
  "local Sock = {}\n"
  "Sock.__index = Sock\n"
  "\n"
  "-- The next piece of the stream: up to want bytes (nil: its own size), or\n"
  "-- nil, 'timeout' / 'closed'. Moves the clock by the piece's delay.\n"
  "function Sock:piece(want)\n"
  "  local w = self.world\n"
  "  if self.pos > #w.data then return nil, 'closed' end\n"
  "  local s = w.schedule\n"
  "  local entry = #s > 0 and s[(self.step % #s) + 1] or 15\n"
  "  self.step = self.step + 1\n"
  "  local delays = w.long_delays and LONG_DELAYS or DELAYS\n"
  "  local delay = delays[floor(entry / 16) % 8 + 1]\n"
  "  local timeout = self.read_ms / 1000\n"
  "  if delay >= timeout then now = now + timeout; return nil, 'timeout' end\n"
  "  now = now + delay\n"
  "  local n = SIZES[entry % 16 + 1]\n"
  "  if want and want < n then n = want end\n"
  "  local out = sub(w.data, self.pos, self.pos + n - 1)\n"
  "  self.pos = self.pos + #out\n"
  "  return out\n"
  "end\n"
  "\n"
  "function Sock:settimeouts(c, s, r)\n"
  "  for _, v in pairs({ c, s, r }) do\n"
  "    if type(v) ~= 'number' or v < 0 or v ~= floor(v) then fail('settimeouts(%s)', tostring(v)) end\n"
  "  end\n"
  "  self.read_ms = r\n"
  "end\n"
  "function Sock:settimeout(ms) self:settimeouts(ms, ms, ms) end\n"
  "\n"
  "function Sock:connect(host, port)\n"
  "  if type(host) ~= 'string' or type(port) ~= 'number' then fail('connect(%s, %s)', tostring(host), tostring(port)) end\n"
  "  local how = self.world.connect\n"
  "  if how == 2 then return nil, 'connection refused' end\n"
  "  if how == 3 then now = now + self.read_ms / 1000; return nil, 'timeout' end\n"
  "  self.connected = true\n"
  "  return 1\n"
  "end\n"
  "\n"
  "function Sock:sslhandshake() return {} end\n"
  "function Sock:getreusedtimes() return self.reused end\n"
  "\n"
  "function Sock:send(data)\n"
  "  if not self.connected then return nil, 'closed' end\n"
  "  if type(data) ~= 'string' then fail('send of a %s', type(data)) end\n"
  "  if self.reused > 0 and self.world.send_error then return nil, self.world.send_error end\n"
  "  if self.world.send_error == 'timeout' then now = now + self.read_ms / 1000; return nil, 'timeout' end\n"
  "  return #data\n"
  "end\n"
  "\n"
  "function Sock:receiveany(max)\n"
  "  if type(max) ~= 'number' or max < 1 or max ~= floor(max) then fail('receiveany(%s)', tostring(max)) end\n"
  "  return self:piece(max)\n"
  "end\n"
  "\n"
  "-- receive(n), receive('*l'), receive('*a'): data or nil, err, partial\n"
  "function Sock:receive(pattern)\n"
  "  pattern = pattern or '*l'\n"
  "  local got = {}\n"
  "  if type(pattern) == 'number' then\n"
  "    if pattern < 0 or pattern ~= floor(pattern) then fail('receive(%s)', tostring(pattern)) end\n"
  "    local have = 0\n"
  "    while have < pattern do\n"
  "      local piece, err = self:piece(pattern - have)\n"
  "      if not piece then return nil, err, table.concat(got) end\n"
  "      got[#got + 1] = piece\n"
  "      have = have + #piece\n"
  "    end\n"
  "    return table.concat(got)\n"
  "  elseif pattern == '*a' then\n"
  "    while true do\n"
  "      local piece, err = self:piece()\n"
  "      if not piece then\n"
  "        if err == 'closed' then return table.concat(got) end\n"
  "        return nil, err, table.concat(got)\n"
  "      end\n"
  "      got[#got + 1] = piece\n"
  "    end\n"
  "  elseif pattern == '*l' then\n"
  "    while true do\n"
  "      local piece, err = self:piece(1)\n"
  "      if not piece then return nil, err, (table.concat(got):gsub('\\r', '')) end\n"
  "      if piece == '\\n' then return (table.concat(got):gsub('\\r', '')) end\n"
  "      got[#got + 1] = piece\n"
  "    end\n"
  "  end\n"
  "  fail('receive(%q)', tostring(pattern))\n"
  "end\n"
  "\n"
  "-- receiveuntil(pattern [, { inclusive = bool }]) -> iterator([size])\n"
  "function Sock:receiveuntil(pattern, opts)\n"
  "  if type(pattern) ~= 'string' or pattern == '' then fail('receiveuntil(%s)', tostring(pattern)) end\n"
  "  local inclusive = type(opts) == 'table' and opts.inclusive\n"
  "  local pending, done = nil, false -- data before the pattern not yet returned\n"
  "  return function(size)\n"
  "    if not pending then\n"
  "      if done then done = false; return nil end\n"
  "      local got = ''\n"
  "      while true do\n"
  "        local piece, err = self:piece(1)\n"
  "        if not piece then return nil, err, got end\n"
  "        got = got .. piece\n"
  "        if sub(got, -#pattern) == pattern then break end\n"
  "      end\n"
  "      pending = inclusive and got or sub(got, 1, #got - #pattern)\n"
  "    end\n"
  "    if not size then\n"
  "      local out = pending\n"
  "      pending = nil\n"
  "      return out\n"
  "    end\n"
  "    if pending == '' then pending = nil; return nil end\n"
  "    local out = sub(pending, 1, size)\n"
  "    pending = sub(pending, size + 1)\n"
  "    if pending == '' then pending, done = nil, true end\n"
  "    return out\n"
  "  end\n"
  "end\n"
  "\n"
  "function Sock:setkeepalive() self.connected = false; return 1 end\n"
  "function Sock:close() self.connected = false; return 1 end\n"
  "\n"
  "-- ---- the fake ngx --------------------------------------------------------\n"
  "local world -- this input's server\n"
  "local logged = 0\n"
  "ngx = {\n"
  "  WARN = 5, ERR = 4, INFO = 7, DEBUG = 8, null = false,\n"
  "  get_phase = function() return 'content' end,\n"
  "  now = function() return now end,\n"
  "  update_time = function() end,\n"
  "  sleep = function(s) now = now + s end,\n"
  "  log = function() logged = logged + 1 end,\n"
  "  socket = {\n"
  "    tcp = function()\n"
  "      world.sockets = world.sockets + 1\n"
  "      if world.sockets > 64 then fail('%d sockets for one request', world.sockets) end\n"
  "      local reused = (world.sockets == 1 and world.reused) and 1 or 0\n"
  "      return setmetatable({ world = world, pos = 1, step = 0, read_ms = 60000, reused = reused }, Sock)\n"
  "    end,\n"
  "  },\n"
  "}\n"
  "\n"
  "local transport = require 'toolzz.ngx'\n"
  "local DEFAULT_MAX_HEAD = transport.MAX_HEADER_BYTES\n"
  "local KINDS = { network = true, timeout = true, tls = true, limit = true }\n"
  "\n"
  "-- Does the answer spell this status on a status line of its own?\n"
  "local function spelled(data, status)\n"
  "  local digits = format('%03d', status)\n"
  "  local from = 1\n"
  "  while true do\n"
  "    local s, e = find(data, 'HTTP/1[%.%d]* ' .. digits, from)\n"
  "    if not s then return false end\n"
  "    local after = sub(data, e + 1, e + 1)\n"
  "    if (s == 1 or sub(data, s - 1, s - 1) == '\\n') and not find(after, '^%d') then return true end\n"
  "    from = s + 1\n"
  "  end\n"
  "end\n"
  "\n"
  "-- The first chunk-size line of the final answer's chunked body (its blocks\n"
  "-- split as ngx.lua splits them) that is not hexadecimal digits, then blanks\n"
  "-- or a ;extension; nil when all are (or the answer cannot be followed).\n"
  "local function loose_chunk_size(data)\n"
  "  local pos = 1\n"
  "  while true do\n"
  "    local s, e = find(data, '\\r?\\n\\r?\\n', pos)\n"
  "    if not s then return nil end\n"
  "    local code = tonumber(match(sub(data, pos, s - 1), '^HTTP/%d[%.%d]* (%d%d%d)') or '')\n"
  "    pos = e + 1\n"
  "    if not code then return nil end\n"
  "    if code >= 200 or code == 101 then break end\n"
  "  end\n"
  "  while true do\n"
  "    local nl = find(data, '\\n', pos, true)\n"
  "    if not nl then return nil end\n"
  "    local line = (sub(data, pos, nl - 1):gsub('\\r$', ''))\n"
  "    if not (find(line, '^[ \\t]*%x+[ \\t]*$') or find(line, '^[ \\t]*%x+[ \\t]*;')) then return line end\n"
  "    local hex = match(line, '%x+')\n"
  "    if #hex > 12 then return nil end\n"
  "    local size = tonumber(hex, 16)\n"
  "    if size == 0 then return nil end\n"
  "    pos = nl + 1 + size\n"
  "    local crlf = match(data, '^\\r?\\n', pos)\n"
  "    if not crlf then return nil end\n"
  "    pos = pos + #crlf\n"
  "  end\n"
  "end\n"
  "\n"
  "local function show(v) return type(v) == 'string' and format('%q', sub(v, 1, 120)) or tostring(v) end\n"
  "\n"
  "return function(input)\n"
  "  local flags, caps, n = byte(input, 1, 3)\n"
  "  flags, caps, n = flags or 0, caps or 0, (n or 0) % 33\n"
  "  local schedule = { byte(input, 4, 3 + n) }\n"
  "  local data = sub(input, 4 + n)\n"
  "  local connect = floor(flags / 4) % 4\n"
  "  world = {\n"
  "    data = data, schedule = schedule, sockets = 0,\n"
  "    reused = flags % 4 >= 2,\n"
  "    connect = connect,\n"
  "    send_error = (floor(flags / 16) % 2 == 1) and (caps >= 128 and 'timeout' or 'broken pipe') or nil,\n"
  "    long_delays = floor(caps / 64) % 2 == 1,\n"
  "  }\n"
  "  local timeout = TIMEOUTS[floor(flags / 64) + 1]\n"
  "  local max_body = MAX_BODY[caps % 8 + 1]\n"
  "  transport.MAX_HEADER_BYTES = MAX_HEAD[floor(caps / 8) % 8 + 1]\n"
  "  local url = (flags % 2 == 1 and 'https' or 'http') .. '://api.example.com/api/v1/functions/6f1c2f0e-1d2b-4c3a-9e8f-0123456789ab'\n"
  "  local t = transport.new({ timeout = timeout, connect_timeout = 10, max_response_bytes = max_body },\n"
  "    { ['Content-Type'] = 'application/json', Authorization = 'Bearer tok' })\n"
  "  local started = now\n"
  "  local status, a, b, c, d = t:request('PUT', url, '{}')\n"
  "  local spent = now - started\n"
  "  transport.MAX_HEADER_BYTES = DEFAULT_MAX_HEAD\n"
  "  if verbose then\n"
  "    io.stderr:write(format('ngx: %s %s %s elapsed %s version %s, %.4f s of %g\\n', show(status), show(a), show(b), show(c), show(d), spent, timeout))\n"
  "  end\n"
  "  if spent > timeout + 0.002 and not relax.deadline then\n"
  "    fail('the attempt took %.3f s of fake time with timeout = %g (%s %s)', spent, timeout, show(status), show(a))\n"
  "  end\n"
  "  if status ~= nil then\n"
  "    if type(status) ~= 'number' or status ~= floor(status) or status < 100 or status > 999 then fail('status %s', show(status)) end\n"
  "    if not spelled(data, status) and not relax.status then fail('status %d is not what a status line of the answer says', status) end\n"
  "    if type(a) ~= 'string' then fail('body is a %s', type(a)) end\n"
  "    if #a > max_body then fail('a body of %d bytes with max_response_bytes %d', #a, max_body) end\n"
  "    if type(b) ~= 'table' then fail('headers are a %s', type(b)) end\n"
  "    for k, v in pairs(b) do\n"
  "      if type(k) ~= 'string' or type(v) ~= 'string' then fail('header %s = %s', show(k), show(v)) end\n"
  "      if k ~= k:lower() then fail('header name %s is not lower case', show(k)) end\n"
  "    end\n"
  "    if type(c) ~= 'number' or c < 0 then fail('elapsed %s', show(c)) end\n"
  "    local te = b['transfer-encoding']\n"
  "    if te and find(te:lower(), 'chunked%s*$') and status >= 200 and status ~= 204 and status ~= 304 and not relax.chunk then\n"
  "      local loose = loose_chunk_size(data)\n"
  "      if loose then fail('chunk-size line %s was accepted', show(loose)) end\n"
  "    end\n"
  "    if d ~= '1.1' and d ~= '1.0' and not (relax.version and type(d) == 'string') then fail('version %s', show(d)) end\n"
  "  else\n"
  "    if not KINDS[a] then fail('failure kind %s (%s)', show(a), show(b)) end\n"
  "    if type(b) ~= 'string' or b == '' then fail('failure message %s', show(b)) end\n"
  "    if type(c) ~= 'number' or c < 0 then fail('elapsed %s', show(c)) end\n"
  "    if d ~= nil and type(d) ~= 'table' then fail('failure headers are a %s', type(d)) end\n"
  "    if connect == 2 and a ~= 'network' then fail('a refused connection gave %s', show(a)) end\n"
  "  end\n"
  "end\n";

/* ---- running an input ---------------------------------------------------- */

static int run(lua_State *l) {
  lua_rawgeti(l, LUA_REGISTRYINDEX, run_ref);
  lua_insert(l, 1);
  lua_call(l, 1, 0);
  return 0;
}

static void close_state(void) { /* at exit, so leak checking sees Lua's memory freed */
  if (L) lua_close(L);
  L = NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  static const char *const covered[] = {"/toolzz/ngx.lua", "/toolzz/ngxhttp.lua",
                                        "/toolzz/ngxconn.lua", "/toolzz/url.lua", NULL};
  const char *root = getenv("TOOLZZ_ROOT");
  (void)argc;
  (void)argv;
  if (!root) root = TOOLZZ_ROOT;
  L = luaL_newstate();
  if (!L) die("cannot create a Lua state");
  luaL_openlibs(L);
  luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF); /* hooks see every line */
  lua_getglobal(L, "package");
  lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua", root, root);
  lua_setfield(L, -2, "path");
  lua_pop(L, 1);
  if (luaL_loadbuffer(L, HARNESS, sizeof HARNESS - 1, "=fuzz_ngx") != 0) die(lua_tostring(L, -1));
  lua_pushboolean(L, getenv("FUZZ_VERBOSE") != NULL);
  lua_pushstring(L, getenv("FUZZ_NGX_RELAX"));
  if (lua_pcall(L, 2, 1, 0) != 0) die(lua_tostring(L, -1));
  run_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_settop(L, 0);
  lua_cov_start(L, covered);
  atexit(close_state);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (lua_gettop(L) != 0) die("stack not empty before an input");
  lua_cov_input();
  lua_pushcfunction(L, run);
  lua_pushlstring(L, (const char *)data, size);
  if (lua_pcall(L, 1, 0, 0) != 0) {
    fprintf(stderr, "fuzz_ngx: check failed: %s\n", lua_tostring(L, -1));
    abort();
  }
  if (lua_gettop(L) != 0) die("stack not balanced after an input");
  /* one state for the whole run, collected now and then (see fuzz_encode.c) */
  if (++inputs_run % GC_EVERY == 0 || lua_gc(L, LUA_GCCOUNT, 0) > GC_HEAP_KB) lua_gc(L, LUA_GCCOLLECT, 0);
  return 0;
}
