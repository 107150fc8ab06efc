/*
 * fuzz_response.c -- libFuzzer harness for the response path: what a server
 * sends (status line, headers, body) through the transport's libcurl
 * callbacks, push_outcome/push_headers, and toolzz.testing.interpret.
 *
 * Linked with every file of src; transport.h gives the slot and transport structures
 * and the functions of the outcome file (src/transport_outcome.c) it feeds,
 * tz_on_header/tz_on_body and tz_outcome_push. An input is
 *
 *   byte 0   bit 0: 0 = feed the callbacks directly, 1 = a real libcurl
 *            transfer (t:request) over a Unix socket in the abstract
 *            namespace: no network, no thread; the response is written
 *            from curl's own pre-request callback, once it has connected;
 *            bits 1-3: max_head cap, bits 4-6: max_body cap (see CAPS);
 *            bit 7 (real transfers only): two responses, served to two
 *            transfers in a row on the same easy handle: a 16-bit big-endian
 *            length, the first response, then the second
 *   byte 1   body chunk size for the direct path (0: one chunk)
 *   byte 2   direct path: status when there is no status line, and the
 *            curl result to pretend (mostly CURLE_OK)
 *   rest     the raw HTTP response
 *
 * The direct path splits the response into header lines (up to the blank
 * line; a following "HTTP/" line starts another block, as after a 1xx) and
 * body chunks, each copied into a buffer of its exact size so ASan sees any
 * over-read, and feeds them to on_header/on_body like libcurl does. A Lua
 * model of the callbacks and of push_headers checks what was kept.
 *
 * Either way the outcome must be: status, body, headers, elapsed, version with
 * body and header block within their caps (all header blocks together) and
 * a header block that ended; or nil, kind, message, elapsed, headers so far
 * or nil, sent with a kind of the contract. toolzz.testing.interpret of it must not raise and must give
 * a table (2xx with a JSON object/array body) or nil and an error of a known
 * kind whose tostring is one line. A failed check prints why and aborts.
 * FUZZ_VERBOSE=1 in the environment prints each outcome (and curl's trace).
 */
#define _GNU_SOURCE
#include "transport.h"

#include <ctype.h>
#include <string.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define FUZZ_NAME "fuzz_response"
#include "values.h"

#define MAX_LINES 512 /* header lines fed per input */

/* Caps for the header block and the body; index 0 is the transport's default. */
static const size_t CAPS[8] = {DEFAULT_MAX_HEADER_BYTES, 8192, 1024, 200, 64, 17, 1, 0};

static const CURLcode RESULTS[] = {
  CURLE_OPERATION_TIMEDOUT, CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION,
  CURLE_COULDNT_CONNECT, CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL,
  CURLE_FILESIZE_EXCEEDED, CURLE_RECV_ERROR, CURLE_GOT_NOTHING, CURLE_WEIRD_SERVER_REPLY,
  CURLE_PARTIAL_FILE, CURLE_HTTP2, CURLE_SSL_CACERT_BADFILE, CURLE_OUT_OF_MEMORY,
};

static const int FALLBACK_STATUS[] = {200, 201, 204, 299, 300, 304, 400, 401, 404, 408,
                                      429, 500, 503, 599, 0, 999, 100, 199};

typedef struct input_bytes {
  const uint8_t *p;
  size_t n;
} input_bytes;

static int check_ref = LUA_NOREF;
static int transport_ref = LUA_NOREF;
static transport direct_t;       /* settings tz_slot_new reads for the direct slot */
static slot *direct;             /* the slot the direct path feeds */
static slot *real;               /* the slot of the real transport */
static int listen_fd = -1;       /* abstract Unix socket curl connects to */
static char listen_name[64];     /* its name, without the leading NUL */
static int server_fd = -1;       /* our end of the current connection */
static const input_bytes *pending; /* the response to serve */

/* ---- the checker, in Lua ---------------------------------------------- */

