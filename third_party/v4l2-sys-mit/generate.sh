#!/usr/bin/env bash
# Regenerates the pre-generated V4L2 bindings in src/bindings/ (see README.md).
#
#   third_party/v4l2-sys-mit/generate.sh            the committed targets
#   third_party/v4l2-sys-mit/generate.sh TRIPLE...  those Rust targets only
#   third_party/v4l2-sys-mit/generate.sh --check    regenerate into target/ and
#                                                   diff against the committed files
#
# Runs on Debian or Ubuntu. Needs libclang (installs libclang-dev when run as
# root) and, per target, the kernel's and the C library's headers: the host's
# own (linux-libc-dev, libc6-dev) for the host target, the same two packages
# of the target's Debian architecture for the others (downloaded with apt-get
# from this machine's own apt sources and unpacked under target/, nothing
# installed). Each file gets a line in src/bindings/SOURCES saying what made it.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
WORK="$REPO/target/v4l2-sys-mit-generate"
DEFAULT_TARGETS=(x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf)

check=0 targets=()
for arg in "$@"; do
    case $arg in
    --check) check=1 ;;
    -*) echo "usage: $0 [--check] [RUST_TARGET_TRIPLE...]" >&2; exit 2 ;;
    *) targets+=("$arg") ;;
    esac
done
((${#targets[@]})) || targets=("${DEFAULT_TARGETS[@]}")

# Rust target -> Debian architecture and its multiarch include directory.
debian_arch() {
    case $1 in
    x86_64-unknown-linux-gnu) echo "amd64 x86_64-linux-gnu" ;;
    aarch64-unknown-linux-gnu) echo "arm64 aarch64-linux-gnu" ;;
    armv7-unknown-linux-gnueabihf | arm-unknown-linux-gnueabihf) echo "armhf arm-linux-gnueabihf" ;;
    arm-unknown-linux-gnueabi | armv5te-unknown-linux-gnueabi) echo "armel arm-linux-gnueabi" ;;
    i686-unknown-linux-gnu) echo "i386 i686-linux-gnu" ;;
    riscv64gc-unknown-linux-gnu) echo "riscv64 riscv64-linux-gnu" ;;
    powerpc64le-unknown-linux-gnu) echo "ppc64el powerpc64le-linux-gnu" ;;
    s390x-unknown-linux-gnu) echo "s390x s390x-linux-gnu" ;;
    *) return 1 ;;
    esac
}

as_root_or_say() {
    # Runs "$@" as root, or explains what to run when not root.
    if [[ $(id -u) == 0 ]]; then
        "$@"
    else
        echo "generate.sh: needs root for: $*" >&2
        exit 1
    fi
}

