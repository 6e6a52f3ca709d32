#!/bin/bash
# Runs inside the VM (chrooted into the host root + tmpfs overlay), started by
# the initramfs of tests/vm/run.sh. Sets the guest up, runs the test script,
# and reports its exit code both in $RESULTS/.vm/rc and on the console.
set -uo pipefail
RESULTS="$1"
# shellcheck disable=SC1091
source "$RESULTS/.vm/env"
echo "SCOPECAM_VM_BOOTED=$(cut -d' ' -f1 /proc/uptime)"

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:${PATH:-}
export HOME=/root TERM=dumb LANG=C.UTF-8
# The guest's /tmp is a fresh tmpfs; results survive only in $SCOPECAM_VM_RESULTS.
cd "$SCOPECAM_VM_REPO"

ip link set lo up

# Make a plain `modprobe v4l2loopback` (udev-less units, modprobe@) load the
# version under test: the host's DKMS copy sits where modules.dep points, and
# the overlay lets us replace it for this boot only without running depmod.
dkms_ko=$(modprobe -n -v v4l2loopback 2>/dev/null | awk '$1=="insmod"{print $2}' | tail -1)
if [[ -n "$SCOPECAM_VM_MODULE" ]]; then
    if [[ -n "$dkms_ko" ]]; then
        cp "$SCOPECAM_VM_MODULE" "$dkms_ko"
    else
        mkdir -p "/lib/modules/$SCOPECAM_VM_KVER/extra"
        cp "$SCOPECAM_VM_MODULE" "/lib/modules/$SCOPECAM_VM_KVER/extra/"
        depmod "$SCOPECAM_VM_KVER"
    fi
elif [[ -n "$dkms_ko" ]]; then
    rm -f "$dkms_ko"   # --v4l2loopback none: really none
fi

if [[ "$SCOPECAM_VM_UINPUT" == 1 ]]; then
    modprobe uinput || echo "guest-main: modprobe uinput failed" >&2
fi


t0=$(cut -d' ' -f1 /proc/uptime)
timeout -k 5 "$SCOPECAM_VM_SCRIPT_TIMEOUT" bash "${SCOPECAM_VM_ARGV[@]}" </dev/null
rc=$?
t1=$(cut -d' ' -f1 /proc/uptime)
((rc == 124)) && echo "guest-main: script timed out after ${SCOPECAM_VM_SCRIPT_TIMEOUT}s" >&2
echo "$rc" > "$RESULTS/.vm/rc"
sync
echo "SCOPECAM_VM_SCRIPT_SECONDS=$(echo "$t1 - $t0" | bc 2>/dev/null || echo ?)"
echo "SCOPECAM_VM_EXIT=$rc"
