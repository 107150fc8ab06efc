/*
 * transport.c -- HTTP attempts over libcurl, for one client.
 *
 * A transport is a userdata that owns one curl multi handle and a pool of
 * easy handles ("slots"). All slots share the multi's connection cache, so a
 * client keeps its connections alive across calls and batches, and HTTP/2
 * transfers multiplex over one connection. A transport knows nothing of the
 * ToolzzAI API: it makes one attempt and returns status, body and headers,
 * or a classified failure ("network", "timeout", "tls", "limit", "config")
 * that says whether any byte of the request may have reached the server.
 *
 * libcurl callbacks never raise Lua errors: they record what went wrong and
 * return the abort value; results are pushed only after curl is back, inside
 * a protected call, so that an error raised by a finaliser while they are
 * pushed never leaves a slot busy. A close() from a finaliser while a request
 * or wait is running is deferred until that call returns.
 *
 * Transfers are driven through libcurl's socket interface: libcurl says which
 * sockets to watch and when its next timeout is due, the transport polls
 * them and tells libcurl only which sockets are ready. curl_multi_perform
 * would instead poll every running transfer's socket on every wake-up:
 * O(transfers) system calls per answer in a batch.
 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "toolzz.h"

#define TRANSPORT_MT "toolzz.transport"
#define SLOT_KEEP_BYTES (256u << 10) /* larger response buffers are freed after use */
#define MAX_KEEP_HEADERS 8
#define MAX_HEADER_NAME 127          /* longest header name push_headers returns */
#define MAX_TIMEOUT_S 2147483.0      /* seconds; the milliseconds fit a 32-bit long */
#define MAX_SLOTS 4096
#define MAX_HEADER_CAP (256 << 10)   /* below libcurl's own 300 KiB header cap */
#define MAX_RESPONSE_CAP 1099511627776.0 /* 2^40 bytes */
#define H2_STREAMS_ASSUMED 128       /* streams per HTTP/2 connection a batch counts on */
#define H2_STREAMS_MAX 256           /* what libcurl may use when a server allows more */

enum { OVER_NONE = 0, OVER_BODY, OVER_HEADERS, OUT_OF_MEMORY };

typedef struct slot {
  CURL *easy;
  tz_buf body, head;
  size_t max_body, max_head;
  size_t head_total; /* header bytes of every response so far, 1xx included */
  CURLcode result;
  int busy;        /* handed out: in the multi, or done and not yet collected */
  int done;
  int sync;        /* owned by a running t:request (never returned by wait or cancelled) */
  int head_done;   /* the last response's header block ended (its empty line came) */
  int https;
  int fresh;       /* on a connection of its own (CURLOPT_FRESH_CONNECT) */
  int held;        /* https, waiting outside the multi until the protocol is known */
  int probe;       /* https while the protocol is unknown: its request line tells it */
  int proto_seen;  /* the probe's request went out as 1 HTTP/1.x, 2 HTTP/2 (0: not yet) */
  int over;        /* why a callback aborted the transfer */
  lua_Integer tag; /* the caller's name for this transfer */
  int body_ref;    /* registry reference anchoring the request body string */
  int used;        /* the easy handle has made a transfer */
  CURL *spare;     /* with fresh_handles: the next transfer's handle, made ahead */
  CURL *retired;   /* with fresh_handles: the last transfer's handle, to clean up */
  const struct transport *owner;
  char errbuf[CURL_ERROR_SIZE];
} slot;

typedef struct transport {
  CURLM *multi;
  char *keep[MAX_KEEP_HEADERS]; /* lower-case names of headers to return; none = all */
  size_t keep_len[MAX_KEEP_HEADERS];
  int nkeep;
  struct curl_slist *headers;      /* fixed headers, for a request without a body */
  struct curl_slist *headers_body; /* the same plus Content-Type, for one with a body */
  slot **slots;
  int nslots, max_slots;
  long timeout_ms, connect_timeout_ms;
  size_t max_body, max_head;
  char *ca_file, *ca_path, *proxy, *content_type;
  char *noproxy; /* hosts never reached through a proxy (CURLOPT_NOPROXY) */
  int http2;
  int closed;
  int depth;         /* request/wait calls running on this transport */
  int close_pending; /* close() came while depth > 0: release when it is back to 0 */
  int https_seen;    /* the last https protocol seen: 0 none yet, 1 HTTP/1.x, 2 HTTP/2 */
  long host_cap;     /* CURLMOPT_MAX_HOST_CONNECTIONS now set (0 = none) */
  int fresh_handles; /* libcurl < 8.1.0: never reuse an easy handle (see start) */
  struct pollfd *fds; /* the sockets libcurl wants watched (on_socket) */
  struct pollfd *ready; /* poll's verdicts, copied: acting on one changes fds */
  int nfds, fds_cap;
  int running;        /* transfers libcurl has running */
  double timer_at;    /* when libcurl wants curl_multi_socket_action(TIMEOUT); < 0: never */
} transport;

/* ---- callbacks (never touch Lua) ------------------------------------ */

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  slot *s = (slot *)ud;
  size_t len = size * n;
  if (len > s->max_body - s->body.len) { s->over = OVER_BODY; return 0; }
  if (!tz_buf_add(&s->body, p, len)) { s->over = OUT_OF_MEMORY; return 0; }
  return len;
}

/* libcurl hands over one complete header line at a time, the empty line
   that ends a block included. Interim (1xx) blocks count towards the cap
   too, so a storm of them is a limit, not an endless read. */
static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  slot *s = (slot *)ud;
  size_t len = size * n;
  if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) { s->head.len = 0; s->head_done = 0; }
  if (len > s->max_head - s->head_total) { s->over = OVER_HEADERS; return 0; }
  s->head_total += len;
  if (len <= 2 && len >= 1 && (p[0] == '\r' || p[0] == '\n')) s->head_done = 1;
  if (!tz_buf_add(&s->head, p, len)) { s->over = OUT_OF_MEMORY; return 0; }
  return len;
}

