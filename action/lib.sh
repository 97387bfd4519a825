# shellcheck shell=bash
# Shared by the action's scripts: reading the list inputs into bash arrays. Inputs arrive as
# environment variables (never pasted into script text), and every value becomes exactly one
# argv element: nothing is word-split, globbed or evaluated.

# Any command that fails unexpectedly says so, instead of ending the step silently.
trap 'printf "::error title=imgguard action::%s failed at line %s: %s\n" "${BASH_SOURCE[0]##*/}" "$LINENO" "$BASH_COMMAND"' ERR

# Prints a message as a workflow error annotation and exits 2 (imgguard's "bad input" code).
fail() {
  printf '::error title=imgguard action::%s\n' "$1"
  exit 2
}

# Appends to the array TAGS each tag in $1: separated by newlines or commas, blanks trimmed.
read_tags() {
  TAGS=()
  local item
  while IFS= read -r item || [ -n "$item" ]; do
    item="${item//$'\r'/}"
    item="${item#"${item%%[![:space:]]*}"}"
    item="${item%"${item##*[![:space:]]}"}"
    if [ -n "$item" ]; then TAGS+=("$item"); fi
  done < <(printf '%s\n' "$1" | tr ',' '\n')
  [ "${#TAGS[@]}" -gt 0 ] || fail "the tags input is empty: give at least one name:tag"
}

# Sets LINES_OUT to the non-blank lines of $1, each kept whole (leading blanks and a CR from
# Windows line ends removed): one NAME=value per line for build-args and labels, one argument
# per line for extra-args.
read_lines() {
  LINES_OUT=()
  local line
  while IFS= read -r line || [ -n "$line" ]; do
    line="${line%$'\r'}"
    line="${line#"${line%%[![:space:]]*}"}"
    if [ -n "$line" ]; then LINES_OUT+=("$line"); fi
  done <<<"$1"
}

# Checks that input $1 (named $2) is true or false.
require_bool() {
  case "$1" in
    true | false) ;;
    *) fail "input $2 must be true or false, not '$1'" ;;
  esac
}

# sha256 of a file, hex, on Linux (sha256sum) and macOS (shasum).
sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  else
    shasum -a 256 "$1" | cut -d' ' -f1
  fi
}
