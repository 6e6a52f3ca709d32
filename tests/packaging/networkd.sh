#!/usr/bin/env bash
# Runs systemd-networkd with packaging/systemd-networkd/zz-scopecam.network
# against a fake scope and two fake LANs, entirely inside network namespaces
# this script creates (veths between them): nothing is sent from or
# configured in the host's own namespace, and networkd runs in a private
# mount namespace with its own /run/systemd, so the host's network
# configuration is untouched. Three RTL8152-like links, all matched by the
# package's file (as the udev property matches every RTL8152):
#
#   vhost   the scope: busybox udhcpd at 192.168.10.123 offering
#           192.168.10.100 with a router and DNS;
#   vlan    an ordinary dongle on a LAN that itself uses 192.168.10.0/24
#           (DHCP server, router and DNS 192.168.10.1), configured by the
#           user's own 90-wired.network (a name that sorts after 80-*, where
#           the package's file used to be);
#   vbare   an ordinary dongle on a LAN (DHCP server 10.78.0.1) with no file
#           of the user's.
#
# Checks: the LAN dongle gets its lease, default route and DNS (the user's
# file wins); while the scope's DHCP is silent, no address on the scope's
# link (no static fallback) and none on the bare dongle (AllowList=: the
# LAN's offers are ignored); then the scope's lease: 192.168.10.100 without
# default route, DNS or routes, prefix route at metric 20000, not required
# for online, the LAN's default route, DNS and address still there;
# networkd's lease files (what scopecam@.service reads) name each link's
# server and are readable by every user.
#
# The only change to the file: [Match] Name= instead of the udev property
# (no udev here). Needs root, iproute2, unshare/nsenter, busybox (udhcpd) and
# systemd-networkd; prints SKIP and exits 0 without them. About 30 s.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
network_file="$here/../../packaging/systemd-networkd/zz-scopecam.network"

networkd=""
for candidate in /usr/lib/systemd/systemd-networkd /lib/systemd/systemd-networkd; do
    [[ -x $candidate ]] && { networkd=$candidate; break; }
done
skip() { echo "SKIP networkd: $*"; exit 0; }
((EUID == 0)) || skip "needs root (network namespaces)"
[[ -n $networkd ]] || skip "systemd-networkd not installed"
if ! command -v busybox >/dev/null || ! busybox --list | grep -qx udhcpd; then
    skip "busybox udhcpd not available"
fi
id systemd-network >/dev/null 2>&1 || skip "no systemd-network user"

tmp=$(mktemp -d)
ns_host="scopecam-nd-$$-host"
ns_scope="scopecam-nd-$$-scope"
ns_lan="scopecam-nd-$$-lan"
ns_bare="scopecam-nd-$$-bare"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    for ns in "$ns_host" "$ns_scope" "$ns_lan" "$ns_bare"; do
        ip netns del "$ns" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

failures=0
check() { # check DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@"; then
        echo "ok   $what"
    else
        echo "FAIL $what"
        failures=$((failures + 1))
    fi
}

ip netns add "$ns_host"
ip -n "$ns_host" link set lo up
# far NS HOST_DEV FAR_DEV FAR_ADDRESS: a namespace at the far end of a veth
# from the host namespace (both ends created inside namespaces).
far() {
    ip netns add "$1"
    ip -n "$ns_host" link add "$2" type veth peer name "$3" netns "$1"
    ip -n "$1" addr add "$4" dev "$3"
    ip -n "$1" link set "$3" up
}
far "$ns_scope" vhost vscope 192.168.10.123/24
far "$ns_lan" vlan vlanfar 192.168.10.1/24
far "$ns_bare" vbare vbarefar 10.78.0.1/24

# The package's file, matching all three links as the udev property would.
sed 's/^Property=SCOPECAM_CANDIDATE=1$/Name=vhost vlan vbare/' "$network_file" >"$tmp/zz-scopecam.network"
grep -qx 'Name=vhost vlan vbare' "$tmp/zz-scopecam.network" || { echo "FAIL: [Match] Property= line not found"; exit 1; }
# The user's own file for the LAN dongle: plain DHCP.
printf '[Match]\nName=vlan\n\n[Network]\nDHCP=ipv4\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n' >"$tmp/90-wired.network"

# networkd in the host namespace's private mount namespace: its own
# /run/systemd (state, no D-Bus), only our .network files, and a read-only
# /sys so it does not wait for udev (which does not run here).
cat >"$tmp/networkd.sh" <<END_OF_NETWORKD
set -e
mount --make-rprivate /
mount -t tmpfs tmpfs /run/systemd
mkdir -p /run/systemd/network
cp "$tmp/zz-scopecam.network" "$tmp/90-wired.network" /run/systemd/network/
mount -t tmpfs tmpfs /etc/systemd/network
mount -o remount,ro /sys
exec "$networkd"
END_OF_NETWORKD

