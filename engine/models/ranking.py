"""工作评比: the weights a city or province ranks its counties with, and the monthly results it published."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.db import Base, format_repr

if TYPE_CHECKING:
    from engine.models.org_units import OrgUnit
    from engine.models.users import User


class RankingWeight(Base):
    """The weight of one measure in the ranking of the counties under one unit (a city or the province).

    A unit without rows of its own uses the nearest ancestor's weights, and the documented defaults
    (``engine.ranking.MEASURES``) when no unit on its path set any. A unit's rows are always written as a
    complete set, one per measure.
    """

    __tablename__ = 'ranking_weights'
    __table_args__ = (
        sa.UniqueConstraint('org_unit_id', 'measure'),
        sa.CheckConstraint('weight >= 0', name='non_negative_weight'),
    )

    #: primary key
    id: Mapped[int] = mapped_column(primary_key=True)
    #: the unit whose ranking of counties these weights apply to
    org_unit_id: Mapped[int] = mapped_column(sa.ForeignKey('org_units.id'), index=True, nullable=False)
    #: the measure's key, one of ``engine.ranking.MEASURES``
    measure: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    #: its weight (relative: the weights of the measures a county has data for are scaled to sum to 100)
    weight: Mapped[Decimal] = mapped_column(sa.Numeric(7, 2), nullable=False)
    #: who set it
    set_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey('users.id'), index=True, nullable=True)
    #: when it was set
    set_dt: Mapped[datetime] = mapped_column(nullable=False)

    org_unit: Mapped[OrgUnit] = relationship()
    set_by: Mapped[User | None] = relationship()

    def __repr__(self) -> str:
        return format_repr(self, 'id', 'org_unit_id', 'measure', 'weight')


class RankingSnapshot(Base):
    """A published monthly ranking, frozen: the weights used and every county's scored explanation.

    Once a month's ranking of a unit's counties is published it is read from here, so later data
    corrections or weight changes never move a result that was announced.
    """

    __tablename__ = 'ranking_snapshots'
    __table_args__ = (sa.UniqueConstraint('org_unit_id', 'month'),)

    #: primary key
    id: Mapped[int] = mapped_column(primary_key=True)
    #: the unit whose counties were ranked
    org_unit_id: Mapped[int] = mapped_column(sa.ForeignKey('org_units.id'), index=True, nullable=False)
    #: the month ranked, ``YYYY-MM``
    month: Mapped[str] = mapped_column(sa.String(7), nullable=False)
    #: the weights used, ``{measure: "30.00"}``
    weights: Mapped[dict[str, Any]] = mapped_column(nullable=False)
    #: the scored counties as ``engine.ranking.scores_to_json`` writes them
    results: Mapped[dict[str, Any]] = mapped_column(nullable=False)
    #: who published it
    published_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey('users.id'), index=True, nullable=True)
    #: when
    published_dt: Mapped[datetime] = mapped_column(nullable=False)

    org_unit: Mapped[OrgUnit] = relationship()
    published_by: Mapped[User | None] = relationship()

    def __repr__(self) -> str:
        return format_repr(self, 'id', 'org_unit_id', 'month')
