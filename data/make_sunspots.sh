#!/usr/bin/env bash
# data/make_sunspots.sh: writes data/sunspots.csv, the yearly sunspot numbers 1700-2008 from the
# NOAA National Geophysical Data Center, as shipped (public domain) in Debian's
# python3-statsmodels package (statsmodels/datasets/sunspots/sunspots.csv).
#   data/make_sunspots.sh      # needs apt-get (downloads the .deb; nothing is installed)
# The committed file was made from python3-statsmodels 0.13.5+dfsg-7 (Debian 12).
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download python3-statsmodels >/dev/null 2>&1)
dpkg-deb -x "$tmp"/python3-statsmodels_*.deb "$tmp/x"
src=$(find "$tmp/x" -path '*statsmodels/datasets/sunspots/sunspots.csv' | head -n 1)
[ -n "$src" ] || { echo "make_sunspots.sh: sunspots.csv not found in the package" >&2; exit 1; }
# The source has a quoted header "YEAR","SUNACTIVITY" and one year per line; write a plain
# header and keep the numbers as they are.
{
  echo "year,sunspots"
  tail -n +2 "$src" | tr -d '"\r'
} > sunspots.csv.tmp
mv sunspots.csv.tmp sunspots.csv
echo "wrote data/sunspots.csv ($(($(wc -l < sunspots.csv) - 1)) years)"
