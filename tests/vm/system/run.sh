#!/usr/bin/env bash
# Boot Debian 12's kernel under qemu (TCG) with systemd as PID 1 and udev
# running, run SCRIPT inside as a systemd unit, exit with its exit code.
#
#   tests/vm/system/run.sh [options] SCRIPT [ARGS...]
#     --deb PATH           a .deb to hand to the guest (SCOPECAM_VM_DEB there;
#                          the script installs it: installing is part of the test)
#     --v4l2loopback VER   0.12.7 (default) | 0.13.2 | 0.15.x | none
#     --memory SIZE        guest RAM, default 1G
#     --smp N              guest CPUs, default: host cores (max 2)
#     --env NAME[=VALUE]   pass an env var into the guest (repeatable)
#     --results DIR        host dir for results (default: a fresh
#                          target/vm/results/system-<timestamp>-<pid>)
#     --timeout SECS       whole-VM wall clock limit, default 480
#     --root DIR           the Debian root to boot, default target/vm/system-root
#                          (target/vm/system-root-pipewire-stable: setup.sh with
#                          SCOPECAM_VM_PIPEWIRE=stable)
#
# Needs: sudo tests/vm/setup.sh, then sudo tests/vm/system/setup.sh (the
# Debian root in target/vm/system-root). Results dir afterwards: console.log
# (the serial console), script.log (the script's output), journal.txt (the
# whole journal of that boot).
#
# How the guest is put together: a busybox initramfs loads virtio/9p/overlay,
# mounts target/vm/system-root read-only over 9p with a tmpfs overlay on top
# (every boot starts from the same clean root; writes vanish at power-off),
# mounts the results dir read-write at /vm-results and this repo read-only at
# its host path, then switch_roots to /lib/systemd/systemd. The image enables
# scopecam-vm-test.service (after multi-user.target), which runs guest-run.sh
# -> SCRIPT. qemu gets no NIC (-nic none): nothing can leave the VM.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
OUT="$REPO/target/vm"
ROOT="$OUT/system-root"

MODVER=0.12.7
MEM=1G
SMP=$(nproc); ((SMP > 2)) && SMP=2
TIMEOUT=480
RESULTS=""
DEB=""
ENVS=()
while (($#)); do
    case "$1" in
        --deb) DEB="$2"; shift 2 ;;
        --v4l2loopback) MODVER="$2"; shift 2 ;;
        --memory) MEM="$2"; shift 2 ;;
        --smp) SMP="$2"; shift 2 ;;
        --env) ENVS+=("$2"); shift 2 ;;
        --results) RESULTS="$2"; shift 2 ;;
        --timeout) TIMEOUT="$2"; shift 2 ;;
        --root) ROOT=$(realpath "$2"); shift 2 ;;
        -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
        --) shift; break ;;
        -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
