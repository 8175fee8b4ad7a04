#!/usr/bin/env bash
# One CLI test: run a command in a fresh temporary directory and check its exit code, that its
# stderr matches a pattern (and is one line when the exit code is 2), and that files which a
# failed run must not leave behind are absent.
#   cli_test.sh RC REGEX [--absent FILE]... [--data NAME=CONTENT]... -- COMMAND ARGS...
# --data writes a file (with printf %b escapes) into the directory before the run.
set -u
want_rc=$1 regex=$2
shift 2
absent=()
work=$(mktemp -d /tmp/ssmlab-cli-XXXXXX)
trap 'rm -rf "$work"' EXIT
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  case "$1" in
    --absent) absent+=("$2"); shift 2 ;;
    --data) printf '%b' "${2#*=}" >"$work/${2%%=*}"; shift 2 ;;
    *) echo "cli_test.sh: bad argument $1" >&2; exit 99 ;;
  esac
done
shift  # --
cd "$work" || exit 99
"$@" >stdout.txt 2>stderr.txt
rc=$?
fail=0
if [ "$rc" != "$want_rc" ]; then
  echo "FAIL: exit code $rc, expected $want_rc"; fail=1
fi
if ! grep -Eq -- "$regex" stderr.txt stdout.txt; then
  echo "FAIL: output does not match /$regex/"; fail=1
fi
if [ "$want_rc" = 2 ]; then
  lines=$(wc -l <stderr.txt)
  if [ "$lines" != 1 ]; then echo "FAIL: stderr has $lines lines, expected one"; fail=1; fi
fi
for f in "${absent[@]}"; do
  if [ -e "$f" ]; then echo "FAIL: $f was left behind"; fail=1; fi
done
if ls ./*.tmp-* >/dev/null 2>&1 || ls ./.*.tmp-* >/dev/null 2>&1; then
  echo "FAIL: a temporary file was left behind"; fail=1
fi
if [ $fail = 1 ]; then
  echo "--- command: $*"; echo "--- stderr:"; tail -n 20 stderr.txt; echo "--- stdout (tail):"; tail -n 20 stdout.txt
fi
exit $fail
