#!/bin/bash
# scopecam next to OBS Studio's virtual camera, inside the system VM (systemd,
# udev, the installed .deb), as root:
#
#   cargo build --example obs_virtualcam
#   tests/vm/system/run.sh --deb target/debian/scopecam_<ver>_amd64.deb \
#       [--v4l2loopback 0.12.7|0.15.x] tests/vm/system/obs-side-by-side.sh
#
# OBS is examples/obs_virtualcam.rs: OBS's own choice of device (load the
# module with its options if it is not loaded, then the first /dev/video* that
# accepts output, with OBS's caps workaround), then frames until killed.
#
# Checks:
#   1. OBS first (it loads the module), then two scopes: OBS keeps its node,
#      each scope gets its own camera with the scope's picture, no restarts.
#   2. OBS restarted while both scopes stream: it takes neither scope's node
#      (0.13+; on 0.12 it can, see step 2).
#   3. The scope first (the unit loads the module), then OBS: OBS takes a node
#      that is not the Borescope's; the unit stays up without restarts.
#   4. 0.13+ only: a node labelled "Borescope" already held by a producer
#      (OBS on a node an administrator labelled so): the bridge creates
#      another camera instead of failing.
#
# Env: SCOPECAM_VM_BIN=PATH (see desktop-camera.sh), SCOPECAM_VM_OBS=PATH
#      (default: the repo's target/debug/examples/obs_virtualcam).
set -euo pipefail

R=${SCOPECAM_VM_RESULTS:-/tmp}
# shellcheck source=tests/vm/system/lib.sh
source "${SCOPECAM_VM_REPO:-$(cd "$(dirname "$0")/../../.." && pwd)}/tests/vm/system/lib.sh"
W=320 H=240

OBS_BIN=${SCOPECAM_VM_OBS:-$SCOPECAM_VM_REPO/target/debug/examples/obs_virtualcam}
[[ -x "$OBS_BIN" ]] || { echo "FAIL - no $OBS_BIN: cargo build --example obs_virtualcam"; exit 1; }

declare -A SIM_PID=()
NAMESPACES=()
OBS_PID=""
on_exit() {
    local rc=$?
    if ((fails > 0 || rc != 0)); then
        echo
        echo "== journal excerpts"
        journalctl -b --no-pager -o short-monotonic -u 'scopecam@*' -u 'modprobe@*' | tail -80 || true
        for f in "$R"/obs-*.log; do [[ -f "$f" ]] && { echo "-- $f"; tail -5 "$f"; }; done
    fi
    [[ -n "$OBS_PID" ]] && kill "$OBS_PID" 2>/dev/null
    end_scenario obs-side-by-side "$rc" "${SIM_PID[@]}"
}
trap on_exit EXIT

step "install the package, v4l2loopback $SCOPECAM_VM_MODULE_VERSION"
install_deb "$R/dpkg.log"
# The veths have fixed addresses, not leases from the scope: name them scope links.
printf 'width = %d\nheight = %d\nscope_interfaces = ["scopea0", "scopeb0"]\n' "$W" "$H" >> /etc/scopecam/config.toml
look_like_rtl8152 'scope*'
# The postinst loaded the module (through the package's hook); OBS loads it
# itself when it is not loaded, as after a boot without a scope: start there.
wait_for 20 modprobe -r v4l2loopback || die "cannot unload v4l2loopback: $(lsmod | grep v4l2loopback)"

