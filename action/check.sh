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
status=0
imgguard check --format github --fail-on "${INPUT_FAIL_ON:-warning}" -- "${paths[@]}" || status=$?
case "$status" in
  0) echo "imgguard check: nothing at or above ${INPUT_FAIL_ON:-warning}" ;;
  1) printf '::error title=imgguard check::findings at or above %s (annotated above); fix them, mark the line with an imgguard ignore comment, or set fail-on\n' "${INPUT_FAIL_ON:-warning}" ;;
  *) printf '::error title=imgguard check::imgguard check failed (exit %s, its message is above)\n' "$status" ;;
esac
exit "$status"
