#!/usr/bin/env bash
# Boot Debian's kernel under qemu (TCG: KVM is not usable here) and run a
# script inside it as root; exit with the script's exit code.
#
#   tests/vm/run.sh [options] SCRIPT [ARGS...]
#     --v4l2loopback VER   0.12.7 (default) | 0.13.2 | 0.15.x | none
#     --memory SIZE        guest RAM, default 1G (Chromium wants 2G)
#     --smp N              guest CPUs, default: host cores (max 2)
#     --env NAME[=VALUE]   pass an env var into the guest (repeatable);
#                          NAME alone copies the host's value
#     --results DIR        host dir shared read-write with the guest at the
#                          same absolute path (default: a fresh
#                          target/vm/results/<timestamp>); the guest sees it
#                          as $SCOPECAM_VM_RESULTS
#     --timeout SECS       whole-VM wall clock limit, default 600
#     --no-uinput          do not modprobe uinput before the script
#
# How the guest is put together (why not virtme-ng: see tests/vm/README.md):
# a tiny busybox initramfs loads virtio/9p/overlay modules, mounts the host's
# / read-only over 9p with a tmpfs overlay on top (so every host binary and
# library works, and anything may be written without touching the host),
# mounts the results dir read-write over 9p at its host path, then chroots
# into that and runs tests/vm/guest-main.sh, which runs SCRIPT. The guest has
# no network device at all: only loopback.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT="$REPO/target/vm"

MODVER=0.12.7
MEM=1G
SMP=$(nproc); ((SMP > 2)) && SMP=2
TIMEOUT=600
RESULTS=""
UINPUT=1
ENVS=()
while (($#)); do
    case "$1" in
        --v4l2loopback) MODVER="$2"; shift 2 ;;
        --memory) MEM="$2"; shift 2 ;;
        --smp) SMP="$2"; shift 2 ;;
        --env) ENVS+=("$2"); shift 2 ;;
        --results) RESULTS="$2"; shift 2 ;;
        --timeout) TIMEOUT="$2"; shift 2 ;;
        --no-uinput) UINPUT=0; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        --) shift; break ;;
        -*) echo "unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
