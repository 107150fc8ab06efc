/*
 * transport.c -- HTTP attempts over libcurl, for one client: the
 * userdata's life cycle and its Lua methods (request, submit, wait, cancel,
 * pending, close). The other jobs live beside it, behind transport.h:
 * options and header lists (transport_options.c), the multi driver
 * (transport_multi.c), what a server answered (transport_outcome.c).
 *
 * A transport knows nothing of the ToolzzAI API: it makes one attempt and
 * returns status, body and headers, or a classified failure ("network",
 * "timeout", "tls", "limit", "config") that says whether any byte of the
 * request may have reached the server.
 *
 * Results are pushed only after curl is back, inside a protected call, so
 * that an error raised by a finaliser while they are pushed never leaves a
 * slot busy. A close() from a finaliser while a request or wait is running
 * is deferred until that call returns.
 */
#include <stdlib.h>
#include <string.h>

#include "transport.h"

/* The transport at 1, or raise. */
static transport *check_transport(lua_State *L) {
  return (transport *)luaL_checkudata(L, 1, TRANSPORT_MT);
}

/* ---- life cycle ----------------------------------------------------- */

/* Release every handle and buffer; safe to call twice. */
static void release_all(lua_State *L, transport *t) {
  int i;
  for (i = 0; i < t->nslots; i++) {
    luaL_unref(L, LUA_REGISTRYINDEX, t->slots[i]->body_ref);
    tz_slot_free(t, t->slots[i]);
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
  tz_headers_free(&t->headers);
  tz_headers_free(&t->headers_body);
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
  const char *failed;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  t = (transport *)lua_newuserdata(L, sizeof *t);
  memset(t, 0, sizeof *t);
  t->closed = 1; /* until fully built; __gc releases what was made so far */
  luaL_getmetatable(L, TRANSPORT_MT);
  lua_setmetatable(L, -2);
  tz_options_read(L, t);
  t->slots = (slot **)calloc((size_t)t->max_slots, sizeof *t->slots);
  if (!t->slots) return luaL_error(L, "toolzz: cannot create a libcurl handle");
  failed = tz_multi_open(t);
  if (failed) return luaL_error(L, "%s", failed);
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
  return tz_outcome_push(L, s);
}

/*
 * t:request(method, url [, body [, fresh]]) -> one attempt, waiting for it
 * (see tz_outcome_push). No body (nil): none is sent, nor a Content-Type; a GET
 * is a plain GET, another method sends Content-Length: 0. fresh: use a new
 * connection, never one from the cache (so the request is sent once at most).
 */
static int l_request(lua_State *L) {
  transport *t = check_transport(L);
  const char *method, *url, *why = NULL;
  int body_idx = 0, fresh, rc;
  slot *s;
  if (t->closed) return tz_outcome_push_early(L, "config", "the client is closed");
  method = luaL_checkstring(L, 2);
  url = luaL_checkstring(L, 3);
  if (!lua_isnoneornil(L, 4)) { luaL_checkstring(L, 4); body_idx = 4; }
  fresh = lua_toboolean(L, 5);
  if (!valid_method(method)) return tz_outcome_push_early(L, "config", "invalid method");
  lua_settop(L, 5);
  reserve_stack(L);
  lua_pushcfunction(L, push_outcome_p); /* 6: made before anything can need undoing */
  /* an allocation can run a finaliser, and that finaliser can close t */
  if (t->closed) return tz_outcome_push_early(L, "config", "the client is closed");
  t->depth++;
  s = tz_slot_start(L, t, method, url, body_idx, LUA_NOREF, 0, fresh, &why);
  if (!s) {
    end_call(L, t);
    return tz_outcome_push_early(L, "network", why);
  }
  s->sync = 1;
  tz_multi_drive(t, 0); /* sends the request */
  if (!s->done) tz_slot_housekeep(t, s);
  while (!s->done) tz_multi_drive(t, 1000);
  lua_pushvalue(L, 6);
  lua_pushlightuserdata(L, s);
  rc = lua_pcall(L, 1, LUA_MULTRET, 0); /* a finaliser may raise while the outcome is pushed */
  tz_slot_release(L, t, s);
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
    } else if (tz_slot_start(L, t, method, url, body_idx, body_ref, tag, lua_toboolean(L, 6), &why)) {
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
    nret = tz_outcome_push(L, s);
    for (k = nret; k >= 1; k--) lua_rawseti(L, -1 - k, k + 1);
    lua_rawseti(L, -2, ++n);
    tz_slot_release(L, t, s);
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
  if (tz_multi_count_busy(t, &ready, NULL) && !ready) tz_multi_drive(t, wait_ms);
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
    tz_slot_release(L, t, s);
    n++;
  }
  tz_multi_cap(t);
  lua_pushinteger(L, n);
  return 1;
}

/* t:pending() -> number of submissions not yet collected */
static int l_pending(lua_State *L) {
  transport *t = check_transport(L);
  lua_pushinteger(L, t->closed ? 0 : tz_multi_count_busy(t, NULL, NULL));
  return 1;
}

/* tostring(t): "toolzz.transport (open|closed, address)". */
static int l_tostring(lua_State *L) {
  transport *t = check_transport(L);
  lua_pushfstring(L, "toolzz.transport (%s, %p)", t->closed ? "closed" : "open", (void *)t);
  return 1;
}

/* Add core.transport, curl_version and curl_http2 to the module table at the top. */
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
