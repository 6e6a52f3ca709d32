#!/usr/bin/env bash
# The bridge's CPU time per frame beside ffmpeg's, on the same MJPEG files, in one run.
#
#   bench/compare.sh [WORKDIR]      (default WORKDIR: target/compare)
#
# Makes 300-frame 4:2:2 `testsrc2` MJPEG files with ffmpeg (-q:v 5, as in the reference
# figures) at 640x480, 1280x720 and 1920x1080, builds the release example
# `frame_path_cpu`, then for each file takes the best of 3 of:
#   ffmpeg decode only:         ffmpeg -threads 1 -f mjpeg -i F -f null -
#   ffmpeg decode + YUYV:       ... -pix_fmt yuyv422 -f rawvideo -y /dev/null
#   zune-jpeg bare decode, the bridge's Decoder::decode, and the whole in-process frame
#   path (fragments -> reassembly -> decode -> YUYV copied to a buffer), from the example.
# Everything is CPU time (ffmpeg's own -benchmark utime+stime of its processing loop; the
# example's process CPU clock around its loops), one thread, ms per frame. Figures move
# 30 % between runs on shared machines: read the ratios, which come from one run.
set -euo pipefail

cd "$(dirname "$0")/.."
work=${1:-target/compare}
mkdir -p "$work"
frames=300
sizes=(640x480 1280x720 1920x1080)

for size in "${sizes[@]}"; do
    f="$work/testsrc2_${size}_422.mjpeg"
    if [[ ! -s $f ]]; then
        ffmpeg -loglevel error -f lavfi -i "testsrc2=s=${size}:r=30" -frames:v "$frames" \
            -q:v 5 -pix_fmt yuvj422p -f mjpeg -y "$f"
    fi
done

cargo build --release --quiet --example frame_path_cpu
example=target/release/examples/frame_path_cpu

# ffmpeg's CPU time (user + system, seconds) for its processing loop, from -benchmark.
ffmpeg_cpu() {
    ffmpeg -hide_banner -nostats -benchmark -threads 1 -filter_threads 1 "$@" 2>&1 |
        sed -n 's/.*bench: utime=\([0-9.]*\)s stime=\([0-9.]*\)s.*/\1 \2/p' |
        awk '{ print $1 + $2 }'
}

best_of_3() {
    local best=""
    for _ in 1 2 3; do
        local t
        t=$("$@")
        if [[ -z $best ]] || awk -v a="$t" -v b="$best" 'BEGIN { exit !(a < b) }'; then
            best=$t
        fi
    done
    echo "$best"
}

ms_per_frame() { awk -v s="$1" -v n="$frames" 'BEGIN { printf "%.3f", s * 1000 / n }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }

echo "$(date -u +%Y-%m-%d), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'),"
echo "$(ffmpeg -version | head -1 | cut -d' ' -f1-3); $frames frames of testsrc2 4:2:2 -q:v 5; CPU ms per frame, best of 3"
echo
printf '%-10s %8s | %8s %8s | %8s %8s %10s | %9s %9s %9s\n' \
    size "KB/frm" "ff dec" "ff+yuyv" zune decode "frame path" "path/ffd" "path/ffy" "path/zune"
for size in "${sizes[@]}"; do
    f="$work/testsrc2_${size}_422.mjpeg"
    kb=$(awk -v b="$(stat -c %s "$f")" -v n="$frames" 'BEGIN { printf "%.1f", b / n / 1000 }')
    ff_dec=$(ms_per_frame "$(best_of_3 ffmpeg_cpu -f mjpeg -i "$f" -f null -)")
    ff_yuyv=$(ms_per_frame "$(best_of_3 ffmpeg_cpu -f mjpeg -i "$f" -pix_fmt yuyv422 -f rawvideo -y /dev/null)")
    own=$("$example" "$f" --passes 3 2>/dev/null)
    zune=$(awk '$1 == "zune_rgb" { print $2 }' <<<"$own")
    decode=$(awk '$1 == "decode" { print $2 }' <<<"$own")
    path=$(awk '$1 == "frame_path" { print $2 }' <<<"$own")
    printf '%-10s %8s | %8s %8s | %8s %8s %10s | %9s %9s %9s\n' "$size" "$kb" \
        "$ff_dec" "$ff_yuyv" "$zune" "$decode" "$path" \
        "$(ratio "$path" "$ff_dec")" "$(ratio "$path" "$ff_yuyv")" "$(ratio "$path" "$zune")"
done
echo
echo "ff dec: ffmpeg decode only; ff+yuyv: ffmpeg decode + convert to yuyv422 written to"
echo "/dev/null; zune: zune-jpeg bare decode to RGB; decode: the bridge's Decoder::decode"
echo "(JPEG -> limited-range YUYV); frame path: fragments -> Reassembler -> decode -> YUYV"
echo "copied into a buffer. Aims: path/ffd <= 1.15x, path/ffy <= 0.5x."
