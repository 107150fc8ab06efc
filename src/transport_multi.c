/*
 * transport_multi.c -- the multi driver: slots (easy handles) taken,
 * started and released, the HTTP/2 connection cap, and the loop that drives
 * every transfer.
 *
 * Transfers are driven through libcurl's socket interface: libcurl says which
 * sockets to watch and when its next timeout is due, the transport polls
 * them and tells libcurl only which sockets are ready. curl_multi_perform
 * would instead poll every running transfer's socket on every wake-up:
 * O(transfers) system calls per answer in a batch.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "transport.h"

/* libcurl's trace, on for a probe only (see tz_slot_start): the request line it
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
/* ---- slots ---------------------------------------------------------- */

#define SET(opt, val) do { if (curl_easy_setopt(e, (opt), (val)) != CURLE_OK) goto fail; } while (0)

/* A new slot with an easy handle set up from t's options; NULL when out of memory. */
slot *tz_slot_new(transport *t) {
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
  SET(CURLOPT_WRITEFUNCTION, tz_on_body);
  SET(CURLOPT_WRITEDATA, (void *)s);
  SET(CURLOPT_HEADERFUNCTION, tz_on_header);
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

/* Take the slot out of the multi and free it with its handles and buffers. */
void tz_slot_free(transport *t, slot *s) {
  if (s->busy && !s->done && !s->held) curl_multi_remove_handle(t->multi, s->easy);
  curl_easy_cleanup(s->easy);
  if (s->spare) curl_easy_cleanup(s->spare);
  if (s->retired) curl_easy_cleanup(s->retired);
  tz_buf_free(&s->body);
  tz_buf_free(&s->head);
  free(s);
}

/* A free slot, made on demand up to max_slots; NULL when all are busy. */
slot *tz_slot_take(transport *t) {
  int i;
  slot *s;
  for (i = 0; i < t->nslots; i++)
    if (!t->slots[i]->busy) return t->slots[i];
  if (t->nslots >= t->max_slots) return NULL;
  s = tz_slot_new(t);
  if (!s) return NULL;
  t->slots[t->nslots++] = s;
  return s;
}

/* Hand a slot back: it is out of the multi, its outcome taken or dropped. */
void tz_slot_release(lua_State *L, transport *t, slot *s) {
  if (s->busy && !s->done && !s->held && t->multi) curl_multi_remove_handle(t->multi, s->easy);
  if (s->body.cap > SLOT_KEEP_BYTES) tz_buf_free(&s->body);
  if (s->head.cap > SLOT_KEEP_BYTES) tz_buf_free(&s->head);
  luaL_unref(L, LUA_REGISTRYINDEX, s->body_ref);
  s->body_ref = LUA_NOREF;
  s->busy = s->done = s->sync = s->held = 0;
}

/* Transfers handed out and not yet collected (a running request's excluded). */
int tz_multi_count_busy(const transport *t, int *ready, int *plain) {
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
 * load); only the probe is in the multi then (see tz_slot_start), so the cap never
 * holds an HTTP/1.x server's transfers behind a slow first answer.
 * A fresh transfer adds one connection of its own to the cap.
 */
void tz_multi_cap(transport *t) {
  int plain, all = 0, fresh = 0, i;
  long want = 0;
  for (i = 0; i < t->nslots; i++) {
    const slot *s = t->slots[i];
    if (!s->busy || s->done) continue;
    if (s->fresh) fresh++; /* each needs a connection of its own */
    else all++;
  }
  tz_multi_count_busy(t, NULL, &plain);
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
slot *tz_slot_start(lua_State *L, transport *t, const char *method, const char *url,
                    int body_idx, int body_ref, lua_Integer tag, int fresh, const char **why) {
  slot *s = tz_slot_take(t);
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
  s->https = tz_starts_with_ci(url, "https:");
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
  if (s->probe != s->traced) { /* set only when it changes: a harness may trace on its own */
    SET(CURLOPT_VERBOSE, s->probe ? 1L : 0L);
    s->traced = s->probe;
  }
  s->body_ref = body_ref;
  s->busy = 1; /* counted by tz_multi_cap */
  tz_multi_cap(t);
  if (!s->held && curl_multi_add_handle(t->multi, e) != CURLM_OK) {
    s->done = 1; /* not in the multi: release must not remove it */
    tz_slot_release(L, t, s);
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
  tz_multi_cap(t);
  for (i = 0; i < t->nslots; i++) {
    slot *s = t->slots[i];
    if (!s->busy || !s->held) continue;
    s->held = 0;
    if (t->https_seen == 0 && curl_easy_setopt(s->easy, CURLOPT_VERBOSE, 1L) == CURLE_OK)
      s->probe = s->traced = 1; /* the probe ended unheard: each one may tell */
    if (curl_multi_add_handle(t->multi, s->easy) != CURLM_OK) {
      s->result = CURLE_FAILED_INIT;
      snprintf(s->errbuf, sizeof s->errbuf, "cannot start the transfer");
      s->done = 1;
    }
  }
}

/* With fresh_handles, swap handles while the server works on the request,
   so the copying and freeing cost no wall time of a sequential call. */
void tz_slot_housekeep(transport *t, slot *s) {
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

/* Seconds on the monotonic clock. */
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
int tz_multi_drive(transport *t, int wait_ms) {
  int i, n, nready = 0, finished, timeout = wait_ms;
  double now = monotonic();
  release_held(t);
  if (t->timer_at >= 0 && t->timer_at <= now) {
    t->timer_at = -1.0;
    if (act(t, CURL_SOCKET_TIMEOUT, 0)) return 1;
  }
  finished = collect(t);
  if (finished || (t->running == 0 && t->timer_at < 0)) { tz_multi_cap(t); return finished; }
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
  tz_multi_cap(t);
  return finished;
}

/* Make t's multi handle and wire its callbacks; NULL, or what failed. */
const char *tz_multi_open(transport *t) {
  t->multi = curl_multi_init();
  if (!t->multi) return "toolzz: cannot create a libcurl handle";
  if (curl_multi_setopt(t->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX) != CURLM_OK)
    return "toolzz: libcurl refuses HTTP/2 multiplexing";
#if LIBCURL_VERSION_NUM >= 0x074300
  if (curl_multi_setopt(t->multi, CURLMOPT_MAX_CONCURRENT_STREAMS, (long)H2_STREAMS_MAX) != CURLM_OK)
    return "toolzz: libcurl refuses CURLMOPT_MAX_CONCURRENT_STREAMS";
#endif
  t->fresh_handles = curl_version_info(CURLVERSION_NOW)->version_num < 0x080100;
  t->timer_at = -1.0;
  if (curl_multi_setopt(t->multi, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
      curl_multi_setopt(t->multi, CURLMOPT_SOCKETDATA, (void *)t) != CURLM_OK ||
      curl_multi_setopt(t->multi, CURLMOPT_TIMERFUNCTION, on_timer) != CURLM_OK ||
      curl_multi_setopt(t->multi, CURLMOPT_TIMERDATA, (void *)t) != CURLM_OK)
    return "toolzz: libcurl refuses the socket callbacks";
  return NULL;
}
