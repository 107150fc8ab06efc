/*
 * toolzz.h -- what the C files of toolzz.core share. Everything here is
 * hidden: the only exported symbol is luaopen_toolzz_core.
 */
#ifndef TOOLZZ_H
#define TOOLZZ_H

#include <stddef.h>
#include "compat.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

#define TOOLZZ_VERSION "0.2.0"

/* Defaults, in one place. */
#define DEFAULT_MAX_DEPTH          64          /* JSON nesting levels */
#define DEFAULT_MAX_ERRORS         64          /* encoder errors collected */
#define DEFAULT_MAX_BODY_BYTES     (1 << 20)   /* request body cap */
#define DEFAULT_MAX_RESPONSE_BYTES (8 << 20)
#define DEFAULT_MAX_HEADER_BYTES   (64 << 10)  /* response header block cap */
#define DEFAULT_TIMEOUT_MS         30000L
#define DEFAULT_CONNECT_TIMEOUT_MS 10000L
#define DEFAULT_SLOTS_MAX          256         /* concurrent transfers per transport */

/* A growable byte buffer; plain malloc so it can live in userdata. */
typedef struct tz_buf {
  char *data;
  size_t len, cap;
} tz_buf;

int tz_buf_reserve(tz_buf *b, size_t extra);
int tz_buf_add(tz_buf *b, const char *s, size_t n);
void tz_buf_free(tz_buf *b);

/* 1 when s[0..n) is well-formed UTF-8 (no overlongs, surrogates, > U+10FFFF). */
int tz_utf8_valid(const unsigned char *s, size_t n);

/* SIGINT/SIGTERM trapping for the command's batch (signals.c). */
void tz_open_signals(lua_State *L);

/* Module parts: each adds its functions to the module table at the top. */
void tz_open_json(lua_State *L);
void tz_open_check(lua_State *L);
void tz_open_transport(lua_State *L);
void tz_open_digest(lua_State *L);
void tz_open_file(lua_State *L);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
