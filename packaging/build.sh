#!/usr/bin/env bash
# Builds the .deb and .rpm into target/debian and target/generate-rpm.
#
#   packaging/build.sh              release build, assets, .deb, .rpm
#   packaging/build.sh --no-build   reuse target/release/scopecam
#   packaging/build.sh --no-rpm     skip the .rpm
#
# Needs cargo-deb and cargo-generate-rpm; with --install-tools they are
# installed with `cargo install --locked` (about 45 s and 5 min on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."

build=1 rpm=1 install_tools=0
for arg in "$@"; do
    case $arg in
    --no-build) build=0 ;;
    --no-rpm) rpm=0 ;;
    --install-tools) install_tools=1 ;;
    *) echo "usage: $0 [--no-build] [--no-rpm] [--install-tools]" >&2; exit 2 ;;
    esac
done

if ((install_tools)); then
    command -v cargo-deb >/dev/null || cargo install --locked cargo-deb
    ((rpm)) && { command -v cargo-generate-rpm >/dev/null || cargo install --locked cargo-generate-rpm; }
fi

if ((build)); then
    cargo build --release --locked
fi
bin=target/release/scopecam
[[ -x $bin ]] || { echo "build.sh: $bin missing; run without --no-build" >&2; exit 1; }

# Man pages and shell completions, generated from the CLI definition.
rm -rf target/assets
"$bin" generate-assets target/assets
for f in target/assets/man/scopecam.1 target/assets/completions/{scopecam.bash,_scopecam,scopecam.fish}; do
    [[ -s $f ]] || { echo "build.sh: $f missing after generate-assets" >&2; exit 1; }
done

# --no-build: cargo-deb takes the binary built above and strips its copy
# (lintian wants that); cargo-generate-rpm does not strip, so it packs a
# stripped copy.
cargo deb --no-build --locked
if ((rpm)); then
    mkdir -p target/assets/bin
    strip -o target/assets/bin/scopecam "$bin"
    # Library requirements from ldd, the same whether or not this machine
    # has rpm's find-requires. The rpm crate adds the sysusers.d
    # dependencies as rpmbuild >= 4.19 does (Provides: user(scopecam),
    # Requires: group(video)): fine on Fedora >= 39; rpm < 4.19
    # (RHEL 9, Leap 15) finds no provider for group(video).
    cargo generate-rpm --auto-req builtin
fi
ls -l target/debian/*.deb
((rpm)) && ls -l target/generate-rpm/*.rpm
exit 0
