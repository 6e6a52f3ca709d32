# scopecam %post ($1: 1 = install, 2 = upgrade). Same steps as the .deb's
# postinst; nothing may fail the transaction because of the running system.
systemd-sysusers scopecam.conf || :
if [ -d /run/udev ]; then
    udevadm control --reload || :
    # 75-scopecam-uinput.rules gives the user created above an ACL entry on
    # /dev/uinput: load the module or re-evaluate the loaded one, now.
    modprobe uinput 2>/dev/null || :
    udevadm trigger --action=change --subsystem-match=misc --sysname-match=uinput || :
    udevadm trigger --action=change --subsystem-match=misc --sysname-match=v4l2loopback || :
    udevadm settle --timeout=10 || :
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || :
    if [ "$1" -gt 1 ]; then
        systemctl try-restart 'scopecam@*.service' || :
    fi
fi
# The receive-buffer ceiling of 30-scopecam.conf now, only ever raised.
rmem=$(cat /proc/sys/net/core/rmem_max 2>/dev/null || echo 0)
if [ "$rmem" -lt 4194304 ] 2>/dev/null; then
    sysctl -q -w net.core.rmem_max=4194304 >/dev/null 2>&1 || :
fi
# v4l2loopback comes from RPM Fusion (akmod-v4l2loopback) on Fedora and may
# not be built yet: say so, do not fail.
if [ -e /sys/module/v4l2loopback ]; then
    echo "scopecam: v4l2loopback is already loaded; for the \"Borescope\" cameras reload it when no app uses it: sudo modprobe -r v4l2loopback && sudo modprobe v4l2loopback" >&2
elif ! modprobe v4l2loopback 2>/dev/null; then
    echo "scopecam: could not load v4l2loopback (install v4l2loopback from RPM Fusion; Secure Boot needs a signed module)" >&2
fi