plug() { # IFACE NS
    local ifc=$1 ns=$2
    ip netns add "$ns"; NAMESPACES+=("$ns")
    ip netns exec "$ns" ip link set lo up
    ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
    ip link add "$ifc" type veth peer name eth0 netns "$ns"
    ip netns exec "$ns" ip addr add 192.168.10.123/24 dev eth0
    ip netns exec "$ns" ip link set eth0 up
    ip netns exec "$ns" env -i PATH="$PATH" scopecam simulate --bind 192.168.10.123 \
        --width "$W" --height "$H" --fps 10 > "$R/simulator-$ns.log" 2>&1 &
    SIM_PID[$ns]=$!
    wait_for 20 bash -c "ip netns exec $ns ss -Hlun | grep -q '192.168.10.123:50000'" \
        || die "simulator in $ns did not start"
    ip addr add 192.168.10.100/24 dev "$ifc"
    ip link set "$ifc" up
}
unplug() { # IFACE NS
    ip link del "$1"
    kill "${SIM_PID[$2]}" 2>/dev/null || true
    wait "${SIM_PID[$2]}" 2>/dev/null || true
    unset "SIM_PID[$2]"
    ip netns del "$2"
    wait_for 30 state_is "scopecam@$1.service" inactive || bad "scopecam@$1 did not stop"
}
# camera IFACE: the unit is active; prints its node.
camera() {
    local unit=scopecam@$1.service
    wait_for 90 state_is "$unit" active \
        || { bad "$unit: $(prop "$unit" ActiveState)/$(prop "$unit" SubState), NRestarts=$(prop "$unit" NRestarts)"; return 1; }
    grep -o '"device": *"[^"]*"' "/run/scopecam/$1.json" | cut -d'"' -f4
}
# the_scope DEV TAG: a V4L2 reader gets the scope's pattern (white bar top
# left), not OBS's grey.
the_scope() {
    local out="$R/frame-$2.yuv"
    if timeout 60 v4l2-ctl -d "$1" --stream-mmap --stream-count=2 --stream-to="$out" > "$R/v4l2-ctl-$2.log" 2>&1; then
        local y
        y=$(od -An -tu1 -j $((W * H * 2)) -N1 "$out" | tr -d ' ')
        ((y > 180)) && ok "$2: $1 shows the scope (top-left Y $y)" || bad "$2: $1 top-left Y $y: not the scope's picture"
    else
        bad "$2: cannot read $1: $(tail -1 "$R/v4l2-ctl-$2.log")"
    fi
    rm -f "$out"
}
obs_start() { # TAG
    "$OBS_BIN" "$W" "$H" > "$R/obs-$1.log" 2>&1 &
    OBS_PID=$!
    if wait_for 30 grep -q '^took ' "$R/obs-$1.log"; then
        OBS_DEV=$(sed -n 's/^took //p' "$R/obs-$1.log")
        ok "OBS took $OBS_DEV ('$(cat "/sys/class/video4linux/${OBS_DEV#/dev/}/name")')"
    else
        bad "OBS's virtual camera did not start: $(tail -2 "$R/obs-$1.log" | tr '\n' ' ')"
        OBS_DEV=none
    fi
}
obs_stop() { kill "$OBS_PID" 2>/dev/null || true; wait "$OBS_PID" 2>/dev/null || true; OBS_PID=""; }
no_restarts() {
    local u n
    for u in "$@"; do
        n=$(prop "scopecam@$u.service" NRestarts)
        [[ "$n" == 0 ]] && ok "scopecam@$u: no restarts" || bad "scopecam@$u restarted $n times"
    done
}

# --- 1. OBS first, then two scopes -------------------------------------------------
step "OBS's virtual camera first (it loads the module), then two scopes"
obs_start first
plug scopea0 scopeA
dev_a=$(camera scopea0) || exit 1
plug scopeb0 scopeB
dev_b=$(camera scopeb0) || exit 1
[[ "$dev_a" != "$OBS_DEV" && "$dev_b" != "$OBS_DEV" && "$dev_a" != "$dev_b" ]] \
    && ok "three producers, three nodes: OBS $OBS_DEV, scope A $dev_a, scope B $dev_b" \
    || bad "nodes collide: OBS $OBS_DEV, scope A $dev_a, scope B $dev_b"
the_scope "$dev_a" a
the_scope "$dev_b" b
kill -0 "$OBS_PID" 2>/dev/null && ok "OBS still writing to $OBS_DEV" || bad "OBS stopped: $(tail -1 "$R/obs-first.log")"

# --- 2. OBS restarted while both scopes stream -------------------------------------
# Not on 0.12: there OBS's own node is left without output caps after its
# first run ("works once"), OBS's caps workaround then fails on it and
# succeeds on the next node, a streaming Borescope: 0.12 lets a second fd
# STREAMON the output side, and OBS writes into the scope's camera. Nothing
# the producer does prevents it (docs/desktop.md); 0.13+ is checked here.
if [[ -e /dev/v4l2loopback ]]; then
    step "OBS restarts its virtual camera while both scopes stream"
    obs_stop
    obs_start again
    [[ "$OBS_DEV" != "$dev_a" && "$OBS_DEV" != "$dev_b" ]] && ok "OBS took neither scope's node" \
        || bad "OBS took a scope's node ($OBS_DEV; scopes $dev_a $dev_b)"
    sleep 5
    the_scope "$dev_a" a-after-obs
else
    echo "   (OBS restarted next to streaming scopes: not on v4l2loopback 0.12, see the comment)"
fi
no_restarts scopea0 scopeb0
obs_stop
unplug scopea0 scopeA
unplug scopeb0 scopeB

# --- 3. the scope first (the unit loads the module), then OBS ------------------------
step "the scope first, then OBS"
wait_for 20 modprobe -r v4l2loopback || bad "cannot unload v4l2loopback: $(lsmod | grep v4l2loopback)"
plug scopea0 scopeA2
dev_a=$(camera scopea0) || exit 1
echo "   loopback nodes: $(for n in /sys/class/video4linux/video*; do printf '%s=%s; ' "${n##*/}" "$(cat "$n/name")"; done)"
obs_start after
[[ "$OBS_DEV" != "$dev_a" ]] && ok "OBS started after the scope took $OBS_DEV, not the Borescope ($dev_a)" \
    || bad "OBS took the Borescope's node $dev_a"
sleep 5
the_scope "$dev_a" a2
no_restarts scopea0
obs_stop
unplug scopea0 scopeA2

# --- 4. a "Borescope" node held by another producer (0.13+) --------------------------
if [[ -e /dev/v4l2loopback ]]; then
    step "a node labelled Borescope held by another producer"
    wait_for 20 modprobe -r v4l2loopback || bad "cannot unload v4l2loopback"
    modprobe v4l2loopback video_nr=42 card_label=Borescope exclusive_caps=1
    obs_start held
    [[ "$OBS_DEV" == /dev/video42 ]] || bad "OBS took $OBS_DEV, wanted the only node /dev/video42"
    plug scopea0 scopeA3
    dev_a=$(camera scopea0) || exit 1
    [[ "$dev_a" != /dev/video42 ]] && ok "the bridge made its own camera $dev_a next to the held /dev/video42" \
        || bad "the bridge reports the held node /dev/video42"
    grep -q 'created by scopecam' "/run/scopecam/scopea0.json" && ok "state: $(grep -o '"output": *"[^"]*"' /run/scopecam/scopea0.json)" \
        || bad "the state file does not say the camera was created"
    the_scope "$dev_a" a3
    no_restarts scopea0
    obs_stop
    unplug scopea0 scopeA3
    [[ ! -e "$dev_a" ]] && ok "the created $dev_a is gone after the unplug" || bad "$dev_a left behind"
else
    echo "   (step 4 needs v4l2loopback 0.13+: 0.12 cannot create cameras)"
fi
