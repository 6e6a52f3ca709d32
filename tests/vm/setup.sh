#!/usr/bin/env bash
# Prepare this (Debian 12) machine for the real-kernel VM tests.
#
# Idempotent; runs as root. Installs the VM and media tooling, finds the
# installed Debian kernel (NOT `uname -r`: the host runs some other kernel
# that has no headers here) and builds v4l2loopback for it in three versions:
#   0.12.7  Debian 12's own v4l2loopback-dkms source (/usr/src)
#   0.13.2  bookworm-backports' v4l2loopback-dkms (downloaded, not installed)
#   0.15.x  trixie's v4l2loopback-dkms (downloaded, not installed)
# into target/vm/modules/<version>/v4l2loopback.ko (git-ignored).
#
# Env: SCOPECAM_VM_SKIP_APT=1 skips apt/pip (when you know they are done).
#      SCOPECAM_VM_FORCE=1 rebuilds modules that already exist.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/vm/debian-mirror.sh
source "$REPO/tests/vm/debian-mirror.sh"
OUT="$REPO/target/vm"
MODDIR="$OUT/modules"
mkdir -p "$MODDIR"

t_all=$(date +%s)
step_start() { STEP="$1"; T0=$(date +%s.%N); echo "== $STEP"; }
step_end() { printf '== %s: %.1f s\n' "$STEP" "$(echo "$(date +%s.%N) - $T0" | bc)"; }

export DEBIAN_FRONTEND=noninteractive

# --- packages ---------------------------------------------------------------
# busybox-static: the initramfs of run.sh is built from it.
# linux-image-amd64 + linux-headers-amd64: the guest kernel and its build tree.
# v4l2loopback-dkms: 0.12.7 source, and dkms/build-essential come with it.
# chromium / gstreamer / ffmpeg / v4l-utils: consumers and producers used in-VM.
# cpio: packs the initramfs; iproute2: `ip link set lo up` in the guest.
PKGS=(qemu-system-x86 linux-image-amd64 linux-headers-amd64
      v4l2loopback-dkms v4l-utils gstreamer1.0-tools gstreamer1.0-plugins-good
      gstreamer1.0-plugins-base chromium busybox-static ffmpeg kmod bc
      python3 make gcc cpio iproute2 util-linux
      lintian rpm shellcheck strace file debootstrap dpkg-dev)
if [[ "${SCOPECAM_VM_SKIP_APT:-0}" != 1 ]]; then
    step_start "apt-get install"
    missing=()
    for p in "${PKGS[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if ((${#missing[@]})); then
        echo "installing: ${missing[*]}"
        apt-get update
        apt-get install -y --no-install-recommends "${missing[@]}"
    else
        echo "all present"
    fi
    step_end
fi
# bc is used for timings above; if apt was skipped and it is missing, fall back.
command -v bc >/dev/null || { step_end() { echo "== $STEP: done"; }; }

# --- guest kernel -------------------------------------------------------------
# Newest /boot/vmlinuz-* that also has a build tree (headers) installed.
KVER=""
for k in $(ls -1 /boot/vmlinuz-* 2>/dev/null | sed 's|/boot/vmlinuz-||' | sort -V -r); do
    if [[ -d /lib/modules/$k/build ]]; then KVER=$k; break; fi
done
[[ -n "$KVER" ]] || { echo "no /boot/vmlinuz-* with /lib/modules/<ver>/build found" >&2; exit 1; }
echo "guest kernel: $KVER (host runs $(uname -r), which is not used)"
echo "$KVER" > "$OUT/kernel-version"

# uinput must be loadable in the guest (module in Debian's config, or built in).
if ls /lib/modules/"$KVER"/kernel/drivers/input/misc/uinput.ko* >/dev/null 2>&1; then
    echo "uinput: module"
elif grep -q 'drivers/input/misc/uinput.ko' /lib/modules/"$KVER"/modules.builtin; then
    echo "uinput: built in"
else
    echo "uinput missing for $KVER" >&2; exit 1
fi

