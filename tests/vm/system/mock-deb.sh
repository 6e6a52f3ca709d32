#!/usr/bin/env bash
# Build a STAND-IN scopecam .deb that follows the issue-4 contract closely
# enough to exercise plug-and-play.sh before the real package exists:
# a unit and udev rule as the design fixes them, but `scopecam service` and
# `scopecam status` are shell mock-ups around today's `scopecam run`.
# Only for testing the test: a pass with this package says nothing about the
# product.
#
#   tests/vm/system/mock-deb.sh OUT.deb [SCOPECAM_BINARY]
#   tests/vm/system/run.sh --deb OUT.deb tests/vm/system/plug-and-play.sh
set -euo pipefail
OUTDEB=${1:?usage: mock-deb.sh OUT.deb [SCOPECAM_BINARY]}
REPO=$(cd "$(dirname "$0")/../../.." && pwd)
BIN=${2:-$REPO/target/release/scopecam}
[[ -x "$BIN" ]] || { echo "mock-deb.sh: no binary $BIN (cargo build --release)" >&2; exit 1; }

d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
mkdir -p "$d/DEBIAN" "$d/usr/bin" "$d/usr/lib/scopecam-mock" "$d/lib/systemd/system" \
    "$d/lib/udev/rules.d" "$d/etc/modprobe.d" "$d/usr/lib/sysusers.d"
cp "$BIN" "$d/usr/lib/scopecam-mock/scopecam-real"

cat > "$d/usr/bin/scopecam" <<'EOF'
#!/bin/bash
# MOCK: `service` and `status` per the contract, the rest is the real binary.
set -uo pipefail
REAL=/usr/lib/scopecam-mock/scopecam-real
case "${1:-}" in
service)
    shift; [[ ${1:-} == -- ]] && shift
    iface=$1
    for _ in $(seq 70); do
        [[ -e /sys/class/net/$iface ]] || { echo "$iface is gone (unplugged)"; exit 0; }
        ip -4 -o addr show dev "$iface" | grep -q inet && break
        sleep 0.3
    done
    ip -4 -o addr show dev "$iface" | grep -q inet || { echo "no IPv4 address on $iface" >&2; exit 1; }
    timeout 5 "$REAL" run --interface "$iface" --output null --frames 1 >/dev/null 2>&1 \
        || { echo "no borescope answers at 192.168.10.123:50000 or 8030 on $iface; leaving it alone"
             # READY=1 first: systemd 252 fails a notify unit that exits before it
             systemd-notify --pid=$$ --ready --status="no borescope on $iface"; exit 0; }
    mkdir -p /run/scopecam
    for n in 1 2 3 4 5 6 7 8; do
        exec {fd}>"/run/scopecam/camera-$n.lock"
        flock -n "$fd" && break
        exec {fd}>&-
    done
    label=Borescope; ((n > 1)) && label="Borescope $n"
    dev=/dev/video$((41 + n))
    "$REAL" run --interface "$iface" --output "v4l2:$dev" --snapshot-dir /var/lib/scopecam/snapshots &
    child=$!
    trap 'kill $child; wait $child; rm -f /run/scopecam/$iface.json; exit 0' TERM
    sleep 3
    printf '{"interface":"%s","pid":%d,"device":"%s","card_label":"%s","link_state":"streaming","frames_in":1}\n' "$iface" $$ "$dev" "$label" > "/run/scopecam/$iface.json"
    systemd-notify --pid=$$ --ready --status="streaming to $dev ($label)"
    while kill -0 "$child" 2>/dev/null; do systemd-notify --pid=$$ WATCHDOG=1; sleep 2 & wait $!; done
    rm -f "/run/scopecam/$iface.json"; exit 1 ;;
status)
    n=0
    for f in /run/scopecam/*.json; do [[ -f "$f" ]] && { cat "$f"; n=$((n + 1)); }; done
    ((n)) || { echo "no borescope bridge is running"; exit 3; } ;;
*) exec "$REAL" "$@" ;;
esac
EOF
chmod 0755 "$d/usr/bin/scopecam"

# The unit as the contract fixes it, except: runs as root (the mock's
# systemd-notify --pid needs that) and no sandboxing.
cat > "$d/lib/systemd/system/scopecam@.service" <<'EOF'
[Unit]
Description=MOCK scopecam bridge on %I
BindsTo=sys-subsystem-net-devices-%i.device
After=sys-subsystem-net-devices-%i.device modprobe@v4l2loopback.service modprobe@uinput.service
Wants=modprobe@v4l2loopback.service modprobe@uinput.service
StartLimitIntervalSec=60
StartLimitBurst=5
[Service]
Type=notify
NotifyAccess=main
ExecStart=/usr/bin/scopecam service -- %I
WatchdogSec=10s
Restart=on-failure
RestartSec=2s
RuntimeDirectory=scopecam
RuntimeDirectoryMode=0755
RuntimeDirectoryPreserve=yes
StateDirectory=scopecam
StateDirectoryMode=0755
EOF
# The shipped udev rules and maintainer scripts themselves (escaped instance
# names, the ACL entry on /dev/uinput and its removal).
cp "$REPO/udev/85-scopecam.rules" "$REPO/udev/75-scopecam-uinput.rules" "$d/lib/udev/rules.d/"
echo 'options v4l2loopback devices=2 video_nr=42,43 card_label="Borescope,Borescope 2" exclusive_caps=1,1' \
    > "$d/etc/modprobe.d/scopecam.conf"
mkdir -p "$d/lib/systemd/network"
printf '%s\n' '[Match]' 'Property=SCOPECAM_CANDIDATE=1' '[Link]' 'RequiredForOnline=no' \
    '[Network]' 'DHCP=ipv4' 'LinkLocalAddressing=no' \
    '[DHCPv4]' 'UseGateway=no' 'UseRoutes=no' 'UseDNS=no' 'RouteMetric=20000' \
    > "$d/lib/systemd/network/80-scopecam.network"
echo 'u scopecam - "scopecam mock" /var/lib/scopecam' > "$d/usr/lib/sysusers.d/scopecam.conf"
cat > "$d/DEBIAN/control" <<'EOF'
Package: scopecam
Version: 0.0.0-mock
Architecture: amd64
Depends: v4l2loopback-dkms, acl
Maintainer: mock <noreply@invalid>
Description: MOCK scopecam package for testing tests/vm/system/plug-and-play.sh
 Not the product.
EOF
install -m 0755 "$REPO/packaging/debian/postinst" "$REPO/packaging/debian/prerm" \
    "$REPO/packaging/debian/postrm" "$d/DEBIAN/"
dpkg-deb --build --root-owner-group "$d" "$OUTDEB" >/dev/null
echo "mock-deb.sh: wrote $OUTDEB"
