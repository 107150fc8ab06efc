/*
 * compat.h -- the few Lua 5.2+ facilities toolzz needs, shimmed for Lua 5.1
 * and LuaJIT under names of our own (never luaL_*), as LuaSocket does.
 */
#ifndef TOOLZZ_COMPAT_H
#define TOOLZZ_COMPAT_H

#include "lua.h"
#include "lauxlib.h"

#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

#if LUA_VERSION_NUM >= 503
#define tz_isinteger(L, i) lua_isinteger((L), (i))
#else
/* Lua 5.1 has only doubles: an integral double is the closest thing. */
#define tz_isinteger(L, i) tz_number_is_integral(L, i)
int tz_number_is_integral(lua_State *L, int idx);
#endif

#if LUA_VERSION_NUM >= 502
#define tz_rawlen(L, i) lua_rawlen((L), (i))
#else
#define tz_rawlen(L, i) lua_objlen((L), (i))
#endif

/* Register functions in the table at the top, each sharing nup upvalues. */
void tz_setfuncs(lua_State *L, const luaL_Reg *l, int nup);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
