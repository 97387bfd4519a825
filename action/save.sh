#!/usr/bin/env bash
# Step "save": `imgguard save` of the built tags, by name (an archive that loads with its
# names, never `<none>`), and its sha256 as the archive-sha256 output.
set -euo pipefail
# shellcheck source=action/lib.sh
source "$GITHUB_ACTION_PATH/action/lib.sh"

read_tags "$INPUT_TAGS"
status=0
imgguard save -o "$INPUT_SAVE" "${TAGS[@]}" || status=$?
if [ "$status" -ne 0 ]; then
  printf '::error title=imgguard save::saving to %s failed (exit %s, its message is above)\n' "$INPUT_SAVE" "$status"
  exit "$status"
fi
sum="$(sha256_of "$INPUT_SAVE")"
echo "archive $INPUT_SAVE sha256 $sum"
echo "archive-sha256=$sum" >>"$GITHUB_OUTPUT"
