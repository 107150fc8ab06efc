/*
 * transport.c -- HTTP attempts over libcurl, for one client.
 *
 * A transport is a userdata that owns one curl multi handle and a pool of
 * easy handles ("slots"). All slots share the multi's connection cache, so a
 * client keeps its connections alive across calls and batches, and HTTP/2
 * transfers multiplex over one connection. A transport knows nothing of the
 * ToolzzAI API: it makes one attempt and returns status, body and headers,
 * or a classified failure ("network", "timeout", "tls", "limit", "config").
 *
 * libcurl callbacks never raise Lua errors: they record what went wrong and
 * return the abort value; results are pushed only after curl is back.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "toolzz.h"

#define TRANSPORT_MT "toolzz.transport"
#define SLOT_KEEP_BYTES (256u << 10) /* larger response buffers are freed after use */

enum { OVER_NONE = 0, OVER_BODY, OVER_HEADERS, OUT_OF_MEMORY };

typedef struct slot {
  CURL *easy;
  tz_buf body, head;
  size_t max_body, max_head;
  CURLcode result;
  int busy;        /* handed out: in the multi, or done and not yet collected */
  int done;
  int over;        /* why a callback aborted the transfer */
  lua_Integer tag; /* the caller's name for this transfer */
  int body_ref;    /* registry reference anchoring the request body string */
  int used;        /* the easy handle has made a transfer */
  CURL *spare;     /* with fresh_handles: the next transfer's handle, made ahead */
  CURL *retired;   /* with fresh_handles: the last transfer's handle, to clean up */
  const struct transport *owner;
  char errbuf[CURL_ERROR_SIZE];
} slot;

#define MAX_KEEP_HEADERS 8

typedef struct transport {
  CURLM *multi;
  char *keep[MAX_KEEP_HEADERS]; /* lower-case names of headers to return; none = all */
  size_t keep_len[MAX_KEEP_HEADERS];
  int nkeep;
  struct curl_slist *headers;
  slot **slots;
  int nslots, max_slots;
  long timeout_ms, connect_timeout_ms;
  size_t max_body, max_head;
  char *ca_file, *ca_path, *proxy;
  char *noproxy; /* hosts never reached through a proxy (CURLOPT_NOPROXY) */
  int http2;
  int closed;
  int fresh_handles; /* libcurl < 8.1.0: never reuse an easy handle (see start) */
} transport;

/* ---- callbacks (never touch Lua) ------------------------------------ */

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  slot *s = (slot *)ud;
  size_t len = size * n;
  if (len > s->max_body - s->body.len) { s->over = OVER_BODY; return 0; }
  if (!tz_buf_add(&s->body, p, len)) { s->over = OUT_OF_MEMORY; return 0; }
  return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  slot *s = (slot *)ud;
  size_t len = size * n;
  if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) s->head.len = 0; /* a new response (after 1xx) */
  if (len > s->max_head - s->head.len) { s->over = OVER_HEADERS; return 0; }
  if (!tz_buf_add(&s->head, p, len)) { s->over = OUT_OF_MEMORY; return 0; }
  return len;
}

/* ---- helpers -------------------------------------------------------- */

static char *dup_opt_string(lua_State *L, int opts, const char *name) {
  char *copy = NULL;
  lua_getfield(L, opts, name);
  if (lua_type(L, -1) == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    copy = (char *)malloc(n + 1);
    if (copy) memcpy(copy, s, n + 1);
  }
  lua_pop(L, 1);
  return copy;
}

static double opt_number(lua_State *L, int opts, const char *name, double dflt) {
  double v = dflt;
  lua_getfield(L, opts, name);
  if (lua_type(L, -1) == LUA_TNUMBER) v = (double)lua_tonumber(L, -1);
  lua_pop(L, 1);
  return v;
}

/* Overwrite memory that held secrets (the Authorization header) before freeing. */
static void wipe(char *p, size_t n) {
  volatile char *v = p;
  while (n--) *v++ = 0;
}

