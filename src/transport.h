/*
 * transport.h -- what the files of the libcurl transport share. Private:
 * everything here is hidden; Lua reaches the transport through
 * tz_open_transport (toolzz.h) only.
 *
 *   transport.c          the userdata's life cycle and its Lua methods
 *   transport_options.c  options and header lists (a programmer's errors: raised)
 *   transport_multi.c    the multi driver: slots, starting transfers, the
 *                        socket and timer callbacks, the HTTP/2 connection cap
 *   transport_outcome.c  what a server answered: the body and header
 *                        callbacks, failure classification, the outcome pushed
 *
 * A transport is a userdata that owns one curl multi handle and a pool of
 * easy handles ("slots"). All slots share the multi's connection cache, so a
 * client keeps its connections alive across calls and batches, and HTTP/2
 * transfers multiplex over one connection. libcurl callbacks never touch
 * Lua: they record what went wrong and return the abort value.
 */
#ifndef TOOLZZ_TRANSPORT_H
#define TOOLZZ_TRANSPORT_H

#include <curl/curl.h>

#include "toolzz.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

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
  int traced;      /* CURLOPT_VERBOSE is on (for a probe) */
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
  int fresh_handles; /* libcurl < 8.1.0: never reuse an easy handle (see tz_slot_start) */
  struct pollfd *fds; /* the sockets libcurl wants watched (on_socket) */
  struct pollfd *ready; /* poll's verdicts, copied: acting on one changes fds */
  int nfds, fds_cap;
  int running;        /* transfers libcurl has running */
  double timer_at;    /* when libcurl wants curl_multi_socket_action(TIMEOUT); < 0: never */
} transport;

/* transport_options.c: read core.transport's options table (at 1) into t;
   raises on a wrong option. */
void tz_options_read(lua_State *L, transport *t);
/* Wipe (the Authorization header is a secret) and free a header list. */
void tz_headers_free(struct curl_slist **list);
/* Does s start with prefix (lower case), in any case? */
int tz_starts_with_ci(const char *s, const char *prefix);

/* transport_multi.c */
const char *tz_multi_open(transport *t);
slot *tz_slot_new(transport *t);
void tz_slot_free(transport *t, slot *s);
slot *tz_slot_take(transport *t);
void tz_slot_release(lua_State *L, transport *t, slot *s);
slot *tz_slot_start(lua_State *L, transport *t, const char *method, const char *url,
                    int body_idx, int body_ref, lua_Integer tag, int fresh, const char **why);
void tz_slot_housekeep(transport *t, slot *s);
int tz_multi_count_busy(const transport *t, int *ready, int *plain);
void tz_multi_cap(transport *t);
int tz_multi_drive(transport *t, int wait_ms);

/* transport_outcome.c */
size_t tz_on_body(char *p, size_t size, size_t n, void *ud);
size_t tz_on_header(char *p, size_t size, size_t n, void *ud);
int tz_outcome_push(lua_State *L, slot *s);
int tz_outcome_push_early(lua_State *L, const char *kind, const char *message);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
