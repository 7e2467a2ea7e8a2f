#!/usr/bin/env bash
# Offline check of the nginx integration in deploy/gateways/nginx (no tokend involved):
#   1. `nginx -t` accepts the three snippets included where the guide says (http, server, location),
#      and refuses them included in the wrong context (so the check has teeth);
#   2. the snippets carry what the guide promises (keep-alive upstream, HTTP/1.1 with an empty
#      Connection header, no body, X-Original-URI, the user id passed upstream, the key stripped);
#   3. a running nginx (on Unix sockets, so no port can collide) with a stand-in for tokend that
#      allows `token=good`: the service behind sees the user id, and neither the Authorization
#      header nor a `token` parameter; a refused key never reaches it; `token=slow` is over its
#      rate limit (403 from the stand-in, as tokend with --verify-rate-limited-status 403): the
#      client gets 429 with Retry-After and the RateLimit headers, and the service nothing.
# nginx (Debian nginx-light has auth_request) and curl come from scripts/deps.
set -euo pipefail

repo=$(readlink -f -- "$(dirname -- "${BASH_SOURCE[0]}")/../..")
snippets="$repo/deploy/gateways/nginx"
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x "$nginx_bin" ]] || { echo "nginx is missing: install it with scripts/deps (nginx-light)" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl is missing: install it with scripts/deps" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/tokend-nginx-XXXXXX")
pid_file="$work/nginx.pid"
cleanup() {
  if [[ -s "$pid_file" ]]; then kill "$(cat "$pid_file")" 2>/dev/null || true; fi
  [[ -n "${KEEP:-}" ]] || rm -rf -- "$work"
}
trap cleanup EXIT
# The workers may run as another user (nginx started as root): they must reach the sockets.
chmod 755 "$work"
mkdir -p "$work/logs"

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }

# The upstream file as a user adapts it: only the server address changes.
sed "s|server 127.0.0.1:8080;|server unix:$work/tokend.sock;|" "$snippets/tokend-http.conf" > "$work/tokend-http.conf"
grep -q "unix:$work/tokend.sock" "$work/tokend-http.conf" || { echo "tokend-http.conf: no 'server 127.0.0.1:8080;' line" >&2; exit 1; }

# $1: "documented" (each snippet where the guide includes it), or "swapped" (tokend-http.conf in the
# server and tokend-verify.conf in http: wrong contexts, which `nginx -t` must refuse).
write_config() {
  local in_http="include $work/tokend-http.conf;" in_server="include $snippets/tokend-verify.conf;"
  if [[ $1 == swapped ]]; then
    local t=$in_http
    in_http=$in_server
    in_server=$t
  fi
  cat > "$work/nginx.conf" <<CONF
daemon on;
worker_processes 1;
pid $pid_file;
error_log $work/logs/error.log;
events {}
http {
  access_log off;
  client_body_temp_path $work/body;
  proxy_temp_path $work/proxy;
  $in_http
  upstream api_backend { server unix:$work/api.sock; }
  server {
    listen unix:$work/gateway.sock;
    $in_server
    location / {
      include $snippets/tokend-protect.conf;
      proxy_pass http://api_backend;
    }
  }
  # The protected service: tells what reached it; /forbidden is its own 403.
  server {
    listen unix:$work/api.sock;
    location = /forbidden { return 403 "service says no\n"; }
    location / {
      return 200 "uri=\$request_uri authorization=\$http_authorization user=\$http_x_tokend_user_id type=\$http_x_tokend_token_type\n";
    }
  }
  # A stand-in for tokend's /verify: allows the key "good" in X-Original-URI or Authorization.
  server {
    listen unix:$work/tokend.sock;
    location = /verify {
      if (\$http_x_original_uri ~ "[?&]token=slow(&|\$)") {
        add_header Retry-After 7 always;
        add_header RateLimit '"key";r=0;t=7' always;
        add_header RateLimit-Policy '"key";q=1;w=7' always;
        return 403 "{}";
      }
      if (\$http_x_original_uri ~ "[?&]token=limited(&|\$)") {
        add_header X-Tokend-User-Id 43;
        add_header X-Tokend-Token-Type admin;
        add_header RateLimit '"key";r=4;t=1';
        add_header RateLimit-Policy '"key";q=5;w=1';
        return 200 "{}";
      }
      if (\$http_x_original_uri ~ "[?&]token=good(&|\$)") {
        add_header X-Tokend-User-Id 42;
        add_header X-Tokend-Token-Type admin;
        return 200 "{}";
      }
      if (\$http_authorization = "Bearer good") {
        add_header X-Tokend-User-Id 42;
        add_header X-Tokend-Token-Type admin;
        return 200 "{}";
      }
      add_header WWW-Authenticate 'Bearer realm="tokend"' always;
      return 401 "{}";
    }
    location / { return 404; }
  }
}
CONF
}

