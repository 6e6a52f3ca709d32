#!/bin/bash
# In a VM without v4l2loopback (run.sh --v4l2loopback none): the camera output
# must fail at once with one clear line that says how to fix it, and exit 1.
set -uo pipefail
BIN="${SCOPECAM_BIN:-$SCOPECAM_VM_REPO/target/release/scopecam}"
cd "$SCOPECAM_VM_RESULTS"
# The harness's SCOPECAM_VM_* variables would be rejected as unknown settings.
clean=(env)
for v in $(compgen -e | grep -E '^SCOPECAM_(VM|E2E)_'); do clean+=(-u "$v"); done
"${clean[@]}" "$BIN" run --config /dev/null --scope 127.0.0.1 --output v4l2 2>err.log
rc=$?
cat err.log
[[ $rc == 1 ]] || { echo "FAIL: exit code $rc, want 1"; exit 1; }
grep -q "v4l2loopback is not loaded" err.log || { echo "FAIL: no clear reason"; exit 1; }
grep -q "modprobe v4l2loopback exclusive_caps=1 card_label=Borescope" err.log || { echo "FAIL: no fix given"; exit 1; }
echo "PASS missing module is one clear error"
