#!/bin/bash
# The plug-and-play scenario, run inside the system VM (systemd is
# PID 1, udev runs) as root:
#
#   packaging/build.sh            # makes target/debian/scopecam_*.deb
#   tests/vm/system/run.sh --deb target/debian/scopecam_<ver>_amd64.deb \
#       tests/vm/system/plug-and-play.sh
#
# A "scope" is a veth pair: the end named scope* stays in the guest's root
# namespace (what the user's machine sees when the scope is plugged in), the
# far end sits in a network namespace with 192.168.10.123/24 running
# `scopecam simulate`. A test-only udev rule gives scope* veths the USB
# properties of an RTL8152, so the SHIPPED 85-scopecam.rules decides, as for a
# real scope. The script never starts or stops scopecam@ units itself.
#
# Checks: the .deb installs (user, unit, rules); udev starts
# scopecam@scopea0.service, which reaches active (Type=notify: READY=1) and
# feeds the watchdog; frames reach a consumer on the "Borescope" device;
# `scopecam status` shows the bridge, also to an unprivileged user; a second
# scope gives "Borescope 2" while the first keeps running; deleting a link
# stops its unit cleanly (inactive, not failed); a namespace where nothing
# answers makes the unit exit 0 quietly, without restarts; a re-plugged scope
# streams again; and with the shipped systemd-networkd file a scope whose DHCP
# offers a router and DNS gets its address without a default route.
# /dev/uinput: before the install as the distribution made it, after it with
# one ACL entry (user scopecam rw, nobody else: not group input), still so
# after `udevadm trigger`, the key press readable from the virtual keyboard,
# and after `apt-get purge` exactly as before. An interface named with dashes
# (a leading one too) gets its escaped unit (scopecam@\x2dscope\x2de0.service)
# bound to the right device, with the state file under the plain name.
set -euo pipefail

R=${SCOPECAM_VM_RESULTS:-/tmp}
# shellcheck source=tests/vm/system/lib.sh
source "${SCOPECAM_VM_REPO:-$(cd "$(dirname "$0")/../../.." && pwd)}/tests/vm/system/lib.sh"

declare -A SIM_PID=()
NAMESPACES=()
on_exit() {
    local rc=$?
    if ((fails > 0 || rc != 0)); then
        echo
        echo "== journal excerpts (whole journal: journal.txt in the results dir)"
        journalctl -b --no-pager -o short-monotonic -u 'scopecam@*' -u 'modprobe@*' | tail -150 || true
        echo "-- udevd / pid 1 lines about scope* links"
        journalctl -b --no-pager -o short-monotonic _PID=1 -u systemd-udevd | grep -i 'scope' | tail -40 || true
        for f in "$R"/simulator-*.log; do [[ -f "$f" ]] && { echo "-- $f"; tail -20 "$f"; }; done
    fi
    end_scenario plug-and-play "$rc" "${SIM_PID[@]}"
}
trap on_exit EXIT

DEB=${SCOPECAM_VM_DEB:-}
[[ -n "$DEB" && -f "$DEB" ]] || die "no .deb: pass --deb PATH to tests/vm/system/run.sh"

step "boot"
state=$(timeout 60 systemctl is-system-running --wait || true)
[[ "$state" == running ]] && ok "system running" || { bad "is-system-running: '$state'"; systemctl --failed --no-pager || true; }

# --- 0. /dev/uinput as the distribution makes it ----------------------------
# uinput_perms: owner, group, mode and the whole ACL, one line.
uinput_perms() {
    echo "$(stat -c '%U:%G %a' /dev/uinput 2>/dev/null || echo missing) $(getfacl -cp /dev/uinput 2>/dev/null | tr '\n' ' ')"
}
# can_open USER [GROUP]: USER (with GROUP as a supplementary group) opens
# /dev/uinput for writing, as the bridge does.
can_open() {
    local extra=()
    [[ -n ${2:-} ]] && extra=(-G "$2")
    runuser -u "$1" "${extra[@]}" -- sh -c 'exec 3<>/dev/uinput' 2>/dev/null
}
step "/dev/uinput before the install"
# Usually kmod's static node (the module loads on first open, or from the
# package's modules-load.d); without one, the loaded module's node.
[[ -e /dev/uinput ]] || { modprobe uinput; udevadm settle; }
uinput_before=$(uinput_perms)
echo "   /dev/uinput: $uinput_before (module $([[ -e /sys/module/uinput ]] && echo loaded || echo 'not loaded'))"
[[ $uinput_before != *scopecam* ]] && ok "no scopecam entry on /dev/uinput before the install" \
    || bad "/dev/uinput mentions scopecam before the install: $uinput_before"