# dhcp_server NS DEV SERVER ADDRESS: busybox udhcpd in NS handing out ADDRESS
# only, with SERVER as router and DNS.
dhcp_server() {
    cat >"$tmp/udhcpd-$1.conf" <<END_OF_CONF
start $4
end $4
interface $2
opt router $3
opt dns $3
opt subnet 255.255.255.0
opt lease 3600
lease_file $tmp/udhcpd-$1.leases
pidfile $tmp/udhcpd-$1.pid
END_OF_CONF
    touch "$tmp/udhcpd-$1.leases"
    ip netns exec "$1" busybox udhcpd -f "$tmp/udhcpd-$1.conf" >"$tmp/udhcpd-$1.log" 2>&1 &
    pids+=("$!")
}
dhcp_server "$ns_lan" vlanfar 192.168.10.1 192.168.10.57
dhcp_server "$ns_bare" vbarefar 10.78.0.1 10.78.0.57

ip netns exec "$ns_host" unshare -m bash "$tmp/networkd.sh" >"$tmp/networkd.log" 2>&1 &
networkd_pid=$!
pids+=("$networkd_pid")

addr() { ip -n "$ns_host" -4 -o addr show dev "$1"; }
wait_for() { # wait_for SECONDS COMMAND...
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.5
    done
}
ifindex() { ip netns exec "$ns_host" cat "/sys/class/net/$1/ifindex"; }
in_networkd() { nsenter -t "$networkd_pid" -m "$@"; }
link_state() { in_networkd cat "/run/systemd/netif/links/$(ifindex "$1")"; }
lease_file() { echo "/run/systemd/netif/leases/$(ifindex "$1")"; }
has_lease() { addr "$1" | grep -q "inet $2/24 .*dynamic"; }
no_address() { [[ -z $(addr "$1") ]]; }
only_lan_default() {
    local routes
    routes=$(ip -n "$ns_host" -4 route show default table all)
    [[ $(wc -l <<<"$routes") == 1 && $routes == "default via 192.168.10.1 dev vlan "* ]]
}
subnet_route_metric() { ip -n "$ns_host" -4 route show 192.168.10.0/24 | grep -q 'dev vhost .*metric 20000'; }
dns_of() { link_state "$1" | grep -qx "DNS=$2"; }

echo "-- an ordinary dongle on a LAN (192.168.10.0/24), configured by the user's file"
check "LAN lease 192.168.10.57 within 40 s" wait_for 40 has_lease vlan 192.168.10.57
check "the LAN's default route via 192.168.10.1 dev vlan" wait_for 10 only_lan_default
check "the LAN's DNS server 192.168.10.1 taken" dns_of vlan 192.168.10.1

echo "-- the scope's DHCP server is silent"
offered() { grep -q 'sending OFFER' "$tmp/udhcpd-$ns_bare.log"; }
check "the bare dongle's LAN offered it an address" wait_for 20 offered
# Time for networkd to (wrongly) take the offer: it would REQUEST at once.
sleep 3
check "no address on the scope's link (no static fallback)" no_address vhost
check "the bare dongle took no LAN lease (AllowList)" no_address vbare

echo "-- the scope's DHCP server answers (router and DNS offered)"
dhcp_server "$ns_scope" vscope 192.168.10.123 192.168.10.100
check "DHCP lease for 192.168.10.100 within 40 s" wait_for 40 has_lease vhost 192.168.10.100
check "the only default route is still the LAN's" only_lan_default
check "subnet route of the scope's link at metric 20000" subnet_route_metric
state=$(link_state vhost 2>/dev/null || true)
check "no DNS server taken from the scope" grep -qx 'DNS=' <<<"$state"
check "the scope's link not required for online" grep -qx 'REQUIRED_FOR_ONLINE=no' <<<"$state"
check "the LAN's DNS server still there" dns_of vlan 192.168.10.1
check "the LAN's address still there" has_lease vlan 192.168.10.57
check "the bare dongle still has no address" no_address vbare
scope_lease=$(in_networkd cat "$(lease_file vhost)" 2>/dev/null || true)
check "networkd's lease file for the scope names server 192.168.10.123" grep -qx 'SERVER_ADDRESS=192.168.10.123' <<<"$scope_lease"
check "... and address 192.168.10.100" grep -qx 'ADDRESS=192.168.10.100' <<<"$scope_lease"
lan_lease=$(in_networkd cat "$(lease_file vlan)" 2>/dev/null || true)
check "networkd's lease file for the LAN dongle names server 192.168.10.1" grep -qx 'SERVER_ADDRESS=192.168.10.1' <<<"$lan_lease"
# scopecam@.service runs as user scopecam and must be able to read them.
readable_by_all() {
    [[ $(in_networkd stat -c %A "$1") == -rw-r--r-- ]] &&
        [[ $(in_networkd stat -c %A "$(dirname "$1")") == d??????r-x ]]
}
check "lease files readable by every user" readable_by_all "$(lease_file vhost)"

if ((failures)); then
    echo "--- networkd log"
    cat "$tmp/networkd.log"
    for ns in "$ns_scope" "$ns_lan" "$ns_bare"; do
        echo "--- udhcpd in $ns"
        cat "$tmp/udhcpd-$ns.log" 2>/dev/null || true
    done
    echo "--- addresses and routes"
    ip -n "$ns_host" -4 addr || true
    ip -n "$ns_host" -4 route show table all || true
    echo "networkd: $failures failure(s)"
    exit 1
fi
echo "networkd: all passed"
