#!/usr/bin/env bash
# tests/docs/run.sh — runs the documentation checks (registered with CTest in tests/CMakeLists.txt).
#
# Usage: tests/docs/run.sh install        npm ci into tests/docs/node_modules if missing or stale
#        tests/docs/run.sh links          every Markdown link resolves inside the repository (links.mjs)
#        tests/docs/run.sh lint           docs/openapi.yaml passes `redocly lint` (redocly.yaml)
#        tests/docs/run.sh live TOKEND    docs/openapi.yaml against the real binary's responses (openapi_live.mjs)
# Node.js and npm come from scripts/deps (Debian packages nodejs and npm when missing).
set -euo pipefail

here=$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")
# The binary's path, resolved before leaving the caller's directory.
binary=""
if [[ "${1:-}" == live ]]; then
  binary=$(readlink -f -- "${2:?usage: run.sh live TOKEND_BINARY}" || true)
  [[ -x "$binary" ]] || { echo "tests/docs: no executable at '${2}'" >&2; exit 2; }
fi
cd -- "$here"

# shellcheck source=../support/node_runner.sh
. "$here/../support/node_runner.sh"
require_node_tools tests/docs
install() { install_node_modules tests/docs; }

case "${1:-}" in
  install)
    install
    ;;
  links)
    # Plain Node.js, no dependencies: runs even before npm ci.
    exec node links.mjs
    ;;
  lint)
    [[ -d node_modules ]] || install
    # No usage reports and no update checks: the test must not depend on the network.
    export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
    exec node node_modules/@redocly/cli/bin/cli.js lint --config redocly.yaml ../../docs/openapi.yaml
    ;;
  live)
    [[ -d node_modules ]] || install
    exec node openapi_live.mjs "$binary"
    ;;
  *)
    sed -n '2,9s/^# \{0,1\}//p' "$here/run.sh" >&2
    exit 2
    ;;
esac
