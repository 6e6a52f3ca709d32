# shellcheck shell=bash
# Sourced by the host-side VM setup scripts (tests/vm/setup.sh,
# tests/vm/system/setup.sh).
#
# debian_mirror: prints the Debian archive this machine's apt already uses
# (its main archive, not the security one), or $SCOPECAM_VM_MIRROR when set.
# The scripts name no host of their own: a CI machine reaches the archive its
# apt is configured for, and maybe nothing else.
debian_mirror() {
    if [[ -n ${SCOPECAM_VM_MIRROR:-} ]]; then
        echo "$SCOPECAM_VM_MIRROR"
        return
    fi
    local m
    # One-line (deb URL suite ...) and deb822 (URIs: URL) sources alike.
    m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | grep -v '^\s*#' | grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v security | head -1 | tr -d ' ' || true)
    if [[ -z $m ]]; then
        echo "no Debian archive in this machine's apt sources; set SCOPECAM_VM_MIRROR=URL" >&2
        return 1
    fi
    echo "${m%/}"
}
