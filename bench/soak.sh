#!/usr/bin/env bash
# Soak: simulator + bridge for a long, bounded time with faults on; fails on growth or stalls.
#
#   bench/soak.sh [SECONDS] [WORKDIR]     (defaults: 180, target/soak)
#
# CI runs 180 s; for a real soak give hours (bench/soak.sh 14400). Both processes run on
# 127.74.0.1 (loopback only: nothing leaves this machine). The simulated scope sends a
# SOAK_WIDTH x SOAK_HEIGHT (default 640x480; SOAK_WIDTH=1920 SOAK_HEIGHT=1080 is the
# largest scope, what the unit's MemoryMax= is measured with) pattern at 30 fps with 2 % loss, 5 % duplication, 5 % reordering, junk before
# 5 % of the fragments (all kinds, including 9000-byte and lying-size datagrams), 5 % of
# frames interleaved with the next, and the resolution switching to 320x240 and back
# every 30 frames (the y4m output keeps the first size and counts the others as rejected).
# The bridge decodes and converts every frame into y4m:/dev/null.
#
# Every SOAK_SAMPLE_S seconds (default 1) it appends to WORKDIR/soak.csv: seconds since
# start, the bridge's resident memory (VmRSS, KiB), its open file descriptors and the
# frames written (from the bridge's once-a-second summary line). It fails if:
#   - the bridge dies, or does not exit 0 on SIGTERM at the end;
#   - no new frame is written for more than SOAK_STALL_S seconds (default 5; the 1 s
#     summary and sampling granularity and the 1 s phases of the other size are within it);
#   - RSS at the end exceeds RSS after warm-up (SOAK_WARMUP_S, default 30 s or a sixth of
#     the run, whichever is shorter) by more than SOAK_RSS_SLACK_KB (default 2048);
#   - the number of open descriptors after warm-up ever differs from the one at warm-up;
#   - the bridge's peak resident memory (VmHWM) exceeds SOAK_RSS_MAX_KIB (default 65536:
#     the 640x480 soak peaks near 20 MiB; give the bound for other sizes, e.g. 1080p);
#   - it ever runs more than SOAK_THREADS_MAX threads (default 16).
# The peak RSS and the most threads seen are printed: docs/security.md derives the unit's
# MemoryMax= and TasksMax= from them.
# SOAK_BIN picks the binary (default: target/release/scopecam, built if missing); it is not
# a SCOPECAM_ variable because the bridge refuses unknown ones.
set -euo pipefail

cd "$(dirname "$0")/.."
duration=${1:-180}
work=${2:-target/soak}
sample=${SOAK_SAMPLE_S:-1}
stall_limit=${SOAK_STALL_S:-5}
slack_kb=${SOAK_RSS_SLACK_KB:-2048}
warmup=${SOAK_WARMUP_S:-$(( duration / 6 < 30 ? duration / 6 : 30 ))}
width=${SOAK_WIDTH:-640}
height=${SOAK_HEIGHT:-480}
rss_max_kib=${SOAK_RSS_MAX_KIB:-65536}
threads_max=${SOAK_THREADS_MAX:-16}
ip=127.74.0.1 # loopback, never the real scope

[[ $duration =~ ^[0-9]+$ && $duration -ge 12 ]] || { echo "soak: SECONDS must be a whole number >= 12" >&2; exit 2; }
bin=${SOAK_BIN:-}
if [[ -z $bin ]]; then
    bin=target/release/scopecam
    [[ -x $bin ]] || cargo build --release --locked --quiet
fi
mkdir -p "$work"
csv=$work/soak.csv
sim_log=$work/simulator.log
bridge_log=$work/bridge.log

sim_pid=
bridge_pid=
cleanup() {
    # Only the two processes this script started, by pid.
    [[ -n $bridge_pid ]] && kill "$bridge_pid" 2>/dev/null || true
    [[ -n $sim_pid ]] && kill "$sim_pid" 2>/dev/null || true
}
trap cleanup EXIT

"$bin" simulate --bind "$ip" --width "$width" --height "$height" --fps 30 --seed 1 \
    --loss 0.02 --duplicate 0.05 --reorder 0.05 --garbage 0.05 --interleave 0.05 \
    --resize-every 30 2>"$sim_log" &