static const char CHECKER[] =
  "local toolzz, errors, verbose = ...\n"
  "local interpret = require('toolzz.testing').interpret\n"
  "local KINDS, BODY_CAP = errors.KINDS, errors.BODY_CAP\n"
  "local type, tostring, ipairs, pairs, pcall, select = type, tostring, ipairs, pairs, pcall, select\n"
  "local find, sub, lower, match, concat = string.find, string.sub, string.lower, string.match, table.concat\n"
  "local mtype, unpack = math.type, table.unpack\n"
  "\n"
  "local function fail(fmt, ...) error(string.format(fmt, ...), 0) end\n"
  "\n"
  "-- push_headers, written again: the header block to a table of lower-case names.\n"
  "local function model_headers(head)\n"
  "  local t, pos = {}, 1\n"
  "  while pos <= #head do\n"
  "    local eol = find(head, '\\n', pos, true)\n"
  "    local line = sub(head, pos, eol and eol - 1 or #head)\n"
  "    local colon = find(line, ':', 1, true)\n"
  "    if colon and colon > 1 and sub(line, 1, 5) ~= 'HTTP/' and colon - 1 < 128 then\n"
  "      local name = lower(sub(line, 1, colon - 1))\n"
  "      local value = match(sub(line, colon + 1), '^[ \\t]*(.-)[\\r \\t]*$')\n"
  "      if t[name] then t[name] = t[name] .. ', ' .. value else t[name] = value end\n"
  "    end\n"
  "    pos = eol and eol + 1 or #head + 1\n"
  "  end\n"
  "  return t\n"
  "end\n"
  "\n"
  "local function same_headers(got, want)\n"
  "  if type(got) ~= 'table' then fail('headers is a %s', type(got)) end\n"
  "  for k, v in pairs(want) do\n"
  "    if got[k] ~= v then fail('header %q is %q, the model says %q', k, tostring(got[k]), v) end\n"
  "  end\n"
  "  for k in pairs(got) do\n"
  "    if want[k] == nil then fail('header %q should not be there', tostring(k)) end\n"
  "  end\n"
  "end\n"
  "\n"
  "-- What on_header/on_body keep, written again: the lines after the last\n"
  "-- status line, and the body, each within its cap.\n"
  "-- max_head caps every header block of the answer together (1xx included);\n"
  "-- ended: the last block's empty line came.\n"
  "local function model_callbacks(lines, chunks, max_head, max_body)\n"
  "  local head, over, nlines, total, ended = '', nil, 0, 0, false\n"
  "  for _, line in ipairs(lines) do\n"
  "    if sub(line, 1, 5) == 'HTTP/' then head = '' ended = false end\n"
  "    if #line > max_head - total then over = 'headers' break end\n"
  "    total = total + #line\n"
  "    if #line <= 2 and find(line, '^[\\r\\n]') then ended = true end\n"
  "    head = head .. line\n"
  "    nlines = nlines + 1\n"
  "  end\n"
  "  local body, nchunks = {}, 0\n"
  "  local blen = 0\n"
  "  if not over then\n"
  "    for _, chunk in ipairs(chunks) do\n"
  "      if #chunk > max_body - blen then over = 'body' break end\n"
  "      body[#body + 1] = chunk\n"
  "      blen = blen + #chunk\n"
  "      nchunks = nchunks + 1\n"
  "    end\n"
  "  end\n"
  "  return head, concat(body), over, nlines, nchunks, ended\n"
  "end\n"
  "\n"
  "-- toolzz.testing.interpret on a transport outcome, and what must hold of its answer.\n"
  "local function check_interpret(out)\n"
  "  local status, body = out[1], out[2]\n"
  "  local ok, res, err = pcall(interpret, unpack(out, 1, out.n))\n"
  "  if not ok then fail('interpret raised: %s', tostring(res)) end\n"
  "  if res ~= nil then\n"
  "    if type(res) ~= 'table' then fail('interpret gave a %s', type(res)) end\n"
  "    if err ~= nil then fail('interpret gave a result and an error') end\n"
  "    if errors.is_error(res) then fail('interpret gave an error as its result') end\n"
  "    if not (status and status >= 200 and status < 300) then fail('a result for status %s', tostring(status)) end\n"
  "    return\n"
  "  end\n"
  "  if not errors.is_error(err) then fail('interpret gave nil and a %s', type(err)) end\n"
  "  if not KINDS[err.kind] then fail('error kind %q is not in the contract', tostring(err.kind)) end\n"
  "  if type(err.message) ~= 'string' then fail('error message is a %s', type(err.message)) end\n"
  "  local line = tostring(err)\n"
  "  if type(line) ~= 'string' or find(line, '[\\r\\n]') then fail('tostring(err) is not one line: %q', tostring(line)) end\n"
  "  if not find(line, '^toolzz: ') then fail('tostring(err) does not start with toolzz: %q', line) end\n"
  "  if status then\n"
  "    if err.kind ~= 'http' and err.kind ~= 'decode' then fail('status %d gave kind %s', status, err.kind) end\n"
  "    if err.kind == 'http' and err.status ~= status then fail('err.status %s for status %d', tostring(err.status), status) end\n"
  "    if err.kind == 'decode' and not (status >= 200 and status < 300) then fail('decode error for status %d', status) end\n"
  "    if err.body ~= nil and (type(err.body) ~= 'string' or #err.body > BODY_CAP) then fail('err.body over the cap') end\n"
  "    if err.retry_after ~= nil and not (type(err.retry_after) == 'number' and err.retry_after >= 0) then\n"
  "      fail('retry_after is %s', tostring(err.retry_after))\n"
  "    end\n"
  "  elseif err.kind ~= body then\n"
  "    fail('transport kind %s came back as %s', tostring(body), tostring(err.kind))\n"
  "  end\n"
  "end\n"
  "\n"
  "-- out: the values push_outcome pushed, as a list with n; info: what was fed.\n"
  "return function(out, info)\n"
  "  local n = out.n\n"
  "  if verbose then\n"
  "    local shown = {}\n"
  "    for i = 1, n do shown[i] = type(out[i]) == 'string' and ('%q'):format(out[i]:sub(1, 80)) or tostring(out[i]) end\n"
  "    io.stderr:write(info.direct and 'direct: ' or 'curl: ', table.concat(shown, ', '), '\\n')\n"
  "  end\n"
  "  local head, body, over, nlines, nchunks, ended\n"
  "  if info.direct then\n"
  "    head, body, over, nlines, nchunks, ended = model_callbacks(info.lines, info.chunks, info.max_head, info.max_body)\n"
  "    if ended ~= info.head_done then fail('header block ended: %s, the model says %s', tostring(info.head_done), tostring(ended)) end\n"
  "    if nlines ~= info.lines_taken then fail('on_header took %d lines, the model %d', info.lines_taken, nlines) end\n"
  "    if nchunks ~= info.chunks_taken then fail('on_body took %d chunks, the model %d', info.chunks_taken, nchunks) end\n"
  "    if info.head ~= head then fail('header block %q, the model says %q', info.head, head) end\n"
  "    if not over and info.body ~= body then fail('body differs from the model') end\n"
  "  end\n"
  "  if #info.head > info.max_head then fail('%d header bytes kept with a cap of %d', #info.head, info.max_head) end\n"
  "  if #info.body > info.max_body then fail('%d body bytes kept with a cap of %d', #info.body, info.max_body) end\n"
  "  local status = out[1]\n"
  "  if status ~= nil then\n"
  "    if n ~= 5 then fail('an answer of %d values', n) end\n"
  "    if mtype(status) ~= 'integer' then fail('status is a %s', type(status)) end\n"
  "    if out[2] ~= info.body then fail('the body returned is not the body kept') end\n"
  "    if over then fail('an answer after a callback went over its cap') end\n"
  "    if info.direct and not ended then fail('an answer whose header block never ended') end\n"
  "    same_headers(out[3], model_headers(info.head))\n"
  "    if type(out[4]) ~= 'number' or not (out[4] >= 0) then fail('elapsed is %s', tostring(out[4])) end\n"
  "    if out[5] ~= '1.1' and out[5] ~= '1.0' and out[5] ~= '2' then fail('http version %s', tostring(out[5])) end\n"
  "    if info.direct then out[1] = info.status end -- no transfer: curl knows no status\n"
  "    check_interpret(out)\n"
  "  else\n"
  "    if n ~= 6 then fail('a failure of %d values', n) end\n"
  "    if type(out[6]) ~= 'boolean' then fail('sent is %s', tostring(out[6])) end\n"
  "    if out[5] ~= nil then same_headers(out[5], model_headers(info.head)) end\n"
  "    if out[5] == nil and info.head ~= '' then fail('no headers with a failure after %d header bytes', #info.head) end\n"
  "    local kind, message = out[2], out[3]\n"
  "    if not KINDS[kind] or kind == 'validation' or kind == 'http' or kind == 'decode' then\n"
  "      fail('transport failure kind %s', tostring(kind))\n"
  "    end\n"
  "    if type(message) ~= 'string' or message == '' then fail('transport failure without a message') end\n"
  "    if info.direct and over and kind ~= 'limit' then fail('over the %s cap gave kind %s', over, kind) end\n"
  "    if info.direct and not over and info.result_ok and ended then fail('a failure (%s) with nothing wrong', message) end\n"
  "    if info.direct and not over and info.result_ok and kind ~= 'network' then fail('a cut header block gave %s', kind) end\n"
  "    if type(out[4]) ~= 'number' then fail('elapsed is %s', tostring(out[4])) end\n"
  "    check_interpret(out)\n"
  "  end\n"
  "end\n";

