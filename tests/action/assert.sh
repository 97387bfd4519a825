# shellcheck shell=bash
# Assertions for the action's test workflows (sourced by their steps). Each failure says what
# was expected and what came, and exits 1 so the step and act fail.

# expect_eq WHAT EXPECTED ACTUAL
expect_eq() {
  if [ "$2" != "$3" ]; then
    printf 'igt-assert FAILED: %s\n  expected: %s\n  actual:   %s\n' "$1" "$2" "$3" >&2
    exit 1
  fi
  printf 'igt-assert ok: %s\n' "$1"
}

# expect_match WHAT EXTENDED-REGEX ACTUAL
expect_match() {
  if ! [[ "$3" =~ $2 ]]; then
    printf 'igt-assert FAILED: %s\n  expected to match: %s\n  actual: %s\n' "$1" "$2" "$3" >&2
    exit 1
  fi
  printf 'igt-assert ok: %s\n' "$1"
}

# The image ID a reference points at in the daemon, or "none".
id_of() {
  local id
  if id="$(docker image inspect --format '{{.Id}}' "$1" 2>/dev/null)"; then
    echo "$id"
  else
    echo none
  fi
}

# Writes a FROM scratch build context in directory $1 with our label and content $2.
make_context() {
  mkdir -p "$1"
  # shellcheck disable=SC2016 # $NOTE is for docker, in the Dockerfile
  printf 'FROM scratch\nLABEL imgguard.test=%s\nARG NOTE=none\nLABEL note=$NOTE\nCOPY content /content\n' \
    "$RUN_ID" >"$1/Dockerfile"
  printf '%s\n' "$2" >"$1/content"
}
