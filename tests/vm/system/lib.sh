# Helpers for the scenario scripts of the system VM (sourced, not run):
#   source "$SCOPECAM_VM_REPO/tests/vm/system/lib.sh"
# Counts failures in $fails; the script's EXIT trap reports them.

fails=0
ok() { echo "ok   - $*"; }
bad() { echo "FAIL - $*"; fails=$((fails + 1)); }
die() { echo "FAIL - $*"; fails=$((fails + 1)); exit 1; }
# wait_for SECS CMD...: poll CMD every 0.3 s until it succeeds.
wait_for() {
    local end=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do ((SECONDS < end)) || return 1; sleep 0.3; done
}
prop() { systemctl show -P "$2" "$1"; }
state_is() { [[ $(prop "$1" ActiveState) == "$2" ]]; }
step() { echo; echo "== $* ($(cut -d' ' -f1 /proc/uptime) s)"; }

# end_scenario NAME RC PID...: the end of a scenario's EXIT trap: stops the
# given processes, removes the namespaces listed in $NAMESPACES, prints the
# failure count and exits 1 on any failure or a non-zero RC.
end_scenario() {
    local name=$1 rc=$2 p ns
    shift 2
    for p in "$@"; do kill "$p" 2>/dev/null || true; done
    for ns in "${NAMESPACES[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
    echo
    echo "$name: $fails failure(s)"
    ((fails == 0 && rc == 0)) || exit 1
}

# install_deb LOG: installs $SCOPECAM_VM_DEB as the README says (apt with the
# local file; every dependency is in the image already). SCOPECAM_VM_BIN=PATH
# then replaces /usr/bin/scopecam (a build under test, same package files).
install_deb() {
    local deb=${SCOPECAM_VM_DEB:-}
    [[ -n "$deb" && -f "$deb" ]] || die "no .deb: pass --deb PATH to tests/vm/system/run.sh"
    apt-get install -y --no-install-recommends "$deb" > "$1" 2>&1 \
        || { cat "$1"; die "apt-get install $deb failed"; }
    ok "installed $(basename "$deb")"
    if [[ -n "${SCOPECAM_VM_BIN:-}" ]]; then
        install -m 0755 "$SCOPECAM_VM_BIN" /usr/bin/scopecam
        echo "   /usr/bin/scopecam replaced by $SCOPECAM_VM_BIN"
    fi
}

# look_like_rtl8152 GLOB: net devices named GLOB get an RTL8152's USB
# properties (test-only rule in /run), so the SHIPPED 85-scopecam.rules
# decides for them as on real hardware.
look_like_rtl8152() {
    mkdir -p /run/udev/rules.d
    printf 'SUBSYSTEM=="net", ACTION!="remove", KERNEL=="%s", ENV{ID_USB_DRIVER}="r8152", ENV{ID_VENDOR_ID}="0bda", ENV{ID_MODEL_ID}="8152"\n' \
        "$1" > /run/udev/rules.d/79-scopecam-test.rules
    udevadm control --reload
    modprobe veth
}

# check_left_alone UNIT TEXT: UNIT logs TEXT (once) and ends inactive with
# Result=success and no restart: how scopecam@ leaves a link that is no scope.
check_left_alone() {
    local unit=$1 text=$2 n
    if wait_for 60 bash -c "journalctl -b -u '$unit' -o cat | grep -qF '$text'"; then
        ok "$unit: $(journalctl -b -u "$unit" -o cat | grep -F "$text" | head -1)"
    else
        bad "$unit did not log '$text' within 60 s ($(prop "$unit" ActiveState)/$(prop "$unit" SubState))"
    fi
    # Outlast RestartSec=2s: a restart would show up by now.
    sleep 3
    if state_is "$unit" inactive && [[ $(prop "$unit" Result) == success && $(prop "$unit" NRestarts) == 0 ]]; then
        ok "$unit inactive, Result=success, exit status $(prop "$unit" ExecMainStatus), NRestarts=0"
    else
        bad "$unit: $(prop "$unit" ActiveState)/$(prop "$unit" SubState) Result=$(prop "$unit" Result) NRestarts=$(prop "$unit" NRestarts)"
    fi
    n=$(journalctl -b -u "$unit" -o cat | grep -cF "$text" || true)
    ((n == 1)) && ok "one '$text' line" || bad "'$text' logged $n times"
}
