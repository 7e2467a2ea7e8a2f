#!/usr/bin/env bash
# Offline check of what bench/compare --gateway measures (no load, no timing):
#   1. bench/compare and bench/gateway-nginx parse (bash -n), and bench/compare's awk figures print;
#   2. bench/gateway-nginx writes a map of 1000 distinct keys holding the given one, and a
#      configuration `nginx -t` accepts without a warning (a map hash nginx could not build well);
#   3. the running gateway (on Unix sockets, so no port can collide), with a stand-in for tokend that
#      allows only the given key: both chains let the key through to the static upstream and answer
#      401 to another key and to none.
# nginx (Debian nginx-light has auth_request) and curl come from scripts/deps.
set -euo pipefail

repo=$(readlink -f -- "$(dirname -- "${BASH_SOURCE[0]}")/../..")
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x "$nginx_bin" ]] || { echo "nginx is missing: install it with scripts/deps (nginx-light)" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl is missing: install it with scripts/deps" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/tokend-gwbench-XXXXXX")
nginx_pids=()
cleanup() {
  local pid
  for pid in "${nginx_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ -n "${KEEP:-}" ]] || rm -rf -- "$work"
}
trap cleanup EXIT
# The workers may run as another user (nginx started as root): they must reach the sockets.
chmod 755 "$work"

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }
check() {  # description, then a command that must succeed
  local what=$1
  shift
  if "$@"; then ok "$what"; else fail "$what"; fi
}

check "bench/compare parses" bash -n "$repo/bench/compare"
check "bench/gateway-nginx parses" bash -n "$repo/bench/gateway-nginx"
# In awk, `printf "%f", b > 0 ? x : 0` prints x into a file named "0": a condition in printf's
# arguments needs parentheses, or bench/compare's ratios and CPU figures come out empty.
if grep -nE 'printf "[^"]*",[^;}()]* > ' "$repo/bench/compare"; then fail "no awk printf in bench/compare redirects"
else ok "no awk printf in bench/compare redirects"; fi

key=$(od -An -v -tx1 -N 32 /dev/urandom | tr -d ' \n')
other=$(od -An -v -tx1 -N 32 /dev/urandom | tr -d ' \n')
gw="$work/gateway"
"$repo/bench/gateway-nginx" "$gw" "unix:$work/tokend.sock" "unix:$work/chain.sock" "unix:$work/map.sock" \
  "unix:$work/static.sock" "$key" 1

check "the map holds 1000 keys" test "$(wc -l <"$gw/keys.map")" = 1000
check "the 1000 keys are distinct" test "$(sort -u "$gw/keys.map" | wc -l)" = 1000
check "the map holds the given key" grep -qxF "\"$key\" 1;" "$gw/keys.map"
check "the chain's upstream is the given tokend" grep -qF "server unix:$work/tokend.sock;" "$gw/tokend-http.conf"
if out=$("$nginx_bin" -t -p "$gw" -c "$gw/nginx.conf" 2>&1) && ! grep -q '\[warn\]' <<<"$out"; then
  ok "nginx -t accepts the gateway configuration without a warning"
else
  fail "nginx -t accepts the gateway configuration without a warning"
  echo "$out"
fi

# A stand-in for tokend's /verify: allows the given key in X-Original-URI, nothing else.
mkdir -p "$work/standin"
cat >"$work/standin/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $work/standin/nginx.pid;
error_log $work/standin/error.log;
events {}
http {
  access_log off;
  client_body_temp_path $work/standin/body;
  server {
    listen unix:$work/tokend.sock;
    location = /verify {
      if (\$http_x_original_uri ~ "[?&]token=$key(&|\$)") {
        add_header X-Tokend-User-Id 2;
        return 200 "{}";
      }
      return 401 "{}";
    }
    location / { return 404; }
  }
}
CONF
"$nginx_bin" -p "$work/standin" -c "$work/standin/nginx.conf" &
nginx_pids+=($!)
"$nginx_bin" -p "$gw" -c "$gw/nginx.conf" 2>"$work/gateway.err" &
nginx_pids+=($!)
for sock in tokend chain map static; do
  for _ in $(seq 1 100); do [[ -S "$work/$sock.sock" ]] && break; sleep 0.05; done
done

expect() {  # chain, what, query, expected status, expected body ("" to skip)
  local chain=$1 what=$2 query=$3 status=$4 want=$5 got body
  got=$(curl -sS --max-time 5 --unix-socket "$work/$chain.sock" -o "$work/response" -w '%{http_code}' \
        "http://api.example/api/items$query" 2>&1) || true
  body=$(cat "$work/response" 2>/dev/null || true)
  if [[ "$got" == "$status" && ( -z "$want" || "$body" == "$want" ) ]]; then ok "$chain: $what gets $status"
  else fail "$chain: $what gets $got '$body', expected $status '$want'"; fi
}
for chain in chain map; do
  expect "$chain" "the key" "?token=$key" 200 '{"success":true}'
  expect "$chain" "another key" "?token=$other" 401 ""
  expect "$chain" "no key" "" 401 ""
done

echo "$passed passed, $failed failed"
((failed == 0))