static transport *check_transport(lua_State *L) {
  return (transport *)luaL_checkudata(L, 1, TRANSPORT_MT);
}

static slot *new_slot(transport *t) {
  slot *s = (slot *)calloc(1, sizeof *s);
  CURL *e;
  if (!s) return NULL;
  e = s->easy = curl_easy_init();
  if (!e) { free(s); return NULL; }
  s->max_body = t->max_body;
  s->max_head = t->max_head;
  s->owner = t;
  s->body_ref = LUA_NOREF;
  curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)s);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)s);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, (void *)s);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s->errbuf);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  if (t->ca_file) curl_easy_setopt(e, CURLOPT_CAINFO, t->ca_file);
  if (t->ca_path) curl_easy_setopt(e, CURLOPT_CAPATH, t->ca_path);
  if (t->proxy) curl_easy_setopt(e, CURLOPT_PROXY, t->proxy);
  if (t->noproxy) curl_easy_setopt(e, CURLOPT_NOPROXY, t->noproxy);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, t->timeout_ms);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, t->connect_timeout_ms);
  curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)t->max_body);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                   t->http2 ? (long)CURL_HTTP_VERSION_2TLS : (long)CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L); /* wait for an h2 connection rather than open more */
  return s;
}

static void free_slot(transport *t, slot *s) {
  if (s->busy && !s->done) curl_multi_remove_handle(t->multi, s->easy);
  curl_easy_cleanup(s->easy);
  if (s->spare) curl_easy_cleanup(s->spare);
  if (s->retired) curl_easy_cleanup(s->retired);
  tz_buf_free(&s->body);
  tz_buf_free(&s->head);
  free(s);
}

/* A free slot, made on demand up to max_slots; NULL when all are busy. */
static slot *take_slot(transport *t) {
  int i;
  slot *s;
  for (i = 0; i < t->nslots; i++)
    if (!t->slots[i]->busy) return t->slots[i];
  if (t->nslots >= t->max_slots) return NULL;
  s = new_slot(t);
  if (!s) return NULL;
  t->slots[t->nslots++] = s;
  return s;
}

/*
 * Start one transfer on a free slot, sending the string at body_idx without
 * copying it: the caller keeps it alive (on the stack for request(); submit()
 * anchors it with anchor = 1). Returns the slot, or NULL with *why set.
 */
static slot *start(lua_State *L, transport *t, const char *method, const char *url,
                   int body_idx, int anchor, lua_Integer tag, const char **why) {
  slot *s = take_slot(t);
  size_t body_len;
  const char *body = lua_tolstring(L, body_idx, &body_len);
  CURL *e;
  if (!s) { *why = "busy"; return NULL; }
  /* libcurl before 8.1.0 keeps a pointer to the previous transfer's last
     header after freeing it (curl issue 11101): a response whose first
     header line is folded then makes it write freed memory. A duplicate
     handle starts clean; connections stay in the multi's cache. */
  if (s->used && t->fresh_handles) {
    CURL *fresh = s->spare ? s->spare : curl_easy_duphandle(s->easy);
    if (!fresh) { *why = "out of memory"; return NULL; }
    s->spare = NULL;
    if (s->retired) curl_easy_cleanup(s->retired);
    s->retired = s->easy; /* cleaned while the next answer is awaited */
    s->easy = fresh;
  }
  s->used = 1;
  e = s->easy;
  s->body.len = s->head.len = 0;
  s->over = OVER_NONE;
  s->done = 0;
  s->errbuf[0] = '\0';
  s->tag = tag;
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
  if (curl_multi_add_handle(t->multi, e) != CURLM_OK) { *why = "cannot start transfer"; return NULL; }
  if (anchor) {
    lua_pushvalue(L, body_idx);
    s->body_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  s->busy = 1;
  return s;
}

/* With fresh_handles, swap handles while the server works on the request,
   so the copying and freeing cost no wall time of a sequential call. */
static void housekeep(transport *t, slot *s) {
  if (!t->fresh_handles) return;
  if (s->retired) { curl_easy_cleanup(s->retired); s->retired = NULL; }
  if (!s->spare) s->spare = curl_easy_duphandle(s->easy);
}

/* Mark finished transfers done and take them out of the multi. */
static int collect(transport *t) {
  CURLMsg *msg;
  int queued, finished = 0;
  while ((msg = curl_multi_info_read(t->multi, &queued))) {
    if (msg->msg == CURLMSG_DONE) {
      CURL *e = msg->easy_handle;
      CURLcode rc = msg->data.result;
      slot *s = NULL;
      curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&s);
      curl_multi_remove_handle(t->multi, e);
      if (s) { s->result = rc; s->done = 1; finished++; }
    }
  }
  return finished;
}

