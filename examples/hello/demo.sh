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
label="org.opencontainers.image.title=imgguard hello example"
echo "## 4. what is left: the old image's build-cache parent, kept for a 2 s grace (a build"
echo "##    running beside may still use it), and explained:"
"${imgguard[@]}" explain --label "$label"
echo
echo "## 5. once the grace is over, a prune of this example's images frees it (never forced;"
echo "##    the next imgguard build would free it too):"
sleep 2
"${imgguard[@]}" prune --label "$label" --min-age 0
echo
echo "## 6. no <none> image was left behind by these builds:"
docker images --filter "label=$label"
