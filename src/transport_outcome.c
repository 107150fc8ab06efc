/*
 * transport_outcome.c -- what a server answered, and how an attempt ended.
 *
 * The body and header callbacks keep the answer within its caps (never
 * touching Lua); once libcurl is back, the outcome is pushed: status, body,
 * headers, or a failure classified by the contract's kinds ("network",
 * "timeout", "tls", "limit", "config") with whether any byte of the request
 * may have reached the server.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "transport.h"

/* ---- callbacks (never touch Lua) ------------------------------------ */

/* libcurl: body bytes, kept up to max_body (more: abort, a "limit"). */
size_t tz_on_body(char *p, size_t size, size_t n, void *ud) {
  slot *s = (slot *)ud;
  size_t len = size * n;
  if (len > s->max_body - s->body.len) { s->over = OVER_BODY; return 0; }
  if (!tz_buf_add(&s->body, p, len)) { s->over = OUT_OF_MEMORY; return 0; }
  return len;
}

/* libcurl hands over one complete header line at a time, the empty line
   that ends a block included. Interim (1xx) blocks count towards the cap
   too, so a storm of them is a limit, not an endless read. */
size_t tz_on_header(char *p, size_t size, size_t n, void *ud) {
  slot *s = (slot *)ud;
  size_t len = size * n;
  if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) { s->head.len = 0; s->head_done = 0; }
  if (len > s->max_head - s->head_total) { s->over = OVER_HEADERS; return 0; }
  s->head_total += len;
  if (len <= 2 && len >= 1 && (p[0] == '\r' || p[0] == '\n')) s->head_done = 1;
  if (!tz_buf_add(&s->head, p, len)) { s->over = OUT_OF_MEMORY; return 0; }
  return len;
}

/* ---- outcomes ------------------------------------------------------- */

/* The contract's failure kind of a libcurl result. */
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

/* Push fmt with its one %s replaced by the number n. */
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
int tz_outcome_push(lua_State *L, slot *s) {
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
int tz_outcome_push_early(lua_State *L, const char *kind, const char *message) {
  lua_pushnil(L);
  lua_pushstring(L, kind);
  lua_pushstring(L, message);
  lua_pushnumber(L, 0);
  lua_pushnil(L);
  lua_pushboolean(L, 0);
  return 6;
}
