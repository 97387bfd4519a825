#!/usr/bin/env bash
# Two imgguard binaries against each other and against docker, on a fully cached FROM scratch
# rebuild: rounds of (docker, A, B) in an order that rotates every round, so that a loaded or
# drifting machine hits all three alike. Prints each one's median extra time over docker and the
# median of the per-round differences B − A. Run by hand; not part of the tests.
#
#   bash bench/build-overhead-ab.sh OLD_BINARY NEW_BINARY [ROUNDS]     (default 60 rounds)
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 OLD_BINARY NEW_BINARY [ROUNDS]" >&2; exit 2; }
a=$(realpath "$1") b=$(realpath "$2") rounds=${3:-60}
work=$(mktemp -d)
tag="imgguard-bench-ab-$$:cached"
trap 'docker rmi "$tag" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
mkdir -p "$work/ctx" "$work/home-a" "$work/home-b"
printf 'FROM scratch\nLABEL imgguard.bench=%s\nCOPY f /f\n' "$$" > "$work/ctx/Dockerfile"
echo bench > "$work/ctx/f"
for bin in "$a" "$b"; do
  home="$work/home-a"; [ "$bin" = "$b" ] && home="$work/home-b"
  IMGGUARD_HOME=$home "$bin" build -q -t "$tag" "$work/ctx" >/dev/null 2>&1
  IMGGUARD_HOME=$home "$bin" build -q -t "$tag" "$work/ctx" >/dev/null 2>&1
done
python3 - "$a" "$b" "$tag" "$work" "$rounds" <<'PY'
import os, statistics, subprocess, sys, time
a, b, tag, work, rounds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
ctx = f"{work}/ctx"
cmds = {
    "docker": (["docker", "build", "-q", "-t", tag, ctx], None),
    "A": ([a, "build", "-q", "-t", tag, ctx], f"{work}/home-a"),
    "B": ([b, "build", "-q", "-t", tag, ctx], f"{work}/home-b"),
}
def once(name):
    argv, home = cmds[name]
    env = dict(os.environ)
    if home:
        env["IMGGUARD_HOME"] = home
    t = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env)
    return (time.perf_counter() - t) * 1000
orders = [["docker", "A", "B"], ["A", "B", "docker"], ["B", "docker", "A"]]
rows = []
for i in range(rounds):
    r = {n: once(n) for n in orders[i % 3]}
    rows.append(r)
med = lambda xs: statistics.median(xs)
d = med([r["docker"] for r in rows])
print(f"rounds: {rounds}")
print(f"docker build (median)        {d:8.1f} ms")
for n, path in (("A", a), ("B", b)):
    over = med([r[n] - r["docker"] for r in rows])
    print(f"{n} extra over docker (median) {over:+8.1f} ms   ratio {med([r[n] / r['docker'] for r in rows]):.3f}   {path}")
print(f"B - A (median of rounds)     {med([r['B'] - r['A'] for r in rows]):+8.1f} ms")
PY
