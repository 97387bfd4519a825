# shellcheck shell=bash
# Shared by the bench scripts that make images of their own (sourced, not run).

# Removes every image labelled $1 (`imgguard.bench=<id>`), never forced: the tags first (an
# image with two tags goes with its last), then whatever is left untagged. Only the bench's own
# images carry its label.
remove_labelled() {
  docker images --filter "label=$1" --format '{{.Repository}}:{{.Tag}}' | grep -v '<none>' |
    xargs -r docker rmi >/dev/null 2>&1 || true
  docker images -q --filter "label=$1" | sort -u | xargs -r docker rmi >/dev/null 2>&1 || true
}

# Builds TAG with BIN (imgguard): a FROM scratch image labelled LABEL holding MIB MiB of random
# data, its context in DIR (removed after).
#   random_image BIN TAG LABEL MIB DIR
random_image() {
  local bin=$1 tag=$2 label=$3 mib=$4 dir=$5
  mkdir -p "$dir"
  printf 'FROM scratch\nLABEL %s\nCOPY data /data\n' "$label" > "$dir/Dockerfile"
  head -c "$((mib * 1024 * 1024))" /dev/urandom > "$dir/data"
  "$bin" build -q -t "$tag" "$dir" >/dev/null 2>&1
  rm -rf "$dir"
  # The image just written (its layer, the build context's copy) is still dirty in the page
  # cache; flushed by the kernel ~30 s later, in the middle of whichever runs come then, it would
  # slow them (measured 1.47x for imgguard's save, which came second, against 1.04x after a sync).
  sync
}
