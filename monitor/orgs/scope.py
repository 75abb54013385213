"""What a signed-in person may see: the whole service, one organisation, or one team."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, select, true
from sqlalchemy.orm import InstrumentedAttribute

from monitor.orgs.models import Worker


@dataclass(frozen=True)
class Scope:
    """A monitoring centre serving many organisations has people who see everything
    (`org_id` None); a customer's own safety lead sees their organisation; a team leader
    sees their team. Rows are scoped through the worker they concern, so a team scope
    follows workers as they move between teams."""

    org_id: int | None = None
    team_id: int | None = None
    # Whether positions are shown whatever the state of the alert or visit (docs/privacy.md).
    positions_always: bool = True

    @property
    def service_wide(self) -> bool:
        # A team alone still limits: a row made by hand with a team and no organisation
        # must not see everything.
        return self.org_id is None and self.team_id is None

    def covers(
        self,
        worker_id: InstrumentedAttribute[int | None],
        org_id: InstrumentedAttribute[int | None] | None = None,
    ) -> ColumnElement[bool]:
        """A filter keeping the rows, about the worker in `worker_id`, this scope covers.
        `org_id` is the row's own organisation column, where it has one."""
        if self.team_id is not None:
            return worker_id.in_(select(Worker.id).where(Worker.team_id == self.team_id))
        if self.org_id is None:
            return true()
        if org_id is not None:
            return org_id == self.org_id
        return worker_id.in_(select(Worker.id).where(Worker.org_id == self.org_id))

    def admits(self, org_id: int | None, team_id: int | None) -> bool:
        """The same rule, for a row already read (an alert pushed to a console)."""
        if self.team_id is not None:
            return team_id == self.team_id
        if self.org_id is None:
            return True
        return org_id == self.org_id


EVERYTHING = Scope()
