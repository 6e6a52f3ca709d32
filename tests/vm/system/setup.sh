#!/usr/bin/env bash
# Build the Debian 12 root that tests/vm/system/run.sh boots with systemd as
# PID 1 (the busybox initramfs of tests/vm/run.sh has no systemd and no udev,
# so it cannot test a udev rule starting a systemd unit).
#
#   sudo tests/vm/system/setup.sh        # needs tests/vm/setup.sh done first
#   sudo SCOPECAM_VM_PIPEWIRE=stable tests/vm/system/setup.sh
#
# Result: target/vm/system-root/ (git-ignored, ~750 MB on disk, most of it the
# guest kernel's modules). Cached: rebuilt only when this script, the guest
# kernel or a v4l2loopback build changes, so a second run takes well under a
# second. The guest never writes to it: run.sh serves it read-only over 9p
# with a per-boot tmpfs overlay on top.
#
# Env: SCOPECAM_VM_MIRROR=URL  Debian mirror (default: the one in this
#                              machine's apt sources, ../debian-mirror.sh)
#      SCOPECAM_VM_FORCE=1     rebuild even if cached
#      SCOPECAM_VM_PIPEWIRE=backports (default) | stable
#                              the desktop camera stack (PipeWire, WirePlumber,
#                              gst-pipewire): from <suite>-backports (PipeWire
#                              1.4, as current desktops have it), or the
#                              suite's own (PipeWire 0.3.65, WirePlumber 0.4)
#                              into a second root, target/vm/system-root-pipewire-stable
#                              (run.sh --root target/vm/system-root-pipewire-stable)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
# shellcheck source=tests/vm/debian-mirror.sh
source "$HERE/../debian-mirror.sh"
OUT="$REPO/target/vm"
SUITE=bookworm
PIPEWIRE=${SCOPECAM_VM_PIPEWIRE:-backports}
case "$PIPEWIRE" in
    backports) ROOT="$OUT/system-root" ;;
    stable) ROOT="$OUT/system-root-pipewire-stable" ;;
    *) echo "setup.sh: SCOPECAM_VM_PIPEWIRE must be backports or stable, not '$PIPEWIRE'" >&2; exit 2 ;;
esac

[[ $(id -u) == 0 ]] || { echo "setup.sh: run as root (debootstrap needs it)" >&2; exit 1; }
KVER=$(cat "$OUT/kernel-version" 2>/dev/null || true)
[[ -n "$KVER" && -d /lib/modules/$KVER ]] \
    || { echo "setup.sh: run tests/vm/setup.sh first (no guest kernel recorded in $OUT/kernel-version)" >&2; exit 1; }
DEFAULT_KO="$OUT/modules/0.12.7/v4l2loopback.ko"
[[ -f "$DEFAULT_KO" ]] || { echo "setup.sh: no $DEFAULT_KO; run tests/vm/setup.sh first" >&2; exit 1; }

# The cache key covers everything that ends up in the root.
key=$( { cat "$0"; echo "$KVER"; echo "$PIPEWIRE"; sha256sum "$DEFAULT_KO"; } | sha256sum | cut -c1-16)
if [[ "${SCOPECAM_VM_FORCE:-0}" != 1 && -f "$ROOT/etc/scopecam-vm-key" \
      && $(cat "$ROOT/etc/scopecam-vm-key") == "$key" ]]; then
    echo "system-root: cached ($ROOT, key $key)"
    exit 0
fi

t_all=$(date +%s.%N)
step_start() { STEP="$1"; T0=$(date +%s.%N); echo "== $STEP"; }
step_end() { printf '== %s: %.1f s\n' "$STEP" "$(echo "$(date +%s.%N) - $T0" | bc)"; }

export DEBIAN_FRONTEND=noninteractive
if ! command -v debootstrap >/dev/null; then
    step_start "apt-get install debootstrap"
    apt-get update -qq
    apt-get install -y --no-install-recommends debootstrap
    step_end
fi

mirror=$(debian_mirror)

# Build next to the final place and swap at the end: an interrupted build
# never leaves a half root that a later run would boot.
NEW="$ROOT.new"
rm -rf "$NEW"
mkdir -p "$OUT/debootstrap-cache"

