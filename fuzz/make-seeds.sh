#!/usr/bin/env bash
# Writes the starting corpus (fuzz/corpus/<target>/seed-*): small real JPEGs
# made by ffmpeg in the scope's formats, and the datagrams a scope sends for
# them. Committed, so CI needs neither ffmpeg nor this script; rerun it only
# to change the seeds. Discoveries the fuzzer adds go to fuzz/corpus too.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p corpus/decode corpus/reassembly corpus/button

jpeg() { # NAME SIZE PIXFMT
    ffmpeg -loglevel error -f lavfi -i "testsrc2=size=$2:rate=1" -frames:v 1 \
        -pix_fmt "$3" -q:v 5 -y "$tmp/$1.jpg"
}
jpeg j422 64x48 yuvj422p
jpeg j420 80x60 yuvj420p
jpeg j444 32x24 yuvj444p
jpeg gray 48x32 gray
jpeg odd 33x21 yuvj422p
for name in j422 j420 j444 gray odd; do
    # decode: one placement byte, then the JPEG.
    { printf '\x05'; cat "$tmp/$name.jpg"; } > "corpus/decode/seed-$name"
done

python3 - "$tmp" <<'PY'
import struct, sys, pathlib
tmp = pathlib.Path(sys.argv[1])
def fragments(jpeg, frame_id, size):
    chunks = [jpeg[i:i + size] for i in range(0, len(jpeg), size)]
    for index, payload in enumerate(chunks):
        kind = 2 if index == len(chunks) - 1 else (1 if index == 0 else 3)
        header = bytes([0x66, kind, 0x01, frame_id]) + struct.pack("<I", len(jpeg))
        header += b"\0" * 4 + struct.pack("<HH", index, len(payload)) + b"\0" * 8
        yield header + payload
def record(datagrams, advance=1):
    # reassembly input: clock advance (ms), u16 length, datagram; repeated.
    return b"".join(bytes([advance]) + struct.pack("<H", len(d)) + d for d in datagrams)
a = (tmp / "j422.jpg").read_bytes()
b = (tmp / "j420.jpg").read_bytes()
out = pathlib.Path("corpus/reassembly")
(out / "seed-in-order").write_bytes(record(fragments(a, 1, 300)))
two = list(fragments(a, 254, 200)) + list(fragments(b, 255, 200)) + list(fragments(a, 0, 200))
(out / "seed-wrap").write_bytes(record(two))
shuffled = list(fragments(b, 9, 150))
shuffled = shuffled[1::2] + shuffled[0::2] + shuffled[:2]
(out / "seed-reordered-duplicated").write_bytes(record(shuffled, advance=3))
# button: op byte (bit 0: poll first, bit 1: link lost), then a 20-byte datagram.
def answer(request, presses):
    return b"RETCMD" + struct.pack("<H", request) + bytes([0, 0, 0x90, 0, 4, 0]) + b"\0" * 4 + struct.pack("<H", presses)
ops = b"".join(bytes([1]) + answer(i, 7 + i // 3) for i in range(12))
pathlib.Path("corpus/button/seed-presses").write_bytes(ops)
pathlib.Path("corpus/button/seed-reset").write_bytes(
    bytes([1]) + answer(0, 100) + bytes([1]) + answer(1, 3) + bytes([3]) + answer(2, 9) + bytes([1]) + answer(3, 10))
PY
ls -l corpus/*
