#!/bin/bash
# In-VM: does headless Chromium see and read the loopback camera?
#   tests/vm/run.sh --memory 2G --v4l2loopback 0.15.x tests/vm/chromium-vm-test.sh
# ffmpeg feeds a solid colour; Chromium must list "Borescope" and see that colour.
set -euo pipefail
: "${SCOPECAM_VM_RESULTS:?run me through tests/vm/run.sh}"
DEV=/dev/video10
T0=$(date +%s.%N)
lap() { printf '[%6.2f s] %s\n' "$(echo "$(date +%s.%N) - $T0" | bc)" "$*"; }
"$SCOPECAM_VM_REPO/tests/vm/load-v4l2loopback.sh" exclusive_caps=1 card_label=Borescope video_nr=10
# Full-range red (255,0,0) through yuyv422: comes back near (254,0,0).
ffmpeg -hide_banner -loglevel error -re -f lavfi -i color=c=red:size=640x480:rate=15 \
    -t 300 -pix_fmt yuyv422 -f v4l2 $DEV &
P=$!
trap 'kill $P 2>/dev/null || true; lap "done"' EXIT
lap "producer started"
for _ in $(seq 1 100); do
    v4l2-ctl -d $DEV --info 2>/dev/null | sed -n '/Device Caps/,$p' | grep -q 'Video Capture' && break
    sleep 0.2
done
lap "device is a capture device; starting chromium"
CHROMIUM_LOG="$SCOPECAM_VM_RESULTS/chromium.log" \
    "$SCOPECAM_VM_REPO/tests/vm/chromium-check.sh" Borescope 255,0,0 | tee "$SCOPECAM_VM_RESULTS/chromium-result.txt"
