"""Machine clients (the positioning platform, the 五源 referral channels) and the events they send."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.db import Base, format_repr, prefix_text

if TYPE_CHECKING:
    from engine.models.cases import Case
    from engine.models.org_units import OrgUnit

#: what a machine client may send: monitoring alarms, dispute referrals
EVENT_KINDS = ('alarm', 'referral')
#: ``received`` lives only inside the transaction that records the event; a committed row has one of the others
EVENT_STATUSES = ('received', 'delivered', 'unmatched', 'rejected')
#: what a delivered event did: started an alarm request, opened a dispute case, joined an open one
EVENT_EFFECTS = ('request_started', 'case_started', 'case_attached')


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class MachineClient(Base):
    """A system that posts events to ``/api/v1/events`` for one org unit, with a token of its own."""

    __tablename__ = 'machine_clients'

    #: primary key
    id: Mapped[int] = mapped_column(primary_key=True)
    #: a name staff recognise, e.g. 冷水江电子定位平台; unique
    name: Mapped[str] = mapped_column(sa.String(100), unique=True, nullable=False)
    #: the unit it acts for: its events are correlated within this unit's subtree, cases open here
    org_unit_id: Mapped[int] = mapped_column(sa.ForeignKey('org_units.id'), index=True, nullable=False)
    #: the event kinds it may send (a subset of ``EVENT_KINDS``)
    kinds: Mapped[list[str]] = mapped_column(sa.JSON, nullable=False, default=list)
    #: sha256 hex of its bearer token (the token itself is shown once, at creation)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True, nullable=False)
    #: a deactivated client's token is refused
    is_active: Mapped[bool] = mapped_column(nullable=False, default=True)
    #: the system administrator who created it (None from the command line)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey('users.id'), index=True, nullable=True)
    #: when it was created
    created_dt: Mapped[datetime] = mapped_column(nullable=False)

    org_unit: Mapped[OrgUnit] = relationship()
    events: Mapped[list[InboundEvent]] = relationship(back_populates='client', order_by='InboundEvent.id')

    def may_send(self, kind: str) -> bool:
        """Whether this client is active and allowed to send events of ``kind``."""
        return self.is_active and kind in self.kinds

    def __repr__(self) -> str:
        return format_repr(self, 'id', 'name', 'org_unit_id', is_active=True)


class InboundEvent(Base):
    """One event as received, with what it did; kept whatever happened to it, so nothing is ever dropped.

    The client's key is unique per client: a repeat finds this row and is answered with its outcome.
    """

    __tablename__ = 'inbound_events'
    __table_args__ = (
        sa.UniqueConstraint('client_id', 'key'),
        sa.CheckConstraint(_in('kind', EVENT_KINDS), name='valid_kind'),
        sa.CheckConstraint(_in('status', EVENT_STATUSES), name='valid_status'),
        sa.CheckConstraint(f"effect IS NULL OR {_in('effect', EVENT_EFFECTS)}", name='valid_effect'),
        # The supervisors' list: events needing attention below a unit, newest first.
        sa.Index('ix_inbound_events_status_org_path', 'status', 'org_path'),
    )

    #: primary key
    id: Mapped[int] = mapped_column(primary_key=True)
    #: the client that sent it
    client_id: Mapped[int] = mapped_column(sa.ForeignKey('machine_clients.id'), index=True, nullable=False)
    #: alarm or referral
    kind: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    #: the client's idempotency key for this event
    key: Mapped[str] = mapped_column(sa.String(128), nullable=False)
    #: sha256 of kind and payload, so a key reused for a different event is refused
    fingerprint: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    #: the payload as validated
    payload: Mapped[dict[str, Any]] = mapped_column(nullable=False, default=dict)
    #: when it arrived
    received_dt: Mapped[datetime] = mapped_column(index=True, nullable=False)
    #: delivered, unmatched (no open case to deliver to) or rejected (the engine refused its effect)
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    #: what a delivered event did (None otherwise)
    effect: Mapped[str | None] = mapped_column(sa.String(16), nullable=True)
    #: the case it was delivered to, attached to or opened (or the closed case an alarm named)
    case_id: Mapped[int | None] = mapped_column(sa.ForeignKey('cases.id'), index=True, nullable=True)
    #: the client's unit path when it arrived, so supervisors of that unit see it
    org_path: Mapped[str] = mapped_column(prefix_text(255), nullable=False)
    #: what happened, in words (shown to supervisors and answered to the client)
    message: Mapped[str] = mapped_column(sa.String(500), nullable=False, default='')

    client: Mapped[MachineClient] = relationship(back_populates='events')
    case: Mapped[Case | None] = relationship()

    def __repr__(self) -> str:
        return format_repr(self, 'id', 'client_id', 'kind', 'status', 'case_id')
