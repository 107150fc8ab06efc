/*
 * transport_options.c -- core.transport's options, checked as lua-cjson
 * checks its own (a wrong type, an out-of-range number or an unknown name
 * raises: this is an internal API, such an error is a bug in toolzz), and
 * the two header lists every request sends.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport.h"

/* Every option core.transport knows. */
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

/* Every key of the options table (at 1) is a known option name, or raise. */
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
int tz_starts_with_ci(const char *s, const char *prefix) {
  for (; *prefix; s++, prefix++)
    if (tolower((unsigned char)*s) != *prefix) return 0;
  return 1;
}

/* Append a line to a header list; 0 when out of memory (the list unchanged). */
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

/* Wipe (the Authorization header is a secret) and free a header list. */
void tz_headers_free(struct curl_slist **list) {
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
    if (tz_starts_with_ci(line, "content-type:")) {
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

/* opts.keep_headers: the names of the headers returned (none: all), lower-cased. */
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

/* Read every option of the table at 1 into t (t->closed is still 1: a
   raise leaves what was made so far to __gc). */
void tz_options_read(lua_State *L, transport *t) {
  double max_size = (double)(size_t)-1 < MAX_RESPONSE_CAP ? (double)(size_t)-1 : MAX_RESPONSE_CAP;
  int type;
  check_option_names(L);
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
}
