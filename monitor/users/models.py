"""Tables and API schemas for user accounts."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from monitor.db import Base, utcnow


class Role(StrEnum):
    OPERATOR = "operator"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    # No organisation: the person works for the monitoring centre and sees every customer.
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    # A team of that organisation: the person sees only that team's workers.
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    # Their own phone (E.164), rung first when they call someone from an alert; "" for none.
    phone: Mapped[str] = mapped_column(String(32), default="", server_default="")
    active: Mapped[bool] = mapped_column(default=True)
    # Sessions signed in before this have ended (a new password, the account disabled): a
    # token issued earlier no longer signs anyone in, even once the account is enabled again.
    sessions_from: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    full_name: str
    role: Role
    org_id: int | None
    team_id: int | None
    phone: str  # their own phone, rung first for a call from an alert; "" for none


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int


class UserRow(BaseModel):
    """An account as the Admin tab lists it: names of its organisation and team."""

    id: int
    username: str
    full_name: str
    role: Role
    org: str | None
    team: str | None
    phone: str
    active: bool
    created_at: datetime


class UserChoice(BaseModel):
    """A role and scope the signed-in person may give an account."""

    role: Role
    org: str | None
    team: str | None


class UserEdit(BaseModel):
    """An account's role, scope, name and phone, all given (what is unchanged is kept)."""

    model_config = ConfigDict(extra="forbid")

    role: Role
    org: str | None = Field(None, max_length=200)
    team: str | None = Field(None, max_length=200)
    full_name: str = Field("", max_length=200)
    phone: str = Field("", max_length=32)


class UserNew(UserEdit):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(max_length=1000)


class PasswordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(max_length=1000)
