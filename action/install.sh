#!/usr/bin/env bash
# Step "install imgguard": build the action's own checkout with cargo, unless the cache step
# restored the binary already, and put it on PATH for the following steps.
set -euo pipefail
# shellcheck source=action/lib.sh
source "$GITHUB_ACTION_PATH/action/lib.sh"

if [ -x "$ROOT/bin/imgguard" ]; then
  echo "restored from the cache: $ROOT/bin/imgguard"
else
  cargo install --locked --path "$GITHUB_ACTION_PATH" --root "$ROOT"
fi
echo "$ROOT/bin" >>"$GITHUB_PATH"
