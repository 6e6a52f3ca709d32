# scopecam %post ($1: 1 = install, 2 = upgrade). Same steps as the .deb's
# postinst; nothing may fail the transaction because of the running system.
systemd-sysusers scopecam.conf || :
if [ -d /run/udev ]; then
    udevadm control --reload || :
    # Apply 70-scopecam-uinput.rules to an existing /dev/uinput now.
    udevadm trigger --action=change --subsystem-match=misc --sysname-match=uinput || :
    udevadm trigger --action=change --subsystem-match=misc --sysname-match=v4l2loopback || :
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || :
    if [ "$1" -gt 1 ]; then
        systemctl try-restart 'scopecam@*.service' || :
    fi
fi
# v4l2loopback comes from RPM Fusion (akmod-v4l2loopback) on Fedora and may
# not be built yet: say so, do not fail.
if [ -e /sys/module/v4l2loopback ]; then
    echo "scopecam: v4l2loopback is already loaded; for the \"Borescope\" cameras reload it when no app uses it: sudo modprobe -r v4l2loopback && sudo modprobe v4l2loopback" >&2
elif ! modprobe v4l2loopback 2>/dev/null; then
    echo "scopecam: could not load v4l2loopback (install v4l2loopback from RPM Fusion; Secure Boot needs a signed module)" >&2
fi
modprobe uinput 2>/dev/null || :