/* ---- serving the real transfer -------------------------------------------- */

/* curl has connected and is about to send the request: accept the connection
   and write the whole response (what fits in the socket buffer), then EOF. */
static int serve(void *ud, char *conn_primary_ip, char *conn_local_ip, int conn_primary_port,
                 int conn_local_port) {
  size_t off = 0;
  (void)ud;
  (void)conn_primary_ip;
  (void)conn_local_ip;
  (void)conn_primary_port;
  (void)conn_local_port;
  if (server_fd >= 0 || !pending) return CURL_PREREQFUNC_ABORT;
  server_fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (server_fd < 0) {
    fprintf(stderr, "fuzz_response: accept: %s\n", strerror(errno));
    abort();
  }
  while (off < pending->n) {
    ssize_t w = write(server_fd, pending->p + off, pending->n - off);
    if (w <= 0) break;
    off += (size_t)w;
  }
  shutdown(server_fd, SHUT_WR);
  return CURL_PREREQFUNC_OK;
}

/* ---- helpers -------------------------------------------------------------- */

/* Pass bytes to a callback from a heap copy of their exact size. */
static size_t feed(size_t (*cb)(char *, size_t, size_t, void *), slot *s, const uint8_t *p, size_t n) {
  char *copy = (char *)malloc(n ? n : 1);
  size_t got;
  if (!copy) die("out of memory");
  memcpy(copy, p, n);
  got = cb(copy, 1, n, s);
  free(copy);
  return got;
}

