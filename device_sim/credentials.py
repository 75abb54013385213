"""Device credentials for a simulated fleet, and loading them from a JSON file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from device_sim.protocol import check_device_id, check_pin

DeviceKind = Literal["badge", "phone"]


@dataclass(frozen=True)
class DeviceCredentials:
    device_id: str
    secret: str
    cancel_pin: str
    duress_pin: str
    kind: DeviceKind = "badge"

    def __post_init__(self) -> None:
        check_device_id(self.device_id)
        check_pin(self.cancel_pin)
        check_pin(self.duress_pin)
        if self.kind not in ("badge", "phone"):
            raise ValueError(f"{self.device_id}: kind must be 'badge' or 'phone'")
        if not self.secret:
            raise ValueError(f"{self.device_id}: empty secret")

    @classmethod
    def from_dict(cls, data: Any) -> DeviceCredentials:
        if not isinstance(data, dict):
            raise ValueError(f"a credential must be an object, not {type(data).__name__}")
        missing = {"device_id", "secret", "cancel_pin", "duress_pin"} - data.keys()
        if missing:
            raise ValueError(f"credential {data.get('device_id', '?')}: missing {sorted(missing)}")
        return cls(
            device_id=str(data["device_id"]),
            secret=str(data["secret"]),
            cancel_pin=str(data["cancel_pin"]),
            duress_pin=str(data["duress_pin"]),
            kind=data.get("kind", "badge"),
        )

    def to_dict(self) -> dict[str, str]:
        return {
            "device_id": self.device_id,
            "secret": self.secret,
            "cancel_pin": self.cancel_pin,
            "duress_pin": self.duress_pin,
            "kind": self.kind,
        }


def load_credentials(path: Path) -> list[DeviceCredentials]:
    """Read a JSON list of {device_id, secret, cancel_pin, duress_pin, kind} objects."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON: {exc}") from exc
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of device credentials")
    creds = [DeviceCredentials.from_dict(item) for item in data]
    ids = [c.device_id for c in creds]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: a device id appears twice")
    return creds
