#!/usr/bin/env bash
# imgguard build vs docker build on a fully cached FROM scratch rebuild: median extra time and
# ratio (hyperfine, many paired runs). Run by hand; not part of the tests.
#
#   bash bench/build-overhead.sh [RUNS]        (default 60 runs each)
#   BEFORE_BIN=/path/to/old/imgguard bash bench/build-overhead.sh
#                                               (also an older binary, in the same interleaved
#                                                rounds, with a ledger of its own)
#
# Also times the pieces of imgguard's own work: process start (`--version`), and `history` (opens
# the ledger, runs one query), so the extra time can be attributed.
set -euo pipefail
runs=${1:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install hyperfine)" >&2; exit 2; }
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin="$root/target/release/imgguard"

work=$(mktemp -d)
export IMGGUARD_HOME="$work/home"
tag="imgguard-bench-$$:cached"
trap 'docker rmi "$tag" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
mkdir -p "$work/ctx"
printf 'FROM scratch\nLABEL imgguard.bench=%s\nCOPY f /f\n' "$$" > "$work/ctx/Dockerfile"
echo bench > "$work/ctx/f"
# Warm the cache and the ledger.
"$bin" build -q -t "$tag" "$work/ctx" >/dev/null 2>&1
"$bin" build -q -t "$tag" "$work/ctx" >/dev/null 2>&1
before_bin=${BEFORE_BIN:-}
if [ -n "$before_bin" ]; then
  IMGGUARD_HOME="$work/before" "$before_bin" build -q -t "$tag" "$work/ctx" >/dev/null 2>&1
fi

hyperfine -N --warmup 5 --runs "$runs" --export-json "$work/h.json" \
  -n docker "docker build -q -t $tag $work/ctx" \
  -n imgguard "$bin build -q -t $tag $work/ctx" \
  -n "imgguard --version (process start)" "$bin --version" \
  -n "imgguard history (ledger open + query)" "$bin history $tag" >/dev/null 2>&1

# Paired runs, interleaved (docker, imgguard, docker, …) so that drift in the machine's speed
# hits both alike; the overhead is the median of the per-pair differences.
python3 - "$work/h.json" "$runs" "$bin" "$tag" "$work/ctx" "$before_bin" "$work/before" <<'PY'
import json, os, statistics, subprocess, sys, time
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
runs, bin_, tag, ctx, before, before_home = int(sys.argv[2]), *sys.argv[3:]
print(f"{'command (hyperfine, not interleaved)':40} {'median ms':>10} {'min ms':>8}")
for n, x in r.items():
    print(f"{n:40} {x['median']*1000:10.2f} {x['min']*1000:8.2f}")
def once(cmd, env=None):
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env)
    return (time.perf_counter() - t) * 1000
pairs, old = [], []
old_env = dict(os.environ, IMGGUARD_HOME=before_home)
for _ in range(runs):
    d = once(["docker", "build", "-q", "-t", tag, ctx])
    i = once([bin_, "build", "-q", "-t", tag, ctx])
    pairs.append((d, i))
    if before:
        d = once(["docker", "build", "-q", "-t", tag, ctx])
        b = once([before, "build", "-q", "-t", tag, ctx], old_env)
        old.append((d, b))
if old:
    bm = statistics.median(p[1] for p in old)
    bd = statistics.median(p[0] for p in old)
    bdiff = statistics.median(p[1] - p[0] for p in old)
    print()
    print(f"{runs} interleaved pairs, BEFORE_BIN: docker median {bd:.2f} ms, imgguard median {bm:.2f} ms")
    print(f"median overhead before: {bdiff:+.2f} ms   ratio: {bm / bd:.3f}")
dm = statistics.median(p[0] for p in pairs)
im = statistics.median(p[1] for p in pairs)
diff = statistics.median(p[1] - p[0] for p in pairs)
print()
print(f"{runs} interleaved pairs: docker median {dm:.2f} ms, imgguard median {im:.2f} ms")
print(f"median overhead: {diff:+.2f} ms   ratio imgguard/docker: {im / dm:.3f}   (target: <= 5 ms)")
PY
