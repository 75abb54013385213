"""Links as QR codes for a page to show: a worker's PIN link, a phone's enrolment link."""

from __future__ import annotations

import io

import segno


def svg(link: str) -> str:
    """The code as an SVG document of its own, with its namespace: a page shows it as an
    image's source (drawn only with the namespace), never as markup of its own."""
    out = io.BytesIO()
    segno.make(link).save(out, kind="svg", scale=4, xmldecl=False, svgns=True, nl=False)
    return out.getvalue().decode()