(($#)) || { echo "usage: $0 [options] SCRIPT [ARGS...]" >&2; exit 2; }
SCRIPT=$(realpath "$1"); shift
[[ -f "$SCRIPT" ]] || { echo "no such script: $SCRIPT" >&2; exit 2; }

KVER=$(cat "$OUT/kernel-version" 2>/dev/null || true)
[[ -n "$KVER" && -f /boot/vmlinuz-$KVER ]] || { echo "run tests/vm/setup.sh first" >&2; exit 2; }

MODULE=""
if [[ "$MODVER" != none ]]; then
    MODULE="$OUT/modules/$MODVER/v4l2loopback.ko"
    [[ -f "$MODULE" ]] || { echo "no $MODULE (built: $(ls "$OUT/modules" | tr '\n' ' '))" >&2; exit 2; }
fi

if [[ -z "$RESULTS" ]]; then
    RESULTS="$OUT/results/$(date +%Y%m%d-%H%M%S)-$$"
fi
mkdir -p "$RESULTS"
RESULTS=$(realpath "$RESULTS")
# Paths travel on the kernel command line and in shell files: keep them plain.
case "$RESULTS$SCRIPT$REPO" in *[[:space:]]*) echo "paths with spaces are not supported" >&2; exit 2 ;; esac

# --- initramfs (cached; rebuilt when this script or the kernel changes) -----
INITRD_MODS=(virtio_pci 9pnet_virtio 9p overlay)
initrd_key=$( { cat "$0"; echo "$KVER"; } | sha256sum | cut -c1-12)
INITRD="$OUT/initramfs-$KVER-$initrd_key.cpio.gz"
if [[ ! -f "$INITRD" ]]; then
    t0=$(date +%s.%N)
    tmp=$(mktemp -d)
    mkdir -p "$tmp"/{bin,proc,sys,dev,mods,lower,upper,newroot}
    cp /bin/busybox "$tmp/bin/busybox"
    file -L "$tmp/bin/busybox" 2>/dev/null | grep -q 'statically linked' \
        || ldd "$tmp/bin/busybox" 2>&1 | grep -q 'not a dynamic' \
        || { echo "/bin/busybox is not static: install busybox-static" >&2; exit 1; }
    : > "$tmp/mods.list"
    for m in "${INITRD_MODS[@]}"; do
        modprobe -S "$KVER" --show-depends "$m" | awk '$1=="insmod"{print $2}' | while read -r ko; do
            b=$(basename "$ko")
            grep -qx "$b" "$tmp/mods.list" || { cp "$ko" "$tmp/mods/"; echo "$b" >> "$tmp/mods.list"; }
        done
    done
    cat > "$tmp/init" <<'EOF'
#!/bin/busybox sh
# PID 1 in the guest: mount the host root, chroot, run guest-main.sh, power off.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /mods.list); do insmod /mods/$m || echo "initramfs: insmod $m failed"; done
fail() { echo "initramfs: $*"; echo "SCOPECAM_VM_EXIT=125"; poweroff -f; }
# cache=loose: the host root is read-only and does not change during a run,
# and it makes loading big binaries (chromium) much faster than cache=none.
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=262144 hostroot /lower || fail "9p hostroot"
mount -t tmpfs -o mode=0755 upper /upper || fail "tmpfs"
mkdir -p /upper/u /upper/w
mount -t overlay overlay -o lowerdir=/lower,upperdir=/upper/u,workdir=/upper/w /newroot || fail "overlay"
R=/newroot
mount -t proc proc $R/proc
mount -t sysfs sys $R/sys
mount -t devtmpfs dev $R/dev
mkdir -p $R/dev/pts $R/dev/shm
# devtmpfs lacks these; bash process substitution needs /dev/fd
ln -sf /proc/self/fd $R/dev/fd
ln -sf /proc/self/fd/0 $R/dev/stdin
ln -sf /proc/self/fd/1 $R/dev/stdout
ln -sf /proc/self/fd/2 $R/dev/stderr
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts $R/dev/pts
mount -t tmpfs -o mode=1777 shm $R/dev/shm
# /tmp stays the overlay: host files there (test scripts) stay visible, writes stay in the guest
mount -t tmpfs -o mode=0755 run $R/run
# results: read-write at the same absolute path as on the host
mkdir -p $R$scopecam_results
mount -t 9p -o trans=virtio,version=9p2000.L,cache=none,msize=262144 results $R$scopecam_results || fail "9p results"
chroot $R /bin/bash $scopecam_repo/tests/vm/guest-main.sh $scopecam_results
sync
umount $R$scopecam_results 2>/dev/null
poweroff -f
EOF
    chmod +x "$tmp/init"
    (cd "$tmp" && find . | cpio -o -H newc --quiet | gzip -1) > "$INITRD.$$"
    mv "$INITRD.$$" "$INITRD"  # atomic: parallel runs may race here
    rm -rf "$tmp"
    printf 'run.sh: built %s (%s) in %.1f s\n' "$INITRD" "$(du -h "$INITRD" | cut -f1)" \
        "$(echo "$(date +%s.%N) - $t0" | bc)"
fi

# --- per-run control files in the results dir ---------------------------------
CTL="$RESULTS/.vm"
mkdir -p "$CTL"
{
    for e in "${ENVS[@]}"; do
        if [[ "$e" == *=* ]]; then n=${e%%=*}; v=${e#*=}; else n=$e; v=${!e-}; fi
        printf 'export %s=%q\n' "$n" "$v"
    done
    printf 'export SCOPECAM_VM_REPO=%q\n' "$REPO"
    printf 'export SCOPECAM_VM_RESULTS=%q\n' "$RESULTS"
    printf 'export SCOPECAM_VM_KVER=%q\n' "$KVER"
    printf 'export SCOPECAM_VM_MODULE=%q\n' "$MODULE"
    printf 'export SCOPECAM_VM_MODULE_VERSION=%q\n' "$MODVER"
    printf 'export SCOPECAM_VM_UINPUT=%q\n' "$UINPUT"
    # the script's own time limit, a bit inside the VM's so rc still comes out
    printf 'export SCOPECAM_VM_SCRIPT_TIMEOUT=%q\n' "$((TIMEOUT > 60 ? TIMEOUT - 30 : TIMEOUT * 2 / 3))"
    printf 'SCOPECAM_VM_ARGV=(%s)\n' "$(printf '%q ' "$SCRIPT" "$@")"
} > "$CTL/env"
rm -f "$CTL/rc"

# --- boot ------------------------------------------------------------------
LOG="$RESULTS/console.log"
echo "run.sh: kernel $KVER, v4l2loopback $MODVER, ${MEM} RAM, $SMP cpu, results $RESULTS"
t_start=$(date +%s.%N)
set +e
# -nic none: no guest network device at all (loopback only inside).
# stdin from /dev/null: CI has none, and qemu must not grab a terminal.
timeout -k 10 "$TIMEOUT" qemu-system-x86_64 \
    -accel tcg,thread=multi -cpu max -smp "$SMP" -m "$MEM" \
    -kernel "/boot/vmlinuz-$KVER" -initrd "$INITRD" \
    -append "console=ttyS0 quiet loglevel=4 panic=-1 mitigations=off scopecam_repo=$REPO scopecam_results=$RESULTS" \
    -nic none -display none -vga none -monitor none -serial stdio -no-reboot \
    -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
    -virtfs "local,path=$RESULTS,mount_tag=results,security_model=none,multidevs=remap" \
    </dev/null 2>&1 | tee "$LOG"
qrc=${PIPESTATUS[0]}
set -e
elapsed=$(echo "$(date +%s.%N) - $t_start" | bc)

rc=""
[[ -f "$CTL/rc" ]] && rc=$(cat "$CTL/rc")
if [[ -z "$rc" ]]; then
    rc=$(grep -a -o 'SCOPECAM_VM_EXIT=[0-9]*' "$LOG" | tail -1 | cut -d= -f2 || true)
fi
if [[ -z "$rc" ]]; then
    if ((qrc == 124 || qrc == 137)); then
        echo "run.sh: VM timed out after ${TIMEOUT}s" >&2; rc=124
    else
        echo "run.sh: VM ended (qemu rc $qrc) without reporting an exit code" >&2; rc=125
    fi
fi
boot=$(grep -a -o 'SCOPECAM_VM_BOOTED=[0-9.]*' "$LOG" | head -1 | cut -d= -f2 || true)
printf 'run.sh: exit %s; VM wall time %.1f s (guest reached the script at %s s uptime)\n' \
    "$rc" "$elapsed" "${boot:-?}"
exit "$rc"
