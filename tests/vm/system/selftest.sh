#!/bin/bash
# Proves the system VM harness itself, without scopecam: systemd is PID 1,
# udevd runs and applies rules, a new network interface starts a templated
# unit through udev's SYSTEMD_WANTS (the same path 85-scopecam.rules uses),
# deleting the link stops that unit through BindsTo=, and v4l2loopback loads.
#
#   tests/vm/system/run.sh tests/vm/system/selftest.sh
set -euo pipefail

fails=0
ok() { echo "ok   - $*"; }
bad() { echo "FAIL - $*"; fails=$((fails + 1)); }
# wait_for SECS CMD...: poll CMD every 0.2 s until it succeeds.
wait_for() {
    local end=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do ((SECONDS < end)) || return 1; sleep 0.2; done
}

comm=$(cat /proc/1/comm)
[[ "$comm" == systemd ]] && ok "PID 1 is systemd" || bad "PID 1 is '$comm', not systemd"

state=$(timeout 60 systemctl is-system-running --wait || true)
[[ "$state" == running ]] && ok "is-system-running: $state" \
    || { bad "is-system-running: '$state'"; systemctl --failed --no-pager; }

systemctl is-active --quiet systemd-udevd.service && ok "systemd-udevd active" || bad "systemd-udevd not active"
systemctl is-active --quiet dbus.service && ok "dbus active" || bad "dbus not active"

# A test-only rule and template unit, both in /run (the overlay is thrown away
# anyway): a veth named probe* gets a property and wants probe-unit@NAME.
mkdir -p /run/udev/rules.d /run/systemd/system
cat > /run/udev/rules.d/85-selftest.rules <<'EOF'
SUBSYSTEM=="net", ACTION!="remove", KERNEL=="probe*", ENV{SELFTEST}="1", TAG+="systemd", ENV{SYSTEMD_WANTS}+="probe-unit@$name.service"
EOF
cat > /run/systemd/system/probe-unit@.service <<'EOF'
[Unit]
BindsTo=sys-subsystem-net-devices-%i.device
After=sys-subsystem-net-devices-%i.device
[Service]
ExecStart=/bin/sleep infinity
EOF
systemctl daemon-reload
udevadm control --reload

modprobe veth
ip link add probe0 type veth peer name probepeer0
if wait_for 20 test "$(udevadm info -q property -p /sys/class/net/probe0 | grep -c '^SELFTEST=1$')" = 1; then
    ok "udev applied a rule to a new veth"
else
    bad "udev did not apply the test rule to probe0"; udevadm info -p /sys/class/net/probe0 || true
fi
if wait_for 20 systemctl is-active --quiet probe-unit@probe0.service; then
    ok "udev SYSTEMD_WANTS started probe-unit@probe0.service"
else
    bad "probe-unit@probe0.service not started: $(systemctl is-active probe-unit@probe0.service)"
    systemctl status --no-pager probe-unit@probe0.service sys-subsystem-net-devices-probe0.device || true
fi
ip link del probe0
if wait_for 20 bash -c '[[ $(systemctl is-active probe-unit@probe0.service) == inactive ]]'; then
    ok "deleting the link stopped the unit (BindsTo)"
else
    bad "probe-unit@probe0.service after link del: $(systemctl is-active probe-unit@probe0.service)"
fi

# Network namespaces work (the scenario puts the simulated scope in one).
ip netns add selftest
ip link add probe1 type veth peer name far1 netns selftest
ip netns exec selftest ip link set lo up
ip netns exec selftest ip link show far1 >/dev/null && ok "veth end moved into a netns" || bad "netns veth"
ip link del probe1
ip netns del selftest

if [[ "$SCOPECAM_VM_MODULE_VERSION" != none ]]; then
    if modprobe v4l2loopback video_nr=42 card_label=Borescope exclusive_caps=1; then
        wait_for 10 test -e /dev/video42 && ok "modprobe v4l2loopback: /dev/video42 $(stat -c '%U:%G %a' /dev/video42)" \
            || bad "v4l2loopback loaded but no /dev/video42"
        # 0.12.7 has no version file (tests/vm/README.md)
        echo "   v4l2loopback version: $(cat /sys/module/v4l2loopback/version 2>/dev/null || echo 'none (0.12.x)') (asked for $SCOPECAM_VM_MODULE_VERSION)"
        v4l2-ctl -d /dev/video42 --info | grep -q 'Card type *: Borescope' \
            && ok "v4l2-ctl sees card 'Borescope'" || bad "v4l2-ctl --info on /dev/video42"
        rmmod v4l2loopback
    else
        bad "modprobe v4l2loopback ($SCOPECAM_VM_MODULE_VERSION)"
    fi
fi
modprobe uinput && ok "modprobe uinput" || bad "modprobe uinput"

echo "selftest: $fails failure(s)"
exit $((fails > 0))
