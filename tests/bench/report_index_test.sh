#!/usr/bin/env bash
# Offline check of bench/compare --report's index (bench/report-index), no load: from two run pages
# and a table, DIR/index.html holds the table with its text escaped, one heading per scenario, both
# plots of each run with ids made unique, a link to each page, and loads nothing from elsewhere.
set -euo pipefail

repo=$(readlink -f -- "$(dirname -- "${BASH_SOURCE[0]}")/../..")
work=$(mktemp -d "${TMPDIR:-/tmp}/tokend-report-index-XXXXXX")
trap 'rm -rf -- "$work"' EXIT
failures=0
expect() {  # description command...: one line per check
  if "${@:2}"; then echo "ok   $1"; else echo "FAIL $1"; failures=$((failures + 1)); fi
}

bash -n "$repo/bench/compare"
page() {  # a stand-in for a tokend-bench --report page: its two plots
  printf '<!DOCTYPE html>\n<html><body><h1>%s</h1><svg xmlns="http://www.w3.org/2000/svg" id="throughput">' "$1"
  printf '<polyline points="1,2 3,4"/></svg><svg xmlns="http://www.w3.org/2000/svg" id="latency">'
  printf '<text x="1" y="2">99.9%%</text></svg></body></html>\n'
}
page one >"$work/create-nginx-r1.html"
page two >"$work/create-tokend-r1.html"
page three >"$work/list-tokend-r1.html"
printf 'scenario  nginx cpu <us> & ratio\ncreate    13.30us\n' >"$work/tables.txt"
printf '%s\n' "create nginx 1 create-nginx-r1.html" "create tokend 1 create-tokend-r1.html" \
  "list tokend 1 list-tokend-r1.html" | "$repo/bench/report-index" "$work" "$work/tables.txt" '2 cores <x>'
index=$work/index.html

expect "index.html written" test -s "$index"
expect "the table's text is escaped" grep -qF 'nginx cpu &lt;us&gt; &amp; ratio' "$index"
expect "the subtitle is escaped" grep -qF '2 cores &lt;x&gt;' "$index"
expect "one heading per scenario" test "$(grep -c '<h2>Scenario ' "$index")" = 2
expect "both plots of every run" test "$(grep -c '<svg ' "$index")" = 6
expect "plot ids are unique" test "$(grep -o ' id="[^"]*"' "$index" | sort | uniq -d | wc -l)" = 0
expect "a link to each run page" test "$(grep -c '<a href="[a-z]*-[a-z]*-r1.html">' "$index")" = 3
expect "no script, no remote resource" \
  bash -c '! grep -qiE "<script|<link|<iframe|src=|url\(|@import" "$1" &&
    test "$(grep -o "//" "$1" | wc -l)" = "$(grep -o "xmlns=\"http://www.w3.org/2000/svg\"" "$1" | wc -l)"' _ "$index"
# Every element opened is closed (void elements written as <x/>), in order.
expect "well-formed" perl -0777 -ne '
  my @open; s/<!DOCTYPE[^>]*>//;
  while (/<(\/?)([a-zA-Z0-9]+)([^>]*?)(\/?)>/g) {
    if ($1) { exit 1 unless @open && pop(@open) eq $2 } elsif (!$4) { push @open, $2 }
  }
  exit(@open ? 1 : 0)' "$index"
rm "$work/list-tokend-r1.html"
printf '%s\n' "list tokend 1 list-tokend-r1.html" | "$repo/bench/report-index" "$work" "$work/tables.txt" x
expect "a missing run page is said, not fatal" grep -qF '(page missing)' "$index"

echo "$((10 - failures)) passed, $failures failed"
((failures == 0))
