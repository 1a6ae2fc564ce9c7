"""A Python raw-socket AoE reader: the peer of `stratus-bench aoe-read` (issue 15).

Reads SECTORS sectors of e<SHELF>.<SLOT> on INTERFACE sequentially with READ EXT, up to WINDOW
requests in flight and MAXSECTORS per frame (what Query Config reported), resending a request
unanswered for 200 ms; prints one JSON object: bytes, seconds, MB/s and the SHA-256 of the data
in LBA order. Run it in the initiator's namespace: ip netns exec NS python3 bench/aoe_read.py …

Usage: python3 bench/aoe_read.py INTERFACE SHELF SLOT SECTORS MAXSECTORS WINDOW TARGET_MAC
"""
import hashlib
import json
import select
import socket
import struct
import sys
import time

interface, shelf, slot, sectors, per_frame, window, mac = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
destination = bytes.fromhex(mac.replace(":", ""))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88A2))
s.bind((interface, 0x88A2))
me = s.getsockname()[4]
data = bytearray(sectors * 512)
in_flight = {}
tag = 1
next_lba = 0
done = 0


def send(lba, count):
    global tag
    tag += 1
    frame = destination + me + struct.pack("!H", 0x88A2) + struct.pack("!BBHBBI", 0x10, 0, shelf, slot, 0, tag)
    frame += struct.pack("<BBBB", 0x40, 0, count, 0x24) + lba.to_bytes(6, "little") + b"\0\0"
    s.send(frame.ljust(60, b"\0"))
    in_flight[tag] = (lba, count, time.monotonic())


def fill():
    global next_lba
    while len(in_flight) < window and next_lba < sectors:
        count = min(per_frame, sectors - next_lba)
        send(next_lba, count)
        next_lba += count


start = time.monotonic()
fill()
while done < sectors:
    ready, _, _ = select.select([s], [], [], 0.05)
    if ready:
        frame = s.recv(9216)
        if len(frame) >= 36:
            flags, error, rshelf, rslot, command, rtag = struct.unpack("!BBHBBI", frame[14:24])
            request = in_flight.pop(rtag, None) if flags & 0x08 and rshelf == shelf and rslot == slot else None
            if request:
                lba, count, _ = request
                data[lba * 512:(lba + count) * 512] = frame[36:36 + count * 512]
                done += count
                fill()
    now = time.monotonic()
    for old, (lba, count, sent) in list(in_flight.items()):
        if now - sent > 0.2:
            del in_flight[old]
            send(lba, count)
seconds = time.monotonic() - start
print(json.dumps({"bytes": len(data), "seconds": seconds, "mbps": len(data) / seconds / 1e6, "sha256": hashlib.sha256(data).hexdigest()}))
