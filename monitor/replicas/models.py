"""The table of replicas' heartbeats."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from monitor.db import Base


class Replica(Base):
    """A `vigil serve` replica of a shared group, as of its last heartbeat.

    The row goes once another replica has taken over the sessions of one that stopped
    beating; a replica that comes back writes it again.
    """

    __tablename__ = "replicas"

    node: Mapped[str] = mapped_column(String(200), primary_key=True)
    # The database's clock, not the replica's: replicas' clocks may disagree.
    beat_at: Mapped[datetime]
    # Its persistent MQTT sessions, for whoever takes them over.
    client_ids: Mapped[list[str]] = mapped_column(JSON)
