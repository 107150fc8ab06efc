#!/usr/bin/env bash
# Client-side instructions per call, counted by valgrind's callgrind: each row
# runs twice, with N1 and N2 timed calls after the same warm-up, and
#   instructions per call = (Ir(N2) - Ir(N1)) / (N2 - N1)
# so start-up, module loading and the first connection cancel out. Counts are
# deterministic to about ±1 % (the network's timing moves a few poll calls),
# unlike the wall clock on a shared machine. Only the client process is
# counted (the stand-in runs outside valgrind); for the curl command, the
# shell and curl processes it starts are counted too.
#
#   bench/instructions.sh [ROW...]      (default: the rows of bench/budget.txt)
#
# Rows: raw_put raw_get update get patch update_luajit get_luajit update_lua51
#       batch1 batch8 batch32 luasocket luacurl curlcmd, and step_<name>[_luajit]:
#       one step of a call alone (bench/steps.lua: transport, build, check, ...)
# Prints one line per row:  RESULT instr <row> <instructions per call> <N1> <N2>
# N1/N2 are TOOLZZ_INSTR_N1 (50) and TOOLZZ_INSTR_N2 (400); the curl command
# uses 2 and 7. Uses the stand-in of TOOLZZ_TEST_HTTP_URL and
# TOOLZZ_TEST_CONVERFLOW_HTTP_URL when set, else starts it (spec/server/ctl).
# shellcheck disable=SC2086,SC2046 # commands and flags are kept as words in strings on purpose
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C.UTF-8

N1=${TOOLZZ_INSTR_N1:-50}
N2=${TOOLZZ_INSTR_N2:-400}
OUT=build/bench
WARMUP=20

die() { echo "instructions: $*" >&2; exit 1; }
command -v valgrind >/dev/null || die "valgrind not found (make deps)"

mkdir -p "$OUT"
if [[ ! -x $OUT/raw_curl || bench/raw_curl.c -nt $OUT/raw_curl ]]; then
  cc -std=c99 -O2 -Wall -Wextra -Werror bench/raw_curl.c -o "$OUT/raw_curl" \
    $(pkg-config --libs libcurl 2>/dev/null || echo -lcurl)
fi
if [[ -z ${TOOLZZ_TEST_HTTP_URL:-} || -z ${TOOLZZ_TEST_CONVERFLOW_HTTP_URL:-} || -z ${TOOLZZ_TEST_TOKEN:-} ]]; then
  spec/server/ctl start >&2
  eval "$(spec/server/ctl env --export)"
fi
lua5.4 bench/setup.lua "$OUT" # the bytes toolzz sends, for the raw libcurl rows
ID=6f1c2f0e-1d2b-4c3a-9e8f-0123456789ab
PUT_URL=$TOOLZZ_TEST_HTTP_URL/static/api/v1/calcom/integration/$ID
GET_URL=$TOOLZZ_TEST_CONVERFLOW_HTTP_URL/static/api/v1/calcom/integration/$ID

# The command of a row, with @N@ where the number of timed calls goes.
HTTP="bench/http.lua prefix=/static seconds=1e9 warmup=$WARMUP count=@N@"
command_of() {
  case $1 in
    raw_put) echo "$OUT/raw_curl $PUT_URL $OUT/headers.txt $OUT/calcom.json @N@ 1e9 $WARMUP PUT" ;;
    raw_get) echo "$OUT/raw_curl $GET_URL $OUT/headers_get.txt - @N@ 1e9 $WARMUP GET" ;;
    update) echo "lua5.4 $HTTP mode=toolzz op=update" ;;
    get) echo "lua5.4 $HTTP mode=toolzz op=get" ;;
    patch) echo "lua5.4 $HTTP mode=toolzz op=patch" ;;
    update_luajit) echo "luajit $HTTP mode=toolzz op=update" ;;
    get_luajit) echo "luajit $HTTP mode=toolzz op=get" ;;
    update_lua51) echo "lua5.1 $HTTP mode=toolzz op=update" ;;
    batch1 | batch8 | batch32) echo "lua5.4 $HTTP mode=batch op=update concurrency=${1#batch} size=@N@" ;;
    luasocket) echo "lua5.4 $HTTP mode=luasocket" ;;
    luacurl)
      if lua5.4 -e 'require "cURL"' 2>/dev/null; then echo "lua5.4 $HTTP mode=luacurl"
      else echo "lua5.1 $HTTP mode=luacurl"; fi ;;
    curlcmd) echo "lua5.4 $HTTP mode=curlcmd" ;;
    step_*_luajit) local step=${1#step_}; echo "luajit bench/steps.lua step=${step%_luajit} warmup=$WARMUP count=@N@" ;;
    step_*) echo "lua5.4 bench/steps.lua step=${1#step_} warmup=$WARMUP count=@N@" ;;
    *) return 1 ;;
  esac
}

# Instructions of one run of a row's command with n calls (all processes summed).
count() { # row n
  local row=$1 n=$2 cmd dir flags=() total=0 f v
  cmd=$(command_of "$row")
  cmd=${cmd//@N@/$n}
  dir=$(mktemp -d "$OUT/callgrind.XXXXXX")
  [[ $cmd == luajit* ]] && flags+=(--smc-check=all-non-file) # LuaJIT writes machine code
  [[ $row == curlcmd ]] && flags+=(--trace-children=yes)
  if ! valgrind --tool=callgrind "${flags[@]}" --callgrind-out-file="$dir/cg.%p" $cmd \
       >"$dir/stdout" 2>"$dir/stderr" || ! grep -q '^RESULT' "$dir/stdout"; then
    tail -5 "$dir/stderr" >&2
    rm -rf "$dir"
    die "$row: '$cmd' failed under valgrind"
  fi
  for f in "$dir"/cg.*; do
    v=$(awk '/^(summary|totals):/ { print $2; exit }' "$f")
    total=$((total + ${v:-0}))
  done
  rm -rf "$dir"
  echo "$total"
}

ROWS=("$@")
if [[ ${#ROWS[@]} -eq 0 ]]; then
  mapfile -t ROWS < <(awk '/^[a-z]/ { print $1 }' bench/budget.txt)
fi
for row in "${ROWS[@]}"; do
  command_of "$row" >/dev/null || die "unknown row '$row'"
  n1=$N1 n2=$N2
  [[ $row == curlcmd ]] && n1=2 n2=7
  a=$(count "$row" "$n1")
  b=$(count "$row" "$n2")
  echo "RESULT instr $row $(((b - a) / (n2 - n1))) $n1 $n2"
done
