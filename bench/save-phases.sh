#!/usr/bin/env bash
# Where a 1 GiB save's time goes, client by client, interleaved round by round:
#   wait    the daemon's work before its first byte (docker 20.10 writes the whole export to a
#           temporary directory first): the same for every client, and most of the time
#   stream  first byte to the archive written (for imgguard: and checked): what the client's
#           receiving (to /dev/null) or its receiving and writing (to a file) costs
#   sync    making the file durable afterwards (`sync F` after curl and docker, imgguard's fsync)
# and the CPU time (user + system) each client spent. It tells whether a difference between
# `imgguard save` and `docker save -o F && sync F` (bench/save-load.sh) is the daemon's, the
# client's receiving, or the disk's; and, the daemon's wait taken out, how the part a client
# controls (everything after the first byte) compares, paired round by round. curl reading into /dev/null is the
# floor. Run by hand; not part of the tests.
#
#   bash bench/save-phases.sh [ROUNDS] [SIZE_MIB]      (default: 3 rounds, 1024 MiB)
#
# Needs curl and GNU time, and ~3x SIZE_MIB free in /tmp. Everything it makes (files under one
# mktemp directory, an image labelled imgguard.bench=<pid>) is removed on exit.
set -euo pipefail
rounds=${1:-3}
mib=${2:-1024}
root=$(cd "$(dirname "$0")/.." && pwd)
command -v curl >/dev/null || { echo "needs curl (apt-get install curl)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "needs GNU time (apt-get install time)" >&2; exit 2; }
sock=${DOCKER_HOST:-unix:///var/run/docker.sock}
case $sock in
  unix://*) sock=${sock#unix://} ;;
  *) echo "needs a local daemon (DOCKER_HOST=unix://…), not $sock" >&2; exit 2 ;;
esac
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin="$root/target/release/imgguard"

work=$(mktemp -d /tmp/imgguard-phases.XXXXXX)
export IMGGUARD_HOME="$work/home"
label="imgguard.bench=$$"
tag="imgguard-bench-phases-$$:${mib}m"
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
cleanup() {
  remove_labelled "$label"
  rm -rf "$work"
}
trap cleanup EXIT

random_image "$bin" "$tag" "$label" "$mib" "$work/ctx"

url="http://localhost/images/get?names=$tag"
out="$work/out.tar"
rows="$work/rows"
: > "$rows"
# One line per run: client wait stream sync total cpu (seconds).
cpu() { awk '/^cpu / {print $2 + $3}' "$work/time"; }
fresh() { rm -f "$out"; sync; }
curl_run() {
  local to=$1 w t s=0 start end
  fresh
  /usr/bin/time -o "$work/time" -f 'cpu %U %S' curl -sf --unix-socket "$sock" -o "$to" \
    -w '%{time_starttransfer} %{time_total}\n' "$url" > "$work/curl"
  read -r w t < "$work/curl"
  if [ "$to" != /dev/null ]; then
    start=$(date +%s%N); sync "$to"; end=$(date +%s%N)
    s=$(python3 -c "print(($end - $start) / 1e9)")
  fi
  python3 -c "import sys; w, t, s = map(float, sys.argv[2:5]); print(sys.argv[1], w, t - w, s, t + s, sys.argv[5])" \
    "curl→$2" "$w" "$t" "$s" "$(cpu)" >> "$rows"
}
# To /dev/null through standard output: no -o (like docker's, imgguard's `-o -` is a file
# named "-").
imgguard_run() {
  local to=$1 out_args=()
  [ "$to" = /dev/null ] || out_args=(-o "$to")
  fresh
  IMGGUARD_TRACE=1 /usr/bin/time -o "$work/time" -f 'cpu %U %S' "$bin" save "${out_args[@]}" \
    "$tag" 2> "$work/trace" > /dev/null
  python3 - "imgguard→$2" "$(cpu)" "$work/trace" >> "$rows" <<'PY'
import re, sys
name, cpu, path = sys.argv[1], sys.argv[2], sys.argv[3]
at = {}
for line in open(path):
    m = re.match(r"imgguard-trace:\s+([\d.]+) ms\s+(.*)", line)
    if m:
        at[m.group(2).strip()] = float(m.group(1)) / 1000
# The stream ends when the last byte is written and the archive checked (the writer can lag the
# socket); without a file (to /dev/null) there is no check.
first = at["save: first byte of the export"]
written = at.get("save: archive written and checked", at["save: last byte of the export"])
sync = at.get("save: archive fsynced", written) - written
print(name, first, written - first, sync, at["exit"], cpu)
PY
}
# docker's client has no trace: its first byte is when the temporary file it writes into
# (`.docker_temp_*` beside the target, renamed into place at the end) stops being empty, seen by
# polling every 2 ms.
docker_run() {
  local start end first
  fresh
  mkdir -p "$work/d"
  rm -f "$work/polling"
  python3 - "$work/d" "$work/polling" > "$work/first" <<'PY' &
import os, sys, time
d = sys.argv[1]
open(sys.argv[2], "w").close()
while True:
    for e in os.scandir(d):
        try:
            if e.stat().st_size > 0:
                print(time.time_ns())
                sys.exit(0)
        except FileNotFoundError:
            pass
    time.sleep(0.002)
PY
  local poller=$!
  # Docker starts once the poller watches (Python's start alone can outlast a small save).
  while [ ! -e "$work/polling" ]; do sleep 0.01; done
  start=$(date +%s%N)
  /usr/bin/time -o "$work/time" -f 'cpu %U %S' docker save -o "$work/d/out.tar" "$tag"
  local saved
  saved=$(date +%s%N)
  sync "$work/d/out.tar"
  end=$(date +%s%N)
  wait "$poller"
  first=$(cat "$work/first")
  rm -rf "$work/d"
  python3 -c "import sys; s, f, v, e = map(int, sys.argv[1:5]); print('docker→file+sync', (f - s) / 1e9, (v - f) / 1e9, (e - v) / 1e9, (e - s) / 1e9, sys.argv[5])" \
    "$start" "$first" "$saved" "$end" "$(cpu)" >> "$rows"
}
one() {
  case $1 in
    0) curl_run /dev/null null ;;
    1) curl_run "$out" file+sync ;;
    2) imgguard_run /dev/null null ;;
    3) imgguard_run "$out" file+fsync ;;
    4) docker_run ;;
  esac
}
for round in $(seq 1 "$rounds"); do
  # A rotating order: a machine that drifts favours no client.
  for i in 0 1 2 3 4; do
    one $(((i + round) % 5))
  done
  echo "round $round of $rounds done" >&2
