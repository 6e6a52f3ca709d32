#!/bin/bash
# Sourced by the in-VM scopecam tests after setting NAME (the artefact folder's
# prefix): paths, timing, failure reporting, and a clean way to start scopecam.
#   NAME=camera; source "$SCOPECAM_VM_REPO/tests/vm/lib.sh"
: "${SCOPECAM_VM_RESULTS:?run me through tests/vm/run.sh}"
REPO="$SCOPECAM_VM_REPO"
VER="$SCOPECAM_VM_MODULE_VERSION"
BIN="${SCOPECAM_BIN:-$REPO/target/release/scopecam}"
OUT="$SCOPECAM_VM_RESULTS/$NAME-$VER"
mkdir -p "$OUT"
T0=$(date +%s.%N)
lap() { printf '[%6.2f s] %s\n' "$(echo "$(date +%s.%N) - $T0" | bc)" "$*"; }
fail() { lap "FAIL: $*"; for f in "$OUT"/*.log; do echo "--- $f"; tail -20 "$f"; done; exit 1; }
PIDS=()
# scopecam treats every SCOPECAM_* variable as a setting and rejects unknown
# ones, so the harness's own SCOPECAM_VM_*/SCOPECAM_E2E_* are kept from it. (An
# array, not a function: a backgrounded function is a subshell, and killing
# that would leave scopecam running.)
SCOPECAM=(env)
for v in $(compgen -e | grep -E '^SCOPECAM_(VM|E2E)_'); do SCOPECAM+=(-u "$v"); done
SCOPECAM+=("$BIN")
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