/* libcurl's trace, on for a probe only (see start): the request line it
   sends says which protocol the connection negotiated ("GET /x HTTP/2"),
   before any answer comes. A proxy's CONNECT line says nothing of it. */
static int on_debug(CURL *e, curl_infotype type, char *data, size_t size, void *ud) {
  slot *s = (slot *)ud;
  const char *eol;
  size_t n;
  (void)e;
  if (type != CURLINFO_HEADER_OUT || !s->probe || s->proto_seen) return 0;
  if (size >= 8 && memcmp(data, "CONNECT ", 8) == 0) return 0;
  eol = (const char *)memchr(data, '\n', size);
  n = eol ? (size_t)(eol - data) : size;
  while (n > 0 && data[n - 1] == '\r') n--;
  if (n >= 7 && memcmp(data + n - 7, " HTTP/2", 7) == 0) s->proto_seen = 2;
  else if (n >= 9 && memcmp(data + n - 9, " HTTP/1.", 8) == 0) s->proto_seen = 1;
  return 0;
}

/* ---- options (a programmer's errors: raised) ------------------------ */

static const char *const OPTION_NAMES[] = {
  "headers", "content_type", "timeout", "connect_timeout", "max_response_bytes",
  "max_header_bytes", "max_slots", "http2", "keep_headers", "ca_file", "ca_path",
  "proxy", "noproxy", NULL};

/* Push opts[name] (raw: an internal API reads no metamethods). */
static int opt_push(lua_State *L, const char *name) {
  lua_pushstring(L, name);
  lua_rawget(L, 1);
  return lua_type(L, -1);
}

static void check_option_names(lua_State *L) {
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    int i, known = 0;
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING) {
      const char *k = lua_tostring(L, -1);
      for (i = 0; OPTION_NAMES[i]; i++)
        if (strcmp(k, OPTION_NAMES[i]) == 0) known = 1;
    }
    if (!known)
      luaL_error(L, "toolzz.core.transport: unknown option %s",
                 lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : luaL_typename(L, -1));
  }
}

/* A number option in [lo, hi] (whole when integral is set), or dflt when nil. */
static double opt_number(lua_State *L, const char *name, double dflt, double lo, double hi,
                         int integral) {
  double v;
  int type = opt_push(L, name);
  if (type == LUA_TNIL) { lua_pop(L, 1); return dflt; }
  v = type == LUA_TNUMBER ? (double)lua_tonumber(L, -1) : NAN;
  lua_pop(L, 1);
  if (!(v >= lo && v <= hi) || (integral && floor(v) != v))
    luaL_error(L, "toolzz.core.transport: option %s must be a %s from %f to %f", name,
               integral ? "whole number" : "number", (lua_Number)lo, (lua_Number)hi);
  return v;
}

/* Seconds -> milliseconds, above 0 and at most MAX_TIMEOUT_S. */
static long opt_ms(lua_State *L, const char *name, long dflt_ms) {
  double s = opt_number(L, name, (double)dflt_ms / 1000.0, 0.0, MAX_TIMEOUT_S, 0);
  long ms = (long)(s * 1000.0 + 0.5);
  if (s <= 0) luaL_error(L, "toolzz.core.transport: option %s must be above 0 seconds", name);
  return ms < 1 ? 1 : ms;
}

/* A string without NUL, CR or LF (and not empty, unless empty_ok). */
static const char *check_string(lua_State *L, int idx, const char *what, size_t *len, int empty_ok) {
  size_t n;
  const char *s;
  if (lua_type(L, idx) != LUA_TSTRING)
    luaL_error(L, "toolzz.core.transport: %s must be a string, got %s", what, luaL_typename(L, idx));
  s = lua_tolstring(L, idx, &n);
  if ((n == 0 && !empty_ok) || strlen(s) != n || strpbrk(s, "\r\n"))
    luaL_error(L, "toolzz.core.transport: %s must be a %sstring without NUL, CR or LF", what,
               empty_ok ? "" : "non-empty ");
  if (len) *len = n;
  return s;
}

#define check_line(L, idx, what, len) check_string((L), (idx), (what), (len), 0)

/* A malloc'ed copy of a string option, NULL when nil ("" is kept: for
   proxy it means no proxy at all, whatever the environment says). */
static char *opt_string(lua_State *L, const char *name) {
  char *copy = NULL;
  if (opt_push(L, name) != LUA_TNIL) {
    size_t n;
    const char *s = check_string(L, -1, name, &n, 1);
    copy = (char *)malloc(n + 1);
    if (!copy) luaL_error(L, "toolzz: out of memory");
    memcpy(copy, s, n + 1);
  }
  lua_pop(L, 1);
  return copy;
}

/* The list at opts[name] (nil = empty): its length, the list left on the stack. */
static int opt_list(lua_State *L, const char *name) {
  int type = opt_push(L, name);
  if (type == LUA_TNIL) return 0;
  if (type != LUA_TTABLE)
    luaL_error(L, "toolzz.core.transport: option %s must be a list of strings", name);
  return (int)tz_rawlen(L, -1);
}

/* Does s start with prefix (lower case), in any case? */
static int starts_with_ci(const char *s, const char *prefix) {
  for (; *prefix; s++, prefix++)
    if (tolower((unsigned char)*s) != *prefix) return 0;
  return 1;
}

static int append_header(struct curl_slist **list, const char *line) {
  struct curl_slist *next = curl_slist_append(*list, line);
  if (!next) return 0;
  *list = next;
  return 1;
}

/* Overwrite memory that held secrets (the Authorization header) before freeing. */
static void wipe(char *p, size_t n) {
  volatile char *v = p;
  while (n--) *v++ = 0;
}

static void free_headers(struct curl_slist **list) {
  struct curl_slist *h;
  for (h = *list; h; h = h->next) wipe(h->data, strlen(h->data));
  curl_slist_free_all(*list);
  *list = NULL;
}

/*
 * The two header lists from opts.headers and opts.content_type. A
 * "Content-Type: x" line among the headers stands for content_type = "x"
 * when that option is absent. Both lists carry "Content-Type:" (which
 * removes libcurl's own form type from a POST) unless a body is sent with a
 * content type.
 */