done
rm -f "$out"

python3 - "$rows" "$mib" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    name, *vals = line.split()
    if len(vals) != 5:
        sys.exit(f"save-phases: an incomplete measurement: {line.strip()!r}")
    runs.setdefault(name, []).append([float(v) for v in vals])
if any(v[1] < 0 for v in runs.get("docker→file+sync", [])):
    sys.exit("save-phases: docker's first byte was seen after its save ended; "
             "the image is too small for the 2 ms poll (use a larger SIZE_MIB)")
def med(vals, i):
    return f"{statistics.median(v[i] for v in vals):.2f}"
n = len(next(iter(runs.values())))
print(f"{sys.argv[2]} MiB save, medians of {n} rounds (seconds):")
print()
print("| client | wait (daemon) | stream | sync | total | after the first byte | CPU user+sys |")
print("|---|---|---|---|---|---|---|")
for name in sorted(runs):
    v = runs[name]
    part = f"{statistics.median(x[3] - x[0] for x in v):.2f}"
    print(f"| {name} | {med(v, 0)} | {med(v, 1)} | {med(v, 2)} | {med(v, 3)} | {part} | {med(v, 4)} |")
ig, dk = runs["imgguard→file+fsync"], runs["docker→file+sync"]
whole = [a[3] / b[3] for a, b in zip(ig, dk)]
part = [(a[3] - a[0]) / (b[3] - b[0]) for a, b in zip(ig, dk)]
print()
print("imgguard save -o F vs docker save -o F && sync F, paired by round (median of the ratios):")
print(f"  whole save:           {statistics.median(whole):.2f}x   (rounds: {' '.join(f'{r:.2f}' for r in whole)})")
print(f"  after the first byte: {statistics.median(part):.2f}x   (rounds: {' '.join(f'{r:.2f}' for r in part)})")
PY
