"""Enrolment links as QR codes: in a terminal, inline SVG, and SVG or PNG files (segno, with
no image library)."""

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


def svg(link: str) -> str:
    """The code as an <svg> element, for a page to show (the console's Devices section, as
    an image). With its namespace: an image made of it is drawn only with one, where an
    <svg> written into HTML would not need it."""
    out = io.BytesIO()
    make(link).save(out, kind="svg", scale=4, xmldecl=False, svgns=True, nl=False)
    return out.getvalue().decode()


def save(link: str, path: Path, kind: str) -> None:
    """Write an `svg` or `png` file, large enough to print."""
    make(link).save(str(path), kind=kind, scale=8)
