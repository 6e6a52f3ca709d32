#!/bin/bash
# An ordinary RTL8152 dongle on a LAN next to a real scope, under
# systemd-networkd, inside the system VM (systemd is PID 1, udev runs):
#
#   packaging/build.sh
#   tests/vm/system/run.sh --deb target/debian/scopecam_<ver>_amd64.deb \
#       tests/vm/system/lan-dongle.sh
#
# The LAN uses 192.168.10.0/24 itself (the worst case): its DHCP server,
# router and DNS are 192.168.10.1 in a network namespace, and a host there
# answers as 192.168.10.123 (`scopecam simulate`, pressing its button every
# second). The dongle (veth lan0, with the USB properties of an RTL8152 from a
# test-only udev rule, so the SHIPPED 85-scopecam.rules starts
# scopecam@lan0.service) is configured by the user's own
# /etc/systemd/network/90-wired.network. Checks:
#   - lan0 gets the LAN's lease, default route and DNS; they stay;
#   - scopecam@lan0 ends inactive (success, no restart), saying lan0 is not a
#     scope link, having sent the LAN's .123 not one packet (the simulator's
#     counters), with no camera writer, no snapshot, no key device;
#   - then a real scope (veth scope0, the package's zz-scopecam.network,
#     udhcpd at 192.168.10.123 offering 192.168.10.100 with router and DNS):
#     scopecam@scope0 streams, a consumer reads frames, a button press
#     saves a snapshot; the only default route and the DNS are still the
#     LAN's.
set -euo pipefail

R=${SCOPECAM_VM_RESULTS:-/tmp}
# shellcheck source=tests/vm/system/lib.sh
source "${SCOPECAM_VM_REPO:-$(cd "$(dirname "$0")/../../.." && pwd)}/tests/vm/system/lib.sh"

declare -A PID=()
NAMESPACES=()
on_exit() {
    local rc=$?
    if ((fails > 0 || rc != 0)); then
        echo
        echo "== journal excerpts (whole journal: journal.txt in the results dir)"
        journalctl -b --no-pager -o short-monotonic -u 'scopecam@*' -u systemd-networkd | tail -80 || true
        for f in "$R"/lan-*.log; do [[ -f "$f" ]] && { echo "-- $f"; tail -20 "$f"; }; done
        ip -4 addr || true
        ip -4 route show table all || true
    fi
    end_scenario lan-dongle "$rc" "${PID[@]}"
}
trap on_exit EXIT

step "install"
install_deb "$R/lan-dpkg.log"
nf=$(ls /usr/lib/systemd/network/*scopecam*.network /lib/systemd/network/*scopecam*.network 2>/dev/null | head -1 || true)
[[ -n "$nf" ]] && ok "networkd file: $nf" || die "the package ships no systemd-networkd .network file"
look_like_rtl8152 'lan*|scope*'

# The user's own configuration for the dongle: plain DHCP, as for any wired
# network. Its name sorts after 80-*, where the package's file used to be.
mkdir -p /etc/systemd/network
printf '[Match]\nName=lan0\n\n[Network]\nDHCP=ipv4\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n' \
    > /etc/systemd/network/90-wired.network
systemctl start systemd-networkd.service || die "systemd-networkd does not start"
ok "systemd-networkd running"

# plug NS IFACE ADDRESSES...: a veth IFACE here (udev fires now), eth0 in NS
# with ADDRESSES (the first is the one udhcpd serves from).
plug() {
    local ns=$1 ifc=$2 a
    shift 2
    ip netns add "$ns"; NAMESPACES+=("$ns")
    ip netns exec "$ns" ip link set lo up
    ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
    ip link add "$ifc" type veth peer name eth0 netns "$ns"
    for a in "$@"; do ip netns exec "$ns" ip addr add "$a" dev eth0; done
    ip netns exec "$ns" ip link set eth0 up
}
# dhcp_server NS SERVER ADDRESS: busybox udhcpd handing out ADDRESS only, with
# SERVER as router and DNS.
dhcp_server() {
    cat > "/run/udhcpd-$1.conf" <<EOF
start $3
end $3
interface eth0
lease_file /run/udhcpd-$1.leases
opt subnet 255.255.255.0
opt router $2
opt dns $2
opt lease 3600
EOF
    touch "/run/udhcpd-$1.leases"
    ip netns exec "$1" busybox udhcpd -f "/run/udhcpd-$1.conf" > "$R/lan-udhcpd-$1.log" 2>&1 &
    PID[udhcpd-$1]=$!
}
simulator() { # simulator NS [ARGS...]
    local ns=$1
    shift
    ip netns exec "$ns" scopecam simulate --bind 192.168.10.123 "$@" > "$R/lan-simulator-$ns.log" 2>&1 &
    PID[sim-$ns]=$!
}
only_lan_default() {
    local routes
    routes=$(ip -4 route show default table all)
    [[ $(wc -l <<<"$routes") == 1 && $routes == "default via 192.168.10.1 dev lan0 "* ]]
}
dns_of() { grep -qx "DNS=$2" "/run/systemd/netif/links/$(cat "/sys/class/net/$1/ifindex")"; }

# --- 1. the dongle on the LAN ---------------------------------------------------
step "an ordinary dongle lan0 on a LAN with a host answering as 192.168.10.123"
UL=scopecam@lan0.service
plug lan lan0 192.168.10.1/24 192.168.10.123/24
dhcp_server lan 192.168.10.1 192.168.10.57
simulator lan --press-every 1
if wait_for 60 bash -c "ip -4 -o addr show dev lan0 | grep -q 'inet 192.168.10.57/24'"; then
    ok "lan0 has the LAN's lease: $(ip -4 -o addr show dev lan0 | awk '{print $4}')"
else
    bad "lan0 got no lease from the LAN within 60 s"
fi
wait_for 10 only_lan_default && ok "default route: $(ip -4 route show default)" \
    || bad "default route is not the LAN's: '$(ip -4 route show default table all)'"
wait_for 10 dns_of lan0 192.168.10.1 && ok "the LAN's DNS server 192.168.10.1 taken (networkd link state)" \
    || bad "no DNS=192.168.10.1 for lan0"

check_left_alone "$UL" "is not a scope link"
wb=$(prop "$UL" WantedBy)
[[ " $wb " == *"-net-lan0.device "* ]] && ok "$UL was started by udev ($wb)" || bad "$UL WantedBy='$wb'"
[[ ! -e /run/scopecam/lan0.json ]] && ok "no state file for lan0" || bad "/run/scopecam/lan0.json exists"
writers=$(find /proc/[0-9]*/fd -lname '/dev/video*' 2>/dev/null | wc -l)
((writers == 0)) && ok "no process has a camera open" || bad "$writers open /dev/video* descriptors"
snaps=$(find /var/lib/scopecam -name '*.jp*g' 2>/dev/null | wc -l)
((snaps == 0)) && ok "no snapshot saved" || bad "$snaps snapshots saved from the LAN's .123"
grep -q 'Borescope button' /proc/bus/input/devices && bad "a 'Borescope button' key device exists" \
    || ok "no 'Borescope button' key device"