static void push_buf(lua_State *l, const tz_buf *b) {
  lua_pushlstring(l, b->data ? b->data : "", b->len);
}

/* Reset a slot the way tz_slot_start() does before a transfer. */
static void reset_slot(slot *s, size_t max_head, size_t max_body) {
  s->body.len = s->head.len = s->head_total = 0;
  s->head_done = 0;
  s->over = OVER_NONE;
  s->done = 0;
  s->errbuf[0] = '\0';
  s->max_head = max_head;
  s->max_body = max_body;
}

/* ---- the two paths ---------------------------------------------------------- */

typedef struct input {
  const uint8_t *p;
  size_t n;
  unsigned flags, chunk, extra;
} input;

/* Feed the response to on_header/on_body; push the outcome and what was fed. */
static int run_direct(lua_State *l, const input *in) {
  slot *s = direct;
  const uint8_t *p = in->p, *end = in->p + in->n;
  int nlines = 0, taken_lines = 0, taken_chunks = 0, nchunks = 0, nret, k, stopped = 0;
  size_t max_head = CAPS[(in->flags >> 1) & 7], max_body = CAPS[(in->flags >> 4) & 7];
  int info;

  reset_slot(s, max_head, max_body);
  lua_createtable(l, 0, 16);
  info = lua_gettop(l);
  lua_createtable(l, 16, 0); /* lines */
  while (p < end && nlines < MAX_LINES) {
    const uint8_t *eol = memchr(p, '\n', (size_t)(end - p));
    size_t len = eol ? (size_t)(eol - p) + 1 : (size_t)(end - p);
    int blank = (len == 1) || (len == 2 && p[0] == '\r');
    lua_pushlstring(l, (const char *)p, len);
    lua_rawseti(l, -2, ++nlines);
    if (feed(tz_on_header, s, p, len) != len) { stopped = 1; p += len; break; }
    taken_lines++;
    p += len;
    /* after the blank line: the body, unless another response block follows */
    if (blank && !(end - p >= 5 && memcmp(p, "HTTP/", 5) == 0)) break;
  }
  lua_setfield(l, info, "lines");
  lua_createtable(l, 16, 0); /* chunks */
  while (!stopped && p < end) {
    size_t len = in->chunk ? in->chunk : (size_t)(end - p);
    if (len > (size_t)(end - p)) len = (size_t)(end - p);
    lua_pushlstring(l, (const char *)p, len);
    lua_rawseti(l, -2, ++nchunks);
    if (feed(tz_on_body, s, p, len) != len) break;
    taken_chunks++;
    p += len;
  }
  lua_setfield(l, info, "chunks");

  if (s->over != OVER_NONE) s->result = CURLE_WRITE_ERROR; /* as curl does on an abort */
  else if (in->extra < 0xC0) s->result = CURLE_OK;
  else {
    s->result = RESULTS[in->extra % COUNT(RESULTS)];
    if (in->extra & 0x20) { /* an error text as curl might write it, bytes and all */
      size_t n = in->n < CURL_ERROR_SIZE - 1 ? in->n : CURL_ERROR_SIZE - 1;
      memcpy(s->errbuf, in->p, n);
      s->errbuf[n] = '\0';
    }
  }
  lua_pushboolean(l, 1);
  lua_setfield(l, info, "direct");
  lua_pushboolean(l, s->result == CURLE_OK);
  lua_setfield(l, info, "result_ok");
  lua_pushinteger(l, taken_lines);
  lua_setfield(l, info, "lines_taken");
  lua_pushinteger(l, taken_chunks);
  lua_setfield(l, info, "chunks_taken");
  lua_pushinteger(l, (lua_Integer)max_head);
  lua_setfield(l, info, "max_head");
  lua_pushinteger(l, (lua_Integer)max_body);
  lua_setfield(l, info, "max_body");
  lua_pushinteger(l, FALLBACK_STATUS[in->extra % COUNT(FALLBACK_STATUS)]);
  lua_setfield(l, info, "status");
  {
    /* the status a transfer would have: from the last status line kept */
    const char *h = s->head.data;
    if (h && s->head.len >= 12 && memcmp(h, "HTTP/", 5) == 0) {
      const char *sp = memchr(h, ' ', s->head.len);
      if (sp && (size_t)(sp - h) + 4 <= s->head.len && isdigit((unsigned char)sp[1]) &&
          isdigit((unsigned char)sp[2]) && isdigit((unsigned char)sp[3])) {
        lua_pushinteger(l, (sp[1] - '0') * 100 + (sp[2] - '0') * 10 + (sp[3] - '0'));
        lua_setfield(l, info, "status");
      }
    }
  }
  push_buf(l, &s->head);
  lua_setfield(l, info, "head");
  push_buf(l, &s->body);
  lua_setfield(l, info, "body");
  lua_pushboolean(l, s->head_done);
  lua_setfield(l, info, "head_done");

  s->busy = s->done = 1;
  lua_createtable(l, 5, 1);
  nret = tz_outcome_push(l, s);
  for (k = nret; k >= 1; k--) lua_rawseti(l, -1 - k, k);
  lua_pushinteger(l, nret);
  lua_setfield(l, -2, "n");
  lua_insert(l, info); /* out, info */
  return 2;
}

