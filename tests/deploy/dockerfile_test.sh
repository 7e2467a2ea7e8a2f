#!/usr/bin/env bash
# tests/deploy/dockerfile_test.sh — keeps deploy/Dockerfile honest where no container engine runs.
#
# Usage: tests/deploy/dockerfile_test.sh TOKEND_BINARY [DOCKERFILE]
#   - the build stage is Debian 12 and installs its packages by running scripts/deps (one list);
#   - the runtime stage is Debian 12 slim and its apt-get install list is exactly the Debian
#     packages of the shared libraries `ldd TOKEND_BINARY` reports (mapped with dpkg -S): every one
#     covered, nothing else (no -dev package, no tool);
#   - non-root USER, /data volume, ports 8080 and 9090, STOPSIGNAL SIGTERM, `tokend serve` as the
#     entrypoint, TOKEND_DATA_DIR=/data.
# The checks are also run on broken copies of the Dockerfile, which must fail: a check that cannot
# fail proves nothing. Exits 0 when everything holds, 1 otherwise.
set -euo pipefail

binary=${1:?usage: dockerfile_test.sh TOKEND_BINARY [DOCKERFILE]}
here=$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")
dockerfile=${2:-$here/../../deploy/Dockerfile}
for tool in ldd dpkg dpkg-query readlink awk; do
  command -v "$tool" >/dev/null || { echo "dockerfile_test: '$tool' is missing (Debian 12 is assumed)" >&2; exit 1; }
