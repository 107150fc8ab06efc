/*
 * raw_curl.c -- the benchmark baseline: sequential PUTs of one JSON body
 * (or GETs) with raw libcurl, one reused easy handle (keep-alive), the same
 * request headers as toolzz sends, each response body read into memory.
 *
 *   raw_curl URL HEADER_FILE BODY_FILE MAX_COUNT MAX_SECONDS [WARMUP [METHOD]]
 *
 * METHOD is PUT (the default) or GET; a GET sends no body and BODY_FILE is
 * not read ("-" will do). HEADER_FILE has one request header per line. Stops after MAX_COUNT timed
 * requests or MAX_SECONDS, whichever comes first, and prints
 *   RESULT raw_curl <requests> <seconds> <CPU seconds of this process>
 * Any transfer error or non-200 answer ends the run with exit status 1.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

typedef struct buffer {
  char *data;
  size_t len, cap;
} buffer;

/* Append a response chunk to the buffer (the write callback). */
static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  buffer *b = (buffer *)ud;
  size_t len = size * n;
  if (b->len + len > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    char *grown;
    while (cap < b->len + len) cap *= 2;
    grown = (char *)realloc(b->data, cap);
    if (!grown) return 0;
    b->data = grown;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, len);
  b->len += len;
  return len;
}

/* Seconds on the monotonic clock. */
static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A whole file as a NUL-terminated string, or NULL. */
static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *data;
  long size;
  if (!f) return NULL;
  if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
    fclose(f);
    return NULL;
  }
  data = (char *)malloc((size_t)size + 1);
  if (data && fread(data, 1, (size_t)size, f) != (size_t)size) {
    free(data);
    data = NULL;
  }
  fclose(f);
  if (data) {
    data[size] = '\0';
    *len = (size_t)size;
  }
  return data;
}

/* Header lines of a file as a curl list (empty lines skipped). */
static struct curl_slist *read_headers(const char *path) {
  size_t len;
  char *text = read_file(path, &len), *line, *save = NULL;
  struct curl_slist *list = NULL;
  if (!text) return NULL;
  for (line = strtok_r(text, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save))
    list = curl_slist_append(list, line);
  free(text);
  return list;
}

/* One request; returns 0 on a 200 answer with a body. */
static int perform(CURL *easy, buffer *response) {
  long status = 0;
  CURLcode rc;
  response->len = 0;
  rc = curl_easy_perform(easy);
  if (rc != CURLE_OK) {
    fprintf(stderr, "raw_curl: %s\n", curl_easy_strerror(rc));
    return 1;
  }
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200 || response->len == 0) {
    fprintf(stderr, "raw_curl: HTTP %ld, %lu body bytes\n", status, (unsigned long)response->len);
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  size_t body_len = 0;
  char *body;
  struct curl_slist *headers;
  buffer response = {NULL, 0, 0};
  CURL *easy;
  long max_count, warmup, count = 0, i;
  double max_seconds, start, elapsed;
  clock_t cpu_start;
  int get;

  if (argc < 6) {
    fprintf(stderr, "usage: %s URL HEADER_FILE BODY_FILE MAX_COUNT MAX_SECONDS [WARMUP [PUT|GET]]\n", argv[0]);
    return 2;
  }
  get = argc > 7 && strcmp(argv[7], "GET") == 0;
  if (argc > 7 && !get && strcmp(argv[7], "PUT") != 0) {
    fprintf(stderr, "raw_curl: METHOD must be PUT or GET\n");
    return 2;
  }
  body = get ? (char *)calloc(1, 1) : read_file(argv[3], &body_len);
  headers = read_headers(argv[2]);
  max_count = atol(argv[4]);
  max_seconds = atof(argv[5]);
  warmup = argc > 6 ? atol(argv[6]) : 100;
  if (!body || !headers || max_count < 1 || max_seconds <= 0) {
    fprintf(stderr, "raw_curl: cannot read %s or %s, or bad limits\n", argv[2], argv[3]);
    return 2;
  }

  curl_global_init(CURL_GLOBAL_DEFAULT);
  easy = curl_easy_init();
  if (!easy) return 1;
  curl_easy_setopt(easy, CURLOPT_URL, argv[1]);
  if (get) {
    curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
  }
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, (void *)&response);
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(easy, CURLOPT_TIMEOUT, 10L);

  for (i = 0; i < warmup; i++)
    if (perform(easy, &response)) return 1;
  start = now();
  cpu_start = clock();
  do {
    if (perform(easy, &response)) return 1;
    count++;
    elapsed = now() - start;
  } while (count < max_count && elapsed < max_seconds);

  printf("RESULT raw_curl %ld %.6f %.6f\n", count, elapsed,
         (double)(clock() - cpu_start) / CLOCKS_PER_SEC);
  curl_easy_cleanup(easy);
  curl_slist_free_all(headers);
  free(body);
  free(response.data);
  curl_global_cleanup();
  return 0;
}