# --- 1. install -------------------------------------------------------------
step "install $(basename "$DEB")"
# As the README says: apt with the local file. The VM has no network, which is
# fine: every dependency is installed already, v4l2loopback-dkms as a stand-in
# (the module itself is the one tests/vm/setup.sh built).
if apt-get install -y --no-install-recommends "$DEB" > "$R/dpkg.log" 2>&1; then
    ok "apt-get install $(basename "$DEB")"
else
    cat "$R/dpkg.log"; die "apt-get install $DEB failed"
fi
command -v scopecam >/dev/null && ok "scopecam on PATH: $(command -v scopecam)" || die "no scopecam on PATH after install"
getent passwd scopecam >/dev/null && ok "system user scopecam exists ($(id scopecam))" \
    || bad "no user scopecam after install (sysusers.d not applied by postinst?)"
rules=$(ls /usr/lib/udev/rules.d/85-scopecam.rules /lib/udev/rules.d/85-scopecam.rules 2>/dev/null | head -1 || true)
[[ -n "$rules" ]] && ok "udev rule installed: $rules" || die "85-scopecam.rules not installed"
u_type=$(prop scopecam@probe-only.service Type)
[[ "$u_type" == notify ]] && ok "unit template found, Type=notify" \
    || die "scopecam@.service: Type='$u_type' (not found by systemd, or not Type=notify)"
echo "   unit: $(systemctl cat scopecam@probe-only.service 2>/dev/null | grep -E '^(User|WatchdogSec|Restart|NotifyAccess)=' | tr '\n' ' ')"

# /dev/uinput: user scopecam and nobody else. The install loaded the module
# (its "add" event applied the shipped 75-scopecam-uinput.rules).
step "/dev/uinput after the install"
check_uinput_acl() {
    local when=$1 acl owner
    acl=$(getfacl -cp /dev/uinput 2>/dev/null || true)
    owner=$(stat -c '%U:%G' /dev/uinput)
    echo "   /dev/uinput ($when): $(uinput_perms)"
    [[ $owner == "${uinput_before%% *}" ]] && ok "$when: owner and group still $owner" \
        || bad "$when: /dev/uinput is $owner, was ${uinput_before%% *}"
    grep -qx 'user:scopecam:rw-' <<<"$acl" && grep -qx 'mask::rw-' <<<"$acl" \
        && ok "$when: ACL entry user:scopecam:rw-, effective (mask::rw-)" \
        || bad "$when: no effective user:scopecam:rw- entry: $(tr '\n' ' ' <<<"$acl")"
    grep -qx 'group::---' <<<"$acl" && grep -qx 'other::---' <<<"$acl" \
        && ok "$when: group and other have no access (group::--- other::---)" \
        || bad "$when: group/other have access: $(tr '\n' ' ' <<<"$acl")"
    [[ $(grep -cE '^(user|group):[^:]+:' <<<"$acl") == 1 ]] \
        && ok "$when: scopecam is the only named entry" \
        || bad "$when: other named entries: $(tr '\n' ' ' <<<"$acl")"
    can_open scopecam && ok "$when: user scopecam opens /dev/uinput for writing" \
        || bad "$when: user scopecam cannot open /dev/uinput"
    ! can_open nobody input && ok "$when: a member of group input cannot open /dev/uinput" \
        || bad "$when: user nobody in group input opened /dev/uinput"
}
check_uinput_acl "after install"
id -nG scopecam | grep -qw input && bad "user scopecam is in group input: $(id scopecam)" \
    || ok "user scopecam is not in group input ($(id -nG scopecam))"
