#!/usr/bin/env bash
# Tests the decision logic of packaging/NetworkManager/dispatcher.d/90-scopecam
# without NetworkManager: a fake sysfs tree, the dispatcher environment as
# NetworkManager-dispatcher(8) sets it, and fake `nmcli` and `logger` on PATH
# that record their arguments. Touches no real interface. Also checks the
# lease record for scopecam@IFACE.service (written for the scope's lease
# only, removed for any other lease and when the link goes down).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
script="$here/../../packaging/NetworkManager/dispatcher.d/90-scopecam"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin" "$tmp/sys/drivers/r8152" "$tmp/sys/drivers/e1000e" "$tmp/net" "$tmp/state"

cat >"$tmp/bin/nmcli" <<'EOS'
#!/bin/sh
echo "$*" >>"$FAKE_LOG/nmcli"
exit "${FAKE_NMCLI_RC:-0}"
EOS
cat >"$tmp/bin/logger" <<'EOS'
#!/bin/sh
echo "$*" >>"$FAKE_LOG/logger"
EOS
chmod +x "$tmp/bin/nmcli" "$tmp/bin/logger"

# make_nic NAME DRIVER IFINDEX: /sys/class/net/NAME/{device/driver,ifindex}
make_nic() {
    rm -rf "${tmp:?}/net/$1"
    mkdir -p "$tmp/net/$1/device"
    ln -s "../../../sys/drivers/$2" "$tmp/net/$1/device/driver"
    echo "$3" >"$tmp/net/$1/ifindex"
}

failures=0
# run NAME EXPECT_CALLS IFACE ACTION [VAR=VALUE...]: runs the script in a clean
# environment and checks how many times nmcli was called.
run() {
    local name=$1 expect=$2 iface=$3 action=$4
    shift 4
    rm -rf "$tmp/log"
    mkdir -p "$tmp/log"
    local rc=0
    env -i PATH="$tmp/bin:/usr/bin:/bin" FAKE_LOG="$tmp/log" \
        SCOPECAM_SYSFS_NET="$tmp/net" SCOPECAM_NM_STATE_DIR="$tmp/state" \
        "$@" sh "$script" "$iface" "$action" || rc=$?
    local calls=0
    [[ -f $tmp/log/nmcli ]] && calls=$(wc -l <"$tmp/log/nmcli")
    if [[ $rc != 0 || $calls != "$expect" ]]; then
        echo "FAIL $name: exit $rc, nmcli called $calls times (expected $expect)"
        failures=$((failures + 1))
    else
        echo "ok   $name"
    fi
}

scope_lease=(DHCP4_DHCP_SERVER_IDENTIFIER=192.168.10.123 DHCP4_IP_ADDRESS=192.168.10.100
    IP4_GATEWAY=192.168.10.123 IP4_NAMESERVERS=192.168.10.123)

make_nic enxscope r8152 7
run "scope lease on up: reapplied" 1 enxscope up "${scope_lease[@]}"
expected="device modify enxscope ipv4.never-default yes ipv4.ignore-auto-dns yes ipv4.ignore-auto-routes yes ipv4.route-metric 20000 ipv6.method disabled"
if [[ $(cat "$tmp/log/nmcli") != "$expected" ]]; then
    echo "FAIL nmcli arguments: $(cat "$tmp/log/nmcli")"
    failures=$((failures + 1))
fi
if [[ $(wc -l <"$tmp/log/logger") != 1 ]] || ! grep -q 'enxscope: borescope DHCP lease' "$tmp/log/logger"; then
    echo "FAIL expected one log line, got: $(cat "$tmp/log/logger" 2>/dev/null)"
    failures=$((failures + 1))
fi

# The record scopecam@enxscope.service reads to know the link is the scope's.
record="$tmp/state/leases/enxscope"
check_record() { # check_record NAME EXPECTED-CONTENT ('' = no record)
    local got=""
    [[ -e $1 ]] && got=$(cat "$1")
    if [[ $got != "$2" ]]; then
        echo "FAIL lease record $1: '$got', expected '$2'"
        failures=$((failures + 1))
    fi
}
scope_record=$'IFINDEX=7\nSERVER_ADDRESS=192.168.10.123\nADDRESS=192.168.10.100'
check_record "$record" "$scope_record"
if [[ $(stat -c %a "$record" 2>/dev/null) != 644 ]]; then
    echo "FAIL lease record mode $(stat -c %a "$record" 2>/dev/null), expected 644"
    failures=$((failures + 1))