# Packages: systemd as init with udev and D-Bus (systemctl talks to PID 1 over
# it), iproute2 for netns/veth, kmod for modprobe/depmod, v4l-utils for a
# frame consumer (v4l2-ctl), busybox for udhcpd and small tools, procps for
# ps/pgrep in failure reports, acl for setfacl/getfacl (the package depends on
# it: its udev rule gives the service user an ACL entry on /dev/uinput). The
# rest of the package's runtime deps are libc only (a Rust binary); anything
# else it declares is handled below.
INCLUDE=systemd,systemd-sysv,udev,dbus,iproute2,kmod,v4l-utils,busybox,procps,iputils-ping,acl
step_start "debootstrap $SUITE (minbase) from $mirror"
# --cache-dir keeps the downloaded .debs: a rebuild after editing this script
# does not download again.
debootstrap --variant=minbase --include="$INCLUDE" \
    --cache-dir="$OUT/debootstrap-cache" \
    "$SUITE" "$NEW" "$mirror" > "$OUT/debootstrap.log" 2>&1 \
    || { echo "debootstrap failed; last lines of $OUT/debootstrap.log:" >&2; tail -30 "$OUT/debootstrap.log" >&2; exit 1; }
step_end

step_start "configure"
# A fixed machine-id: an empty one makes systemd treat every boot as "first
# boot" (ConditionFirstBoot units such as systemd-firstboot would prompt on
# the console and hang the boot).
echo 5c0bec4a5c0bec4a5c0bec4a5c0bec4a > "$NEW/etc/machine-id"
echo scopecam-vm > "$NEW/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 scopecam-vm\n' > "$NEW/etc/hosts"
: > "$NEW/etc/fstab"   # the initramfs mounts everything; nothing for systemd to remount
# root without a password: lets a person debug on the serial console (the VM
# has no network, so nobody else can reach it).
chroot "$NEW" passwd -d root >/dev/null
ln -sf /lib/systemd/system/multi-user.target "$NEW/etc/systemd/system/default.target"
# Units that only cost boot time here or wait for things the VM never has:
# logins on the consoles (the test is a unit, nobody logs in), apt's timers,
# and the network-online wait (there is no network).
for u in getty@tty1.service serial-getty@ttyS0.service getty.target \
         apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service \
         fstrim.timer systemd-networkd-wait-online.service systemd-timesyncd.service; do
    ln -sf /dev/null "$NEW/etc/systemd/system/$u"
done
# journald: keep everything in RAM (/run), the root is thrown away anyway.
mkdir -p "$NEW/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\nRateLimitBurst=0\n' > "$NEW/etc/systemd/journald.conf.d/scopecam-vm.conf"

# The test runner unit. Type=exec (not oneshot): a oneshot would keep a start
# job queued for the whole test, and `systemctl is-system-running --wait` in
# the test would then wait for itself forever.
cat > "$NEW/etc/systemd/system/scopecam-vm-test.service" <<'EOF'
[Unit]
Description=scopecam VM test (script given to tests/vm/system/run.sh)
# After the system is up, like a person plugging a scope into a booted machine.
After=multi-user.target
[Service]
Type=exec
# run.sh puts guest-run.sh in the results share with the script, so editing
# it does not rebuild this root.
ExecStart=/bin/bash /vm-results/.vm/guest-run.sh
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=infinity
[Install]
WantedBy=multi-user.target
EOF
mkdir -p "$NEW/etc/systemd/system/multi-user.target.wants"
ln -sf ../scopecam-vm-test.service "$NEW/etc/systemd/system/multi-user.target.wants/scopecam-vm-test.service"
# Mount points for the host's shares (see run.sh).
mkdir -p "$NEW/vm-results"

# A stand-in for v4l2loopback-dkms: the .deb under test depends on it, but the
# real one would compile the module with a compiler and kernel headers inside
# the VM (minutes under TCG, ~300 MB more). The module itself is the one
# tests/vm/setup.sh built for this kernel, put where DKMS would put it.
stub=$(mktemp -d)
mkdir -p "$stub/DEBIAN"
cat > "$stub/DEBIAN/control" <<EOF
Package: v4l2loopback-dkms
Version: $(cat "$OUT/modules/0.12.7/VERSION")-0scopecamvm1
Architecture: all
Maintainer: scopecam VM test <noreply@invalid>
Description: VM test stand-in; the module comes from tests/vm/setup.sh
 Installed only in the scopecam system-test VM image.