/* Drive all transfers for at most wait_ms; returns how many finished. */
static int drive(transport *t, int wait_ms) {
  int running = 0, finished;
  curl_multi_perform(t->multi, &running);
  finished = collect(t);
  if (finished || running == 0) return finished;
  curl_multi_poll(t->multi, NULL, 0, wait_ms, NULL);
  curl_multi_perform(t->multi, &running);
  return collect(t);
}

static const char *classify(CURLcode rc) {
  switch (rc) {
    case CURLE_FILESIZE_EXCEEDED: return "limit";
    case CURLE_OPERATION_TIMEDOUT: return "timeout";
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_USE_SSL_FAILED:
      return "tls";
    case CURLE_URL_MALFORMAT:
      return "config";
    /* CURLE_UNSUPPORTED_PROTOCOL here means a reply that is not HTTP (the
       URL was checked before): a network fault like any garbled answer. */
    default:
      return "network";
  }
}

/* Is the header name (any case) one the transport keeps? */
static int wanted(const struct transport *t, const char *name, size_t n) {
  int i;
  size_t k;
  if (t->nkeep == 0) return 1;
  for (i = 0; i < t->nkeep; i++) {
    if (t->keep_len[i] != n) continue;
    for (k = 0; k < n && (char)tolower((unsigned char)name[k]) == t->keep[i][k]; k++) {}
    if (k == n) return 1;
  }
  return 0;
}

/* Push the response headers (those the transport keeps) as a table of lower-case names. */
static void push_headers(lua_State *L, const struct transport *t, const tz_buf *h) {
  const char *p = h->data, *end = p ? p + h->len : NULL;
  lua_createtable(L, 0, 8);
  while (p && p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    const char *line_end = eol ? eol : end;
    const char *colon = memchr(p, ':', (size_t)(line_end - p));
    if (colon && colon > p && !(line_end - p >= 5 && memcmp(p, "HTTP/", 5) == 0)) {
      char name[128];
      size_t nlen = (size_t)(colon - p), i;
      const char *v = colon + 1, *ve = line_end;
      if (nlen < sizeof name && wanted(t, p, nlen)) {
        for (i = 0; i < nlen; i++) name[i] = (char)tolower((unsigned char)p[i]);
        while (v < ve && (*v == ' ' || *v == '\t')) v++;
        while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) ve--;
        lua_pushlstring(L, name, nlen);
        lua_pushvalue(L, -1);
        lua_rawget(L, -3);
        if (lua_isstring(L, -1)) { /* repeated header: join as HTTP allows */
          lua_pushliteral(L, ", ");
          lua_pushlstring(L, v, (size_t)(ve - v));
          lua_concat(L, 3);
        } else {
          lua_pop(L, 1);
          lua_pushlstring(L, v, (size_t)(ve - v));
        }
        lua_rawset(L, -3);
      }
    }
    p = eol ? eol + 1 : end;
  }
}

/*
 * Push the outcome of a finished slot and free it for reuse:
 *   status, body, headers, elapsed, http_version      on an HTTP answer
 *   nil, kind, message, elapsed, headers              on a failure (headers
 *                                                     read so far, or nil)
 */
