"""MQTT 5 packets as bytes: the few a subscriber needs, encoded, and a buffer of them read.

Only what `BulkLink` sends and receives (OASIS MQTT 5.0, section 3): CONNECT, SUBSCRIBE,
UNSUBSCRIBE, PUBLISH, PUBACK, PINGREQ and DISCONNECT out; CONNACK, SUBACK, UNSUBACK,
PUBLISH, PUBACK, PINGRESP and DISCONNECT in. Reading is one pass over a whole buffer, with
no object per packet beyond the tuple handed back.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK = 8, 9, 10, 11
PINGREQ, PINGRESP, DISCONNECT = 12, 13, 14

PINGREQ_BYTES = b"\xc0\x00"
# Properties: Session Expiry Interval (0x11) = 0, so the broker forgets the session.
DISCONNECT_ENDING = b"\xe0\x07\x00\x05\x11\x00\x00\x00\x00"
DISCONNECT_BYTES = b"\xe0\x00"

_PUBACK = struct.Struct(">BBH")
_U16 = struct.Struct(">H")


class ProtocolError(Exception):
    """The broker sent something this reader cannot take: the connection is dropped."""


def varint(n: int) -> bytes:
    """MQTT's Variable Byte Integer (2.2.3)."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def text(s: str) -> bytes:
    raw = s.encode()
    return _U16.pack(len(raw)) + raw


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + varint(len(body)) + body


def connect(
    client_id: str,
    *,
    keepalive_s: int,
    session_expiry_s: int,
    receive_maximum: int,
    username: str = "",
    password: str = "",
) -> bytes:
    flags = (0x80 if username else 0) | (0x40 if password else 0)  # clean start off
    props = b"\x11" + struct.pack(">I", session_expiry_s) + b"\x21" + _U16.pack(receive_maximum)
    body = text("MQTT") + bytes([5, flags]) + _U16.pack(keepalive_s) + varint(len(props)) + props
    body += text(client_id)
    if username:
        body += text(username)
    if password:
        body += text(password)  # Binary Data: the same two-byte length and the bytes
    return _packet(0x10, body)


def subscribe(packet_id: int, topics: Iterable[tuple[str, int]]) -> bytes:
    """`topics`: (filter, options byte: QoS, No Local, Retain As Published, Retain Handling)."""
    body = _U16.pack(packet_id) + b"\x00"
    for topic, options in topics:
        body += text(topic) + bytes([options])
    return _packet(0x82, body)


def unsubscribe(packet_id: int, topics: Iterable[str]) -> bytes:
    body = _U16.pack(packet_id) + b"\x00" + b"".join(text(t) for t in topics)
    return _packet(0xA2, body)


def publish(topic: str, payload: bytes, qos: int, packet_id: int, *, retain: bool) -> bytes:
    body = text(topic) + (_U16.pack(packet_id) if qos else b"") + b"\x00" + payload
    return _packet(0x30 | (qos << 1) | int(retain), body)


def puback(packet_id: int) -> bytes:
    # Remaining length 2 and no reason code: Success (3.4.2.1).
    return _PUBACK.pack(0x40, 2, packet_id)


Publish = tuple[str, bytes, int, int, bool]  # topic, payload, qos, packet id, retain
# Anything else: (packet type, its body after the fixed header).
Other = tuple[int, bytes]


def _varint_at(buf: bytes | bytearray, i: int) -> tuple[int, int] | None:
    """The Variable Byte Integer at `buf[i]`: its value and where it ends, or None when it has
    not all arrived."""
    value, shift = 0, 0
    while i < len(buf):
        byte = buf[i]
        value |= (byte & 0x7F) << shift
        i += 1
        if not byte & 0x80:
            return value, i
        shift += 7
        if shift > 21:
            raise ProtocolError("malformed variable byte integer")
    return None


def first(buf: bytes | bytearray) -> tuple[int, bytes, int] | None:
    """The first packet of `buf` if it has all arrived: its type, its body and how many bytes
    it took."""
    head = _varint_at(buf, 1)
    if head is None or head[1] + head[0] > len(buf):
        return None
    length, i = head
    return buf[0] >> 4, bytes(buf[i : i + length]), i + length


def read(buf: bytes | bytearray) -> tuple[list[Publish], list[Other], int]:
    """The whole packets at the start of `buf`: its PUBLISHes, the other packets, and how many
    bytes they took (the rest is the start of a packet still arriving)."""
    publishes: list[Publish] = []
    others: list[Other] = []
    view = memoryview(buf)
    pos, end = 0, len(buf)
    while pos + 2 <= end:
        # The remaining length, as `_varint_at` reads it but inline: this loop runs once a
        # message, and the call cost half as much again as the rest of reading one.
        length, shift, i = 0, 0, pos + 1
        while i < end:
            byte = buf[i]
            length |= (byte & 0x7F) << shift
            i += 1
            if not byte & 0x80:
                break
            shift += 7
            if shift > 21:
                raise ProtocolError("malformed variable byte integer")
        else:
            break  # not all arrived
        stop = i + length
        if stop > end:
            break
        flags = buf[pos]
        kind = flags >> 4
        if kind == PUBLISH:
            qos = (flags >> 1) & 3
            if qos > 1:
                raise ProtocolError("QoS 2 was not subscribed to")
            n = buf[i] << 8 | buf[i + 1]
            topic = bytes(view[i + 2 : i + 2 + n]).decode()
            i += 2 + n
            packet_id = 0
            if qos:
                packet_id = buf[i] << 8 | buf[i + 1]
                i += 2
            # Properties: skipped (no topic aliases: the CONNECT allows none).
            plen = buf[i]
            if plen & 0x80:
                props = _varint_at(buf, i)
                if props is None or props[1] + props[0] > stop:
                    raise ProtocolError("PUBLISH properties longer than the packet")
                plen, i = props
            else:
                i += 1
            publishes.append((topic, bytes(view[i + plen : stop]), qos, packet_id, bool(flags & 1)))
        else:
            others.append((kind, bytes(view[i:stop])))
        pos = stop
    return publishes, others, pos