static void build_headers(lua_State *L, transport *t) {
  int i, n;
  t->content_type = opt_string(L, "content_type");
  if (t->content_type && !*t->content_type) { free(t->content_type); t->content_type = NULL; }
  n = opt_list(L, "headers");
  for (i = 1; i <= n; i++) {
    char what[32];
    const char *line;
    lua_rawgeti(L, -1, i);
    snprintf(what, sizeof what, "headers[%d]", i);
    line = check_line(L, -1, what, NULL);
    if (!strchr(line, ':') && !strchr(line, ';'))
      luaL_error(L, "toolzz.core.transport: %s must look like \"Name: value\"", what);
    if (starts_with_ci(line, "content-type:")) {
      if (!t->content_type) {
        const char *v = line + 13;
        size_t len;
        while (*v == ' ' || *v == '\t') v++;
        len = strlen(v);
        if (len && (t->content_type = (char *)malloc(len + 1)) == NULL)
          luaL_error(L, "toolzz: out of memory");
        if (len) memcpy(t->content_type, v, len + 1);
      }
    } else if (!append_header(&t->headers, line) || !append_header(&t->headers_body, line)) {
      luaL_error(L, "toolzz: out of memory");
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  if (!append_header(&t->headers, "Content-Type:")) luaL_error(L, "toolzz: out of memory");
  if (t->content_type) {
    size_t len = strlen(t->content_type) + sizeof "Content-Type: ";
    char *line = (char *)malloc(len);
    int ok;
    if (!line) luaL_error(L, "toolzz: out of memory");
    snprintf(line, len, "Content-Type: %s", t->content_type);
    ok = append_header(&t->headers_body, line);
    free(line);
    if (!ok) luaL_error(L, "toolzz: out of memory");
  } else if (!append_header(&t->headers_body, "Content-Type:")) {
    luaL_error(L, "toolzz: out of memory");
  }
}

static void build_keep_headers(lua_State *L, transport *t) {
  int i, n = opt_list(L, "keep_headers");
  if (n > MAX_KEEP_HEADERS)
    luaL_error(L, "toolzz.core.transport: keep_headers has more than %d names", MAX_KEEP_HEADERS);
  for (i = 1; i <= n; i++) {
    size_t len, k;
    const char *name;
    lua_rawgeti(L, -1, i);
    name = check_line(L, -1, "keep_headers entry", &len);
    if (len > MAX_HEADER_NAME)
      luaL_error(L, "toolzz.core.transport: keep_headers names are at most %d bytes", MAX_HEADER_NAME);
    if ((t->keep[t->nkeep] = (char *)malloc(len + 1)) == NULL) luaL_error(L, "toolzz: out of memory");
    for (k = 0; k < len; k++) t->keep[t->nkeep][k] = (char)tolower((unsigned char)name[k]);
    t->keep[t->nkeep][len] = '\0';
    t->keep_len[t->nkeep++] = len;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* ---- slots ---------------------------------------------------------- */

static transport *check_transport(lua_State *L) {
  return (transport *)luaL_checkudata(L, 1, TRANSPORT_MT);
}

#define SET(opt, val) do { if (curl_easy_setopt(e, (opt), (val)) != CURLE_OK) goto fail; } while (0)

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
  SET(CURLOPT_PRIVATE, (void *)s);
  SET(CURLOPT_NOSIGNAL, 1L);
  SET(CURLOPT_WRITEFUNCTION, on_body);
  SET(CURLOPT_WRITEDATA, (void *)s);
  SET(CURLOPT_HEADERFUNCTION, on_header);
  SET(CURLOPT_HEADERDATA, (void *)s);
  SET(CURLOPT_ERRORBUFFER, s->errbuf);
  SET(CURLOPT_HTTPHEADER, t->headers);
  SET(CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
  SET(CURLOPT_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
  SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
  SET(CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  SET(CURLOPT_SSL_VERIFYPEER, 1L);
  SET(CURLOPT_SSL_VERIFYHOST, 2L);
  if (t->ca_file) SET(CURLOPT_CAINFO, t->ca_file);
  if (t->ca_path) SET(CURLOPT_CAPATH, t->ca_path);
  if (t->proxy) SET(CURLOPT_PROXY, t->proxy);
  if (t->noproxy) SET(CURLOPT_NOPROXY, t->noproxy);
  SET(CURLOPT_TIMEOUT_MS, t->timeout_ms);
  SET(CURLOPT_CONNECTTIMEOUT_MS, t->connect_timeout_ms);
  SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)t->max_body);
  SET(CURLOPT_TCP_KEEPALIVE, 1L);
  SET(CURLOPT_HTTP_VERSION, t->http2 ? (long)CURL_HTTP_VERSION_2TLS : (long)CURL_HTTP_VERSION_1_1);
  SET(CURLOPT_DEBUGFUNCTION, on_debug);
  SET(CURLOPT_DEBUGDATA, (void *)s);
  return s;
fail:
  curl_easy_cleanup(e);
  free(s);
  return NULL;
}

static void free_slot(transport *t, slot *s) {
  if (s->busy && !s->done && !s->held) curl_multi_remove_handle(t->multi, s->easy);
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

/* Hand a slot back: it is out of the multi, its outcome taken or dropped. */
static void release_slot(lua_State *L, transport *t, slot *s) {
  if (s->busy && !s->done && !s->held && t->multi) curl_multi_remove_handle(t->multi, s->easy);
  if (s->body.cap > SLOT_KEEP_BYTES) tz_buf_free(&s->body);
  if (s->head.cap > SLOT_KEEP_BYTES) tz_buf_free(&s->head);
  luaL_unref(L, LUA_REGISTRYINDEX, s->body_ref);
  s->body_ref = LUA_NOREF;
  s->busy = s->done = s->sync = s->held = 0;
}

/* Transfers handed out and not yet collected (a running request's excluded). */
static int count_busy(const transport *t, int *ready, int *plain) {
  int i, n = 0;
  if (ready) *ready = 0;
  if (plain) *plain = 0;
  for (i = 0; i < t->nslots; i++) {
    const slot *s = t->slots[i];
    if (!s->busy) continue;
    if (plain && !s->https) (*plain)++;
    if (s->sync) continue;
    n++;
    if (ready && s->done) (*ready)++;
  }
  return n;
}

/*
 * Over HTTP/2 a batch must not open a connection per transfer beyond the
 * first connection's stream limit (libcurl 7.88 does, PIPEWAIT or not): cap
 * connections per host at ceil(transfers in flight / H2_STREAMS_ASSUMED)
 * while every transfer in flight is https and the server was not seen
 * speaking HTTP/1.x (where the cap would serialise a batch). Before the
 * protocol is known too (PIPEWAIT alone let 21 connections open under
 * load); only the probe is in the multi then (see start), so the cap never
 * holds an HTTP/1.x server's transfers behind a slow first answer.
 * A fresh transfer adds one connection of its own to the cap.
 */
static void cap_connections(transport *t) {
  int plain, all = 0, fresh = 0, i;
  long want = 0;
  for (i = 0; i < t->nslots; i++) {
    const slot *s = t->slots[i];
    if (!s->busy || s->done) continue;
    if (s->fresh) fresh++; /* each needs a connection of its own */
    else all++;
  }
  count_busy(t, NULL, &plain);
  if (t->http2 && t->https_seen != 1 && plain == 0 && all + fresh > 0)
    want = (all + H2_STREAMS_ASSUMED - 1) / H2_STREAMS_ASSUMED + fresh;
  if (want != t->host_cap &&
      curl_multi_setopt(t->multi, CURLMOPT_MAX_HOST_CONNECTIONS, want) == CURLM_OK)
    t->host_cap = want;
}

/* Is a probe in flight (an https transfer that will tell the protocol)? */
static int probing(const transport *t) {
  int i;
  for (i = 0; i < t->nslots; i++) {
    const slot *s = t->slots[i];
    if (s->busy && !s->done && !s->held && s->probe) return 1;
  }
  return 0;
}

/*
 * Start one transfer on a free slot. body_idx is 0 for no body at all, else
 * the stack index of the body string, sent without copying: the caller keeps
 * it alive (on the stack for request(); submit() passes the registry
 * reference body_ref that anchors it, and the slot owns it from then on).
 * Nothing here allocates Lua memory, so no finaliser can run in between.
 * fresh: never reuse a connection, so libcurl cannot send it twice.
 * Returns the slot, or NULL with *why set.
 */
static slot *start(lua_State *L, transport *t, const char *method, const char *url,
                   int body_idx, int body_ref, lua_Integer tag, int fresh, const char **why) {
  slot *s = take_slot(t);
  size_t body_len = 0;
  const char *body = body_idx ? lua_tolstring(L, body_idx, &body_len) : NULL;
  int is_get = strcmp(method, "GET") == 0, is_post = strcmp(method, "POST") == 0;
  CURL *e;
  if (!s) { *why = "busy"; luaL_unref(L, LUA_REGISTRYINDEX, body_ref); return NULL; }
  /* libcurl before 8.1.0 keeps a pointer to the previous transfer's last
     header after freeing it (curl issue 11101): a response whose first
     header line is folded then makes it write freed memory. A duplicate
     handle starts clean; connections stay in the multi's cache. */
  if (s->used && t->fresh_handles) {
    CURL *dup = s->spare ? s->spare : curl_easy_duphandle(s->easy);
    if (!dup) { *why = "out of memory"; luaL_unref(L, LUA_REGISTRYINDEX, body_ref); return NULL; }
    s->spare = NULL;
    if (s->retired) curl_easy_cleanup(s->retired);
    s->retired = s->easy; /* cleaned while the next answer is awaited */
    s->easy = dup;
  }
  s->used = 1;
  e = s->easy;
  *why = "cannot set up the transfer";
  SET(CURLOPT_URL, url);
  SET(CURLOPT_FRESH_CONNECT, fresh ? 1L : 0L);
  if (!body && is_get) {
    SET(CURLOPT_HTTPGET, 1L);
    SET(CURLOPT_CUSTOMREQUEST, (char *)NULL);
  } else {
    /* no body: an empty one, so that libcurl sends Content-Length: 0 */
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    SET(CURLOPT_POSTFIELDS, body ? body : "");
    SET(CURLOPT_CUSTOMREQUEST, is_post ? NULL : method);
  }
  SET(CURLOPT_HTTPHEADER, body ? t->headers_body : t->headers);
  s->body.len = s->head.len = s->head_total = 0;
  s->over = OVER_NONE;
  s->head_done = 0;
  s->done = 0;
  s->errbuf[0] = '\0';
  s->tag = tag;
  s->https = starts_with_ci(url, "https:");
  s->fresh = fresh;
  /* Only https can multiplex (libcurl never tries h2c). Until a request
     has shown which protocol the server speaks, one https transfer goes
     ahead (the probe) and the others wait outside the multi: not behind
     MAX_HOST_CONNECTIONS, where an HTTP/1.x server would serve them one at
     a time until the first answer, however slow. PIPEWAIT on http:// would
     wait for that first answer too, so it is set on https only. */
  s->held = s->probe = s->proto_seen = 0;
  if (t->http2 && s->https && t->https_seen == 0) {
    if (!fresh && probing(t)) s->held = 1;
    else s->probe = 1;
  }
  SET(CURLOPT_PIPEWAIT, t->http2 && s->https ? 1L : 0L);
  SET(CURLOPT_VERBOSE, s->probe ? 1L : 0L);
  s->body_ref = body_ref;
  s->busy = 1; /* counted by cap_connections */
  cap_connections(t);
  if (!s->held && curl_multi_add_handle(t->multi, e) != CURLM_OK) {
    s->done = 1; /* not in the multi: release must not remove it */
    release_slot(L, t, s);
    *why = "cannot start the transfer";
    return NULL;
  }
  return s;
fail:
  luaL_unref(L, LUA_REGISTRYINDEX, body_ref);
  return NULL;
}
#undef SET

/*
 * Once a probe has shown the protocol (or ended without showing it), the
 * held transfers join the multi: over HTTP/2 they multiplex on the probe's
 * connection (PIPEWAIT, under the connection cap), over HTTP/1.x each opens
 * its own. A probe's finding counts as the protocol seen over https.
 */
static void release_held(transport *t) {
  int i, held = 0;
  for (i = 0; i < t->nslots; i++) {
    slot *s = t->slots[i];
    if (!s->busy) continue;
    if (s->held) held++;
    else if (s->probe && s->proto_seen) {
      t->https_seen = s->proto_seen;
      s->probe = 0;
    }
  }
  if (!held || (t->https_seen == 0 && probing(t))) return;
  cap_connections(t);
  for (i = 0; i < t->nslots; i++) {
    slot *s = t->slots[i];
    if (!s->busy || !s->held) continue;
    s->held = 0;
    if (t->https_seen == 0) { /* the probe ended unheard: each one may tell */
      s->probe = 1;
      curl_easy_setopt(s->easy, CURLOPT_VERBOSE, 1L);
    }
    if (curl_multi_add_handle(t->multi, s->easy) != CURLM_OK) {
      s->result = CURLE_FAILED_INIT;
      snprintf(s->errbuf, sizeof s->errbuf, "cannot start the transfer");
      s->done = 1;
    }
  }
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
      if (s) {
        long version = 0;
        s->result = rc;
        s->done = 1;
        finished++;
        if (s->https && rc == CURLE_OK &&
            curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &version) == CURLE_OK && version)
          t->https_seen = version == CURL_HTTP_VERSION_2_0 ? 2 : 1;
      }
    }
  }
  return finished;
}

/* The multi handle itself failed: end every transfer in it with that error. */
static void fail_all(transport *t, CURLMcode mc) {
  int i;
  for (i = 0; i < t->nslots; i++) {
    slot *s = t->slots[i];
    if (!s->busy || s->done) continue;
    if (!s->held) curl_multi_remove_handle(t->multi, s->easy);
    s->held = 0;
    s->result = CURLE_RECV_ERROR;
    snprintf(s->errbuf, sizeof s->errbuf, "libcurl: %s", curl_multi_strerror(mc));
    s->done = 1;
  }
}

static double monotonic(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* libcurl: watch socket fd for `what` (CURL_POLL_IN/OUT/INOUT/REMOVE). */
static int on_socket(CURL *e, curl_socket_t fd, int what, void *ud, void *socketp) {
  transport *t = (transport *)ud;
  int i;
  short events = (short)((what == CURL_POLL_IN || what == CURL_POLL_INOUT ? POLLIN : 0) |
                         (what == CURL_POLL_OUT || what == CURL_POLL_INOUT ? POLLOUT : 0));
  (void)e;
  (void)socketp;
  for (i = 0; i < t->nfds && t->fds[i].fd != fd; i++) {}
  if (what == CURL_POLL_REMOVE) {
    if (i < t->nfds) t->fds[i] = t->fds[--t->nfds];
    return 0;
  }
  if (i == t->nfds) {
    if (t->nfds == t->fds_cap) {
      int cap = t->fds_cap ? t->fds_cap * 2 : 16;
      struct pollfd *fds = (struct pollfd *)realloc(t->fds, (size_t)cap * sizeof *fds);
      struct pollfd *ready;
      if (!fds) return -1;
      t->fds = fds;
      ready = (struct pollfd *)realloc(t->ready, (size_t)cap * sizeof *ready);
      if (!ready) return -1;
      t->ready = ready;
      t->fds_cap = cap;
    }
    t->fds[t->nfds].fd = fd;
    t->nfds++;
  }
  t->fds[i].events = events;
  t->fds[i].revents = 0;
  return 0;
}

/* libcurl: call curl_multi_socket_action(TIMEOUT) in timeout_ms (-1: never). */
static int on_timer(CURLM *m, long timeout_ms, void *ud) {
  transport *t = (transport *)ud;
  (void)m;
  t->timer_at = timeout_ms < 0 ? -1.0 : monotonic() + (double)timeout_ms / 1000.0;
  return 0;
}

/* Tell libcurl that fd is ready (CURL_CSELECT_* bits), or that its timeout
   is due (CURL_SOCKET_TIMEOUT); 0, or -1 when the multi handle failed. */
static int act(transport *t, curl_socket_t fd, int bits) {
  CURLMcode mc = curl_multi_socket_action(t->multi, fd, bits, &t->running);
  if (mc != CURLM_OK) { fail_all(t, mc); return -1; }
  return 0;
}

/* Drive all transfers for at most wait_ms; returns how many finished. */
static int drive(transport *t, int wait_ms) {
  int i, n, nready = 0, finished, timeout = wait_ms;
  double now = monotonic();
  release_held(t);
  if (t->timer_at >= 0 && t->timer_at <= now) {
    t->timer_at = -1.0;
    if (act(t, CURL_SOCKET_TIMEOUT, 0)) return 1;
  }
  finished = collect(t);
  if (finished || (t->running == 0 && t->timer_at < 0)) { cap_connections(t); return finished; }
  if (t->timer_at >= 0) {
    double ms = ceil((t->timer_at - now) * 1000.0);
    if (ms < timeout) timeout = ms < 0 ? 0 : (int)ms;
  }
  n = t->nfds ? poll(t->fds, (nfds_t)t->nfds, timeout) : 0;
  if (!t->nfds && timeout > 0) { /* only a timer to wait for (a name being resolved) */
    struct timespec ts;
    ts.tv_sec = timeout / 1000;
    ts.tv_nsec = (long)(timeout % 1000) * 1000000L;
    nanosleep(&ts, NULL);
  }
  for (i = 0; n > 0 && i < t->nfds; i++)
    if (t->fds[i].revents) t->ready[nready++] = t->fds[i];
  for (i = 0; i < nready; i++) {
    short r = t->ready[i].revents;
    int bits = ((r & POLLIN) ? CURL_CSELECT_IN : 0) | ((r & POLLOUT) ? CURL_CSELECT_OUT : 0) |
               ((r & (POLLERR | POLLHUP | POLLNVAL)) ? CURL_CSELECT_ERR : 0);
    if (act(t, t->ready[i].fd, bits)) return 1;
  }
  if (t->timer_at >= 0 && t->timer_at <= monotonic()) {
    t->timer_at = -1.0;
    if (act(t, CURL_SOCKET_TIMEOUT, 0)) return 1;
  }
  release_held(t);
  finished = collect(t);
  cap_connections(t);
  return finished;
}

/* ---- outcomes ------------------------------------------------------- */

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

/* A TLS handshake that failed because the connection was reset or broken
   (a flaky load balancer), not because of a certificate or the protocol:
   a network fault, retried like one, as the contract's kinds say. */
static int reset_in_handshake(const slot *s) {
  long os_errno = 0;
  if (s->result != CURLE_SSL_CONNECT_ERROR) return 0;
  if (curl_easy_getinfo(s->easy, CURLINFO_OS_ERRNO, &os_errno) != CURLE_OK) return 0;
  return os_errno == ECONNRESET || os_errno == EPIPE || os_errno == ECONNABORTED;
}

/* May any byte of the request have reached the server? From libcurl's
   counters: bytes of request written, or the transfer got past connecting
   (a connect, resolve or TLS handshake failure leaves both at zero). */
static int maybe_sent(CURL *e) {
  long request_size = 0;
#if LIBCURL_VERSION_NUM >= 0x073d00
  curl_off_t pretransfer = 0;
  CURLINFO what = CURLINFO_PRETRANSFER_TIME_T;
#else
  double pretransfer = 0;
  CURLINFO what = CURLINFO_PRETRANSFER_TIME;
#endif
  if (curl_easy_getinfo(e, CURLINFO_REQUEST_SIZE, &request_size) != CURLE_OK) return 1;
  if (request_size > 0) return 1;
  if (curl_easy_getinfo(e, what, &pretransfer) != CURLE_OK) return 1;
  return pretransfer > 0;
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
      char name[MAX_HEADER_NAME + 1];
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

static void push_size(lua_State *L, const char *fmt, size_t n) {
  char num[32];
  snprintf(num, sizeof num, "%zu", n);
  lua_pushfstring(L, fmt, num);
}

/*
 * Push the outcome of a finished slot (it stays busy: the caller releases it):
 *   status, body, headers, elapsed, http_version      on an HTTP answer
 *   nil, kind, message, elapsed, headers, sent        on a failure (headers
 *       read so far, or nil; sent: whether any byte of the request may have
 *       reached the server)
 */
static int push_outcome(lua_State *L, slot *s) {
  double elapsed = 0;
  int sent = maybe_sent(s->easy);
  curl_easy_getinfo(s->easy, CURLINFO_TOTAL_TIME, &elapsed);
  if (s->result == CURLE_OK && s->over == OVER_NONE && s->head_done) {
    long status = 0, version = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(s->easy, CURLINFO_HTTP_VERSION, &version);
    lua_pushinteger(L, (lua_Integer)status);
    lua_pushlstring(L, s->body.data ? s->body.data : "", s->body.len);
    push_headers(L, s->owner, &s->head);
    lua_pushnumber(L, (lua_Number)elapsed);
    lua_pushstring(L, version == CURL_HTTP_VERSION_2_0 ? "2" :
                      version == CURL_HTTP_VERSION_1_0 ? "1.0" : "1.1");
    return 5;
  }
  lua_pushnil(L);
  if (s->over == OVER_BODY || s->result == CURLE_FILESIZE_EXCEEDED) {
    lua_pushliteral(L, "limit");
    push_size(L, "response body is larger than max_response_bytes (%s)", s->max_body);
  } else if (s->over == OVER_HEADERS) {
    lua_pushliteral(L, "limit");
    push_size(L, "response headers are larger than %s bytes", s->max_head);
  } else if (s->over == OUT_OF_MEMORY) {
    lua_pushliteral(L, "network");
    lua_pushliteral(L, "out of memory while reading the response");
  } else if (s->result == CURLE_OUT_OF_MEMORY && sent) {
    /* libcurl refuses a header line over CURL_MAX_HTTP_HEADER (100 KiB) so */
    lua_pushliteral(L, "limit");
    lua_pushliteral(L, "a response header line is longer than libcurl accepts (100 KiB)");
  } else if (s->result == CURLE_OK) { /* an answer cut inside its header block */
    lua_pushliteral(L, "network");
    lua_pushliteral(L, "the connection was closed inside the response headers");
  } else {
    lua_pushstring(L, reset_in_handshake(s) ? "network" : classify(s->result));
    lua_pushstring(L, s->errbuf[0] ? s->errbuf : curl_easy_strerror(s->result));
  }
  lua_pushnumber(L, (lua_Number)elapsed);
  if (s->head.len) push_headers(L, s->owner, &s->head);
  else lua_pushnil(L);
  lua_pushboolean(L, sent);
  return 6;
}

/* A failure before any transfer: nil, kind, message, 0, nil, false. */
static int push_early_failure(lua_State *L, const char *kind, const char *message) {
  lua_pushnil(L);
  lua_pushstring(L, kind);
  lua_pushstring(L, message);
  lua_pushnumber(L, 0);
  lua_pushnil(L);
  lua_pushboolean(L, 0);
  return 6;
}

/* ---- life cycle ----------------------------------------------------- */

/* Release every handle and buffer; safe to call twice. */
static void release_all(lua_State *L, transport *t) {
  int i;
  for (i = 0; i < t->nslots; i++) {
    luaL_unref(L, LUA_REGISTRYINDEX, t->slots[i]->body_ref);
    free_slot(t, t->slots[i]);
  }
  free(t->slots);
  t->slots = NULL;
  t->nslots = 0;
  if (t->multi) curl_multi_cleanup(t->multi);
  t->multi = NULL;
  free(t->fds);
  free(t->ready);
  t->fds = t->ready = NULL;
  t->nfds = t->fds_cap = 0;
  free_headers(&t->headers);
  free_headers(&t->headers_body);
  for (i = 0; i < t->nkeep; i++) free(t->keep[i]);
  t->nkeep = 0;
  free(t->ca_file);
  free(t->ca_path);
  free(t->proxy);
  free(t->content_type);
  free(t->noproxy);
  t->ca_file = t->ca_path = t->proxy = t->content_type = t->noproxy = NULL;
  t->closed = 1;
  t->close_pending = 0;
}

/* A request or wait is over: a close() that came meanwhile takes effect. */
static void end_call(lua_State *L, transport *t) {
  if (--t->depth == 0 && t->close_pending) release_all(L, t);
}

/* Room for what request/wait push, checked before any transfer starts. */
static void reserve_stack(lua_State *L) {
  if (!lua_checkstack(L, 40)) luaL_error(L, "toolzz: no Lua stack space left");
}

/* The method: 1 to 16 capital letters (no HEAD: a body is always read). */
static int valid_method(const char *m) {
  size_t i;
  for (i = 0; m[i]; i++)
    if (m[i] < 'A' || m[i] > 'Z' || i >= 16) return 0;
  return i > 0 && strcmp(m, "HEAD") != 0;
}

/* ---- Lua methods ---------------------------------------------------- */

/*
 * core.transport{ headers = {...}, content_type =, timeout =, connect_timeout =,
 *                 max_response_bytes =, max_header_bytes =, max_slots =,
 *                 http2 =, keep_headers = {...}, ca_file =, ca_path =, proxy = }
 * Options are checked: a wrong type, an out-of-range number or an unknown
 * name raises (this is an internal API: such an error is a bug in toolzz).
 */
static int l_transport_new(lua_State *L) {
  transport *t;
  double max_size = (double)(size_t)-1 < MAX_RESPONSE_CAP ? (double)(size_t)-1 : MAX_RESPONSE_CAP;
  int type;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  check_option_names(L);
  t = (transport *)lua_newuserdata(L, sizeof *t);
  memset(t, 0, sizeof *t);
  t->closed = 1; /* until fully built; __gc releases what was made so far */
  luaL_getmetatable(L, TRANSPORT_MT);
  lua_setmetatable(L, -2);

  t->timeout_ms = opt_ms(L, "timeout", DEFAULT_TIMEOUT_MS);
  t->connect_timeout_ms = opt_ms(L, "connect_timeout", DEFAULT_CONNECT_TIMEOUT_MS);
  t->max_body = (size_t)opt_number(L, "max_response_bytes", DEFAULT_MAX_RESPONSE_BYTES, 1, max_size, 1);
  t->max_head = (size_t)opt_number(L, "max_header_bytes", DEFAULT_MAX_HEADER_BYTES, 1, MAX_HEADER_CAP, 1);
  t->max_slots = (int)opt_number(L, "max_slots", DEFAULT_SLOTS_MAX, 1, MAX_SLOTS, 1);
  type = opt_push(L, "http2");
  if (type != LUA_TNIL && type != LUA_TBOOLEAN)
    luaL_error(L, "toolzz.core.transport: option http2 must be a boolean");
  t->http2 = (type == LUA_TNIL || lua_toboolean(L, -1)) &&
             (curl_version_info(CURLVERSION_NOW)->features & CURL_VERSION_HTTP2) != 0;
  lua_pop(L, 1);
  build_keep_headers(L, t);
  t->ca_file = opt_string(L, "ca_file");
  t->ca_path = opt_string(L, "ca_path");
  t->proxy = opt_string(L, "proxy");
  t->noproxy = opt_string(L, "noproxy");
  build_headers(L, t);

  t->slots = (slot **)calloc((size_t)t->max_slots, sizeof *t->slots);
  t->multi = curl_multi_init();
  if (!t->slots || !t->multi) return luaL_error(L, "toolzz: cannot create a libcurl handle");
  if (curl_multi_setopt(t->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX) != CURLM_OK)
    return luaL_error(L, "toolzz: libcurl refuses HTTP/2 multiplexing");
#if LIBCURL_VERSION_NUM >= 0x074300
  if (curl_multi_setopt(t->multi, CURLMOPT_MAX_CONCURRENT_STREAMS, (long)H2_STREAMS_MAX) != CURLM_OK)
    return luaL_error(L, "toolzz: libcurl refuses CURLMOPT_MAX_CONCURRENT_STREAMS");
#endif
  t->fresh_handles = curl_version_info(CURLVERSION_NOW)->version_num < 0x080100;
  t->timer_at = -1.0;
  if (curl_multi_setopt(t->multi, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
      curl_multi_setopt(t->multi, CURLMOPT_SOCKETDATA, (void *)t) != CURLM_OK ||
      curl_multi_setopt(t->multi, CURLMOPT_TIMERFUNCTION, on_timer) != CURLM_OK ||
      curl_multi_setopt(t->multi, CURLMOPT_TIMERDATA, (void *)t) != CURLM_OK)
    return luaL_error(L, "toolzz: libcurl refuses the socket callbacks");
  t->closed = 0;
  return 1;
}

/* t:close(): release every handle; safe twice. Deferred while a request
   or wait runs (a finaliser may close the transport in the middle of one). */
static int l_transport_close(lua_State *L) {
  transport *t = check_transport(L);
  if (t->depth > 0) {
    t->closed = 1;
    t->close_pending = 1;
    return 0;
  }
  release_all(L, t);
  return 0;
}

/* The outcome of the slot at 1 (lightuserdata), for lua_pcall. */
static int push_outcome_p(lua_State *L) {
  slot *s = (slot *)lua_touserdata(L, 1);
  lua_pop(L, 1);
  return push_outcome(L, s);
}

/*
 * t:request(method, url [, body [, fresh]]) -> one attempt, waiting for it
 * (see push_outcome). No body (nil): none is sent, nor a Content-Type; a GET
 * is a plain GET, another method sends Content-Length: 0. fresh: use a new
 * connection, never one from the cache (so the request is sent once at most).
 */
static int l_request(lua_State *L) {
  transport *t = check_transport(L);
  const char *method, *url, *why = NULL;
  int body_idx = 0, fresh, rc;
  slot *s;
  if (t->closed) return push_early_failure(L, "config", "the client is closed");
  method = luaL_checkstring(L, 2);
  url = luaL_checkstring(L, 3);
  if (!lua_isnoneornil(L, 4)) { luaL_checkstring(L, 4); body_idx = 4; }
  fresh = lua_toboolean(L, 5);
  if (!valid_method(method)) return push_early_failure(L, "config", "invalid method");
  lua_settop(L, 5);
  reserve_stack(L);
  lua_pushcfunction(L, push_outcome_p); /* 6: made before anything can need undoing */
  /* an allocation can run a finaliser, and that finaliser can close t */
  if (t->closed) return push_early_failure(L, "config", "the client is closed");
  t->depth++;
  s = start(L, t, method, url, body_idx, LUA_NOREF, 0, fresh, &why);
  if (!s) {
    end_call(L, t);
    return push_early_failure(L, "network", why);
  }
  s->sync = 1;
  drive(t, 0); /* sends the request */
  if (!s->done) housekeep(t, s);
  while (!s->done) drive(t, 1000);
  lua_pushvalue(L, 6);
  lua_pushlightuserdata(L, s);
  rc = lua_pcall(L, 1, LUA_MULTRET, 0); /* a finaliser may raise while the outcome is pushed */
  release_slot(L, t, s);
  end_call(L, t);
  if (rc != 0) return lua_error(L);
  return lua_gettop(L) - 6;
}

/* t:submit(method, url, body, tag [, fresh]) -> true | nil, why ("busy": all
   slots in use). body nil: no body, as for request(). */
static int l_submit(lua_State *L) {
  transport *t = check_transport(L);
  const char *method, *url, *why = NULL;
  lua_Integer tag;
  int body_idx = 0;
  if (t->closed) {
    lua_pushnil(L);
    lua_pushliteral(L, "the client is closed");
    return 2;
  }
  method = luaL_checkstring(L, 2);
  url = luaL_checkstring(L, 3);
  if (!lua_isnoneornil(L, 4)) { luaL_checkstring(L, 4); body_idx = 4; }
  tag = luaL_checkinteger(L, 5);
  if (!valid_method(method)) {
    why = "invalid method";
  } else {
    int body_ref = LUA_NOREF;
    if (body_idx) { /* anchor the body first: this allocation may run a finaliser */
      lua_pushvalue(L, body_idx);
      body_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    if (t->closed) {
      luaL_unref(L, LUA_REGISTRYINDEX, body_ref);
      why = "the client is closed";
    } else if (start(L, t, method, url, body_idx, body_ref, tag, lua_toboolean(L, 6), &why)) {
      why = NULL;
    }
  }
  if (why) {
    lua_pushnil(L);
    lua_pushstring(L, why);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* The list of finished submissions (t at 1, lightuserdata), for lua_pcall;
   each slot is released as soon as its outcome is in the list. */
static int push_finished_p(lua_State *L) {
  transport *t = (transport *)lua_touserdata(L, 1);
  int i, k, n = 0;
  lua_newtable(L);
  for (i = 0; i < t->nslots; i++) {
    slot *s = t->slots[i];
    int nret;
    if (!(s->busy && s->done && !s->sync)) continue;
    lua_createtable(L, 7, 0);
    lua_pushinteger(L, s->tag);
    lua_rawseti(L, -2, 1);
    nret = push_outcome(L, s);
    for (k = nret; k >= 1; k--) lua_rawseti(L, -1 - k, k + 1);
    lua_rawseti(L, -2, ++n);
    release_slot(L, t, s);
  }
  return 1;
}

/*
 * t:wait(max_seconds) -> list of finished submissions, each
 *   { tag, status, body, headers, elapsed, http_version } or
 *   { tag, nil, kind, message, elapsed, headers, sent }
 * Returns as soon as one or more finished, or after max_seconds with none.
 */
static int l_wait(lua_State *L) {
  transport *t = check_transport(L);
  double max_s = luaL_optnumber(L, 2, 1.0);
  int wait_ms, ready, rc;
  if (t->closed) { lua_newtable(L); return 1; }
  wait_ms = !(max_s > 0) ? 0 : max_s > 86400.0 ? 86400000 : (int)(max_s * 1000.0 + 0.5);
  lua_settop(L, 2);
  reserve_stack(L);
  lua_pushcfunction(L, push_finished_p);
  if (t->closed) { lua_newtable(L); return 1; } /* closed by a finaliser just now */
  t->depth++;
  if (count_busy(t, &ready, NULL) && !ready) drive(t, wait_ms);
  lua_pushlightuserdata(L, t);
  rc = lua_pcall(L, 1, 1, 0);
  end_call(L, t);
  if (rc != 0) return lua_error(L);
  return 1;
}

/* t:cancel([first, last]) -> n: drop the submissions whose tag lies in
   [first, last] (all without arguments), in flight or finished; wait()
   never returns them. */
static int l_cancel(lua_State *L) {
  transport *t = check_transport(L);
  lua_Integer first = luaL_optinteger(L, 2, 0), last = luaL_optinteger(L, 3, first);
  int i, all = lua_isnoneornil(L, 2), n = 0;
  if (t->closed) { lua_pushinteger(L, 0); return 1; }
  for (i = 0; i < t->nslots; i++) {
    slot *s = t->slots[i];
    if (!s->busy || s->sync || (!all && (s->tag < first || s->tag > last))) continue;
    release_slot(L, t, s);
    n++;
  }
  cap_connections(t);
  lua_pushinteger(L, n);
  return 1;
}

/* t:pending() -> number of submissions not yet collected */
static int l_pending(lua_State *L) {
  transport *t = check_transport(L);
  lua_pushinteger(L, t->closed ? 0 : count_busy(t, NULL, NULL));
  return 1;
}

static int l_tostring(lua_State *L) {
  transport *t = check_transport(L);
  lua_pushfstring(L, "toolzz.transport (%s, %p)", t->closed ? "closed" : "open", (void *)t);
  return 1;
}

void tz_open_transport(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"request", l_request}, {"submit", l_submit}, {"wait", l_wait}, {"cancel", l_cancel},
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