static int push_outcome(lua_State *L, slot *s) {
  double elapsed = 0;
  int nret;
  curl_easy_getinfo(s->easy, CURLINFO_TOTAL_TIME, &elapsed);
  if (s->result == CURLE_OK && s->over == OVER_NONE) {
    long status = 0, version = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(s->easy, CURLINFO_HTTP_VERSION, &version);
    lua_pushinteger(L, (lua_Integer)status);
    lua_pushlstring(L, s->body.data ? s->body.data : "", s->body.len);
    push_headers(L, s->owner, &s->head);
    lua_pushnumber(L, (lua_Number)elapsed);
    lua_pushstring(L, version == CURL_HTTP_VERSION_2_0 ? "2" :
                      version == CURL_HTTP_VERSION_1_0 ? "1.0" : "1.1");
    nret = 5;
  } else {
    lua_pushnil(L);
    if (s->over == OVER_BODY || s->result == CURLE_FILESIZE_EXCEEDED) {
      lua_pushliteral(L, "limit");
      lua_pushfstring(L, "response body is larger than max_response_bytes (%d)", (int)s->max_body);
    } else if (s->over == OVER_HEADERS) {
      lua_pushliteral(L, "limit");
      lua_pushfstring(L, "response headers are larger than %d bytes", (int)s->max_head);
    } else if (s->over == OUT_OF_MEMORY) {
      lua_pushliteral(L, "network");
      lua_pushliteral(L, "out of memory while reading the response");
    } else {
      lua_pushstring(L, classify(s->result));
      lua_pushstring(L, s->errbuf[0] ? s->errbuf : curl_easy_strerror(s->result));
    }
    lua_pushnumber(L, (lua_Number)elapsed);
    if (s->head.len) push_headers(L, s->owner, &s->head);
    else lua_pushnil(L);
    nret = 5;
  }
  if (s->body.cap > SLOT_KEEP_BYTES) tz_buf_free(&s->body);
  if (s->head.cap > SLOT_KEEP_BYTES) tz_buf_free(&s->head);
  luaL_unref(L, LUA_REGISTRYINDEX, s->body_ref);
  s->body_ref = LUA_NOREF;
  s->busy = 0;
  s->done = 0;
  return nret;
}

/* ---- Lua methods ---------------------------------------------------- */