# libclang, loaded at run time by bindgen (clang-sys); libclang-dev also
# brings clang's own builtin headers (stddef.h, ...), which bindgen needs.
if ! ls /usr/lib/llvm-*/lib/libclang.so* /usr/lib/*/libclang*.so* >/dev/null 2>&1 \
        && [[ -z ${LIBCLANG_PATH:-} ]]; then
    echo "generate.sh: no libclang; installing libclang-dev" >&2
    as_root_or_say apt-get install -y --no-install-recommends libclang-dev
fi

# Downloads linux-libc-dev and libc6-dev of Debian architecture $1 (the
# versions installed on this machine when the archive has them, so that every
# target is made from the same headers) and unpacks them into $2. A private
# apt state directory with this machine's own apt sources: the system's apt
# configuration and dpkg are not touched.
fetch_target_headers() {
    local arch="$1" root="$2" st="$WORK/apt-$1"
    mkdir -p "$st/lists/partial" "$st/cache/archives/partial" "$st/debs"
    local A=(-o Dir::State::Lists="$st/lists" -o Dir::Cache="$st/cache"
             -o APT::Architecture="$arch" -o APT::Architectures="$arch"
             -o APT::Get::List-Cleanup=0 -o Acquire::Languages=none
             -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
             -o Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false
             -o Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false
             -o APT::Sandbox::User=root)
    # An index that fails to download (a mirror in mid-sync) is not fatal:
    # the package may still come from another suite, and the version check
    # below says so when it is not the installed one.
    apt-get "${A[@]}" update -qq || echo "generate.sh: apt-get update for $arch had errors (above)" >&2
    local p ver specs=()
    for p in linux-libc-dev libc6-dev; do
        ver=$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || true)
        if [[ -n $ver ]] && apt-cache "${A[@]}" madison "$p" | awk '{print $3}' | grep -qxF "$ver"; then
            specs+=("$p=$ver")
        else
            echo "generate.sh: $p ${ver:-(not installed)} not in the archive for $arch; taking its candidate" >&2
            specs+=("$p")
        fi
    done
    rm -f "$st/debs"/*.deb
    (cd "$st/debs" && apt-get "${A[@]}" download -q "${specs[@]}" >/dev/null)
    local deb list=""
    for deb in "$st/debs"/*.deb; do
        dpkg-deb -x "$deb" "$root"
        list+="${list:+, }$(dpkg-deb -f "$deb" Package):$arch $(dpkg-deb -f "$deb" Version)"
    done
    echo "$list" > "$root/.packages"
}

host=$(rustc -vV | sed -n 's/^host: //p')
mkdir -p "$WORK"
echo "== building the generator (bindgen 0.65.1)"
CARGO_TARGET_DIR="$WORK/cargo" cargo build --release --locked --quiet \
    --manifest-path "$HERE/generate/Cargo.toml"
gen="$WORK/cargo/release/v4l2-sys-mit-generate"

out_dir="$HERE/src/bindings"
((check)) && { out_dir="$WORK/check"; rm -rf "$out_dir"; }
mkdir -p "$out_dir"
sources="$out_dir/SOURCES"
# Keep the lines of targets not regenerated this time.
if [[ -f $HERE/src/bindings/SOURCES ]]; then
    grep -v -F -f <(printf '%s:\n' "${targets[@]}") "$HERE/src/bindings/SOURCES" > "$sources.new" || true
else
    : > "$sources.new"
fi

for target in "${targets[@]}"; do
    read -r deb_arch gnu_triple < <(debian_arch "$target") || {
        echo "generate.sh: no Debian architecture known for $target; add it to debian_arch()" >&2
        exit 1
    }
    if [[ $target == "$host" ]]; then
        # The host's own headers, exactly as the upstream build script sees them.
        for p in linux-libc-dev libc6-dev; do
            dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
                || as_root_or_say apt-get install -y --no-install-recommends "$p"
        done
        extra_args=""
        headers="linux-libc-dev $(dpkg-query -W -f='${Version}' linux-libc-dev)"
        headers+=", libc6-dev $(dpkg-query -W -f='${Version}' libc6-dev) (host)"
    else
        root="$WORK/sysroot-$deb_arch"
        rm -rf "$root"
        fetch_target_headers "$deb_arch" "$root"
        headers=$(cat "$root/.packages")
        inc="$root/usr/include"
        [[ -f $inc/linux/videodev2.h && -f $inc/$gnu_triple/sys/time.h && -d $inc/$gnu_triple/asm ]] \
            || { echo "generate.sh: $root lacks the $deb_arch headers" >&2; exit 1; }
        # The include path a native $deb_arch Debian machine has, and only
        # that: none of the host's /usr/include may leak in.
        extra_args="-nostdlibinc -isystem $inc/$gnu_triple -isystem $inc"
    fi
    echo "== $target"
    file="$out_dir/$target.rs"
    clang=$(TARGET=$target BINDGEN_EXTRA_CLANG_ARGS=$extra_args "$gen" "$HERE/wrapper.h" "$file")
    echo "$target: bindgen 0.65.1, $clang, $headers" >> "$sources.new"
done
sort "$sources.new" > "$sources"
rm "$sources.new"

if ((check)); then
    status=0
    for target in "${targets[@]}"; do
        diff -u "$HERE/src/bindings/$target.rs" "$out_dir/$target.rs" || status=1
    done
    diff -u "$HERE/src/bindings/SOURCES" "$sources" || status=1
    ((status == 0)) && echo "generate.sh: the committed bindings match a fresh generation"
    exit $status
fi
ls -l "$out_dir"