write_config documented
if out=$("$nginx_bin" -t -p "$work" -c "$work/nginx.conf" 2>&1); then ok "nginx -t accepts the snippets where the guide includes them"
else fail "nginx -t accepts the snippets where the guide includes them"; echo "$out"; fi
write_config swapped
if "$nginx_bin" -t -p "$work" -c "$work/nginx.conf" >/dev/null 2>&1; then fail "nginx -t refuses the snippets in the wrong contexts"
else ok "nginx -t refuses the snippets in the wrong contexts"; fi

# $1 file, $2 description, $3 extended regex that must match a line of the file.
require() {
  if grep -Eq -- "$3" "$snippets/$1"; then ok "$1: $2"; else fail "$1: $2 (no line matches /$3/)"; fi
}
# One rule a line: file|description|extended regex that must match a line of the file.
while IFS='|' read -r file what pattern; do require "$file" "$what" "$pattern"; done <<'RULES'
tokend-http.conf|upstream tokend with keep-alive|^[[:space:]]*keepalive[[:space:]]+[0-9]+;
tokend-verify.conf|internal location|^[[:space:]]*internal;
tokend-verify.conf|proxies to /verify|^[[:space:]]*proxy_pass[[:space:]]+http://tokend/verify;
tokend-verify.conf|HTTP/1.1 for keep-alive|^[[:space:]]*proxy_http_version[[:space:]]+1\.1;
tokend-verify.conf|empty Connection header for keep-alive|^[[:space:]]*proxy_set_header[[:space:]]+Connection[[:space:]]+"";
tokend-verify.conf|no request body|^[[:space:]]*proxy_pass_request_body[[:space:]]+off;
tokend-verify.conf|HEAD, so keep-alive to tokend holds|^[[:space:]]*proxy_method[[:space:]]+HEAD;
tokend-verify.conf|no Content-Length|^[[:space:]]*proxy_set_header[[:space:]]+Content-Length[[:space:]]+"";
tokend-verify.conf|X-Original-URI is the request URI|^[[:space:]]*proxy_set_header[[:space:]]+X-Original-URI[[:space:]]+\$request_uri;
tokend-protect.conf|auth_request to the internal location|^[[:space:]]*auth_request[[:space:]]+/_tokend/verify;
tokend-protect.conf|user id from tokend's answer|^[[:space:]]*auth_request_set[[:space:]]+\$tokend_user_id[[:space:]]+\$upstream_http_x_tokend_user_id;
tokend-protect.conf|user id passed upstream|^[[:space:]]*proxy_set_header[[:space:]]+X-Tokend-User-Id[[:space:]]+\$tokend_user_id;
tokend-protect.conf|Authorization stripped|^[[:space:]]*proxy_set_header[[:space:]]+Authorization[[:space:]]+"";
tokend-protect.conf|Retry-After taken from the check|^[[:space:]]*auth_request_set[[:space:]]+\$tokend_retry_after[[:space:]]+\$upstream_http_retry_after;
tokend-protect.conf|the check's 403 mapped|^[[:space:]]*error_page[[:space:]]+403[[:space:]]+=[[:space:]]+@tokend_rate_limited;
tokend-verify.conf|429 for a key over its limit|^[[:space:]]*return[[:space:]]+429[[:space:]]
RULES

