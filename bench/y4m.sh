#!/usr/bin/env bash
# The whole bridge process writing y4m beside ffmpeg decoding the same frames, in one run.
#
#   bench/y4m.sh [SIZE] [FPS] [ROUNDS]      (defaults: 1280x720 60 5)
#
# Makes a 600-frame 4:2:2 `testsrc2` MJPEG file with ffmpeg (-q:v 5), then, ROUNDS times
# in turn (so a drift in the machine's speed hits both alike):
#   bridge:  `scopecam simulate --file F --fps FPS` on 127.0.0.1 (its own process, not
#            counted) and `scopecam run --output y4m:/dev/null --frames 600` against it;
#            the bridge's whole process CPU (user + system, from getrusage of the child:
#            start-up, sockets, reassembly, decode, conversion, y4m writing);
#   ffmpeg:  `ffmpeg -threads 1 -f mjpeg -i F -f null -`, its whole process CPU the same way.
# Prints CPU ms per frame for each round and the bridge's peak resident memory, then the
# medians and the CPU ratio. Only loopback is used. Figures move between runs on shared
# machines: read the ratio of one run.
set -euo pipefail

cd "$(dirname "$0")/.."
size=${1:-1280x720}
fps=${2:-60}
rounds=${3:-5}
frames=600
work=target/bench-y4m
mkdir -p "$work"
file="$work/testsrc2_${size}_422.mjpeg"
if [[ ! -s $file ]]; then
    ffmpeg -loglevel error -f lavfi -i "testsrc2=s=${size}:r=30" -frames:v "$frames" \
        -q:v 5 -pix_fmt yuvj422p -f mjpeg -y "$file"
fi
cargo build --release --quiet
bin=target/release/scopecam

# CPU seconds (user + system) and peak RSS (KiB) of one command run to completion, from
# getrusage.
cpu_of() {
    python3 - "$@" <<'EOF'
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(r.ru_utime + r.ru_stime, r.ru_maxrss)
EOF
}

# Free loopback ports for the simulator, so parallel runs do not collide.
port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

bridge_cpu() {
    local video control sim
    video=$(port)
    control=$(port)
    "$bin" simulate --bind 127.0.0.1 --video-port "$video" --control-port "$control" \
        --file "$file" --fps "$fps" >/dev/null 2>&1 &
    sim=$!
    cpu_of "$bin" run --scope 127.0.0.1 --video-port "$video" --control-port "$control" \
        --output y4m:/dev/null --frames "$frames"
    kill "$sim" 2>/dev/null || true
    wait "$sim" 2>/dev/null || true
}

ffmpeg_cpu() { cpu_of ffmpeg -nostdin -threads 1 -f mjpeg -i "$file" -f null -; }

# "CPU RSS" -> CPU ms per frame; -> RSS in MiB.
ms() { awk -v s="${1% *}" -v n="$frames" 'BEGIN { printf "%.3f", s * 1000 / n }'; }
mib() { awk -v k="${1#* }" 'BEGIN { printf "%.1f", k / 1024 }'; }
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

echo "$size at $fps fps, $frames frames a run, $rounds rounds; CPU ms per frame (whole process)"
printf '%-6s %12s %12s %16s\n' round "bridge y4m" "ffmpeg -f null" "bridge RSS MiB"
b_all=() f_all=() r_all=()
for ((i = 1; i <= rounds; i++)); do
    bridge=$(bridge_cpu)
    b=$(ms "$bridge")
    r=$(mib "$bridge")
    f=$(ms "$(ffmpeg_cpu)")
    b_all+=("$b") f_all+=("$f") r_all+=("$r")
    printf '%-6s %12s %12s %16s\n' "$i" "$b" "$f" "$r"
done
b_med=$(printf '%s\n' "${b_all[@]}" | median)
f_med=$(printf '%s\n' "${f_all[@]}" | median)
r_med=$(printf '%s\n' "${r_all[@]}" | median)
printf '%-6s %12s %12s %16s   bridge / ffmpeg = %s\n' median "$b_med" "$f_med" "$r_med" \
    "$(awk -v a="$b_med" -v b="$f_med" 'BEGIN { printf "%.2fx", a / b }')"