only_lan_default && ok "default route still the LAN's" || bad "default route changed: '$(ip -4 route show default table all)'"
dns_of lan0 192.168.10.1 && ok "DNS still the LAN's" || bad "lan0 lost its DNS server"
# The LAN's .123 heard nothing from this machine: its counters at shutdown.
kill "${PID[sim-lan]}"; wait "${PID[sim-lan]}" 2>/dev/null || true; unset "PID[sim-lan]"
if grep -q 'heartbeats: 0, stops: 0, idle_timeouts: 0, button_polls: 0,' "$R/lan-simulator-lan.log"; then
    ok "the LAN's 192.168.10.123 got no heartbeat, stop or button poll"
else
    bad "the LAN's 192.168.10.123 was talked to: $(grep -o 'SimulatorStats.*' "$R/lan-simulator-lan.log" | tail -1)"
fi

# --- 2. the real scope next to it ----------------------------------------------
step "the scope on scope0: DHCP from 192.168.10.123 through the package's networkd file"
US=scopecam@scope0.service
t_plug=$SECONDS
plug scope scope0 192.168.10.123/24
dhcp_server scope 192.168.10.123 192.168.10.100
simulator scope --press-every 3
if wait_for 60 state_is "$US" active; then
    ok "$US active $((SECONDS - t_plug)) s after plug-in; status: '$(prop "$US" StatusText)'"
else
    bad "$US not active: $(prop "$US" ActiveState)/$(prop "$US" SubState) Result=$(prop "$US" Result)"
fi
journalctl -b -u "$US" -o cat | grep -q 'answered .* on scope0 .*systemd-networkd has its DHCP lease 192.168.10.100 from 192.168.10.123' \
    && ok "taken as a scope link by networkd's lease" || bad "$US does not say it went by networkd's lease"
f=/run/scopecam/scope0.json
wait_for 30 grep -q '"link_state": *"streaming"' "$f" && ok "$f: streaming" || bad "$f does not say streaming"
dev=""
for d in /sys/class/video4linux/video*; do
    [[ $(cat "$d/name" 2>/dev/null) == Borescope ]] && { dev=/dev/$(basename "$d"); break; }
done
if [[ -n "$dev" ]] && timeout 40 v4l2-ctl -d "$dev" --stream-mmap --stream-count=5 --stream-to="$R/lan-frames.raw" > "$R/lan-v4l2-ctl.log" 2>&1 \
        && [[ -s "$R/lan-frames.raw" ]]; then
    ok "a consumer read 5 frames from $dev"
else
    bad "no frames from the 'Borescope' device '$dev'"; tail -5 "$R/lan-v4l2-ctl.log" 2>/dev/null || true
fi
rm -f "$R/lan-frames.raw"
wait_for 30 bash -c 'compgen -G "/var/lib/scopecam/snapshots/*.jp*g"' \
    && ok "the scope's button press saved $(compgen -G '/var/lib/scopecam/snapshots/*.jp*g' | head -1)" \
    || bad "no snapshot from the scope's button"
only_lan_default && ok "default route still only the LAN's" || bad "default routes now: '$(ip -4 route show default table all)'"
dns_of lan0 192.168.10.1 && ok "lan0's DNS still 192.168.10.1" || bad "lan0 lost its DNS server"
dns_of scope0 "" && ok "no DNS taken from the scope" || bad "scope0: $(grep '^DNS=' "/run/systemd/netif/links/$(cat /sys/class/net/scope0/ifindex)")"
ip -4 -o addr show dev lan0 | grep -q 'inet 192.168.10.57/24' && ok "lan0 keeps 192.168.10.57" || bad "lan0 lost its address"

ip link del scope0
wait_for 30 state_is "$US" inactive && ok "$US inactive after unplug (Result=$(prop "$US" Result))" \
    || bad "$US after unplug: $(prop "$US" ActiveState)"
