# Shared by the runners of the Node.js tests (tests/deploy/run.sh, tests/docs/run.sh), sourced
# from the runner's own directory; `name` in messages is that directory (tests/deploy...).

# Fails the test with where to get node and npm when either is missing.
require_node_tools() {
  local name=$1 tool
  for tool in node npm; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      echo "$name: '$tool' is missing; install it with scripts/deps (Debian packages nodejs and npm)" >&2
      exit 1
    fi
  done
}

# npm ci into ./node_modules when missing or stale. One installer at a time (several build
# directories may test at once); reinstall when the lockfile is newer than what npm last installed.
install_node_modules() {
  local name=$1
  exec 9<package-lock.json
  flock -w 300 9 || { echo "$name: timed out waiting for another npm ci" >&2; exit 1; }
  if [[ -f node_modules/.package-lock.json && ! package-lock.json -nt node_modules/.package-lock.json ]]; then
    echo "$name: node_modules is up to date"
    return 0
  fi
  echo "$name: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
}
