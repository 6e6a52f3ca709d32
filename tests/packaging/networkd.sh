#!/usr/bin/env bash
# Runs systemd-networkd with packaging/systemd-networkd/80-scopecam.network
# against a fake scope, entirely inside two network namespaces this script
# creates (veth between them): nothing is sent from or configured in the
# host's own namespace, and networkd runs in a private mount namespace with
# its own /run/systemd, so the host's network configuration is untouched.
#
#   1. the scope's DHCP server is silent: the fallback 192.168.10.100/24 is
#      there at once, its subnet route at metric 20000, no default route;
#   2. the scope's DHCP server (busybox udhcpd at 192.168.10.123) starts and
#      offers a router and DNS: the lease takes over the address, still no
#      default route, no DNS, metric 20000, not required for online.
#
# The only change to the file: [Match] Name= instead of the udev property
# (no udev here). Needs root, iproute2, unshare/nsenter, busybox (udhcpd) and
# systemd-networkd; prints SKIP and exits 0 without them. About 20 s.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
network_file="$here/../../packaging/systemd-networkd/80-scopecam.network"

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
ns_scope="scopecam-nd-$$-scope"
ns_host="scopecam-nd-$$-host"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    ip netns del "$ns_host" 2>/dev/null || true
    ip netns del "$ns_scope" 2>/dev/null || true
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

ip netns add "$ns_scope"
ip netns add "$ns_host"
ip link add vhost netns "$ns_host" type veth peer name vscope netns "$ns_scope"
ip -n "$ns_scope" addr add 192.168.10.123/24 dev vscope
ip -n "$ns_scope" link set vscope up
ip -n "$ns_host" link set lo up

sed 's/^Property=SCOPECAM_CANDIDATE=1$/Name=vhost/' "$network_file" >"$tmp/80-scopecam.network"
grep -qx 'Name=vhost' "$tmp/80-scopecam.network" || { echo "FAIL: [Match] Property= line not found"; exit 1; }

# networkd in the host namespace's private mount namespace: its own
# /run/systemd (state, no D-Bus), only our .network file, and a read-only
# /sys so it does not wait for udev (which does not run here).
cat >"$tmp/networkd.sh" <<EOF
set -e
mount --make-rprivate /
mount -t tmpfs tmpfs /run/systemd
mkdir -p /run/systemd/network
cp "$tmp/80-scopecam.network" /run/systemd/network/
mount -t tmpfs tmpfs /etc/systemd/network
mount -o remount,ro /sys
exec "$networkd"
EOF
ip netns exec "$ns_host" unshare -m bash "$tmp/networkd.sh" >"$tmp/networkd.log" 2>&1 &
networkd_pid=$!
pids+=("$networkd_pid")

addr() { ip -n "$ns_host" -4 -o addr show dev vhost; }
wait_for() { # wait_for SECONDS COMMAND...
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.5
    done
}
has_static() { addr | grep -q 'inet 192.168.10.100/24 .*valid_lft forever'; }
has_lease() { addr | grep -q 'inet 192.168.10.100/24 .*dynamic'; }
no_default_route() { [[ -z $(ip -n "$ns_host" -4 route show default table all) ]]; }
subnet_route_metric() { ip -n "$ns_host" -4 route show 192.168.10.0/24 | grep -q 'dev vhost .*metric 20000'; }
link_state() {
    local ifindex
    ifindex=$(ip netns exec "$ns_host" cat /sys/class/net/vhost/ifindex)
    nsenter -t "$networkd_pid" -m cat "/run/systemd/netif/links/$ifindex"
}

echo "-- the scope's DHCP server is silent"
check "fallback 192.168.10.100/24 within 10 s" wait_for 10 has_static
check "subnet route at metric 20000" subnet_route_metric
check "no default route" no_default_route

echo "-- the scope's DHCP server answers (router and DNS offered)"
cat >"$tmp/udhcpd.conf" <<EOF
start 192.168.10.100
end 192.168.10.100
interface vscope
opt router 192.168.10.123
opt dns 192.168.10.123
opt subnet 255.255.255.0
opt lease 3600
lease_file $tmp/udhcpd.leases
pidfile $tmp/udhcpd.pid
EOF
touch "$tmp/udhcpd.leases"
ip netns exec "$ns_scope" busybox udhcpd -f "$tmp/udhcpd.conf" >"$tmp/udhcpd.log" 2>&1 &
pids+=("$!")
check "DHCP lease for 192.168.10.100 within 40 s" wait_for 40 has_lease
check "no default route" no_default_route
check "subnet route at metric 20000" subnet_route_metric
state=$(link_state 2>/dev/null || true)
check "no DNS server taken" grep -qx 'DNS=' <<<"$state"
check "not required for online" grep -qx 'REQUIRED_FOR_ONLINE=no' <<<"$state"

if ((failures)); then
    echo "--- networkd log"
    cat "$tmp/networkd.log"
    echo "--- addresses and routes"
    addr || true
    ip -n "$ns_host" -4 route show table all || true
    echo "networkd: $failures failure(s)"
    exit 1
fi
echo "networkd: all passed"
