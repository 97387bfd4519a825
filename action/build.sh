#!/usr/bin/env bash
# Step "build": `imgguard build` with the inputs turned into docker build argv. imgguard itself
# writes the outputs (image-id, previous-image-ids, removed-image-ids, kept-image-ids) to
# $GITHUB_OUTPUT, the job summary and the annotations for kept images. A failed build exits
# with docker's code, docker's own message above.
set -euo pipefail
# shellcheck source=action/lib.sh
source "$GITHUB_ACTION_PATH/action/lib.sh"

require_bool "$INPUT_KEEP_PREVIOUS" keep-previous
read_tags "$INPUT_TAGS"

args=(build)
if [ "$INPUT_KEEP_PREVIOUS" = true ]; then args+=(--keep-previous); fi
for t in "${TAGS[@]}"; do args+=(--tag "$t"); done
if [ -n "${INPUT_FILE:-}" ]; then args+=(--file "$INPUT_FILE"); fi
if [ -n "${INPUT_TARGET:-}" ]; then args+=(--target "$INPUT_TARGET"); fi
read_lines "${INPUT_BUILD_ARGS:-}"
for a in ${LINES_OUT[@]+"${LINES_OUT[@]}"}; do args+=(--build-arg "$a"); done
read_lines "${INPUT_LABELS:-}"
for l in ${LINES_OUT[@]+"${LINES_OUT[@]}"}; do args+=(--label "$l"); done
read_lines "${INPUT_EXTRA_ARGS:-}"
args+=(${LINES_OUT[@]+"${LINES_OUT[@]}"})
args+=("${INPUT_CONTEXT:-.}")

status=0
imgguard "${args[@]}" || status=$?
if [ "$status" -ne 0 ]; then
  printf "::error title=imgguard build::the build failed with exit code %s (docker's or imgguard's message is above)\n" "$status"
  exit "$status"
fi
