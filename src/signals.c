/*
 * signals.c -- SIGINT and SIGTERM for the toolzz command's batch. Lua has
 * no signal API: while trapped, a signal only sets a flag that the batch's
 * should_stop reads (the batch then starts nothing new and reports what it
 * did). The handlers are installed without SA_RESTART, so a poll() of the
 * transport's wait returns EINTR and control comes back to Lua at once,
 * and with SA_RESETHAND: a second Ctrl-C meets the default action and ends
 * the process at once (not waiting for the writes in flight).
 *
 *   core.trap_signals() -> true, or false when already trapped
 *   core.caught_signal() -> number, name ("SIGINT" / "SIGTERM"), or nil
 *   core.restore_signals() -> true (the previous handlers are back, the
 *                             flag cleared), or false when nothing was trapped
 *
 * A signal that was ignored when trap_signals ran (nohup, a background job
 * of a non-interactive shell) stays ignored. One process-wide state: the
 * command is its only user.
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <string.h>

#include "toolzz.h"

static volatile sig_atomic_t caught; /* the first signal caught, 0: none */
static int trapped;                  /* handlers installed by trap_signals */

static const int SIGNALS[] = {SIGINT, SIGTERM};
#define NSIGNALS ((int)(sizeof SIGNALS / sizeof SIGNALS[0]))
static struct sigaction previous[NSIGNALS];
static int replaced[NSIGNALS]; /* 1: previous[i] is to be put back */

static void on_signal(int sig) {
  if (!caught) caught = (sig_atomic_t)sig;
}

static int l_trap_signals(lua_State *L) {
  int i;
  if (trapped) { lua_pushboolean(L, 0); return 1; }
  caught = 0;
  for (i = 0; i < NSIGNALS; i++) {
    struct sigaction sa;
    replaced[i] = 0;
    if (sigaction(SIGNALS[i], NULL, &previous[i]) != 0) continue;
    if (previous[i].sa_handler == SIG_IGN) continue; /* stays ignored */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND; /* no SA_RESTART: a blocking poll() wakes with EINTR */
    if (sigaction(SIGNALS[i], &sa, NULL) == 0) replaced[i] = 1;
  }
  trapped = 1;
  lua_pushboolean(L, 1);
  return 1;
}

static int l_caught_signal(lua_State *L) {
  int sig = (int)caught;
  if (!sig) return 0;
  lua_pushinteger(L, sig);
  lua_pushstring(L, sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "signal");
  return 2;
}

static int l_restore_signals(lua_State *L) {
  int i;
  if (!trapped) { lua_pushboolean(L, 0); return 1; }
  for (i = 0; i < NSIGNALS; i++)
    if (replaced[i]) sigaction(SIGNALS[i], &previous[i], NULL);
  trapped = 0;
  caught = 0;
  lua_pushboolean(L, 1);
  return 1;
}

void tz_open_signals(lua_State *L) {
  static const luaL_Reg fns[] = {{"trap_signals", l_trap_signals},
                                 {"caught_signal", l_caught_signal},
                                 {"restore_signals", l_restore_signals},
                                 {NULL, NULL}};
  tz_setfuncs(L, fns, 0);
}
