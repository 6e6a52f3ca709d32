# scopecam %preun ($1: 0 = removal, 1 = upgrade): stop running bridges
# before their binary goes away.
if [ "$1" -eq 0 ] && [ -d /run/systemd/system ]; then
    systemctl stop 'scopecam@*.service' || :
fi