fi

run "same NIC, lease renewed: left alone" 0 enxscope dhcp4-change "${scope_lease[@]}"
check_record "$record" "$scope_record"
run "link down: record removed" 0 enxscope down
check_record "$record" ""
make_nic enxscope r8152 9
run "replugged (new ifindex), lease on dhcp4-change: reapplied" 1 enxscope dhcp4-change "${scope_lease[@]}"

check_record "$record" "${scope_record/IFINDEX=7/IFINDEX=9}"

make_nic enxdongle r8152 11
run "r8152 dongle on a home LAN: left alone" 0 enxdongle up \
    DHCP4_DHCP_SERVER_IDENTIFIER=192.168.1.1 DHCP4_IP_ADDRESS=192.168.1.57 IP4_GATEWAY=192.168.1.1
check_record "$tmp/state/leases/enxdongle" ""
run "r8152 dongle on a 192.168.10.0/24 LAN whose DHCP server is .123: left alone" 0 enxdongle up \
    DHCP4_DHCP_SERVER_IDENTIFIER=192.168.10.123 DHCP4_IP_ADDRESS=192.168.10.57
run "r8152 dongle given .100 by another server: left alone" 0 enxdongle up \
    DHCP4_DHCP_SERVER_IDENTIFIER=192.168.10.1 DHCP4_IP_ADDRESS=192.168.10.100
run "r8152 without DHCP (static profile): left alone" 0 enxdongle up
check_record "$tmp/state/leases/enxdongle" ""
# A name that once carried the scope's lease, now a LAN's: the record goes.
run "r8152 dongle with a scope lease" 1 enxdongle up "${scope_lease[@]}"
check_record "$tmp/state/leases/enxdongle" "${scope_record/IFINDEX=7/IFINDEX=11}"
run "same name, now a LAN lease: record removed" 0 enxdongle dhcp4-change \
    DHCP4_DHCP_SERVER_IDENTIFIER=192.168.10.1 DHCP4_IP_ADDRESS=192.168.10.57
check_record "$tmp/state/leases/enxdongle" ""
make_nic enp3s0 e1000e 2
run "other driver with a scope-like lease: left alone" 0 enp3s0 up "${scope_lease[@]}"
check_record "$tmp/state/leases/enp3s0" ""
run "unknown interface: left alone" 0 enxgone up "${scope_lease[@]}"
check_record "$tmp/state/leases/enxgone" ""
# A name with a slash (never a real interface): nothing outside the record dir.
mkdir -p "$tmp/x/device"
ln -s "../../sys/drivers/r8152" "$tmp/x/device/driver"
echo 14 >"$tmp/x/ifindex"
run "a name with a slash: ignored" 0 "../x" up "${scope_lease[@]}"
check_record "$tmp/state/x" ""
make_nic enxother r8152 12
for action in pre-up down pre-down dhcp6-change reapply connectivity-change hostname; do
    run "action $action: ignored" 0 enxother "$action" "${scope_lease[@]}"
done
run "no arguments: ignored" 0 "" ""

make_nic enxfail r8152 13
run "nmcli fails: exit 0, logged" 1 enxfail up FAKE_NMCLI_RC=10 "${scope_lease[@]}"
check_record "$tmp/state/leases/enxfail" "${scope_record/IFINDEX=7/IFINDEX=13}"
grep -q "enxfail: .*failed" "$tmp/log/logger" || { echo "FAIL failure not logged"; failures=$((failures + 1)); }
run "nmcli failed before: retried" 1 enxfail dhcp4-change "${scope_lease[@]}"

if ((failures)); then
    echo "dispatcher: $failures failure(s)"
    exit 1
fi
echo "dispatcher: all passed"
