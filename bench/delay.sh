#!/usr/bin/env bash
# The 10 ms-server measurements of bench/run alone (the same commands), for
# working on them: per round, sequential updates against a batch of 1,000 at
# concurrency 32, patches the same way, and a batch of 10,000 with the peak
# RSS of both batches (memory per queued item = (10,000 − 1,000) ÷ 9,000).
#
#   bench/delay.sh [rounds]      (3 by default, as in bench/run)
#
# Uses TOOLZZ_TEST_HTTP_URL/TOOLZZ_TEST_TOKEN when both are set, else starts
# the stand-in (spec/server/ctl start, honouring TOOLZZ_PORT_*).
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C.UTF-8
ROUNDS=${1:-3}
if [[ -z ${TOOLZZ_TEST_HTTP_URL:-} || -z ${TOOLZZ_TEST_TOKEN:-} ]]; then
  spec/server/ctl start >&2
  eval "$(spec/server/ctl env --export)"
fi
DELAYED=(bench/http.lua prefix=/delay/10/static)
result() { "$@" | awk '/^RESULT/ { print $3, $4, $5, $6 }'; } # calls seconds cpu hwm
for ((round = 1; round <= ROUNDS; round++)); do
  read -r sc ss _ _ <<< "$(result lua5.4 "${DELAYED[@]}" mode=toolzz count=100 seconds=5 warmup=3)"
  read -r _ bs bc bh <<< "$(result lua5.4 "${DELAYED[@]}" mode=batch concurrency=32 size=1000 count=1000 seconds=20 warmup=32)"
  read -r pc ps _ _ <<< "$(result lua5.4 "${DELAYED[@]}" mode=toolzz op=patch count=50 seconds=5 warmup=3)"
  read -r _ pbs _ _ <<< "$(result lua5.4 "${DELAYED[@]}" mode=batch op=patch concurrency=32 size=1000 count=1000 seconds=20 warmup=32)"
  read -r _ ts tc th <<< "$(result lua5.4 "${DELAYED[@]}" mode=batch concurrency=32 size=10000 count=10000 seconds=60 warmup=32)"
  awk -v r="$round" -v sc="$sc" -v ss="$ss" -v bs="$bs" -v bc="$bc" -v bh="$bh" -v pc="$pc" -v ps="$ps" \
      -v pbs="$pbs" -v ts="$ts" -v tc="$tc" -v th="$th" 'BEGIN {
    seq = ss / sc * 1000; pseq = ps / pc * 1000
    printf "round %d: updates %.2f ms sequential, batch of 1,000 %.3f s (CPU %.3f s): %.1fx; ", r, seq, bs, bc, seq / bs
    printf "patches %.2f ms, batch %.3f s: %.1fx; ", pseq, pbs, pseq / pbs
    printf "10,000 items %.3f s (CPU %.3f s) = %.2fx the time of 1,000; ", ts, tc, ts / bs
    printf "peak RSS %d / %d KiB: %.2f KiB per queued item\n", bh, th, (th - bh) / 9000 }'
done