# A change event re-evaluates the node (and any rule's MODE= would chmod it,
# clearing the ACL mask): the entry must survive it.
udevadm trigger --settle --action=change --subsystem-match=misc --sysname-match=uinput
check_uinput_acl "after udevadm trigger"

# --- 2. make scope* veths look like an RTL8152 to udev -------------------------
# Test only, in /run (gone at power-off). Numbered before 80-net-setup-link and
# the shipped 85 rule, so the shipped rule sees the properties as it would
# from the stock USB import on real hardware.
mkdir -p /run/udev/rules.d
cat > /run/udev/rules.d/79-scopecam-test.rules <<'EOF'
SUBSYSTEM=="net", ACTION!="remove", KERNEL=="scope*|-scope*", ENV{ID_USB_DRIVER}="r8152", ENV{ID_VENDOR_ID}="0bda", ENV{ID_MODEL_ID}="8152"
EOF
udevadm control --reload
modprobe veth
# The scopes of steps 3-7 get their address by hand, as with ifupdown or `ip
# addr add`: no DHCP lease tells the service they are scopes, the user's list
# does. (scoped0 in step 8 is recognised by networkd's lease instead.) The
# dashed name is scope E's (step 6b).
printf '\nscope_interfaces = ["scopea0", "scopeb0", "scopec0", "-scope-e0"]\n' >> /etc/scopecam/config.toml

# make_scope IFACE NS SIMULATE(yes|no) GUEST_IP [SIMULATOR ARGS...]
# The link appears first (udev starts the unit, which waits for an address),
# then the far end comes up with the simulator, then the guest side gets its
# address, as when the scope's DHCP answers a moment after plug-in.
make_scope() {
    local ifc=$1 ns=$2 sim=$3 ip=$4
    shift 4
    ip netns add "$ns"; NAMESPACES+=("$ns")
    ip netns exec "$ns" ip link set lo up
    # The replies come back on the same veth; strict reverse-path filtering
    # is what real machines may have, but the far end is the scope here.
    ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
    T_PLUG=$SECONDS
    ip link add name "$ifc" type veth peer name eth0 netns "$ns"
    ip netns exec "$ns" ip addr add 192.168.10.123/24 dev eth0
    ip netns exec "$ns" ip link set eth0 up
    if [[ "$sim" == yes ]]; then
        ip netns exec "$ns" scopecam simulate --bind 192.168.10.123 "$@" > "$R/simulator-$ns.log" 2>&1 &
        SIM_PID[$ns]=$!
        wait_for 20 bash -c "ip netns exec $ns ss -Hlun | grep -q '192.168.10.123:50000'" \
            || die "simulator in $ns did not open 192.168.10.123:50000 (see simulator-$ns.log)"
    fi
    ip addr add "$ip/24" dev "$ifc"
    ip link set dev "$ifc" up
    echo "   $ifc: $ip/24, far end 192.168.10.123 in netns $ns (simulator: $sim), rp_filter=$(sysctl -n "net.ipv4.conf.$ifc.rp_filter")"
}

# check_started_by_udev UNIT IFACE: the device unit wants it (85-scopecam.rules
# put it in SYSTEMD_WANTS); the script never ran systemctl start.
check_started_by_udev() {
    local unit=$1 ifc=$2 wb
    wb=$(prop "$unit" WantedBy)
    # systemd records the device under its sysfs path name
    # (sys-devices-virtual-net-IFACE.device), the alias is the same unit.
    [[ " $wb " == *"-net-$ifc.device "* || " $wb " == *" sys-subsystem-net-devices-$ifc.device "* ]] \
        && ok "$unit wanted by $wb (udev's SYSTEMD_WANTS started it)" \
        || bad "$unit WantedBy='$wb' (not started through udev's SYSTEMD_WANTS?)"
}

# device_of LABEL: the /dev/videoN whose v4l2 card name is exactly LABEL.
device_of() {
    local d
    for d in /sys/class/video4linux/video*; do
        [[ -e "$d/name" && $(cat "$d/name") == "$1" ]] && { echo "/dev/$(basename "$d")"; return 0; }
    done
    return 1
}

