#!/bin/bash
# In-VM smoke test of the harness: v4l2loopback loads with our options, a
# producer (ffmpeg) writes YUYV, and two consumers (ffmpeg, GStreamer) read it.
#   tests/vm/run.sh --v4l2loopback 0.15.x tests/vm/smoke.sh
# Artefacts: $SCOPECAM_VM_RESULTS/smoke/ (frame.png, logs).
set -euo pipefail
: "${SCOPECAM_VM_RESULTS:?run me through tests/vm/run.sh}"
OUT="$SCOPECAM_VM_RESULTS/smoke"
mkdir -p "$OUT"
DEV=/dev/video10
T0=$(date +%s.%N)
lap() { printf '[%6.2f s] %s\n' "$(echo "$(date +%s.%N) - $T0" | bc)" "$*"; }
fail() { lap "FAIL: $*"; exit 1; }

lap "load v4l2loopback ($SCOPECAM_VM_MODULE_VERSION)"
"$SCOPECAM_VM_REPO/tests/vm/load-v4l2loopback.sh" exclusive_caps=1 card_label=Borescope video_nr=10
[[ -c $DEV ]] || fail "$DEV missing"
# 0.12.7 has no MODULE_VERSION, so no version file: that is expected there.
if [[ -r /sys/module/v4l2loopback/version ]]; then
    lap "module version: $(cat /sys/module/v4l2loopback/version)"
else
    lap "module version: (no /sys/module/v4l2loopback/version)"
fi
case "$SCOPECAM_VM_MODULE_VERSION" in
    0.12.*) [[ ! -e /dev/v4l2loopback ]] || fail "unexpected /dev/v4l2loopback on 0.12" ;;
    *) [[ -c /dev/v4l2loopback ]] || fail "/dev/v4l2loopback missing on $SCOPECAM_VM_MODULE_VERSION"
       lap "/dev/v4l2loopback present" ;;
esac
[[ -c /dev/uinput ]] && lap "/dev/uinput present"

# -d: without it v4l2-ctl also opens /dev/video0 and fails when that is absent.
v4l2-ctl -d $DEV --list-devices | tee "$OUT/list-devices.txt"
grep -q Borescope "$OUT/list-devices.txt" || fail "Borescope not listed"

lap "start producer (ffmpeg testsrc2 -> yuyv422 -> $DEV)"
ffmpeg -hide_banner -loglevel error -re -f lavfi -i testsrc2=size=640x480:rate=15 \
    -t 120 -pix_fmt yuyv422 -f v4l2 $DEV 2>"$OUT/producer.log" &
PRODUCER=$!
trap 'kill $PRODUCER 2>/dev/null || true' EXIT

# With exclusive_caps=1 the node advertises CAPTURE only once a writer is set up.
for i in $(seq 1 100); do
    if v4l2-ctl -d $DEV --info 2>/dev/null | sed -n '/Device Caps/,$p' | grep -q 'Video Capture'; then
        break
    fi
    kill -0 $PRODUCER 2>/dev/null || { cat "$OUT/producer.log"; fail "producer died"; }
    ((i == 100)) && fail "device never turned into a capture device"
    sleep 0.2
done
lap "device advertises Video Capture"
v4l2-ctl -d $DEV --all > "$OUT/v4l2-ctl-all.txt" 2>&1 || true
grep -E 'Width/Height|Pixel Format' "$OUT/v4l2-ctl-all.txt" | head -3

lap "ffmpeg capture: 10 frames"
ffmpeg -hide_banner -loglevel error -f v4l2 -i $DEV -frames:v 10 -f rawvideo -pix_fmt yuyv422 \
    -y "$OUT/capture.yuv" 2>"$OUT/ffmpeg-capture.log" || { cat "$OUT/ffmpeg-capture.log"; fail "ffmpeg capture"; }
size=$(stat -c %s "$OUT/capture.yuv")
((size == 10 * 640 * 480 * 2)) || fail "captured $size bytes, want $((10 * 640 * 480 * 2))"
ffmpeg -hide_banner -loglevel error -f rawvideo -pix_fmt yuyv422 -s 640x480 -i "$OUT/capture.yuv" \
    -frames:v 1 -y "$OUT/frame.png"
rm -f "$OUT/capture.yuv"
lap "ffmpeg capture ok ($size bytes)"

lap "gst-launch-1.0 v4l2src num-buffers=10"
gst-launch-1.0 -q v4l2src device=$DEV num-buffers=10 ! video/x-raw,format=YUY2 ! fakesink \
    >"$OUT/gst.log" 2>&1 || { cat "$OUT/gst.log"; fail "gst-launch"; }
lap "gst ok"

kill $PRODUCER 2>/dev/null || true
wait $PRODUCER 2>/dev/null || true
lap "PASS smoke v4l2loopback $SCOPECAM_VM_MODULE_VERSION"
