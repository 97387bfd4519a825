#!/usr/bin/env bash
# Step "find imgguard": use the imgguard on PATH when there is one (of the requested version,
# if one was requested); otherwise say where the action's own checkout will be built and
# cached. Nothing is downloaded from anywhere. Outputs: found (true/false), root, key.
set -euo pipefail
# shellcheck source=action/lib.sh
source "$GITHUB_ACTION_PATH/action/lib.sh"

require_bool "$INPUT_CHECK" check
require_bool "$INPUT_KEEP_PREVIOUS" keep-previous
want="${INPUT_IMGGUARD_VERSION#v}"
if command -v imgguard >/dev/null 2>&1; then
  have="$(imgguard --version | awk '{print $2}')"
  if [ -z "$want" ] || [ "$have" = "$want" ]; then
    echo "using $(command -v imgguard) (imgguard $have)"
    echo "found=true" >>"$GITHUB_OUTPUT"
    exit 0
  fi
  echo "imgguard $have is on PATH but $want was asked for: building the action's own checkout"
fi

command -v cargo >/dev/null 2>&1 ||
  fail "imgguard is not on PATH and cargo is not installed to build it: install a Rust toolchain on the runner (rustup), or put imgguard on PATH"

ours="$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$GITHUB_ACTION_PATH/Cargo.toml" | head -n 1)"
if [ -n "$want" ] && [ "$want" != "$ours" ]; then
  fail "imgguard-version $want was asked for, but this action's checkout is imgguard $ours: pin the action to the ref of that release (the action builds only its own source, it downloads nothing)"
fi

# The cache key: the action's ref and the runner's OS and architecture, plus a hash of the
# sources, so a moving ref (a branch) or a local `uses: ./` never reuses a stale binary.
list="$(mktemp)"
(cd "$GITHUB_ACTION_PATH" && find Cargo.toml Cargo.lock src -type f | LC_ALL=C sort) >"$list"
sums="$(mktemp)"
while IFS= read -r f; do
  printf '%s  %s\n' "$(sha256_of "$GITHUB_ACTION_PATH/$f")" "$f"
done <"$list" >"$sums"
src_hash="$(sha256_of "$sums" | cut -c1-16)"
rm -f "$list" "$sums"
ref="${ACTION_REF:-local}"
ref="${ref//[^A-Za-z0-9._-]/_}"
key="imgguard-${RUNNER_OS:-os}-${RUNNER_ARCH:-arch}-${ref}-${src_hash}"
root="${RUNNER_TOOL_CACHE:-${RUNNER_TEMP:-/tmp}}/imgguard/${key}"
echo "imgguard $ours will be built from the action's checkout into $root (cache key $key)"
{
  echo "found=false"
  echo "root=$root"
  echo "key=$key"
} >>"$GITHUB_OUTPUT"
