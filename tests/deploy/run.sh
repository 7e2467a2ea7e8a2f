#!/usr/bin/env bash
# tests/deploy/run.sh — runs the Node.js deploy tests (registered with CTest in tests/CMakeLists.txt).
#
# Usage: tests/deploy/run.sh install            npm ci into tests/deploy/node_modules if missing or stale
#        tests/deploy/run.sh validate           schema and policy checks of deploy/k8s (validate.mjs)
#        tests/deploy/run.sh validate-postgres  the same for deploy/k8s/overlays/postgres (validate_postgres.mjs)
#        tests/deploy/run.sh validate-bench     the same for the load-test Job deploy/k8s/bench (validate_bench.mjs)
#        tests/deploy/run.sh smoke TOKEND       the container spec run against the real binary (smoke.mjs)
#        tests/deploy/run.sh gateways           the gateway integrations of deploy/gateways (gateways.mjs)
# Node.js and npm come from scripts/deps (Debian packages nodejs and npm when missing). The smoke
# test runs in a private network namespace when unshare allows it, so the manifest's fixed ports
# (8080, 9090) cannot collide with anything else on the machine; otherwise on kernel-chosen ports.
set -euo pipefail

here=$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")
cd -- "$here"

# shellcheck source=../support/node_runner.sh
. "$here/../support/node_runner.sh"
require_node_tools tests/deploy
install() { install_node_modules tests/deploy; }

case "${1:-}" in
  install)
    install
    ;;
  validate)
    [[ -d node_modules ]] || install
    exec node validate.mjs
    ;;
  validate-postgres)
    [[ -d node_modules ]] || install
    exec node validate_postgres.mjs
    ;;
  validate-bench)
    [[ -d node_modules ]] || install
    exec node validate_bench.mjs
    ;;
  gateways)
    [[ -d node_modules ]] || install
    exec node gateways.mjs
    ;;
  smoke)
    binary=$(readlink -f -- "${2:?usage: run.sh smoke TOKEND_BINARY}")
    [[ -d node_modules ]] || install
    netns=()
    if command -v unshare >/dev/null && command -v ip >/dev/null; then
      if unshare --net true 2>/dev/null; then
        netns=(unshare --net)
      elif unshare --net --map-root-user true 2>/dev/null; then
        netns=(unshare --net --map-root-user)
      fi
    fi
    if ((${#netns[@]} > 0)); then
      exec "${netns[@]}" -- bash -c 'ip link set lo up && TOKEND_SMOKE_NETNS=1 exec node smoke.mjs "$1"' smoke "$binary"
    fi
    echo "tests/deploy: no private network namespace here; using kernel-chosen ports"
    exec node smoke.mjs "$binary"
    ;;
  *)
    sed -n '2,12s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
    exit 2
    ;;
esac
