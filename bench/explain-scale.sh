#!/usr/bin/env bash
# imgguard explain at scale: a daemon with ~2,000 images (half of them dangling) and 300
# containers (created, not started), `imgguard explain` vs `docker images -f dangling=true`.
# Prints median wall times, their ratio (target <= 1.5) and the number of API calls imgguard
# made (counted as connections to the socket: imgguard opens one per call), which must not grow
# with the number of images. Cleans up everything it made (by label) afterwards. Run by hand.
#
#   bash bench/explain-scale.sh [IMAGES] [CONTAINERS]     (default 2000 300)
set -euo pipefail
images=${1:-2000}
containers=${2:-300}
root=$(cd "$(dirname "$0")/.." && pwd)
for tool in hyperfine strace python3; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install $tool)" >&2; exit 2; }
done
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
bin="$root/target/release/imgguard"
run="igbench$$"
work=$(mktemp -d)
export IMGGUARD_HOME="$work/home"

cleanup() {
  echo "cleaning up (label imgguard.bench=$run)"
  docker ps -aq --filter "label=imgguard.bench=$run" | xargs -r docker rm >/dev/null 2>&1 || true
  docker images --filter "label=imgguard.bench=$run" --format '{{.Repository}}:{{.Tag}}' \
    | grep -v '<none>' | xargs -r docker rmi >/dev/null 2>&1 || true
  docker images -q --filter "label=imgguard.bench=$run" | xargs -r docker rmi >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "making $images images in one archive (one shared layer, a config each)"
python3 - "$work/images.tar" "$images" "$run" <<'PY'
import hashlib, io, json, sys, tarfile
out, n, run = sys.argv[1], int(sys.argv[2]), sys.argv[3]
layer = io.BytesIO()
with tarfile.open(fileobj=layer, mode="w") as t:
    data = b"imgguard bench\n"
    info = tarfile.TarInfo("bench.txt"); info.size = len(data)
    t.addfile(info, io.BytesIO(data))
layer = layer.getvalue()
diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
manifest = []
with tarfile.open(out, "w") as t:
    def add(name, data):
        info = tarfile.TarInfo(name); info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    add("layer/layer.tar", layer)
    for i in range(n):
        config = json.dumps({
            "architecture": "amd64", "os": "linux",
            "created": "2026-01-01T00:00:00Z",
            "config": {"Labels": {"imgguard.bench": run, "n": str(i)}, "Cmd": ["/x"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": "2026-01-01T00:00:00Z", "created_by": "bench"}],
        }, sort_keys=True).encode()
        name = hashlib.sha256(config).hexdigest() + ".json"
        add(name, config)
        # Every other image is tagged; the rest arrive as <none>:<none>.
        tags = [f"{run}/img:{i}"] if i % 2 == 0 else None
        manifest.append({"Config": name, "RepoTags": tags, "Layers": ["layer/layer.tar"]})
    add("manifest.json", json.dumps(manifest).encode())
PY
time docker load -q -i "$work/images.tar" >/dev/null
some=$(docker images -q --filter "label=imgguard.bench=$run" | head -n 1)
echo "creating $containers containers"
for _ in $(seq 1 "$containers"); do
  docker create -q --label "imgguard.bench=$run" "$some" >/dev/null
done
echo "daemon now has $(docker images -aq | wc -l) images, $(docker ps -aq | wc -l) containers"

"$bin" explain >/dev/null   # create nothing, warm caches
calls() { strace -f -qq -e trace=connect "$@" 2>&1 >/dev/null | grep -c 'docker.sock' || true; }
hyperfine -N --warmup 2 --runs 15 --export-json "$work/h.json" \
  -n "docker images -f dangling=true" "docker images -f dangling=true" \
  -n "imgguard explain" "$bin explain" \
  -n "imgguard explain --format json" "$bin explain --format json" >/dev/null
python3 - "$work/h.json" <<'PY'
import json, sys
r = {x["command"]: x["median"] * 1000 for x in json.load(open(sys.argv[1]))["results"]}
d = r["docker images -f dangling=true"]
for n, ms in r.items():
    print(f"{n:36} {ms:9.1f} ms   ratio {ms / d:5.2f}")
PY
echo "API calls: imgguard explain $(calls "$bin" explain), docker images -f dangling=true $(calls docker images -f dangling=true)"
