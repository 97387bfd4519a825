#!/usr/bin/env bash
# imgguard build vs docker build on a fully cached FROM scratch rebuild: median extra time and
# ratio (hyperfine, many paired runs). Run by hand; not part of the tests.
#
#   bash bench/build-overhead.sh [RUNS]        (default 60 runs each)
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

hyperfine -N --warmup 5 --runs "$runs" --export-json "$work/h.json" \
  -n docker "docker build -q -t $tag $work/ctx" \
  -n imgguard "$bin build -q -t $tag $work/ctx" \
  -n "imgguard --version (process start)" "$bin --version" \
  -n "imgguard history (ledger open + query)" "$bin history $tag" >/dev/null 2>&1

python3 - "$work/h.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
ms = lambda n: r[n]["median"] * 1000
d, i = ms("docker"), ms("imgguard")
print(f"{'command':40} {'median ms':>10} {'min ms':>8}")
for n, x in r.items():
    print(f"{n:40} {x['median']*1000:10.2f} {x['min']*1000:8.2f}")
print()
print(f"median overhead: {i - d:+.2f} ms   ratio imgguard/docker: {i / d:.3f}   (target: <= 5 ms)")
PY
