#!/usr/bin/env bash
# Builds hello-imgguard:demo twice with different content, the way a plain `docker build` would
# leave a <none>:<none> image behind, and shows imgguard removing it and recording the lineage.
#
#   bash examples/hello/demo.sh            # uses `cargo run`; or IMGGUARD=/path/to/imgguard
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if [ -n "${IMGGUARD:-}" ]; then
  imgguard=("$IMGGUARD")
else
  cargo build --quiet --manifest-path "$root/Cargo.toml"
  imgguard=("$root/target/debug/imgguard")
fi
tag=hello-imgguard:demo

echo "## 1. first build of $tag"
"${imgguard[@]}" build -q -t "$tag" --build-arg MESSAGE="one $(date +%s%N)" "$here"
echo
echo "## 2. rebuild with different content: the tag moves, the old image would dangle"
"${imgguard[@]}" build -q -t "$tag" --build-arg MESSAGE="two $(date +%s%N)" "$here"
echo
echo "## 3. the lineage imgguard recorded (build-arg names only, never values)"
"${imgguard[@]}" history "$tag" | head -n 4
echo
echo "## 4. no <none> image was left behind by these builds:"
docker images --filter "label=org.opencontainers.image.title=imgguard hello example"
