#!/bin/sh
# Benchmark for `imgguard check`, run by hand:
#
#   bench/check-scale.sh [FILES]        # default 50000
#   BENCH_KEEP=1 bench/check-scale.sh   # keep the generated repository (its path is printed)
#
# Generates a git repository of about FILES files of mixed kinds (shell scripts, shebang
# scripts, Makefiles, Dockerfiles, workflows, .gitlab-ci.yml, justfiles, Python, Markdown,
# JSON, ...; a few with findings) and measures, with hyperfine:
#   1. `imgguard check` (release build) against `rg -c docker` on the same tree: median wall
#      ratio, target <= 2;
#   2. a one-file `imgguard check --pre-push` in that repository: median, target <= 50 ms.
# Needs ripgrep, hyperfine (Debian: apt-get install ripgrep hyperfine), git, python3, cargo.
set -eu

files=${1:-50000}
root=$(cd "$(dirname "$0")/.." && pwd)

for tool in rg hyperfine git python3 cargo; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "bench: $tool is missing (apt-get install ripgrep hyperfine git python3)" >&2
        exit 2
    fi
done

cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin="$root/target/release/imgguard"

work=$(mktemp -d)
if [ -z "${BENCH_KEEP:-}" ]; then
    trap 'rm -rf "$work"' EXIT
fi
repo="$work/repo"
mkdir -p "$repo"

# One file per iteration, 100 per directory; kinds cycle so every kind is well represented.
python3 - "$repo" "$files" <<'PY'
import os, sys
root, total = sys.argv[1], int(sys.argv[2])
filler = "".join(f"# line {i}: configuration and notes that mention nothing in particular\n" for i in range(25))
kinds = [
    ("sh", lambda i: f"#!/bin/sh\nset -eu\n{filler}docker build --pull .\ndocker save -o out-{i}.tar app:{i}\nimg=app:{i}\ndocker rmi \"$img\" || true\n"),
    ("py", lambda i: f"import os\n{filler}print('docker is only mentioned here {i}')\n"),
    ("md", lambda i: f"# Notes {i}\n{filler}Run `docker rmi -f x` only by hand.\n"),
    ("mk", lambda i: f"IMG := app:{i}\n{filler}all:\n\tdocker run --rm $(IMG) true\n\t@echo done\n"),
    ("yml", lambda i: f"name: x{i}\n{filler}steps:\n  - run: docker ps\n"),
    ("Dockerfile", lambda i: f"FROM alpine:3\n{filler}RUN apk add --no-cache curl \\\n    && echo {i}\n"),
    ("rs", lambda i: f"fn main() {{\n{filler.replace('#', '//')}    println!(\"docker {i}\");\n}}\n"),
    ("txt", lambda i: f"plain text {i}\n{filler}"),
    ("", lambda i: f"#!/bin/bash\n{filler}docker image ls --format '{{{{.Repository}}}}:{{{{.Tag}}}}'\n"),
    ("json", lambda i: "{\"a\": %d, \"docker\": true}\n" % i),
]
for i in range(total):
    d = os.path.join(root, f"pkg{i // 1000}", f"mod{(i // 100) % 10}")
    os.makedirs(d, exist_ok=True)
    ext, body = kinds[i % len(kinds)]
    if ext == "Dockerfile":
        name = f"Dockerfile.{i}"
    elif ext == "":
        name = f"tool{i}"
    else:
        name = f"f{i}.{ext}"
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(body(i))
    if ext == "":
        os.chmod(path, 0o755)
wf = os.path.join(root, ".github", "workflows")
os.makedirs(wf, exist_ok=True)
for i in range(20):
    with open(os.path.join(wf, f"ci{i}.yml"), "w") as f:
        f.write(f"on: push\njobs:\n  b:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - run: |\n          docker build --pull .\n          echo {i}\n")
with open(os.path.join(root, ".gitlab-ci.yml"), "w") as f:
    f.write("build:\n  script:\n    - docker build --pull .\n")
with open(os.path.join(root, "justfile"), "w") as f:
    f.write("test:\n    docker run --rm app:1 true\n")
# The few files with findings, one per rule.
bad = {
    "pkg0/release.sh": "#!/bin/sh\ndocker save -o all.tar $(docker images -q)\n",
    "pkg1/Makefile": "clean:\n\tdocker rmi -f $(IMG)\n",
    "pkg2/Jenkinsfile": "sh 'docker build -t app:1 .'\n",
    "pkg3/prune.sh": "docker system prune -af\n",
}
for rel, text in bad.items():
    with open(os.path.join(root, rel), "w") as f:
        f.write(text)
PY

cd "$repo"
git init -q -b main
# No background gc or maintenance while timing (nor while the directory is removed).
git config gc.auto 0
git config maintenance.auto false
git -c user.name=bench -c user.email=bench@example.com add -A
git -c user.name=bench -c user.email=bench@example.com commit -q -m tree
count=$(git ls-files | wc -l)
echo "bench: $count files in $repo"

# Sanity: the planted findings are found.
"$bin" check --format json . > "$work/findings.json" || true
python3 - "$work/findings.json" <<'PY'
import json, sys
found = sorted({f["rule"] for f in json.load(open(sys.argv[1]))})
print("bench: findings by rule:", found)
assert found == ["IG001", "IG002", "IG003", "IG004"], found
PY

hyperfine --warmup 2 --runs 10 --ignore-failure --export-json "$work/scan.json" \
    --command-name "imgguard check" "$bin check --format json . > /dev/null" \
    --command-name "rg -c docker" "rg -c docker . > /dev/null"

# A one-file push: a new commit changing one script, as git's pre-push stdin gives it.
old=$(git rev-parse HEAD)
printf 'docker rmi app:1\n' >> pkg0/mod0/f0.sh
git -c user.name=bench -c user.email=bench@example.com commit -q -am "one file"
new=$(git rev-parse HEAD)
printf 'refs/heads/main %s refs/heads/main %s\n' "$new" "$old" > "$work/refs"
hyperfine --warmup 3 --runs 30 --export-json "$work/push.json" \
    --command-name "check --pre-push (1 file)" "$bin check --pre-push --remote origin < $work/refs"

python3 - "$work/scan.json" "$work/push.json" <<'PY'
import json, sys
scan = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
push = json.load(open(sys.argv[2]))["results"][0]
ours, rg = scan["imgguard check"]["median"], scan["rg -c docker"]["median"]
ratio = ours / rg
print(f"\nimgguard check: median {ours * 1000:.0f} ms; rg -c docker: median {rg * 1000:.0f} ms")
print(f"ratio {ratio:.2f} (target <= 2): {'ok' if ratio <= 2 else 'MISSED'}")
ms = push["median"] * 1000
print(f"check --pre-push, one file: median {ms:.1f} ms (target <= 50 ms): {'ok' if ms <= 50 else 'MISSED'}")
# CPU time does not depend on what else the machine is doing.
cpu = lambda r: r["user"] + r["system"]
print(f"CPU (user+sys): imgguard {cpu(scan['imgguard check']) * 1000:.0f} ms, rg {cpu(scan['rg -c docker']) * 1000:.0f} ms, "
      f"ratio {cpu(scan['imgguard check']) / cpu(scan['rg -c docker']):.2f}; pre-push {cpu(push) * 1000:.1f} ms")
PY
if [ -n "${BENCH_KEEP:-}" ]; then
    echo "bench: kept $repo"
fi
