#!/usr/bin/env bash
# browser_check.py must fail on tests/browser/broken.html, naming each of its three defects
# (a missing image, a broken local link, a JavaScript error) and none of its good parts.
#   browser_broken_test.sh CHECKER FIXTURE_DIR
set -uo pipefail
checker=$1 fixture=$2
work=$(mktemp -d /tmp/ssmlab-browser-XXXXXX)
trap 'rm -rf "$work"' EXIT
"$checker" "$fixture/broken.html" "$work/shot.png" >"$work/out.txt" 2>&1
rc=$?
fail() { echo "FAIL: $*"; echo "--- browser_check.py said:"; cat "$work/out.txt"; exit 1; }
[ "$rc" = 1 ] || fail "exit code $rc, expected 1"
grep -q 'image did not load (natural width 0): .*missing-figure.png' "$work/out.txt" || fail "missing image not reported"
grep -q 'broken link to a local file: .*missing-data.csv' "$work/out.txt" || fail "broken link not reported"
grep -q 'JavaScript error: ReferenceError: undefinedFunctionOnPurpose' "$work/out.txt" || fail "JS error not reported"
! grep -q 'good.svg\|example.org\|#top' "$work/out.txt" || fail "a good image or link was reported"
[ -s "$work/shot.png" ] || fail "no screenshot written"
echo "browser check catches all three defects:"; cat "$work/out.txt"
