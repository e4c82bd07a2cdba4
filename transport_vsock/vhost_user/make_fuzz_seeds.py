#!/usr/bin/env python3
"""Writes the hand-made seeds of message_stream_fuzz into
corpus/message_stream/ (seed-*.bin). The input format is documented at the
top of message_stream_fuzz.cc; every message here uses the raw-payload mode,
so each seed is an exact frontend conversation.

    python3 transport_vsock/vhost_user/make_fuzz_seeds.py
"""
import os
import struct

# Index into kRequestIds in message_stream_fuzz.cc.
IDX = {
    "GET_FEATURES": 0, "SET_FEATURES": 1, "SET_OWNER": 2, "RESET_OWNER": 3,
    "SET_MEM_TABLE": 4, "SET_VRING_NUM": 5, "SET_VRING_ADDR": 6,
    "SET_VRING_BASE": 7, "GET_VRING_BASE": 8, "SET_VRING_KICK": 9,
    "SET_VRING_CALL": 10, "SET_VRING_ERR": 11, "GET_PROTOCOL_FEATURES": 12,
    "SET_PROTOCOL_FEATURES": 13, "GET_QUEUE_NUM": 14, "SET_VRING_ENABLE": 15,
    "GET_CONFIG": 16, "SET_CONFIG": 17, "GET_MAX_MEM_SLOTS": 18,
    "ADD_MEM_REG": 19, "REM_MEM_REG": 20, "SET_LOG_BASE": 21,
}
FLAGS = {0x1: 0, 0x9: 1, 0x5: 2, 0x0: 3}
NATURAL = 4          # fdsel: the request's natural descriptor count
MEMFD, EVENTFD, DEVNULL = 0x00, 0x55, 0xAA   # kinds byte, all fds alike

USER_BASE = 0x7F0000000000
RAM = 2 * 1024 * 1024


def msg(name, payload=b"", flags=0x1, fdsel=NATURAL, kinds=MEMFD, lie=0, raw_req=None):
    out = bytes([0])  # op: message
    if raw_req is not None:
        out += bytes([0xE0]) + struct.pack("<I", raw_req)
    else:
        out += bytes([IDX[name]])
    out += bytes([FLAGS.get(flags, flags)])
    out += bytes([0]) + struct.pack("<H", len(payload)) + payload  # raw mode
    out += bytes([lie, fdsel, kinds])
    return out


def u64(v):
    return struct.pack("<Q", v)


def state(index, num):
    return struct.pack("<II", index, num)


def region(guest, size, offset):
    return struct.pack("<QQQQ", guest, size, USER_BASE + offset, offset)


def mem_table(regions):
    return struct.pack("<II", len(regions), 0) + b"".join(regions)


def ring_addr(i):
    base = 0x100000 + i * 0x4000
    return struct.pack("<IIQQQQ", i, 0, USER_BASE + base, USER_BASE + base + 0x1000,
                       USER_BASE + base + 0x800, 0)


def config(offset, size, flags=0):
    return struct.pack("<III", offset, size, flags) + bytes(size)


QEMU_REGIONS = [region(0, 0xA0000, 0), region(0xC0000, RAM - 0xC0000, 0xC0000)]


def qemu_init(protocol=0x209):
    s = msg("GET_FEATURES") + msg("GET_PROTOCOL_FEATURES")
    s += msg("SET_PROTOCOL_FEATURES", u64(protocol)) + msg("GET_QUEUE_NUM")
    s += msg("SET_OWNER") + msg("GET_FEATURES")
    for i in range(2):
        s += msg("SET_VRING_CALL", u64(i), kinds=EVENTFD)
        s += msg("SET_VRING_ERR", u64(i), kinds=EVENTFD)
    s += msg("GET_CONFIG", config(0, 8))
    for i in range(2):
        s += msg("SET_VRING_CALL", u64(i), kinds=EVENTFD)
    s += msg("SET_FEATURES", u64(0x170000000))
    return s


def start_rings(n):
    s = b""
    for i in range(n):
        s += msg("SET_VRING_NUM", state(i, 128)) + msg("SET_VRING_BASE", state(i, 0))
        s += msg("SET_VRING_ADDR", ring_addr(i)) + msg("SET_VRING_KICK", u64(i), kinds=EVENTFD)
    for i in range(n):
        s += msg("SET_VRING_ENABLE", state(i, 1))
    return s


def power_off(n):
    s = b""
    for i in range(n):
        s += msg("SET_VRING_ENABLE", state(i, 0))
    for i in range(n):
        s += msg("GET_VRING_BASE", state(i, 0))
    return s


def seeds():
    qemu = (qemu_init() + msg("SET_MEM_TABLE", mem_table(QEMU_REGIONS), flags=0x9)
            + start_rings(2) + power_off(2))
    yield "qemu72", qemu
    slots = qemu_init(0x8209) + msg("GET_MAX_MEM_SLOTS")
    for r in QEMU_REGIONS:
        slots += msg("ADD_MEM_REG", u64(0) + r, flags=0x9)
    slots += start_rings(2) + msg("REM_MEM_REG", u64(0) + QEMU_REGIONS[0], flags=0x9)
    yield "mem_slots", slots + power_off(2)
    yield "three_rings", (qemu_init() + msg("SET_VRING_CALL", u64(2), kinds=EVENTFD)
                          + msg("SET_MEM_TABLE", mem_table(QEMU_REGIONS)) + start_rings(3))
    running = qemu_init(0x8209) + msg("SET_MEM_TABLE", mem_table(QEMU_REGIONS)) + start_rings(2)
    yield "bad_index", running + msg("SET_VRING_NUM", state(0x10001, 128))
    yield "too_many_fds", running + msg("SET_VRING_CALL", u64(0), fdsel=255, kinds=EVENTFD)
    yield "unknown_need_reply", running + msg(None, bytes(8), flags=0x9, raw_req=45) + power_off(2)
    yield "lying_size", running + msg("SET_FEATURES", u64(0x170000000), lie=255)
    yield "hangup_reconnect", running + bytes([14]) + qemu_init() + bytes([15]) + qemu_init()
    yield "remap_and_restart", (running + msg("SET_MEM_TABLE", mem_table(QEMU_REGIONS))
                                + power_off(2) + start_rings(2))
    yield "config", (qemu_init() + msg("GET_CONFIG", config(4, 8))
                     + msg("SET_CONFIG", config(0, 1), flags=0x9))


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "message_stream")
    os.makedirs(out, exist_ok=True)
    for name, data in seeds():
        with open(os.path.join(out, "seed-%s.bin" % name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
