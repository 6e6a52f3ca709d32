#!/bin/bash
# Headless Chromium opens tests/vm/chromium-camera.html, which takes the
# default camera with getUserMedia and reports labels and colours.
#   tests/vm/chromium-check.sh EXPECTED_LABEL [R,G,B [TOLERANCE]]
# Prints one line "CHROMIUM_RESULT {json}" and exits 0 when the label is
# listed (and, if given, the centre region's colour is within TOLERANCE,
# default 40, on every channel). A producer must already be writing.
# Env: CHROMIUM_TIMEOUT (s, default 150), CHROMIUM_LOG (stderr log path),
#      CHROMIUM_EXTRA_FLAGS (appended to the command line, word-split).
set -euo pipefail
WANT_LABEL="${1:?usage: $0 EXPECTED_LABEL [R,G,B [TOLERANCE]]}"
WANT_RGB="${2:-}"
TOL="${3:-40}"
HERE=$(cd "$(dirname "$0")" && pwd)
TIMEOUT="${CHROMIUM_TIMEOUT:-150}"
LOG="${CHROMIUM_LOG:-$(mktemp /tmp/chromium-check.XXXXXX.log)}"
PROFILE=$(mktemp -d /tmp/chromium-profile.XXXXXX)
T0=$(date +%s.%N)

# --no-sandbox: we are root in the VM, and the setuid/namespace sandbox adds
#   nothing there. --use-fake-ui-for-media-stream: auto-accept the camera
#   prompt (the *device* stays real; not --use-fake-device-for-media-stream).
# The rest keep Chromium from reaching for the network or doing background work.
# setsid: its own process group, so cleanup can end the zygote/renderer/gpu
# children too (by group id) instead of leaving them spinning under TCG.
# shellcheck disable=SC2086
setsid chromium --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --use-fake-ui-for-media-stream --autoplay-policy=no-user-gesture-required \
    --disable-background-networking --disable-component-update --disable-sync \
    --disable-default-apps --disable-extensions --no-first-run --no-default-browser-check \
    --disable-features=MediaRouter,OptimizationHints,Translate \
    --user-data-dir="$PROFILE" --enable-logging=stderr --v=0 \
    ${CHROMIUM_EXTRA_FLAGS:-} \
    "file://$HERE/chromium-camera.html?label=$WANT_LABEL" >"$LOG" 2>&1 &
PID=$!
# SIGKILL: a clean Chromium shutdown takes many seconds under TCG, for nothing.
cleanup() {
    kill -KILL -- "-$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    rm -rf "$PROFILE"
    printf 'chromium-check: done after %.1f s\n' "$(echo "$(date +%s.%N) - $T0" | bc)" >&2
}
trap cleanup EXIT

json=""
deadline=$(( $(date +%s) + TIMEOUT ))
while (( $(date +%s) < deadline )); do
    # console.log lands as: [..:INFO:CONSOLE(n)] "SCOPECAM_RESULT {...}", source: ...
    json=$(grep -a -o 'SCOPECAM_RESULT {.*}' "$LOG" | head -1 | sed 's/^SCOPECAM_RESULT //' || true)
    [[ -n "$json" ]] && break
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.5
done
secs=$(echo "$(date +%s.%N) - $T0" | bc)
if [[ -z "$json" ]]; then
    why="no result within ${TIMEOUT}s"
    kill -0 "$PID" 2>/dev/null || why="chromium exited without a result"
    echo "CHROMIUM_RESULT {\"ok\":false,\"error\":\"$why\",\"seconds\":$secs,\"log\":\"$LOG\"}"
    tail -30 "$LOG" >&2
    exit 1
fi
# Judge in python: label match (done in the page) and the colour check.
# /usr/bin/python3, not a pyenv shim on PATH: the shim adds ~1 s under TCG.
PY=/usr/bin/python3; [[ -x $PY ]] || PY=python3
"$PY" - "$json" "$WANT_RGB" "$TOL" "$secs" "$LOG" <<'PY'
import json, sys
r = json.loads(sys.argv[1]); want, tol = sys.argv[2], int(sys.argv[3])
r["seconds"] = round(float(sys.argv[4]), 1); r["log"] = sys.argv[5]
ok = bool(r.get("ok"))
if ok and want:
    exp = [int(x) for x in want.split(",")]
    r["expected_rgb"] = exp
    ok = all(abs(a - b) <= tol for a, b in zip(r["center"], exp))
    r["colour_ok"] = ok
r["ok"] = ok
print("CHROMIUM_RESULT " + json.dumps(r, separators=(",", ":")))
sys.exit(0 if ok else 1)
PY