# A running nginx with the documented configuration.
write_config documented
"$nginx_bin" -p "$work" -c "$work/nginx.conf" 2>"$work/logs/start.err" || { cat "$work/logs/start.err"; exit 1; }
for _ in $(seq 1 100); do [[ -S "$work/gateway.sock" ]] && break; sleep 0.05; done

# $1 description, $2 path and query, $3 expected status, $4 expected body ("" to skip), $5.. curl args
expect() {
  local what=$1 target=$2 status=$3 body=$4
  shift 4
  local got
  got=$(curl -sS --max-time 5 --unix-socket "$work/gateway.sock" -o "$work/response" -w '%{http_code}' "$@" \
        "http://api.example$target" 2>&1) || true
  local content
  content=$(cat "$work/response" 2>/dev/null || true)
  if [[ "$got" == "$status" && ( -z "$body" || "$content" == "$body" ) ]]; then ok "$what"
  else fail "$what: got $got '$content', expected $status '$body'"; fi
}
expect "a key in the query passes; the service sees the user, not the key" "/items/%20x?a=1&token=good&b=2" 200 \
  "uri=/items/%20x?a=1&b=2 authorization= user=42 type=admin"
expect "the key as the first parameter" "/items?token=good&b=2" 200 "uri=/items?b=2 authorization= user=42 type=admin"
expect "the key as the only parameter" "/items?token=good" 200 "uri=/items authorization= user=42 type=admin"
expect "the key twice" "/items?token=good&x=1&token=good" 200 "uri=/items?x=1 authorization= user=42 type=admin"
expect "a key in Authorization passes; the header stays at the gateway" "/items?q=1" 200 \
  "uri=/items?q=1 authorization= user=42 type=admin" -H "Authorization: Bearer good"
expect "a refused key never reaches the service" "/items?token=bad" 401 ""
expect "no key never reaches the service" "/items" 401 ""
expect "the internal location is not reachable from outside" "/_tokend/verify?token=good" 404 ""
expect "a key over its rate limit gets 429, and the service nothing" "/items?token=slow" 429 \
  '{"success":false,"message":"Rate limit exceeded"}'
expect "the service's own 403 passes untouched" "/forbidden?token=good" 403 "service says no"

# $1 description, $2 path and query, $3.. header lines the answer must hold (exactly, case aside).
expect_headers() {
  local what=$1 target=$2
  shift 2
  curl -sS --max-time 5 --unix-socket "$work/gateway.sock" -D "$work/headers" -o /dev/null \
    "http://api.example$target" >/dev/null 2>&1 || true
  local line
  for line in "$@"; do
    if ! tr -d '\r' < "$work/headers" | grep -qixF -- "$line"; then
      fail "$what: no '$line' in: $(tr -d '\r' < "$work/headers" | tr '\n' '|')"
      return
    fi
  done
  ok "$what"
}
expect_headers "the 429 carries tokend's Retry-After and RateLimit headers" "/items?token=slow" \
  "Retry-After: 7" 'RateLimit: "key";r=0;t=7' 'RateLimit-Policy: "key";q=1;w=7'
expect_headers "an admitted request of a limited key carries its RateLimit headers" "/items?token=limited" \
  'RateLimit: "key";r=4;t=1' 'RateLimit-Policy: "key";q=5;w=1'
if grep -qi '^ratelimit' <(curl -sS --max-time 5 --unix-socket "$work/gateway.sock" -D - -o /dev/null \
     "http://api.example/items?token=good" 2>/dev/null | tr -d '\r'); then
  fail "a key without a limit gets no RateLimit headers"
else ok "a key without a limit gets no RateLimit headers"; fi

echo "$passed passed, $failed failed"
((failed == 0))