sim_pid=$!
env -u SCOPECAM_CONFIG SCOPECAM_SUMMARY_INTERVAL_S=1 RUST_LOG=scopecam=info \
    "$bin" run --config /dev/null --scope "$ip" --output y4m:/dev/null 2>"$bridge_log" &
bridge_pid=$!

rss_of() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
hwm_of() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }
threads_of() { awk '/^Threads:/ { print $2 }' "/proc/$1/status"; }
fds_of() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
frames_written() {
    { grep -o '[0-9]* frames written' "$bridge_log" || echo "0 frames written"; } | tail -n 1 | cut -d' ' -f1
}

failures=()
echo "seconds,rss_kib,fds,frames_written" >"$csv"
start=$SECONDS
last_frames=0
last_progress=$start
rss_first= rss_warm= fds_warm= rss_max=0 rss_end=0 fds_end=0 hwm=0 threads_seen=0
while (( SECONDS - start < duration )); do
    sleep "$sample"
    if ! kill -0 "$bridge_pid" 2>/dev/null; then
        failures+=("the bridge died after $(( SECONDS - start )) s (see $bridge_log)")
        bridge_pid=
        break
    fi
    t=$(( SECONDS - start ))
    rss=$(rss_of "$bridge_pid")
    fds=$(fds_of "$bridge_pid")
    frames=$(frames_written)
    hwm=$(hwm_of "$bridge_pid")
    threads=$(threads_of "$bridge_pid")
    (( threads > threads_seen )) && threads_seen=$threads
    echo "$t,$rss,$fds,$frames" >>"$csv"
    rss_first=${rss_first:-$rss}
    if (( frames > last_frames )); then
        last_frames=$frames
        last_progress=$SECONDS
    elif (( t >= 5 && SECONDS - last_progress > stall_limit )); then
        failures+=("stall: no new frame for $(( SECONDS - last_progress )) s at $t s ($frames frames)")
        break
    fi
    if (( t >= warmup )); then
        if [[ -z $rss_warm ]]; then
            rss_warm=$rss
            fds_warm=$fds
        elif (( fds != fds_warm )); then
            failures+=("open descriptors went from $fds_warm to $fds at $t s")
            break
        fi
        (( rss > rss_max )) && rss_max=$rss
    fi
    rss_end=$rss
    fds_end=$fds
done
elapsed=$(( SECONDS - start ))

if [[ -n $bridge_pid ]]; then
    kill -TERM "$bridge_pid"
    status=0
    wait "$bridge_pid" || status=$?
    bridge_pid=
    (( status == 0 )) || failures+=("the bridge exited $status after SIGTERM")
fi
kill -TERM "$sim_pid" 2>/dev/null || true
wait "$sim_pid" 2>/dev/null || true
sim_pid=

(( hwm <= rss_max_kib )) || failures+=("peak RSS $hwm KiB is above the bound of $rss_max_kib KiB")
(( threads_seen <= threads_max )) || failures+=("$threads_seen threads, more than $threads_max")
if [[ -n $rss_warm ]] && (( rss_end > rss_warm + slack_kb )); then
    failures+=("RSS grew from $rss_warm KiB after warm-up to $rss_end KiB (slack $slack_kb KiB)")
fi
grep -q panicked "$bridge_log" && failures+=("the bridge panicked (see $bridge_log)")

summary=$(grep -o 'stopped: .*' "$bridge_log" | tail -n 1 || true)
echo "soak: ${elapsed} s (asked ${duration} s, warm-up ${warmup} s), ${width}x${height}, bridge on $ip, y4m to /dev/null"
echo "frames written: $(frames_written) ($(awk -v f="$(frames_written)" -v s="$elapsed" 'BEGIN { printf "%.1f", f / (s > 0 ? s : 1) }') fps)"
echo "RSS KiB: first sample ${rss_first:-n/a}, after warm-up ${rss_warm:-n/a}, end $rss_end," \
    "max after warm-up $rss_max; drift $(( rss_end - ${rss_warm:-$rss_end} )) (slack $slack_kb)"
echo "peak RSS (VmHWM) $hwm KiB (bound $rss_max_kib); threads at most $threads_seen (bound $threads_max)"
echo "open fds: after warm-up ${fds_warm:-n/a}, end $fds_end"
echo "bridge ${summary:-(no final summary)}"
echo "samples: $csv"
if (( ${#failures[@]} > 0 )); then
    printf 'soak FAILED: %s\n' "${failures[@]}" >&2
    exit 1
fi
echo "soak passed"
