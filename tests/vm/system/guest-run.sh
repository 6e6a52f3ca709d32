#!/bin/bash
# Runs inside the system VM as the unit scopecam-vm-test.service (systemd is
# PID 1; the unit is ordered after multi-user.target). run.sh copies this file
# into the results share, so editing it needs no rebuild of the root.
# Runs the test script, saves its output and the journal, reports the exit
# code in /vm-results/.vm/rc and on the console, then powers off at once.
set -uo pipefail
R=/vm-results
# shellcheck disable=SC1091
source "$R/.vm/env"
echo "SCOPECAM_VM_BOOTED=$(cut -d' ' -f1 /proc/uptime)"

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=dumb LANG=C.UTF-8
cd "$SCOPECAM_VM_REPO" 2>/dev/null || cd /

# Tell how the boot went before the script runs (the script may wait again).
state=$(timeout 60 systemctl is-system-running --wait 2>&1)
echo "SCOPECAM_VM_SYSTEM_STATE=$state at $(cut -d' ' -f1 /proc/uptime) s"
if [[ "$state" != running ]]; then
    echo "guest-run: failed units:"; systemctl --failed --no-pager --plain --no-legend
fi

t0=$(cut -d' ' -f1 /proc/uptime)
timeout -k 5 "$SCOPECAM_VM_SCRIPT_TIMEOUT" bash "${SCOPECAM_VM_ARGV[@]}" </dev/null 2>&1 \
    | tee "$R/script.log"
rc=${PIPESTATUS[0]}
t1=$(cut -d' ' -f1 /proc/uptime)
((rc == 124)) && echo "guest-run: script timed out after ${SCOPECAM_VM_SCRIPT_TIMEOUT}s"

# The whole journal of this boot, for failures the script did not explain.
journalctl -b --no-pager -o short-monotonic > "$R/journal.txt" 2>&1
echo "$rc" > "$R/.vm/rc"
sync
echo "SCOPECAM_VM_SCRIPT_SECONDS=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')"
echo "SCOPECAM_VM_EXIT=$rc"
# -ff: no orderly shutdown. Everything worth keeping is on the host already
# (9p with cache=none writes through); stopping every unit costs TCG seconds.
systemctl poweroff -ff
