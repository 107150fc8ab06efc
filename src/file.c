/*
 * file.c -- core.read_file(path, max_bytes [, root]): the bytes of a
 * regular file, for toolzz.sync's `{ "file": PATH }` references. Lua's
 * io.open blocks forever on a FIFO and reads /dev/zero until memory runs
 * out; a desired-state file under review (a pull request) may name either,
 * or a file outside its folder (/proc/self/environ) whose text a plan
 * would then print. So:
 *
 *   - opened with O_NONBLOCK (a FIFO never blocks the open) and refused
 *     unless fstat says it is a regular file;
 *   - refused when larger than max_bytes (checked on the size and on what
 *     is read, in case it grows);
 *   - with root: refused unless realpath(path) is root's realpath or under
 *     it (symbolic links and `..` followed first).
 *
 * Returns the text and the file's "device:inode", or nil and a message
 * (the path is not in it: the caller names it).
 */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "toolzz.h"

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif

static int fail(lua_State *L, const char *message) {
  lua_pushnil(L);
  lua_pushstring(L, message);
  return 2;
}

/* Push "device:inode" of st. */
static void push_id(lua_State *L, const struct stat *st) {
  char id[48];
  snprintf(id, sizeof id, "%llu:%llu", (unsigned long long)st->st_dev, (unsigned long long)st->st_ino);
  lua_pushstring(L, id);
}

/* Is path (resolved) root (resolved) or below it? 1, 0, or -1 (errno set). */
static int inside(const char *path, const char *root) {
  char real_path[PATH_MAX], real_root[PATH_MAX];
  size_t n;
  if (!realpath(root, real_root)) return -1;
  if (!realpath(path, real_path)) return -1;
  n = strlen(real_root);
  if (n == 1 && real_root[0] == '/') return 1;
  if (strncmp(real_path, real_root, n) != 0) return 0;
  return real_path[n] == '/' || real_path[n] == '\0';
}

/* The contents of an open regular file fd of size bytes (at most max) onto
 * the stack; 1, or 0 with a message pushed. Closes nothing. */
static int read_all(lua_State *L, int fd, size_t max) {
  luaL_Buffer b;
  char chunk[8192];
  size_t total = 0;
  luaL_buffinit(L, &b);
  for (;;) {
    ssize_t got = read(fd, chunk, sizeof chunk);
    if (got < 0) {
      if (errno == EINTR) continue;
      luaL_pushresult(&b);
      lua_pop(L, 1);
      lua_pushstring(L, strerror(errno));
      return 0;
    }
    if (got == 0) break;
    total += (size_t)got;
    if (total > max) {
      luaL_pushresult(&b);
      lua_pop(L, 1);
      lua_pushfstring(L, "is larger than %d bytes", (int)max);
      return 0;
    }
    luaL_addlstring(&b, chunk, (size_t)got);
  }
  luaL_pushresult(&b);
  return 1;
}

/* core.read_file(path, max_bytes [, root]) -> text, or nil, message. */
static int l_read_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_Number max_n = luaL_checknumber(L, 2);
  const char *root = luaL_optstring(L, 3, NULL);
  size_t max = max_n < 0 ? 0 : max_n > (lua_Number)INT_MAX ? (size_t)INT_MAX : (size_t)max_n;
  struct stat st;
  int fd, ok;
  if (root) {
    int in = inside(path, root);
    if (in < 0) return fail(L, strerror(errno));
    if (in == 0) return fail(L, "is outside the desired-state file's folder");
  }
  fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return fail(L, strerror(errno));
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return fail(L, strerror(e));
  }
  if (S_ISDIR(st.st_mode) || !S_ISREG(st.st_mode)) {
    close(fd);
    return fail(L, S_ISDIR(st.st_mode) ? "is a directory" : "is not a regular file");
  }
  if ((unsigned long long)st.st_size > (unsigned long long)max) {
    close(fd);
    lua_pushnil(L);
    lua_pushfstring(L, "is larger than %d bytes", (int)max);
    return 2;
  }
  ok = read_all(L, fd, max);
  close(fd);
  if (!ok) {
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  push_id(L, &st);
  return 2;
}

/* core.file_id(path) -> "device:inode" of the file path names (links
 * followed), or nil: which `{ "file" }` references name one file. */
static int l_file_id(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct stat st;
  if (stat(path, &st) != 0) return 0;
  push_id(L, &st);
  return 1;
}

void tz_open_file(lua_State *L) {
  static const luaL_Reg fns[] = {{"read_file", l_read_file}, {"file_id", l_file_id}, {NULL, NULL}};
  tz_setfuncs(L, fns, 0);
}
