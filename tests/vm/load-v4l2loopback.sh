#!/bin/bash
# In the VM: load the v4l2loopback version chosen with run.sh --v4l2loopback,
# with the given module options, e.g.
#   tests/vm/load-v4l2loopback.sh exclusive_caps=1 card_label=Borescope video_nr=10
# Unloads a loaded copy first, so tests can reload with other options.
# Prints the /dev/videoN nodes it created.
set -euo pipefail
: "${SCOPECAM_VM_MODULE:?not in a scopecam VM, or run with --v4l2loopback none}"
modprobe videodev
if [[ -d /sys/module/v4l2loopback ]]; then
    rmmod v4l2loopback
fi
before=$(ls /dev/video* 2>/dev/null || true)
insmod "$SCOPECAM_VM_MODULE" "$@"
# devtmpfs creates nodes synchronously with device_add, but be tolerant.
for _ in 1 2 3 4 5 6 7 8 9 10; do
    after=$(ls /dev/video* 2>/dev/null || true)
    [[ "$after" != "$before" ]] && break
    sleep 0.2
done
comm -13 <(echo "$before" | tr ' ' '\n' | sort) <(echo "$after" | tr ' ' '\n' | sort) | grep . || true