EOF
dpkg-deb --build --root-owner-group "$stub" "$NEW/tmp/v4l2loopback-dkms-stub.deb" >/dev/null
chroot "$NEW" dpkg -i /tmp/v4l2loopback-dkms-stub.deb >/dev/null
rm -rf "$stub" "$NEW/tmp/v4l2loopback-dkms-stub.deb"
step_end

# --- The desktop's camera path (desktop-camera.sh) ---------------------------
# PipeWire and WirePlumber as user services the way a desktop runs them, the
# GStreamer PipeWire source (what GNOME Snapshot, OBS's PipeWire source and the
# camera portal's clients end up using) and gst-launch-1.0 to drive it, plus
# dbus-user-session and libpam-systemd for the user's bus and manager. The
# user "desk" (uid 1000) stands for the logged-in desktop user: lingering, so
# user@1000.service (and its D-Bus) run without a login; in the video group,
# since a headless VM has no seat whose active session would get the udev
# "uaccess" ACL on /dev/video* as a desktop login does.
# PipeWire from <suite>-backports by default: bookworm's own 0.3.65 (like every
# PipeWire before 1.1.81) cannot stream from v4l2loopback at all, and the
# backport is the 1.x that current desktops run (docs/desktop.md).
DESKTOP_PKGS="pipewire pipewire-bin wireplumber gstreamer1.0-pipewire gstreamer1.0-tools"
DESKTOP_PKGS+=" gstreamer1.0-plugins-base dbus-user-session libpam-systemd"
PW_RELEASE=()
if [[ $PIPEWIRE == backports ]]; then
    echo "deb $mirror $SUITE-backports main" > "$NEW/etc/apt/sources.list.d/backports.list"
    PW_RELEASE=(-t "$SUITE-backports")
fi
step_start "desktop camera stack ($PIPEWIRE): $DESKTOP_PKGS"
mkdir -p "$NEW/var/cache/apt/archives/partial"
mount --bind "$OUT/debootstrap-cache" "$NEW/var/cache/apt/archives"
mkdir -p "$OUT/debootstrap-cache/partial"
desktop_ok=0
chroot "$NEW" apt-get update -qq >> "$OUT/debootstrap.log" 2>&1 \
    && chroot "$NEW" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        "${PW_RELEASE[@]}" $DESKTOP_PKGS >> "$OUT/debootstrap.log" 2>&1 && desktop_ok=1
umount "$NEW/var/cache/apt/archives"
((desktop_ok)) || { echo "apt-get install of the desktop stack failed; see $OUT/debootstrap.log" >&2; tail -30 "$OUT/debootstrap.log" >&2; exit 1; }
# The versions the VM tests report (and desktop-camera.sh reads with dpkg).
chroot "$NEW" dpkg-query -W pipewire-bin wireplumber gstreamer1.0-pipewire
# The root's apt lists are dropped (the .deb under test is installed with
# dpkg/apt from a file): no backports source left that could pull in more.
rm -f "$NEW/etc/apt/sources.list.d/backports.list"
rm -rf "$NEW/var/lib/apt/lists/"*
chroot "$NEW" useradd --uid 1000 --create-home --shell /bin/bash --groups video desk
mkdir -p "$NEW/var/lib/systemd/linger"
: > "$NEW/var/lib/systemd/linger/desk"
step_end

step_start "kernel modules $KVER"
# The whole module tree (veth, uinput, videodev, virtio, ...): picking a
# subset would break the first time a test needs one more module.
mkdir -p "$NEW/lib/modules"
cp -a "/lib/modules/$KVER" "$NEW/lib/modules/"
rm -f "$NEW/lib/modules/$KVER/build" "$NEW/lib/modules/$KVER/source"   # host build-tree links
install -D -m 0644 "$DEFAULT_KO" "$NEW/lib/modules/$KVER/updates/dkms/v4l2loopback.ko"
depmod -b "$NEW" "$KVER"
step_end

echo "$key" > "$NEW/etc/scopecam-vm-key"
rm -rf "$ROOT.old"
[[ -d "$ROOT" ]] && mv "$ROOT" "$ROOT.old"
mv "$NEW" "$ROOT"
rm -rf "$ROOT.old"
printf 'system-root: built %s (%s) in %.0f s\n' "$ROOT" "$(du -sh "$ROOT" | cut -f1)" \
    "$(echo "$(date +%s.%N) - $t_all" | bc)"
