#!/usr/bin/env bash
# Every performance goal of imgguard, measured side by side in one run on this machine, as one
# Markdown table (the one in the README's "Benchmarks" section). Runs, in turn:
#   bench/ledger-scale.sh          history / explain / prune --dry-run / a build's ledger work,
#                                  with a 1,000,000-event ledger made by `imgguard ledger import`
#   bench/build-overhead.sh 120    120 paired, interleaved cached builds: imgguard vs docker
#   bench/save-load.sh 1024        1 GiB save vs `docker save -o F && sync F` (5 interleaved
#                                  rounds), peak RSS
# and prints each one's full output, then the table. Run by hand on a quiet machine (other
# builds running at the same time move every figure); not part of the tests. Takes ~20 minutes.
#
#   bash bench/goals.sh
set -euo pipefail
root=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d /tmp/imgguard-goals.XXXXXX)
trap 'rm -rf "$out"' EXIT

load() { cut -d' ' -f1-3 /proc/loadavg; }
# The CPU time the hypervisor gave to other guests (steal) over the whole run: on a VM whose host
# is busy, every figure here moves with it (a session with 11-20 % steal measured docker's own
# cached build at 88 ms where earlier ones measured ~37 ms, and the build's overhead in ms and the saves' spread
# grew with it), so the table says what the machine was like.
grep '^cpu ' /proc/stat > "$out/stat-start"
echo "== load average at start: $(load)"
echo "== bench/ledger-scale.sh"
bash "$root/ledger-scale.sh" | tee "$out/ledger"
# Each bench starts on a settled machine: the 1,000,000-event ledger just written (~700 MiB) is
# still being written back for tens of seconds after its import, and that writeback slowed the
# builds measured next (+6.0 ms against +4.0 ms a few minutes earlier).
settle() { sync; sleep 20; }
settle
echo "== bench/build-overhead.sh 120"
bash "$root/build-overhead.sh" 120 | tee "$out/build"
settle
echo "== RUNS=5 bench/save-load.sh 1024"
RUNS=5 bash "$root/save-load.sh" 1024 | tee "$out/save"
echo "== load average at end: $(load)"
grep '^cpu ' /proc/stat > "$out/stat-end"

python3 - "$out" <<'PY'
import re, sys
d = sys.argv[1]
ledger = open(f"{d}/ledger").read()
build = open(f"{d}/build").read()
save = open(f"{d}/save").read()
rows = []
# ledger-scale.sh rows: | after | measure | got | goal | met/MISSED |
for line in ledger.splitlines():
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cells) == 5 and cells[0] == "after" and cells[3] != "-":
        rows.append((cells[1] + " (1,000,000 events)", cells[2], cells[3], cells[4]))
m = re.search(r"median overhead: ([+-][\d.]+) ms\s+ratio imgguard/docker: ([\d.]+)", build)
dm = re.search(r"interleaved pairs: docker median ([\d.]+) ms", build)
if m:
    over = float(m.group(1))
    own = f"; docker build itself {float(dm.group(1)):.0f} ms" if dm else ""
    rows.append(("build, cached no-op, vs docker build (paired)", f"{over:+.1f} ms (ratio {m.group(2)}{own})",
                 "<= +5 ms", "met" if over <= 5 else "MISSED"))
else:
    rows.append(("build vs docker build", "no result", "<= +5 ms", "MISSED"))
sv = re.search(r"\| 1024 MiB[^\n]*\| save \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|", save)
durable = re.search(r"\| save vs `docker save -o F && sync F` \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|", save)
if sv and durable:
    ratio, rss = float(durable.group(3)), float(sv.group(5))
    rows.append(("save 1 GiB vs `docker save -o F && sync F`",
                 f"{durable.group(2)} s vs {durable.group(1)} s: {ratio:.2f}x, {rss:.1f} MiB",
                 "<= 1.0x, <= 16 MiB", "met" if ratio <= 1.0 and rss <= 16 else "MISSED"))
    rows.append(("save 1 GiB vs `docker save -o F` (not durable)", f"{float(sv.group(3)):.2f}x", "(for reference)", ""))
else:
    rows.append(("save 1 GiB", "no result", "<= 1.0x, <= 16 MiB", "MISSED"))
print()
print("| measure | this run | goal | |")
print("|---|---|---|---|")
for r in rows:
    print("| " + " | ".join(r) + " |")
missed = [r[0] for r in rows if r[3] == "MISSED"]
# /proc/stat's cpu line: user nice system idle iowait irq softirq steal ...
a, b = (list(map(int, open(f"{d}/stat-{w}").read().split()[1:9])) for w in ("start", "end"))
delta = [y - x for x, y in zip(a, b)]
print()
print(f"CPU steal over the run: {100 * delta[7] / max(sum(delta), 1):.1f} % (a quiet host: ~0 %)")
print()
print("every goal met" if not missed else "MISSED: " + "; ".join(missed))
PY