(($#)) || { echo "usage: $0 [options] SCRIPT [ARGS...]" >&2; exit 2; }
SCRIPT=$(realpath "$1"); shift
[[ -f "$SCRIPT" ]] || { echo "run.sh: no such script: $SCRIPT" >&2; exit 2; }

KVER=$(cat "$OUT/kernel-version" 2>/dev/null || true)
[[ -n "$KVER" && -f /boot/vmlinuz-$KVER ]] || { echo "run.sh: run tests/vm/setup.sh first" >&2; exit 2; }
[[ -f "$ROOT/etc/scopecam-vm-key" ]] || { echo "run.sh: no $ROOT; run tests/vm/system/setup.sh first" >&2; exit 2; }
# A root built for another kernel would have no modules for this one.
[[ -d "$ROOT/lib/modules/$KVER" ]] || { echo "run.sh: $ROOT has no modules for $KVER; rerun tests/vm/system/setup.sh" >&2; exit 2; }

MODULE=""
if [[ "$MODVER" != none ]]; then
    MODULE="$OUT/modules/$MODVER/v4l2loopback.ko"
    [[ -f "$MODULE" ]] || { echo "run.sh: no $MODULE (built: $(ls "$OUT/modules" | tr '\n' ' '))" >&2; exit 2; }
fi
if [[ -n "$DEB" ]]; then
    DEB=$(realpath "$DEB")
    [[ -f "$DEB" ]] || { echo "run.sh: no such .deb: $DEB" >&2; exit 2; }
fi

if [[ -z "$RESULTS" ]]; then
    RESULTS="$OUT/results/system-$(date +%Y%m%d-%H%M%S)-$$"
fi
mkdir -p "$RESULTS"
RESULTS=$(realpath "$RESULTS")
# Paths travel on the kernel command line: keep them plain.
case "$RESULTS$REPO" in *[[:space:]]*) echo "run.sh: paths with spaces are not supported" >&2; exit 2 ;; esac

# --- initramfs (cached; rebuilt when this script or the kernel changes) -----
INITRD_MODS=(virtio_pci 9pnet_virtio 9p overlay)
initrd_key=$( { cat "$0"; echo "$KVER"; } | sha256sum | cut -c1-12)
INITRD="$OUT/system-initramfs-$KVER-$initrd_key.cpio.gz"
if [[ ! -f "$INITRD" ]]; then
    tmp=$(mktemp -d)
    mkdir -p "$tmp"/{bin,proc,sys,dev,mods,lower,upper,newroot}
    cp /bin/busybox "$tmp/bin/busybox"
    file -L "$tmp/bin/busybox" 2>/dev/null | grep -q 'statically linked' \
        || { echo "run.sh: /bin/busybox is not static: install busybox-static" >&2; exit 1; }
    : > "$tmp/mods.list"
    for m in "${INITRD_MODS[@]}"; do
        modprobe -S "$KVER" --show-depends "$m" | awk '$1=="insmod"{print $2}' | while read -r ko; do
            b=$(basename "$ko")
            grep -qx "$b" "$tmp/mods.list" || { cp "$ko" "$tmp/mods/"; echo "$b" >> "$tmp/mods.list"; }
        done
    done
    cat > "$tmp/init" <<'EOF'
#!/bin/busybox sh
# PID 1 until switch_root: assemble the root, then hand over to systemd.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /mods.list); do insmod /mods/$m || echo "initramfs: insmod $m failed"; done
fail() { echo "initramfs: $*"; echo "SCOPECAM_VM_EXIT=125"; poweroff -f; }
P9="trans=virtio,version=9p2000.L,msize=262144"
# cache=loose: the root does not change on the host during a run.
mount -t 9p -o $P9,ro,cache=loose sysroot /lower || fail "9p sysroot"
mount -t tmpfs -o mode=0755 upper /upper || fail "tmpfs"
mkdir -p /upper/u /upper/w
mount -t overlay overlay -o lowerdir=/lower,upperdir=/upper/u,workdir=/upper/w /newroot || fail "overlay"
R=/newroot
# cache=none: what the guest writes is on the host at once, even if the
# guest then dies.
mount -t 9p -o $P9,cache=none results $R/vm-results || fail "9p results"
mkdir -p $R$scopecam_repo
mount -t 9p -o $P9,ro,cache=loose repo $R$scopecam_repo || fail "9p repo"
# The v4l2loopback version under test goes where DKMS would put it (the
# path modules.dep already names), in the overlay only, before udev or
# systemd-modules-load could load the one in the image.
KO=$R/lib/modules/$(uname -r)/updates/dkms/v4l2loopback.ko
if [ -f $R/vm-results/.vm/v4l2loopback.ko ]; then
    cp $R/vm-results/.vm/v4l2loopback.ko $KO || fail "copy v4l2loopback.ko"
else
    rm -f $KO   # --v4l2loopback none: as on a machine without the module
fi
umount /proc /sys /dev
exec switch_root $R /lib/systemd/systemd
EOF
    chmod +x "$tmp/init"
    (cd "$tmp" && find . | cpio -o -H newc --quiet | gzip -1) > "$INITRD.$$"
    mv "$INITRD.$$" "$INITRD"  # atomic: parallel runs may race here
    rm -rf "$tmp"
    echo "run.sh: built $INITRD"
fi

# --- per-run control files in the results dir ---------------------------------
CTL="$RESULTS/.vm"
rm -rf "$CTL"
mkdir -p "$CTL"
cp "$HERE/guest-run.sh" "$CTL/guest-run.sh"
# The script travels in the share: it may live anywhere on the host.
cp "$SCRIPT" "$CTL/script"
[[ -n "$MODULE" ]] && cp "$MODULE" "$CTL/v4l2loopback.ko"
GUEST_DEB=""
if [[ -n "$DEB" ]]; then
    cp "$DEB" "$CTL/"
    GUEST_DEB="/vm-results/.vm/$(basename "$DEB")"
fi
{
    for e in "${ENVS[@]}"; do
        if [[ "$e" == *=* ]]; then n=${e%%=*}; v=${e#*=}; else n=$e; v=${!e-}; fi
        printf 'export %s=%q\n' "$n" "$v"
    done
    printf 'export SCOPECAM_VM_REPO=%q\n' "$REPO"
    printf 'export SCOPECAM_VM_RESULTS=/vm-results\n'
    printf 'export SCOPECAM_VM_HOST_RESULTS=%q\n' "$RESULTS"
    printf 'export SCOPECAM_VM_KVER=%q\n' "$KVER"
    printf 'export SCOPECAM_VM_MODULE_VERSION=%q\n' "$MODVER"
    printf 'export SCOPECAM_VM_DEB=%q\n' "$GUEST_DEB"
    printf 'export SCOPECAM_VM_SCRIPT_TIMEOUT=%q\n' "$((TIMEOUT > 90 ? TIMEOUT - 45 : TIMEOUT * 2 / 3))"
    printf 'SCOPECAM_VM_ARGV=(%s)\n' "$(printf '%q ' "/vm-results/.vm/script" "$@")"
} > "$CTL/env"

# --- boot ------------------------------------------------------------------
LOG="$RESULTS/console.log"
echo "run.sh: kernel $KVER, systemd root $ROOT, v4l2loopback $MODVER, ${MEM} RAM, $SMP cpu${DEB:+, deb $(basename "$DEB")}"
echo "run.sh: results $RESULTS"
t_start=$(date +%s.%N)
set +e
# -nic none: no guest network device: 192.168.10.x traffic of the test stays
# on veths inside the guest. stdin /dev/null: CI has none.
# systemd.show_status=error: the console shows the test, not every unit.
timeout -k 10 "$TIMEOUT" qemu-system-x86_64 \
    -accel tcg,thread=multi -cpu max -smp "$SMP" -m "$MEM" \
    -kernel "/boot/vmlinuz-$KVER" -initrd "$INITRD" \
    -append "console=ttyS0 quiet loglevel=4 panic=-1 mitigations=off systemd.show_status=error scopecam_repo=$REPO" \
    -nic none -display none -vga none -monitor none -serial stdio -no-reboot \
    -virtfs "local,path=$ROOT,mount_tag=sysroot,security_model=none,readonly=on,multidevs=remap" \
    -virtfs "local,path=$REPO,mount_tag=repo,security_model=none,readonly=on,multidevs=remap" \
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
        echo "run.sh: VM timed out after ${TIMEOUT}s (console: $LOG)" >&2; rc=124
    else
        echo "run.sh: VM ended (qemu rc $qrc) without reporting an exit code (console: $LOG)" >&2; rc=125
    fi
fi
boot=$(grep -a -o 'SCOPECAM_VM_BOOTED=[0-9.]*' "$LOG" | head -1 | cut -d= -f2 || true)
printf 'run.sh: exit %s; VM wall time %.1f s (test unit started at %s s guest uptime); journal: %s\n' \
    "$rc" "$elapsed" "${boot:-?}" "$RESULTS/journal.txt"
exit "$rc"