# check_frames LABEL TAG: a consumer gets frames from the device with LABEL.
check_frames() {
    local label=$1 tag=$2 dev out
    dev=$(device_of "$label") || { bad "no video device labelled '$label' ($(cat /sys/class/video4linux/*/name 2>/dev/null | tr '\n' ',' ))"; return; }
    out="$R/frames-$tag.raw"
    if timeout 40 v4l2-ctl -d "$dev" --stream-mmap --stream-count=10 --stream-to="$out" > "$R/v4l2-ctl-$tag.log" 2>&1 \
            && [[ -s "$out" ]]; then
        ok "consumer read 10 frames from $dev ('$label'): $(stat -c %s "$out") bytes, $(v4l2-ctl -d "$dev" --get-fmt-video 2>/dev/null | grep -E 'Width/Height|Pixel Format' | tr -s ' ' | tr '\n' ' ')"
    else
        bad "v4l2-ctl could not stream from $dev ('$label'):"; tail -5 "$R/v4l2-ctl-$tag.log"
    fi
    rm -f "$out"   # ~6 MB; the size was reported
}

# check_streaming IFACE NS: the bridge gets pictures from the scope in NS, not
# just the "no signal" placeholder: the state file says streaming (contract
# fields link_state, frames_in) and that namespace's simulator saw a client
# (so the sockets went out of IFACE, not another link on the same subnet).
check_streaming() {
    local ifc=$1 ns=$2 f=/run/scopecam/$1.json
    if wait_for 30 grep -q '"link_state": *"streaming"' "$f"; then
        ok "$f: link_state streaming, frames_in $(grep -o '"frames_in": *[0-9]*' "$f" | grep -o '[0-9]*$')"
    else
        bad "$f does not say streaming within 30 s:"; cat "$f" || true
    fi
    grep -q 'client 192.168.10.100:[0-9]* connected' "$R/simulator-$ns.log" \
        && ok "the simulator in $ns served the bridge on $ifc" \
        || bad "the simulator in $ns never saw a client (simulator-$ns.log)"
}

# check_unplug UNIT IFACE: deleting the link stops the unit cleanly.
check_unplug() {
    local unit=$1 ifc=$2
    ip link del dev "$ifc"
    if wait_for 30 state_is "$unit" inactive; then
        ok "$unit inactive after 'ip link del $ifc' (Result=$(prop "$unit" Result), exit status $(prop "$unit" ExecMainStatus))"
        [[ $(prop "$unit" Result) == success ]] || bad "$unit Result=$(prop "$unit" Result), want success"
    else
        bad "$unit after unplug: $(prop "$unit" ActiveState)/$(prop "$unit" SubState) Result=$(prop "$unit" Result)"
    fi
    [[ ! -e /run/scopecam/$ifc.json ]] && ok "state file /run/scopecam/$ifc.json removed" \
        || bad "/run/scopecam/$ifc.json left behind after the unit stopped"
}

# --- 3. first scope -------------------------------------------------------------
step "scope A: plug in scopea0"
UA=scopecam@scopea0.service
# The simulated button is pressed every 5 s: snapshots must land in the
# state directory, readable by users.
make_scope scopea0 scopeA yes 192.168.10.100 --press-every 5
if wait_for 60 state_is "$UA" active; then
    ok "$UA active (Type=notify: READY=1 received) $((SECONDS - T_PLUG)) s after plug-in; status: '$(prop "$UA" StatusText)'"
else
    bad "$UA not active: $(prop "$UA" ActiveState)/$(prop "$UA" SubState) Result=$(prop "$UA" Result)"
    systemctl status --no-pager "$UA" || true
fi
check_started_by_udev "$UA" scopea0
t_a_active=$SECONDS
check_streaming scopea0 scopeA
check_frames Borescope a