/* The response p[0..n) through a real libcurl transfer: t:request, served by
   serve(). Pushes the outcome and what was kept, like run_direct. */
static int run_real(lua_State *l, const input *in, const uint8_t *p, size_t n) {
  int info, top;
  size_t max_head = CAPS[(in->flags >> 1) & 7], max_body = CAPS[(in->flags >> 4) & 7];
  input_bytes response;

  if (max_body == 0) max_body = 1; /* CURLOPT_MAXFILESIZE 0 means no limit */
  response.p = p;
  response.n = n;
  pending = &response;
  reset_slot(real, max_head, max_body);
  curl_easy_setopt(real->easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max_body);

  lua_createtable(l, 0, 8);
  info = lua_gettop(l);
  top = lua_gettop(l);
  lua_rawgeti(l, LUA_REGISTRYINDEX, transport_ref);
  lua_getfield(l, -1, "request");
  lua_insert(l, -2);
  lua_pushliteral(l, "PUT");
  lua_pushliteral(l, "http://127.0.0.1:9/api/v1/functions/6f1c2f0e-1d2b-4c3a-9e8f-0123456789ab");
  lua_pushliteral(l, "{}");
  lua_call(l, 4, LUA_MULTRET);
  {
    int nret = lua_gettop(l) - top, k;
    lua_createtable(l, 5, 1);
    lua_insert(l, top + 1);
    for (k = nret; k >= 1; k--) lua_rawseti(l, top + 1, k);
    lua_pushinteger(l, nret);
    lua_setfield(l, top + 1, "n");
  }
  pending = NULL;
  if (server_fd >= 0) close(server_fd);
  server_fd = -1;
  for (;;) { /* a connection curl made and gave up on must not be served next time */
    int stale = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (stale < 0) break;
    close(stale);
  }
  if (real->busy) die("slot still busy after request");

  lua_pushinteger(l, (lua_Integer)max_head);
  lua_setfield(l, info, "max_head");
  lua_pushinteger(l, (lua_Integer)max_body);
  lua_setfield(l, info, "max_body");
  push_buf(l, &real->head);
  lua_setfield(l, info, "head");
  push_buf(l, &real->body);
  lua_setfield(l, info, "body");
  lua_pushvalue(l, info);
  lua_remove(l, info); /* out, info */
  return 2;
}

