#!/bin/bash
# In a VM without v4l2loopback (run.sh --v4l2loopback none): the camera output
# must fail at once with one clear line that says how to fix it, and exit 1.
set -uo pipefail
NAME=no-module
# shellcheck source=tests/vm/lib.sh
source "$SCOPECAM_VM_REPO/tests/vm/lib.sh"
"${SCOPECAM[@]}" run --config /dev/null --scope 127.0.0.1 --output v4l2 2>"$OUT/err.log"
rc=$?
cat "$OUT/err.log"
[[ $rc == 1 ]] || fail "exit code $rc, want 1"
grep -q "v4l2loopback is not loaded" "$OUT/err.log" || fail "no clear reason"
grep -q "modprobe v4l2loopback exclusive_caps=1 card_label=Borescope" "$OUT/err.log" || fail "no fix given"
lap "PASS missing module is one clear error"
