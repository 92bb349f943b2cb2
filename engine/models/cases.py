"""Cases (案件): what staff and supervisors see, each owning its process instances."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.db import Base, format_repr, prefix_text
from engine.errors import Conflict

if TYPE_CHECKING:
    from engine.models.instances import ProcessInstance
    from engine.models.org_units import OrgUnit

CASE_STATUSES = ('open', 'closed', 'cancelled')


class Case(Base):
    """A case: its number, public code, subject columns and current org unit."""

    __tablename__ = 'cases'
    __table_args__ = (
        sa.CheckConstraint(f"status IN ({', '.join(repr(s) for s in CASE_STATUSES)})", name='valid_status'),
        sa.Index('ix_cases_org_path_created', 'org_path', 'created_dt'),
        # Statistics: the cases closed in a period as one range however many are closed.
        sa.Index('ix_cases_closed', 'closed_dt', 'org_path', postgresql_where=sa.text('closed_dt IS NOT NULL'),
                 sqlite_where=sa.text('closed_dt IS NOT NULL')),
    )

    #: primary key
    id: Mapped[int] = mapped_column(primary_key=True)
    #: human case number, e.g. SJ-2026-000012
    number: Mapped[str] = mapped_column(prefix_text(32), unique=True, nullable=False)
    #: 一案一码 token for the public progress page; random, not derived from anything personal
    public_code: Mapped[str] = mapped_column(sa.String(32), unique=True, nullable=False)
    #: the process key the case was started with
    kind: Mapped[str] = mapped_column(sa.String(128), index=True, nullable=False)
    #: short title shown in lists
    title: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    #: current responsible org unit (changes on a residence change)
    org_unit_id: Mapped[int] = mapped_column(sa.ForeignKey('org_units.id'), index=True, nullable=False)
    #: copy of the org unit's path so subtree filters need no join
    org_path: Mapped[str] = mapped_column(prefix_text(255), nullable=False)
    #: open / closed / cancelled — change it only through the transition methods
    _status: Mapped[str] = mapped_column('status', sa.String(16), nullable=False, default='open')
    #: 三色 triage colour or risk level (green / yellow / red)
    risk_colour: Mapped[str | None] = mapped_column(sa.String(16), nullable=True)
    #: the person concerned (offender, patient)
    person_name: Mapped[str | None] = mapped_column(prefix_text(64), index=True, nullable=True)
    #: Chinese resident ID number; matched exactly, masked in lists
    id_number: Mapped[str | None] = mapped_column(sa.String(18), index=True, nullable=True)
    #: hospital (disputes)
    hospital: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    #: amount claimed (disputes), never a float
    claimed_amount: Mapped[Decimal | None] = mapped_column(sa.Numeric(14, 2), nullable=True)
    #: the date the legal clock starts from (委托函 received, judgment effective, application)
    start_event_on: Mapped[date | None] = mapped_column(nullable=True)
    #: 矫正类别: 管制 / 缓刑 / 假释 / 暂予监外执行
    correction_type: Mapped[str | None] = mapped_column(sa.String(16), index=True, nullable=True)
    #: 矫正起始日
    term_start_on: Mapped[date | None] = mapped_column(nullable=True)
    #: 矫正结束日 (the release timer counts back from it)
    term_end_on: Mapped[date | None] = mapped_column(index=True, nullable=True)
    #: 管理类别: 严管 / 普管 / 宽管
    management_level: Mapped[str | None] = mapped_column(sa.String(8), index=True, nullable=True)
    #: a minor's record (社区矫正法 §54): visible only to the case's own officers; fixed when the case opens and
    #: copied to each of its tasks (``HumanTask.is_minor``)
    is_minor: Mapped[bool] = mapped_column(nullable=False, default=False)
    #: 委托机关 (调查评估) or 决定机关 (交付接收)
    commissioning_body: Mapped[str | None] = mapped_column(sa.String(120), nullable=True)
    #: 案件来源 of a dispute: 警源 / 政源 / 诉源 / 访源 / 网源 / 当事人申请
    dispute_source: Mapped[str | None] = mapped_column(sa.String(16), index=True, nullable=True)
    #: 协议金额 (disputes)
    agreed_amount: Mapped[Decimal | None] = mapped_column(sa.Numeric(14, 2), nullable=True)
    #: current mediation level: 网格 / 村 / 乡镇 / 县
    mediation_level: Mapped[str | None] = mapped_column(sa.String(8), nullable=True)
    #: how it ended: 调解成功 / 调解不成 / 终止 / 撤回 ...; 期满解除 / 撤销缓刑 / 收监执行 / 死亡 ...
    outcome: Mapped[str | None] = mapped_column(sa.String(32), index=True, nullable=True)
    #: 个案补贴 tier: 一般 / 疑难 / 重大
    subsidy_tier: Mapped[str | None] = mapped_column(sa.String(8), nullable=True)
    #: legal counters kept as case data (训诫/警告 counts, "431" attempts per level); changes are audited
    counters: Mapped[dict[str, Any]] = mapped_column(nullable=False, default=dict)
    #: the start data as submitted (validated)
    start_data: Mapped[dict[str, Any]] = mapped_column(nullable=False, default=dict)
    #: who opened it
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey('users.id'), index=True, nullable=True)
    #: when it was opened
    created_dt: Mapped[datetime] = mapped_column(nullable=False)
    #: when it was closed or cancelled
    closed_dt: Mapped[datetime | None] = mapped_column(nullable=True)

    org_unit: Mapped[OrgUnit] = relationship()
    instances: Mapped[list[ProcessInstance]] = relationship(back_populates='case', order_by='ProcessInstance.id')

    @hybrid_property
    def status(self) -> str:
        """open, closed or cancelled; read-only, so that only the transition methods change it."""
        return self._status

    @status.inplace.expression
    @classmethod
    def _status_expression(cls) -> sa.ColumnElement[str]:
        return cls._status  # type: ignore[return-value]

    def close(self, when: datetime) -> None:
        """Mark the case closed (its lifecycle reached an end event)."""
        if self._status != 'open':
            raise Conflict(f'案件 {self.number} 已不是办理中状态')
        self._status = 'closed'
        self.closed_dt = when

    def cancel(self, when: datetime) -> None:
        """Mark the case cancelled."""
        if self._status != 'open':
            raise Conflict(f'案件 {self.number} 已不是办理中状态')
        self._status = 'cancelled'
        self.closed_dt = when

    def __repr__(self) -> str:
        return format_repr(self, 'id', 'number', 'kind', status='open')


class CaseAccessGrant(Base):
    """Read access to a case for a unit outside its current subtree (the county it was transferred from)."""

    __tablename__ = 'case_access_grants'
    __table_args__ = (sa.UniqueConstraint('case_id', 'org_path'),)

    #: primary key
    id: Mapped[int] = mapped_column(primary_key=True)
    #: the case
    case_id: Mapped[int] = mapped_column(sa.ForeignKey('cases.id'), index=True, nullable=False)
    #: the unit (path) that keeps read access
    org_path: Mapped[str] = mapped_column(prefix_text(255), index=True, nullable=False)
    #: why, e.g. 变更执行地
    reason: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    #: when it was granted
    granted_dt: Mapped[datetime] = mapped_column(nullable=False)

    def __repr__(self) -> str:
        return format_repr(self, 'id', 'case_id', 'org_path')


class Document(Base):
    """A generated document (文书) stored with its case: the HTML as issued, never re-rendered."""

    __tablename__ = 'documents'

    #: primary key
    id: Mapped[int] = mapped_column(primary_key=True)
    #: the case it belongs to
    case_id: Mapped[int] = mapped_column(sa.ForeignKey('cases.id'), index=True, nullable=False)
    #: the instance whose step produced it
    instance_id: Mapped[int | None] = mapped_column(sa.ForeignKey('process_instances.id'), index=True,
                                                       nullable=True)
    #: template name, e.g. assessment_opinion (调查评估意见书)
    kind: Mapped[str] = mapped_column(sa.String(64), index=True, nullable=False)
    #: title shown in lists, e.g. 调查评估意见书
    title: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    #: document number (文号), if the template assigns one
    number: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    #: the rendered document body (HTML fragment, printed on A4)
    body_html: Mapped[str] = mapped_column(sa.Text, nullable=False)
    #: whom it is addressed to, for the parties' view (一案一码): 'parties' or None (internal)
    audience: Mapped[str | None] = mapped_column(sa.String(32), nullable=True)
    #: who produced it (None for the engine)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey('users.id'), index=True, nullable=True)
    #: when
    created_dt: Mapped[datetime] = mapped_column(nullable=False)

    def __repr__(self) -> str:
        return format_repr(self, 'id', 'case_id', 'kind')
