"""One incident as a PDF: its facts, positions, evidence hashes and the hash-chained timeline.

Names and notes may be in any script. fpdf2's built-in fonts know only Latin-1, so the PDF
embeds DejaVu Sans (Debian's fonts-dejavu-core, which scripts/bootstrap and the Dockerfile
install). A character the font has no glyph for is never dropped in silence: it is written
as <U+XXXX>, and the report says so at its end. Without DejaVu the built-in fonts are used,
with the same rule for everything outside Latin-1.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fpdf import FPDF
from fpdf.fonts import TTFFont

from monitor.alerts.labels import (
    OUTCOME_LABELS,
    STATE_LABELS,
    TRIGGER_LABELS,
    TYPE_LABELS,
    actor_label,
    entry_label,
    plural,
)
from monitor.alerts.states import ACTIVE_STATES, AlertType
from monitor.procedures.service import recorded
from monitor.reads.alert_detail import AlertDetail

FONTS = {
    ("sans", ""): "DejaVuSans.ttf",
    ("sans", "B"): "DejaVuSans-Bold.ttf",
    ("mono", ""): "DejaVuSansMono.ttf",
}
CORE = {"sans": "helvetica", "mono": "courier"}
LABEL_W = 46


def when(at: datetime | None) -> str:
    if at is None:
        return ""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def duration(s: float | None) -> str:
    if s is None:
        return ""
    if s < 120:
        return f"{s:.1f} s"
    return f"{s:.0f} s ({s / 60:.1f} min)"


class IncidentPdf(FPDF):
    def __init__(self, font_dir: Path, alert_id: int) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.alert_id = alert_id
        self.replaced = 0
        self.unicode = all((font_dir / f).is_file() for f in FONTS.values())
        if self.unicode:
            for (family, style), name in FONTS.items():
                self.add_font(family, style, str(font_dir / name))
        self.set_margins(15, 15, 15)
        self.set_auto_page_break(True, margin=15)

    def use(self, family: str, style: str = "", size: float = 9) -> None:
        self.set_font(family if self.unicode else CORE[family], style, size)

    def fit(self, text: str) -> str:
        """`text` with each character the current font cannot show written as <U+XXXX>."""
        font = self.current_font
        if isinstance(font, TTFFont):
            cmap = font.cmap

            def shown(c: str) -> bool:
                return c == "\n" or ord(c) in cmap
        else:

            def shown(c: str) -> bool:
                return c == "\n" or (" " <= c <= "~") or ("\xa0" <= c <= "\xff")

        out = []
        for c in text.replace("\t", " "):
            if shown(c):
                out.append(c)
            else:
                self.replaced += 1
                out.append(f"<U+{ord(c):04X}>")
        return "".join(out)

    def footer(self) -> None:
        self.set_y(-10)
        self.use("sans", "", 7)
        self.cell(0, 4, f"Vigil incident #{self.alert_id}, page {self.page_no()} of {{nb}}")

    def heading(self, text: str) -> None:
        self.ln(3)
        self.use("sans", "B", 12)
        self.cell(0, 7, self.fit(text), new_x="LMARGIN", new_y="NEXT")

    def row(self, label: str, value: str) -> None:
        if not value:
            return
        self.use("sans", "B", 9)
        self.cell(LABEL_W, 5, self.fit(label))
        self.use("sans", "", 9)
        self.multi_cell(0, 5, self.fit(value), new_x="LMARGIN", new_y="NEXT")

    def line_of(self, text: str, family: str = "sans", style: str = "", size: float = 9) -> None:
        self.use(family, style, size)
        self.multi_cell(0, 4.6, self.fit(text), new_x="LMARGIN", new_y="NEXT")


def render(
    a: AlertDetail,
    *,
    positions_withheld: bool = False,
    org: str | None,
    ack_s: float | None,
    resolve_s: float | None,
    exported_by: str,
    now: datetime,
    font_dir: Path,
) -> bytes:
    pdf = IncidentPdf(font_dir, a.id)
    pdf.set_title(f"Vigil incident #{a.id}")
    pdf.set_creator("Vigil")
    pdf.add_page()
    pdf.use("sans", "B", 16)
    pdf.cell(0, 9, f"Incident report #{a.id}", new_x="LMARGIN", new_y="NEXT")
    pdf.line_of(f"Exported {when(now)} by {actor_label(exported_by)}", size=8)

    pdf.heading("Incident")
    kind = TYPE_LABELS[a.type] + (" (duress)" if a.duress and a.type.value != "duress" else "")
    pdf.row("Type", kind)
    pdf.row("Duress", "yes: the duress PIN was keyed" if a.duress else "no")
    pdf.row("Worker", a.worker_name or "(no worker)")
    pdf.row("Team", a.team or "")
    pdf.row("Organisation", org or "")
    pdf.row("Device", a.device_id + (f", alert {a.device_alert_id}" if a.device_alert_id else ""))
    pdf.row("Trigger", TRIGGER_LABELS.get(a.trigger, a.trigger) if a.trigger else "")
    pdf.row("Battery", f"{a.battery} %" if a.battery is not None else "")
    pdf.row("Time on the device", when(a.device_ts) or "(raised by the service)")
    pdf.row("Received", when(a.raised_at))
    if a.acknowledged_at is not None:
        by = actor_label(a.acknowledged_by or "")
        pdf.row("Taken charge of", f"{when(a.acknowledged_at)} by {by}")
    pdf.row("Time to take charge", duration(ack_s))
    if a.resolved_at is not None:
        pdf.row("Resolved", f"{when(a.resolved_at)} by {actor_label(a.resolved_by or '')}")
    pdf.row("Time to resolve", duration(resolve_s))
    pdf.row("Cancelled by the worker", when(a.cancelled_at))
    pdf.row("State", STATE_LABELS[a.state])
    pdf.row("Outcome", OUTCOME_LABELS[a.outcome] if a.outcome else "(none yet)")
    pdf.row("Worker's note", a.note or "")
    if a.hold:
        by = actor_label(a.held_by or "")
        pdf.row("On hold", f"since {when(a.held_at)} by {by}: {a.hold_reason or ''}")
    if a.visit is not None:
        pdf.row("Visit", f"{a.visit.note or '(no note)'}, due {when(a.visit.due_at)}")
        # The visit's own timeline (not hash-chained: it is the visit's, not the incident's).
        for e in a.visit.events:
            pdf.line_of(f"{when(e.at)}   {e.text}", size=8)

    pdf.heading("Position")
    if positions_withheld:
        # VIGIL_SUPERVISOR_POSITIONS=active: the exporter may not see where the worker was
        # once the alert is over (docs/privacy.md), in a PDF or anywhere else.
        pdf.line_of("Withheld: positions are shown only while an alert is active.")
    elif a.lat is not None and a.lon is not None:
        acc = f" within {a.acc:.0f} m" if a.acc is not None else ""
        pdf.row("With the alert", f"{a.lat:.6f}, {a.lon:.6f}{acc}")
    else:
        pdf.row("With the alert", "none sent")
    if a.trail:
        pdf.line_of(
            f"Fixes from 15 minutes before the alert on ({len(a.trail)}), by device time:", size=8
        )
        for p in a.trail:
            acc = f" within {p.acc:.0f} m" if p.acc is not None else ""
            pdf.line_of(f"{when(p.device_ts)}   {p.lat:.6f}, {p.lon:.6f}{acc}", "mono", size=7.5)

    pdf.heading("Evidence")
    if not a.evidence:
        pdf.line_of("No evidence was recorded.")
    for ev in a.evidence:
        facts = [ev.kind or "", ev.codec or ""]
        if ev.duration_ms is not None:
            facts.append(f"{ev.duration_ms / 1000:.1f} s")
        if ev.size_bytes is not None:
            facts.append(f"{ev.size_bytes} bytes")
        pdf.line_of(f"{ev.evidence_id} ({', '.join(f for f in facts if f)})", style="B")
        pdf.line_of(
            f"recorded {when(ev.referenced_at) or '-'}; uploaded {when(ev.uploaded_at) or 'no'}",
            size=8,
        )
        pdf.line_of(f"sha256 {ev.sha256 or '(not declared yet)'}", "mono", size=7.5)
        if ev.purged_at is not None:
            pdf.line_of(
                f"audio deleted {when(ev.purged_at)} under the retention policy; "
                "the record and its sha256 are kept",
                size=8,
            )

    checklist = recorded(a, a.timeline)
    if checklist is not None:
        done = sum(step.done for step in checklist.steps)
        title = checklist.name or f"none for {TYPE_LABELS[AlertType(checklist.kind)]}"
        pdf.heading("Procedure")
        pdf.row("Procedure", f"{title}, applied {when(checklist.applied_at)}")
        pdf.row("Steps ticked", f"{done} of {len(checklist.steps)}")
        # What was ticked, by whom and when, as the timeline below records it.
        for step in checklist.steps:
            by = actor_label(step.by or "")
            mark = f"done, {when(step.at)} by {by}" if step.done else "not ticked"
            pdf.line_of(f"{step.index + 1}. {step.do}   ({mark})", size=8.5)

    pdf.heading(f"Timeline ({plural(len(a.timeline), 'entry', 'entries')})")
    pdf.line_of(
        "Each entry's hash covers the entry and the hash of the one before it "
        "(format vigil-incident-v1); `vigil audit verify` checks every incident's chain.",
        size=8,
    )
    for t in a.timeline:
        pdf.ln(1)
        who = actor_label(t.actor)
        pdf.line_of(f"{t.seq}. {when(t.at)}   {entry_label(t.kind)}   {who}", style="B", size=8.5)
        if t.text:
            pdf.line_of(t.text)
        pdf.line_of(f"hash {t.hash}", "mono", size=7)
    pdf.ln(2)
    if a.timeline:
        head = a.timeline[-1]
        pdf.line_of(f"Head of the chain: entry {head.seq}", style="B")
        pdf.line_of(f"head {head.hash}", "mono", size=7.5)
    if a.state in ACTIVE_STATES:
        pdf.line_of("The incident was still open when this report was made.", size=8)
    if pdf.replaced:
        pdf.ln(2)
        pdf.line_of(
            f"{pdf.replaced} characters the font has no glyph for are written as <U+XXXX>, "
            "their Unicode code points.",
            size=8,
        )
    return bytes(pdf.output())