# consumers are counted while one reads: keep one reading during status.
dev_a=$(device_of Borescope || echo /dev/video42)
timeout 30 v4l2-ctl -d "$dev_a" --stream-mmap --stream-count=100 --stream-to=/dev/null >/dev/null 2>&1 &
reader=$!
sleep 2
if scopecam status > "$R/status-a.txt" 2>&1; then
    grep -q scopea0 "$R/status-a.txt" && grep -q "$dev_a" "$R/status-a.txt" \
        && ok "scopecam status shows scopea0 on $dev_a" || bad "scopecam status lacks scopea0/$dev_a"
else
    bad "scopecam status exited $? with a bridge running"
fi
sed 's/^/   | /' "$R/status-a.txt"
runuser -u nobody -- scopecam status > "$R/status-a-nobody.txt" 2>&1 \
    && grep -q scopea0 "$R/status-a-nobody.txt" \
    && ok "scopecam status as an unprivileged user shows scopea0" \
    || { bad "scopecam status as user nobody:"; cat "$R/status-a-nobody.txt"; }
kill "$reader" 2>/dev/null || true; wait "$reader" 2>/dev/null || true

# The button: the bridge (user scopecam, through its ACL entry) made the
# virtual keyboard, and a press comes out of it as KEY_CAMERA down; snapshots
# are written under StateDirectory=.
journalctl -b -u "$UA" -o cat | grep -q "button presses KEY_CAMERA on virtual keyboard 'Borescope button'" \
    && ok "$UA opened /dev/uinput: virtual keyboard 'Borescope button'" \
    || { bad "$UA has no virtual keyboard:"; journalctl -b -u "$UA" -o cat | grep -i uinput; }