# --- v4l2loopback builds ----------------------------------------------------------
# Build a v4l2loopback source tree against the guest kernel's headers; copies
# the .ko into $MODDIR/<label>/. Returns non-zero (and keeps going) on failure.
build_module() {
    local label="$1" src="$2" dest="$MODDIR/$1"
    if [[ -f "$dest/v4l2loopback.ko" && "${SCOPECAM_VM_FORCE:-0}" != 1 ]]; then
        echo "$label: cached ($(cat "$dest/VERSION" 2>/dev/null))"
        return 0
    fi
    local work="$OUT/build/$label"
    rm -rf "$work"; mkdir -p "$work"
    cp -a "$src/." "$work/"
    # Only the kernel module: the utils/ dir is not needed in the VM.
    if make -C "/lib/modules/$KVER/build" M="$work" KERNELRELEASE="$KVER" \
            -j"$(nproc)" modules >"$work/build.log" 2>&1; then
        mkdir -p "$dest"
        cp "$work/v4l2loopback.ko" "$dest/"
        # 0.12.7 has no MODULE_VERSION (so no /sys/module/v4l2loopback/version
        # in the guest either); record the source version next to the .ko.
        basename "$src" | sed 's/^v4l2loopback-//' > "$dest/VERSION"
        echo "$label: built $(cat "$dest/VERSION") vermagic=$(modinfo -F vermagic "$dest/v4l2loopback.ko")"
    else
        echo "$label: BUILD FAILED against $KVER; last lines of $work/build.log:" >&2
        tail -20 "$work/build.log" >&2
        return 1
    fi
}

FAILED=()

step_start "v4l2loopback 0.12.7 (Debian 12 source)"
src=$(ls -d /usr/src/v4l2loopback-0.12.7 2>/dev/null || true)
if [[ -n "$src" ]]; then
    build_module 0.12.7 "$src" || FAILED+=(0.12.7)
else
    echo "/usr/src/v4l2loopback-0.12.7 missing (v4l2loopback-dkms not installed?)" >&2
    FAILED+=(0.12.7)
fi
step_end

# Download v4l2loopback-dkms from another suite without touching the system's
# apt configuration: a private sources.list (the Debian archive this machine's
# apt uses, with that suite), list dir and cache in a temp dir.
fetch_dkms_deb() {
    local suite="$1" dir="$2"
    local st="$dir/apt" mirror
    mirror=$(debian_mirror) || return 1
    mkdir -p "$st/lists/partial" "$st/cache/archives/partial" "$dir/dl"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main" \
        > "$st/sources.list"
    local A=(-o Dir::Etc::sourcelist="$st/sources.list" -o Dir::Etc::sourceparts=-
             -o Dir::State::Lists="$st/lists" -o Dir::Cache="$st/cache"
             -o APT::Get::List-Cleanup=0
             # skip the big DEP-11/translation indexes: we want one small .deb
             -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
             -o Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false
             -o Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false
             -o Acquire::Languages=none
             # a private root-owned temp dir: _apt could not write there
             -o APT::Sandbox::User=root)
    apt-get "${A[@]}" update -qq
    # Pin the download to that suite (the installed 0.12.7 must not win).
    local ver
    ver=$(apt-cache "${A[@]}" madison v4l2loopback-dkms | awk -v s="$suite" '$0 ~ s {print $3; exit}')
    [[ -n "$ver" ]] || { echo "no v4l2loopback-dkms in $suite" >&2; return 1; }
    (cd "$dir/dl" && apt-get "${A[@]}" download -q "v4l2loopback-dkms=$ver" >/dev/null)
    dpkg-deb -x "$dir"/dl/v4l2loopback-dkms_*.deb "$dir/x"
    ls -d "$dir"/x/usr/src/v4l2loopback-*
}

for pair in "0.13.2:bookworm-backports" "0.15.x:trixie"; do
    label=${pair%%:*}; suite=${pair#*:}
    step_start "v4l2loopback $label ($suite source)"
    if [[ -f "$MODDIR/$label/v4l2loopback.ko" && "${SCOPECAM_VM_FORCE:-0}" != 1 ]]; then
        echo "$label: cached ($(cat "$MODDIR/$label/VERSION" 2>/dev/null))"
    else
        tmp=$(mktemp -d)
        if src=$(fetch_dkms_deb "$suite" "$tmp"); then
            echo "$label: source $src"
            build_module "$label" "$src" || FAILED+=("$label")
        else
            echo "$label: could not fetch v4l2loopback-dkms from $suite" >&2
            FAILED+=("$label")
        fi
        rm -rf "$tmp"
    fi
    step_end
done

# --- virtme-ng (optional alternative boot path; run.sh uses its own initramfs) --
if [[ "${SCOPECAM_VM_SKIP_APT:-0}" != 1 && "${SCOPECAM_VM_VNG:-0}" == 1 ]]; then
    step_start "pip install virtme-ng"
    command -v vng >/dev/null || pip install --break-system-packages virtme-ng \
        || pip install virtme-ng
    step_end
fi

echo "modules:"
for d in "$MODDIR"/*/v4l2loopback.ko; do
    [[ -f "$d" ]] && echo "  $d ($(cat "$(dirname "$d")/VERSION"))"
done
echo "setup total: $(( $(date +%s) - t_all )) s"
if ((${#FAILED[@]})); then
    echo "FAILED to build: ${FAILED[*]}" >&2
    # Only fatal when nothing at all was built.
    ls "$MODDIR"/*/v4l2loopback.ko >/dev/null 2>&1 || exit 1
fi
