#!/usr/bin/env bash
# The README's test command: passes on a fresh Debian 12 machine by itself (run as root, or with
# sudo for the installs).
#   1. installs what the tests need when it is missing (apt-get: gcc, libc6-dev, git, docker.io,
#      the shellcheck tool, podman, runc, openssh-server, openssl, script, man, postgresql; from PyPI:
#      pre-commit >= 3.2), doing nothing when everything is present;
#   2. starts the services the tests need: dockerd when `docker info` fails, and a Podman API
#      service (`podman system service`) on a socket in a temporary directory, with its own
#      storage there and the containers.conf Podman 4.3 needs to start containers;
#   3. runs `cargo test --locked` against Docker (everything), then the daemon tests again with
#      DOCKER_HOST pointing at Podman (IMGGUARD_TEST_ENGINE=podman);
#   4. stops what it started and removes the temporary directory.
# Extra arguments go to both cargo test runs (a test-name filter, for example).
# Usage: bash tests/run.sh [TESTNAME…]
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== tests: %s\n' "$*"; }
die() {
  printf '\n!! TESTS FAILED: %s\n' "$*" >&2
  exit 1
}

# --- 1. tools ---------------------------------------------------------------------------------
need_apt=()
want() { command -v "$1" >/dev/null 2>&1 || need_apt+=("$2"); }
want gcc gcc
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || [ -e /usr/lib/aarch64-linux-gnu/libc.a ] ||
  need_apt+=(libc6-dev)
want git git
want docker docker.io
want shellcheck shellcheck
want python3 python3
want podman podman
want runc runc
want /usr/sbin/sshd openssh-server
want ssh openssh-client
want openssl openssl
want script bsdutils
want man man-db
want pg_config postgresql  # the fleet ledger's throwaway cluster (initdb, pg_ctl)
python3 -m pip --version >/dev/null 2>&1 || need_apt+=(python3-pip)
if [ ${#need_apt[@]} -gt 0 ]; then
  say "installing with apt-get: ${need_apt[*]}"
  [ "$(id -u)" = 0 ] || die "run as root (or install ${need_apt[*]} yourself)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    "${need_apt[@]}" >/dev/null || die "apt-get install ${need_apt[*]} failed"
fi
# pre-commit >= 3.2: Debian's 3.0 lacks the pre-commit/pre-push stage names the hooks use.
precommit_ok() {
  command -v pre-commit >/dev/null 2>&1 &&
    pre-commit --version | awk '{split($2, v, "."); exit !(v[1] > 3 || (v[1] == 3 && v[2] >= 2))}'
}
if ! precommit_ok; then
  say "installing pre-commit >= 3.2 from PyPI"
  python3 -m pip install --quiet --disable-pip-version-check 'pre-commit>=3.2' ||
    python3 -m pip install --quiet --disable-pip-version-check --break-system-packages \
      'pre-commit>=3.2' || die "pip install pre-commit failed"
  hash -r
  precommit_ok || die "pre-commit >= 3.2 is not on PATH after installing it"
fi
for c in gcc git docker shellcheck podman runc /usr/sbin/sshd ssh openssl script man; do
  command -v "$c" >/dev/null 2>&1 || die "$c is still missing after installing"
done

# --- 2. services ------------------------------------------------------------------------------
work=$(mktemp -d /tmp/imgguard-tests.XXXXXX)
dockerd_pid=
podman_pid=
cleanup() {
  local code=$?
  if [ -n "$podman_pid" ]; then
    # Everything in this storage is ours: it lives in $work.
    podman "${podman_store[@]}" rm -af -t 0 >/dev/null 2>&1 || true
    kill "$podman_pid" 2>/dev/null || true
    wait "$podman_pid" 2>/dev/null || true
    # Leftover mounts (a container's shm) would make rm fail.
    grep -o " ${work}[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  fi
  if [ -n "$dockerd_pid" ]; then
    kill "$dockerd_pid" 2>/dev/null || true
    wait "$dockerd_pid" 2>/dev/null || true
  fi
  rm -rf "$work" 2>/dev/null || true
  exit "$code"
}
trap cleanup EXIT

if ! docker info >/dev/null 2>&1; then
  say "no Docker daemon answers: starting dockerd"
  [ "$(id -u)" = 0 ] || die "no Docker daemon answers; start one (sudo dockerd &)"
  dockerd >"$work/dockerd.log" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || {
    tail -n 20 "$work/dockerd.log" >&2
    die "dockerd did not come up (log above)"
  }
fi

say "starting the Podman API service"
# Podman 4.3's default ulimits keep containers from starting here; runc is the runtime it can
# use. The storage (vfs: no mounts to leak) and the socket live in $work.
cat >"$work/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"
EOF
podman_store=(--root "$work/podman/root" --runroot "$work/podman/run" --storage-driver vfs)
podman_sock="$work/podman.sock"
CONTAINERS_CONF="$work/containers.conf" podman "${podman_store[@]}" system service --time=0 \
  "unix://$podman_sock" >"$work/podman.log" 2>&1 &
podman_pid=$!
for _ in $(seq 1 60); do
  DOCKER_HOST="unix://$podman_sock" docker version >/dev/null 2>&1 && break
  sleep 0.5
done
DOCKER_HOST="unix://$podman_sock" docker version >/dev/null 2>&1 || {
  tail -n 20 "$work/podman.log" >&2
  die "podman system service did not come up (log above)"
}

# The fleet tests reach Podman as a second engine beside Docker.
export IMGGUARD_TEST_PODMAN_HOST="unix://$podman_sock"

# --- 3. the tests -----------------------------------------------------------------------------
say "cargo test (Docker $(docker version --format '{{.Server.Version}}'))"
start=$SECONDS
cargo test --locked -- "$@" || die "cargo test failed (Docker)"
echo "docker pass: $((SECONDS - start)) s"

say "the daemon tests against Podman ($(podman --version))"
filters=("$@")
[ ${#filters[@]} -gt 0 ] || filters=(build:: dangling:: save_load:: formats:: engines:: watch::)
start=$SECONDS
IMGGUARD_TEST_ENGINE=podman DOCKER_HOST="unix://$podman_sock" \
  cargo test --locked --test integration -- "${filters[@]}" ||
  die "cargo test failed (Podman)"
echo "podman pass: $((SECONDS - start)) s"
say "all tests passed"