/* The whole input under lua_pcall: a Lua error (a failed check) cannot escape. */
static int run(lua_State *l) {
  const input *in = (const input *)lua_touserdata(l, 1);
  lua_settop(l, 0);
  if (!(in->flags & 1)) {
    lua_rawgeti(l, LUA_REGISTRYINDEX, check_ref);
    run_direct(l, in);
    lua_call(l, 2, 0);
  } else if ((in->flags & 0x80) && in->n >= 2) {
    /* two transfers in a row on the same slot (easy handle), as a client
       makes: a 16-bit length, the first response, the second */
    size_t first = ((size_t)in->p[0] << 8) | in->p[1], rest = in->n - 2;
    if (first > rest) first = rest;
    lua_rawgeti(l, LUA_REGISTRYINDEX, check_ref);
    run_real(l, in, in->p + 2, first);
    lua_call(l, 2, 0);
    lua_rawgeti(l, LUA_REGISTRYINDEX, check_ref);
    run_real(l, in, in->p + 2 + first, rest - first);
    lua_call(l, 2, 0);
  } else {
    lua_rawgeti(l, LUA_REGISTRYINDEX, check_ref);
    run_real(l, in, in->p, in->n);
    lua_call(l, 2, 0);
  }
  return 0;
}

/* ---- set-up ---------------------------------------------------------------- */

