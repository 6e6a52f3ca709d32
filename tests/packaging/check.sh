#!/usr/bin/env bash
# Checks the system integration files and the packages, after
# `cargo build --release`:
#   - systemd-analyze verify of scopecam@.service (any output fails)
#   - systemd-analyze security exposure at or below the measured 1.4
#   - every system call the bridge makes (under strace, against a simulated
#     scope in network namespaces) is allowed by the unit's SystemCallFilter
#     (tests/packaging/syscalls.sh; root, strace, python3)
#   - sysusers.d creates the user with its groups (in a scratch root)
#   - builds the .deb and .rpm (packaging/build.sh --no-build)
#   - lintian: no errors or warnings beyond the commented overrides
#   - every expected path in the .deb and .rpm, with modes and conffiles
#   - the PKGBUILD's package() installs the same files
#   - the NetworkManager dispatcher's decisions (tests/packaging/dispatcher.sh)
#   - zz-scopecam.network under systemd-networkd against a fake scope in
#     network namespaces (tests/packaging/networkd.sh; root, busybox)
#
# Needs: systemd (systemd-analyze, systemd-sysusers), dpkg-dev, lintian, rpm,
# the shellcheck linter, cargo-deb and cargo-generate-rpm (packaging/build.sh
# --install-tools installs the last two). Touches no interface, udev or systemd state
# of this machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

# Exposure of scopecam@.service times 10 (systemd-analyze's --threshold
# scale is 0-100): 1.4 measured with systemd 252. Raise it only knowingly.
security_threshold=14

failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}
step() { echo "== $*"; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

bin=target/release/scopecam
[[ -x $bin ]] || { echo "check.sh: $bin missing: run cargo build --release first" >&2; exit 1; }

step "unit: fixed values"
unit=systemd/scopecam@.service
for line in 'ExecStart=/usr/bin/scopecam service -- %I' 'Type=notify' 'NotifyAccess=main' \
    'WatchdogSec=10s' 'Restart=on-failure' 'RestartSec=2s' 'StartLimitIntervalSec=60' \
    'StartLimitBurst=5' 'BindsTo=sys-subsystem-net-devices-%i.device' \
    'After=sys-subsystem-net-devices-%i.device' 'User=scopecam' \
    'SupplementaryGroups=video' 'ExecStopPost=-/bin/rm -f /run/scopecam/%I.json' \
    'RuntimeDirectory=scopecam' \
    'RuntimeDirectoryMode=0755' 'RuntimeDirectoryPreserve=yes' 'StateDirectory=scopecam' \
    'StateDirectoryMode=0755' 'DevicePolicy=closed' 'DeviceAllow=char-video4linux rw' \
    'DeviceAllow=/dev/uinput rw' 'DeviceAllow=/dev/v4l2loopback rw' \
    'RestrictAddressFamilies=AF_INET AF_NETLINK AF_UNIX' 'CapabilityBoundingSet='; do
    grep -qxF -- "$line" "$unit" || fail "$unit lacks '$line'"
done

step "unit: systemd-analyze verify"
# verify wants ExecStart to exist: a scratch copy points it at the build.
# Any output is a failure (verify exits 0 on unknown keys).
mkdir "$tmp/units"
sed "s#^ExecStart=/usr/bin/scopecam #ExecStart=$root/$bin #" "$unit" >"$tmp/units/scopecam@.service"
ln -s scopecam@.service "$tmp/units/scopecam@enx00e04c680001.service"
instance="$tmp/units/scopecam@enx00e04c680001.service"
# --man=no: the man pages are in the package, not on this machine.
out=$(systemd-analyze verify --man=no "$instance" 2>&1) || fail "systemd-analyze verify exited $?"
if [[ -n $out ]]; then
    echo "$out"
    fail "systemd-analyze verify printed the above"
fi

step "unit: interface names that need escaping (udev rule's instance, verify)"
# 85-scopecam.rules names the instance with systemd-escape; its PROGRAM line is
# run here as udev would (with \$name replaced), and each resulting unit must
# unescape to the interface name (%I) and pass verify like the plain one.
program=$(sed -n 's/^PROGRAM="\([^"]*\)".*/\1/p' udev/85-scopecam.rules)
# shellcheck disable=SC2016 # the literal udev substitution
[[ $program == *'$name'* ]] || fail "85-scopecam.rules: no PROGRAM line with \$name"
for name in enx00e04c680001 scope-1 -odd-name a.b_c; do
    # shellcheck disable=SC2086 # split into words as udev does
    unit=$(${program//\$name/$name} 2>&1) || { fail "'$program' for '$name': $unit"; continue; }
    back=$(systemd-escape --unescape --instance "$unit" 2>&1)
    echo "$name -> $unit -> %I '$back'"
    [[ $back == "$name" ]] || fail "$unit unescapes to '$back', not '$name'"
    if [[ $name != *-* ]]; then
        [[ $unit == "scopecam@$name.service" ]] || fail "'$name' became $unit (escaped when it need not be)"
        continue
    fi
    [[ $unit == *\\* ]] || fail "$unit for '$name' has no escape: its %i would not name the device unit"
    ln -s scopecam@.service "$tmp/units/$unit"
    out=$(systemd-analyze verify --man=no "$tmp/units/$unit" 2>&1) || fail "systemd-analyze verify $unit exited $?"
    [[ -z $out ]] || { echo "$out"; fail "systemd-analyze verify $unit printed the above"; }
done

step "unit: systemd-analyze security (threshold $security_threshold/100)"
security=$(systemd-analyze security --offline=yes "$instance" 2>&1 | tail -1) || true
echo "$security"
if ! systemd-analyze security --offline=yes --threshold="$security_threshold" "$instance" >/dev/null 2>&1; then
    systemd-analyze security --offline=yes "$instance" 2>&1 | grep '✗' || true
    fail "exposure above $security_threshold/100"
fi

step "unit: the bridge's system calls are within its SystemCallFilter"
bash tests/packaging/syscalls.sh "$bin" || fail "system calls outside the filter"

step "sysusers.d: user scopecam in video, not in input"
mkdir -p "$tmp/sysroot/etc"
systemd-sysusers --root="$tmp/sysroot" "$root/packaging/sysusers.d/scopecam.conf" >/dev/null 2>&1 ||
    fail "systemd-sysusers failed"
grep -q '^scopecam:x:[0-9]*:[0-9]*:[^:]*:/var/lib/scopecam:' "$tmp/sysroot/etc/passwd" ||
    fail "no scopecam user with home /var/lib/scopecam"
grep -Eq "^video:x:[0-9]+:(.*,)?scopecam(,|$)" "$tmp/sysroot/etc/group" ||
    fail "scopecam is not in group video"
# /dev/uinput is the user's through an ACL entry (75-scopecam-uinput.rules);
# group input would also let it read every keyboard.
! grep -Eq "^input:x:[0-9]+:(.*,)?scopecam(,|$)" "$tmp/sysroot/etc/group" ||
    fail "scopecam is in group input"

step "shell scripts: shellcheck"
if command -v shellcheck >/dev/null; then
    shellcheck packaging/NetworkManager/dispatcher.d/90-scopecam packaging/build.sh \
        packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm \
        packaging/load-v4l2loopback \
        tests/packaging/check.sh tests/packaging/dispatcher.sh tests/packaging/networkd.sh \
        tests/packaging/syscalls.sh ||
        fail "shellcheck"
    shellcheck -s sh packaging/rpm/*.sh packaging/arch/scopecam.install || fail "shellcheck (rpm, pacman scriptlets)"
    shellcheck -s bash -e SC2034,SC2154,SC2164 packaging/arch/PKGBUILD || fail "shellcheck (PKGBUILD)"
else
    echo "SKIP: shellcheck not installed"
fi

step "NetworkManager dispatcher decisions"
bash tests/packaging/dispatcher.sh || fail "dispatcher test"

step "systemd-networkd file against a fake scope (network namespaces)"
bash tests/packaging/networkd.sh || fail "networkd test"

step "build packages"
rpm_build=1
if ! command -v cargo-generate-rpm >/dev/null; then
    echo "SKIP: cargo-generate-rpm not installed, no .rpm (packaging/build.sh --install-tools)"
    rpm_build=0
fi
rm -rf target/debian target/generate-rpm
if ((rpm_build)); then
    bash packaging/build.sh --no-build
else
    bash packaging/build.sh --no-build --no-rpm
fi
debs=(target/debian/scopecam_*.deb)
deb=${debs[0]}
[[ -f $deb ]] || { echo "check.sh: no .deb built" >&2; exit 1; }
echo "$deb: $(stat -c %s "$deb") bytes"
if grep -rq PLACEHOLDER target/assets/man target/assets/completions; then
    echo "WARNING: man pages and completions are PLACEHOLDERS (no 'scopecam generate-assets' in this build)"
fi

# Files every package installs: path (relative to /) and mode.
expected=(
    "usr/bin/scopecam 755"
    "etc/scopecam/config.toml 644"
    "usr/lib/systemd/system/scopecam@.service 644"
    "usr/lib/udev/rules.d/85-scopecam.rules 644"
    "usr/lib/udev/rules.d/75-scopecam-uinput.rules 644"
    "usr/lib/modprobe.d/scopecam.conf 644"
    "usr/lib/scopecam/load-v4l2loopback 755"
    "usr/lib/udev/rules.d/70-scopecam-v4l2loopback.rules 644"
    "usr/lib/modules-load.d/scopecam.conf 644"
    "usr/lib/sysusers.d/scopecam.conf 644"
    "usr/lib/sysctl.d/30-scopecam.conf 644"
    "usr/lib/systemd/network/zz-scopecam.network 644"
    "usr/lib/NetworkManager/dispatcher.d/90-scopecam 755"
    "usr/share/bash-completion/completions/scopecam 644"
    "usr/share/fish/vendor_completions.d/scopecam.fish 644"
)
man_pages=()
for page in target/assets/man/*.1; do
    man_pages+=("${page##*/}")
done

step "deb: lintian"
# Overrides (packaging/debian/lintian-overrides) each say why.
lintian_rc=0
lintian --display-info --pedantic --fail-on error,warning "$deb" >"$tmp/lintian.log" 2>&1 || lintian_rc=$?
grep -v 'running with root privileges' "$tmp/lintian.log" || true
((lintian_rc == 0)) || fail "lintian: errors or warnings (exit $lintian_rc)"

step "deb: contents"
dpkg-deb -c "$deb" | awk '{ sub(/^\.\//, "", $6); print $1, $6 }' >"$tmp/deb.list"
mode_string() { # 755 -> -rwxr-xr-x
    local out=- digit
    for ((i = 0; i < 3; i++)); do
        digit=${1:i:1}
        out+=$( ((digit & 4)) && echo r || echo -)$( ((digit & 2)) && echo w || echo -)$( ((digit & 1)) && echo x || echo -)
    done
    echo "$out"
}
deb_expected=("${expected[@]}" "usr/share/zsh/vendor-completions/_scopecam 644"
    "usr/share/doc/scopecam/copyright 644" "usr/share/doc/scopecam/changelog.Debian.gz 644"
    "usr/share/lintian/overrides/scopecam 644")
for page in "${man_pages[@]}"; do
    deb_expected+=("usr/share/man/man1/$page.gz 644")
done
for entry in "${deb_expected[@]}"; do
    path=${entry% *} mode=${entry##* }
    grep -qxF -- "$(mode_string "$mode") $path" "$tmp/deb.list" || fail "deb lacks $path (mode $mode)"
done
[[ $(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles) == /etc/scopecam/config.toml ]] ||
    fail "deb: /etc/scopecam/config.toml is not the (only) conffile"
# The module: recommended as the DKMS source or anything providing
# v4l2loopback-modules, never a hard dependency (Cargo.toml says why).
relations() { tr ',' '\n' <<<"$1" | sed 's/^ *//; s/ *$//'; }
depends=$(dpkg-deb -f "$deb" Depends)
recommends=$(dpkg-deb -f "$deb" Recommends)
echo "Depends: $depends"
echo "Recommends: $recommends"
[[ $depends != *v4l2loopback* ]] || fail "deb: v4l2loopback in Depends (must be a Recommends): $depends"
[[ ", $depends," == *", acl,"* ]] || fail "deb does not depend on acl (setfacl in the udev rule): $depends"
relations "$recommends" | grep -qxF 'v4l2loopback-dkms | v4l2loopback-modules' ||
    fail "deb does not recommend 'v4l2loopback-dkms | v4l2loopback-modules': $recommends"
relations "$recommends" | grep -qxF v4l-utils || fail "deb does not recommend v4l-utils: $recommends"
dpkg-deb --ctrl-tarfile "$deb" | tar -t >"$tmp/control.list"
for script in postinst prerm postrm; do
    grep -qx "./$script" "$tmp/control.list" || fail "deb lacks $script"
done
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./postrm | grep -q 'setfacl -x u:scopecam /dev/uinput' ||
    fail "deb postrm does not remove the uinput ACL entry"
dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/bin/scopecam >"$tmp/deb.bin"
if command -v file >/dev/null && ! file "$tmp/deb.bin" | grep -q stripped; then
    fail "deb: binary not stripped"
fi

step "rpm: contents"
if ((rpm_build)) && command -v rpm >/dev/null; then
    rpms=(target/generate-rpm/scopecam-*.rpm)
    rpmfile=${rpms[0]}
    echo "$rpmfile: $(stat -c %s "$rpmfile") bytes"
    rpm -qp --dump "$rpmfile" 2>/dev/null | awk '{ print $1, substr($5, length($5) - 2) }' >"$tmp/rpm.list"
    rpm_expected=("${expected[@]}" "usr/share/zsh/site-functions/_scopecam 644")
    for page in "${man_pages[@]}"; do
        rpm_expected+=("usr/share/man/man1/$page 644")
    done
    for entry in "${rpm_expected[@]}"; do
        grep -qxF "/$entry" "$tmp/rpm.list" || fail "rpm lacks /${entry% *} (mode ${entry##* })"
    done
    [[ $(rpm -qcp "$rpmfile" 2>/dev/null) == /etc/scopecam/config.toml ]] ||
        fail "rpm: /etc/scopecam/config.toml is not the (only) config file"
    rpm_recommends=$(rpm -qp --recommends "$rpmfile" 2>/dev/null)
    for name in v4l2loopback akmod-v4l2loopback; do
        grep -qx "$name" <<<"$rpm_recommends" || fail "rpm does not recommend $name"
    done
    ! rpm -qp --requires "$rpmfile" 2>/dev/null | grep -q v4l2loopback || fail "rpm requires v4l2loopback (must be a Recommends)"
    rpm -qp --requires "$rpmfile" 2>/dev/null | grep -qx acl || fail "rpm does not require acl (setfacl in the udev rule)"
    rpm -qp --requires "$rpmfile" 2>/dev/null | grep -q 'group(input)' && fail "rpm requires group(input)"
    rpm -qp --scripts "$rpmfile" 2>/dev/null >"$tmp/rpm.scripts"
    grep -q 'systemd-sysusers scopecam.conf' "$tmp/rpm.scripts" || fail "rpm %post lacks sysusers"
    grep -q 'setfacl -x u:scopecam /dev/uinput' "$tmp/rpm.scripts" || fail "rpm %postun does not remove the uinput ACL entry"
else
    echo "SKIP: no rpm (cargo-generate-rpm or rpm missing)"
fi

step "arch: PKGBUILD installs the same files"
bash -n packaging/arch/PKGBUILD || fail "PKGBUILD syntax"
# Runs package() against this build (build() needs makepkg and the network).
mkdir -p "$tmp/arch/src/target/release" "$tmp/arch/pkg"
cp "$bin" "$tmp/arch/src/target/release/"
cp -r target/assets "$tmp/arch/src/assets"
(
    # makepkg sets these for the PKGBUILD.
    # shellcheck disable=SC2034
    startdir="$root/packaging/arch" srcdir="$tmp/arch/src" pkgdir="$tmp/arch/pkg"
    # shellcheck source=/dev/null
    source packaging/arch/PKGBUILD
    set -e
    package
    printf '%s\n' "${depends[@]}" >"$tmp/arch.depends"
    # shellcheck disable=SC2154 # set by the PKGBUILD
    echo "install: $install"
) >"$tmp/arch.log" 2>&1 || { cat "$tmp/arch.log"; fail "PKGBUILD package() failed"; }
# The virtual package, not v4l2loopback-dkms: kernels that ship the module provide it too.
grep -qx V4L2LOOPBACK-MODULE "$tmp/arch.depends" || fail "PKGBUILD does not depend on V4L2LOOPBACK-MODULE"
! grep -q v4l2loopback-dkms "$tmp/arch.depends" || fail "PKGBUILD depends on v4l2loopback-dkms"
grep -qx acl "$tmp/arch.depends" || fail "PKGBUILD does not depend on acl"
arch_install=$(sed -n 's/^install: //p' "$tmp/arch.log")
[[ -n $arch_install && -f packaging/arch/$arch_install ]] || fail "PKGBUILD install= '$arch_install' is not a file in packaging/arch"
grep -q 'setfacl -x u:scopecam /dev/uinput' "packaging/arch/$arch_install" 2>/dev/null ||
    fail "PKGBUILD's install script does not remove the uinput ACL entry"
arch_expected=("${expected[@]}" "usr/share/zsh/site-functions/_scopecam 644")
for page in "${man_pages[@]}"; do
    arch_expected+=("usr/share/man/man1/$page 644")
done
for entry in "${arch_expected[@]}"; do
    path=${entry% *} mode=${entry##* }
    [[ $(stat -c %a "$tmp/arch/pkg/$path" 2>/dev/null) == "$mode" ]] || fail "PKGBUILD lacks $path (mode $mode)"
done

if ((failures)); then
    echo "packaging checks: $failures failure(s)"
    exit 1
fi
echo "packaging checks: all passed"
