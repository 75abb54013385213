"""Enrolment links as QR codes: in a terminal, and SVG or PNG files (segno, with no image
library); for a page, monitor.qrcodes."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TextIO

import segno


def make(link: str) -> segno.QRCode:
    return segno.make(link)


def terminal(link: str, out: TextIO) -> None:
    # Half blocks: two rows of modules a line, so the code fits a terminal and a phone's
    # camera reads it off the screen.
    make(link).terminal(out=out, compact=True)


def terminal_text(link: str) -> str:
    out = io.StringIO()
    terminal(link, out)
    return out.getvalue()


def save(link: str, path: Path, kind: str) -> None:
    """Write an `svg` or `png` file, large enough to print."""
    make(link).save(str(path), kind=kind, scale=8)