static void close_all(void) {
  if (listen_fd >= 0) close(listen_fd);
  listen_fd = -1;
  if (direct) tz_slot_free(&direct_t, direct);
  direct = NULL;
  close_state(); /* the transport's __gc frees its slots */
  curl_global_cleanup();
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  transport *t;
  (void)argc;
  (void)argv;
  new_state();
  require("toolzz");
  require("toolzz.errors");

  if (luaL_loadbuffer(L, CHECKER, sizeof CHECKER - 1, "=fuzz_check") != LUA_OK) die(lua_tostring(L, -1));
  lua_insert(L, -3);
  lua_pushboolean(L, getenv("FUZZ_VERBOSE") != NULL);
  if (lua_pcall(L, 3, 1, 0) != LUA_OK) die(lua_tostring(L, -1));
  check_ref = luaL_ref(L, LUA_REGISTRYINDEX);

  /* the real transport, as init.lua makes it, with its one slot wired to our listener */
  require("toolzz.core");
  lua_getfield(L, -1, "transport");
  lua_createtable(L, 0, 4);
  lua_createtable(L, 2, 0);
  lua_pushliteral(L, "Content-Type: application/json");
  lua_rawseti(L, -2, 1);
  lua_pushliteral(L, "Expect:");
  lua_rawseti(L, -2, 2);
  lua_setfield(L, -2, "headers");
  lua_pushnumber(L, 5);
  lua_setfield(L, -2, "timeout");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "http2");
  lua_pushinteger(L, 1);
  lua_setfield(L, -2, "max_slots");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) die(lua_tostring(L, -1));
  t = (transport *)luaL_checkudata(L, -1, TRANSPORT_MT);
  transport_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_settop(L, 0);
  real = tz_slot_take(t);
  if (!real) die("no slot");
  {
    struct sockaddr_un a;
    socklen_t alen;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    snprintf(listen_name, sizeof listen_name, "toolzz-fuzz-response-%ld", (long)getpid());
    memcpy(a.sun_path + 1, listen_name, strlen(listen_name)); /* abstract: no file */
    alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(listen_name));
    listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&a, alen) != 0 || listen(listen_fd, 8) != 0)
      die("cannot listen on an abstract Unix socket");
  }
  curl_easy_setopt(real->easy, CURLOPT_ABSTRACT_UNIX_SOCKET, listen_name);
  curl_easy_setopt(real->easy, CURLOPT_PREREQFUNCTION, serve);
  curl_easy_setopt(real->easy, CURLOPT_FRESH_CONNECT, 1L);
  curl_easy_setopt(real->easy, CURLOPT_FORBID_REUSE, 1L);
  curl_easy_setopt(real->easy, CURLOPT_NOPROXY, "*");
  if (getenv("FUZZ_VERBOSE")) curl_easy_setopt(real->easy, CURLOPT_VERBOSE, 1L);

  direct_t.max_body = DEFAULT_MAX_RESPONSE_BYTES;
  direct_t.max_head = DEFAULT_MAX_HEADER_BYTES;
  direct_t.timeout_ms = DEFAULT_TIMEOUT_MS;
  direct_t.connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
  direct = tz_slot_new(&direct_t);
  if (!direct) die("cannot make a slot");
  atexit(close_all);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  input in;
  if (size < 3) return 0;
  in.flags = data[0];
  in.chunk = data[1];
  in.extra = data[2];
  in.p = data + 3;
  in.n = size - 3;
  run_input(run, &in, 1, 0); /* a full collection after each: as many frees as mallocs */
  return 0;
}
