#!/usr/bin/env python3
"""In the VM: wait for a key press on the input device with the given name.

    read-key.py DEVICE_NAME KEY_NAME TIMEOUT_SECONDS

Reads struct input_event records straight from /dev/input/eventN (no
python-evdev needed) and exits 0 after seeing the key go down and up.
"""
import glob
import os
import select
import struct
import sys
import time

# From linux/input-event-codes.h: only the keys the tests use.
KEYS = {"KEY_CAMERA": 212, "KEY_SPACE": 57, "KEY_F13": 183}
EV_KEY = 1
EVENT = struct.Struct("llHHi")  # struct timeval, type, code, value (64-bit)

name, key, timeout = sys.argv[1], KEYS[sys.argv[2]], float(sys.argv[3])
deadline = time.monotonic() + timeout
path = None
while path is None and time.monotonic() < deadline:
    for sysname in glob.glob("/sys/class/input/event*/device/name"):
        if open(sysname).read().strip() == name:
            path = "/dev/input/" + sysname.split("/")[4]
    if path is None:
        time.sleep(0.2)
if path is None:
    sys.exit(f"no input device named {name!r}")
fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
down = False
buf = b""
while time.monotonic() < deadline:
    ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
    if not ready:
        break
    buf += os.read(fd, EVENT.size * 64)
    while len(buf) >= EVENT.size:
        _, _, etype, code, value = EVENT.unpack(buf[: EVENT.size])
        buf = buf[EVENT.size :]
        if etype == EV_KEY and code == key:
            if value == 1:
                down = True
            elif value == 0 and down:
                print(f"{sys.argv[2]} down+up on {path}")
                sys.exit(0)
sys.exit(f"no {sys.argv[2]} press on {path} within {timeout} s")
