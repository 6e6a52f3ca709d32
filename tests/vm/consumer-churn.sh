#!/bin/bash
# In the VM: apps that open and close the camera over and over (a video call
# app probing devices, a browser tab reloaded, ...) must not break the bridge.
#   tests/vm/run.sh --v4l2loopback 0.12.7 tests/vm/consumer-churn.sh
# Simulated scope -> `scopecam run --output v4l2` -> v4l2loopback; meanwhile,
# in a loop: bare open/close of the node, a one-frame mmap capture with
# v4l2-ctl, a one-frame ffmpeg read, and a reader killed in the middle of
# streaming. What must hold: scopecam keeps running and writing (its frame
# count grows through the churn), no panic, no write error in its log, its
# open file descriptors do not grow, and a reader after the churn still gets
# a full-size frame. 0.12.7 is the version whose exclusive-caps device
# "works once" after a reader leaves, so it is the one to run this on.
# Artefacts: $SCOPECAM_VM_RESULTS/churn-<version>/.
set -euo pipefail
NAME=churn
# shellcheck source=tests/vm/lib.sh
source "$SCOPECAM_VM_REPO/tests/vm/lib.sh"

ROUNDS=${SCOPECAM_VM_CHURN_ROUNDS:-12}
WIDTH=640 HEIGHT=480
FRAME_BYTES=$((WIDTH * HEIGHT * 2))

"$REPO/tests/vm/load-v4l2loopback.sh" exclusive_caps=1 card_label=Borescope video_nr=10 >/dev/null
DEV=/dev/video10
[[ -e $DEV ]] || fail "no $DEV after loading v4l2loopback"
lap "v4l2loopback $VER loaded: $DEV"

CONF=$OUT/config.toml
cat >"$CONF" <<CONF
output = "v4l2"
width = $WIDTH
height = $HEIGHT
summary_interval_s = 2
key = "none"
CONF
"${SCOPECAM[@]}" simulate --bind 127.0.0.1 --width 320 --height 240 --fps 15 >>"$OUT/simulator.log" 2>&1 &
PIDS+=("$!")
RUST_LOG=scopecam=info "${SCOPECAM[@]}" run --config "$CONF" --scope 127.0.0.1 >>"$OUT/bridge.log" 2>&1 &
BRIDGE=$!
PIDS+=("$BRIDGE")

alive() { kill -0 "$BRIDGE" 2>/dev/null || fail "scopecam exited during the churn"; }
# Frames written so far, from the bridge's latest summary line.
written() { grep -o '[0-9]* frames written' "$OUT/bridge.log" | tail -n 1 | grep -o '^[0-9]*' || echo 0; }
fds() { ls "/proc/$BRIDGE/fd" | wc -l; }
# read_frame FILE: one frame with v4l2-ctl's mmap streaming; its size must be a full frame.
read_frame() {
    timeout 20 v4l2-ctl -d "$DEV" --stream-mmap --stream-count=1 --stream-to="$1" >/dev/null 2>&1 ||
        fail "v4l2-ctl could not read a frame"
    [[ $(stat -c %s "$1") -eq $FRAME_BYTES ]] || fail "frame of $(stat -c %s "$1") bytes, want $FRAME_BYTES"
}

for _ in $(seq 1 100); do
    v4l2-ctl -d "$DEV" --info 2>/dev/null | sed -n '/Device Caps/,$p' | grep -q 'Video Capture' && break
    alive
    sleep 0.2
done
read_frame "$OUT/first.yuv"
sleep 3 # a summary line and steady state before counting
fds_before=$(fds)
written_before=$(written)
lap "camera up; $written_before frames written, $fds_before fds; $ROUNDS rounds of churn"

for round in $(seq 1 "$ROUNDS"); do
    # Open and close without reading (a device list refresh).
    for _ in 1 2 3; do exec {fd}<"$DEV"; exec {fd}<&-; done
    read_frame "$OUT/round.yuv"
    timeout 20 ffmpeg -hide_banner -loglevel error -y -f v4l2 -i "$DEV" -frames:v 1 \
        -f rawvideo "$OUT/ffmpeg.yuv" 2>>"$OUT/ffmpeg.log" || fail "ffmpeg could not read a frame in round $round"
    # A reader killed while streaming (a crashed tab).
    v4l2-ctl -d "$DEV" --stream-mmap --stream-count=1000 --stream-to=/dev/null >/dev/null 2>&1 &
    reader=$!
    sleep 0.5
    kill -9 "$reader" 2>/dev/null || true
    wait "$reader" 2>/dev/null || true
    alive
done
lap "churn done"

sleep 3 # the next summary line
read_frame "$OUT/last.yuv"
alive
written_after=$(written)
fds_after=$(fds)
lap "after: $written_after frames written, $fds_after fds"
((written_after > written_before + 30)) ||
    fail "the bridge wrote only $((written_after - written_before)) frames during the churn"
((fds_after <= fds_before)) || fail "open fds grew from $fds_before to $fds_after"
grep -qiE 'panicked|writing the output failed' "$OUT/bridge.log" && fail "error in the bridge's log"
kill -TERM "$BRIDGE"
wait "$BRIDGE" || fail "scopecam exited with $? on SIGTERM"
lap "PASS: $ROUNDS rounds of open/close, mmap, ffmpeg and killed readers; the bridge wrote $((written_after - written_before)) frames through them"
