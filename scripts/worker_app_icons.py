"""Draws the worker app's icons (worker_app/static/icons/*.png): a red alarm button on the
console's dark blue. Run once after changing the mark; the PNGs are committed."""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

BG = (0x15, 0x20, 0x2B)
RED = (0xC6, 0x28, 0x28)
WHITE = (0xFF, 0xFF, 0xFF)
SS = 4  # samples a pixel side, for smooth edges


def colour_at(x: float, y: float, *, maskable: bool) -> tuple[tuple[int, int, int], float]:
    """The colour at (x, y) in 0..1 and its coverage (0 outside a rounded square)."""
    dx, dy = x - 0.5, y - 0.5
    r = (dx * dx + dy * dy) ** 0.5
    # Maskable icons are cropped to a circle of radius 0.4: the mark stays inside it.
    scale = 0.8 if maskable else 1.0
    if not maskable:
        corner = 0.18
        qx, qy = max(abs(dx) - (0.5 - corner), 0.0), max(abs(dy) - (0.5 - corner), 0.0)
        if (qx * qx + qy * qy) ** 0.5 > corner:
            return BG, 0.0
    if r < 0.14 * scale:
        return WHITE, 1.0
    if r < 0.20 * scale:
        return RED, 1.0
    if r < 0.25 * scale:
        return WHITE, 1.0
    if r < 0.37 * scale:
        return RED, 1.0
    return BG, 1.0


def draw(size: int, *, maskable: bool) -> bytes:
    rows = []
    for py in range(size):
        row = bytearray([0])  # filter: none
        for px in range(size):
            acc = [0.0, 0.0, 0.0, 0.0]
            for sy in range(SS):
                for sx in range(SS):
                    c, a = colour_at(
                        (px + (sx + 0.5) / SS) / size,
                        (py + (sy + 0.5) / SS) / size,
                        maskable=maskable,
                    )
                    for i in range(3):
                        acc[i] += c[i] * a
                    acc[3] += a
            n = SS * SS
            alpha = acc[3] / n
            if acc[3]:
                row += bytes(round(acc[i] / acc[3]) for i in range(3))
            else:
                row += b"\0\0\0"
            row.append(round(alpha * 255))
        rows.append(bytes(row))
    return png(size, size, b"".join(rows))


def png(width: int, height: int, raw: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("worker_app/static/icons")
    out.mkdir(parents=True, exist_ok=True)
    for name, size, maskable in [
        ("icon-192.png", 192, False),
        ("icon-512.png", 512, False),
        ("maskable-512.png", 512, True),
        ("apple-touch-icon.png", 180, True),  # iOS rounds the corners itself
    ]:
        (out / name).write_bytes(draw(size, maskable=maskable))


if __name__ == "__main__":
    main()
