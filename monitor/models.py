"""Every table, imported in one place so metadata (and Alembic) sees the whole schema."""

from monitor.alerts.models import Alert, AlertEvent
from monitor.audit.models import AuditEntry
from monitor.db import Base
from monitor.devices.models import (
    BatteryWarning,
    CredentialsVersion,
    Device,
    DeviceCommand,
    LocationFix,
)
from monitor.evidence.models import Evidence, EvidenceCustody
from monitor.ingest.models import RefusedMessage, WaitingMessage
from monitor.orgs.models import Organisation, Team, Worker, WorkerPinLink
from monitor.places.models import Caution, Place
from monitor.procedures.models import Procedure
from monitor.replicas.models import Replica
from monitor.users.models import User
from monitor.visits.models import Visit, VisitEvent

__all__ = [
    "Alert",
    "AlertEvent",
    "AuditEntry",
    "Base",
    "BatteryWarning",
    "Caution",
    "CredentialsVersion",
    "Device",
    "DeviceCommand",
    "Evidence",
    "EvidenceCustody",
    "LocationFix",
    "Organisation",
    "Place",
    "Procedure",
    "RefusedMessage",
    "Replica",
    "Team",
    "User",
    "Visit",
    "VisitEvent",
    "WaitingMessage",
    "Worker",
    "WorkerPinLink",
]
