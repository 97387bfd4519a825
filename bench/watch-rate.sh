#!/usr/bin/env bash
# imgguard watch under a burst of events: 1,000 `docker tag` events (API calls made 8 at a time
# over the socket, so the daemon emits them faster than a CLI loop could), then the same tags
# removed (1,000 `untag` events, each of which watch answers with one inspect). Prints the events
# handled per second (from the first tag call to the last event recorded, with --grace 0), watch's
# CPU time per event, and its resident memory (VmRSS, and the peak VmHWM) after start, after the
# first burst and after ROUNDS bursts (default 10: 20,000 events, more than an hour of a busy
# build host's tag moves). Run by hand; not part of the tests.
#
#   bash bench/watch-rate.sh [IMGGUARD_BIN]
#
# Everything made (a mktemp directory with the ledger, one image labelled imgguard.bench=<pid>
# and its tags) is removed on exit; nothing is force-removed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-}
if [ -z "$bin" ]; then
  cargo build --release --quiet --manifest-path "$root/Cargo.toml"
  bin="$root/target/release/imgguard"
fi
rounds=${ROUNDS:-10}
n=${EVENTS:-1000}
sock=/var/run/docker.sock
api=$(docker version --format '{{.Server.APIVersion}}')
run="igwatch$$"
work=$(mktemp -d /tmp/imgguard-watch-rate.XXXXXX)
watch_pid=
cleanup() {
  [ -n "$watch_pid" ] && kill "$watch_pid" 2>/dev/null && wait "$watch_pid" 2>/dev/null
  docker images --format '{{.Repository}}:{{.Tag}}' --filter "label=imgguard.bench=$run" |
    grep -v '<none>' | xargs -r -n 100 docker rmi >/dev/null 2>&1 || true
  docker images -q --filter "label=imgguard.bench=$run" | sort -u | xargs -r docker rmi >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir "$work/ctx"
echo "$run" >"$work/ctx/file"
printf 'FROM scratch\nLABEL imgguard.bench=%s\nCOPY file /file\n' "$run" >"$work/ctx/Dockerfile"
IMGGUARD_HOME="$work/home" "$bin" build -q -t "$run:base" "$work/ctx" >/dev/null
id=$(docker image inspect -f '{{.Id}}' "$run:base")

IMGGUARD_HOME="$work/home" "$bin" watch --format json --grace 0 --label "imgguard.bench=$run" \
  >"$work/out.jsonl" 2>"$work/err.log" &
watch_pid=$!
for _ in $(seq 1 100); do grep -q watching "$work/err.log" && break; sleep 0.1; done
grep -q watching "$work/err.log" || { cat "$work/err.log" >&2; exit 1; }

rss() { awk '/^VmRSS/ {r=$2} /^VmHWM/ {h=$2} END {printf "%d KiB (peak %d KiB)", r, h}' "/proc/$watch_pid/status"; }
cpu_ms() { awk '{print ($14 + $15) * 1000 / '"$(getconf CLK_TCK)"'}' "/proc/$watch_pid/stat"; }
now() { date +%s.%N; }
# Waits until the output has $1 lines.
lines_reach() {
  for _ in $(seq 1 1200); do
    [ "$(wc -l <"$work/out.jsonl")" -ge "$1" ] && return 0
    sleep 0.05
  done
  echo "watch recorded $(wc -l <"$work/out.jsonl") of $1 events" >&2
  exit 1
}
call() { # METHOD: one API call per path read from stdin, 8 at a time
  xargs -P 8 -I{} curl -sf --unix-socket "$sock" -X "$1" "http://docker/v$api{}" >/dev/null
}

echo "after start: $(rss)"
expected=0
for round in $(seq 1 "$rounds"); do
  cpu0=$(cpu_ms)
  t0=$(now)
  seq 1 "$n" | sed "s|^\(.*\)$|/images/$id/tag?repo=$run\&tag=r$round-\1|" | call POST
  expected=$((expected + n))
  lines_reach "$expected"
  t1=$(now)
  cpu1=$(cpu_ms)
  if [ "$round" = 1 ]; then
    awk -v n="$n" -v a="$t0" -v b="$t1" -v c0="$cpu0" -v c1="$cpu1" 'BEGIN {
      printf "burst of %d tag events: %.0f events/s handled (%.2f s), %.3f ms of watch CPU per event\n",
        n, n / (b - a), b - a, (c1 - c0) / n }'
    echo "after the first burst: $(rss)"
  fi
  seq 1 "$n" | sed "s|^|/images/$run:r$round-|" | call DELETE
  expected=$((expected + n))
  lines_reach "$expected"
  if [ "$round" = 1 ]; then
    t2=$(now)
    cpu2=$(cpu_ms)
    awk -v n="$n" -v a="$t1" -v b="$t2" -v c0="$cpu1" -v c1="$cpu2" 'BEGIN {
      printf "burst of %d untag events: %.0f events/s handled, %.3f ms of watch CPU per event\n",
        n, n / (b - a), (c1 - c0) / n }'
  fi
done
echo "after $rounds bursts ($expected events recorded): $(rss)"
dups=$(sort "$work/out.jsonl" | uniq -d | wc -l)
echo "lines recorded twice: $dups"
