/*
 * buffer.c -- a growable byte buffer (tz_buf, toolzz.h) on plain malloc, so
 * it can live in userdata and be freed by a finaliser: the JSON encoder's
 * output and each transfer's response body and headers.
 */
#include <stdlib.h>
#include <string.h>

#include "toolzz.h"

/* Room for extra more bytes; 0 when the size overflows or memory is out. */
int tz_buf_reserve(tz_buf *b, size_t extra) {
  size_t want, cap;
  char *p;
  if (b->cap - b->len >= extra) return 1;
  want = b->len + extra;
  if (want < b->len) return 0; /* overflow */
  cap = b->cap ? b->cap : 256;
  while (cap < want) {
    if (cap > ((size_t)-1) / 2) { cap = want; break; }
    cap *= 2;
  }
  p = (char *)realloc(b->data, cap);
  if (!p) return 0;
  b->data = p;
  b->cap = cap;
  return 1;
}

/* Append n bytes; 0 when out of memory (b unchanged). */
int tz_buf_add(tz_buf *b, const char *s, size_t n) {
  if (!tz_buf_reserve(b, n)) return 0;
  memcpy(b->data + b->len, s, n);
  b->len += n;
  return 1;
}

/* Free the bytes; b is empty and usable again. */
void tz_buf_free(tz_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}
