"""`vigil line add|list`: a worker's line device made ahead of their first text or call."""

from __future__ import annotations

from monitor.devices.models import Device


def test_line_add_and_list(vigil) -> None:  # type: ignore[no-untyped-def]
    for name, phone in (
        ("Sam Lee", "+44 7700 900123"),
        ("Ann Bo", ""),
        ("Kim Ng", "+447700900123"),
    ):
        args = ["worker", "add", name, "--cancel-pin", "2468", "--duress-pin", "1357"]
        vigil(*args, *(["--phone", phone] if phone else []))
    out = vigil("line", "add", "1")
    assert "line line-1 for worker 1, from +44 7700 900123" in out.output
    assert "another worker has +44 7700 900123 too" in out.output
    assert "has no phone registered" in vigil("line", "add", "2", ok=False).output
    assert "no worker 9" in vigil("line", "add", "9", ok=False).output
    vigil("line", "add", "1")  # again: the same device, unchanged
    with vigil.store().session() as db:
        device = db.get(Device, "line-1")
        assert device is not None and (device.kind, device.worker_id) == ("line", 1)
    vigil("device", "disable", "line-1")
    lines = vigil("line", "list").output.splitlines()
    assert lines == [
        "1\tSam Lee\t+44 7700 900123 (shared with another worker: refused)\tline-1 (disabled)",
        "3\tKim Ng\t+447700900123 (shared with another worker: refused)\tno line yet",
    ]
