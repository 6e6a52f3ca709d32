#!/bin/bash
# In the VM: `format = "mjpeg"` passes the scope's JPEGs through to the camera.
#   tests/vm/run.sh --v4l2loopback 0.15.x --memory 1G tests/vm/mjpeg-passthrough.sh
# Simulated scope streaming a 640x480 .mjpeg -> `scopecam run` (v4l2, mjpeg) ->
# v4l2loopback -> ffmpeg `-input_format mjpeg -c copy`: the device must say
# MJPG 640x480, the captured frames must be the source JPEGs byte for byte, and
# once the scope stops, a "no signal" JPEG of 640x480 must arrive.
# Artefacts: $SCOPECAM_VM_RESULTS/mjpeg-<version>/.
set -euo pipefail
NAME=mjpeg
# shellcheck source=tests/vm/lib.sh
source "$SCOPECAM_VM_REPO/tests/vm/lib.sh"

# split MJPEG DIR PREFIX: one file per JPEG (SOI .. EOI), prints the count.
split() {
    python3 - "$1" "$2" "$3" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
frames, at = [], 0
while True:
    start = data.find(b"\xff\xd8", at)
    if start < 0:
        break
    end = data.find(b"\xff\xd9", start)
    if end < 0:
        break
    frames.append(data[start:end + 2])
    at = end + 2
for i, f in enumerate(frames):
    open(f"{sys.argv[2]}/{sys.argv[3]}-{i}.jpg", "wb").write(f)
print(len(frames))
PY
}
size_of() { ffprobe -v error -select_streams v:0 -show_entries stream=width,height -of csv=p=0:s=x "$1"; }

"$REPO/tests/vm/load-v4l2loopback.sh" exclusive_caps=1 card_label=Borescope video_nr=10 >/dev/null
DEV=/dev/video10
[[ -e $DEV ]] || fail "no $DEV after loading v4l2loopback"
lap "v4l2loopback $VER loaded: $DEV"

SRC=$OUT/src.mjpeg
ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=640x480:rate=15 -frames:v 6 \
    -q:v 3 -f mjpeg "$SRC"
mkdir -p "$OUT/src" "$OUT/cap" "$OUT/idle"
n=$(split "$SRC" "$OUT/src" src)
((n == 6)) || fail "source has $n frames, want 6"
lap "source: $n JPEGs of $(size_of "$OUT/src/src-0.jpg"), $(stat -c %s "$SRC") bytes"
# One frame of another size in the loop: nothing scales it, so it must be skipped.
ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=320x240:rate=15 -frames:v 1 \
    -q:v 3 -f mjpeg "$OUT/small.jpg"
cat "$OUT/small.jpg" >>"$SRC"

CONF=$OUT/config.toml
cat >"$CONF" <<CONF
output = "v4l2"
format = "mjpeg"
width = 640
height = 480
hold_last_frame_ms = 500
no_signal_fps = 5
summary_interval_s = 5
CONF
"${SCOPECAM[@]}" simulate --bind 127.0.0.1 --file "$SRC" --fps 15 >>"$OUT/simulator.log" 2>&1 &
SIM=$!
PIDS+=("$SIM")
RUST_LOG=scopecam=info "${SCOPECAM[@]}" run --config "$CONF" --scope 127.0.0.1 >>"$OUT/bridge.log" 2>&1 &
BRIDGE=$!
PIDS+=("$BRIDGE")
for _ in $(seq 1 100); do
    v4l2-ctl -d "$DEV" --info 2>/dev/null | sed -n '/Device Caps/,$p' | grep -q 'Video Capture' && break
    kill -0 "$BRIDGE" 2>/dev/null || fail "scopecam exited"
    sleep 0.2
done
v4l2-ctl -d "$DEV" --get-fmt-video >"$OUT/fmt.txt" 2>&1 || fail "v4l2-ctl --get-fmt-video: $(cat "$OUT/fmt.txt")"
lap "format: $(grep -E 'Width/Height|Pixel Format|Size Image' "$OUT/fmt.txt" | tr -s ' \t' ' ' | paste -sd ';')"
grep -q "Pixel Format.*'MJPG'" "$OUT/fmt.txt" || fail "the device's format is not MJPG"
grep -q "Width/Height *: 640/480" "$OUT/fmt.txt" || fail "the device's size is not 640x480"

sleep 2
timeout 60 ffmpeg -hide_banner -loglevel error -y -f v4l2 -input_format mjpeg -i "$DEV" -frames:v 3 \
    -c copy -f mjpeg "$OUT/out.mjpeg" 2>>"$OUT/ffmpeg.log" || fail "ffmpeg capture from $DEV"
got=$(split "$OUT/out.mjpeg" "$OUT/cap" cap)
((got == 3)) || fail "captured $got JPEGs, want 3"
for f in "$OUT"/cap/cap-*.jpg; do
    match=""
    for s in "$OUT"/src/src-*.jpg; do cmp -s "$f" "$s" && match=$(basename "$s") && break; done
    [[ -n $match ]] || fail "$(basename "$f") ($(stat -c %s "$f") bytes) is no source frame"
    lap "$(basename "$f"): $(stat -c %s "$f") bytes, identical to $match"
done

kill "$SIM"
wait "$SIM" 2>/dev/null || true
lap "simulator stopped"
sleep 3
timeout 60 ffmpeg -hide_banner -loglevel error -y -f v4l2 -input_format mjpeg -i "$DEV" -frames:v 2 \
    -c copy -f mjpeg "$OUT/idle.mjpeg" 2>>"$OUT/ffmpeg.log" || fail "ffmpeg capture of no signal"
got=$(split "$OUT/idle.mjpeg" "$OUT/idle" idle)
((got >= 1)) || fail "no JPEG captured after the scope stopped"
last=$OUT/idle/idle-$((got - 1)).jpg
for s in "$OUT"/src/src-*.jpg; do cmp -s "$last" "$s" && fail "still the scope's $(basename "$s") after it stopped"; done
ffmpeg -hide_banner -loglevel error -i "$last" -f null - 2>>"$OUT/ffmpeg.log" || fail "the no-signal JPEG does not decode"
dims=$(size_of "$last")
[[ $dims == 640x480 ]] || fail "no-signal JPEG is $dims, want 640x480"
lap "no signal: $(stat -c %s "$last")-byte JPEG of $dims, unlike every source frame"
kill -0 "$BRIDGE" 2>/dev/null || fail "scopecam exited"
kill -INT "$BRIDGE"
wait "$BRIDGE" || fail "scopecam did not stop cleanly"
grep -iE "camera output|frames|skipped|summary" "$OUT/bridge.log" | tail -4 | sed 's/^/    bridge: /'
rejected=$(grep -o 'rejected by output [0-9]*' "$OUT/bridge.log" | tail -1 | grep -o '[0-9]*$')
((${rejected:-0} > 0)) || fail "the 320x240 frames were not counted as rejected"
lap "320x240 frames skipped and counted: rejected by output $rejected"
lap "PASS: MJPEG pass-through on v4l2loopback $VER"
