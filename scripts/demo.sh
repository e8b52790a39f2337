#!/usr/bin/env bash
# The BLCR walk-through of the seed document, end to end, with crbox's tools:
#   1. the counter under plain `cr_run`, checkpointed, killed, restarted with the same pid;
#   2. the counter under `cr_run --sandbox`, checkpointed, and restarted in a fresh sandbox while
#      the original still runs: both print, both are pid 2 inside;
#   3. the seed's other way: the counter linked with -lcr_run and run without cr_run.
# Usage: scripts/demo.sh [BUILD_DIR]   (as root; ./dev demo builds first)
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
export PATH="$BUILD/cli:$PATH"
# Outside /tmp: a sandbox gets a private /tmp, where the program would not be found.
WORK=$(mktemp -d /var/tmp/crbox-demo.XXXXXX)
cleanup() {
  pkill -P $$ 2>/dev/null || true
  for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK"
# Descriptors this shell inherited (an editor's or CI agent's pipes) would be inherited by the
# counter too, and a pipe to some other process cannot be checkpointed: close them.
for fd in /proc/$$/fd/*; do
  n=${fd##*/}
  if [ "$n" -gt 2 ] 2>/dev/null; then eval "exec $n>&-" 2>/dev/null || true; fi
done

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

cat > test_blcr.c <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main (){
  int i;
  i = 0;
  while( i < 100 ) {
    printf( "i = %d\n", i );
    sleep( 2 );
    i++;
  }
  return EXIT_SUCCESS;
}
C
# Output goes through a pipe here, so the script can follow it and a restarted counter prints where
# cr_restart prints; stdbuf keeps it line-buffered as on a terminal.
BUF="stdbuf -oL"
say "The seed's counter"
run gcc -o test_blcr test_blcr.c

# The application's host pid: cr_run's child, or for a sandbox the program under the sandbox's init.
wait_line() {  # file pattern
  for _ in $(seq 1 100); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "demo: timed out waiting for '$2' in $1" >&2; return 1
}
# A named pipe whose reader copies into FILE: output through a pipe, as on a terminal.
pipe_to() {
  mkfifo "$1.fifo"
  cat "$1.fifo" > "$1" &
  echo "$1.fifo"
}
# (cr_run also adopts the `cat` of the process substitution that carries its output: skip it.)
child_of() {
  for c in $(cat "/proc/$1/task/$1/children" 2>/dev/null); do
    [ "$(cat "/proc/$c/comm" 2>/dev/null)" = cat ] || { echo "$c"; return; }
  done
}

say "1. BLCR's way: cr_run, cr_checkpoint --pid, kill, cr_restart"
printf '$ cr_run ./test_blcr &\n'
cr_run $BUF ./test_blcr > "$(pipe_to plain.out)" &
RUNNER=$!
wait_line plain.out "i = 3"
APP=$(child_of $RUNNER)
cat plain.out
run cr_checkpoint --pid "$APP"
run ls -l "context.$APP"
printf '$ kill %s\n' "$APP"; kill "$APP"; wait "$RUNNER" 2>/dev/null || true
printf '$ cr_restart context.%s\n' "$APP"
cr_restart "context.$APP" > "$(pipe_to plain-restart.out)" &
RESTART=$!
wait_line plain-restart.out "i = 5"
kill "$RESTART"; wait "$RESTART" 2>/dev/null || true
cat plain-restart.out
last=$(grep -o '[0-9]*' plain.out | tail -1)
first=$(grep -o '[0-9]*' plain-restart.out | head -1)
[ "$first" -eq $((last + 1)) ] || { echo "demo: FAILED: after i = $last the restart printed i = $first" >&2; exit 1; }
echo "(restarted as pid $APP again, continuing at i = $first)"

say "2. In a sandbox: restarted in fresh namespaces while the original runs on"
printf '$ cr_run --sandbox ./test_blcr &\n'
cr_run --sandbox $BUF ./test_blcr > "$(pipe_to sandbox.out)" &
RUNNER=$!
wait_line sandbox.out "i = 3"
INIT=$(child_of $RUNNER)
APP=$(child_of "$INIT")
run cr_run --list
run cr_checkpoint --pid "$APP"
printf '$ cr_restart context.%s &\n' "$APP"
cr_restart "context.$APP" > "$(pipe_to sandbox-restart.out)" &
RESTART=$!
wait_line sandbox-restart.out "i = 6"
run cr_run --list
for a in $(cr_run --list | awk 'NR>1 {print $3}'); do printf 'host pid %s: ' "$a"; grep NSpid "/proc/$a/status"; done
kill "$RESTART" "$RUNNER"; wait 2>/dev/null || true
echo "-- original sandbox:"; cat sandbox.out
echo "-- restarted sandbox:"; cat sandbox-restart.out
say "3. The other way: linked with libcr_run, run directly"
# The seed's setup: the libraries in LD_LIBRARY_PATH (and, to link, in LIBRARY_PATH).
export LIBRARY_PATH="$BUILD/runtime/libcr" LD_LIBRARY_PATH="$BUILD/runtime/libcr"
run gcc -o test_blcr_lcr test_blcr.c -lcr_run
printf '$ ./test_blcr_lcr &
'
$BUF ./test_blcr_lcr > "$(pipe_to linked.out)" &
APP=$!
disown "$APP"  # (its death by --kill is expected: no job notice)
wait_line linked.out "i = 2"
cat linked.out
run cr_checkpoint --pid "$APP" --kill
printf '$ cr_restart context.%s
' "$APP"
cr_restart "context.$APP" > "$(pipe_to linked-restart.out)" &
RESTART=$!
wait_line linked-restart.out "i = 4"
kill "$RESTART"; wait "$RESTART" 2>/dev/null || true
cat linked-restart.out
last=$(grep -o '[0-9]*' linked.out | tail -1)
first=$(grep -o '[0-9]*' linked-restart.out | head -1)
[ "$first" -eq $((last + 1)) ] || { echo "demo: FAILED: after i = $last the restart printed i = $first" >&2; exit 1; }
say "Done: every run continued from its checkpoint."