kbd=$(awk '/^N: Name="Borescope button"/ { f = 1 }
    f && /^H: Handlers=/ { for (i = 2; i <= NF; i++) { sub(/^Handlers=/, "", $i); if ($i ~ /^event[0-9]+$/) { print $i; exit } } }
    /^$/ { f = 0 }' /proc/bus/input/devices)
if [[ -n $kbd && -e /dev/input/$kbd ]]; then
    # struct input_event on x86-64: 16 bytes time, u16 type, u16 code, s32 value.
    # EV_KEY (1), KEY_CAMERA (212 = 0xd4), value 1 = down. Presses every 5 s.
    if timeout 20 od -An -v -tx1 -w24 -N 96 "/dev/input/$kbd" > "$R/key-events.txt" 2>&1 \
            && awk '$17 == "01" && $18 == "00" && $19 == "d4" && $20 == "00" && $21 == "01" { f = 1 } END { exit !f }' "$R/key-events.txt"; then
        ok "KEY_CAMERA press read from /dev/input/$kbd ('Borescope button')"
    else
        bad "no KEY_CAMERA press on /dev/input/$kbd within 20 s:"; cat "$R/key-events.txt"
    fi
else
    bad "no input device 'Borescope button' in /proc/bus/input/devices"
fi
if wait_for 30 bash -c 'compgen -G "/var/lib/scopecam/snapshots/*.jp*g"'; then
    snap=$(compgen -G "/var/lib/scopecam/snapshots/*.jp*g" | head -1)
    runuser -u nobody -- head -c 2 "$snap" | od -An -tx1 | grep -q 'ff d8' \
        && ok "button press saved $snap, readable by an unprivileged user" \
        || bad "$snap is not a JPEG readable by user nobody ($(stat -c '%U:%G %a' "$snap"))"
else
    bad "no snapshot in /var/lib/scopecam/snapshots after 30 s of button presses every 5 s"
    ls -la /var/lib/scopecam /var/lib/scopecam/snapshots 2>&1 || true
fi

# --- 4. second scope, both at 192.168.10.123 --------------------------------------
step "scope B: plug in scopeb0 while scopea0 runs"
UB=scopecam@scopeb0.service
# Same guest address as scope A: two scopes hand out the same DHCP lease; the
# service tells them apart by interface (SO_BINDTODEVICE), not by address.
make_scope scopeb0 scopeB yes 192.168.10.100
if wait_for 60 state_is "$UB" active; then
    ok "$UB active $((SECONDS - T_PLUG)) s after plug-in; status: '$(prop "$UB" StatusText)'"
else
    bad "$UB not active: $(prop "$UB" ActiveState)/$(prop "$UB" SubState)"
fi
check_started_by_udev "$UB" scopeb0
check_streaming scopeb0 scopeB
check_frames "Borescope 2" b
scopecam status > "$R/status-ab.txt" 2>&1 || true
grep -q scopea0 "$R/status-ab.txt" && grep -q scopeb0 "$R/status-ab.txt" \
    && ok "scopecam status shows both bridges" || { bad "scopecam status does not show both:"; cat "$R/status-ab.txt"; }

# Watchdog: WatchdogSec=10s kills a unit that stops feeding it; one that has
# been active well past that, with no restarts, is being fed.
wait_s=$((25 - (SECONDS - t_a_active)))
((wait_s > 0)) && sleep "$wait_s"
if state_is "$UA" active && [[ $(prop "$UA" NRestarts) == 0 ]]; then
    ok "$UA still active after $((SECONDS - t_a_active)) s with WatchdogUSec=$(prop "$UA" WatchdogUSec), NRestarts=0"
else
    bad "$UA: $(prop "$UA" ActiveState), NRestarts=$(prop "$UA" NRestarts) (watchdog not fed?)"
fi

# --- 5. unplug ----------------------------------------------------------------------
step "unplug scopea0"
check_unplug "$UA" scopea0
state_is "$UB" active && ok "$UB unaffected by the unplug of scopea0" || bad "$UB: $(prop "$UB" ActiveState) after scopea0 went away"
step "unplug scopeb0"
check_unplug "$UB" scopeb0

# --- 6. plug the first scope in again ------------------------------------------------
# The same camera must come back: with v4l2loopback 0.12.7 and exclusive_caps
# a node can lose its output caps after the first writer closes ("works once,
# then needs a module reload", shared INTEGRATION.md).
step "re-plug scopea0 (the same camera again)"
for ns in scopeA scopeB; do
    kill "${SIM_PID[$ns]}" 2>/dev/null || true
    wait "${SIM_PID[$ns]}" 2>/dev/null || true
    unset "SIM_PID[$ns]"
    ip netns del "$ns"
done
NAMESPACES=()
make_scope scopea0 scopeA2 yes 192.168.10.100
if wait_for 60 state_is "$UA" active; then
    ok "$UA active again $((SECONDS - T_PLUG)) s after re-plug; status: '$(prop "$UA" StatusText)'"
else
    bad "$UA not active after re-plug: $(prop "$UA" ActiveState)/$(prop "$UA" SubState) Result=$(prop "$UA" Result)"
fi
check_streaming scopea0 scopeA2
check_frames Borescope a2
check_unplug "$UA" scopea0

# --- 6b. an interface name with dashes, a leading one too -------------------------------
# Unit names read '-' as '/': udev (85-scopecam.rules) must start the escaped
# instance, whose %i names the device unit and whose %I is the name the
# bridge gets after `--` and keeps its state file under.
step "scope E: interface -scope-e0 (dashes, a leading one)"
IE=-scope-e0
UE=$(systemd-escape --template=scopecam@.service -- "$IE")
[[ $UE == 'scopecam@\x2dscope\x2de0.service' ]] || bad "systemd-escape gave $UE"
make_scope "$IE" scopeE yes 192.168.10.100
if wait_for 60 state_is "$UE" active; then
    ok "$UE active $((SECONDS - T_PLUG)) s after plug-in; status: '$(prop "$UE" StatusText)'"
else
    bad "$UE not active: $(prop "$UE" ActiveState)/$(prop "$UE" SubState) Result=$(prop "$UE" Result)"
    systemctl status --no-pager "$UE" || true
fi
dev_unit=$(systemd-escape --path --suffix=device "/sys/subsystem/net/devices/$IE")
# systemctl show quotes names with a backslash, C-style: "a-\\x2db.device".
binds=$(prop "$UE" BindsTo | sed 's/"//g; s/\\\\/\\/g')
[[ " $binds " == *" $dev_unit "* ]] && [[ $(prop "$dev_unit" ActiveState) == active ]] \
    && ok "$UE BindsTo $dev_unit, which is active (the interface's device unit)" \
    || bad "$UE BindsTo '$binds', want the active $dev_unit ($(prop "$dev_unit" ActiveState))"
exec_start=$(prop "$UE" ExecStart)
[[ $exec_start == *"argv[]=/usr/bin/scopecam service -- $IE ;"* ]] \
    && ok "ExecStart passes the plain name after --: $(grep -o 'argv\[\]=[^;]*' <<<"$exec_start")" \
    || bad "ExecStart: $exec_start"
check_streaming "$IE" scopeE
scopecam status > "$R/status-e.txt" 2>&1 || true
grep -qe "$IE" "$R/status-e.txt" && ok "scopecam status shows $IE" \
    || { bad "scopecam status does not show $IE:"; cat "$R/status-e.txt"; }
# Nothing under an unescaped or backslash-stripped name.
others=$(systemctl list-units --all --plain --no-legend 'scopecam@*' | awk '{ print $1 }' | grep -vxF "$UE" | grep -e scope-e0 -e x2dscope || true)
[[ -z $others ]] && ok "no other unit for $IE" || bad "units under wrong names: $others"
check_unplug "$UE" "$IE"
kill "${SIM_PID[scopeE]}" 2>/dev/null || true

# --- 7. an RTL8152 that is not a scope -----------------------------------------------
step "scope C: a link where nothing answers"
UC=scopecam@scopec0.service
make_scope scopec0 scopeC no 192.168.10.100
if wait_for 60 bash -c "journalctl -b -u $UC -o cat | grep -q 'no borescope answers'"; then
    ok "$UC logged: $(journalctl -b -u "$UC" -o cat | grep 'no borescope answers' | head -1)"
else
    bad "$UC did not log 'no borescope answers' within 60 s (state $(prop "$UC" ActiveState)/$(prop "$UC" SubState))"
fi
# Outlast RestartSec=2s: a restart would show up by now.
sleep 4
if state_is "$UC" inactive && [[ $(prop "$UC" Result) == success && $(prop "$UC" NRestarts) == 0 ]]; then
    ok "$UC inactive, Result=success, exit status $(prop "$UC" ExecMainStatus), NRestarts=0"
else
    bad "$UC: $(prop "$UC" ActiveState)/$(prop "$UC" SubState) Result=$(prop "$UC" Result) NRestarts=$(prop "$UC" NRestarts) exit=$(prop "$UC" ExecMainStatus)"
    # Seen with systemd 252: a Type=notify service whose main process exits 0
    # before READY=1 "Failed with result 'protocol'" and Restart=on-failure
    # restarts it.
    journalctl -b -u "$UC" -o cat | grep -q "result 'protocol'" \
        && echo "   hint: systemd counts exit 0 before READY=1 as a protocol failure; send READY=1 (and a STATUS=) before exiting 0"
fi
check_started_by_udev "$UC" scopec0
[[ ! -e /run/scopecam/scopec0.json ]] && ok "no state file for scopec0 (touched nothing)" || bad "/run/scopecam/scopec0.json exists for a non-scope"
n=$(journalctl -b -u "$UC" -o cat | grep -c 'no borescope answers' || true)
((n == 1)) && ok "one 'no borescope answers' line" || bad "'no borescope answers' logged $n times"
scopecam status > "$R/status-none.txt" 2>&1 && rc=0 || rc=$?
((rc == 3)) && ok "scopecam status exits 3 with no bridge running" || { bad "scopecam status exit $rc with no bridge running:"; cat "$R/status-none.txt"; }
ip link del scopec0

# --- 8. the whole path with the shipped systemd-networkd file ----------------------
# No address from the script this time: systemd-networkd (started only now, so
# it did not manage the links above) applies the package's .network file,
# which matches the property the shipped udev rule sets; the scope's DHCP
# server (busybox udhcpd in the namespace) offers a router and DNS, which the
# file must ignore.
step "scope D: address from the scope's DHCP via systemd-networkd"
nf=$(ls /usr/lib/systemd/network/*scopecam*.network /lib/systemd/network/*scopecam*.network 2>/dev/null | head -1 || true)
if [[ -z "$nf" ]]; then
    bad "the package ships no systemd-networkd .network file"
elif ! systemctl start systemd-networkd.service; then
    bad "systemd-networkd does not start"; systemctl status --no-pager systemd-networkd || true
else
    ok "systemd-networkd running with $nf"
    UD=scopecam@scoped0.service
    ip netns add scopeD; NAMESPACES+=(scopeD)
    ip netns exec scopeD ip link set lo up
    ip netns exec scopeD sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
    T_PLUG=$SECONDS
    ip link add scoped0 type veth peer name eth0 netns scopeD
    ip netns exec scopeD ip addr add 192.168.10.123/24 dev eth0
    ip netns exec scopeD ip link set eth0 up
    cat > /run/udhcpd-scopeD.conf <<'EOC'
start 192.168.10.100
end 192.168.10.100
interface eth0
lease_file /run/udhcpd-scopeD.leases
opt subnet 255.255.255.0
opt router 192.168.10.123
opt dns 192.168.10.123
opt lease 3600
EOC
    touch /run/udhcpd-scopeD.leases
    ip netns exec scopeD busybox udhcpd -f /run/udhcpd-scopeD.conf > "$R/udhcpd-scopeD.log" 2>&1 &
    SIM_PID[udhcpd]=$!
    ip netns exec scopeD scopecam simulate --bind 192.168.10.123 > "$R/simulator-scopeD.log" 2>&1 &
    SIM_PID[scopeD]=$!
    if wait_for 60 bash -c "journalctl -b -u systemd-networkd -o cat | grep -q 'scoped0: DHCPv4 address 192.168.10.100'"; then
        ok "networkd took the scope's DHCP lease: $(journalctl -b -u systemd-networkd -o cat | grep 'scoped0: DHCPv4 address' | head -1)"
    else
        bad "no DHCPv4 lease on scoped0 within 60 s"; journalctl -b -u systemd-networkd -o cat | grep scoped0 | tail -10 || true
    fi
    if wait_for 60 state_is "$UD" active; then
        ok "$UD active $((SECONDS - T_PLUG)) s after plug-in; status: '$(prop "$UD" StatusText)'"
    else
        bad "$UD not active: $(prop "$UD" ActiveState)/$(prop "$UD" SubState) Result=$(prop "$UD" Result)"
    fi
    check_streaming scoped0 scopeD
    def=$(ip -4 route show default)
    [[ -z "$def" ]] && ok "no default route from the scope's DHCP" || bad "default route appeared: $def"
    # networkd's per-link state names the DNS servers it would hand to resolved.
    links=/run/systemd/netif/links/$(cat /sys/class/net/scoped0/ifindex)
    if grep -q '^DNS=.*192.168.10.123' "$links" 2>/dev/null; then
        bad "networkd took the scope's DNS server ($links: $(grep '^DNS=' "$links"))"
    else
        ok "the scope's DNS server not taken ($links: $(grep '^DNS=' "$links" 2>/dev/null || echo 'no DNS= line'))"
    fi
    echo "   routes on scoped0: $(ip -4 route show dev scoped0 | tr '\n' ';')"
    check_unplug "$UD" scoped0
fi

# --- 9. purge: /dev/uinput as before the install ---------------------------------
step "apt-get purge scopecam"
if apt-get purge -y scopecam > "$R/purge.log" 2>&1; then
    ok "apt-get purge scopecam"
else
    cat "$R/purge.log"; bad "apt-get purge scopecam failed"
fi
uinput_after=$(uinput_perms)
echo "   /dev/uinput: $uinput_after"
[[ $uinput_after == "$uinput_before" ]] && ok "/dev/uinput as before the install: $uinput_after" \
    || bad "/dev/uinput after purge: '$uinput_after', before install: '$uinput_before'"
! can_open scopecam && ok "user scopecam can no longer open /dev/uinput" \
    || bad "user scopecam still opens /dev/uinput after purge"
