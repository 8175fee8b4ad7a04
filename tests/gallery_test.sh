#!/usr/bin/env bash
# The tour's gallery generator (scripts/gallery) on a fixture: figures in the JSON order with
# their captions (HTML-escaped), relative image paths only, a warning for a figure without a
# caption, the cross-check table with PASS and FAIL rows, and no temporary file left behind.
#   gallery_test.sh GALLERY FIXTURE_DIR
set -euo pipefail
gallery=$1 fixture=$2
work=$(mktemp -d /tmp/ssmlab-gallery-XXXXXX)
trap 'rm -rf "$work"' EXIT
cp "$fixture"/a.json "$fixture"/b.json "$fixture"/captions.tsv "$work"/
cd "$work"
printf 'png' >a.png; printf 'png' >a-second.png; printf 'png' >b.png
fail() { echo "FAIL: $*"; echo "--- index.html:"; cat index.html 2>/dev/null | head -80; exit 1; }

"$gallery" . captions.tsv a.json b.json 2>stderr.txt >stdout.txt || fail "exit code $?"
grep -q 'gallery: ./index.html (3 figures, 2 cross-checks)' stdout.txt || fail "summary line: $(cat stdout.txt)"
grep -q 'no caption for a-second.png' stderr.txt || fail "no warning for the uncaptioned figure"
[ "$(grep -c '<figure' index.html)" = 3 ] || fail "expected 3 figures"
# Walk order: a.png, a-second.png, b.png.
order=$(grep -o '<img src="[^"]*"' index.html | tr '\n' ' ')
[ "$order" = '<img src="a.png" <img src="a-second.png" <img src="b.png" ' ] || fail "order: $order"
grep -q 'Title &lt;A&gt;' index.html || fail "title not escaped"
grep -q 'Notice &quot;this&quot; &amp; that.' index.html || fail "caption not escaped"
grep -q '<td>x &lt; y &amp; z</td><td>1.50e-12</td><td>1.00e-10</td><td>PASS</td>' index.html || fail "check row"
grep -q '<tr class="fail">.*a failing check.*FAIL' index.html || fail "failing row"
grep -q '1 of 2 cross-checks pass' index.html || fail "count"
! grep -Eq '(src|href)="(https?:|//|/)' index.html || fail "absolute or network path"
! grep -Eqi '<script|<link|@import' index.html || fail "external resource or script"
! ls ./*.tmp-* >/dev/null 2>&1 || fail "temporary file left behind"

# A missing figure file is reported (exit 1), bad arguments exit 2 with one line.
rm b.png
if "$gallery" . captions.tsv a.json b.json >/dev/null 2>stderr.txt; then fail "missing figure not reported"; fi
grep -q 'figure ./b.png is missing' stderr.txt || fail "missing figure message"
set +e
"$gallery" nope captions.tsv a.json >/dev/null 2>stderr.txt; rc=$?
set -e
[ $rc = 2 ] && grep -q "output folder 'nope' does not exist" stderr.txt || fail "bad folder: rc $rc"
echo "gallery: all checks pass"
