#!/usr/bin/env bash
# data/make_word.sh: synthesizes data/memory.wav, the spoken word "memory", with espeak-ng,
# then trims the leading and trailing silence and resamples it to 8 kHz, 16-bit mono with sox.
#   apt-get install espeak-ng sox      # (not needed to build or test ssmlab: the WAV is committed)
#   data/make_word.sh
# espeak-ng's output is deterministic for a given version and voice; the committed file was made
# with eSpeak NG 1.51 and SoX 14.4.2 (Debian 12).
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
espeak-ng -v en-us -s 130 -w "$tmp/raw.wav" "memory"
# silence 1 0.01 0.5%: drop the start until 10 ms above 0.5% of full scale; reversing twice does
# the same at the end.
sox "$tmp/raw.wav" -r 8000 -b 16 "$tmp/word.wav" silence 1 0.01 0.5% reverse silence 1 0.01 0.5% reverse
mv "$tmp/word.wav" memory.wav
echo "wrote data/memory.wav ($(soxi -s memory.wav) samples at $(soxi -r memory.wav) Hz)"
