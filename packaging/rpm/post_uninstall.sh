# scopecam %postun ($1: 0 = removal, 1 = upgrade): make udev and systemd
# forget removed rules and units. The scopecam user and /var/lib/scopecam
# (button snapshots) are kept.
if [ "$1" -eq 0 ] && [ -e /dev/uinput ] && command -v setfacl >/dev/null 2>&1; then
    # The service user's ACL entry on /dev/uinput (75-scopecam-uinput.rules)
    # goes now; the ACL with it when no other entry is left.
    setfacl -x u:scopecam /dev/uinput 2>/dev/null || :
    if ! getfacl -cp /dev/uinput 2>/dev/null | grep -Eq '^(user|group):[^:]+:'; then
        setfacl -b /dev/uinput || :
    fi
fi
if [ -d /run/udev ]; then
    udevadm control --reload || :
    if [ "$1" -eq 0 ]; then
        # The remaining rules decide the node's permissions again.
        udevadm trigger --action=change --subsystem-match=misc --sysname-match=uinput || :
    fi
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || :
fi