done
[[ -x "$binary" ]] || { echo "dockerfile_test: $binary is not an executable" >&2; exit 1; }
[[ -r "$dockerfile" ]] || { echo "dockerfile_test: cannot read $dockerfile" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tokend-dockerfile-test.XXXXXX")
trap 'rm -rf -- "$tmp"' EXIT

# ---------------------------------------------------------------------------------------------
# The packages the binary needs at run time.

# The Debian package owning a library path; usrmerge means dpkg may know it under /lib or /usr/lib.
package_of() {
  local path=$1 real candidates=() c owner
  real=$(readlink -f -- "$path")
  candidates=("$path" "$real")
  for c in "$path" "$real"; do
    case "$c" in
      /usr/*) candidates+=("${c#/usr}") ;;
      *) candidates+=("/usr$c") ;;
    esac
  done
  for c in "${candidates[@]}"; do
    if owner=$(dpkg -S "$c" 2>/dev/null); then
      owner=${owner%%: *}
      owner=${owner%%,*}
      echo "${owner%%:*}"  # drop the architecture (libc6:amd64)
      return 0
    fi
  done
  return 1
}

ldd_out=$(ldd "$binary") || { echo "dockerfile_test: ldd failed on $binary" >&2; exit 1; }
declare -A needed=()  # package -> libraries
while read -r line; do
  lib=
  if [[ "$line" == *"=> not found"* ]]; then
    echo "dockerfile_test: ldd cannot resolve: $line" >&2
    exit 1
  elif [[ "$line" =~ =\>\ (/[^ ]+) ]]; then
    lib=${BASH_REMATCH[1]}
  elif [[ "$line" =~ ^(/[^ ]+) ]]; then
    lib=${BASH_REMATCH[1]}  # the dynamic loader
  fi
  [[ -n "$lib" ]] || continue  # linux-vdso: no file
  # Sanitizer runtimes come from a TOKEND_SANITIZE build; the image is built without sanitizers.
  case "$(basename "$lib")" in lib[alt]san.so* | libubsan.so* | libhwasan.so*) continue ;; esac
  pkg=$(package_of "$lib") || { echo "dockerfile_test: no Debian package owns $lib" >&2; exit 1; }
  needed[$pkg]+="$(basename "$lib") "
done <<<"$ldd_out"
((${#needed[@]} > 0)) || { echo "dockerfile_test: ldd reported no library for $binary" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# The Dockerfile, read as Docker does: comments dropped, continuation lines joined, split in stages.

# Prints "STAGE<TAB>INSTRUCTION<TAB>ARGUMENTS" per instruction, stages numbered from 0.
instructions() {
  awk '
    /^[[:space:]]*#/ { next }
    {
      line = $0
      if (buf != "") sub(/^[[:space:]]+/, "", line)
      if (line ~ /\\[[:space:]]*$/) { sub(/\\[[:space:]]*$/, "", line); buf = buf line " "; next }
      buf = buf line
      if (buf ~ /^[[:space:]]*$/) { buf = ""; next }
      sub(/^[[:space:]]+/, "", buf)
      split(buf, w, /[[:space:]]+/)
      op = toupper(w[1])
      rest = substr(buf, length(w[1]) + 2)
      if (op == "FROM") stage++
      printf "%d\t%s\t%s\n", stage - 1, op, rest
      buf = ""
    }' "$1"
}

# check DOCKERFILE: prints every problem, returns 1 if there is any.
check() {
  local file=$1 problems=0 parsed last from_build from_run
  problem() { echo "  - $*"; problems=1; }
  parsed=$(instructions "$file")
  last=$(awk -F'\t' '$2 == "FROM" { n = $1 } END { print n + 0 }' <<<"$parsed")
  stage() { awk -F'\t' -v s="$1" -v op="$2" '$1 == s && $2 == op { print $3 }' <<<"$parsed"; }

  # Build stage: Debian 12, packages from scripts/deps.
  from_build=$(stage 0 FROM)
  [[ "$from_build" =~ ^debian:(bookworm|12)([.0-9]*)?([^-[:alnum:]].*)?(\ +[Aa][Ss]\ +[a-z]+)?$ ]] ||
    problem "the build stage must start FROM debian:bookworm (Debian 12), found: FROM $from_build"
  ((last >= 1)) || problem "two stages expected (build, runtime), found $((last + 1))"
  local copies runs deps_dest
  copies=$(stage 0 COPY)
  runs=$(stage 0 RUN)
  deps_dest=$(awk '$1 == "scripts/deps" { print $2 }' <<<"$copies")
  [[ -n "$deps_dest" ]] || problem "the build stage must COPY scripts/deps (one package list)"
  if [[ -n "$deps_dest" ]] && ! grep -qF -- "$deps_dest" <<<"$runs"; then
    problem "the build stage must RUN the copied scripts/deps ($deps_dest)"
  fi
  grep -q 'apt-get[[:space:]].*install' <<<"$runs" &&
    problem "the build stage installs packages itself: only through scripts/deps"

  # Runtime stage.
  from_run=$(stage "$last" FROM)
  [[ "$from_run" =~ ^debian:(bookworm|12)([.0-9]*)?-slim ]] ||
    problem "the runtime stage must start FROM debian:bookworm-slim, found: FROM $from_run"
  local install listed=()
  install=$(stage "$last" RUN | grep -o 'apt-get[^&;]*install[^&;]*' || true)
  for word in $install; do
    case "$word" in apt-get | install | -* | *=*) ;; *) listed+=("$word") ;; esac
  done
  ((${#listed[@]} > 0)) || problem "the runtime stage installs no package with apt-get install"
  declare -A have=()
  for pkg in "${listed[@]}"; do
    have[$pkg]=1
    [[ "$pkg" == *-dev ]] && problem "runtime package $pkg is a development package"
    if [[ -z "${needed[$pkg]:-}" ]]; then
      problem "runtime package $pkg provides no library that ldd reports (only runtime libraries belong there)"
    fi
  done
  for pkg in "${!needed[@]}"; do
    [[ -n "${have[$pkg]:-}" ]] || problem "missing runtime package $pkg (for ${needed[$pkg]% })"
  done
  grep -q -- '--no-install-recommends' <<<"$install" || problem "apt-get install without --no-install-recommends"

  local user volume expose stopsignal entrypoint env copy_from
  user=$(stage "$last" USER | tail -n1)
  [[ -n "$user" ]] || problem "the runtime stage has no USER (it would run as root)"
  [[ -n "$user" && ! "$user" =~ ^(0|root)(:|$) ]] || problem "USER must not be root, found: ${user:-none}"
  volume=$(stage "$last" VOLUME)
  [[ "$volume" =~ (^|[\"[:space:][])/data([\"[:space:]]|\]|$) ]] || problem "no VOLUME /data"
  expose=" $(stage "$last" EXPOSE | tr '\n' ' ') "
  for port in 8080 9090; do
    [[ "$expose" =~ [[:space:]]$port(/tcp)?[[:space:]] ]] || problem "port $port is not EXPOSEd"
  done
  stopsignal=$(stage "$last" STOPSIGNAL)
  [[ "$stopsignal" == "SIGTERM" ]] || problem "STOPSIGNAL must be SIGTERM, found: ${stopsignal:-none}"
  entrypoint=$(stage "$last" ENTRYPOINT | tail -n1 | tr -d '[:space:]')
  [[ "$entrypoint" =~ ^\[\"[^\"]*/tokend\",\"serve\"\]$ ]] ||
    problem "ENTRYPOINT must be exec form [\".../tokend\", \"serve\"], found: ${entrypoint:-none}"
  env=$(stage "$last" ENV)
  [[ "$env" =~ (^|[[:space:]])TOKEND_DATA_DIR=/data([[:space:]]|$) ]] || problem "ENV TOKEND_DATA_DIR=/data missing"
  copy_from=$(stage "$last" COPY)
  [[ "$copy_from" == *--from=* ]] || problem "the runtime stage must COPY the binary --from the build stage"
  return $problems
}

status=0
echo "runtime libraries of $binary:"
for pkg in $(printf '%s\n' "${!needed[@]}" | sort); do echo "  $pkg: ${needed[$pkg]% }"; done
echo "checking $dockerfile"
if ! check "$dockerfile"; then
  echo "FAIL: $dockerfile" >&2
  status=1
fi

# The checks must catch a broken Dockerfile: each mutation below has to fail.
mutate() {  # NAME SED-EXPRESSION
  local name=$1 expr=$2 copy="$tmp/Dockerfile.$1"
  sed -e "$expr" "$dockerfile" >"$copy"
  if cmp -s "$copy" "$dockerfile"; then
    echo "FAIL: mutation '$name' did not change the Dockerfile (the test is out of date)" >&2
    status=1
  elif check "$copy" >/dev/null; then
    echo "FAIL: mutation '$name' was not caught" >&2
    status=1
  else
    echo "ok: mutation '$name' caught"
  fi
}
first_runtime_pkg=$(printf '%s\n' "${!needed[@]}" | sort | head -n1)
mutate drop-a-runtime-library "/^[[:space:]]*${first_runtime_pkg//./\\.}[[:space:]]*\\\\\$/d"
mutate add-a-dev-package 's/^\([[:space:]]*\)zlib1g[[:space:]]*\\$/\1zlib1g \\\n\1zlib1g-dev \\/'
mutate run-as-root 's/^USER .*/USER root/'
mutate no-stopsignal '/^STOPSIGNAL/d'
mutate other-entrypoint 's#^ENTRYPOINT .*#ENTRYPOINT ["/usr/local/bin/tokend"]#'
mutate skip-scripts-deps 's#^RUN bash /src/scripts/deps.*#RUN apt-get update \&\& apt-get install -y g++#'
mutate fat-runtime-image 's/^FROM debian:bookworm-slim/FROM debian:bookworm/'
mutate no-data-volume '/^VOLUME/d'
mutate no-admin-port 's/^EXPOSE 8080 9090/EXPOSE 8080/'

if ((status == 0)); then
  echo "deploy/Dockerfile: all checks passed"
fi
exit $status
