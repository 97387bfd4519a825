#!/usr/bin/env bash
# Step "check": `imgguard check` on the workspace (or the given paths) before building.
# Findings at or above fail-on fail the step (exit 1), errors exit 2; findings are printed as
# workflow annotations, so they show on the files in the pull request.
set -euo pipefail
# shellcheck source=action/lib.sh
source "$GITHUB_ACTION_PATH/action/lib.sh"

read_lines "${INPUT_CHECK_PATHS:-.}"
paths=("${LINES_OUT[@]}")
[ "${#paths[@]}" -gt 0 ] || paths=(.)
imgguard check --format github --fail-on "${INPUT_FAIL_ON:-warning}" -- "${paths[@]}"