/* core.transport{ headers = {...}, timeout =, connect_timeout =, ... } */
static int l_transport_new(lua_State *L) {
  transport *t;
  int i, n;
  luaL_checktype(L, 1, LUA_TTABLE);
  t = (transport *)lua_newuserdata(L, sizeof *t);
  memset(t, 0, sizeof *t);
  t->closed = 1; /* until fully built, __gc has little to do */
  luaL_getmetatable(L, TRANSPORT_MT);
  lua_setmetatable(L, -2);

  t->timeout_ms = (long)(opt_number(L, 1, "timeout", DEFAULT_TIMEOUT_MS / 1000.0) * 1000.0);
  t->connect_timeout_ms =
      (long)(opt_number(L, 1, "connect_timeout", DEFAULT_CONNECT_TIMEOUT_MS / 1000.0) * 1000.0);
  t->max_body = (size_t)opt_number(L, 1, "max_response_bytes", DEFAULT_MAX_RESPONSE_BYTES);
  t->max_head = (size_t)opt_number(L, 1, "max_header_bytes", DEFAULT_MAX_HEADER_BYTES);
  t->max_slots = (int)opt_number(L, 1, "max_slots", DEFAULT_SLOTS_MAX);
  if (t->max_slots < 1) t->max_slots = 1;
  if (t->timeout_ms < 1) t->timeout_ms = 1;
  if (t->connect_timeout_ms < 1) t->connect_timeout_ms = 1;
  lua_getfield(L, 1, "http2");
  t->http2 = lua_isnil(L, -1) ? 1 : lua_toboolean(L, -1);
  lua_pop(L, 1);

  t->slots = (slot **)calloc((size_t)t->max_slots, sizeof *t->slots);
  t->multi = curl_multi_init();
  t->closed = 0;
  if (!t->slots || !t->multi) return luaL_error(L, "toolzz: cannot create a libcurl handle");
  curl_multi_setopt(t->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
  t->fresh_handles = curl_version_info(CURLVERSION_NOW)->version_num < 0x080100;

  lua_getfield(L, 1, "keep_headers");
  n = lua_istable(L, -1) ? (int)tz_rawlen(L, -1) : 0;
  for (i = 1; i <= n && t->nkeep < MAX_KEEP_HEADERS; i++) {
    size_t len, k;
    const char *name;
    lua_rawgeti(L, -1, i);
    name = lua_tolstring(L, -1, &len);
    if (name && (t->keep[t->nkeep] = (char *)malloc(len + 1)) != NULL) {
      for (k = 0; k < len; k++) t->keep[t->nkeep][k] = (char)tolower((unsigned char)name[k]);
      t->keep[t->nkeep][len] = '\0';
      t->keep_len[t->nkeep++] = len;
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);

  t->ca_file = dup_opt_string(L, 1, "ca_file");
  t->ca_path = dup_opt_string(L, 1, "ca_path");
  t->proxy = dup_opt_string(L, 1, "proxy");
  t->noproxy = dup_opt_string(L, 1, "noproxy");

  lua_getfield(L, 1, "headers");
  n = lua_istable(L, -1) ? (int)tz_rawlen(L, -1) : 0;
  for (i = 1; i <= n; i++) {
    struct curl_slist *next;
    lua_rawgeti(L, -1, i);
    next = curl_slist_append(t->headers, lua_tostring(L, -1));
    lua_pop(L, 1);
    if (!next) return luaL_error(L, "toolzz: out of memory");
    t->headers = next;
  }
  lua_pop(L, 1);
  return 1;
}

/* Release every handle; safe to call twice. */
static int l_transport_close(lua_State *L) {
  transport *t = check_transport(L);
  int i;
  struct curl_slist *h;
  if (t->closed && !t->multi) return 0;
  for (i = 0; i < t->nslots; i++) {
    luaL_unref(L, LUA_REGISTRYINDEX, t->slots[i]->body_ref);
    free_slot(t, t->slots[i]);
  }
  free(t->slots);
  t->slots = NULL;
  t->nslots = 0;
  if (t->multi) curl_multi_cleanup(t->multi);
  t->multi = NULL;
  for (h = t->headers; h; h = h->next) wipe(h->data, strlen(h->data));
  curl_slist_free_all(t->headers);
  t->headers = NULL;
  for (i = 0; i < t->nkeep; i++) free(t->keep[i]);
  t->nkeep = 0;
  free(t->ca_file);
  free(t->ca_path);
  free(t->proxy);
  t->ca_file = t->ca_path = t->proxy = NULL;
  free(t->noproxy);
  t->noproxy = NULL;
  t->closed = 1;
  return 0;
}

/* The transport at 1, or NULL with nil, "config", message pushed when it is
   closed (a client closed from a hook in mid-batch must not raise). */
static transport *open_transport(lua_State *L) {
  transport *t = check_transport(L);
  if (!t->closed) return t;
  lua_pushnil(L);
  lua_pushliteral(L, "config");
  lua_pushliteral(L, "the client is closed");
  return NULL;
}

/* t:request(method, url, body) -> one attempt, waiting for it (see push_outcome). */
static int l_request(lua_State *L) {
  transport *t = open_transport(L);
  if (!t) return 3;
  const char *method = luaL_checkstring(L, 2);
  const char *url = luaL_checkstring(L, 3);
  const char *why = NULL;
  slot *s;
  if (lua_isnoneornil(L, 4)) { lua_settop(L, 3); lua_pushliteral(L, ""); }
  luaL_checkstring(L, 4);
  s = start(L, t, method, url, 4, 0, 0, &why);
  if (!s) {
    lua_pushnil(L);
    lua_pushliteral(L, "network");
    lua_pushstring(L, why);
    return 3;
  }
  drive(t, 0); /* sends the request */
  if (!s->done) housekeep(t, s);
  while (!s->done) drive(t, 1000);
  return push_outcome(L, s);
}

/* t:submit(method, url, body, tag) -> true | nil, "busy" (all slots in use) */
static int l_submit(lua_State *L) {
  transport *t = open_transport(L);
  if (!t) return 3;
  const char *method = luaL_checkstring(L, 2);
  const char *url = luaL_checkstring(L, 3);
  lua_Integer tag;
  const char *why = NULL;
  tag = luaL_checkinteger(L, 5);
  if (lua_isnil(L, 4)) { lua_pushliteral(L, ""); lua_replace(L, 4); }
  luaL_checkstring(L, 4);
  if (!start(L, t, method, url, 4, 1, tag, &why)) {
    lua_pushnil(L);
    lua_pushstring(L, why);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/*
 * t:wait(max_seconds) -> list of finished submissions, each
 *   { tag, status, body, headers, elapsed, http_version } or
 *   { tag, nil, kind, message, elapsed, headers }
 * Returns as soon as one or more finished, or after max_seconds with none.
 */
static int l_wait(lua_State *L) {
  transport *t = open_transport(L);
  if (!t) { lua_newtable(L); return 1; }
  double max_s = luaL_optnumber(L, 2, 1.0);
  int wait_ms = max_s <= 0 ? 0 : (int)(max_s * 1000.0 + 0.5);
  int i, k, n = 0, pending = 0, ready = 0;
  for (i = 0; i < t->nslots; i++) {
    if (t->slots[i]->busy) pending++;
    if (t->slots[i]->busy && t->slots[i]->done) ready++;
  }
  if (pending && !ready) drive(t, wait_ms);
  lua_newtable(L);
  for (i = 0; i < t->nslots; i++) {
    slot *s = t->slots[i];
    int nret;
    if (!(s->busy && s->done)) continue;
    lua_createtable(L, 6, 0);
    lua_pushinteger(L, s->tag);
    lua_rawseti(L, -2, 1);
    nret = push_outcome(L, s);
    for (k = nret; k >= 1; k--) lua_rawseti(L, -1 - k, k + 1);
    lua_rawseti(L, -2, ++n);
  }
  return 1;
}

/* t:pending() -> number of submissions not yet collected */
static int l_pending(lua_State *L) {
  transport *t = open_transport(L);
  if (!t) { lua_pushinteger(L, 0); return 1; }
  int i, pending = 0;
  for (i = 0; i < t->nslots; i++)
    if (t->slots[i]->busy) pending++;
  lua_pushinteger(L, pending);
  return 1;
}

static int l_tostring(lua_State *L) {
  transport *t = check_transport(L);
  lua_pushfstring(L, "toolzz.transport (%s, %p)", t->closed ? "closed" : "open", (void *)t);
  return 1;
}

void tz_open_transport(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"request", l_request}, {"submit", l_submit}, {"wait", l_wait},
    {"pending", l_pending}, {"close", l_transport_close}, {NULL, NULL}};
  static const luaL_Reg module_fn[] = {{"transport", l_transport_new}, {NULL, NULL}};
  curl_version_info_data *info;

  curl_global_init(CURL_GLOBAL_DEFAULT);
  if (luaL_newmetatable(L, TRANSPORT_MT)) {
    lua_newtable(L);
    tz_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_transport_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_transport_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, l_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  tz_setfuncs(L, module_fn, 0);

  info = curl_version_info(CURLVERSION_NOW);
  lua_pushstring(L, info->version);
  lua_setfield(L, -2, "curl_version");
  lua_pushboolean(L, (info->features & CURL_VERSION_HTTP2) != 0);
  lua_setfield(L, -2, "curl_http2");
}
