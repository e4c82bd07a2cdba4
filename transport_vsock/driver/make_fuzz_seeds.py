#!/usr/bin/env python3
"""Writes the hand-made seeds of hostile_device_fuzz_test's corpus.

    python3 transport_vsock/driver/make_fuzz_seeds.py transport_vsock/driver/corpus/hostile_device

Each seed is a script of steps (see hostile_device_fuzz.cc for the opcodes).
"""
import os
import struct
import sys


def u16(v):
    return struct.pack("<H", v & 0xFFFF)


def u32(v):
    return struct.pack("<I", v & 0xFFFFFFFF)


def connect(port=5000):
    return b"\x00" + u16(port)


def listen(i=0):
    return b"\x01" + bytes([i])


def write(conn=0, length=1000, pool=1):
    return b"\x02" + bytes([conn]) + u16(length) + bytes([pool])


def read(conn=0, n=0xFFFF):
    return b"\x03" + bytes([conn]) + u16(n)


def destroy(conn=0):
    return b"\x04" + bytes([conn])


def shutdown(conn=0):
    return b"\x05" + bytes([conn])


def drain(respond=1, lie=0, length=0):
    return b"\x06" + bytes([respond, lie]) + u16(length)


def rx(op=5, typ=1, flags=0, src=5000, dst_sel=0, length=100, buf_alloc=262144, fwd_cnt=0,
       payload=100, lie=0, used_len=0):
    return (b"\x07" + bytes([op, typ, flags]) + u16(src) + bytes([dst_sel]) + u16(length) +
            u32(buf_alloc) + u32(fwd_cnt) + u16(payload) + bytes([lie]) + u32(used_len))


def raw_used(ring=0, id_=0, length=0, advance=1):
    return b"\x08" + bytes([ring]) + u16(id_) + u32(length) + bytes([advance])


def event(id_=0, length=4):
    return b"\x09" + bytes([id_, length])


def cid(sel, value=0):
    return b"\x0a" + bytes([sel]) + (u32(value) if sel >= 7 else b"")


def hangup():
    return b"\x0b"


def advance(ms):
    return b"\x0c" + u16(ms)


def interrupt(ring):
    return b"\x0d" + bytes([ring])


SEEDS = {
    "connect_and_echo": connect() + drain() + write() + drain() +
                        rx(length=100, payload=100) + read() + shutdown() + drain(),
    "pool_and_heap_writes": connect() + drain() + write(pool=1, length=8000) +
                            write(pool=0, length=3000) + drain() + drain(),
    "host_connects_to_listener": listen(0) + rx(op=1, dst_sel=200, length=0, payload=0) +
                                 drain(respond=0) + rx(op=5, dst_sel=200, length=50, payload=50) +
                                 read(0),
    "used_id_out_of_range": connect() + drain() + raw_used(0, 9999, 10) + advance(2000) +
                            connect() + drain(),
    "used_len_beyond_buffer": connect() + drain() + rx(length=10, payload=10, lie=1,
                                                       used_len=1 << 20) + advance(3000),
    "used_idx_lies": connect() + raw_used(1, 0, 0, 3) + advance(100) + advance(3000),
    "tx_used_with_length": connect() + drain(respond=0, lie=1, length=44) + advance(2000),
    "len_beyond_payload": connect() + drain() + rx(length=5000, payload=10) + drain(),
    "short_rx_and_events": connect() + drain() + rx(length=0, payload=0, lie=1, used_len=10) +
                           event(0, 2) + event(200, 4),
    "transport_reset_new_cid": listen(1) + connect() + drain() + cid(1) + event(0) +
                               rx(op=1, dst_sel=201, length=0, payload=0) + drain(),
    "reserved_cids": connect() + drain() + cid(3) + event(0) + advance(500) + cid(6) +
                     advance(1500) + cid(0) + cid(4) + hangup() + advance(3000) + cid(7, 9) +
                     advance(3000),
    "hangup_and_back": connect() + drain() + write() + hangup() + advance(10) + advance(5000) +
                       connect() + drain(),
    "interrupt_storm": connect() + drain() + interrupt(0) + interrupt(1) + interrupt(2) +
                       interrupt(0) + interrupt(1),
    "credit_games": connect() + drain() + rx(op=6, length=0, payload=0, buf_alloc=0) +
                    write(length=8000) + drain() + rx(op=6, length=0, payload=0,
                                                      buf_alloc=1 << 20, fwd_cnt=0xFFFFFFF0) +
                    write(length=8000) + drain(),
    "garbage_ops": rx(op=8, typ=3, length=0, payload=0) + rx(op=0, length=1, payload=1) +
                   rx(op=7, length=0, payload=0) + rx(op=4, flags=3, length=0, payload=0),
}


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
