# scopecam %postun: make udev and systemd forget removed rules and units.
# The scopecam user and /var/lib/scopecam (button snapshots) are kept.
if [ -d /run/udev ]; then
    udevadm control --reload || :
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || :
fi
