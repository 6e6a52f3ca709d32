#!/usr/bin/env bash
# Checks that the system calls the bridge makes are all allowed by the
# SystemCallFilter= lines of systemd/scopecam@.service. The unit sets
# SystemCallErrorNumber=EPERM, so a call outside the filter would not kill
# the service but fail quietly; this catches a new one before users do.
#
# Runs `scopecam service IFACE` under strace against `scopecam simulate` at
# 192.168.10.123, with both ends in network namespaces this script creates
# (veth between them; nothing is sent from the host's own namespace), with
# the environment systemd would give it (NOTIFY_SOCKET, WATCHDOG_USEC,
# RUNTIME_DIRECTORY, STATE_DIRECTORY) and output = "null" (no camera
# module needed). A binary without the service subcommand is checked with
# `scopecam run --simulate` on loopback instead.
#
# Needs root, strace, iproute2, python3; prints SKIP and exits 0 without
# them. About 10 s. Usage: tests/packaging/syscalls.sh [BINARY]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=$(realpath "${1:-$root/target/release/scopecam}")
unit="$root/systemd/scopecam@.service"

skip() { echo "SKIP syscalls: $*"; exit 0; }
((EUID == 0)) || skip "needs root (network namespaces)"
command -v strace >/dev/null || skip "strace not installed"
command -v python3 >/dev/null || skip "python3 not installed"
[[ -x $bin ]] || { echo "syscalls: $bin missing" >&2; exit 1; }

tmp=$(mktemp -d)
ns_scope="scopecam-sc-$$-scope"
ns_host="scopecam-sc-$$-host"
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

# The filter, expanded: allow list minus deny list, groups resolved.
expand() { # expand @group|name... -> names, one a line
    local item
    for item in "$@"; do
        if [[ $item == @* ]]; then
            systemd-analyze syscall-filter "$item" | sed -n 's/^ \{4\}\([^ #].*\)$/\1/p' |
                while read -r member; do expand "$member"; done
        else
            echo "$item"
        fi
    done
}
allow=() deny=()
while IFS= read -r line; do
    value=${line#SystemCallFilter=}
    if [[ $value == ~* ]]; then
        read -ra items <<<"${value#\~}"
        deny+=("${items[@]}")
    else
        read -ra items <<<"$value"
        allow+=("${items[@]}")
    fi
done < <(grep '^SystemCallFilter=' "$unit")
((${#allow[@]})) || { echo "syscalls: no allow list in $unit" >&2; exit 1; }
expand "${allow[@]}" | sort -u >"$tmp/allow"
expand "${deny[@]}" | sort -u >"$tmp/deny"
comm -23 "$tmp/allow" "$tmp/deny" >"$tmp/allowed"
echo "filter: ${allow[*]} minus ${deny[*]}: $(wc -l <"$tmp/allowed") calls"

if "$bin" service --help >/dev/null 2>&1; then
    ip netns add "$ns_scope"
    ip netns add "$ns_host"
    ip link add vhost netns "$ns_host" type veth peer name vscope netns "$ns_scope"
    ip -n "$ns_scope" addr add 192.168.10.123/24 dev vscope
    ip -n "$ns_scope" link set vscope up
    ip -n "$ns_host" addr add 192.168.10.100/24 dev vhost
    ip -n "$ns_host" link set vhost up

    ip netns exec "$ns_scope" "$bin" simulate --bind 192.168.10.123 >"$tmp/simulate.log" 2>&1 &
    pids+=("$!")
    # The notify socket systemd would listen on.
    python3 - "$tmp/notify" "$tmp/notify.log" <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "w", buffering=1) as out:
    while True:
        out.write(s.recv(4096).decode().replace("\n", " ") + "\n")
EOF
    pids+=("$!")
    sleep 1
    mkdir -p "$tmp/run" "$tmp/state"
    rc=0
    # vhost has its address by hand (no DHCP lease): listed as a scope link.
    ip netns exec "$ns_host" env -i PATH=/usr/bin:/bin SCOPECAM_OUTPUT=null SCOPECAM_KEY=none \
        SCOPECAM_SCOPE_INTERFACES=vhost \
        RUNTIME_DIRECTORY="$tmp/run" STATE_DIRECTORY="$tmp/state" NOTIFY_SOCKET="$tmp/notify" \
        WATCHDOG_USEC=10000000 \
        timeout -s TERM 6 strace -f -qq -o "$tmp/trace" "$bin" service --config /dev/null vhost \
        >"$tmp/service.log" 2>&1 || rc=$?
    # timeout's SIGTERM is the normal end (124); the bridge must have streamed.
    if [[ $rc != 124 ]] || ! grep -q 'READY=1' "$tmp/notify.log"; then
        cat "$tmp/service.log"
        echo "syscalls: the service did not get ready (exit $rc)"
        exit 1
    fi
    what="scopecam service (netlink address, scope link and on-link checks, probe, slot lock, notify, bridge, stop)"
else
    "$bin" run --simulate --frames 30 --output null >/dev/null 2>&1 ||
        { echo "syscalls: run --simulate failed" >&2; exit 1; }
    strace -f -qq -o "$tmp/trace" "$bin" run --simulate --frames 30 --output null >/dev/null 2>&1
    what="scopecam run --simulate (no service subcommand in this build)"
fi

# "PID name(args..." -> name
sed -n 's/^[0-9]\+ \+\([a-z0-9_]\+\)(.*/\1/p' "$tmp/trace" | sort -u >"$tmp/used"
outside=$(comm -23 "$tmp/used" "$tmp/allowed")
echo "$what: $(wc -l <"$tmp/used") distinct calls"
if [[ -n $outside ]]; then
    echo "FAIL: calls outside the unit's SystemCallFilter (they would fail with EPERM):"
    echo "$outside"
    exit 1
fi
echo "syscalls: all within the filter"
